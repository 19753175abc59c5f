"""The search space: which HParams fields each registered model uses, their ranges, and overrides.

Every searched name is an avsdn_tf HParams field, so a sample of the space maps onto HParams by
name and trains through avsdn_tf.training like any other run. The architecture fields a model
ignores are not searched for it (tests/tuning/test_tuning.py checks this table against the
builders).
"""

import dataclasses
import json

from avsdn_tf import constants, fileio, hparams
from avsdn_tf.errors import argument_error, input_error
from avsdn_tf.models import registry

AVSDN_FAMILY = ("avsdn", "avsdn_init_visual", "avsdn_init_audio", "avsdn_label_guided")

# The architecture fields each builder in avsdn_tf.models reads. AVSDN's decoder LSTM has the
# encoder's width (it starts from the encoder state), so encoder_units sizes both.
ARCHITECTURE = {
    "avsdn": ("encoder_units", "fusion_units", "visual_reduction", "attention_units"),
    "avsdn_init_visual": ("encoder_units", "visual_reduction", "attention_units"),
    "avsdn_init_audio": ("encoder_units", "visual_reduction", "attention_units"),
    "avsdn_label_guided": ("encoder_units", "fusion_units", "visual_reduction", "attention_units"),
    "audio": ("lstm_units", "classifier_units"),
    "visual": ("lstm_units", "classifier_units"),
    "av": ("lstm_units", "classifier_units"),
    "av_att": ("lstm_units", "classifier_units", "attention_units"),
    "dmrn": ("lstm_units", "fusion_units", "attention_units"),
}
ARCHITECTURE_FIELDS = (
    "encoder_units",
    "fusion_units",
    "lstm_units",
    "classifier_units",
    "attention_units",
    "visual_reduction",
)
# Set by flags (or the base hyperparameters file), never searched.
NOT_SEARCHABLE = ("model", "epochs", "seed", "supervision")
DEFAULTS = hparams.HParams().to_dict()
# name -> (parent, values of the parent under which the name is active)
CONDITIONS = {
    "lr_decay_epochs": ("lr_schedule", ("step",)),
    "lr_decay_rate": ("lr_schedule", ("step",)),
    "attention_units": ("visual_reduction", ("attention",)),
}


@dataclasses.dataclass(frozen=True)
class Param:
    """One searched HParams field: a list of choices, or a numeric range."""

    name: str
    values: tuple = ()
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None
    sampling: str = "linear"
    parent: str | None = None
    parent_values: tuple = ()

    @property
    def is_range(self):
        return self.min_value is not None

    def possible_values(self):
        """The choices, or None for a range."""
        return None if self.is_range else self.values

    def declare(self, hp):
        """Register this parameter in a keras_tuner HyperParameters; its value, or None if inactive.

        Args:
            hp: a keras_tuner.HyperParameters; a conditional parameter is declared in the scope
                of its parent's activating values.
        Returns:
            the sampled value (int, float, str or bool), or None while the parent does not
            activate it.
        """
        if self.parent is None:
            return self._declare(hp)
        with hp.conditional_scope(self.parent, list(self.parent_values)):
            return self._declare(hp)

    def _declare(self, hp):
        if self.is_range:
            if isinstance(DEFAULTS[self.name], int):
                return hp.Int(
                    self.name,
                    int(self.min_value),
                    int(self.max_value),
                    step=int(self.step or 1),
                    sampling=self.sampling,
                )
            return hp.Float(
                self.name,
                float(self.min_value),
                float(self.max_value),
                step=self.step,
                sampling=self.sampling,
            )
        if len(self.values) == 1:
            return hp.Fixed(self.name, self.values[0])
        return hp.Choice(self.name, list(self.values))

    def to_json(self):
        if self.is_range:
            value = {"min": self.min_value, "max": self.max_value, "sampling": self.sampling}
            if self.step is not None:
                value["step"] = self.step
        else:
            value = {"values": list(self.values)}
        if self.parent:
            value["when"] = {self.parent: list(self.parent_values)}
        return {"name": self.name, **value}


def _decay_epochs(epochs):
    """Step-decay periods to try: about a quarter, a half and three quarters of the epochs."""
    return tuple(sorted({max(1, round(epochs * fraction)) for fraction in (0.25, 0.5, 0.75)}))


def default_ranges(epochs):
    """Every searchable field's default range, in declaration order (parents before children).

    Args:
        epochs: the epochs per trial (lr_decay_epochs tries about 1/4, 1/2 and 3/4 of them).
    Returns:
        dict field name -> Param.
    """
    return {
        "encoder_units": Param("encoder_units", (64, 128, 256)),
        "fusion_units": Param("fusion_units", (128, 256, 512)),
        "lstm_units": Param("lstm_units", (64, 128, 256)),
        "classifier_units": Param("classifier_units", (32, 64, 128)),
        "visual_reduction": Param("visual_reduction", ("pool", "attention")),
        "attention_units": Param("attention_units", (128, 256, 512)),
        "dropout": Param("dropout", min_value=0.0, max_value=0.5, step=0.1),
        "learning_rate": Param("learning_rate", min_value=1e-4, max_value=1e-2, sampling="log"),
        "lr_schedule": Param("lr_schedule", ("constant", "step", "cosine")),
        "lr_decay_epochs": Param("lr_decay_epochs", _decay_epochs(epochs)),
        "batch_size": Param("batch_size", (16, 32, 64)),
    }


def searched_by_default(model, visual_layout):
    """The fields searched for `model` unless a space file says otherwise.

    Args:
        model: a key of ARCHITECTURE (a registered model name).
        visual_layout: the data's visual layout (constants.LAYOUT_MAP searches the attention
            fields too, for the AVSDN family also visual_reduction).
    Returns:
        list of field names: the model's architecture units, then dropout, learning_rate,
        lr_schedule, lr_decay_epochs, batch_size.
    """
    used = ARCHITECTURE[model]
    names = [
        name
        for name in ("encoder_units", "fusion_units", "lstm_units", "classifier_units")
        if name in used
    ]
    if visual_layout == constants.LAYOUT_MAP:
        if model in AVSDN_FAMILY:
            names += ["visual_reduction", "attention_units"]
        elif "attention_units" in used:  # av_att, dmrn: always attention on maps
            names.append("attention_units")
    return names + ["dropout", "learning_rate", "lr_schedule", "lr_decay_epochs", "batch_size"]


def _parse_entry(name, entry, source):
    """A space-file entry: [choices], a single value, or {"min", "max", "step", "sampling"}."""
    if isinstance(entry, dict):
        unknown = sorted(set(entry) - {"min", "max", "step", "sampling"})
        if unknown or "min" not in entry or "max" not in entry:
            raise input_error(
                f"{source} field {name!r}",
                'a list of values, one value, or {"min", "max"} with '
                'optional "step" and "sampling" (linear | log)',
                json.dumps(entry),
            )
        if entry.get("sampling", "linear") not in ("linear", "log"):
            raise input_error(
                f"{source} field {name!r}.sampling", "linear or log", repr(entry["sampling"])
            )
        if isinstance(DEFAULTS[name], (bool, str)):
            raise input_error(
                f"{source} field {name!r}",
                "a list of values (it is not numeric)",
                json.dumps(entry),
            )
        if not entry["min"] < entry["max"]:
            raise input_error(f"{source} field {name!r}", "min below max", json.dumps(entry))
        param = Param(
            name,
            min_value=entry["min"],
            max_value=entry["max"],
            step=entry.get("step"),
            sampling=entry.get("sampling", "linear"),
        )
        checked = (entry["min"], entry["max"])
    else:
        values = tuple(entry) if isinstance(entry, list) else (entry,)
        if not values or len(set(map(repr, values))) != len(values):
            raise input_error(
                f"{source} field {name!r}", "a non-empty list of distinct values", json.dumps(entry)
            )
        param = Param(name, values)
        checked = values
    for value in checked:  # each value must make valid HParams, or the trial would fail later
        hparams.from_dict({name: value}, source=source)
    return param


def read_space_file(path):
    """The overrides of a search-space file (parsed by build).

    Args:
        path: a JSON file holding an object {field: [choices] | value | {"min", "max", ...}}.
    Returns:
        dict, the file's object.
    Raises:
        errors.UserError: when the file is not found, is not JSON, or holds no object.
    """
    return fileio.read_json_object(
        path, "search space file", "a JSON object of hyperparameter ranges"
    )


def build(model, visual_layout, epochs, overrides=None, source="search space"):
    """The ordered list of Params for `model`: the defaults, then the overrides (a space file)."""
    if model not in registry.names(tunable=True):
        raise argument_error("model", f"one of {registry.names(tunable=True)}", repr(model))
    overrides = dict(overrides or {})
    for name in overrides:
        if name not in hparams.FIELDS:
            raise input_error(
                source, f"hyperparameter names from {sorted(hparams.FIELDS)}", f"unknown {name!r}"
            )
        if name in NOT_SEARCHABLE:
            raise input_error(
                f"{source} field {name!r}",
                f"a searchable name (not one of {NOT_SEARCHABLE}: those come from the flags)",
                repr(name),
            )
        if name in ARCHITECTURE_FIELDS and name not in ARCHITECTURE[model]:
            raise input_error(
                f"{source} field {name!r}",
                f"a field model {model!r} uses (architecture: {list(ARCHITECTURE[model])})",
                f"{name!r}, which {model!r} ignores",
            )
    ranges = default_ranges(epochs)
    names = searched_by_default(model, visual_layout)
    names += [name for name in overrides if name not in names]
    params = {}
    for name in sorted(names, key=lambda n: list(ranges).index(n) if n in ranges else len(ranges)):
        param = _parse_entry(name, overrides[name], source) if name in overrides else ranges[name]
        params[name] = param
    # Conditions: a child is searched only while its parent can take the value that activates it.
    result = []
    for name, param in params.items():
        parent, active = CONDITIONS.get(name, (None, ()))
        if parent in params:  # a parent that is not searched (fixed by the model) does not gate it
            choices = params[parent].possible_values() or ()
            if not set(active) & set(choices):
                continue  # the parent never takes a value that activates it
            if len(choices) > 1:
                param = dataclasses.replace(param, parent=parent, parent_values=active)
        result.append(param)
    return result
