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


def make_dataset(data_dir, split, batch_size, supervision=FULL, training=False, normalize=True,
                 include_noisy=False, deterministic=False, seed=0, input_context=None,
                 max_videos=None, with_metadata=False, repeat=False, drop_remainder=False,
                 guide_targets=False):
    """A batched dataset of ({"audio", "visual"}, targets) for one split of `data_dir`.

    training shuffles (seeded); deterministic fixes the element order of the parallel reads;
    input_context (from distribute_datasets_from_function) shards by file; include_noisy adds the
    background-only videos (weak supervision); with_metadata yields the parsed record instead.
    """
    if supervision not in SUPERVISIONS:
        raise input_error("supervision", f"one of {SUPERVISIONS}", repr(supervision))
    info = dataset_info.read(data_dir)
    files = split_files(data_dir, info, split, include_noisy)
    if split_size(info, split, include_noisy) == 0:
        raise input_error(f"{data_dir} split {split!r}", "at least one video", "an empty split")
    missing = [path for path in files if not tf.io.gfile.exists(path)]
    if missing:
        raise input_error(missing[0], "a shard listed in dataset_info.json", "no such file")

    options = tf.data.Options()
    options.deterministic = deterministic or not training
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(files) < input_context.num_input_pipelines:
            raise input_error(f"{data_dir} split {split!r}",
                              f"at least {input_context.num_input_pipelines} shards to share by file",
                              f"{len(files)}")
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    else:
        # Keras under MultiWorkerMirroredStrategy shards by file when there are enough files.
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.AUTO
    # --max_videos must name one fixed subset, so the files it is taken from keep their order.
    if training and not max_videos:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(tf.data.TFRecordDataset, cycle_length=min(len(files), 8),
                                 num_parallel_calls=tf.data.AUTOTUNE,
                                 deterministic=True if max_videos else None)
    if max_videos:
        dataset = dataset.take(max_videos)
    if training:
        dataset = dataset.shuffle(2048, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()

    fixed_length = info.num_segments is not None
    if fixed_length:
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        def parse(serialized):
            parsed = records.parse_videos(serialized, info.audio_dim, info.visual_shape)
            # A static time axis lets models unroll their short LSTMs.
            for key in (records.AUDIO, records.VISUAL, records.LABEL):
                shape = [None, info.num_segments] + parsed[key].shape.as_list()[2:]
                parsed[key] = tf.ensure_shape(parsed[key], shape)
            return parsed

        dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        # Videos of different lengths: parse one by one, pad to the longest of the batch.
        def parse_one(serialized):
            parsed = records.parse_videos(serialized[None], info.audio_dim, info.visual_shape)
            return {key: value[0] for key, value in parsed.items()}

        dataset = dataset.map(parse_one, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.padded_batch(batch_size, padding_values={
            key: (tf.constant(PAD_LABEL, tf.int32) if key == records.LABEL else None)
            for key in dataset.element_spec}, drop_remainder=drop_remainder)
    if normalize:
        dataset = dataset.map(_normalizer(data_dir, info), num_parallel_calls=tf.data.AUTOTUNE)
    if not with_metadata:
        dataset = dataset.map(
            lambda parsed: ({records.AUDIO: parsed[records.AUDIO], records.VISUAL: parsed[records.VISUAL]},
                            targets(parsed, supervision, guide_targets)),
            num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)
