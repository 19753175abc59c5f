"""The on-disk record: one tf.train.SequenceExample per video (see docs/data_format.md).

Context holds what is true of the whole video; feature lists hold one entry per 1-s segment, the
way YouTube-8M stores frame-level features.
"""

import numpy as np
import tensorflow as tf

# Context keys.
VIDEO_ID = "video_id"
CATEGORY = "category"
EVENT_START = "event_start"
EVENT_END = "event_end"
VIDEO_LABEL = "video_label"
# Feature-list keys.
AUDIO = "audio"
VISUAL = "visual"
LABEL = "label"


def model_inputs(parsed):
    """The model's inputs of a parsed batch, raw (the model normalises them itself).

    Args:
        parsed: a dict from parse_videos with "audio" and "visual".
    Returns:
        {"audio": float32 [B, T, A], "visual": float32 [B, T, V] or [B, T, H, W, C]}.
    """
    return {AUDIO: parsed[AUDIO], VISUAL: parsed[VISUAL]}


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def float_feature_list(rows):
    """A FeatureList with one FloatList per row of a 2-D array, about 100x faster than building it.

    The same message as `FeatureList(feature=[Feature(float_list=FloatList(value=row)) ...])`: the
    wire bytes are assembled from the array's little-endian float32 buffer and parsed in C, instead
    of converting a 7x7x512 map one Python float at a time.

    Args:
        rows: array-like [T, D] (cast to float32).
    Returns:
        tf.train.FeatureList with T features of D floats each.
    """
    rows = np.ascontiguousarray(rows, dtype="<f4")
    parts = []
    for row in rows:
        data = row.tobytes()
        float_list = b"\x0a" + _varint(len(data)) + data  # FloatList.value = 1, packed
        feature = b"\x12" + _varint(len(float_list)) + float_list  # Feature.float_list = 2
        parts.append(b"\x0a" + _varint(len(feature)) + feature)  # FeatureList.feature = 1
    return tf.train.FeatureList.FromString(b"".join(parts))


def encode_video(video_id, category, event_start, event_end, video_label, audio, visual, labels):
    """Serialize one video as a tf.train.SequenceExample (the project's record format).

    Args:
        video_id: str or bytes.
        category: int event class id (constants.NO_CATEGORY for none).
        event_start, event_end: the annotated event, in segments (end exclusive).
        video_label: int class id of the video-level label.
        audio: float array [T, A].
        visual: float array [T, V] or [T, H, W, C] (stored flattened per segment).
        labels: int array [T] segment labels.
    Returns:
        bytes: the serialized SequenceExample.
    """
    audio = np.asarray(audio, dtype=np.float32)
    visual = np.asarray(visual, dtype=np.float32).reshape(len(audio), -1)
    labels = np.asarray(labels, dtype=np.int64)
    context = tf.train.Features(
        feature={
            VIDEO_ID: _bytes(video_id.encode("utf-8") if isinstance(video_id, str) else video_id),
            CATEGORY: _int(category),
            EVENT_START: _int(event_start),
            EVENT_END: _int(event_end),
            VIDEO_LABEL: _int(video_label),
        }
    )
    feature_lists = tf.train.FeatureLists(
        feature_list={
            AUDIO: float_feature_list(audio),
            VISUAL: float_feature_list(visual),
            LABEL: tf.train.FeatureList(feature=[_int(label) for label in labels]),
        }
    )
    example = tf.train.SequenceExample(context=context, feature_lists=feature_lists)
    return example.SerializeToString()


# Per-record lengths, in what parse_videos(..., features_only=True) returns.
AUDIO_LENGTH = "audio_length"
VISUAL_LENGTH = "visual_length"


def _specs(audio_dim, visual_shape, features_only):
    sequence = {
        AUDIO: tf.io.FixedLenSequenceFeature([audio_dim], tf.float32),
        VISUAL: tf.io.FixedLenSequenceFeature([int(np.prod(visual_shape))], tf.float32),
    }
    if features_only:  # what a client sends to be served: the features and, optionally, an id
        return {VIDEO_ID: tf.io.FixedLenFeature([], tf.string, default_value="")}, sequence
    context = {
        VIDEO_ID: tf.io.FixedLenFeature([], tf.string),
        CATEGORY: tf.io.FixedLenFeature([], tf.int64),
        EVENT_START: tf.io.FixedLenFeature([], tf.int64),
        EVENT_END: tf.io.FixedLenFeature([], tf.int64),
        VIDEO_LABEL: tf.io.FixedLenFeature([], tf.int64),
    }
    sequence[LABEL] = tf.io.FixedLenSequenceFeature([], tf.int64)
    return context, sequence


def parse_videos(serialized, audio_dim, visual_shape, features_only=False):
    """Parse a batch of serialized records into a dict of dense tensors: the one record parser
    (training, evaluation and the predict_examples serving signature).

    Args:
        serialized: [B] serialized SequenceExamples.
        audio_dim: A. visual_shape: [D] or [H, W, C] (records store visual flattened).
        features_only: parse only what serving needs (video_id, default "", audio, visual),
            and the per-record lengths; records may then differ in length.
    Returns:
        video_id [B], category [B], event_start [B], event_end [B], video_label [B],
        audio [B, T, A], visual [B, T, *visual_shape], label [B, T], all of one length T; with
        features_only: video_id, audio, visual padded with zeros to the longest record T, and
        audio_length [B], visual_length [B] int32.
    """
    context_spec, sequence_spec = _specs(audio_dim, visual_shape, features_only)
    context, sequence, lengths = tf.io.parse_sequence_example(
        serialized, context_features=context_spec, sequence_features=sequence_spec
    )
    batch = tf.shape(serialized)[0]
    visual = tf.reshape(sequence[VISUAL], tf.concat([[batch, -1], list(visual_shape)], axis=0))
    parsed = dict(context)
    parsed.update({AUDIO: sequence[AUDIO], VISUAL: visual})
    if features_only:
        parsed[AUDIO_LENGTH] = tf.cast(lengths[AUDIO], tf.int32)
        parsed[VISUAL_LENGTH] = tf.cast(lengths[VISUAL], tf.int32)
        return parsed
    parsed[LABEL] = tf.cast(sequence[LABEL], tf.int32)
    parsed[VIDEO_LABEL] = tf.cast(parsed[VIDEO_LABEL], tf.int32)
    return parsed


def decode_video(serialized, audio_dim, visual_shape):
    """Parse one serialized record eagerly into NumPy values (for tools and tests).

    Args:
        serialized: bytes of one record (encode_video).
        audio_dim: A.
        visual_shape: the per-segment visual shape, [V] or [H, W, C].
    Returns:
        dict as parse_videos gives, without the batch axis: "audio" [T, A], "visual"
        [T, *visual_shape], "label" [T], and the context fields as scalars.
    """
    parsed = parse_videos(tf.constant([serialized]), audio_dim, visual_shape)
    return {key: value.numpy()[0] for key, value in parsed.items()}


def summarize_record(serialized):
    """Video id, number of segments and segment labels of one record, without knowing its dims.

    Args:
        serialized: bytes of one tf.train.SequenceExample in this format.
    Returns:
        (video_id str ("" when absent), T, labels list of T ints or None when unlabelled).
    Raises:
        ValueError: saying what is wrong (not a SequenceExample, or no 'audio' feature list).
    """
    try:
        example = tf.train.SequenceExample.FromString(serialized)
    except Exception:  # protobuf's DecodeError
        raise ValueError("a record that is not a tf.train.SequenceExample") from None
    lists = example.feature_lists.feature_list
    if AUDIO not in lists:
        raise ValueError(f"feature lists {sorted(lists)} without {AUDIO!r}")
    video_id = example.context.feature[VIDEO_ID].bytes_list.value
    labels = lists[LABEL].feature if LABEL in lists else None
    return (
        video_id[0].decode("utf-8", "replace") if video_id else "",
        len(lists[AUDIO].feature),
        [feature.int64_list.value[0] for feature in labels] if labels else None,
    )
