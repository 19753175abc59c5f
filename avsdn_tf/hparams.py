"""Hyperparameters: defaults, loading from a JSON file (the tuner writes one), validation."""

import dataclasses

from avsdn_tf import fileio
from avsdn_tf.errors import input_error


@dataclasses.dataclass
class HParams:
    model: str = "avsdn"
    supervision: str = "full"  # full: segment labels; weak: video labels only
    epochs: int = 12
    batch_size: int = 64  # per replica; the global batch scales with the replicas
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"  # constant | step | cosine
    lr_decay_epochs: int = 10  # step schedule: multiply by lr_decay_rate every this many epochs
    lr_decay_rate: float = 0.1
    encoder_units: int = 128  # AVSDN encoder and decoder LSTMs (the decoder takes the encoder state)
    fusion_units: int = 256  # hidden width of the fusion MLPs U_a, U_v
    lstm_units: int = 128  # AVEL baselines: units of each BiLSTM direction
    classifier_units: int = 64  # AVEL baselines: hidden width of the classifier
    attention_units: int = 512  # audio-guided attention: width of v' and a'
    visual_reduction: str = "pool"  # maps only: pool (global average) | attention (AVEL)
    dropout: float = 0.0
    weak_pooling: str = "mean"  # mean (AVSDN paper) | max (AVEL code)
    guide_loss_weight: float = 1.0  # avsdn_label_guided: weight of each encoder's video-label loss
    early_stopping_patience: int = 0  # epochs without val improvement before stopping; 0 = never
    unroll: bool = True  # unroll the short fixed-length LSTMs (faster on CPU)
    jit_compile: bool = False
    steps_per_execution: int = 1
    cache_gb: float = 6.0  # keep decoded train + val in memory when they fit in this many GB; 0 = never
    seed: int = 0

    def validate(self, source="hyperparameters"):
        choices = {"supervision": ("full", "weak"), "lr_schedule": ("constant", "step", "cosine"),
                   "visual_reduction": ("pool", "attention"), "weak_pooling": ("mean", "max")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise input_error(f"{source} field {name!r}", f"one of {allowed}", repr(getattr(self, name)))
        for name in ("epochs", "batch_size", "encoder_units", "fusion_units", "lstm_units",
                     "classifier_units", "attention_units", "steps_per_execution", "lr_decay_epochs"):
            if int(getattr(self, name)) < 1:
                raise input_error(f"{source} field {name!r}", "a positive integer", getattr(self, name))
        if not 0.0 <= self.dropout < 1.0:
            raise input_error(f"{source} field 'dropout'", "a value in [0, 1)", self.dropout)
        if not self.cache_gb >= 0:
            raise input_error(f"{source} field 'cache_gb'", "a number >= 0", self.cache_gb)
        if not self.learning_rate > 0:
            raise input_error(f"{source} field 'learning_rate'", "a positive number", self.learning_rate)
        return self

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


FIELDS = {field.name: field.type for field in dataclasses.fields(HParams)}


def from_dict(values, source="hyperparameters", base=None):
    """HParams from a dict, over `base`; unknown names and wrong types are named in the error."""
    base = base or HParams()
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise input_error(source, f"hyperparameter names from {sorted(FIELDS)}", f"unknown {unknown}")
    changes = {}
    for name, value in values.items():
        default = getattr(base, name)
        try:
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise TypeError
                changes[name] = value
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                if isinstance(value, bool) or (isinstance(default, int) and float(value) != int(value)):
                    raise TypeError
                changes[name] = type(default)(value)
            else:
                changes[name] = str(value)
        except (TypeError, ValueError):
            raise input_error(f"{source} field {name!r}", f"a {type(default).__name__}", repr(value)) from None
    return base.replace(**changes).validate(source)


def load(path, base=None):
    values = fileio.read_json_object(path, "hyperparameter file", "a JSON object of hyperparameters")
    values = values.get("hparams", values)  # the tuner's file nests them under "hparams"
    return from_dict(values, source=path, base=base)
