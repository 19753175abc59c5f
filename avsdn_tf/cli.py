"""The command layer's one runner and shared flags.

A command module (python -m avsdn_tf.<verb>, export.export_model, export.client, tuning.tune)
defines the flags it takes with `define(...)` (shared ones by name, with the default help or its
own) and `define_hparams(...)` (flags generated from HParams fields, None unless given, so
--hparams_file and the defaults show through), and ends with `cli.run(main, required=(...))`:
absl parses the flags, the required ones are checked, and `run_main` shows an error about a
library argument that is also one of the command's flags under the flag's name (`strategy: ...`
becomes `--strategy: ...`), one line on stderr and exit status 2. A command line absl cannot
parse (an unknown flag, a bad value) is one line and exit 2 as well, and a flag renamed to the
vocabulary of docs/commands.md is still accepted under its old name (`rename_flags`) with one
deprecation line.

The same command runs as `python -m MODULE` and as `avsdn-tf VERB` (the console script,
avsdn_tf/console.py); its --help banner names the way it was run (avsdn_tf/invocation.py).
"""

import logging
import re
import signal
import sys
import threading
import traceback

from absl import app, flags
from absl.flags import _helpers

from avsdn_tf import constants, hparams, invocation, remote
from avsdn_tf.errors import Interrupted, UserError
from avsdn_tf.models import registry
from avsdn_tf.training import threads

FLAGS = flags.FLAGS
# absl files a flag under the module that defined it, and a command's --help lists its own
# module's flags: frames of this module are skipped (as absl skips its own), so a flag defined
# here belongs to the command that asked for it.
_helpers.disclaim_module_ids.add(id(sys.modules[__name__]))
_D = hparams.HParams()
# `name` or `name=value` inside a message: an argument a command may show as its flag.
_ARGUMENT_REFERENCE = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`")
# A flag on the command line: dashes, the name, and `=value` when given in one argument.
_FLAG_ARGUMENT = re.compile(r"(--?)([A-Za-z_][A-Za-z0-9_]*)(=.*)?", re.DOTALL)

# The release after which the old flag spellings (rename_flags) are no longer accepted.
RENAMED_UNTIL = "0.3"
# old flag name -> its name now, for the command being run (rename_flags).
_RENAMED = {}

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
    "output": (flags.DEFINE_string, None, "The file the command writes."),
    "saved_model": (
        flags.DEFINE_string,
        None,
        "An exported SavedModel directory (export's OUTPUT_DIR/VERSION).",
    ),
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
    "intra_op_threads": (
        flags.DEFINE_integer,
        0,
        (
            "Threads one op (e.g. a matmul) is split across; 0: the measured rule "
            "(avsdn_tf/training/threads.py): 1 on machines of up to 2 cores, TensorFlow's "
            "default (one per core) on bigger ones."
        ),
        {"lower_bound": 0},
    ),
    "inter_op_threads": (
        flags.DEFINE_integer,
        0,
        "Independent ops run side by side on this many threads; 0: the measured rule (one per "
        "core, as TensorFlow's default).",
        {"lower_bound": 0},
    ),
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


THREAD_FLAGS = ("intra_op_threads", "inter_op_threads")


def define(*names, flag_values=FLAGS, choices=None, **overrides):
    """Define shared flags by name.

    Args:
        names: keys of SHARED.
        flag_values: the FlagValues to define them in.
        choices: name -> the values an enum flag takes in this command, where they are fewer
            than the shared ones (the tuner's single-process strategies).
        overrides: name=(default, help) or name=help, for a command whose default or help differs
            (a name given only here is defined too).
    """
    enums = {**_ENUMS, **(choices or {})}
    for name in [*names, *(key for key in overrides if key not in names)]:
        definer, default, help_text, *extra = SHARED[name]
        options = extra[0] if extra else {}
        override = overrides.get(name)
        if isinstance(override, tuple):
            default, help_text = override
        elif override is not None:
            help_text = override
        if name in enums:
            definer(name, default, list(enums[name]), help_text, flag_values=flag_values, **options)
        else:
            definer(name, default, help_text, flag_values=flag_values, **options)


def configure_threads(flag_values=FLAGS):
    """Set TensorFlow's thread pools from the command's --intra_op_threads / --inter_op_threads.

    Args:
        flag_values: parsed FlagValues holding both flags (define(*THREAD_FLAGS)).
    Returns:
        (intra_op_threads, inter_op_threads) chosen: the flags, or the measured rule for a flag
        left at 0 (threads.default_threads; 0 there: TensorFlow's own default).
    """
    return threads.configure(flag_values.intra_op_threads, flag_values.inter_op_threads)


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


def given_hparams(names=None, flag_values=FLAGS):
    """The hyperparameters the command line and --hparams_file set, whatever their values.

    Args:
        names: the HParams fields the command has flags for (default: all).
        flag_values: the parsed FlagValues.
    Returns:
        set of field names (a flag given with any value, and every field the file names).
    Raises:
        errors.UserError: naming the file, when it cannot be read.
    """
    given = set(_flag_hparams(names, flag_values))
    path = _hparams_file(flag_values)
    if path:
        given |= hparams.file_fields(path)
    return given


def _flag_hparams(names, flag_values):
    """{field: value} of the hyperparameter flags given (of `names`, default all fields)."""
    return {
        name: flag_values[name].value
        for name in names or list(hparams.FIELDS)
        if name in flag_values and flag_values[name].value is not None
    }


def _hparams_file(flag_values):
    """The command's --hparams_file, or None (also for commands without that flag)."""
    return getattr(flag_values, "hparams_file", None) if "hparams_file" in flag_values else None


def hparams_from_flags(names=None, flag_values=FLAGS, model=None, run=None):
    """HParams from the command line: defaults (with the model's own for its supervision,
    registry.default_hparams; a resumed run's own instead, `run`), then --hparams_file (when the
    command has it), then the hyperparameter flags given.

    Args:
        names: the HParams fields the command has flags for (default: all).
        flag_values: the parsed FlagValues.
        model: the model a command without --model runs (e.g. experiments' cross_modal table):
            its own defaults apply under the file and flags, whatever model the file names;
            default: the file's model, else the common default.
        run: the HParams of the run being resumed (train on an existing --model_dir): the
            values under the file and flags, so only what is given is compared with the run.
    Returns:
        a validated HParams.
    Raises:
        errors.UserError: naming the file or "command-line flags" for a bad value.
    """
    path = _hparams_file(flag_values)
    base = hparams.load(path) if path else hparams.HParams()
    given = _flag_hparams(names, flag_values)
    if run is not None:
        base = hparams.load(path, base=run) if path else run
    model = given.get("model", model or base.model)
    if run is None and registry.has_defaults(
        model
    ):  # the model's own defaults, under the file and flags
        defaults = registry.default_hparams(model, given.get("supervision", base.supervision))
        base = hparams.load(path, base=defaults) if path else defaults
    return hparams.from_dict(given, source="command-line flags", base=base)


def message_for_command(error, flag_values):
    """The error's message as a command shows it: its arguments that are flags shown as flags.

    Args:
        error: the exception (a UserError names its leading argument in `error.argument`).
        flag_values: the command's absl FlagValues.
    Returns:
        str: the message, with the leading argument and every backticked `name` / `name=value`
        that is one of the command's flags written as `--name` / `--name=value` (`--noname`
        for a boolean flag set to False); other backticked names are kept as they are.
    """
    message = str(error)
    argument = getattr(error, "argument", None)
    if argument and message.startswith(argument):
        flag = _flag_name(argument, flag_values)
        if flag:
            message = f"--{flag}{message[len(argument) :]}"

    def as_flag(match):
        name, value = match.groups()
        name = _flag_name(name, flag_values)
        if not name:
            return match.group(0)
        if value is None:
            return f"--{name}"
        if value in ("False", "True") and isinstance(flag_values[name].value, bool):
            return f"--{name}" if value == "True" else f"--no{name}"
        return f"--{name}={value}"

    return _ARGUMENT_REFERENCE.sub(as_flag, message)


def _flag_name(name, flag_values):
    """The command's flag a library argument name stands for: itself, or the flag it was renamed
    to (rename_flags); None when the command has neither."""
    if name in flag_values:
        return name
    renamed = _RENAMED.get(name)
    return renamed if renamed in flag_values else None


def _use_flag_filesystems(flag_values):
    """Make the filesystem of every storage URL given as a flag available (remote.py)."""
    for name, value in sorted(flag_values.flag_values_dict().items()):
        values = value if isinstance(value, list | tuple) else [value]
        for path in remote.storage_paths(values):
            remote.use_filesystem(path, f"--{name}")


def run_main(main, flag_values=None, required=()):
    """Wrap an absl main: a UserError prints one line on stderr and exits with status 2; SIGINT
    or SIGTERM prints one line saying what was kept and how to resume (interruption_line) and
    exits with 130 or 143 (128 + the signal), the command's cleanup done (no traceback).

    Storage URLs among the flags get their filesystem first (s3:// needs tensorflow-io), and the
    process ends through remote.exit_process, which keeps the exit status once tensorflow-io's S3
    client was used (it would otherwise abort at exit with status 134).

    Args:
        main: the command's main(argv).
        flag_values: the command's FlagValues (default: absl's global flags).
        required: names of flags the command needs; one missing is the UserError
            "--NAME: expected a value, found none".
    Returns:
        a function of argv for absl's app.run.
    """

    def wrapped(argv):
        """Run `main(argv)` the way run_main describes.

        Args:
            argv: the command line absl leaves (program name first).
        Returns:
            main's exit status (2 after a UserError); may end the process itself instead.
        """
        values = flag_values or flags.FLAGS
        user_error = False
        handlers = _raise_on_signals()
        try:
            for name in required:
                if values[name].value in (None, "", []):
                    raise UserError(f"--{name}: expected a value, found none")
            _use_flag_filesystems(values)
            status = main(argv)
        except UserError as error:
            print(f"error: {message_for_command(error, values)}", file=sys.stderr)
            status, user_error = 2, True
        except app.UsageError as error:  # e.g. arguments a command does not take
            print(f"error: {error}", file=sys.stderr)
            status, user_error = 2, True
        except SystemExit as stop:
            status = stop.code
        except KeyboardInterrupt as error:
            print(interruption_line(error), file=sys.stderr)
            status, user_error = 128 + getattr(error, "signum", signal.SIGINT), True
        except BaseException as error:
            if not remote.tensorflow_io_loaded():
                raise
            traceback.print_exc()  # what the interpreter prints for an uncaught exception
            status = 130 if isinstance(error, KeyboardInterrupt) else 1
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
        if user_error or remote.tensorflow_io_loaded():
            remote.exit_process(status)  # sys.exit(status) unless tensorflow-io is loaded
        return status  # app.run exits with it

    return wrapped


# What an interrupted command keeps when it says nothing more (errors.on_interrupt).
INTERRUPTED_KEEPS = (
    "every output is written whole or not at all (nothing half-written is left); rerun the "
    "same command to go on from what was finished"
)


def interruption_line(error):
    """The one line an interrupted command prints: the signal, what was kept, how to resume.

    Args:
        error: the KeyboardInterrupt (an errors.Interrupted from the runner's handlers).
    Returns:
        str "interrupted by SIGINT: ...".
    """
    name = signal.Signals(getattr(error, "signum", signal.SIGINT)).name
    return f"interrupted by {name}: {getattr(error, 'kept', None) or INTERRUPTED_KEEPS}"


def _raise_on_signals():
    """SIGINT and SIGTERM raise errors.Interrupted in the main thread (the first one; later ones
    are ignored while the command unwinds, so its cleanup runs whole); one the process started
    with ignored stays ignored.

    Returns:
        {signal number: the handler it had}, to restore; {} outside the main thread.
    """

    def interrupt(signum, frame):
        for ignored in INTERRUPTING:
            signal.signal(ignored, signal.SIG_IGN)
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}
    # A signal ignored from the start (nohup, a shell's background job) stays ignored.
    return {
        signum: signal.signal(signum, interrupt)
        for signum in INTERRUPTING
        if signal.getsignal(signum) is not signal.SIG_IGN
    }


INTERRUPTING = (signal.SIGINT, signal.SIGTERM)


def rename_flags(**renamed):
    """Accept a command's old flag spellings for one more release (until RENAMED_UNTIL).

    The command line is rewritten before absl parses it (`--old`, `--old=V`, `--noold`), with one
    line per old spelling used on stderr; --help lists only the names of now. A library message
    naming the old name as its argument (export's `export_base`) shows the flag of now.

    Args:
        renamed: old name -> the name of the flag the command defines now.
    """
    _RENAMED.update(renamed)


def _renamed_argv(argv):
    """argv with every old flag spelling (rename_flags) under its name now; one warning each.

    Args:
        argv: the command line, program name first.
    Returns:
        list of str: the rewritten command line (arguments after a lone `--` are kept as given).
    """
    result, warned = [argv[0]], set()
    for index, argument in enumerate(argv[1:], start=1):
        if argument == "--":
            return result + list(argv[index:])
        match = _FLAG_ARGUMENT.fullmatch(argument)
        if match:
            dashes, name, value = match.groups()
            negated = name not in _RENAMED and name.startswith("no") and name[2:] in _RENAMED
            old = name[2:] if negated else name
            if old in _RENAMED:
                new = _RENAMED[old]
                argument = f"{dashes}{'no' if negated else ''}{new}{value or ''}"
                if old not in warned:
                    warned.add(old)
                    print(
                        f"warning: --{old} is deprecated, use --{new} (the old name is accepted "
                        f"until avsdn-tf {RENAMED_UNTIL})",
                        file=sys.stderr,
                    )
        result.append(argument)
    return result


def flag_error_message(error):
    """One line for a command line absl could not parse.

    Args:
        error: absl's flags.Error (an unknown flag, a bad value, a missing required flag).
    Returns:
        str: for an unknown flag `unknown flag --NAME` and the closest flag the command has,
        else absl's message on one line.
    """
    if isinstance(error, flags.UnrecognizedFlagError):
        message = f"unknown flag --{error.flagname}"
        suggestions = _helpers.get_flag_suggestions(error.flagname, list(FLAGS))  # absl's rule
        return message + (
            f" (did you mean --{suggestions[0]}?)" if suggestions else " (--help lists the flags)"
        )
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _tensorflow_lines_once():
    """Each line of TensorFlow's logger printed once, in its own format.

    A command imports TensorFlow before absl's app.run installs absl's handler on the root
    logger, so tf.get_logger gave its logger a handler of its own, and every TensorFlow warning
    was printed twice ("WARNING:tensorflow:..." and absl's "W1205 ... ]" copy). Its lines stop at
    its own handler; the levels shown still follow absl's --verbosity (the root logger's level).
    """
    logger = logging.getLogger("tensorflow")
    if logger.handlers and logging.getLogger().handlers:
        logger.propagate = False


def run(main, required=(), flags_parser=None):
    """Run a command: absl parses the flags, then run_main(main, required=required).

    Before parsing, old flag spellings are rewritten (rename_flags) and the module docstring that
    absl's --help prints names the command as it was run (banner); a command line absl cannot
    parse is one line on stderr and exit status 2.

    Args:
        main: the command's main(argv).
        required: flags the command cannot do without (run_main checks them).
        flags_parser: absl's flags_parser, for a command that parses its own way (extract).
    """
    module = sys.modules["__main__"]
    if module.__doc__:
        module.__doc__ = invocation.banner(module.__doc__, invocation.name())
    parser = flags_parser or FLAGS

    def parse(argv):  # absl's handler is installed by now
        _tensorflow_lines_once()
        try:
            return parser(_renamed_argv(argv))
        except flags.Error as error:
            print(f"error: {flag_error_message(error)}", file=sys.stderr)
            sys.exit(2)

    app.run(run_main(main, required=required), flags_parser=parse)
