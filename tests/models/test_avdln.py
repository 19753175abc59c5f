"""Cross-modality localization: the AVDLN network, its contrastive loss, the A2V / V2A evaluation
against hand-computed examples, and the import of the authors' Keras 2 weights."""

import math

import h5py
import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.errors import UserError
from avsdn_tf.models import avdln, losses, metrics

from testlib import REAL_AVE, avel_accuracy, avel_distance, avel_localize, needs_real_ave

AUTHORS_WEIGHTS = str(REAL_AVE / "cmm_model_weights.h5")
EPS_DISTANCE = math.sqrt(constants.DISTANCE_EPSILON)


def test_cross_modal_accuracy_by_hand():
    # 1-d embeddings so that the distance of two segments is |x - y|.
    audio = np.array([[0, 5, 6, 0], [1, 2, 0, 0], [1, 1, 1, 1]], "float32")[..., None]
    visual = np.array([[9, 5, 6, 9], [7, 7, 1, 2], [3, 3, 3, 3]], "float32")[..., None]
    events = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]])
    # Video 0, A2V: query a1 = 5, a2 = 6 against visual windows starting at 0, 1, 2.
    start, scores = metrics.localize(audio[0], visual[0], events[0].astype(bool))
    assert start == 1
    assert scores == pytest.approx([4 + 1, 2 * EPS_DISTANCE, 1 + 3])
    # Video 1: A2V scores 11, 7, 0 -> start 2 (wrong, true 0); V2A scores 11, 12, 14 -> 0 (right).
    assert metrics.localize(audio[1], visual[1], events[1].astype(bool))[1] == pytest.approx(
        [11, 7, 2 * EPS_DISTANCE]
    )
    assert metrics.localize(visual[1], audio[1], events[1].astype(bool))[1] == pytest.approx(
        [11, 12, 14]
    )
    # Video 2's event covers every segment: skipped.
    result = metrics.cross_modal_accuracy(audio, visual, events)
    assert result == {"a2v_accuracy": 0.5, "v2a_accuracy": 1.0, "evaluated": 2}


def test_contrastive_loss_by_hand():
    targets = np.array([[1.0, 0.0, 0.0]], "float32")
    distances = np.array([[0.5, 1.5, 3.0]], "float32")
    # (0.5^2 + (2 - 1.5)^2 + 0) / 3
    assert float(losses.contrastive_loss(targets, distances)) == pytest.approx(0.5 / 3, rel=1e-6)


def _numpy_forward(weights, audio, visual):
    def branch(x, first, second):
        hidden = x @ weights[first][0] + weights[first][1]
        hidden = np.where(hidden > 0, hidden, 0.3 * hidden)  # LeakyReLU(0.3), the shared README
        return hidden @ weights[second][0] + weights[second][1]

    v = branch(visual, "dense_1", "dense_2")
    a = branch(audio, "dense_3", "dense_4")
    return avel_distance(v, a), a, v


def _write_keras2_h5(path, shapes, seed=0):
    """A Keras 2 `save_weights` file: one group per layer, weight_names, kernel:0 and bias:0."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [name.encode() for name in ["input_1", *shapes]]
        handle.create_group("input_1").attrs["weight_names"] = np.array([], "float64")
        for name, (fan_in, fan_out) in shapes.items():
            group = handle.create_group(name)
            names = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            group.attrs["weight_names"] = names
            group.create_dataset(names[0].decode(), data=rng.normal(size=(fan_in, fan_out)))
            group.create_dataset(names[1].decode(), data=rng.normal(size=(fan_out,)))


SHAPES = {"dense_1": (512, 128), "dense_2": (128, 64), "dense_3": (128, 128), "dense_4": (128, 64)}


def _check_import(path):
    model = avdln.build_avdln(num_segments=None)
    avdln.import_keras2_weights(model, path)
    rng = np.random.default_rng(1)
    audio = rng.normal(size=(2, 7, 128)).astype("float32")
    visual = rng.normal(size=(2, 7, 512)).astype("float32")
    out = model({"audio": audio, "visual": visual})
    distance, a, v = _numpy_forward(avdln.read_keras2_weights(path), audio, visual)
    np.testing.assert_allclose(np.asarray(out["distance"]), distance, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(out["audio_embedding"]), a, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(out["visual_embedding"]), v, rtol=1e-4, atol=1e-4)


def test_import_matches_numpy_forward_of_a_made_h5(tmp_path):
    path = str(tmp_path / "weights.h5")
    _write_keras2_h5(path, SHAPES)
    _check_import(path)


@needs_real_ave("cmm_model_weights.h5")
def test_import_matches_numpy_forward_of_the_authors_h5():
    assert sorted(avdln.read_keras2_weights(AUTHORS_WEIGHTS)) == sorted(SHAPES)
    _check_import(AUTHORS_WEIGHTS)


def test_import_with_wrong_shapes_is_one_clear_error(tmp_path):
    path = str(tmp_path / "wide.h5")
    _write_keras2_h5(path, {**SHAPES, "dense_1": (256, 128)})
    with pytest.raises(
        UserError,
        match=r"wide.h5 layer dense_1: expected kernel and bias shapes "
        r"\[\(512, 128\), \(128,\)\], found \[\(256, 128\), \(128,\)\]",
    ):
        avdln.import_keras2_weights(avdln.build_avdln(), path)
    missing = str(tmp_path / "missing.h5")
    _write_keras2_h5(missing, {k: v for k, v in SHAPES.items() if k != "dense_4"})
    with pytest.raises(UserError, match="missing.h5: expected a layer 'dense_4'"):
        avdln.import_keras2_weights(avdln.build_avdln(), missing)
    with pytest.raises(UserError, match="nothere.h5: expected a Keras 2 weights h5 file"):
        avdln.read_keras2_weights(str(tmp_path / "nothere.h5"))


def test_evaluate_runs_the_model_and_scores_the_events_of_segment_labels(tmp_path):
    path = str(tmp_path / "weights.h5")
    _write_keras2_h5(path, SHAPES)
    model = avdln.build_avdln()
    avdln.import_keras2_weights(model, path)
    rng = np.random.default_rng(2)
    audio = rng.normal(size=(5, 10, 128)).astype("float32")
    visual = rng.normal(size=(5, 10, 512)).astype("float32")
    bg = constants.BACKGROUND
    labels = np.full((5, 10), bg)
    labels[0, 2:5] = 3
    labels[1, :] = 7  # the event covers every segment: skipped
    labels[2, 6:] = 1
    labels[3, 0] = 12
    labels[4, 4:6] = 0  # class 0 is an event, not background
    np.testing.assert_array_equal(avdln.event_targets(labels)[4], [0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    _, a, v = _numpy_forward(avdln.read_keras2_weights(path), audio, visual)
    expected = avel_accuracy(a, v, labels != bg)
    result = avdln.evaluate(model, audio, visual, labels)
    assert result == expected and result["evaluated"] == 4


def test_in_graph_scores_of_a_batch_by_hand():
    # T = 4, l = 2, embeddings of 2 dims; videos 0 and 1 vary only the first dim.
    audio = np.array(
        [[[0, 0], [5, 0], [6, 0], [0, 0]], [[1, 0], [2, 0], [0, 0], [0, 0]]]
        + [[[9, 9], [9, 9], [0, 0], [3, 4]]],
        "float32",
    )
    visual = np.array(
        [[[9, 0], [5, 0], [6, 0], [9, 0]], [[7, 0], [7, 0], [1, 0], [2, 0]]]
        + [[[3, 4], [0, 0], [6, 8], [0, 0]]],
        "float32",
    )
    query_mask = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 1, 1]], "int32")
    a2v = np.array([True, False, True])
    start, scores = metrics.cross_modal_localize(audio, visual, query_mask, a2v)
    inf = float("inf")
    # Video 0, A2V: query a1 = 5, a2 = 6; p=0: |9-5| + |5-6|; p=1: both equal; p=2: 1 + 3.
    # Video 1, V2A: query v0 = v1 = 7 against audio; p=0: 6 + 5; p=1: 5 + 7; p=2: 7 + 7.
    # Video 2, A2V: query a2 = (0, 0), a3 = (3, 4); p=0: |(3, 4)| + |(0, 0) - (3, 4)| = 5 + 5;
    # p=1: 0 + |(6, 8) - (3, 4)| = 5; p=2: |(6, 8)| + |(3, 4)| = 10 + 5.
    expected = [
        [5, 2 * EPS_DISTANCE, 4, inf],
        [11, 12, 14, inf],
        [10, EPS_DISTANCE + 5, 15, inf],
    ]
    np.testing.assert_allclose(np.asarray(scores), expected, rtol=1e-6)
    assert np.asarray(start).dtype == np.int32
    np.testing.assert_array_equal(np.asarray(start), [1, 0, 1])


def _random_events(rng, count, num_segments, contiguous=True):
    events = np.zeros((count, num_segments), bool)
    for row in range(count):
        length = rng.integers(1, num_segments)
        if contiguous:
            first = rng.integers(0, num_segments - length + 1)
            events[row, first : first + length] = True
        else:
            events[row, rng.choice(num_segments, length, replace=False)] = True
    return events


@pytest.mark.parametrize("num_segments", [10, 7])
def test_batch_scores_equal_the_authors_loop_on_random_data(num_segments):
    rng = np.random.default_rng(num_segments)
    audio = rng.normal(size=(24, num_segments, 64)).astype("float32")
    visual = rng.normal(size=(24, num_segments, 64)).astype("float32")
    events = np.concatenate(
        [
            _random_events(rng, 16, num_segments),
            _random_events(rng, 8, num_segments, contiguous=False),
        ]
    )
    a2v = rng.random(24) < 0.5
    start, scores = metrics.cross_modal_localize(audio, visual, events.astype("int32"), a2v)
    start, scores = np.asarray(start), np.asarray(scores)
    assert scores.dtype == np.float32 and scores.shape == (24, num_segments)
    for row in range(24):
        query, candidates = (audio, visual) if a2v[row] else (visual, audio)
        want_start, want = avel_localize(query[row], candidates[row], events[row])
        fits = len(want)
        np.testing.assert_allclose(scores[row, :fits], want, rtol=1e-5)
        assert np.isinf(scores[row, fits:]).all()
        assert start[row] == want_start
        # The NumPy API (float64) is the same function.
        got_start, got = metrics.localize(query[row], candidates[row], events[row])
        np.testing.assert_allclose(got, want, rtol=1e-12)
        assert got_start == want_start
    a2v_hits = v2a_hits = 0
    kept = events[:16]  # contiguous, 0 < l < T: all evaluated
    for row in range(16):
        first = np.flatnonzero(kept[row])[0]
        a2v_hits += avel_localize(audio[row], visual[row], kept[row])[0] == first
        v2a_hits += avel_localize(visual[row], audio[row], kept[row])[0] == first
    assert metrics.cross_modal_accuracy(audio[:16], visual[:16], kept) == {
        "a2v_accuracy": a2v_hits / 16,
        "v2a_accuracy": v2a_hits / 16,
        "evaluated": 16,
    }


def test_batch_scores_in_a_graph_of_any_length():
    import tensorflow as tf

    spec = tf.TensorSpec([None, None, 3], tf.float32)
    localize = tf.function(
        metrics.localize_batch,
        input_signature=[spec, spec, tf.TensorSpec([None, None], tf.int32)],
    )
    rng = np.random.default_rng(5)
    for num_segments in (10, 13):
        query = rng.normal(size=(4, num_segments, 3)).astype("float32")
        candidates = rng.normal(size=(4, num_segments, 3)).astype("float32")
        events = _random_events(rng, 4, num_segments)
        start, scores = localize(query, candidates, events.astype("int32"))
        for row in range(4):
            want_start, want = avel_localize(query[row], candidates[row], events[row])
            np.testing.assert_allclose(scores.numpy()[row, : len(want)], want, rtol=1e-5)
            assert start.numpy()[row] == want_start


def test_localize_of_an_event_without_segments_is_one_clear_error():
    with pytest.raises(UserError, match="event: expected at least one segment inside the event"):
        metrics.localize(np.zeros((4, 2)), np.zeros((4, 2)), np.zeros(4, bool))


def test_the_model_round_trips_through_a_keras_file_and_rebuilds_for_any_length(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = avdln.build_avdln()
    path = str(tmp_path / "avdln.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    rng = np.random.default_rng(3)
    audio = rng.normal(size=(2, 10, 128)).astype("float32")
    visual = rng.normal(size=(2, 10, 512)).astype("float32")
    inputs = {"audio": audio, "visual": visual}
    for key in (avdln.DISTANCE_OUTPUT, avdln.AUDIO_EMBEDDING):
        np.testing.assert_allclose(
            np.asarray(restored(inputs)[key]), np.asarray(model(inputs)[key])
        )
    distance = np.asarray(model(inputs)[avdln.DISTANCE_OUTPUT])
    np.testing.assert_allclose(
        distance,
        avel_distance(model(inputs)[avdln.VISUAL_EMBEDDING], model(inputs)[avdln.AUDIO_EMBEDDING]),
        rtol=1e-5,
    )
    rebuilt = avdln.variable_length(restored)
    assert rebuilt.inputs[0].shape[1] is None and avdln.variable_length(rebuilt) is rebuilt
    longer = {"audio": np.tile(audio, (1, 2, 1)), "visual": np.tile(visual, (1, 2, 1))}
    np.testing.assert_allclose(
        np.asarray(rebuilt(longer)[avdln.DISTANCE_OUTPUT]), np.tile(distance, (1, 2)), rtol=1e-6
    )


def test_cross_modal_accuracy_of_no_videos_is_zero_of_zero():
    empty = {"a2v_accuracy": 0.0, "v2a_accuracy": 0.0, "evaluated": 0}
    assert metrics.cross_modal_accuracy([], [], []) == empty
    assert metrics.cross_modal_accuracy(np.zeros((0, 10, 4)), np.zeros((0, 10, 4)), []) == empty
