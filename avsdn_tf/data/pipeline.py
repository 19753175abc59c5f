"""The one function that turns a data directory's split into batches of parsed records.

It knows records, not supervisions: batches are dicts of records.parse_videos (raw features,
segment labels, context); a task (avsdn_tf.models.tasks) turns them into a model's inputs and
targets.
"""

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.errors import input_error


def split_files(data_dir, info, split, include_noisy=False):
    """The shard files of a split, with the noisy (weak-label) split's appended when asked.

    Args:
        data_dir: the data directory.
        info: its dataset_info.DatasetInfo.
        split: the split name.
        include_noisy: also the shards of constants.NOISY_SPLIT, when the data has one.
    Returns:
        list of shard paths.
    """
    files = info.shard_paths(data_dir, split)
    if include_noisy and constants.NOISY_SPLIT in info.splits:
        files += info.shard_paths(data_dir, constants.NOISY_SPLIT)
    return files


def reading(data_dir, splits, include_noisy=False):
    """A context for iterating make_dataset's batches: a damaged or vanished shard of `splits`
    ends in one UserError naming it (dataset_info.naming_bad_shard).

    Args:
        data_dir: the data directory.
        splits: the split names the block reads (those the data lacks are left out).
        include_noisy: the block also reads the noisy split.
    Returns:
        a context manager.
    """
    info = dataset_info.read(data_dir)
    files = []
    for split in splits:
        if split in info.splits:
            files += split_files(data_dir, info, split)
    if include_noisy and constants.NOISY_SPLIT in info.splits:
        files += info.shard_paths(data_dir, constants.NOISY_SPLIT)
    return dataset_info.naming_bad_shard(files)


def split_size(info, split, include_noisy=False):
    """Videos in a split (plus the noisy split's when asked).

    Args:
        info: a dataset_info.DatasetInfo.
        split: the split name (0 when the data has no such split).
        include_noisy: count the noisy split's videos too.
    Returns:
        int: the number of videos.
    """
    size = info.splits[split]["videos"] if split in info.splits else 0
    if include_noisy and constants.NOISY_SPLIT in info.splits:
        size += info.splits[constants.NOISY_SPLIT]["videos"]
    return size


def decoded_gigabytes(info, split, include_noisy=False, max_videos=None):
    """The size of a split parsed into float32 tensors (to decide whether to keep it in memory).

    Args:
        info: a dataset_info.DatasetInfo.
        split: the split name.
        include_noisy: count the noisy split too.
        max_videos: at most this many videos (None: all).
    Returns:
        float gigabytes (videos x T x (A + visual floats) x 4 bytes), or None when videos differ in
        length.
    """
    if info.num_segments is None:
        return None
    videos = split_size(info, split, include_noisy)
    if max_videos:
        videos = min(videos, max_videos)
    floats_per_segment = info.audio_dim + int(np.prod(info.visual_shape))
    return videos * info.num_segments * floats_per_segment * 4 / 1e9


def _serialized_records(files, training, seed, max_videos):
    """Records of the files, file order and a 2048-record buffer shuffled when training."""
    # --max_videos must name one fixed subset, so the files it is taken from keep their order.
    if training and not max_videos:
        files = files.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    records_ = files.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True if max_videos or not training else None,
    )
    if max_videos:
        records_ = records_.take(max_videos)
    if training:
        records_ = records_.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
    return records_


def _parse_batches(serialized, info):
    """Batches of serialized records -> parsed batches, with a static time axis when it is fixed."""
    parsed = records.parse_videos(serialized, info.audio_dim, info.visual_shape)
    if info.num_segments is not None:
        # A static time axis lets models unroll their short LSTMs.
        for key in (records.AUDIO, records.VISUAL, records.LABEL):
            shape = [None, info.num_segments] + parsed[key].shape.as_list()[2:]
            parsed[key] = tf.ensure_shape(parsed[key], shape)
    return parsed


def _parse_each(serialized, info):
    parsed = records.parse_videos(serialized[None], info.audio_dim, info.visual_shape)
    return {key: value[0] for key, value in parsed.items()}


def _batch_videos(videos, batch_size, drop_remainder):
    """Parsed videos -> batches; videos of different lengths are padded to the longest of the
    batch."""
    if all(spec.shape.is_fully_defined() for spec in videos.element_spec.values()):
        return videos.batch(batch_size, drop_remainder=drop_remainder)
    return videos.padded_batch(
        batch_size,
        padding_values={
            key: tf.constant(constants.PAD_LABEL, tf.int32) if key == records.LABEL else None
            for key in videos.element_spec
        },
        drop_remainder=drop_remainder,
    )


def _parsed_batches(serialized, info, batch_size, drop_remainder, deterministic=None):
    if info.num_segments is not None:
        # Whole batches parse several times faster than records one by one.
        return serialized.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda batch: _parse_batches(batch, info),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic,
        )
    return _batch_videos(_parsed_each(serialized, info, deterministic), batch_size, drop_remainder)


def _parsed_each(serialized, info, deterministic=None):
    return serialized.map(
        lambda record: _parse_each(record, info),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _parsed_videos(serialized, info):
    """Serialized records -> parsed videos one by one, always in record order (what a cache holds
    must not depend on thread timing, or seeded shuffles would differ)."""
    fixed_length = info.num_segments is not None
    parsed = (
        _parsed_batches(serialized, info, 64, False, deterministic=True)
        if fixed_length
        else _parsed_each(serialized, info, deterministic=True)
    )
    return parsed.unbatch() if fixed_length else parsed


def make_dataset(
    data_dir,
    split,
    batch_size,
    training=False,
    include_noisy=False,
    deterministic=False,
    seed=0,
    epoch_seeds=None,
    cache=False,
    input_context=None,
    max_videos=None,
    drop_remainder=False,
):
    """Batches of parsed records of one split of `data_dir`.

    Args:
        data_dir: a data directory (dataset_info.json and shards).
        split: its split name ("train", "val", "test", ...).
        batch_size: videos per batch; videos of different lengths are padded to the longest of
            the batch, their labels with constants.PAD_LABEL.
        training: shuffle (seeded by `seed`, or per epoch by `epoch_seeds`).
        include_noisy: add the background-only videos of the "noisy" split.
        deterministic: fix the element order of the parallel reads.
        seed: the shuffle seed. epoch_seeds: one dataset of len(epoch_seeds) epochs, epoch i
            shuffled by epoch_seeds[i] (so a resumed run sees the batches an uninterrupted one
            would have seen).
        cache: read and decode the records once and keep the videos in memory; each epoch then
            shuffles the whole split.
        input_context: a tf.distribute.InputContext; several input pipelines share by file.
        max_videos: at most this many videos (a fixed subset). drop_remainder: drop a last
            partial batch.
    Returns:
        tf.data.Dataset of dicts (records.parse_videos): "audio" [B, T, A] and "visual"
        [B, T, ...] float32 raw features, "label" [B, T] int32, and the context keys [B].
    """
    info = dataset_info.read(data_dir)
    files = split_files(data_dir, info, split, include_noisy)
    videos_in_split = split_size(info, split, include_noisy)
    if videos_in_split == 0:
        raise input_error(f"{data_dir} split {split!r}", "at least one video", "an empty split")
    missing = [path for path in files if not tf.io.gfile.exists(path)]
    if missing:
        raise input_error(missing[0], "a shard listed in dataset_info.json", "no such file")

    options = tf.data.Options()
    options.deterministic = deterministic or not training
    file_names = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            raise input_error(
                f"{data_dir} split {split!r}",
                f"at least {input_context.num_input_pipelines} shards to share by file",
                f"{len(files)}",
            )
        file_names = file_names.shard(
            input_context.num_input_pipelines, input_context.input_pipeline_id
        )
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    else:
        # Keras under MultiWorkerMirroredStrategy shards by file when there are enough files.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.AUTO
        )

    seeds = [seed] if epoch_seeds is None else list(epoch_seeds)
    if cache:
        # Decoded once, in a fixed order; every epoch reuses the tensors in memory.
        videos = _parsed_videos(
            _serialized_records(file_names, False, None, max_videos), info
        ).cache()
        shuffle_size = min(videos_in_split, max_videos or videos_in_split)
        epochs = [
            _batch_videos(
                (
                    videos.shuffle(shuffle_size, seed=epoch_seed, reshuffle_each_iteration=True)
                    if training
                    else videos
                ),
                batch_size,
                drop_remainder,
            )
            for epoch_seed in seeds
        ]
    else:
        epochs = []
        for epoch_seed in seeds:
            epochs.append(
                _parsed_batches(
                    _serialized_records(file_names, training, epoch_seed, max_videos),
                    info,
                    batch_size,
                    drop_remainder,
                )
            )
    dataset = epochs[0]
    for epoch in epochs[1:]:
        dataset = dataset.concatenate(epoch)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
