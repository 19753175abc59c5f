"""File helpers on tf.io.gfile (local, gs://, s3:// alike), with all-or-nothing outputs.

A file is written under a temporary name and renamed: all-or-nothing locally and on object
stores alike (an object is copied whole). A directory is built in a staging directory and
published by `publish_directory`: one atomic rename locally; on object stores, where a directory
rename copies object after object, its objects move one by one with the completion marker last
(see remote.py and docs/data_format.md for what a reader can see meanwhile).
"""

import contextlib
import errno
import io
import json
import os
import signal
import uuid
import zipfile

import numpy as np
import tensorflow as tf

from avsdn_tf import remote
from avsdn_tf.errors import UserError, input_error

# Fault injection for the crash-consistency checks (tests/training/test_crash_consistency.py,
# benchmarks/bench_reliability.py): with KILL_AT_RENAME_ENV=N the process kills itself with SIGKILL
# right after its Nth rename; with RENAME_LOG_ENV=FILE every rename's target is appended to FILE.
KILL_AT_RENAME_ENV = "AVSDN_TF_KILL_AT_RENAME"
RENAME_LOG_ENV = "AVSDN_TF_RENAME_LOG"
# With SIGNAL_BEFORE_RENAME_ENV=SIGNAL:NAME:N (e.g. SIGINT:last.keras:2) the process sends itself
# SIGNAL before its Nth rename onto a file named NAME: the file is written in full under its
# temporary name, not yet in place (tests/training/test_interrupt.py).
SIGNAL_BEFORE_RENAME_ENV = "AVSDN_TF_SIGNAL_BEFORE_RENAME"
_renames_done = [0]
_renames_to = {}
# The names staged_directory and publish_directory give a directory beside its final path
# (OUT.partial-*, OUT.old-*); a killed run leaves them, swept at the next start (locks.py).
STAGING_SUFFIX = ".partial-"
RETIRED_SUFFIX = ".old-"


def rename(source, target, overwrite=False):
    """tf.io.gfile.rename, the one rename every atomic write of the project goes through.

    It is the write point the kill-at-every-write-point check counts (KILL_AT_RENAME_ENV), and
    where SIGNAL_BEFORE_RENAME_ENV interrupts a write.
    """
    _signal_before_rename(target)
    tf.io.gfile.rename(source, target, overwrite=overwrite)
    _renames_done[0] += 1
    log = os.environ.get(RENAME_LOG_ENV)
    if log:
        with open(log, "a") as handle:
            handle.write(f"{target}\n")
    if os.environ.get(KILL_AT_RENAME_ENV) == str(_renames_done[0]):
        os.kill(os.getpid(), signal.SIGKILL)


def _signal_before_rename(target):
    """Fault injection: the signal SIGNAL_BEFORE_RENAME_ENV names, before its rename."""
    setting = os.environ.get(SIGNAL_BEFORE_RENAME_ENV)
    if not setting:
        return
    name, file_name, number = setting.split(":")
    if os.path.basename(target) != file_name:
        return
    _renames_to[file_name] = _renames_to.get(file_name, 0) + 1
    if _renames_to[file_name] == int(number):
        os.kill(os.getpid(), signal.Signals[name])


# What a failed write needed, by errno; any other errno: "to be able to write it".
_WRITE_NEEDS = {
    errno.ENOSPC: "free space to write it",
    errno.EDQUOT: "disk quota left to write it",
    errno.EROFS: "a writable file system",
    errno.EACCES: "permission to write it",
    errno.EPERM: "permission to write it",
}


def _errno_of(error):
    """The errno of an OSError, or of a TensorFlow file error (found by its strerror text).

    Args:
        error: any exception.
    Returns:
        int errno, or None when `error` is no file-system error this module explains.
    """
    if isinstance(error, OSError):
        return error.errno
    if isinstance(error, tf.errors.OpError):  # tf.io.gfile: "PATH; No space left on device"
        for number in _WRITE_NEEDS:
            if os.strerror(number) in error.message:
                return number
    return None


def write_error(path, error):
    """The UserError for an OSError (or TensorFlow's version of one) met while writing `path`.

    Args:
        path: the output the user asked for (the file or directory being written).
        error: the OSError or tf.errors.OpError.
    Returns:
        errors.UserError "PATH: expected free space to write it, found No space left on device
        (ENOSPC)" (and the like for EROFS, EACCES, ...), or None when `error` is not a
        file-system error (it is then not this module's to explain).
    """
    number = _errno_of(error)
    if number is None:
        if not isinstance(error, OSError):
            return None
        return input_error(path, "to be able to write it", str(error))
    found = f"{os.strerror(number)} ({errno.errorcode.get(number, number)})"
    return input_error(path, _WRITE_NEEDS.get(number, "to be able to write it"), found)


@contextlib.contextmanager
def writing(path, temporary=None):
    """A block that writes `path`: any failure removes `temporary`; a file-system error (disk
    full, read-only, no permission, ...) becomes one UserError naming `path` (write_error).

    Args:
        path: the output being written, as the message names it.
        temporary: a file or directory the block writes first, removed on any failure (None:
            nothing to remove).
    Yields:
        None.
    Raises:
        errors.UserError: for an OSError, or a tf.io.gfile error of a known errno.
    """
    try:
        yield
    except BaseException as error:
        if temporary is not None:
            with contextlib.suppress(OSError, tf.errors.OpError):
                remove_tree(temporary)
        user_error = write_error(path, error) if isinstance(error, Exception) else None
        if user_error is None:
            raise
        raise user_error from None


def temporary_name(path, suffix=""):
    """A fresh temporary name beside `path`: PATH.tmp-XXXXXXXX, or with a suffix kept last
    (best.keras -> best.tmp-XXXXXXXX.keras, for writers that insist on the extension).

    Args:
        path: the final path.
        suffix: the extension to keep at the end ("" for none); `path` must end with it.
    Returns:
        str, the temporary path.
    """
    stem = path[: len(path) - len(suffix)] if suffix else path
    return f"{stem}.tmp-{uuid.uuid4().hex[:8]}{suffix}"


@contextlib.contextmanager
def atomic_file(path, suffix=""):
    """Yield a temporary path to write; when the block ends it is renamed to `path`.

    All-or-nothing: on any failure the temporary is removed and `path` keeps its old content;
    a file-system error ends in one UserError naming `path` (writing()).

    Args:
        path: the file (local path or storage URL).
        suffix: an extension the temporary must keep last (temporary_name).
    Yields:
        str, the temporary path to write.
    Raises:
        errors.UserError: for a full disk, a read-only file system, a missing permission, ...
    """
    temporary = temporary_name(path, suffix)
    with writing(path, temporary):
        yield temporary
        rename(temporary, path, overwrite=True)


def make_directories(path):
    """tf.io.gfile.makedirs, with a file-system error as one UserError naming `path`.

    Args:
        path: the directory (local path or storage URL); its parents are made too.
    Raises:
        errors.UserError: for a read-only file system, a missing permission, ...
    """
    with writing(path):
        tf.io.gfile.makedirs(path)


def write_json(path, value):
    """Write JSON under a temporary name and rename it, so readers never see half a file.

    Args:
        path: the file (local path or storage URL).
        value: a JSON-serialisable value, written indented with sorted keys.
    Raises:
        errors.UserError: for a file-system error (atomic_file); nothing is left behind.
    """
    write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def read_json(path):
    """The JSON value of a file.

    Args:
        path: the file (local path or storage URL).
    Returns:
        the parsed value.
    """
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)


def read_json_object(path, what, expected):
    """A user's JSON file that must hold an object; one clear UserError otherwise.

    `what` names the file in the not-found message ("hyperparameter file"); `expected` says what
    it should hold ("a JSON object of hyperparameters").

    Args:
        path: the file (local path or storage URL).
        what: what the file is, for the not-found message.
        expected: what it should hold, for the other messages.
    Returns:
        dict, the object.
    Raises:
        errors.UserError: when the file does not exist, is not valid JSON or holds no object.
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path}: {what} not found")
    try:
        with tf.io.gfile.GFile(path) as handle:
            value = json.load(handle)
    except json.JSONDecodeError as error:
        raise input_error(path, expected, f"invalid JSON ({error})") from None
    if not isinstance(value, dict):
        raise input_error(path, expected, type(value).__name__)
    return value


PICKLED = "a pickled object array"  # what read_arrays reports for a file it will not unpickle


def read_arrays(path, expected):
    """The arrays of a NumPy .npz or .npy file, read whole and never unpickled (a pickle runs code).

    Args:
        path: the file (local path or storage URL).
        expected: what the file should hold, for the error messages ("an .npz with arrays ...").
    Returns:
        dict array name -> np.ndarray for an .npz; the np.ndarray of an .npy.
    Raises:
        errors.UserError: naming `path`, for a file holding a pickled object array (found:
            PICKLED and the array's name) or one NumPy cannot read.
    """
    name = None  # the .npz array being read
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            stored = io.BytesIO(handle.read())  # one read, not a range request per zip entry
        loaded = np.load(stored, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        arrays = {}
        with loaded:
            for name in loaded.files:
                arrays[name] = loaded[name]
        return arrays
    except ValueError as error:
        if "Object arrays" in str(error):  # np.save / np.savez of objects: pickled inside
            found = PICKLED + (f" (array {name!r})" if name is not None else "")
        elif stored.getvalue().startswith(b"\x80"):  # a pickle's protocol byte
            found = "a pickle, not a NumPy file"
        else:  # NumPy takes any other content for a pickle
            raise input_error(path, expected, "a file that is not a NumPy .npy or .npz") from None
        raise input_error(
            path,
            f"{expected} (plain numeric arrays)",
            f"{found}; it is not loaded, as unpickling can run code: save plain arrays"
            " (np.savez(path, name=array, ...))",
        ) from None
    except (OSError, EOFError, zipfile.BadZipFile, tf.errors.OpError) as error:
        raise input_error(path, expected, f"unreadable ({error})") from None


def write_text(path, text):
    """Write text under a temporary name and rename it, so readers never see half a file.

    Args:
        path: the file (local path or storage URL).
        text: str, written as it is.
    Raises:
        errors.UserError: for a file-system error (atomic_file); nothing is left behind.
    """
    with atomic_file(path) as temporary, tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(text)


def write_png(path, figure, dpi):
    """Save a matplotlib figure as a PNG under a temporary name and rename it (atomic_file).

    Args:
        path: the PNG file (local path or storage URL).
        figure: a matplotlib Figure.
        dpi: its resolution.
    Raises:
        errors.UserError: for a file-system error; nothing is left behind.
    """
    with atomic_file(path) as temporary, tf.io.gfile.GFile(temporary, "wb") as handle:
        figure.savefig(handle, format="png", dpi=dpi)


def remove_tree(path):
    """Remove a file or a directory tree; nothing when `path` does not exist.

    Args:
        path: local path or storage URL.
    """
    if tf.io.gfile.exists(path):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)


def _files_under(root):
    """Paths of every file under `root`, relative to it."""
    found = []
    for directory, _, files in tf.io.gfile.walk(root):
        relative = os.path.relpath(directory.rstrip("/"), root.rstrip("/"))
        found += [name if relative == "." else os.path.join(relative, name) for name in files]
    return sorted(found)


def publish_directory(staging, final_path, marker=None, replace=True):
    """Move the complete directory `staging` to `final_path`.

    Locally one rename (the old output, if any, stays until the new one is in place). On object
    stores, where no directory rename is atomic: the old marker goes first, then the rest of the
    old output, then every new object but `marker`, and `marker` last, so a reader that sees the
    marker sees the whole new output. With replace=False an existing `final_path` is refused.

    Args:
        staging: the complete directory.
        final_path: where it goes (local path or storage URL).
        marker: a file name in `staging` published last on object stores, or None.
        replace: replace an existing `final_path`.
    Raises:
        tf.errors.AlreadyExistsError (or the local rename's error): when replace=False and
            `final_path` exists.
    """
    final_path = final_path.rstrip("/")
    if remote.atomic_directory_rename(final_path):
        if not replace:
            rename(staging, final_path, overwrite=False)
            return
        retired = f"{final_path}{RETIRED_SUFFIX}{uuid.uuid4().hex[:6]}"
        if tf.io.gfile.exists(final_path):
            rename(final_path, retired)
        rename(staging, final_path)
        remove_tree(retired)
        return
    if tf.io.gfile.exists(final_path):
        if not replace:
            raise tf.errors.AlreadyExistsError(None, None, f"{final_path} already exists")
        _remove_marker(final_path, marker)
        remove_tree(final_path)
    publish_files(staging, final_path, _files_under(staging), marker)
    remove_tree(staging)


def _remove_marker(directory, marker):
    """Remove directory/marker if it is there (marker None: nothing)."""
    if marker and tf.io.gfile.exists(os.path.join(directory, marker)):
        tf.io.gfile.remove(os.path.join(directory, marker))


def publish_files(staging, directory, names, marker=None, remove=()):
    """Move the files `names` of `staging` into `directory`, which keeps its other files.

    The old `marker` goes first, then the files `remove` names, then every name but `marker`,
    and `marker` last: a reader that sees the marker sees the whole new set (publish_directory
    does the same for a whole directory on object stores).

    Args:
        staging: the directory holding the new files (names relative to it).
        directory: where they go (local path or storage URL).
        names: the files to move, relative paths (subdirectories are made).
        marker: the file (one of `names`) published last, or None.
        remove: old files of `directory` to remove before the new ones come (relative paths;
            missing ones are fine).
    """
    _remove_marker(directory, marker)
    for name in remove:
        if tf.io.gfile.exists(os.path.join(directory, name)):
            tf.io.gfile.remove(os.path.join(directory, name))
    if marker in names:
        names = [name for name in names if name != marker] + [marker]
    for name in names:
        target = os.path.join(directory, name)
        if os.path.dirname(name):
            tf.io.gfile.makedirs(os.path.dirname(target))
        rename(os.path.join(staging, name), target, overwrite=True)


@contextlib.contextmanager
def staged_directory(final_path, marker=None):
    """Yield a fresh staging directory; on success it replaces `final_path`, on error it vanishes.

    The old output, if any, stays in place until the new one is complete; on object stores the
    file named `marker` (e.g. dataset_info.json) is published last (publish_directory).

    Args:
        final_path: the output directory (local path or storage URL).
        marker: the file published last, or None.
    Raises:
        errors.UserError: naming `final_path`, for a full disk, a read-only file system, a
            missing permission, ... while the block or the publication writes (writing()).
    """
    final_path = final_path.rstrip("/")
    staging = f"{final_path}{STAGING_SUFFIX}{os.getpid()}-{uuid.uuid4().hex[:6]}"
    with writing(final_path, staging):
        tf.io.gfile.makedirs(staging)
        yield staging
        publish_directory(staging, final_path, marker)
