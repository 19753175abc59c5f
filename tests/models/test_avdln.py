"""Cross-modality localization: the AVDLN network, its contrastive loss, the A2V / V2A evaluation
against hand-computed examples, and the import of the authors' Keras 2 weights."""

import math
import os

import h5py
import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.errors import UserError
from avsdn_tf.models import avdln, losses, metrics

from testlib import REAL_AVE

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
    return metrics.pair_distances(v, a), a, v


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


@pytest.mark.skipif(not os.path.exists(AUTHORS_WEIGHTS), reason="the shared AVE files are absent")
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
    expected = metrics.cross_modal_accuracy(a, v, labels != bg)
    result = avdln.evaluate(model, audio, visual, labels)
    assert result == expected and result["evaluated"] == 4
