"""What a user sees while a Beam runner extracts: one progress line and no library INFO pages.

Every runner's workers drop one small marker file per video they finish into a directory of the
job's staging directory (MARKERS_DIR); the driver counts them (watch) and prints "videos done
of total", so the line reads the same on the DirectRunner, the DaskRunner or a remote cluster
whose workers write into the same storage. quiet_logs keeps Beam's, Dask's and TensorFlow's
INFO records off the terminal unless the command was asked for them (absl's --verbosity 1), and
runner_log sends what the worker processes started here print to a log file.
"""

import contextlib
import logging
import os
import sys
import tempfile
import threading
import time

import tensorflow as tf

from avsdn_tf import fileio

MARKERS_DIR = "done"  # in the staging directory: one file per video finished (or skipped)
POLL_SECONDS = 1.0
# Loggers whose INFO lines are the runners' bookkeeping (stages, bundles, connections).
QUIET_LOGGERS = ("apache_beam", "distributed", "dask", "tornado", "bokeh", "tensorflow")


def marker_path(staging, index):
    """The marker of video `index` (its position in the job's list) under staging/MARKERS_DIR."""
    return os.path.join(staging, MARKERS_DIR, f"{index:08d}.json")


def make_staging(staging):
    """Make the job's staging directory and its MARKERS_DIR (before the job starts: a worker
    still running after its job failed must not make them again once they are removed)."""
    tf.io.gfile.makedirs(os.path.join(staging, MARKERS_DIR))


def write_marker(staging, index, value):
    """Write video `index`'s marker (a JSON object, atomically; a retried video rewrites it)."""
    fileio.write_json(marker_path(staging, index), value)


def count_markers(staging):
    """The number of videos whose marker exists (0 before the first)."""
    directory = os.path.join(staging, MARKERS_DIR)
    if not tf.io.gfile.isdir(directory):
        return 0
    return sum(name.endswith(".json") for name in tf.io.gfile.listdir(directory))


# The workers' own lines (a video extracted; a video skipped, which skipped.json and the
# summary report): on the terminal only when asked for, also when a worker runs in this process.
WORKER_LOGGERS = ("avsdn_tf.features.beam_pipeline", "avsdn_tf.features.dask_pipeline")


@contextlib.contextmanager
def quiet_logs(verbose_logs=False, level=logging.WARNING, names=QUIET_LOGGERS):
    """Within the block, the runners' loggers (`names`) pass `level` and above only, and the
    workers' (WORKER_LOGGERS) errors only.

    Args:
        verbose_logs: True leaves every level as it is (e.g. absl --verbosity 1 asked for them).
        level: the lowest level shown. names: the loggers.
    """
    if verbose_logs:
        yield
        return
    levels = {**{name: level for name in names}, **dict.fromkeys(WORKER_LOGGERS, logging.ERROR)}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, quiet in levels.items():
        logging.getLogger(name).setLevel(quiet)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def runner_log(verbose_logs=False):
    """Within the block, file descriptor 2 (stderr) of this process, and so of every worker
    process the runner starts here, goes to a log file: Beam's SDK worker processes configure
    their own logging and print INFO lines that no option of this process reaches.

    Args:
        verbose_logs: True leaves stderr alone (yields None).
    Yields:
        the log file's path (in the temporary directory); it is removed when the block ends,
        unless it ends with an error whose message names the file.
    """
    if verbose_logs:
        yield None
        return
    sys.stderr.flush()
    handle = tempfile.NamedTemporaryFile(prefix="avsdn_tf-extract-", suffix=".log", delete=False)
    saved = os.dup(2)
    os.dup2(handle.fileno(), 2)
    named = False
    try:
        yield handle.name
    except BaseException as error:
        named = handle.name in str(error)
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        handle.close()
        if not named:
            os.remove(handle.name)


class _Watcher(threading.Thread):
    def __init__(self, staging, total, runner, out):
        super().__init__(daemon=True)
        self._staging, self._total, self._runner, self._out = staging, total, runner, out
        self._ended, self._shown, self._begun = threading.Event(), -1, time.time()
        self._terminal = out.isatty()

    def show(self, final=False):
        done = count_markers(self._staging)
        if done == self._shown and not final:
            return
        self._shown = done
        line = (
            f"extract: {done} of {self._total} videos done on {self._runner},"
            f" {time.time() - self._begun:.0f} s"
        )
        if self._terminal:
            print("\r" + line.ljust(79), end="\n" if final else "", file=self._out, flush=True)
        else:
            print(line, file=self._out, flush=True)

    def run(self):
        while not self._ended.wait(POLL_SECONDS):
            try:
                self.show()
            except Exception:  # storage hiccups must not end the job; the next poll retries
                continue

    def finish(self, succeeded):
        self._ended.set()
        self.join()
        if succeeded:
            self.show(final=True)
        elif self._terminal:
            print(file=self._out, flush=True)


@contextlib.contextmanager
def watch(staging, total, runner, verbose=True, out=None):
    """Print "extract: K of N videos done on RUNNER, S s" while the block runs the job.

    A line when K changes (a terminal's line is rewritten in place), polled every POLL_SECONDS
    from the markers under `staging`; the last line once the block has ended without error.

    Args:
        staging: the job's staging directory (MARKERS_DIR inside it).
        total: N, the videos the job was given. runner: the runner's name, for the line.
        verbose: False prints nothing. out: the stream (default sys.stdout).
    """
    if not verbose:
        yield
        return
    watcher = _Watcher(staging, total, runner, out or sys.stdout)
    watcher.start()
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        watcher.finish(succeeded)
