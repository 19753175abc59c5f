"""A split as several TFRecord shards, so tf.data can interleave and shard by file: their names,
their number and writing them. Naming the shard behind a read error is the data directory's
contract (avsdn_tf/dataset_info.py, naming_bad_shard)."""

import os

import tensorflow as tf

from avsdn_tf import constants


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
