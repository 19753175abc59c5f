"""One writer per output: a lock file naming the holder's pid and host, and the stale
temporaries of killed runs swept once it is held.

Local disks only: the lock is created with O_CREAT | O_EXCL, which is atomic on a local file
system. On gs:// and s3:// no such create-if-absent exists through tf.io.gfile, so no lock is
taken there (and nothing is swept) and two processes on one remote directory are not detected
(run one writer each). A lock whose holder is a dead process on this host is stale and is taken
over. The commands that write an output take its lock (docs/data_format.md, "One writer per
output"): train (--model_dir), export (--export_base), prepare (beside --output_dir, which it
replaces whole) and extract (--output_dir).
"""

import contextlib
import glob
import json
import os
import shutil
import socket
import time

from avsdn_tf.errors import UserError, input_error

LOCK_FILE = ".lock"  # inside the locked directory
BESIDE_SUFFIX = ".lock"  # DIRECTORY.lock, for a directory that is replaced as a whole
WAIT_POLL_SECONDS = 1.0  # seconds between two tries with wait=True


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(path):
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _try_acquire(path):
    """True if the lock file was created by this process; False if a live holder has it."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        holder = _holder(path)
        stale = (
            isinstance(holder, dict)
            and holder.get("host") == socket.gethostname()
            and isinstance(holder.get("pid"), int)
            and not _alive(holder["pid"])
        )
        if not stale:
            return False
        print(f"{path}: taking over the stale lock of dead process {holder['pid']}", flush=True)
        with contextlib.suppress(FileNotFoundError):  # another process took it over first
            os.remove(path)
        return _try_acquire(path)
    except OSError as error:
        raise input_error(path, "a lock file this process can create", error.strerror) from None
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
    return True


def lock_path(directory, beside=False):
    """The lock file of an output directory.

    Args:
        directory: the output directory (a local path).
        beside: the lock of a directory that is replaced as a whole (prepare's output): it lies
            beside it, as DIRECTORY.lock, not inside it.
    Returns:
        str, DIRECTORY/.lock, or DIRECTORY.lock with beside=True.
    """
    directory = directory.rstrip("/") or "/"
    return f"{directory}{BESIDE_SUFFIX}" if beside else os.path.join(directory, LOCK_FILE)


def sweep_stale_temporaries(directory, patterns):
    """Remove what killed runs left under temporary names; call it only while holding the lock.

    Prints one line per removed file or directory. Does nothing on gs:// or s3:// (no lock
    there, so a live writer may own what matches) or when `directory` does not exist.

    Args:
        directory: a local directory.
        patterns: glob patterns relative to `directory` ("*.tmp-*", "checkpoints/*.tmp-*",
            "tmp-export-*"); `*` matches names starting with a dot too.
    Returns:
        list of the removed paths, sorted.
    Raises:
        UserError naming the path when one cannot be removed (permissions).
    """
    if "://" in directory or not os.path.isdir(directory):
        return []
    base = glob.escape(directory)
    found = sorted(
        {
            path
            for pattern in patterns
            for path in glob.glob(os.path.join(base, pattern), include_hidden=True)
        }
    )
    removed = []
    for path in found:
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        except OSError as error:
            raise input_error(
                path, "a stale temporary of a killed run this process can remove", error.strerror
            ) from None
        print(f"removed stale temporary {path} of an earlier killed run", flush=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def directory_lock(directory, argument, wait=False, beside=False, stale=()):
    """Hold the lock of `directory` while the block runs (no lock on gs:// or s3://).

    Once held, the stale temporaries matching `stale` are swept (sweep_stale_temporaries): no
    live writer owns them.

    Args:
        directory: the output directory. With beside=False it is created if missing (and
            removed again if it was created here and is still empty at the end); with
            beside=True the same holds for its parent.
        argument: the flag or argument naming it, for the message ("`model_dir`", which a
            command shows as --model_dir).
        wait: wait until the holder ends instead of refusing.
        beside: put the lock beside the directory (lock_path), for a directory that is replaced
            as a whole.
        stale: glob patterns of stale temporaries, relative to the directory holding the lock
            file (`directory` itself, or its parent with beside=True).
    Raises:
        UserError naming the holder's pid and host when another live process holds it, or
        naming the directory when it cannot be made.
    """
    if "://" in directory:
        yield
        return
    path = lock_path(directory, beside)
    home = os.path.dirname(path) or "."
    created = not os.path.exists(home)
    try:
        os.makedirs(home, exist_ok=True)
    except OSError as error:
        raise input_error(
            f"{argument} {directory}", f"a directory {home} that can be made", error.strerror
        ) from None
    while not _try_acquire(path):
        if not wait:
            holder = _holder(path)
            holder = holder if isinstance(holder, dict) else {}
            raise UserError(
                f"{argument} {directory}: expected no other process writing it, found {path} held "
                f"by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
                "(`wait=True` waits for it to end; remove the lock file if that process is gone)"
            )
        time.sleep(WAIT_POLL_SECONDS)
    try:
        sweep_stale_temporaries(home, stale)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        if created and not os.listdir(home):  # a run refused before writing leaves nothing
            os.rmdir(home)
