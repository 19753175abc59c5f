"""Every model `--model NAME` takes, one line each, and the one loader of a trained run.

A line names the model's task factory (function(hp) -> a task that builds, trains, scores and
serves the model) and what the model is. Adding a model is its folder under avsdn_tf/models/ and
one line here (docs/architecture.md, "Adding a model").
"""

import dataclasses
import functools

from avsdn_tf import hparams, runs
from avsdn_tf.errors import argument_error, input_error, one_line
from avsdn_tf.models import avel, avsdn, backbones, tasks
from avsdn_tf.models.avdln import task as avdln_task
from avsdn_tf.models.cmbs import task as cmbs_task
from avsdn_tf.models.psp import task as psp_task


@dataclasses.dataclass(frozen=True)
class Entry:
    task: object  # function(hp) -> a tasks.BaseTask
    description: str
    tunable: bool = True  # whether the tuner's search space covers it
    # function(supervision) -> {HParams field: value}: the model's own defaults (its authors'
    # recipe), under a hyperparameter file and flags; None: the common defaults.
    defaults: object = None


MODELS = {
    "avsdn": Entry(
        tasks.classifier(avsdn.build),
        "AVSDN: LSTM encoders, DMRN-fused states initialise an LSTM decoder (Lin et al. 2019)",
    ),
    "audio": Entry(
        tasks.classifier(functools.partial(avel.build, use_visual=False, name="audio")),
        "AVEL audio only: BiLSTM over audio",
    ),
    "visual": Entry(
        tasks.classifier(functools.partial(avel.build, use_audio=False, name="visual")),
        "AVEL visual only: BiLSTM over pooled visual features",
    ),
    "av": Entry(
        tasks.classifier(functools.partial(avel.build, name="av")),
        "AVEL A+V: audio and pooled visual BiLSTMs, concatenated",
    ),
    "av_att": Entry(
        tasks.classifier(functools.partial(avel.build, attention=True, name="av_att")),
        "AVEL A+V with audio-guided visual attention (maps; vectors pass through)",
    ),
    "dmrn": Entry(
        tasks.classifier(avel.build_dmrn),
        "AVEL DMRN: dual multimodal residual fusion of the two BiLSTMs per segment",
    ),
    "avsdn_init_visual": Entry(
        tasks.classifier(functools.partial(avsdn.build, init="visual")),
        "Ablation: decoder initialised by the visual state",
    ),
    "avsdn_init_audio": Entry(
        tasks.classifier(functools.partial(avsdn.build, init="audio")),
        "Ablation: decoder initialised by the audio state",
    ),
    "avsdn_label_guided": Entry(
        tasks.classifier(functools.partial(avsdn.build, label_guided=True), label_guided=True),
        "Ablation: each encoder's last state also trained against the video label",
    ),
    avdln_task.NAME: Entry(
        avdln_task.task,
        "AVEL cross-modality localization (A2V / V2A): the AVE authors' audio-visual distance "
        "learning network, on the *_match splits",
        tunable=False,
        defaults=lambda supervision: {"batch_size": 8, "epochs": 20},
    ),
    psp_task.NAME: Entry(
        psp_task.task,
        "PSP: positive sample propagation (Zhou et al. 2021), the authors' psp_net on 7x7x512 maps",
        tunable=False,
        defaults=psp_task.defaults,
    ),
    cmbs_task.NAME: Entry(
        cmbs_task.task,
        "CMBS: cross-modal background suppression (Xia, Zhao 2022), the authors' model on maps",
        tunable=False,
        defaults=cmbs_task.defaults,
    ),
}


def names(tunable=None):
    """The registered model names, in the registry's order.

    Args:
        tunable: None for all; True / False for those the tuner does / does not search.
    Returns:
        list of str.
    """
    return [name for name, entry in MODELS.items() if tunable in (None, entry.tunable)]


def describe():
    """The `--model help` listing of every command: one line per model, name and description."""
    width = max(map(len, MODELS))
    return "\n".join(f"{name:<{width}}  {entry.description}" for name, entry in MODELS.items())


def check_name(name, tunable=None):
    """Refuse a name the registry does not have (or that the tuner cannot search).

    Args:
        name: a --model value. tunable: as names().
    Returns:
        name.
    Raises:
        UserError: naming the argument `model`, with the names it takes.
    """
    if name not in names(tunable):
        raise argument_error("model", f"one of {names(tunable)}", repr(name))
    return name


def default_hparams(model, supervision=None):
    """The default HParams of a model: the common defaults with the model's own (its recipe).

    Args:
        model: a registered model name (an unknown one gets the common defaults).
        supervision: "full" or "weak" (default: the common default, full).
    Returns:
        HParams with `model` (and `supervision` when given) set.
    """
    base = hparams.HParams(model=model)
    if supervision:
        base = base.replace(supervision=supervision)
    entry = MODELS.get(model)
    if entry is None or entry.defaults is None:
        return base
    return base.replace(**entry.defaults(base.supervision))


def has_defaults(model):
    """Whether a model has defaults of its own (default_hparams differs from HParams())."""
    entry = MODELS.get(model)
    return entry is not None and entry.defaults is not None


def task_for(hp):
    """The task of a set of hyperparameters: the registered model `hp.model`, `hp.supervision`.

    Args:
        hp: HParams.
    Returns:
        the model's task (a tasks.BaseTask).
    Raises:
        UserError: for an unknown model, or a supervision the model does not take.
    """
    return MODELS[check_name(hp.model)].task(hp)


class LoadedRun(runs.RunInfo):
    """A trained run, loaded and checked: the one way evaluate, export, predict, experiments and
    the tuner open a run directory (runs.RunInfo plus its model and task).

    Attributes (besides RunInfo's):
        model: the trained Keras model (its task's heads on top; normalisation inside).
        task: the run's task (task_for(hp)).
    """

    def __init__(self, info, model):
        super().__init__(info.path, info.checkpoint, info.config, info.hp)
        self.model = model
        self.task = task_for(self.hp)
        self._variable_length = None

    def require_segments(self):
        """Refuse, in one message, what needs segment_probs on a run that has none (avdln)."""
        if self.task.evaluation_kind != "segments":
            raise input_error(
                f"{runs.RunDir(self.path).config} field hparams.model",
                "a model that labels segments (this needs segment probabilities)",
                f"{self.hp.model!r}, a cross-modality localization run: score it with "
                f"`python -m avsdn_tf.evaluate --split {self.task.splits['test']}`",
            )

    @property
    def segment_model(self):
        """The trained model cut to inputs -> segment_probs [B, T, 29] (fixed length T)."""
        self.require_segments()
        return self.task.segment_model(self.model)

    @property
    def variable_length_model(self):
        """The task's model rebuilt for any number of segments (made once)."""
        if self._variable_length is None:
            self._variable_length = self.task.variable_length_model(
                self.model, self.audio_dim, self.visual_shape
            )
        return self._variable_length

    def statistics(self):
        """The normalisation inside the model.

        Returns:
            {"audio_mean", "audio_std", "visual_mean", "visual_std"} as arrays ([A], [A], [C],
            [C]); a modality the model does not normalise gets mean 0, std 1.
        """
        import numpy as np

        layers = backbones.normalization_layers(self.model)
        sizes = {"audio": self.audio_dim, "visual": self.visual_shape[-1]}
        statistics = {}
        for modality, size in sizes.items():
            mean, std = (
                layers[modality].statistics()
                if modality in layers
                else (np.zeros(size, np.float32), np.ones(size, np.float32))
            )
            statistics.update({f"{modality}_mean": mean, f"{modality}_std": std})
        return statistics


def load_run(path, checkpoint="best", compile=False):
    """Open a run directory written by train and load its model (runs.read_run, then Keras).

    Args:
        path: the run directory.
        checkpoint: "best" (the best-on-val epoch) or "last".
        compile: also restore the optimizer and losses (only needed to train on).
    Returns:
        LoadedRun.
    Raises:
        UserError: naming the directory or file, for everything runs.read_run refuses, a
        checkpoint Keras cannot load, or one without the normalisation its model carries.
    """
    info = runs.read_run(path, checkpoint)
    try:
        model = backbones.load_model(info.checkpoint, compile=compile)
    except Exception as error:  # Keras raises many kinds for a damaged or foreign file
        raise input_error(
            info.checkpoint,
            "a Keras model saved by train",
            f"a file Keras cannot load ({type(error).__name__}: {one_line(error)})",
        ) from None
    if task_for(info.hp).normalized and not backbones.normalization_layers(model):
        raise runs.old_run_error(info.checkpoint, runs.RunDir(path).config)
    return LoadedRun(info, model)
