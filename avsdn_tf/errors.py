"""One kind of error for user mistakes, and the wrapper that turns it into one clear message.

Library code names its own arguments and file fields (`strategy: expected one of ...`); the
command wrapper `run_main` shows an argument that is one of the command's flags as the flag
(`--strategy: expected one of ...`), so library errors read right both in code and on the
command line.
"""

import sys


class UserError(Exception):
    """A mistake in the user's input: a message naming the file or field, expected and found.

    argument: the name of the function argument the message starts with, if it is about one.
    """

    def __init__(self, message, argument=None):
        super().__init__(message)
        self.argument = argument


def input_error(source, expected, found):
    """A UserError worded the same way everywhere: where, what was expected, what was found."""
    return UserError(f"{source}: expected {expected}, found {found}")


def argument_error(argument, expected, found, detail=""):
    """input_error about a function argument (shown as --argument by a command that has that flag).

    detail: more words after the argument's name (e.g. its value: "strategy multi_worker").
    """
    where = f"{argument} {detail}" if detail else argument
    return UserError(f"{where}: expected {expected}, found {found}", argument=argument)


def message_for_command(error, flag_values):
    """The error's message; an argument that is one of the command's flags is shown as the flag."""
    message = str(error)
    argument = getattr(error, "argument", None)
    if argument and argument in flag_values and message.startswith(argument):
        return f"--{message}"
    return message


def run_main(main, flag_values=None):
    """Wrap an absl main so a UserError prints one line on stderr and exits with status 2."""

    def wrapped(argv):
        try:
            return main(argv)
        except UserError as error:
            from absl import flags

            print(f"error: {message_for_command(error, flag_values or flags.FLAGS)}", file=sys.stderr)
            sys.exit(2)

    return wrapped
