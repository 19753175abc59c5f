"""Per-feature normalisation statistics, computed on the train split and saved beside the data.

Audio is normalised per dimension; visual per channel (the last axis), so a 7x7x512 map shares
one mean and one deviation per channel across its regions. prepare, synthesize and extract write
normalization.json; train reads it once and puts it into the model's FeatureNormalization
layers (models.backbones.set_statistics), so nothing after training reads it.
"""

import os

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, fileio, records
from avsdn_tf.errors import input_error


class Moments:
    """Per-channel sums and sums of squares of audio and visual features, in float64.

    The one accumulation behind normalization.json: compute_statistics adds a data set's
    batches; extraction on Beam adds each record's features on its worker and merges the
    workers' Moments (sums and counts add), then `statistics` turns them into means and
    deviations the same way.

    Args:
        audio_dim: A, the audio feature size.
        channels: C, the visual features' last axis.
    """

    def __init__(self, audio_dim, channels):
        self.audio_sum = np.zeros(audio_dim)
        self.audio_squares = np.zeros(audio_dim)
        self.visual_sum = np.zeros(channels)
        self.visual_squares = np.zeros(channels)
        self.audio_count = self.visual_count = 0

    def add(self, audio, visual):
        """Add features: audio [..., A] and visual [..., C] (every leading index one sample).

        Accumulates in float64 without float64 copies of the features (maps are large).
        """
        audio = np.asarray(audio).reshape(-1, len(self.audio_sum))
        visual = np.asarray(visual).reshape(-1, len(self.visual_sum))
        self.audio_sum += audio.sum(0, dtype=np.float64)
        self.audio_squares += np.einsum("ij,ij->j", audio, audio, dtype=np.float64)
        self.visual_sum += visual.sum(0, dtype=np.float64)
        self.visual_squares += np.einsum("ij,ij->j", visual, visual, dtype=np.float64)
        self.audio_count += len(audio)
        self.visual_count += len(visual)
        return self

    def merge(self, other):
        """Add another Moments' sums and counts to these; returns self."""
        self.audio_sum += other.audio_sum
        self.audio_squares += other.audio_squares
        self.visual_sum += other.visual_sum
        self.visual_squares += other.visual_squares
        self.audio_count += other.audio_count
        self.visual_count += other.visual_count
        return self

    def to_json(self):
        """The sums and counts as a JSON object (floats round-trip exactly)."""
        return {
            name: value.tolist() if isinstance(value, np.ndarray) else value
            for name, value in vars(self).items()
        }

    @classmethod
    def from_json(cls, value):
        """Moments from what `to_json` wrote."""
        moments = cls(len(value["audio_sum"]), len(value["visual_sum"]))
        for name in vars(moments):
            current = getattr(moments, name)
            setattr(
                moments,
                name,
                (
                    np.asarray(value[name], np.float64)
                    if isinstance(current, np.ndarray)
                    else int(value[name])
                ),
            )
        return moments

    def statistics(self, split):
        """normalization.json's content: means [A] / [C] and deviations (>= constants.MIN_STD).

        Args:
            split: the split the features came from (recorded in the result).
        Returns:
            {"split", "audio_mean" [A], "audio_std" [A], "visual_mean" [C], "visual_std" [C]}
            as lists.
        """
        audio_mean, audio_std = _moments(self.audio_sum, self.audio_squares, self.audio_count)
        visual_mean, visual_std = _moments(self.visual_sum, self.visual_squares, self.visual_count)
        return {
            "split": split,
            "audio_mean": audio_mean.tolist(),
            "audio_std": audio_std.tolist(),
            "visual_mean": visual_mean.tolist(),
            "visual_std": visual_std.tolist(),
        }


def _moments(sums, squares, count):
    mean = sums / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return mean, np.maximum(np.sqrt(variance), constants.MIN_STD)


def compute_statistics(data, split="train", batch_size=64):
    """Mean and standard deviation of audio and visual features over every segment of `split`.

    Records of different lengths (own videos) count their own segments, not a batch's padding.

    Args:
        data: a dataset_info.DataDir (or a data directory's path, opened here).
        split: the split whose segments are counted ("train").
        batch_size: records parsed at once.
    Returns:
        {"split", "audio_mean" [A], "audio_std" [A], "visual_mean" [C], "visual_std" [C]} as
        lists (C: the visual features' last axis); deviations are at least constants.MIN_STD.
    Raises:
        errors.UserError: when the data directory cannot be read, has no such split, or the split
            holds no video.
    """
    data = dataset_info.DataDir.of(data)
    info = data.info
    files = data.shards(split)
    dataset = (
        tf.data.TFRecordDataset(files)
        .batch(batch_size)
        .map(
            lambda serialized: records.parse_videos(
                serialized, info.audio_dim, info.visual_shape, features_only=True
            )
        )
    )
    moments = Moments(info.audio_dim, info.visual_shape[-1])
    with dataset_info.naming_bad_shard(files):
        for batch in dataset:
            audio, visual = batch[records.AUDIO].numpy(), batch[records.VISUAL].numpy()
            lengths = batch[records.AUDIO_LENGTH].numpy()
            if (lengths < audio.shape[1]).any():  # videos of several lengths: not the padding
                segments = np.arange(audio.shape[1]) < lengths[:, None]
                audio, visual = audio[segments], visual[segments]
            moments.add(audio, visual)
    if moments.audio_count == 0:
        raise input_error(f"{data.path} split {split!r}", "at least one video", "none")
    return moments.statistics(split)


def write_statistics(data_dir, split="train"):
    """Compute the statistics of `split` and save them as normalization.json in `data_dir`.

    Args:
        data_dir: a data directory (dataset_info.json and shards).
        split: the split whose segments are counted ("train").
    Returns:
        the statistics dict written (compute_statistics).
    """
    statistics = compute_statistics(data_dir, split)
    fileio.write_json(os.path.join(data_dir, constants.NORMALIZATION_FILE), statistics)
    return statistics


def read_statistics(data):
    """The train-split statistics of a data directory and where they came from; never writes.

    Args:
        data: a dataset_info.DataDir (or a data directory's path, opened here).
    Returns:
        (statistics, source): normalization.json's content and its path, or, for a data
        directory without one, the statistics computed from its train split (not saved) and
        a description saying so.
    Raises:
        errors.UserError: when normalization.json is not a JSON object.
    """
    data = dataset_info.DataDir.of(data)
    path = os.path.join(data.path, constants.NORMALIZATION_FILE)
    if not tf.io.gfile.exists(path):
        return (
            compute_statistics(data),
            f"the train split of {data.path} (it has no {constants.NORMALIZATION_FILE})",
        )
    statistics = fileio.read_json_object(
        path, "normalisation statistics", "a JSON object of statistics"
    )
    return statistics, path
