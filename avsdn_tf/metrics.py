"""Metrics: frame-wise accuracy (the paper's), per-class accuracy, confusion matrix, intervals.

NumPy functions for evaluation, plus one Keras metric for training progress. Labels of -1 are
padding and never counted.
"""

import keras
import numpy as np
from keras import ops

from avsdn_tf import constants


@keras.saving.register_keras_serializable(package="avsdn_tf")
class FrameAccuracy(keras.metrics.Metric):
    """Share of real segments whose arg-max class equals the label (background is a class)."""

    def __init__(self, name="frame_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, labels, probs, sample_weight=None):
        labels = ops.cast(labels, "int32")
        valid = ops.cast(labels >= 0, "float32")
        hits = ops.cast(ops.equal(ops.cast(ops.argmax(probs, axis=-1), "int32"), labels), "float32") * valid
        self.correct.assign_add(ops.sum(hits))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def _valid(labels, predictions):
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    keep = labels >= 0
    return labels[keep], predictions[keep]


def frame_accuracy(labels, predictions):
    labels, predictions = _valid(labels, predictions)
    return float(np.mean(labels == predictions)) if len(labels) else float("nan")


def confusion_matrix(labels, predictions, num_classes=constants.NUM_CLASSES):
    """counts[true, predicted] over real segments."""
    labels, predictions = _valid(labels, predictions)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def per_class_accuracy(confusion):
    """Recall of each class; NaN for a class with no segments."""
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def intervals(labels):
    """Runs of one non-background class: [(class, start, end)] with end exclusive, in seconds."""
    runs = []
    labels = [int(label) for label in labels if label >= 0]
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] != constants.BACKGROUND:
                runs.append((labels[start], start, t))
            start = t
    return runs


def _iou(a, b):
    overlap = max(0, min(a[2], b[2]) - max(a[1], b[1]))
    union = (a[2] - a[1]) + (b[2] - b[1]) - overlap
    return overlap / union if union else 0.0


def interval_metrics(label_batches, prediction_batches, iou_threshold=0.5):
    """Predicted event intervals against annotated ones, per video.

    A predicted interval is a hit when it has the annotated interval's class and a temporal IoU of
    at least `iou_threshold` with one not yet matched. Returns precision, recall, F1 and the mean
    best IoU of each annotated interval (0 when no prediction of its class overlaps).
    """
    hits = predicted = annotated = 0
    best_ious = []
    for labels, predictions in zip(label_batches, prediction_batches, strict=True):
        truth = intervals(labels)
        guess = intervals(np.asarray(predictions)[: len([x for x in labels if x >= 0])])
        predicted += len(guess)
        annotated += len(truth)
        unmatched = list(truth)
        for interval in guess:
            scored = [(_iou(interval, t), t) for t in unmatched if t[0] == interval[0]]
            if scored:
                best, target = max(scored)
                if best >= iou_threshold:
                    hits += 1
                    unmatched.remove(target)
        for t in truth:
            best_ious.append(max([_iou(t, g) for g in guess if g[0] == t[0]], default=0.0))
    precision = hits / predicted if predicted else 0.0
    recall = hits / annotated if annotated else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1,
            "mean_iou": float(np.mean(best_ious)) if best_ious else 0.0,
            "iou_threshold": iou_threshold, "annotated_intervals": annotated, "predicted_intervals": predicted}


def summarize(labels, predictions, class_names):
    """Every evaluation metric of one split, as a JSON-ready dict."""
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    confusion = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_accuracy(confusion)
    return {
        "accuracy": frame_accuracy(labels, predictions),
        "segments": int((labels >= 0).sum()),
        "videos": int(len(labels)),
        "per_class_accuracy": {name: (None if np.isnan(value) else float(value))
                               for name, value in zip(class_names, per_class, strict=True)},
        "mean_class_accuracy": float(np.nanmean(per_class)) if np.isfinite(per_class).any() else None,
        "intervals": interval_metrics(labels, predictions),
        "confusion_matrix": confusion.tolist(),
    }
