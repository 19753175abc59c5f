"""Remote storage: the one place that makes a path's filesystem available, and what it promises.

TensorFlow 2.17 itself knows local paths, `gs://` and `ram://`. Every other scheme this project
accepts (`s3://`, `hdfs://`, `viewfs://`, `az://`) comes from tensorflow-io, whose filesystem
plugins are registered when `tensorflow_io` is imported. `use_filesystem(path)` does that (once,
only for a path that needs it) and checks what can be checked cheaply, so a wrong endpoint or a
missing bucket ends in one message naming the path instead of a traceback 25 s later:

- s3://: the endpoint of `S3_ENDPOINT` (when set) must accept a TCP connection, and the bucket
  must exist (`stat("s3://bucket/")`; tensorflow-io answers NotFound for a missing bucket).
- gs://: TensorFlow's own client; nothing is probed (it cannot be pointed at a local emulator:
  the googleapis.com URLs are compiled in, so gs:// is not tested here).

It is called where paths enter a process: every command's flags (cli.run_main), the data
directory a run recorded (runs.RunDir.read_config) and the directories export.verify is given.

Two facts about object stores (S3, GCS) the rest of the code relies on:

- One object is written or copied whole: a reader sees the old object or the new one, never
  half of one. So a file written under a temporary name and renamed (fileio.write_json,
  checkpoints) is all-or-nothing there too.
- A directory rename is a copy of every object and then a delete, one object at a time: not
  atomic. `fileio.publish_directory` therefore moves a directory's objects one by one with its
  completion marker (dataset_info.json; saved_model.pb of an export) last.

Exit status: a process whose tensorflow-io S3 client was used aborts at interpreter exit with
"pure virtual method called" (status 134, after the work is done; reproduced in
tests/test_remote.py). Upstream's backtrace (tensorflow/io#1912, #2039, fixed by #2120 after the
0.37.1 release that TensorFlow 2.17 needs) shows the AWS SDK's curl handle container making a
pure virtual call while C++ static objects are destroyed at exit. `exit_process` ends such a process
the way the interpreter would (join
non-daemon threads, run the atexit callbacks, flush stdout and stderr) and then calls os._exit,
which skips only C++ static destruction. Nothing of the project's is lost there: every file is
closed explicitly before its rename publishes it.
"""

import atexit
import contextlib
import os
import shutil
import socket
import sys
import tempfile
import threading
import urllib.parse

from avsdn_tf.errors import input_error

NATIVE_SCHEMES = frozenset({"", "file", "gs", "ram"})  # built into TensorFlow 2.17
TFIO_SCHEMES = frozenset({"s3", "hdfs", "viewfs", "az"})  # registered by tensorflow-io
# Schemes that flags carry without being storage (a TF Serving address, a gRPC target).
NOT_STORAGE = frozenset({"http", "https", "grpc", "grpcs"})
# A rename of a directory is one atomic operation only on local (POSIX) filesystems.
ATOMIC_DIRECTORY_RENAME = frozenset({"", "file"})
PROBE_SECONDS = 5.0
COPY_CHUNK_BYTES = 16 << 20  # what local_copy holds in memory at a time

_open_copies = {}  # remote path -> its local copy, while local_copy's context is open

_checked = set()  # (scheme, bucket) already made available and checked in this process
_state = {"tensorflow_io": False}


def scheme(path):
    """The URL scheme of a path.

    Args:
        path: a local path or a storage URL.
    Returns:
        str: 's3' for 's3://bucket/key', '' for a local path.
    """
    head, separator, _ = str(path).partition("://")
    return head.lower() if separator and head.isidentifier() else ""


def is_remote(path):
    """Whether a path is on remote storage (a scheme other than none or file://).

    Args:
        path: a local path or a storage URL.
    Returns:
        bool.
    """
    return scheme(path) not in ("", "file")


def bucket(path):
    """The bucket (authority) of a remote path.

    Args:
        path: a storage URL.
    Returns:
        str: 'b' for 's3://b/key'.
    """
    return str(path).partition("://")[2].split("/", 1)[0]


def atomic_directory_rename(path):
    """Whether renaming a directory at `path` is one atomic step (local disks; not object stores).

    Args:
        path: a local path or a storage URL.
    Returns:
        bool.
    """
    return scheme(path) in ATOMIC_DIRECTORY_RENAME


def storage_paths(values):
    """The values that are storage URLs (scheme://...), skipping http(s) and gRPC addresses.

    Args:
        values: any values (e.g. every flag's value); non-strings are skipped.
    Returns:
        list of the storage URLs among them, in order.
    """
    return [
        value
        for value in values
        if isinstance(value, str) and scheme(value) and scheme(value) not in NOT_STORAGE
    ]


def tensorflow_io_loaded():
    return _state["tensorflow_io"]


def _load_tensorflow_io(path):
    if _state["tensorflow_io"]:
        return
    try:
        import tensorflow_io  # noqa: F401  (registers its filesystem plugins on import)
    except ImportError as error:
        raise input_error(
            path,
            "tensorflow-io installed for this scheme (pip install tensorflow-io==0.37.1)",
            f"ImportError: {error}",
        ) from None
    _state["tensorflow_io"] = True


def use_filesystem(path, what=None):
    """Make `path`'s filesystem available in this process and check it can be reached.

    Local paths cost nothing; each remote bucket is checked once per process.

    Args:
        path: a local path or a storage URL (s3:// loads tensorflow-io).
        what: where the path came from, for messages ("--output_dir").
    Raises:
        errors.UserError: naming `what` and the path, for an unknown scheme, a missing
            tensorflow-io, or a bucket that cannot be reached.
    """
    kind = scheme(path)
    if kind in ("", "file", "ram"):
        return
    where = f"{what} {path}" if what else str(path)
    if kind not in NATIVE_SCHEMES | TFIO_SCHEMES:
        raise input_error(
            where, "a local path or a gs://, s3://, hdfs:// or az:// URL", f"the scheme {kind}://"
        )
    if (kind, bucket(path)) in _checked:
        return
    if kind in TFIO_SCHEMES:
        _load_tensorflow_io(where)
    if kind == "s3":
        _check_s3(path, where)
    _checked.add((kind, bucket(path)))


def s3_endpoint():
    """(host, port, the S3_ENDPOINT text) of the configured endpoint, or None for AWS itself."""
    text = os.environ.get("S3_ENDPOINT")
    if not text:
        return None
    https = os.environ.get("S3_USE_HTTPS", "1") not in ("0", "false", "False")
    parsed = urllib.parse.urlsplit(text if "://" in text else f"//{text}")
    port = parsed.port or (
        443 if (parsed.scheme or ("https" if https else "http")) == "https" else 80
    )
    return parsed.hostname, port, text


def _check_s3(path, where):
    import tensorflow as tf

    name = bucket(path)
    if not name:
        raise input_error(where, "an S3 URL s3://BUCKET/PATH", "no bucket name")
    endpoint = s3_endpoint()
    if endpoint is not None:
        host, port, text = endpoint
        try:
            socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
        except OSError as error:
            raise input_error(
                where,
                f"an S3 endpoint accepting connections at {text} (S3_ENDPOINT)",
                f"{type(error).__name__}: {error}",
            ) from None
    try:
        tf.io.gfile.stat(f"s3://{name}/")
    except tf.errors.NotFoundError:
        at = f" at {endpoint[2]}" if endpoint else ""
        raise input_error(
            where, f"an existing S3 bucket {name!r}{at}", "no such bucket (create it first)"
        ) from None
    except tf.errors.OpError as error:
        raise input_error(
            where, f"access to the S3 bucket {name!r}", f"{type(error).__name__}: {error.message}"
        ) from None


@contextlib.contextmanager
def local_copy(path, chunk_bytes=COPY_CHUNK_BYTES):
    """A local file with `path`'s bytes, for libraries that only read local files (h5py).

    A local path is yielded as it is. A remote one is streamed to a temporary file in chunks of
    `chunk_bytes` (memory stays bounded whatever the file's size; the disk of tempfile's
    directory, TMPDIR, needs the file's size free) and removed when the context ends.

    Args:
        path: a local path or a storage URL.
        chunk_bytes: bytes copied at a time.
    Yields:
        str: a local path holding the file's bytes.
    """
    if not is_remote(path):
        yield path
        return
    import tensorflow as tf

    use_filesystem(path)
    try:
        size = tf.io.gfile.stat(path).length
    except tf.errors.NotFoundError:
        raise input_error(path, "a file", "no such file") from None
    directory = tempfile.mkdtemp(prefix="avsdn-remote-")
    try:
        free = shutil.disk_usage(directory).free
        if free < size:
            raise input_error(
                path,
                f"{size} bytes free in {directory} (TMPDIR) for a local copy",
                f"{free} bytes free",
            )
        local = os.path.join(directory, os.path.basename(path.rstrip("/")))
        # GFile reads through a 512 KB buffer whatever read(n) asks: one ranged GET per 512 KB.
        # The same stream with a chunk-sized buffer makes one request per chunk (15x faster
        # from a local moto server: 64 MB in 0.8 s instead of 11.7 s).
        from tensorflow.python.lib.io import _pywrap_file_io

        source = _pywrap_file_io.BufferedInputStream(path, chunk_bytes)
        with open(local, "wb") as target:
            while chunk := source.read(chunk_bytes):
                target.write(chunk)
        _open_copies[path] = local
        yield local
    finally:
        _open_copies.pop(path, None)
        shutil.rmtree(directory, ignore_errors=True)


def local_path(path):
    """The local copy of `path` while a local_copy of it is open, else `path` itself.

    Args:
        path: a path given to local_copy.
    Returns:
        str: a path h5py can open.
    """
    return _open_copies.get(path, path)


def _exit_code(code):
    """The status the interpreter gives SystemExit(code)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def exit_process(code):
    """End the process with SystemExit(code)'s status; see the module docstring for why.

    Without tensorflow-io loaded this is sys.exit(code). With it, the interpreter's own shutdown
    steps run here and os._exit skips the C++ static destructors that abort.

    Args:
        code: what SystemExit takes (None or an int status; a str is printed, status 1).
    """
    if not _state["tensorflow_io"]:
        sys.exit(code)
    status = _exit_code(code)
    current = threading.current_thread()
    for thread in threading.enumerate():
        if thread is not current and not thread.daemon and thread is not threading.main_thread():
            thread.join()
    atexit._run_exitfuncs()  # what Py_FinalizeEx runs next (logging.shutdown, absl, Keras, ...)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
