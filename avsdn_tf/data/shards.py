"""A split as several TFRecord shards, so tf.data can interleave and shard by file: writing
them, and naming the shard behind a read error (TensorFlow's names only an offset)."""

import contextlib
import os
import re

import tensorflow as tf

from avsdn_tf import constants
from avsdn_tf.errors import UserError, input_error

# What TensorFlow's TFRecord reader says about a damaged record: "corrupted record at 15688",
# "truncated record at 19610' failed with Read less bytes than requested".
_DAMAGED_RECORD = re.compile(r"(corrupted|truncated) record at (\d+)")
REMAKE = "make the data directory again with prepare, synthesize or extract"
# The errors of a tf.data read that naming_bad_shard explains.
READ_ERRORS = (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError)


def shard_names(split, count):
    """The file names of a split's shards (constants.SHARD_PATTERN).

    Args:
        split: the split name.
        count: the number of shards.
    Returns:
        list of `count` names, e.g. "train-00000-of-00004.tfrecord".
    """
    return [constants.SHARD_PATTERN.format(split=split, index=i, count=count) for i in range(count)]


class ShardWriter:
    """Round-robin writer of serialized records into `count` shard files of one split."""

    def __init__(self, directory, split, count):
        self.names = shard_names(split, max(1, count))
        self._writers = [tf.io.TFRecordWriter(os.path.join(directory, name)) for name in self.names]
        self.written = 0

    def write(self, serialized):
        """Write one record to the next shard, round robin.

        Args:
            serialized: bytes, one serialized record (records.encode_video).
        """
        self._writers[self.written % len(self._writers)].write(serialized)
        self.written += 1

    def close(self):
        for writer in self._writers:
            writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def shard_count(num_videos, videos_per_shard=256):
    """Enough shards that two workers of a distributed run can share by file, never empty ones.

    Args:
        num_videos: videos in the split.
        videos_per_shard: the target size of a shard.
    Returns:
        int: at least min(num_videos, 2), at most 16 (unless videos are fewer).
    """
    return max(min(num_videos, 2), min(16, -(-num_videos // videos_per_shard)))


def _damage_of(path):
    """What is wrong with one shard file, read again on its own; None when it reads whole.

    Args:
        path: a TFRecord file (local path or storage URL).
    Returns:
        None, or the "found" part of a message: a damaged record and its offset, no file, or
        TensorFlow's reason the file cannot be read.
    """
    try:
        tf.data.TFRecordDataset(path).reduce(0, lambda count, _: count + 1).numpy()
    except tf.errors.NotFoundError:
        return "no such file (it was removed during the run)"
    except tf.errors.DataLossError as error:
        damage = _DAMAGED_RECORD.search(error.message)
        if damage is None:
            return f"an unreadable file ({error.message.strip()})"
        size = tf.io.gfile.stat(path).length
        kind, offset = damage.groups()
        detail = ", the file cut short" if kind == "truncated" else ""
        return f"a {kind} record at offset {offset} of {size} bytes{detail}"
    except tf.errors.OpError as error:  # no permission to read it, an unreachable store, ...
        return f"an unreadable file ({error.message.strip()})"
    return None


def read_error(files, error):
    """The UserError for a TensorFlow read error met while reading `files`.

    TensorFlow's DataLossError names an offset but no file, so each shard is read again on its
    own, in order, until one fails; the file of a NotFoundError or PermissionDeniedError is
    looked for the same way.

    Args:
        files: the shard paths that were being read.
        error: one of READ_ERRORS.
    Returns:
        errors.UserError naming the bad shard, what was expected and what was found; or None
        for a NotFoundError or PermissionDeniedError about none of `files` (the error is
        someone else's).
    """
    for path in files:
        damage = _damage_of(path)
        if damage is not None:
            return input_error(path, "a readable TFRecord shard", f"{damage}; {REMAKE}")
    if not isinstance(error, tf.errors.DataLossError):
        return None
    where = os.path.dirname(files[0]) if files else "the data directory"
    return UserError(
        f"{where}: expected readable TFRecord shards, found a read error that no shard shows "
        f"when read again ({error.message.strip()}); check the storage, then {REMAKE}"
    )


@contextlib.contextmanager
def naming_bad_shard(files):
    """Turn a TFRecord read error inside the block into one UserError naming the shard.

    Wrap the loop (or model.fit) that iterates a tf.data pipeline over `files`: a shard
    corrupted, cut short or deleted while it runs ends in read_error's message.

    Args:
        files: the shard paths the block reads.
    Yields:
        None.
    Raises:
        errors.UserError: for a DataLossError, or a NotFoundError or PermissionDeniedError
            about one of `files`.
    """
    try:
        yield
    except READ_ERRORS as error:
        user_error = read_error(list(files), error)
        if user_error is None:
            raise
        raise user_error from None
