"""The cross-modality localization (A2V / V2A) serving graph of an AVDLN model.

One signature, served both as `cross_modal` and as `serving_default`:

inputs   audio       float32 [batch, time, A]   raw audio features (AVE: A = 128)
         visual      float32 [batch, time, V]   pooled visual vectors (AVE: V = 512)
         query_mask  int32 [batch, time]        1 for the segments that form the event (one
                                                contiguous run of l segments, 0 < l < time),
                                                0 elsewhere
         direction   string [batch]             "a2v": the query is the audio of those segments
                                                and the candidates the visual; "v2a": the reverse
outputs  start       int32 [batch]              the predicted start: argmin of scores
         scores      float32 [batch, time]      score(p) = sum over i of the distance of
                                                candidate segment p + i to query segment s_i
                                                (metrics.window_scores); +inf for p > time - l

time may be any length >= 2 (the model is rebuilt for any number of segments). Inputs the
signature cannot take (another rank or feature size, batch or time that disagree, a query_mask
with values other than 0 and 1, with no or every segment, or with more than one run, a direction
other than "a2v" / "v2a", values that are not finite) fail inside the graph with one
INVALID_ARGUMENT error that names the input, what was expected and what was found.

The scoring is metrics.cross_modal_localize, the same function metrics.localize and
metrics.cross_modal_accuracy use; `keras_localize` is the Python-side reference that
export.verify.verify_cross_modal compares a written SavedModel with.
"""

import json
import os

import keras
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio
from avsdn_tf.models import avdln, metrics

from . import warmup
from .signatures import SERVING_DEFAULT, _check_shape, _rank

CROSS_MODAL = "cross_modal"
SIGNATURES = (CROSS_MODAL, SERVING_DEFAULT)

# Input names.
AUDIO = "audio"
VISUAL = "visual"
QUERY_MASK = "query_mask"
DIRECTION = "direction"
A2V, V2A = "a2v", "v2a"
DIRECTIONS = (A2V, V2A)

# Output names.
START = "start"
SCORES = "scores"
OUTPUTS = (START, SCORES)

# Largest difference of a score allowed between the SavedModel and the Keras model it came from,
# relative to the score (at least 1): both run the same float32 ops.
SCORE_TOLERANCE = 1e-5
REFERENCE_FILE = "reference.json"


def keras_localize(model, audio, visual, query_mask, direction):
    """The signature's outputs computed in Python: the Keras model, then the scoring.

    Args:
        model: an AVDLN Keras model (avdln.build_avdln; one for a fixed T runs through
            avdln.variable_length).
        audio: float [B, T, A]; visual: float [B, T, V]; query_mask: int [B, T] of 0 and 1.
        direction: [B] of "a2v" / "v2a".
    Returns:
        (start, scores): int32 [B] and float32 [B, T] NumPy arrays (+inf where no window fits).
    """
    embeddings = avdln.variable_length(model)(
        {AUDIO: np.asarray(audio, np.float32), VISUAL: np.asarray(visual, np.float32)},
        training=False,
    )
    start, scores = metrics.cross_modal_localize(
        embeddings[avdln.AUDIO_EMBEDDING],
        embeddings[avdln.VISUAL_EMBEDDING],
        np.asarray(query_mask, np.int32),
        np.asarray(direction).astype(str) == A2V,
    )
    return np.asarray(start, np.int32), np.asarray(scores, np.float32)


def check_query_mask(query_mask):
    """Assertions that every row of query_mask is one contiguous run of l 1s, 0 < l < T.

    Args:
        query_mask: int32 [B, T] whose shape has been checked.
    Returns:
        list of three assertion ops (values 0 or 1; 0 < l < T; one run), each with a message
        saying what was expected and what was found.
    """
    num_segments = tf.shape(query_mask)[1]
    binary = tf.logical_or(tf.equal(query_mask, 0), tf.equal(query_mask, 1))
    values = tf.debugging.Assert(
        tf.reduce_all(binary),
        [
            f"{QUERY_MASK}: expected only 0 and 1, found the values",
            tf.boolean_mask(query_mask, tf.logical_not(binary)),
        ],
        name="check_query_mask_values",
    )
    with tf.control_dependencies([values]):
        inside = tf.cast(tf.equal(query_mask, 1), tf.int32)
        lengths = tf.reduce_sum(inside, axis=1)
    count = tf.debugging.Assert(
        tf.reduce_all(tf.logical_and(lengths > 0, lengths < num_segments)),
        [
            f"{QUERY_MASK}: expected 0 < l < time segments of 1 in every video, found time",
            num_segments,
            "and l per video",
            lengths,
        ],
        summarize=64,
        name="check_query_mask_length",
    )
    # Starts of runs: a 1 whose previous segment is 0 (or that is the first segment).
    previous = tf.pad(inside[:, :-1], [[0, 0], [1, 0]])
    runs = tf.reduce_sum(inside * (1 - previous), axis=1)
    with tf.control_dependencies([count]):
        contiguous = tf.debugging.Assert(
            tf.reduce_all(tf.equal(runs, 1)),
            [
                f"{QUERY_MASK}: expected the query segments to be one contiguous run of 1s in "
                "every video, found runs per video",
                runs,
            ],
            summarize=64,
            name="check_query_mask_contiguous",
        )
    return [values, count, contiguous]


class CrossModalGraph:
    """The cross_modal signature (module docstring) around an AVDLN Keras model."""

    def __init__(self, model):
        """Args:
        model: an AVDLN model (avdln.build_avdln); one for a fixed T is rebuilt for any T
            (avdln.variable_length).
        """
        self.model = avdln.variable_length(model)
        dims = {tensor.name: int(tensor.shape[-1]) for tensor in self.model.inputs}
        self.audio_dim, self.visual_dim = dims[AUDIO], dims[VISUAL]

    def input_signature(self):
        """The signature's inputs: list of four tf.TensorSpec (module docstring)."""
        return [
            tf.TensorSpec([None, None, self.audio_dim], tf.float32, name=AUDIO),
            tf.TensorSpec([None, None, self.visual_dim], tf.float32, name=VISUAL),
            tf.TensorSpec([None, None], tf.int32, name=QUERY_MASK),
            tf.TensorSpec([None], tf.string, name=DIRECTION),
        ]

    def serve(self, audio, visual, query_mask, direction):
        """The signature: features, query mask and direction in; start and scores out.

        Args:
            audio: float32 [B, T, A]; visual: float32 [B, T, V] raw features.
            query_mask: int32 [B, T]: 1 for the event's segments (one run of l, 0 < l < T).
            direction: string [B]: "a2v" or "v2a".
        Returns:
            dict: start int32 [B], scores float32 [B, T] (+inf where no window fits).
        Raises:
            tf.errors.InvalidArgumentError: for the inputs the module docstring lists.
        """
        shape_checks = [
            _check_shape(AUDIO, audio, [self.audio_dim], f"[batch, time, {self.audio_dim}]"),
            _check_shape(VISUAL, visual, [self.visual_dim], f"[batch, time, {self.visual_dim}]"),
            _check_shape(QUERY_MASK, query_mask, [], "[batch, time]", dtype="int32"),
            tf.debugging.Assert(
                tf.equal(_rank(direction), 1),
                [
                    f"{DIRECTION}: expected a 1-D string tensor [batch], found shape",
                    tf.shape(direction),
                ],
                name="check_direction_shape",
            ),
        ]
        with tf.control_dependencies(shape_checks):  # only once the ranks are known to be right
            # Leading dims padded with -1, so the comparisons below never fail on a rank.
            audio_shape, visual_shape, mask_shape, direction_shape = (
                tf.concat([tf.shape(tensor), tf.fill([2], -1)], axis=0)[:size]
                for tensor, size in ((audio, 2), (visual, 2), (query_mask, 2), (direction, 1))
            )
            agree = tf.debugging.Assert(
                tf.reduce_all(
                    tf.concat(
                        [
                            tf.equal(audio_shape, visual_shape),
                            tf.equal(audio_shape, mask_shape),
                            tf.equal(audio_shape[:1], direction_shape),
                        ],
                        axis=0,
                    )
                ),
                [
                    f"{AUDIO}, {VISUAL}, {QUERY_MASK} and {DIRECTION}: expected the same batch "
                    "(and the same time but for direction), found audio",
                    audio_shape,
                    "visual",
                    visual_shape,
                    "query_mask",
                    mask_shape,
                    "direction",
                    direction_shape,
                ],
                name="check_same_batch_and_time",
            )
        with tf.control_dependencies([agree]):
            mask_checks = check_query_mask(query_mask)
            known = tf.logical_or(tf.equal(direction, A2V), tf.equal(direction, V2A))
            direction_check = tf.debugging.Assert(
                tf.reduce_all(known),
                [
                    f"{DIRECTION}: expected {A2V} or {V2A} for every video, found",
                    tf.boolean_mask(direction, tf.logical_not(known)),
                ],
                name="check_direction_values",
            )
        with tf.control_dependencies([*mask_checks, direction_check]):
            audio = tf.debugging.assert_all_finite(
                audio, f"{AUDIO}: expected finite values (no NaN or Inf)"
            )
            visual = tf.debugging.assert_all_finite(
                visual, f"{VISUAL}: expected finite values (no NaN or Inf)"
            )
        embeddings = self.model({AUDIO: audio, VISUAL: visual}, training=False)
        start, scores = metrics.cross_modal_localize(
            embeddings[avdln.AUDIO_EMBEDDING],
            embeddings[avdln.VISUAL_EMBEDDING],
            query_mask,
            tf.equal(direction, A2V),
        )
        return {START: tf.identity(start), SCORES: tf.cast(scores, tf.float32)}

    def archive(self):
        """A keras.export.ExportArchive with the model's variables and the signature under both
        names (SIGNATURES)."""
        archive = keras.export.ExportArchive()
        archive.track(self.model)
        for name in SIGNATURES:
            archive.add_endpoint(name, self.serve, input_signature=self.input_signature())
        return archive

    def write(self, path):
        """Write the SavedModel (archive()).

        Args:
            path: the SavedModel directory to write (local or a storage URL).
        Returns:
            None.
        """
        self.archive().write_out(path, verbose=False)


def random_query(rng, count, num_segments):
    """Random contiguous query masks (0 < l < T) and directions, alternating a2v and v2a.

    Args:
        rng: numpy Generator. count: B. num_segments: T >= 2.
    Returns:
        (query_mask int32 [B, T], direction object array [B] of "a2v" / "v2a").
    """
    query_mask = np.zeros((count, num_segments), np.int32)
    for row in range(count):
        length = int(rng.integers(1, num_segments))
        first = int(rng.integers(0, num_segments - length + 1))
        query_mask[row, first : first + length] = 1
    direction = np.array([DIRECTIONS[row % 2] for row in range(count)], dtype=object)
    return query_mask, direction


def reference_cases(model, count=8, lengths=(constants.NUM_SEGMENTS, 7), seed=0, features=None):
    """Inputs and the Keras model's outputs (keras_localize) that the SavedModel must reproduce.

    Args:
        model: the AVDLN Keras model being exported (any T).
        count: videos per case, >= 1.
        lengths: the numbers of segments of the cases, each >= 2.
        seed: seed of the random features, masks and directions.
        features: optional (audio [N, T0, A], visual [N, T0, V]) real features; their first
            `count` videos, cropped or tiled to each length, replace the random ones.
    Returns:
        {"t<T>": dict(audio, visual, query_mask, direction, start, scores)} per length.
    """
    graph = CrossModalGraph(model)
    rng = np.random.default_rng(seed)
    cases = {}
    for length in lengths:
        if features is None:
            audio = rng.normal(size=(count, length, graph.audio_dim)).astype(np.float32)
            visual = rng.normal(size=(count, length, graph.visual_dim)).astype(np.float32)
        else:
            repeats = -(-length // np.asarray(features[0]).shape[1])
            audio, visual = (
                np.concatenate([np.asarray(f, np.float32)[:count]] * repeats, axis=1)[:, :length]
                for f in features
            )
        query_mask, direction = random_query(rng, len(audio), length)
        start, scores = keras_localize(graph.model, audio, visual, query_mask, direction)
        cases[f"t{length}"] = dict(
            audio=audio,
            visual=visual,
            query_mask=query_mask,
            direction=direction,
            start=start,
            scores=scores,
        )
    return cases


def write_reference(directory, cases):
    """The cases as files a fresh process reads (export.verify.verify_cross_modal).

    Args:
        directory: an existing local directory.
        cases: reference_cases()'s.
    Returns:
        None; writes <case>.npz per case and reference.json (signature, cases, tolerance).
    """
    for name, case in cases.items():
        arrays = {key: value for key, value in case.items() if key != DIRECTION}
        np.savez(os.path.join(directory, f"{name}.npz"), **arrays)
    fileio.write_json(
        os.path.join(directory, REFERENCE_FILE),
        {
            "signature": CROSS_MODAL,
            "cases": {
                name: {DIRECTION: [str(d) for d in case[DIRECTION]]} for name, case in cases.items()
            },
            "tolerance": SCORE_TOLERANCE,
        },
    )


def warmup_requests(model_name, cases):
    """TF Serving's warmup requests: the first reference case with one video and with all.

    Args:
        model_name: the model name TF Serving serves the export under.
        cases: reference_cases()'s (the first case is used).
    Returns:
        list of 2 PredictRequests of the cross_modal signature.
    """
    case = next(iter(cases.values()))
    names = (AUDIO, VISUAL, QUERY_MASK, DIRECTION)
    return [
        warmup.predict_request(
            model_name, CROSS_MODAL, {name: case[name][:count] for name in names}
        )
        for count in (1, len(case[AUDIO]))
    ]


def read_reference(directory):
    """The cases write_reference wrote.

    Args:
        directory: the reference directory.
    Returns:
        (cases, tolerance): reference_cases()-like dict and the float tolerance.
    """
    with open(os.path.join(directory, REFERENCE_FILE)) as handle:
        reference = json.load(handle)
    cases = {}
    for name, case in reference["cases"].items():
        arrays = dict(np.load(os.path.join(directory, f"{name}.npz")))
        arrays[DIRECTION] = np.array(case[DIRECTION], dtype=object)
        cases[name] = arrays
    return cases, reference["tolerance"]
