"""The error vocabulary: one kind of error for user mistakes, worded the same way everywhere.

Library code names its own arguments and file fields (`strategy: expected one of ...`); the
command runner (avsdn_tf/cli.py, run_main) shows an argument that is one of the command's flags as
the flag (`--strategy: expected one of ...`), so library errors read right both in code and on the
command line. Inside a message, an argument written in backticks (`` `learning_rate` ``,
`` `include_noisy=False` ``) is shown the same way: `--learning_rate`, `--noinclude_noisy`.
"""


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


def one_line(error):
    """The whole message of another library's exception, on one line, to quote inside ours.

    Args:
        error: an exception (its type is named when it has no message) or a message.
    Returns:
        str: every line of the message joined by single spaces, nothing cut off (a cut Keras
        message read "If you trust the )").
    """
    text = str(error)
    if not text and isinstance(error, BaseException):
        return type(error).__name__
    return " ".join(text.split())
