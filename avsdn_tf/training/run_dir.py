"""A training run's directory: its layout, and the one loader of a trained run."""

import os
import zipfile

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio, hparams, remote
from avsdn_tf.data import dataset_info
from avsdn_tf.errors import UserError, input_error
from avsdn_tf.models import backbones, tasks

CONFIG = "config.json"
STATE = "state.json"
METRICS = "metrics.json"
CHECKPOINTS = "checkpoints"
LAST = "last.keras"
BEST = "best.keras"
LOGS = "logs"
# What a killed run leaves under temporary names (fileio.write_json's state.json.tmp-*,
# trainer._save_keras' checkpoints/best.tmp-*.keras): train sweeps them once it holds the lock.
STALE_TEMPORARIES = ("*.tmp-*", f"{CHECKPOINTS}/*.tmp-*")


class RunDir:
    def __init__(self, path):
        self.path = path

    def join(self, *parts):
        return os.path.join(self.path, *parts)

    @property
    def config(self):
        return self.join(CONFIG)

    @property
    def state(self):
        return self.join(STATE)

    @property
    def metrics(self):
        return self.join(METRICS)

    @property
    def last_checkpoint(self):
        return self.join(CHECKPOINTS, LAST)

    @property
    def best_checkpoint(self):
        return self.join(CHECKPOINTS, BEST)

    @property
    def logs(self):
        return self.join(LOGS)

    def read_config(self):
        config = fileio.read_json(self.config) if tf.io.gfile.exists(self.config) else None
        if config and isinstance(config.get("data_dir"), str):
            remote.use_filesystem(config["data_dir"], f"{self.config} field data_dir")
        return config

    def read_state(self):
        return fileio.read_json(self.state) if tf.io.gfile.exists(self.state) else None


# The run directory's format: 2 since the model carries its normalisation (avsdn-tf 0.2.0).
# Runs without "run_format" in config.json were written before and cannot be loaded.
RUN_FORMAT = 2
CHECKPOINT_CHOICES = ("best", "last")


def _old_run_error(where, config_path):
    return UserError(
        f"{where}: this run was written by avsdn-tf before 0.2.0, when the feature normalisation "
        "lived outside the model (in its data directory's normalization.json); its checkpoints "
        "cannot be used on their own. Train it again into a new run directory (python -m "
        "avsdn_tf.train with the hyperparameters of its config.json: --hparams_file "
        f"{config_path})"
    )


class LoadedRun:
    """A trained run, loaded and checked: the one way evaluate, export, predict, experiments and
    the tuner open a run directory.

    Attributes:
        path: the run directory. checkpoint: the .keras file loaded. config: config.json.
        hp: its HParams. audio_dim: A. visual_shape: [D] or [H, W, C]. num_segments: the
        training length T (None when the videos differed in length). class_names: 29 names.
        model: the trained Keras model (its task's heads on top; normalisation inside).
        task: the run's task (tasks.for_hparams(hp)).
    """

    def __init__(self, path, checkpoint, config, hp, model):
        self.path, self.checkpoint, self.config, self.hp, self.model = (
            path,
            checkpoint,
            config,
            hp,
            model,
        )
        data = config["data"]
        self.audio_dim = int(data["audio_dim"])
        self.visual_shape = [int(d) for d in data["visual_shape"]]
        self.num_segments = data.get("num_segments")
        self.class_names = list(config.get("class_names") or constants.class_names())
        self.data_dir = config.get("data_dir")
        self.task = tasks.for_hparams(hp)
        self._variable_length = None

    def _require_segments(self):
        """Refuse, in one message, what needs segment_probs on a run that has none (avdln)."""
        if self.task.evaluation_kind != "segments":
            raise input_error(
                f"{self.config} field hparams.model",
                "a model that labels segments (this needs segment probabilities)",
                f"{self.hp.model!r}, a cross-modality localization run: score it with "
                f"`python -m avsdn_tf.evaluate --split {self.task.splits['test']}`",
            )

    @property
    def segment_model(self):
        """The trained model cut to inputs -> segment_probs [B, T, 29] (fixed length T)."""
        self._require_segments()
        return backbones.segment_model(self.model)

    @property
    def variable_length_model(self):
        """The per-segment model rebuilt for any number of segments (made once)."""
        self._require_segments()
        if self._variable_length is None:
            self._variable_length = backbones.variable_length_model(
                self.model, self.hp, self.audio_dim, self.visual_shape
            )
        return self._variable_length

    def statistics(self):
        """The normalisation inside the model.

        Returns:
            {"audio_mean", "audio_std", "visual_mean", "visual_std"} as arrays ([A], [A], [C],
            [C]); a modality the model does not read gets mean 0, std 1.
        """
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

    def check_data(self, data_dir):
        """The DatasetInfo of `data_dir`, after checking its features are the ones the run takes.

        Args:
            data_dir: a data directory to score or predict on.
        Returns:
            its DatasetInfo.
        Raises:
            UserError: naming data_dir's dataset_info.json, when the dims differ from the run's.
        """
        info = dataset_info.read(data_dir)
        found = {"audio_dim": info.audio_dim, "visual_shape": list(info.visual_shape)}
        expected = {"audio_dim": self.audio_dim, "visual_shape": self.visual_shape}
        if found != expected:
            raise input_error(
                os.path.join(data_dir, constants.DATASET_INFO_FILE),
                f"the feature dims the run {self.path} was trained on {expected}",
                found,
            )
        return info

    def describe(self):
        return (
            f"{self.path} ({os.path.basename(self.checkpoint)}, {self.hp.model},"
            f" {self.hp.supervision} supervision)"
        )


def load_run(path, checkpoint="best", compile=False):
    """Open a run directory written by train: config, hyperparameters, checkpoint, checks.

    Args:
        path: the run directory.
        checkpoint: "best" (the best-on-val epoch) or "last".
        compile: also restore the optimizer and losses (only needed to train on).
    Returns:
        LoadedRun.
    Raises:
        UserError: naming the directory or file, for a missing directory, config.json or
        checkpoint, a config.json without the fields train writes, a run written before the
        model carried its normalisation, or a checkpoint Keras cannot load.
    """
    if checkpoint not in CHECKPOINT_CHOICES:
        raise input_error("checkpoint", f"one of {CHECKPOINT_CHOICES}", repr(checkpoint))
    run = RunDir(path)
    if not tf.io.gfile.isdir(path):
        raise UserError(f"{path}: run directory not found")
    config = run.read_config()
    if config is None:
        raise input_error(path, f"a run directory written by train (with {CONFIG})", f"no {CONFIG}")
    try:
        hp = hparams.from_dict(config["hparams"], source=f"{run.config} field hparams")
        data = config["data"]
        int(data["audio_dim"]), [int(d) for d in data["visual_shape"]]
    except (KeyError, TypeError, ValueError) as error:
        raise input_error(
            run.config,
            "the hparams and data fields train writes",
            f"{type(error).__name__}: {error}",
        ) from None
    if config.get("run_format", 1) < RUN_FORMAT:
        raise _old_run_error(f"{run.config} field run_format", run.config)
    checkpoint_path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not tf.io.gfile.exists(checkpoint_path):
        raise input_error(
            path,
            f"a trained run with {os.path.relpath(checkpoint_path, path)}",
            "no such checkpoint",
        )
    with tf.io.gfile.GFile(checkpoint_path, "rb") as file:
        complete = zipfile.is_zipfile(file)  # a .keras file is a zip archive, its index at the end
    if not complete:
        size = tf.io.gfile.stat(checkpoint_path).length
        raise input_error(
            checkpoint_path,
            "a complete .keras zip archive saved by train",
            f"a truncated or corrupt file of {size} bytes (no zip index)",
        )
    try:
        model = backbones.load_model(checkpoint_path, compile=compile)
    except Exception as error:  # Keras raises many kinds for a damaged or foreign file
        raise input_error(
            checkpoint_path,
            "a Keras model saved by train",
            f"a file Keras cannot load ({type(error).__name__}: {str(error)[:200]})",
        ) from None
    if tasks.for_hparams(hp).normalized and not backbones.normalization_layers(model):
        raise _old_run_error(checkpoint_path, run.config)
    return LoadedRun(path, checkpoint_path, config, hp, model)
