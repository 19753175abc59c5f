"""Progress lines of long work (training epochs, experiment runs, tuner trials), one style.

Long work reports through a `log`: a callable taking one line. `print_line` prints it at once
(flushed, so lines show as they happen when stdout is a pipe); `log_for` picks the log of a
function that takes `verbose` and an optional `log`. Item-by-item work (the videos of a data
set) shows a Keras progress bar from `bar`.
"""

import sys


def print_line(line):
    """Print one progress line and flush it.

    Args:
        line: the text, without a final newline.
    """
    print(line, flush=True)


def _drop(line):
    del line


def log_for(verbose, log=None):
    """Where a function's progress lines go.

    Args:
        verbose: whether the caller wants progress shown (a Keras verbosity counts: 0 silent).
        log: the caller's own log (one line per call), which wins when given.
    Returns:
        `log` when given; else print_line when verbose; else a log that shows nothing.
    """
    if log is not None:
        return log
    return print_line if verbose else _drop


def step(index, total, name):
    """The prefix of a progress line about one of several pieces of work.

    Args:
        index: the piece's number, from 1. total: how many there are. name: what it is.
    Returns:
        str, "[index/total] name".
    """
    return f"[{index}/{total}] {name}"


def bar(total, verbose, unit_name):
    """A Keras progress bar over `total` items that suits where stdout goes.

    Keras redraws its bar in place even when stdout is a file or a pipe (it counts every POSIX
    system as a live display), so a log got one colour-coded line per redraw: 457 KB for an
    AVE-sized synthesize (4321 videos), 25 KB for the built-in set's 960. On a terminal the bar
    is live; elsewhere it prints one line when the work ends (172 bytes for those 960).

    Args:
        total: how many items the work has. verbose: a Keras verbosity (0 silent).
        unit_name: what an item is called ("video").
    Returns:
        a keras.utils.Progbar; call .add(n) as items finish.
    """
    import keras  # here, not at the top: the other progress lines need no TensorFlow

    if verbose and not sys.stdout.isatty():
        verbose = 2
    return keras.utils.Progbar(total, verbose=verbose, unit_name=unit_name, interval=5.0)
