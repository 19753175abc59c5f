"""What an AVDLN run serves: the cross-modality localization (A2V / V2A) signature, the cases its
export is verified against and its warmup requests (CrossModalServing, the task's `serving`).

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
CrossModalServing.check compares a written SavedModel with.
"""

import os

import keras
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, records
from avsdn_tf.models import layers, metrics
from avsdn_tf.models.avdln import model as avdln
from avsdn_tf.models.serving import SERVING_DEFAULT, Mismatch, _check_shape, _rank, read_reference

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


def _same_batch_and_time(audio, visual, query_mask, direction):
    """The assertion that the four inputs agree on the batch (and all but direction on time).

    Args:
        audio, visual, query_mask, direction: the signature's inputs, ranks already checked.
    Returns:
        the assertion op (its message names every input's leading dims).
    """
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
    return agree


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
            agree = _same_batch_and_time(audio, visual, query_mask, direction)
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


def _features(videos, count):
    """Real features of decoded records, as the signature takes them (maps pooled over space).

    Args:
        videos: [(serialized record, decoded video)] of one length. count: videos wanted.
    Returns:
        (audio [N, T, A], visual [N, T, V]) float32.
    """
    audio = np.stack([video[records.AUDIO] for _, video in videos[:count]]).astype(np.float32)
    visual = np.stack([video[records.VISUAL] for _, video in videos[:count]]).astype(np.float32)
    if visual.ndim == 5:  # maps: the signature takes the vectors the model pools them into
        visual = np.asarray(layers.SpatialAveragePooling()(visual))
    return audio, visual


class CrossModalServing:
    """The serving of an AVDLN model: its graph, reference cases, warmup and check.

    Attributes:
        signatures: the signature names it serves. outputs: {signature: output names}.
        batch_output: an output whose first dim is the batch (warmup replay checks it).
    """

    signatures = SIGNATURES
    outputs = {name: list(OUTPUTS) for name in SIGNATURES}
    batch_output = START

    def __init__(self, model):
        """Args:
        model: an AVDLN Keras model (avdln.build_avdln; a fixed-length one is rebuilt for any
            length).
        """
        self.graph = CrossModalGraph(model)

    def write(self, path):
        """Write the SavedModel (CrossModalGraph.write)."""
        self.graph.write(path)

    def describe(self):
        """What avsdn_export.json records about the served model besides the run."""
        return {
            "task": "cross-modality localization (A2V / V2A)",
            "audio_dim": self.graph.audio_dim,
            "visual_dim": self.graph.visual_dim,
        }

    def cases(self, videos, count, seed=0):
        """reference_cases() at 10 and 7 segments, on the videos' features or random ones.

        Args:
            videos: [(serialized record, decoded video)] of one length, or None (random).
            count: videos per case. seed: the seed of masks, directions and random features.
        Returns:
            (cases, notes): reference_cases()'s cases and {} (nothing more to record).
        """
        features = _features(videos, count) if videos else None
        return reference_cases(self.graph.model, count, seed=seed, features=features), {}

    def warmup(self, cases):
        """TF Serving's warmup requests: the first reference case with one video and with all.

        Args:
            cases: cases()'s (the first case is used).
        Returns:
            [(signature name, {input name: array})], 2 requests of the cross_modal signature.
        """
        case = next(iter(cases.values()))
        names = (AUDIO, VISUAL, QUERY_MASK, DIRECTION)
        return [
            (CROSS_MODAL, {name: case[name][:count] for name in names})
            for count in (1, len(case[AUDIO]))
        ]

    def write_reference(self, directory, cases):
        """The cases as files a fresh process reads: one .npz per case.

        Args:
            directory: an existing local directory.
            cases: cases()'s.
        Returns:
            dict for reference.json (directions per case, tolerance).
        """
        for name, case in cases.items():
            arrays = {key: value for key, value in case.items() if key != DIRECTION}
            np.savez(os.path.join(directory, f"{name}.npz"), **arrays)
        return {
            "cases": {
                name: {DIRECTION: [str(d) for d in case[DIRECTION]]} for name, case in cases.items()
            },
            "tolerance": SCORE_TOLERANCE,
        }

    @staticmethod
    def check(loaded, reference_dir, reference):
        """Check a cross-modality localization SavedModel against the reference cases.

        Both signature names are run on every case; scores must be +inf exactly where the Keras
        model's are and differ by at most the tolerance (relative, at least 1) elsewhere; start
        must equal the Keras model's wherever its best score is ahead of the second by more than
        twice the tolerance (closer ones may break either way).

        Args:
            loaded: the loaded SavedModel. reference_dir: write_reference's directory.
            reference: its reference.json.
        Returns:
            (checked, largest): list of what was compared, the largest |SavedModel - Keras|
            score.
        Raises:
            Mismatch: when a signature is missing or an output differs.
        """
        missing = [name for name in SIGNATURES if name not in loaded.signatures]
        if missing:
            raise Mismatch(f"signatures {missing} missing; found {sorted(loaded.signatures)}")
        tolerance = reference["tolerance"]
        checked, largest = [], 0.0
        for case in _read_cases(reference_dir, reference).values():
            length = case[AUDIO].shape[1]
            for signature in SIGNATURES:
                outputs = loaded.signatures[signature](
                    audio=tf.constant(case[AUDIO]),
                    visual=tf.constant(case[VISUAL]),
                    query_mask=tf.constant(case[QUERY_MASK]),
                    direction=tf.constant(case[DIRECTION].astype(str)),
                )
                where = f"{signature} at {length} segments"
                largest = max(largest, _check_localization(where, outputs, case, tolerance))
                checked.append(f"{signature}@{length}")
        return checked, largest


def _check_localization(where, outputs, case, tolerance):
    """One signature's start and scores against the Keras model's; the largest difference."""
    scores = outputs[SCORES].numpy()
    expected = case[SCORES]
    if scores.shape != expected.shape:
        raise Mismatch(
            f"{where}: scores have shape {list(scores.shape)}, the Keras model's"
            f" {list(expected.shape)}"
        )
    if not np.array_equal(np.isinf(scores), np.isinf(expected)):
        raise Mismatch(f"{where}: scores are +inf at other starts than the Keras model's")
    fits = np.isfinite(expected)
    difference = float(np.abs(scores[fits] - expected[fits]).max())
    allowed = tolerance * np.maximum(1.0, np.abs(expected[fits]))
    if not (np.abs(scores[fits] - expected[fits]) <= allowed).all():
        raise Mismatch(
            f"{where}: scores differ from the Keras model's by {difference:.2e} "
            f"(tolerance {tolerance:.0e}, relative)"
        )
    best2 = np.sort(expected, axis=-1)[:, :2]
    clear = (best2[:, 1] - best2[:, 0]) > 2 * tolerance * np.maximum(1.0, best2[:, 0])
    start = outputs[START].numpy()
    if not np.array_equal(start[clear], case[START][clear]):
        raise Mismatch(
            f"{where}: start {start.tolist()} is not the Keras model's {case[START].tolist()}"
        )
    return difference


def _read_cases(directory, reference):
    """The cases write_reference wrote, with their directions."""
    cases = {}
    for name, case in reference["cases"].items():
        arrays = dict(np.load(os.path.join(directory, f"{name}.npz"), allow_pickle=False))
        arrays[DIRECTION] = np.array(case[DIRECTION], dtype=object)
        cases[name] = arrays
    return cases


def read_cases(directory):
    """The cases a reference directory holds (read_reference, then each case's arrays).

    Args:
        directory: the reference directory.
    Returns:
        (cases, tolerance): reference_cases()-like dict and the float tolerance.
    """
    reference = read_reference(directory)
    return _read_cases(directory, reference), reference["tolerance"]
