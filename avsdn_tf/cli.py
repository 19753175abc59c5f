"""The commands' shared flags, each defined once, and the hyperparameter flags made from HParams.

A command module defines the flags it takes with `define(...)` (shared ones by name, with the
default help or its own) and `define_hparams(...)` (flags generated from HParams fields, None
unless given, so --hparams_file and the defaults show through), and runs its main through
errors.run_main, which shows an error about a library argument that is also one of the
command's flags under the flag's name (`strategy: ...` becomes `--strategy: ...`).
"""

import sys

from absl import flags
from absl.flags import _helpers

from avsdn_tf import constants, hparams

FLAGS = flags.FLAGS
# absl files a flag under the module that defined it, and a command's --help lists its own
# module's flags: frames of this module are skipped (as absl skips its own), so a flag defined
# here belongs to the command that asked for it.
_helpers.disclaim_module_ids.add(id(sys.modules[__name__]))
_D = hparams.HParams()

# name -> (definer, default, help[, keyword arguments]). The help is the default one; a command may
# give its own.
SHARED = {
    "data_dir": (
        flags.DEFINE_string,
        None,
        (
            "Data directory (prepare / synthesize / extract output). "
            "Default: the built-in synthetic data set."
        ),
    ),
    "model_dir": (
        flags.DEFINE_string,
        None,
        "Run directory written by train (config.json, checkpoints/).",
    ),
    "output_dir": (flags.DEFINE_string, None, "Where the command's output goes."),
    "checkpoint": (flags.DEFINE_enum, "best", "The best-on-val checkpoint or the last epoch's."),
    "strategy": (
        flags.DEFINE_enum,
        "auto",
        (
            "tf.distribute strategy: auto (MirroredStrategy over several "
            "GPUs, else the default), default, mirrored, multi_worker (TF_CONFIG)."
        ),
    ),
    "max_videos": (
        flags.DEFINE_integer,
        None,
        "Use at most this many videos per split (quick runs).",
    ),
    "hparams_file": (
        flags.DEFINE_string,
        None,
        (
            "JSON file of hyperparameters (tuning writes "
            "best_hparams.json); hyperparameter flags given explicitly override it."
        ),
    ),
    "videos_per_shard": (
        flags.DEFINE_integer,
        256,
        "Videos per TFRecord shard.",
        {"lower_bound": 1},
    ),
    "labels": (
        flags.DEFINE_string,
        None,
        "Labels: extract's CSV (video_id,category,start,end) or an AVE annotation file.",
    ),
    "split": (flags.DEFINE_string, "test", "Split name."),
    "wait": (
        flags.DEFINE_bool,
        False,
        (
            "If another process writes the command's output, wait for it to end instead of "
            "refusing (the lock file names its pid and host; a dead holder's lock on this host "
            "is taken over; no lock on gs:// or s3://: run one writer there)."
        ),
    ),
}
_ENUMS = {"checkpoint": ["best", "last"], "strategy": list(constants.STRATEGIES)}


def define(*names, flag_values=FLAGS, **overrides):
    """Define shared flags by name.

    Args:
        names: keys of SHARED.
        flag_values: the FlagValues to define them in.
        overrides: name=(default, help) or name=help, for a command whose default or help differs
            (a name given only here is defined too).
    """
    for name in [*names, *(key for key in overrides if key not in names)]:
        definer, default, help_text, *extra = SHARED[name]
        options = extra[0] if extra else {}
        override = overrides.get(name)
        if isinstance(override, tuple):
            default, help_text = override
        elif override is not None:
            help_text = override
        if name in _ENUMS:
            definer(name, default, _ENUMS[name], help_text, flag_values=flag_values, **options)
        else:
            definer(name, default, help_text, flag_values=flag_values, **options)


def define_hparams(names=None, flag_values=FLAGS, helps=None):
    """Flags made from HParams fields (default None: --hparams_file and the defaults show through).

    Args:
        names: the fields to make flags of; default every field.
        flag_values: the FlagValues to define them in.
        helps: name -> help text, for a command whose meaning of a field is narrower.
    """
    for name in names or list(hparams.FIELDS):
        default = getattr(_D, name)
        help_text = f"{(helps or {}).get(name, hparams.HELP[name])} Default {default!r}."
        if name in hparams.CHOICES:
            flags.DEFINE_enum(
                name, None, list(hparams.CHOICES[name]), help_text, flag_values=flag_values
            )
        elif isinstance(default, bool):
            flags.DEFINE_bool(name, None, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, None, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(name, None, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, None, help_text, flag_values=flag_values)


def hparams_from_flags(names=None, flag_values=FLAGS, model=None):
    """HParams from the command line: defaults (with the model's own, hparams.MODEL_DEFAULTS), then
    --hparams_file (when the command has it), then the hyperparameter flags given.

    Args:
        names: the HParams fields the command has flags for (default: all).
        flag_values: the parsed FlagValues.
        model: the model a command without --model runs (e.g. experiments' cross_modal table):
            its own defaults apply under the file and flags, whatever model the file names;
            default: the file's model, else the common default.
    Returns:
        a validated HParams.
    Raises:
        errors.UserError: naming the file or "command-line flags" for a bad value.
    """
    path = getattr(flag_values, "hparams_file", None) if "hparams_file" in flag_values else None
    base = hparams.load(path) if path else hparams.HParams()
    given = {
        name: flag_values[name].value
        for name in names or list(hparams.FIELDS)
        if name in flag_values and flag_values[name].value is not None
    }
    model = given.get("model", model or base.model)
    if model in hparams.MODEL_DEFAULTS:  # the model's own defaults, under the file and flags
        defaults = hparams.for_model(model)
        base = hparams.load(path, base=defaults) if path else defaults
    return hparams.from_dict(given, source="command-line flags", base=base)
