"""Losses and metrics against hand-computed examples."""

import math

import keras
import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.models import layers, losses, metrics

BG = constants.BACKGROUND


def _probs(rows):
    """Per-segment probability rows from (class, probability) pairs; the rest spread evenly."""
    out = []
    for cls, p in rows:
        row = np.full(constants.NUM_CLASSES, (1 - p) / (constants.NUM_CLASSES - 1), "float32")
        row[cls] = p
        out.append(row)
    return np.asarray(out, "float32")


def test_segment_cross_entropy_by_hand_and_padding_ignored():
    probs = _probs([(3, 0.5), (BG, 0.25), (3, 0.9)])[None]  # one video, three segments
    labels = np.array([[3, BG, -1]])  # the third segment is padding
    loss = losses.SegmentCrossEntropy(reduction=None)(labels, probs).numpy()
    assert loss == pytest.approx([-(math.log(0.5) + math.log(0.25)) / 2], rel=1e-5)


def test_weak_loss_is_bce_of_time_averaged_segments():
    segments = np.zeros((1, 2, constants.NUM_CLASSES), "float32")
    segments[0, 0, 5], segments[0, 0, BG] = 0.6, 0.4
    segments[0, 1, 5], segments[0, 1, BG] = 0.2, 0.8
    video = layers.TemporalPooling("mean")(segments).numpy()  # class 5: 0.4, background: 0.6
    target = np.zeros((1, constants.NUM_CLASSES), "float32")
    target[0, 5] = 1.0
    loss = float(losses.video_binary_cross_entropy()(target, video))
    eps = 1e-7  # Keras clips probabilities to [eps, 1 - eps]
    by_hand = -(math.log(0.4) + math.log(1 - 0.6) + 27 * math.log(1 - eps)) / constants.NUM_CLASSES
    assert loss == pytest.approx(by_hand, rel=1e-4)


def test_frame_accuracy_metric_and_function_skip_padding():
    labels = np.array([[1, 2, BG, -1], [BG, BG, 4, -1]])
    predicted = np.array([[1, 0, BG, 7], [BG, 3, 4, 7]])
    assert metrics.frame_accuracy(labels, predicted) == pytest.approx(4 / 6)
    probs = keras.ops.one_hot(np.maximum(predicted, 0), constants.NUM_CLASSES)
    metric = metrics.FrameAccuracy()
    metric.update_state(labels, probs)
    assert float(metric.result()) == pytest.approx(4 / 6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_confusion_matrix_and_per_class_accuracy():
    labels = np.array([0, 0, 0, 1, BG, BG])
    predicted = np.array([0, 1, 0, 1, BG, 0])
    confusion = metrics.confusion_matrix(labels, predicted)
    assert confusion[0, 0] == 2 and confusion[0, 1] == 1 and confusion[1, 1] == 1
    assert confusion[BG, BG] == 1 and confusion[BG, 0] == 1 and confusion.sum() == 6
    per_class = metrics.per_class_accuracy(confusion)
    assert per_class[0] == pytest.approx(2 / 3) and per_class[1] == 1.0 and per_class[BG] == 0.5
    assert np.isnan(per_class[2])


def test_intervals_are_runs_of_event_classes():
    assert metrics.intervals([BG, 3, 3, BG, 3, 5, 5, BG]) == [(3, 1, 3), (3, 4, 5), (5, 5, 7)]
    assert metrics.intervals([BG] * 4) == []
    assert metrics.intervals([2, 2, 2, -1, -1]) == [(2, 0, 3)]


def test_interval_metrics_by_hand():
    truth = [[BG, 4, 4, 4, 4, BG], [7, 7, BG, BG, BG, BG]]
    # Video 1: [1, 5) predicted as [2, 5): IoU 3/4, a hit. Video 2: [0, 2) predicted as class 8: a
    # miss,
    # and a false [4, 6) of class 7 with IoU 0 against [0, 2).
    guess = [[BG, BG, 4, 4, 4, BG], [8, 8, BG, BG, 7, 7]]
    result = metrics.interval_metrics(truth, guess)
    assert result["annotated_intervals"] == 2 and result["predicted_intervals"] == 3
    assert result["precision"] == pytest.approx(1 / 3)
    assert result["recall"] == pytest.approx(1 / 2)
    assert result["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert result["mean_iou"] == pytest.approx((0.75 + 0.0) / 2)


def test_summarize_reports_every_metric():
    names = constants.class_names()
    labels = np.array([[0, 0, BG], [1, BG, BG]])
    predicted = np.array([[0, 0, BG], [1, 1, BG]])
    summary = metrics.summarize(labels, predicted, names)
    assert summary["accuracy"] == pytest.approx(5 / 6)
    assert summary["segments"] == 6 and summary["videos"] == 2
    assert summary["per_class_accuracy"][names[0]] == 1.0
    assert summary["per_class_accuracy"]["background"] == pytest.approx(2 / 3)
    assert summary["per_class_accuracy"][names[5]] is None
    assert np.asarray(summary["confusion_matrix"]).shape == (29, 29)
    assert summary["intervals"]["annotated_intervals"] == 2
