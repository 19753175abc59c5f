"""Per-feature normalisation statistics, computed on the train split and saved beside the data.

Audio is normalised per dimension; visual per channel (the last axis), so a 7x7x512 map shares
one mean and one deviation per channel across its regions. prepare, synthesize and extract write
normalization.json; train reads it once and puts it into the model's FeatureNormalization
layers (models.set_statistics), so nothing after training reads it.
"""

import os

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio
from avsdn_tf.data import dataset_info, records
from avsdn_tf.errors import input_error


def _moments(sums, squares, count):
    mean = sums / count
    variance = np.maximum(squares / count - mean**2, 0.0)
    return mean, np.maximum(np.sqrt(variance), constants.MIN_STD)


def compute_statistics(data_dir, split="train", batch_size=64):
    """Mean and standard deviation of audio and visual features over every segment of `split`.

    Returns:
        {"split", "audio_mean" [A], "audio_std" [A], "visual_mean" [C], "visual_std" [C]} as
        lists (C: the visual features' last axis); deviations are at least constants.MIN_STD.
    """
    info = dataset_info.read(data_dir)
    files = info.shard_paths(data_dir, split)
    dataset = tf.data.TFRecordDataset(files).batch(batch_size).map(
        lambda serialized: records.parse_videos(serialized, info.audio_dim, info.visual_shape))
    channels = info.visual_shape[-1]
    audio_sum = np.zeros(info.audio_dim)
    audio_squares = np.zeros(info.audio_dim)
    visual_sum = np.zeros(channels)
    visual_squares = np.zeros(channels)
    audio_count = visual_count = 0
    for batch in dataset:
        # Accumulate in float64 without float64 copies of the batch (maps are large).
        audio = batch[records.AUDIO].numpy().reshape(-1, info.audio_dim)
        visual = batch[records.VISUAL].numpy().reshape(-1, channels)
        audio_sum += audio.sum(0, dtype=np.float64)
        audio_squares += np.einsum("ij,ij->j", audio, audio, dtype=np.float64)
        visual_sum += visual.sum(0, dtype=np.float64)
        visual_squares += np.einsum("ij,ij->j", visual, visual, dtype=np.float64)
        audio_count += len(audio)
        visual_count += len(visual)
    if audio_count == 0:
        raise input_error(f"{data_dir} split {split!r}", "at least one video", "none")
    audio_mean, audio_std = _moments(audio_sum, audio_squares, audio_count)
    visual_mean, visual_std = _moments(visual_sum, visual_squares, visual_count)
    return {
        "split": split,
        "audio_mean": audio_mean.tolist(),
        "audio_std": audio_std.tolist(),
        "visual_mean": visual_mean.tolist(),
        "visual_std": visual_std.tolist(),
    }


def write_statistics(data_dir, split="train"):
    """Compute the statistics of `split` and save them as normalization.json in `data_dir`."""
    statistics = compute_statistics(data_dir, split)
    fileio.write_json(os.path.join(data_dir, constants.NORMALIZATION_FILE), statistics)
    return statistics


def read_statistics(data_dir):
    """The train-split statistics of `data_dir` and where they came from; never writes.

    Returns:
        (statistics, source): normalization.json's content and its path, or, for a data
        directory without one, the statistics computed from its train split (not saved) and
        a description saying so.
    """
    path = os.path.join(data_dir, constants.NORMALIZATION_FILE)
    if not tf.io.gfile.exists(path):
        return compute_statistics(data_dir), f"the train split of {data_dir} (it has no {constants.NORMALIZATION_FILE})"
    statistics = fileio.read_json_object(path, "normalisation statistics", "a JSON object of statistics")
    return statistics, path
