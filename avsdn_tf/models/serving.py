"""What a segment classifier serves: a variable-length copy of the trained model behind two
signatures, the cases its export is verified against, and its warmup requests (the task's
`serving`; export/ writes, verifies and publishes whatever a task serves).

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

A model with its own decoding (e.g. CMBS: a segment is the event class where sigmoid(is_event) >
0.5, else background) returns {"segment_probs", "segment_labels"} and its labels are served as they
are; otherwise segment_labels is the arg-max of segment_probs.

The model normalises the features itself (its FeatureNormalization layers hold the train split's
statistics), so clients send raw features. predict_examples parses with records.parse_videos,
the parser training uses. Inputs the model cannot take fail inside the graph with
INVALID_ARGUMENT errors that name the input, expected and found.
"""

import dataclasses
import json
import os

import keras
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio, records
from avsdn_tf.errors import UserError, input_error

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
        segment_model: a Keras model {"audio", "visual"} -> per-segment probabilities (or a dict
            holding them as "segment_probs").
        audio: float [B, T, A] raw audio features.
        visual: float [B, T, *visual_shape] raw visual features ([B, T, V] or [B, T, H, W, C]).
    Returns:
        float32 [B, T, K] NumPy array (inference mode).
    """
    outputs = segment_model(
        {AUDIO: np.asarray(audio, np.float32), VISUAL: np.asarray(visual, np.float32)},
        training=False,
    )
    if isinstance(outputs, dict):
        outputs = outputs[SEGMENT_PROBS]
    return np.asarray(outputs)


def video_labels(segment_probs, segment_labels=None):
    """The video-level label of the module docstring, in NumPy: [B, T, 29] -> [B].

    Args:
        segment_probs: float [B, T, K] per-segment probabilities.
        segment_labels: int [B, T] per-segment labels of a model with its own decoding; default
            the arg-max of segment_probs.
    Returns:
        int32 [B]: 28 (background) when no segment's label is an event, else the arg-max over
        the 28 event classes of the time-averaged probabilities.
    """
    segment_probs = np.asarray(segment_probs)
    if segment_labels is None:
        segment_labels = segment_probs.argmax(-1)
    has_event = (np.asarray(segment_labels) != constants.BACKGROUND).any(axis=1)
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


def _checked_examples(examples):
    """`examples` once it is known to be a non-empty 1-D batch (an in-graph check, one message).

    Args:
        examples: the predict_examples input as fed.
    Returns:
        the same tensor, after the checks.
    """
    rank_check = tf.debugging.Assert(
        tf.equal(_rank(examples), 1),
        [
            "examples: expected a 1-D string tensor [batch] of serialized SequenceExamples, "
            "found shape",
            tf.shape(examples),
        ],
        name="check_examples_shape",
    )
    nonempty_batch = tf.debugging.Assert(
        tf.size(examples) >= 1,
        [
            "examples: expected a batch of at least 1 serialized SequenceExample, found an empty "
            "batch of shape",
            tf.shape(examples),
        ],
        name="check_examples_nonempty_batch",
    )
    with tf.control_dependencies([rank_check, nonempty_batch]):
        return tf.identity(examples)


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
        parsed, audio, visual = self._parse_checked(_checked_examples(examples))
        lengths = parsed[records.AUDIO_LENGTH]
        longest = tf.shape(visual)[1]
        outputs = tf.cond(
            tf.reduce_all(tf.equal(lengths, longest)),
            lambda: self._predict(audio, visual),
            lambda: self._one_by_one(audio, visual, lengths, longest),
        )
        outputs[VIDEO_ID] = tf.identity(parsed[records.VIDEO_ID])
        outputs[NUM_SEGMENTS] = lengths
        return outputs

    def _parse_checked(self, examples):
        """Parse the records (records.parse_videos) and check their lengths and values.

        Args:
            examples: string [B], checked to be a non-empty batch.
        Returns:
            (parsed dict, audio float32 [B, T_max, A], visual float32 [B, T_max, ...]).
        """
        spec = self.spec
        parsed = records.parse_videos(
            examples, spec.audio_dim, spec.visual_shape, features_only=True
        )
        audio_lengths, visual_lengths = parsed[records.AUDIO_LENGTH], parsed[records.VISUAL_LENGTH]
        checks = [
            tf.debugging.Assert(
                tf.reduce_all(tf.equal(audio_lengths, visual_lengths)),
                [
                    "examples: expected as many 'visual' as 'audio' entries in every record, "
                    "found audio lengths",
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
        return parsed, audio, visual

    def _one_by_one(self, audio, visual, lengths, longest):
        """Each record at its own length, per-segment outputs padded to `longest`.

        Args:
            audio, visual: float32 [B, T_max, ...]. lengths: int32 [B]. longest: T_max.
        Returns:
            serve()'s dict of [B, T_max, ...] per-segment outputs and [B] video outputs.
        """

        def one_video(video):
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
        return tf.map_fn(
            one_video,
            (audio, visual, lengths),
            fn_output_signature={
                SEGMENT_PROBS: tf.TensorSpec([None, classes], tf.float32),
                SEGMENT_LABELS: tf.TensorSpec([None], tf.int32),
                SEGMENT_LABEL_NAMES: tf.TensorSpec([None], tf.string),
                VIDEO_PROBS: tf.TensorSpec([classes], tf.float32),
                VIDEO_LABEL: tf.TensorSpec([], tf.int32),
                VIDEO_LABEL_NAME: tf.TensorSpec([], tf.string),
            },
        )

    # -- the shared part -------------------------------------------------------------------
    def _predict(self, audio, visual):
        spec = self.spec
        outputs = self.model({AUDIO: audio, VISUAL: visual}, training=False)  # normalises inside
        if isinstance(outputs, dict):  # a model with its own decoding
            probs, labels = outputs[SEGMENT_PROBS], outputs[SEGMENT_LABELS]
        else:
            probs, labels = outputs, tf.argmax(outputs, axis=-1, output_type=tf.int32)
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


# ---------------------------------------------------------------------------------------------
# What the export of a segment classifier is verified against (export/ writes and checks them).

REFERENCE_FILE = "reference.json"


class Mismatch(Exception):
    """A served output that differs from the Keras model's (the verification's one failure)."""


def keras_outputs(model, audio, visual):
    """segment_probs [B, T, K] and segment_labels [B, T] of a Keras per-segment model.

    Args:
        model: a per-segment model (probabilities, or {"segment_probs", "segment_labels"}).
        audio, visual: raw features [B, T, ...].
    Returns:
        (probs float32 [B, T, K], labels int32 [B, T]) NumPy arrays.
    """
    outputs = model(
        {AUDIO: np.asarray(audio, np.float32), VISUAL: np.asarray(visual, np.float32)},
        training=False,
    )
    if isinstance(outputs, dict):
        probs, labels = outputs[SEGMENT_PROBS], outputs[SEGMENT_LABELS]
    else:
        probs, labels = outputs, np.asarray(outputs).argmax(-1)
    return np.asarray(probs, np.float32), np.asarray(labels, np.int32)


def _other_length(length):
    return length - 3 if length > 3 else length + 2


def _resize_time(array, length):
    """Crop, or tile and crop, the time axis (axis 1) to `length`."""
    repeats = -(-length // array.shape[1])
    return np.concatenate([array] * repeats, axis=1)[:, :length]


def _background_record(video_id, audio, visual):
    """A record of raw features with no event (what predict_examples is verified on)."""
    return records.encode_video(
        video_id,
        constants.NO_CATEGORY,
        0,
        0,
        constants.BACKGROUND,
        audio,
        visual,
        np.full(len(audio), constants.BACKGROUND),
    )


def _case(audio, visual, examples, ids, model):
    probs, labels = keras_outputs(model, audio, visual)
    return dict(
        audio=audio, visual=visual, examples=examples, ids=ids, expected=probs, labels=labels
    )


class SegmentServing:
    """The serving of a segment classifier run: its graph, reference cases, warmup and check.

    Attributes:
        signatures: the signature names it serves. outputs: {signature: output names}.
        batch_output: an output whose first dim is the batch (warmup replay checks it).
    """

    signatures = SIGNATURES
    outputs = {SERVING_DEFAULT: list(OUTPUTS), PREDICT_EXAMPLES: list(EXAMPLE_OUTPUTS)}
    batch_output = SEGMENT_PROBS

    def __init__(self, run, serving_model, spec):
        """Args:
        run: the loaded run (registry.LoadedRun): its trained per-segment model, statistics,
            feature sizes and checkpoint.
        serving_model: the variable-length rebuild of the run's per-segment model.
        spec: FeatureSpec of what it serves.
        """
        self.run, self.model, self.spec = run, serving_model, spec
        self.graph = ServingGraph(serving_model, spec)

    def write(self, path):
        """Write the SavedModel (ServingGraph.write)."""
        self.graph.write(path)

    def describe(self):
        """What avsdn_export.json records about the served model besides the run."""
        return {"trained_num_segments": self.run.num_segments, "class_names": self.spec.class_names}

    def _random_videos(self, count, rng):
        """Videos drawn from the model's normalisation statistics (no records at hand)."""
        statistics = self.run.statistics()
        length = self.run.num_segments or constants.NUM_SEGMENTS
        videos = []
        for i in range(count):
            audio = statistics["audio_mean"] + statistics["audio_std"] * rng.standard_normal(
                (length, self.spec.audio_dim)
            )
            visual = statistics["visual_mean"] + statistics["visual_std"] * rng.standard_normal(
                (length, *self.spec.visual_shape)
            )
            serialized = _background_record(f"random_{i}", audio, visual)
            video = records.decode_video(serialized, self.spec.audio_dim, self.spec.visual_shape)
            videos.append((serialized, video))
        return videos

    def cases(self, videos, count, seed=0):
        """Batches with the outputs the SavedModel must reproduce, and the video ids they carry.

        "trained_length": the videos at the length the model was trained on, expected outputs
        from the trained Keras model itself; "other_length": the same videos cut (or tiled) to
        another length, expected outputs from the variable-length Keras model (checked against
        the trained one on the first case).

        Args:
            videos: [(serialized record, decoded video)] of one length from the run's data, or
                None: videos drawn from the model's normalisation statistics.
            count: B, videos per batch when they are drawn.
            seed: the seed of the drawn videos.
        Returns:
            (cases, notes): cases {"trained_length", "other_length"} -> dict with audio float32
            [B, T, A], visual float32 [B, T, *visual_shape], examples (B serialized records),
            ids (B video ids), expected float32 [B, T, K] segment_probs and labels int32 [B, T]
            (T = the trained length, then T - 3, or T + 2 when T <= 3); notes
            {"rebuild_max_difference"}.
        Raises:
            errors.UserError: when the records' length differs from the model's fixed input
                length, or the rebuild differs from the trained model by more than
                MATCH_TOLERANCE.
        """
        videos = videos or self._random_videos(count, np.random.default_rng(seed))
        ids = [video[records.VIDEO_ID].decode("utf-8", "replace") for _, video in videos]
        audio = np.stack([video[records.AUDIO] for _, video in videos]).astype(np.float32)
        visual = np.stack([video[records.VISUAL] for _, video in videos]).astype(np.float32)
        trained_length = self.run.model.inputs[0].shape[1]
        if trained_length not in (None, audio.shape[1]):
            raise input_error(
                f"{self.run.data_dir} records",
                f"videos of {trained_length} segments like the model's input",
                f"{audio.shape[1]} segments",
            )
        trained = _case(audio, visual, [s for s, _ in videos], ids, self.run.segment_model)
        rebuilt, _ = keras_outputs(self.model, audio, visual)
        difference = float(np.abs(trained["expected"] - rebuilt).max())
        if difference > MATCH_TOLERANCE:
            raise UserError(
                f"the variable-length rebuild of {self.run.checkpoint} differs from it by "
                f"{difference:.2e} (tolerance {MATCH_TOLERANCE:.0e}); not exporting"
            )
        length = _other_length(audio.shape[1])
        short_audio, short_visual = _resize_time(audio, length), _resize_time(visual, length)
        examples = [
            _background_record(video_id, a, v)
            for video_id, a, v in zip(ids, short_audio, short_visual)
        ]
        cases = {
            "trained_length": trained,
            "other_length": _case(short_audio, short_visual, examples, ids, self.model),
        }
        return cases, {"rebuild_max_difference": difference}

    def warmup(self, cases):
        """Real requests for TF Serving to replay at load: batch 1, a few videos, both signatures.

        Args:
            cases: cases()'s (the "trained_length" one is used).
        Returns:
            [(signature name, {input name: array})]: serving_default with audio [1, T, A] and
            visual [1, T, *visual_shape], the same with min(4, B) videos, predict_examples with
            one record.
        """
        case = cases["trained_length"]
        several = min(4, len(case["ids"]))
        return [
            (SERVING_DEFAULT, {AUDIO: case["audio"][:1], VISUAL: case["visual"][:1]}),
            (SERVING_DEFAULT, {AUDIO: case["audio"][:several], VISUAL: case["visual"][:several]}),
            (PREDICT_EXAMPLES, {EXAMPLES: np.array(case["examples"][:1], dtype=object)}),
        ]

    def write_reference(self, directory, cases):
        """The cases as files a fresh process reads: one .npz and one TFRecord per case.

        Args:
            directory: an existing local directory.
            cases: cases()'s.
        Returns:
            dict for reference.json (ids per case, class_names, tolerance); writes
            <case>.npz (audio, visual, expected, labels) and <case>.tfrecord.
        """
        for name, case in cases.items():
            arrays = {key: case[key] for key in ("audio", "visual", "expected", "labels")}
            np.savez(os.path.join(directory, f"{name}.npz"), **arrays)
            with tf.io.TFRecordWriter(os.path.join(directory, f"{name}.tfrecord")) as writer:
                for serialized in case["examples"]:
                    writer.write(serialized)
        return {
            "cases": {name: {"ids": case["ids"]} for name, case in cases.items()},
            "class_names": self.spec.class_names,
            "tolerance": MATCH_TOLERANCE,
        }

    @staticmethod
    def check(loaded, reference_dir, reference):
        """Check a SavedModel (tf.saved_model.load) against the reference cases.

        Both signatures are run on each case and compared with the Keras model's segment_probs
        [B, T, K] (within the reference's tolerance), labels, names, video labels and ids; then
        a request mixing two lengths.

        Args:
            loaded: the loaded SavedModel. reference_dir: write_reference's directory.
            reference: its reference.json.
        Returns:
            (checked, largest): list of what was compared, the largest probability difference.
        Raises:
            Mismatch: when a signature is missing or an output differs.
        """
        missing = [name for name in SIGNATURES if name not in loaded.signatures]
        if missing:
            raise Mismatch(f"signatures {missing} missing; found {sorted(loaded.signatures)}")
        serve_examples = loaded.signatures[PREDICT_EXAMPLES]
        tolerance, class_names = reference["tolerance"], reference["class_names"]
        checked, largest, cases = [], 0.0, {}
        for name, case in reference["cases"].items():
            arrays = dict(np.load(os.path.join(reference_dir, f"{name}.npz"), allow_pickle=False))
            examples = [
                record.numpy()
                for record in tf.data.TFRecordDataset(
                    os.path.join(reference_dir, f"{name}.tfrecord")
                )
            ]
            expected = (arrays["expected"], arrays["labels"])
            length = arrays["audio"].shape[1]
            largest = max(
                largest,
                _check_case(loaded, arrays, examples, case["ids"], class_names, tolerance),
            )
            checked += [f"{SERVING_DEFAULT}@{length}", f"{PREDICT_EXAMPLES}@{length}"]
            cases[name] = (expected, examples)
        largest = max(largest, _check_mixed_lengths(serve_examples, cases, class_names, tolerance))
        checked.append(f"{PREDICT_EXAMPLES}@mixed")
        return checked, largest


def _check_case(loaded, arrays, examples, ids, class_names, tolerance):
    """Both signatures on one reference case; the largest probability difference."""
    expected = (arrays["expected"], arrays["labels"])
    length = arrays["audio"].shape[1]
    outputs = loaded.signatures[SERVING_DEFAULT](
        audio=tf.constant(arrays["audio"]), visual=tf.constant(arrays["visual"])
    )
    where = f"{SERVING_DEFAULT} at {length} segments"
    largest = _check_outputs(where, outputs, expected, class_names, tolerance)
    outputs = loaded.signatures[PREDICT_EXAMPLES](examples=tf.constant(examples))
    where = f"{PREDICT_EXAMPLES} at {length} segments"
    largest = max(largest, _check_outputs(where, outputs, expected, class_names, tolerance, ids))
    if not np.array_equal(outputs[NUM_SEGMENTS].numpy(), np.full(len(examples), length)):
        raise Mismatch(f"{where}: num_segments {outputs[NUM_SEGMENTS].numpy().tolist()}")
    return largest


def _check_labels(where, outputs, expected, tolerance):
    """segment_labels against the Keras model's, where its decision is clear of rounding."""
    probs, labels = expected
    found = outputs[SEGMENT_LABELS].numpy()
    top2 = np.sort(probs, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 2 * tolerance  # ties may break either way
    if not np.array_equal(labels, probs.argmax(-1)):  # the model's own decoding: exact labels
        clear = np.ones_like(clear)
    if not np.array_equal(found[clear], labels[clear]):
        raise Mismatch(f"{where}: segment_labels are not the Keras model's labels")
    return found


def _check_outputs(where, outputs, expected, class_names, tolerance, ids=None):
    probs = outputs[SEGMENT_PROBS].numpy()
    if probs.shape != expected[0].shape:
        raise Mismatch(
            f"{where}: segment_probs has shape {list(probs.shape)}, the Keras model's"
            f" {list(expected[0].shape)}"
        )
    difference = float(np.abs(probs - expected[0]).max())
    if not difference <= tolerance:
        raise Mismatch(
            f"{where}: segment_probs differ from the Keras model's by {difference:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    labels = _check_labels(where, outputs, expected, tolerance)
    names = np.array(class_names, dtype=object)
    decoded = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])
    if not np.array_equal(decoded(outputs[SEGMENT_LABEL_NAMES].numpy()), names[labels]):
        raise Mismatch(f"{where}: segment_label_names do not name segment_labels")
    video_label = outputs[VIDEO_LABEL].numpy()
    if not np.array_equal(video_label, video_labels(probs, labels)):
        raise Mismatch(f"{where}: video_label does not follow the documented rule")
    if not np.array_equal(decoded(outputs[VIDEO_LABEL_NAME].numpy()), names[video_label]):
        raise Mismatch(f"{where}: video_label_name does not name video_label")
    if ids is not None:
        found = [b.decode("utf-8", "replace") for b in outputs[VIDEO_ID].numpy()]
        if found != ids:
            raise Mismatch(f"{where}: video_id {found} is not the records' {ids}")
    return difference


def _check_mixed_lengths(serve_examples, cases, class_names, tolerance):
    """One request holding records of two lengths: each video as if it had been sent alone."""
    (first_expected, first_examples), (second_expected, second_examples) = cases.values()
    if len(first_examples) < 2:
        return 0.0
    outputs = serve_examples(examples=tf.constant([first_examples[0], second_examples[1]]))
    lengths = [first_expected[0].shape[1], second_expected[0].shape[1]]
    found = outputs[NUM_SEGMENTS].numpy().tolist()
    if found != lengths:
        raise Mismatch(
            f"{PREDICT_EXAMPLES} with mixed lengths: num_segments {found}, expected {lengths}"
        )
    labels = outputs[SEGMENT_LABELS].numpy()
    if labels.shape != (2, max(lengths)) or any(
        (labels[row, length:] != constants.PAD_LABEL).any() for row, length in enumerate(lengths)
    ):
        raise Mismatch(
            f"{PREDICT_EXAMPLES} with mixed lengths: segment_labels {labels.tolist()} "
            f"are not padded with {constants.PAD_LABEL}"
        )
    per_segment = (SEGMENT_PROBS, SEGMENT_LABELS, SEGMENT_LABEL_NAMES)
    largest = 0.0
    for row, expected in ((0, first_expected), (1, second_expected)):
        index = 0 if row == 0 else 1
        single = {
            key: (
                value[row : row + 1, : lengths[row]] if key in per_segment else value[row : row + 1]
            )
            for key, value in outputs.items()
        }
        one = (expected[0][index : index + 1], expected[1][index : index + 1])
        where = f"{PREDICT_EXAMPLES} with mixed lengths, video {row}"
        largest = max(largest, _check_outputs(where, single, one, class_names, tolerance))
    return largest


def read_reference(directory):
    """reference.json of a reference directory.

    Args:
        directory: a local directory export/ filled.
    Returns:
        dict.
    """
    with open(os.path.join(directory, REFERENCE_FILE)) as handle:
        return json.load(handle)


def write_reference_file(directory, reference):
    """Write reference.json (what a fresh process verifying the export reads).

    Args:
        directory: a local directory. reference: dict.
    """
    fileio.write_json(os.path.join(directory, REFERENCE_FILE), reference)
