"""One writer per output directory: a lock file naming the holder's pid and host.

Local disks only: the lock is created with O_CREAT | O_EXCL, which is atomic on a local file
system. On gs:// and s3:// no such create-if-absent exists through tf.io.gfile, so no lock is
taken there and two processes on one remote directory are not detected (run one writer each).
A lock whose holder is a dead process on this host is stale and is taken over.
"""

import contextlib
import json
import os
import socket
import time

from avsdn_tf.errors import UserError

LOCK_FILE = ".lock"
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
            holder is not None
            and holder.get("host") == socket.gethostname()
            and not _alive(holder.get("pid", -1))
        )
        if not stale:
            return False
        print(f"{path}: taking over the stale lock of dead process {holder['pid']}", flush=True)
        os.remove(path)
        return _try_acquire(path)
    with os.fdopen(descriptor, "w") as handle:
        json.dump({"pid": os.getpid(), "host": socket.gethostname()}, handle)
    return True


@contextlib.contextmanager
def directory_lock(directory, argument, wait=False):
    """Hold the lock of `directory` while the block runs (no lock on gs:// or s3://).

    Args:
        directory: the output directory (created if missing; removed again if it was created
            here and is still empty at the end).
        argument: the flag or argument naming it, for the message ("model_dir").
        wait: wait until the holder ends instead of refusing.
    Raises:
        UserError naming the holder's pid and host when another live process holds it.
    """
    if "://" in directory:
        yield
        return
    created = not os.path.exists(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, LOCK_FILE)
    while not _try_acquire(path):
        if not wait:
            holder = _holder(path) or {}
            raise UserError(
                f"{argument} {directory}: expected no other process writing it, found {path} held "
                f"by pid {holder.get('pid', '?')} on host {holder.get('host', '?')} (wait with "
                "--wait, or remove the lock file if that process is gone)"
            )
        time.sleep(WAIT_POLL_SECONDS)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        if created and not os.listdir(directory):  # a run refused before writing leaves nothing
            os.rmdir(directory)
