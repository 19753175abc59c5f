"""The one function that turns a data directory's split into batches of parsed records.

It knows records, not supervisions: batches are dicts of records.parse_videos (raw features,
segment labels, context); a task (avsdn_tf.models.tasks) turns them into a model's inputs and
targets.
"""

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.errors import input_error


def split_files(data, split, include_noisy=False):
    """The shard files of a split, with the noisy (weak-label) split's appended when asked.

    Args:
        data: a dataset_info.DataDir.
        split: the split name.
        include_noisy: also the shards of constants.NOISY_SPLIT, when the data has one.
    Returns:
        list of shard paths.
    Raises:
        errors.UserError: naming dataset_info.json when the data has no such split.
    """
    files = data.shards(split)
    if include_noisy and constants.NOISY_SPLIT in data.info.splits:
        files += data.shards(constants.NOISY_SPLIT)
    return files


class Batches:
    """make_dataset's batches of parsed records, with the shards they are read from.

    Iterating it (a Python loop, `next(iter(...))`, a task's evaluation) turns a TFRecord read
    error into one UserError naming the damaged or vanished shard (dataset_info.read_error).
    Keras' `fit` runs its iterator inside a tf.function, so there the error comes out of `fit`
    itself: wrap that one call in `reading()`.

    Attributes:
        dataset: the tf.data.Dataset of parsed batches (for tf.data transformations and fit).
        files: the shard paths it reads.
    """

    def __init__(self, dataset, files):
        self.dataset, self.files = dataset, list(files)

    def reading(self):
        """A context in which a read error of these shards ends in the UserError naming one.

        Returns:
            a context manager (dataset_info.naming_bad_shard over `files`).
        """
        return dataset_info.naming_bad_shard(self.files)

    def __iter__(self):
        with self.reading():
            yield from self.dataset


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


def _checked_files(data, split, include_noisy):
    """The shards of a split (and the noisy split's), each checked to exist and their records
    counted against dataset_info.json's (dataset_info.DatasetInfo.shard_paths).

    Args:
        data: a dataset_info.DataDir. split: the split name. include_noisy: add the noisy split.
    Returns:
        (list of shard paths, the number of videos they hold).
    Raises:
        errors.UserError: for no such split, an empty split, a listed shard that is missing, or
            shards holding another number of records than dataset_info.json says.
    """
    files = split_files(data, split, include_noisy)  # missing shards refused there
    videos = split_size(data.info, split, include_noisy)
    if videos == 0:
        raise input_error(f"{data.path} split {split!r}", "at least one video", "an empty split")
    return files, videos


def _file_names(files, where, input_context, options):
    """The dataset of shard names this input pipeline reads, and its auto-shard policy.

    Args:
        files: the shard paths. where: what a message names ("DIR split 'train'").
        input_context: a tf.distribute.InputContext or None.
        options: the tf.data.Options to set the auto-shard policy on (changed in place).
    Returns:
        tf.data.Dataset of str paths: all of them, or this pipeline's share by file.
    Raises:
        errors.UserError: when there are fewer shards than input pipelines.
    """
    file_names = tf.data.Dataset.from_tensor_slices(files)
    policy = tf.data.experimental.AutoShardPolicy
    if input_context is None or input_context.num_input_pipelines <= 1:
        # Keras under MultiWorkerMirroredStrategy shards by file when there are enough files.
        options.experimental_distribute.auto_shard_policy = policy.AUTO
        return file_names
    pipelines = input_context.num_input_pipelines
    if len(files) < pipelines:
        raise input_error(where, f"at least {pipelines} shards to share by file", f"{len(files)}")
    options.experimental_distribute.auto_shard_policy = policy.OFF
    return file_names.shard(pipelines, input_context.input_pipeline_id)


def _cached_epochs(
    file_names, info, seeds, shuffle_size, batch_size, training, drop_remainder, max_videos
):
    """One dataset per epoch over videos decoded once, in a fixed order, and kept in memory.

    Args:
        file_names: the dataset of shard paths. info: the DatasetInfo. seeds: one shuffle seed
            per epoch. shuffle_size: the videos kept (the whole split, or max_videos).
        batch_size, training, drop_remainder, max_videos: as make_dataset.
    Returns:
        list of tf.data.Dataset, epoch i shuffled (when training) by seeds[i].
    """
    videos = _parsed_videos(_serialized_records(file_names, False, None, max_videos), info).cache()
    return [
        _batch_videos(
            videos.shuffle(shuffle_size, seed=seed, reshuffle_each_iteration=True)
            if training
            else videos,
            batch_size,
            drop_remainder,
        )
        for seed in seeds
    ]


def make_dataset(
    data,
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
    """Batches of parsed records of one split of a data directory.

    Args:
        data: a dataset_info.DataDir (its dataset_info.json read once, by the command).
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
        Batches: iterated, dicts (records.parse_videos): "audio" [B, T, A] and "visual"
        [B, T, ...] float32 raw features, "label" [B, T] int32, and the context keys [B]; a read
        error names its shard. Its .dataset is the tf.data.Dataset.
    Raises:
        errors.UserError: for no such split, an empty split, a missing shard, or fewer shards
            than input pipelines.
    """
    info = data.info
    files, videos_in_split = _checked_files(data, split, include_noisy)
    options = tf.data.Options()
    options.deterministic = deterministic or not training
    file_names = _file_names(files, f"{data.path} split {split!r}", input_context, options)
    seeds = [seed] if epoch_seeds is None else list(epoch_seeds)
    if cache:
        shuffle_size = min(videos_in_split, max_videos or videos_in_split)
        epochs = _cached_epochs(
            file_names, info, seeds, shuffle_size, batch_size, training, drop_remainder, max_videos
        )
    else:
        epochs = [
            _parsed_batches(
                _serialized_records(file_names, training, epoch_seed, max_videos),
                info,
                batch_size,
                drop_remainder,
            )
            for epoch_seed in seeds
        ]
    dataset = epochs[0]
    for epoch in epochs[1:]:
        dataset = dataset.concatenate(epoch)
    return Batches(dataset.prefetch(tf.data.AUTOTUNE).with_options(options), files)
