"""The run directory, a contract every layer shares: its layout, its config.json, and the checks
that a directory is a complete trained run (`read_run`).

Loading the model a run holds is the model layer's (avsdn_tf.models.registry.load_run), which
builds on `read_run`; training writes runs, and evaluation, export, prediction, the paper's tables
and the tuner read them, all through this module.
"""

import json
import math
import os
import zipfile

import tensorflow as tf

from avsdn_tf import constants, fileio, hparams, remote
from avsdn_tf.errors import UserError, input_error

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

    def recorded_hparams(self):
        """The hyperparameters config.json records, to resume the run with.

        Returns:
            HParams, or None when there is no config.json or it is of a format train cannot
            resume (train then says so).
        Raises:
            UserError: naming config.json's hparams field, when a value is malformed.
        """
        config = self.read_config()
        if not config or config.get("run_format", 1) < RUN_FORMAT:
            return None
        return hparams.from_dict(config.get("hparams", {}), source=f"{self.config} field hparams")


# The run directory's format: 2 since the model carries its normalisation (avsdn-tf 0.2.0).
# Runs without "run_format" in config.json were written before and cannot be loaded.
RUN_FORMAT = 2
CHECKPOINT_CHOICES = ("best", "last")


def old_run_error(where, config_path):
    return UserError(
        f"{where}: this run was written by avsdn-tf before 0.2.0, when the feature normalisation "
        "lived outside the model (in its data directory's normalization.json); its checkpoints "
        "cannot be used on their own. Train it again into a new run directory (python -m "
        "avsdn_tf.train with the hyperparameters of its config.json: --hparams_file "
        f"{config_path})"
    )


class RunInfo:
    """A trained run as its directory describes it (read and checked by `read_run`).

    Attributes:
        path: the run directory. checkpoint: the .keras file to load. config: config.json.
        hp: its HParams. audio_dim: A. visual_shape: [D] or [H, W, C]. num_segments: the
        training length T (None when the videos differed in length). class_names: 29 names.
        data_dir: the data directory it was trained on (it may have moved since).
    """

    def __init__(self, path, checkpoint, config, hp):
        self.path, self.checkpoint, self.config, self.hp = path, checkpoint, config, hp
        data = config["data"]
        self.audio_dim = int(data["audio_dim"])
        self.visual_shape = [int(d) for d in data["visual_shape"]]
        self.num_segments = data.get("num_segments")
        self.class_names = list(config.get("class_names") or constants.class_names())
        self.data_dir = config.get("data_dir")

    def check_data(self, info, data_dir):
        """`info` after checking its features are the ones the run takes.

        Args:
            info: the data directory's DatasetInfo (anything with audio_dim and visual_shape).
            data_dir: its directory, for the message.
        Returns:
            info.
        Raises:
            UserError: naming data_dir's dataset_info.json, when the dims differ from the run's.
        """
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


def _read_config(run, path):
    """config.json of a run directory and its HParams, checked for the fields train writes."""
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
        raise old_run_error(f"{run.config} field run_format", run.config)
    return config, hp


def _check_checkpoint(path, checkpoint_path):
    """Refuse a missing checkpoint, or one cut short (a .keras file is a zip, its index last)."""
    if not tf.io.gfile.exists(checkpoint_path):
        raise input_error(
            path,
            f"a trained run with {os.path.relpath(checkpoint_path, path)}",
            "no such checkpoint",
        )
    with tf.io.gfile.GFile(checkpoint_path, "rb") as file:
        complete = zipfile.is_zipfile(file)
    if not complete:
        size = tf.io.gfile.stat(checkpoint_path).length
        raise input_error(
            checkpoint_path,
            "a complete .keras zip archive saved by train",
            f"a truncated or corrupt file of {size} bytes (no zip index)",
        )


# The learning-rate schedule a checkpoint's optimizer holds -> HParams.lr_schedule
# (training.trainer.learning_rate_schedule makes them).
_SCHEDULES = {
    "ExponentialDecay": "step",
    "PiecewiseConstantDecay": "multistep",
    "CosineDecay": "cosine",
}


def _float32_value(value):
    """A float the checkpoint kept as float32, as it was given (0.0010000000474974513 -> 0.001)."""
    return float(f"{float(value):.7g}")


def checkpoint_training(checkpoint_path):
    """The hyperparameters a .keras checkpoint records of its training (its compile config).

    Args:
        checkpoint_path: a .keras file saved by train, compiled.
    Returns:
        {HParams field: value} for those it records: learning_rate (the initial one),
        lr_schedule, clip_norm, jit_compile, steps_per_execution; {} for an uncompiled model.
    """
    with tf.io.gfile.GFile(checkpoint_path, "rb") as file, zipfile.ZipFile(file) as archive:
        compile_config = json.loads(archive.read("config.json")).get("compile_config") or {}
    optimizer = (compile_config.get("optimizer") or {}).get("config") or {}
    found = {
        name: compile_config[name]
        for name in ("jit_compile", "steps_per_execution")
        if name in compile_config
    }
    rate = optimizer.get("learning_rate")
    if isinstance(rate, int | float):
        found.update(learning_rate=_float32_value(rate), lr_schedule="constant")
    elif isinstance(rate, dict) and rate.get("class_name") in _SCHEDULES:
        schedule = rate.get("config") or {}
        initial = schedule.get("initial_learning_rate", (schedule.get("values") or [None])[0])
        found["lr_schedule"] = _SCHEDULES[rate["class_name"]]
        if initial is not None:
            found["learning_rate"] = _float32_value(initial)
    if "global_clipnorm" in optimizer:
        found["clip_norm"] = float(optimizer["global_clipnorm"] or 0.0)
    return found


def training_differences(hp, checkpoint_path):
    """[(field, config.json's value, the checkpoint's)] of what the checkpoint records of its
    training (checkpoint_training) and `hp` gives otherwise (floats as float32 keeps them).

    Args:
        hp: the run's HParams (config.json's). checkpoint_path: its .keras checkpoint.
    Returns:
        list of (str "hparams.FIELD", config.json's value, the checkpoint's value).
    """
    found = []
    for name, value in checkpoint_training(checkpoint_path).items():
        given = getattr(hp, name)
        same = (
            math.isclose(given, value, rel_tol=1e-6) if isinstance(value, float) else given == value
        )
        if not same:
            found.append((f"hparams.{name}", given, value))
    return found


def _shown(value):
    return value if isinstance(value, Described) else repr(value)


class Described(str):
    """A difference's value that is a description (e.g. of weight shapes), shown as it is."""


def inconsistent_run_error(path, checkpoint_path, differences):
    """The UserError about a run whose config.json does not describe its checkpoint.

    Args:
        path: the run directory. checkpoint_path: the checkpoint it does not describe.
        differences: [(field, config.json's value, the checkpoint's)].
    Returns:
        UserError naming config.json, each difference, and the one command that repairs it.
    """
    listed = "; ".join(
        f"{field}: config.json's {_shown(given)}, the checkpoint's {_shown(found)}"
        for field, given, found in differences
    )
    return input_error(
        RunDir(path).config,
        f"a config.json that describes the checkpoint {checkpoint_path}",
        f"{listed} (train in avsdn-tf 0.2.0 rewrote config.json when it resumed a run with "
        "other flags, and trained on with the checkpoint's); repair it with: python -m "
        f"avsdn_tf.train --model_dir {path} --repair_config",
    )


def read_run(path, checkpoint="best"):
    """Open a run directory written by train: config, hyperparameters, checkpoint file, checks.

    Args:
        path: the run directory.
        checkpoint: "best" (the best-on-val epoch) or "last".
    Returns:
        RunInfo.
    Raises:
        UserError: naming the directory or file, for a missing directory, config.json or
        checkpoint, a config.json without the fields train writes, a run written before the
        model carried its normalisation, or a checkpoint cut short.
    """
    if checkpoint not in CHECKPOINT_CHOICES:
        raise input_error("checkpoint", f"one of {CHECKPOINT_CHOICES}", repr(checkpoint))
    run = RunDir(path)
    config, hp = _read_config(run, path)
    checkpoint_path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    _check_checkpoint(path, checkpoint_path)
    return RunInfo(path, checkpoint_path, config, hp)
