"""Every model `--model NAME` takes, one line each, and the loaders of saved models and runs.

A line names the model's task factory (function(hp) -> a task that builds, trains, scores and
serves the model) and what the model is. Adding a model is its folder under avsdn_tf/models/ and
one line here (docs/architecture.md, "Adding a model").
"""

import dataclasses
import functools

import keras

from avsdn_tf import fileio, hparams, runs
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


# The hyperparameters that set weight shapes (layer widths): what repair_config infers from a
# checkpoint's weights.
SHAPE_FIELDS = (
    "encoder_units",
    "fusion_units",
    "lstm_units",
    "classifier_units",
    "attention_units",
)


def _weight_shapes(hp, info):
    """The weight shapes of the model `hp` builds on the run's dims."""
    built = task_for(hp).build(info.audio_dim, info.visual_shape, info.num_segments)
    return [tuple(weight.shape) for weight in built.weights]


def checkpoint_differences(info, model):
    """Where the run's config.json does not describe its checkpoint.

    Args:
        info: the run's runs.RunInfo (config.json's hyperparameters, the checkpoint's path).
        model: the Keras model loaded from info.checkpoint.
    Returns:
        [(field, config.json's value, the checkpoint's)]: the training settings the checkpoint
        records (runs.training_differences), and "weights" when the model config.json's
        hyperparameters build has other weight shapes than the checkpoint.
    """
    found = runs.training_differences(info.hp, info.checkpoint)
    described = _weight_shapes(info.hp, info)
    held = [tuple(weight.shape) for weight in model.weights]
    if described != held:
        first = next(
            (i for i, pair in enumerate(zip(described, held)) if pair[0] != pair[1]),
            min(len(described), len(held)),
        )
        found.append(
            (
                "weights",
                runs.Described(
                    f"{len(described)} weights, number {first + 1} of shape "
                    f"{list(described[first]) if first < len(described) else None}"
                ),
                runs.Described(
                    f"{len(held)}, number {first + 1} of shape "
                    f"{list(held[first]) if first < len(held) else None}"
                ),
            )
        )
    return found


def check_describes(info, model):
    """Refuse a run whose config.json does not describe its checkpoint (checkpoint_differences).

    Raises:
        UserError: runs.inconsistent_run_error, naming the command that repairs it.
    """
    differences = checkpoint_differences(info, model)
    if differences:
        raise runs.inconsistent_run_error(info.path, info.checkpoint, differences)


def _infer_widths(hp, info, target):
    """hp with the layer widths (SHAPE_FIELDS) whose model has the weight shapes `target`.

    Only the widths that change the model's shapes are searched, each over the sizes found in
    `target`, one at a time (each width shapes its own layers), for as many rounds as widths.

    Args:
        hp: the HParams to start from. info: the run's RunInfo (its dims). target: the
            checkpoint's weight shapes.
    Returns:
        HParams.
    Raises:
        UserError: naming the checkpoint, when no widths give its shapes.
    """
    shapes = _weight_shapes(hp, info)
    if shapes == target:
        return hp

    def mismatches(candidate):
        built = _weight_shapes(candidate, info)
        return sum(a != b for a, b in zip(built, target)) + abs(len(built) - len(target))

    widths = [
        name
        for name in SHAPE_FIELDS
        if _weight_shapes(hp.replace(**{name: getattr(hp, name) + 1}), info) != shapes
    ]
    sizes = sorted({size for shape in target for size in shape})
    for _ in widths:
        for name in widths:
            options = [hp] + [hp.replace(**{name: size}) for size in sizes]
            hp = min(options, key=mismatches)
            if _weight_shapes(hp, info) == target:
                return hp
    raise input_error(
        info.checkpoint,
        f"weights a {hp.model!r} model of some layer widths ({', '.join(widths)}) has",
        "shapes no widths give; train a new run with a new --model_dir",
    )


def repair_config(path):
    """Rewrite a run's config.json so it describes its checkpoints: the training settings the
    checkpoints record (runs.checkpoint_training) and the layer widths their weights have.

    For a run an older train left inconsistent (it rewrote config.json when resuming with other
    flags, and trained on with the checkpoint's). Other fields are kept; config.json's
    "repaired" lists what changed.

    Args:
        path: the run directory.
    Returns:
        [(field, config.json's old value, the new one)]; [] when it already described them.
    Raises:
        UserError: for everything runs.read_run refuses, or checkpoints no hyperparameters
            describe.
    """
    info = runs.read_run(path, "last")
    model = load_model(info.checkpoint, compile=False)
    changes = {
        field.split(".", 1)[1]: value
        for field, _, value in runs.training_differences(info.hp, info.checkpoint)
    }
    hp = info.hp.replace(**changes)
    hp = _infer_widths(hp, info, [tuple(weight.shape) for weight in model.weights]).validate()
    old = info.hp.to_dict()
    changed = [
        (name, old[name], value) for name, value in hp.to_dict().items() if old[name] != value
    ]
    if not changed:
        return []
    config = {**info.config, "hparams": hp.to_dict()}
    for checkpoint in runs.CHECKPOINT_CHOICES:  # both checkpoints, as the repaired config says
        repaired = runs.read_run(path, checkpoint)
        repaired = runs.RunInfo(path, repaired.checkpoint, config, hp)
        check_describes(repaired, load_model(repaired.checkpoint, compile=False))
    config["repaired"] = [
        *info.config.get("repaired", []),
        *({"field": name, "was": was, "now": now} for name, was, now in changed),
    ]
    fileio.write_json(runs.RunDir(path).config, config)
    return changed


def load_model(path, compile=True):
    """Load a .keras model saved by this project, of any model in MODELS.

    Keras finds a saved layer, loss, metric or optimizer by its registered name, and a name is
    registered when its module is imported. This module imports every model's folder, so a
    process that imports only the registry loads every model's checkpoint (a model's own layers
    live in its folder, which the model layer's base modules cannot import).

    Args:
        path: a .keras file.
        compile: restore the optimizer, losses and metrics too (needed to resume training).
    Returns:
        the keras.Model, normalisation layers included.
    """
    return keras.models.load_model(path, compile=compile)


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
        checkpoint Keras cannot load, one without the normalisation its model carries, or one
        its config.json does not describe (check_describes).
    """
    info = runs.read_run(path, checkpoint)
    try:
        model = load_model(info.checkpoint, compile=compile)
    except Exception as error:  # Keras raises many kinds for a damaged or foreign file
        raise input_error(
            info.checkpoint,
            "a Keras model saved by train",
            f"a file Keras cannot load ({type(error).__name__}: {one_line(error)})",
        ) from None
    if task_for(info.hp).normalized and not backbones.normalization_layers(model):
        raise runs.old_run_error(info.checkpoint, runs.RunDir(path).config)
    check_describes(info, model)
    return LoadedRun(info, model)
