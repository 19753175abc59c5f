"""The one function that turns a data directory's split into a tf.data input for Keras."""

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, normalization, records
from avsdn_tf.errors import input_error

FULL = "full"
WEAK = "weak"
SUPERVISIONS = (FULL, WEAK)
PAD_LABEL = -1  # label of padding segments when videos differ in length; losses skip it


def split_files(data_dir, info, split, include_noisy=False):
    files = info.shard_paths(data_dir, split)
    if include_noisy and constants.NOISY_SPLIT in info.splits:
        files += info.shard_paths(data_dir, constants.NOISY_SPLIT)
    return files


def split_size(info, split, include_noisy=False):
    size = info.splits[split]["videos"] if split in info.splits else 0
    if include_noisy and constants.NOISY_SPLIT in info.splits:
        size += info.splits[constants.NOISY_SPLIT]["videos"]
    return size


def targets(parsed, supervision, guide_targets=False):
    """Segment labels [B, T] for full supervision; a one-hot video label [B, 29] for weak.

    guide_targets adds the video label twice more, for the label-guided ablation's two heads.
    """
    video = tf.one_hot(parsed[records.VIDEO_LABEL], constants.NUM_CLASSES)
    main = parsed[records.LABEL] if supervision == FULL else video
    return (main, video, video) if guide_targets else main


def _normalizer(data_dir, info):
    stats = normalization.read_statistics(data_dir)
    audio_mean = tf.constant(np.asarray(stats["audio_mean"], np.float32))
    audio_std = tf.constant(np.asarray(stats["audio_std"], np.float32))
    visual_mean = tf.constant(np.asarray(stats["visual_mean"], np.float32))
    visual_std = tf.constant(np.asarray(stats["visual_std"], np.float32))

    def apply(parsed):
        parsed = dict(parsed)
        parsed[records.AUDIO] = (parsed[records.AUDIO] - audio_mean) / audio_std
        parsed[records.VISUAL] = (parsed[records.VISUAL] - visual_mean) / visual_std
        return parsed

    return apply


def decoded_gigabytes(info, split, include_noisy=False, max_videos=None):
    """The size of a split once parsed into float32 tensors, or None when videos differ in length."""
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
    records_ = files.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                                num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=True if max_videos or not training else None)
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
    """Parsed videos -> batches; videos of different lengths are padded to the longest of the batch."""
    if all(spec.shape.is_fully_defined() for spec in videos.element_spec.values()):
        return videos.batch(batch_size, drop_remainder=drop_remainder)
    return videos.padded_batch(batch_size, padding_values={
        key: (tf.constant(PAD_LABEL, tf.int32) if key == records.LABEL else None)
        for key in videos.element_spec}, drop_remainder=drop_remainder)


def _parsed_batches(serialized, info, batch_size, drop_remainder, deterministic=None):
    if info.num_segments is not None:
        # Whole batches parse several times faster than records one by one.
        return serialized.batch(batch_size, drop_remainder=drop_remainder).map(
            lambda batch: _parse_batches(batch, info), num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=deterministic)
    return _batch_videos(_parsed_each(serialized, info, deterministic), batch_size, drop_remainder)


def _parsed_each(serialized, info, deterministic=None):
    return serialized.map(lambda record: _parse_each(record, info), num_parallel_calls=tf.data.AUTOTUNE,
                          deterministic=deterministic)


def _parsed_videos(serialized, info, normalizer):
    """Serialized records -> parsed (and normalised) videos one by one, always in record order
    (what a cache holds must not depend on thread timing, or seeded shuffles would differ)."""
    fixed_length = info.num_segments is not None
    parsed = (_parsed_batches(serialized, info, 64, False, deterministic=True) if fixed_length
              else _parsed_each(serialized, info, deterministic=True))
    if normalizer:
        parsed = parsed.map(normalizer, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return parsed.unbatch() if fixed_length else parsed


def make_dataset(data_dir, split, batch_size, supervision=FULL, training=False, normalize=True,
                 include_noisy=False, deterministic=False, seed=0, epoch_seeds=None, cache=False,
                 input_context=None, max_videos=None, with_metadata=False, drop_remainder=False,
                 guide_targets=False):
    """A batched dataset of ({"audio", "visual"}, targets) for one split of `data_dir`.

    training shuffles (seeded); epoch_seeds makes one dataset of several epochs, epoch i shuffled
    by epoch_seeds[i] (so a resumed run sees the batches an uninterrupted one would have seen);
    cache reads and decodes the records once and keeps the videos in memory, and then each epoch
    shuffles the whole split; deterministic fixes the element order of the parallel reads;
    input_context (from distribute_datasets_from_function) shards by file; include_noisy adds the
    background-only videos (weak supervision); with_metadata yields the parsed record instead.
    """
    if supervision not in SUPERVISIONS:
        raise input_error("supervision", f"one of {SUPERVISIONS}", repr(supervision))
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
            raise input_error(f"{data_dir} split {split!r}",
                              f"at least {input_context.num_input_pipelines} shards to share by file",
                              f"{len(files)}")
        file_names = file_names.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    else:
        # Keras under MultiWorkerMirroredStrategy shards by file when there are enough files.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.AUTO

    normalizer = _normalizer(data_dir, info) if normalize else None
    seeds = [seed] if epoch_seeds is None else list(epoch_seeds)
    if cache:
        # Decoded and normalised once, in a fixed order; every epoch reuses the tensors in memory.
        videos = _parsed_videos(_serialized_records(file_names, False, None, max_videos), info, normalizer).cache()
        shuffle_size = min(videos_in_split, max_videos or videos_in_split)
        epochs = [_batch_videos(videos.shuffle(shuffle_size, seed=epoch_seed, reshuffle_each_iteration=True)
                                if training else videos, batch_size, drop_remainder)
                  for epoch_seed in seeds]
    else:
        epochs = []
        for epoch_seed in seeds:
            batches = _parsed_batches(_serialized_records(file_names, training, epoch_seed, max_videos),
                                      info, batch_size, drop_remainder)
            if normalizer:
                batches = batches.map(normalizer, num_parallel_calls=tf.data.AUTOTUNE)
            epochs.append(batches)
    dataset = epochs[0]
    for epoch in epochs[1:]:
        dataset = dataset.concatenate(epoch)
    if not with_metadata:
        dataset = dataset.map(
            lambda parsed: ({records.AUDIO: parsed[records.AUDIO], records.VISUAL: parsed[records.VISUAL]},
                            targets(parsed, supervision, guide_targets)),
            num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
