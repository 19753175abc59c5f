"""Hyperparameters: defaults, loading from a JSON file (the tuner writes one), validation."""

import dataclasses

from avsdn_tf import constants, fileio
from avsdn_tf.errors import input_error

# Fields that take one of a few values (their flags are enums).
CHOICES = {
    "supervision": constants.SUPERVISIONS,
    "lr_schedule": ("constant", "step", "multistep", "cosine"),
    "visual_reduction": ("pool", "attention"),
    "weak_pooling": ("mean", "max"),
    "selection": ("val", "last"),
}


def _field(default, help_text):
    """A field with its help text (the command-line flag made from it shows it)."""
    return dataclasses.field(default=default, metadata={"help": help_text})


@dataclasses.dataclass
class HParams:
    model: str = _field("avsdn", "Registered model name (`--model help` lists them).")
    supervision: str = _field(constants.FULL, "full: segment labels; weak: video labels only.")
    epochs: int = _field(
        12, "Training epochs (avdln: 20); 0 only to import and evaluate --init_weights."
    )
    batch_size: int = _field(
        64, "Batch size per replica (avdln: 8); the global batch scales with the replicas."
    )
    learning_rate: float = _field(1e-3, "Adam learning rate.")
    lr_schedule: str = _field("constant", "Learning-rate schedule.")
    lr_decay_epochs: int = _field(
        10, "step schedule: multiply the rate by lr_decay_rate every this many epochs."
    )
    lr_decay_rate: float = _field(0.1, "step and multistep schedules: the factor.")
    lr_milestones: str = _field(
        "", "multistep schedule: the epochs after which the rate is multiplied, e.g. '10,20,30'."
    )
    clip_norm: float = _field(
        0.0, "Clip the gradients' global norm to this (PyTorch's clip_grad_norm_); 0 = never."
    )
    encoder_units: int = _field(
        128, "AVSDN encoder and decoder LSTM units (the decoder takes the encoder state)."
    )
    fusion_units: int = _field(256, "Hidden width of the fusion MLPs U_a, U_v.")
    lstm_units: int = _field(128, "AVEL baselines: units of each BiLSTM direction.")
    classifier_units: int = _field(64, "AVEL baselines: hidden width of the classifier.")
    attention_units: int = _field(512, "Audio-guided attention: width of v' and a'.")
    visual_reduction: str = _field(
        "pool", "Visual maps: global average pooling or AVEL's audio-guided attention."
    )
    dropout: float = _field(0.0, "Dropout before the classifier.")
    weak_pooling: str = _field(
        "mean", "Weak supervision: mean over time (AVSDN paper) or max (AVEL code)."
    )
    guide_loss_weight: float = _field(
        1.0, "avsdn_label_guided: weight of each encoder's video-label loss."
    )
    selection: str = _field(
        "val",
        "Which epoch the run keeps and reports: the best on the val split (val_match for "
        "avdln), or the last one (the AVE authors' cross-modality code keeps the last).",
    )
    early_stopping_patience: int = _field(
        0, "Stop after this many epochs without val improvement; 0 = never."
    )
    unroll: bool = _field(
        True, "Unroll the short fixed-length LSTMs on a CPU (faster there); GPUs use cuDNN."
    )
    jit_compile: bool = _field(False, "Compile the training step with XLA.")
    steps_per_execution: int = _field(1, "Batches per call of the compiled training function.")
    cache_gb: float = _field(
        6.0,
        "Keep the decoded train and val splits in memory when they fit in this many "
        "GB (epochs after the first then skip reading and parsing); 0 = never.",
    )
    seed: int = _field(0, "Random seed (weights, shuffling).")

    def validate(self, source="hyperparameters"):
        """Check every field's value; return self.

        Args:
            source: what the error names (the file or "command-line flags").
        Returns:
            self.
        Raises:
            errors.UserError: when a choice field is not one of its choices, a size is below 1,
                dropout is not in [0, 1), cache_gb < 0 or learning_rate <= 0.
        """
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise input_error(
                    f"{source} field {name!r}", f"one of {allowed}", repr(getattr(self, name))
                )
        if int(self.epochs) < 0:
            raise input_error(f"{source} field 'epochs'", "an integer >= 0", self.epochs)
        for name in (
            "batch_size",
            "encoder_units",
            "fusion_units",
            "lstm_units",
            "classifier_units",
            "attention_units",
            "steps_per_execution",
            "lr_decay_epochs",
        ):
            if int(getattr(self, name)) < 1:
                raise input_error(
                    f"{source} field {name!r}", "a positive integer", getattr(self, name)
                )
        if not 0.0 <= self.dropout < 1.0:
            raise input_error(f"{source} field 'dropout'", "a value in [0, 1)", self.dropout)
        if not self.cache_gb >= 0:
            raise input_error(f"{source} field 'cache_gb'", "a number >= 0", self.cache_gb)
        if not self.clip_norm >= 0:
            raise input_error(f"{source} field 'clip_norm'", "a number >= 0", self.clip_norm)
        self.milestones(source)
        if not self.learning_rate > 0:
            raise input_error(
                f"{source} field 'learning_rate'", "a positive number", self.learning_rate
            )
        return self

    def milestones(self, source="hyperparameters"):
        """lr_milestones as ascending positive epochs.

        Args:
            source: what the error names.
        Returns:
            list of int ([] when empty).
        Raises:
            errors.UserError: naming the field, unless it is comma-separated ascending
                positive integers (and not empty for the multistep schedule).
        """
        text = self.lr_milestones.strip()
        try:
            epochs = [int(part) for part in text.split(",")] if text else []
        except ValueError:
            epochs = None
        if epochs is None or any(e < 1 for e in epochs) or epochs != sorted(set(epochs)):
            raise input_error(
                f"{source} field 'lr_milestones'",
                "ascending positive epochs separated by commas, e.g. '10,20,30'",
                repr(self.lr_milestones),
            )
        if self.lr_schedule == "multistep" and not epochs:
            raise input_error(
                f"{source} field 'lr_milestones'", "epochs for the multistep schedule", "none"
            )
        return epochs

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


FIELDS = {field.name: field.type for field in dataclasses.fields(HParams)}
HELP = {field.name: field.metadata["help"] for field in dataclasses.fields(HParams)}


def from_dict(values, source="hyperparameters", base=None):
    """HParams from a dict of hyperparameter values, over `base`.

    Args:
        values: {field name: value}, e.g. a parsed hparams JSON file.
        source: what errors name (the file).
        base: the HParams the values change (default: HParams()).
    Returns:
        a validated HParams.
    Raises:
        errors.UserError: naming `source` and the field, for unknown names and wrong types.
    """
    base = base or HParams()
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise input_error(
            source, f"hyperparameter names from {sorted(FIELDS)}", f"unknown {unknown}"
        )
    changes = {}
    for name, value in values.items():
        default = getattr(base, name)
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError
                changes[name] = value
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or (
                    isinstance(default, int) and float(value) != int(value)
                ):
                    raise TypeError
                changes[name] = type(default)(value)
            else:
                changes[name] = str(value)
        except (TypeError, ValueError):
            raise input_error(
                f"{source} field {name!r}", f"a {type(default).__name__}", repr(value)
            ) from None
    return base.replace(**changes).validate(source)


def _file_values(path):
    """The hyperparameters of a JSON file (a tuner's file nests them under "hparams")."""
    values = fileio.read_json_object(
        path, "hyperparameter file", "a JSON object of hyperparameters"
    )
    nested = values.get("hparams", values)
    if not isinstance(nested, dict):
        raise input_error(
            f"{path}: hparams", "a JSON object of hyperparameters", type(nested).__name__
        )
    return nested


def file_fields(path):
    """The fields a JSON file of hyperparameters sets (load()'s file).

    Args:
        path: the JSON file (local or a URL).
    Returns:
        set of field names in it (unknown names are load()'s to refuse).
    Raises:
        errors.UserError: naming the file, for a missing file or bad JSON.
    """
    return set(_file_values(path))


def load(path, base=None):
    """HParams from a JSON file of hyperparameters (a tuner's file nests them under "hparams").

    Args:
        path: the JSON file (local or a URL).
        base: the HParams the file's values change (default: HParams()).
    Returns:
        a validated HParams.
    Raises:
        errors.UserError: naming the file, for a missing file, bad JSON or a bad field.
    """
    return from_dict(_file_values(path), source=path, base=base)
