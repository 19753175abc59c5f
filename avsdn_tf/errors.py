"""One kind of error for user mistakes, and the wrapper that turns it into one clear message.

Library code names its own arguments and file fields (`strategy: expected one of ...`); the
command wrapper `run_main` shows an argument that is one of the command's flags as the flag
(`--strategy: expected one of ...`), so library errors read right both in code and on the
command line. Inside a message, an argument written in backticks (`` `learning_rate` ``,
`` `include_noisy=False` ``) is shown the same way: `--learning_rate`, `--noinclude_noisy`.
"""

import re
import sys
import traceback

# `name` or `name=value` inside a message: an argument a command may show as its flag.
_ARGUMENT_REFERENCE = re.compile(r"`([a-z][a-z0-9_]*)(?:=([^`]*))?`")


class UserError(Exception):
    """A mistake in the user's input: a message naming the file or field, expected and found.

    argument: the name of the function argument the message starts with, if it is about one.
    """

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument


def input_error(source, expected, found):
    """A UserError worded the same way everywhere: where, what was expected, what was found.

    Args:
        source: the file, field or argument the mistake is in.
        expected: what should be there.
        found: what is there.
    Returns:
        UserError("SOURCE: expected EXPECTED, found FOUND"), to raise.
    """
    return UserError(f"{source}: expected {expected}, found {found}")


def argument_error(argument, expected, found, detail=""):
    """input_error about a function argument (shown as --argument by a command that has that flag).

    Args:
        argument: the argument's name.
        expected: what it should be.
        found: what it is.
        detail: more words after the argument's name (e.g. its value: "strategy multi_worker").
    Returns:
        a UserError with `argument` set, to raise.
    """
    where = f"{argument} {detail}" if detail else argument
    return UserError(f"{where}: expected {expected}, found {found}", argument=argument)


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
    if argument and argument in flag_values and message.startswith(argument):
        message = f"--{message}"

    def as_flag(match):
        name, value = match.groups()
        if name not in flag_values:
            return match.group(0)
        if value is None:
            return f"--{name}"
        if value in ("False", "True") and isinstance(flag_values[name].value, bool):
            return f"--{name}" if value == "True" else f"--no{name}"
        return f"--{name}={value}"

    return _ARGUMENT_REFERENCE.sub(as_flag, message)


def _use_flag_filesystems(flag_values):
    """Make the filesystem of every storage URL given as a flag available (remote.py)."""
    from avsdn_tf import remote

    for name, value in sorted(flag_values.flag_values_dict().items()):
        values = value if isinstance(value, list | tuple) else [value]
        for path in remote.storage_paths(values):
            remote.use_filesystem(path, f"--{name}")


def run_main(main, flag_values=None):
    """Wrap an absl main: a UserError prints one line on stderr and exits with status 2.

    Storage URLs among the flags get their filesystem first (s3:// needs tensorflow-io), and the
    process ends through remote.exit_process, which keeps the exit status once tensorflow-io's S3
    client was used (it would otherwise abort at exit with status 134).

    Args:
        main: the command's main(argv).
        flag_values: the command's FlagValues (default: absl's global flags).
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
        from absl import flags

        from avsdn_tf import remote

        values = flag_values or flags.FLAGS
        user_error = False
        try:
            _use_flag_filesystems(values)
            status = main(argv)
        except UserError as error:
            print(f"error: {message_for_command(error, values)}", file=sys.stderr)
            status, user_error = 2, True
        except SystemExit as stop:
            status = stop.code
        except BaseException as error:
            if not remote.tensorflow_io_loaded():
                raise
            traceback.print_exc()  # what the interpreter prints for an uncaught exception
            status = 130 if isinstance(error, KeyboardInterrupt) else 1
        if user_error or remote.tensorflow_io_loaded():
            remote.exit_process(status)  # sys.exit(status) unless tensorflow-io is loaded
        return status  # app.run exits with it

    return wrapped
