"""The serving graph: a variable-length copy of a trained model behind two signatures.

`serving_default`   audio [batch, time, A] and visual [batch, time, *visual_shape], float32, raw
                    (un-normalised) features; time may be any length >= 1.
`predict_examples`  examples [batch], serialized tf.train.SequenceExamples in the project's
                    record format (docs/data_format.md); records may differ in length.

Both return per-segment class probabilities, label ids and label names, the time-averaged class
distribution and the video-level label; predict_examples also returns the records' video ids and
their numbers of segments (per-segment outputs are padded to the longest record of the batch).

The video-level label: background (28) when no segment's arg-max is an event; otherwise the event
class with the highest time-averaged probability, i.e. arg-max over the 28 event classes of the
mean over all segments of segment_probs (the average pooling AVSDN's weak supervision uses).

The model normalises the features itself (its FeatureNormalization layers hold the train split's
statistics), so clients send raw features. predict_examples parses with records.parse_videos,
the parser training uses. Inputs the model cannot take fail inside the graph with
INVALID_ARGUMENT errors that name the input, expected and found.
"""

import dataclasses
import functools

import keras
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, records
from avsdn_tf.errors import input_error

SERVING_DEFAULT = "serving_default"
PREDICT_EXAMPLES = "predict_examples"
SIGNATURES = (SERVING_DEFAULT, PREDICT_EXAMPLES)

# Input names.
AUDIO = records.AUDIO
VISUAL = records.VISUAL
EXAMPLES = "examples"

# Output names.
SEGMENT_PROBS = "segment_probs"
SEGMENT_LABELS = "segment_labels"
SEGMENT_LABEL_NAMES = "segment_label_names"
VIDEO_PROBS = "video_probs"
VIDEO_LABEL = "video_label"
VIDEO_LABEL_NAME = "video_label_name"
VIDEO_ID = "video_id"
NUM_SEGMENTS = "num_segments"
OUTPUTS = (
    SEGMENT_PROBS,
    SEGMENT_LABELS,
    SEGMENT_LABEL_NAMES,
    VIDEO_PROBS,
    VIDEO_LABEL,
    VIDEO_LABEL_NAME,
)
EXAMPLE_OUTPUTS = (*OUTPUTS, VIDEO_ID, NUM_SEGMENTS)

# Largest difference in probability allowed between the SavedModel and the Keras model it came
# from (the unrolled fixed-length LSTMs and the looped variable-length ones round differently).
MATCH_TOLERANCE = 1e-5


@dataclasses.dataclass
class FeatureSpec:
    """What the served model takes: feature sizes and class names."""

    audio_dim: int
    visual_shape: tuple
    class_names: list

    @classmethod
    def of(cls, audio_dim, visual_shape, class_names, source="class names"):
        """A FeatureSpec with ints and a list of names, checked.

        Args:
            audio_dim: A. visual_shape: [V] or [H, W, C] (any sequence of ints).
            class_names: the K class names.
            source: where the names came from, for the error message.
        Returns:
            FeatureSpec.
        Raises:
            errors.UserError: when there are not K = 29 class names.
        """
        spec = cls(int(audio_dim), tuple(int(d) for d in visual_shape), list(class_names))
        if len(spec.class_names) != constants.NUM_CLASSES:
            raise input_error(source, f"{constants.NUM_CLASSES} names", len(spec.class_names))
        return spec

    def shape_text(self, name):
        """An input's shape as the error messages show it.

        Args:
            name: "audio" or "visual".
        Returns:
            str, e.g. "[batch, time, 128]" or "[batch, time, 7, 7, 512]".
        """
        dims = [self.audio_dim] if name == AUDIO else list(self.visual_shape)
        return "[batch, time, " + ", ".join(str(d) for d in dims) + "]"


def keras_predict(segment_model, audio, visual):
    """segment_probs [B, T, 29] of a Keras per-segment model on raw features [B, T, ...].

    Args:
        segment_model: a Keras model {"audio", "visual"} -> per-segment probabilities.
        audio: float [B, T, A] raw audio features.
        visual: float [B, T, *visual_shape] raw visual features ([B, T, V] or [B, T, H, W, C]).
    Returns:
        float32 [B, T, K] NumPy array (inference mode).
    """
    return np.asarray(
        segment_model(
            {AUDIO: np.asarray(audio, np.float32), VISUAL: np.asarray(visual, np.float32)},
            training=False,
        )
    )


def video_labels(segment_probs):
    """The video-level label of the module docstring, in NumPy: [B, T, 29] -> [B].

    Args:
        segment_probs: float [B, T, K] per-segment probabilities.
    Returns:
        int32 [B]: 28 (background) when no segment's arg-max is an event, else the arg-max over
        the 28 event classes of the time-averaged probabilities.
    """
    segment_probs = np.asarray(segment_probs)
    has_event = (segment_probs.argmax(-1) != constants.BACKGROUND).any(axis=1)
    event = segment_probs.mean(axis=1)[:, : constants.NUM_EVENT_CLASSES].argmax(-1)
    return np.where(has_event, event, constants.BACKGROUND).astype(np.int32)


def _rank(tensor):
    # The raw op, not tf.rank: tf.rank folds to the signature's static rank at trace time, but
    # TF Serving feeds whatever the client sent, so the check must look at the fed tensor.
    return tf.raw_ops.Rank(input=tensor)


def _check_shape(name, tensor, feature_shape, shape_text, dtype="float32"):
    """Assert rank 2 + len(feature_shape) and trailing dims == feature_shape, naming the input
    (its `dtype` is named in the message)."""
    shape = tf.shape(tensor)
    rank = 2 + len(feature_shape)
    padded = tf.concat([shape, tf.fill([rank], -1)], axis=0)  # so the slice exists for any rank
    ok = tf.logical_and(
        tf.equal(_rank(tensor), rank),
        tf.reduce_all(tf.equal(padded[2:rank], tf.constant(feature_shape, tf.int32))),
    )
    return tf.debugging.Assert(
        ok,
        [f"{name}: expected {dtype} of shape {shape_text}, found shape", shape],
        summarize=rank + 4,
        name=f"check_{name}_shape",
    )


class ServingGraph:
    """The two serving functions around a variable-length per-segment Keras model."""

    def __init__(self, segment_model, spec):
        self.model = segment_model
        self.spec = spec

    # -- signatures ------------------------------------------------------------------------
    def input_signatures(self):
        return {
            SERVING_DEFAULT: [
                tf.TensorSpec([None, None, self.spec.audio_dim], tf.float32, name=AUDIO),
                tf.TensorSpec([None, None, *self.spec.visual_shape], tf.float32, name=VISUAL),
            ],
            PREDICT_EXAMPLES: [tf.TensorSpec([None], tf.string, name=EXAMPLES)],
        }

    def serve(self, audio, visual):
        """serving_default: raw features in, predictions out (see the module docstring).

        Args:
            audio: float32 [B, T, A] raw audio features, T >= 1.
            visual: float32 [B, T, *visual_shape] raw visual features, the same B and T.
        Returns:
            dict: segment_probs float32 [B, T, K], segment_labels int32 [B, T],
            segment_label_names string [B, T], video_probs float32 [B, K], video_label int32
            [B], video_label_name string [B].
        Raises:
            tf.errors.InvalidArgumentError: for another rank or feature shape, audio and visual
                of different B or T, T = 0, or values that are not finite.
        """
        spec = self.spec
        shape_checks = [
            _check_shape(AUDIO, audio, [spec.audio_dim], spec.shape_text(AUDIO)),
            _check_shape(VISUAL, visual, list(spec.visual_shape), spec.shape_text(VISUAL)),
        ]
        with tf.control_dependencies(shape_checks):  # only once the ranks are known to be right
            audio_shape, visual_shape = tf.shape(audio), tf.shape(visual)
            agree = tf.debugging.Assert(
                tf.reduce_all(tf.equal(audio_shape[:2], visual_shape[:2])),
                [
                    "audio and visual: expected the same [batch, time], found audio",
                    audio_shape[:2],
                    "and visual",
                    visual_shape[:2],
                ],
                name="check_same_batch_and_time",
            )
            nonempty = tf.debugging.Assert(
                audio_shape[1] >= 1,
                ["audio and visual: expected time >= 1 segment, found", audio_shape[1]],
                name="check_time",
            )
        with tf.control_dependencies([agree, nonempty]):
            audio = tf.debugging.assert_all_finite(
                audio, "audio: expected finite values (no NaN or Inf)"
            )
            visual = tf.debugging.assert_all_finite(
                visual, "visual: expected finite values (no NaN or Inf)"
            )
        return self._predict(audio, visual)

    def serve_examples(self, examples):
        """predict_examples: serialized SequenceExamples in, predictions and video ids out.

        Records of one length run as one batch. Records of different lengths (which also meet
        in one batch when TF Serving's batching merges requests) run one by one, each at its own
        length, and their per-segment outputs are padded to the longest: segment_probs with 0,
        segment_labels with constants.PAD_LABEL (-1), segment_label_names with ""; num_segments
        says where each ends.

        Args:
            examples: string [B] serialized SequenceExamples (audio and visual feature lists,
                optionally video_id).
        Returns:
            serve()'s dict with T the longest record, plus video_id string [B] ("" when a
            record has none) and num_segments int32 [B].
        Raises:
            tf.errors.InvalidArgumentError: for examples not of rank 1, records that do not
                parse, audio and visual lengths that differ, an empty record, or values that
                are not finite.
        """
        spec = self.spec
        rank_check = tf.debugging.Assert(
            tf.equal(_rank(examples), 1),
            [
                (
                    "examples: expected a 1-D string tensor [batch] of serialized SequenceExamples,"
                    " found shape"
                ),
                tf.shape(examples),
            ],
            name="check_examples_shape",
        )
        nonempty_batch = tf.debugging.Assert(
            tf.size(examples) >= 1,
            [
                (
                    "examples: expected a batch of at least 1 serialized SequenceExample, found an"
                    " empty batch of shape"
                ),
                tf.shape(examples),
            ],
            name="check_examples_nonempty_batch",
        )
        with tf.control_dependencies([rank_check, nonempty_batch]):
            examples = tf.identity(examples)
        parsed = records.parse_videos(
            examples, spec.audio_dim, spec.visual_shape, features_only=True
        )
        audio_lengths, visual_lengths = parsed[records.AUDIO_LENGTH], parsed[records.VISUAL_LENGTH]
        checks = [
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(audio_lengths, visual_lengths)),
                [
                    (
                        "examples: expected as many 'visual' as 'audio' entries in every record, "
                        "found audio lengths"
                    ),
                    audio_lengths,
                    "visual lengths",
                    visual_lengths,
                ],
                name="check_examples_lengths",
            ),
            tf.debugging.Assert(
                tf.reduce_all(audio_lengths >= 1),
                [
                    "examples: expected at least one segment per record, found lengths",
                    audio_lengths,
                ],
                name="check_examples_nonempty",
            ),
        ]
        with tf.control_dependencies(checks):
            audio = tf.debugging.assert_all_finite(
                parsed[AUDIO],
                "examples: feature list 'audio': expected finite values (no NaN or Inf)",
            )
            visual = tf.debugging.assert_all_finite(
                parsed[VISUAL],
                "examples: feature list 'visual': expected finite values (no NaN or Inf)",
            )
        longest = tf.shape(visual)[1]

        def one_video(video):
            """One record's outputs at its own length, per-segment ones padded to `longest`.

            Args:
                video: (audio float32 [T_max, A], visual float32 [T_max, *visual_shape],
                    length int32), T_max the longest record.
            Returns:
                dict of serve()'s outputs without the batch dim: segment_* [T_max, ...] padded,
                video_probs [K], video_label and video_label_name scalars.
            """
            video_audio, video_visual, length = video
            outputs = self._predict(video_audio[None, :length], video_visual[None, :length])
            padding = longest - length
            return {
                SEGMENT_PROBS: tf.pad(outputs[SEGMENT_PROBS][0], [[0, padding], [0, 0]]),
                SEGMENT_LABELS: tf.pad(
                    outputs[SEGMENT_LABELS][0], [[0, padding]], constant_values=constants.PAD_LABEL
                ),
                SEGMENT_LABEL_NAMES: tf.pad(
                    outputs[SEGMENT_LABEL_NAMES][0], [[0, padding]], constant_values=""
                ),
                VIDEO_PROBS: outputs[VIDEO_PROBS][0],
                VIDEO_LABEL: outputs[VIDEO_LABEL][0],
                VIDEO_LABEL_NAME: outputs[VIDEO_LABEL_NAME][0],
            }

        classes = constants.NUM_CLASSES
        one_by_one = functools.partial(
            tf.map_fn,
            one_video,
            (audio, visual, audio_lengths),
            fn_output_signature={
                SEGMENT_PROBS: tf.TensorSpec([None, classes], tf.float32),
                SEGMENT_LABELS: tf.TensorSpec([None], tf.int32),
                SEGMENT_LABEL_NAMES: tf.TensorSpec([None], tf.string),
                VIDEO_PROBS: tf.TensorSpec([classes], tf.float32),
                VIDEO_LABEL: tf.TensorSpec([], tf.int32),
                VIDEO_LABEL_NAME: tf.TensorSpec([], tf.string),
            },
        )
        outputs = tf.cond(
            tf.reduce_all(tf.equal(audio_lengths, longest)),
            lambda: self._predict(audio, visual),
            one_by_one,
        )
        outputs[VIDEO_ID] = tf.identity(parsed[records.VIDEO_ID])
        outputs[NUM_SEGMENTS] = audio_lengths
        return outputs

    # -- the shared part -------------------------------------------------------------------
    def _predict(self, audio, visual):
        spec = self.spec
        probs = self.model({AUDIO: audio, VISUAL: visual}, training=False)  # normalises inside
        labels = tf.argmax(probs, axis=-1, output_type=tf.int32)
        names = tf.constant(spec.class_names)
        video_probs = tf.reduce_mean(probs, axis=1)
        has_event = tf.reduce_any(tf.not_equal(labels, constants.BACKGROUND), axis=1)
        event = tf.argmax(
            video_probs[:, : constants.NUM_EVENT_CLASSES], axis=-1, output_type=tf.int32
        )
        video_label = tf.where(has_event, event, tf.constant(constants.BACKGROUND, tf.int32))
        return {
            SEGMENT_PROBS: tf.identity(probs),
            SEGMENT_LABELS: labels,
            SEGMENT_LABEL_NAMES: tf.gather(names, labels),
            VIDEO_PROBS: video_probs,
            VIDEO_LABEL: video_label,
            VIDEO_LABEL_NAME: tf.gather(names, video_label),
        }

    # -- writing ---------------------------------------------------------------------------
    def archive(self):
        """A keras.export.ExportArchive holding the model's variables and both signatures."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        signatures = self.input_signatures()
        archive.add_endpoint(
            SERVING_DEFAULT, self.serve, input_signature=signatures[SERVING_DEFAULT]
        )
        archive.add_endpoint(
            PREDICT_EXAMPLES, self.serve_examples, input_signature=signatures[PREDICT_EXAMPLES]
        )
        return archive

    def write(self, path):
        """Write the SavedModel with both signatures (archive()).

        Args:
            path: the SavedModel directory to write (local or a storage URL).
        Returns:
            None.
        """
        self.archive().write_out(path, verbose=False)
