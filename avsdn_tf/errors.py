"""The error vocabulary: one kind of error for user mistakes, worded the same way everywhere.

Library code names its own arguments and file fields (`strategy: expected one of ...`); the
command runner (avsdn_tf/cli.py, run_main) shows an argument that is one of the command's flags as
the flag (`--strategy: expected one of ...`), so library errors read right both in code and on the
command line. Inside a message, an argument written in backticks (`` `learning_rate` ``,
`` `include_noisy=False` ``) is shown the same way: `--learning_rate`, `--noinclude_noisy`.

An interruption (SIGINT, SIGTERM) is `Interrupted`, raised by the command runner's handlers; code
that knows what an interruption keeps says so with `on_interrupt`, and the runner prints it.
"""

import contextlib
import signal


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


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM, raised in the main thread by the command runner (cli.run_main).

    Attributes:
        signum: the signal's number. kept: what the interrupted command keeps and how to resume
            it (set by the innermost `on_interrupt` block it left), or None.
    """

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.kept = signum, None


@contextlib.contextmanager
def on_interrupt(kept):
    """A block whose interruption is reported with `kept()`, unless a block inside it said more.

    Args:
        kept: function() -> str, what stays of the work and how to resume it (called only when
            the block is interrupted, so it can read what was saved by then).
    Yields:
        None.
    """
    try:
        yield
    except KeyboardInterrupt as error:
        if getattr(error, "kept", None) is None:
            error.kept = kept()
        raise


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


def drop_tracebacks(error):
    """Clear the traceback of `error` and of every error it chains (__cause__, __context__).

    A traceback holds the frames an error passed through, and their locals: an error kept after
    it was raised inside a tf.data loop or Keras' fit (pytest.raises, a notebook's last error)
    would keep that loop's iterator alive, often in a reference cycle, until a garbage collection,
    whose teardown of the iterator can wait on tf.data's autotuning thread when the machine is
    busy (20-51 s pauses in the test suite's later tests; benchmarks/bench_early_fit_end.py: 10.9
    s after 30 s idle beside another training, 0.2 s quiet or at once). Re-raised, the error
    gathers the frames it passes through from there on.

    Args:
        error: an exception.
    Returns:
        `error`, its chain's tracebacks cleared.
    """
    chained, seen = error, set()
    while chained is not None and id(chained) not in seen:
        seen.add(id(chained))
        chained.__traceback__ = None
        chained = chained.__cause__ or chained.__context__
    return error
