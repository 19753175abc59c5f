"""Metrics: frame-wise accuracy (the paper's), per-class accuracy, confusion matrix, intervals.

Frame-wise accuracy has one implementation, `frame_hits`, behind the Keras metric (training
progress, the validation pass of every epoch) and `frame_accuracy` (metrics.json, evaluate).
Segments labelled constants.PAD_LABEL are padding and never counted.
"""

import keras
import numpy as np
from keras import ops

from avsdn_tf import constants


def frame_hits(labels, predicted):
    """Correct and counted segments: the one frame-wise accuracy computation.

    Args:
        labels: [B, T] (or any shape) int segment labels; constants.PAD_LABEL marks padding.
        predicted: predicted class ids of the same shape.
    Returns:
        (correct, counted) as float32 scalars (tensors).
    """
    labels = ops.cast(labels, "int32")
    valid = ops.cast(ops.not_equal(labels, constants.PAD_LABEL), "float32")
    hits = ops.cast(ops.equal(ops.cast(predicted, "int32"), labels), "float32") * valid
    return ops.sum(hits), ops.sum(valid)


@keras.saving.register_keras_serializable(package="avsdn_tf")
class FrameAccuracy(keras.metrics.Metric):
    """Share of real segments whose arg-max class equals the label (background is a class)."""

    def __init__(self, name="frame_accuracy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, labels, probs, sample_weight=None):
        """labels [B, T]; probs [B, T, 29] per-segment probabilities."""
        correct, total = frame_hits(labels, ops.argmax(probs, axis=-1))
        self.correct.assign_add(correct)
        self.total.assign_add(total)

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)


def _valid(labels, predictions):
    labels = np.asarray(labels).reshape(-1)
    predictions = np.asarray(predictions).reshape(-1)
    keep = labels != constants.PAD_LABEL
    return labels[keep], predictions[keep]


def frame_accuracy(labels, predictions):
    """Frame-wise accuracy of predicted class ids against labels, over real (non-padding) segments.

    Args:
        labels: int array [N, T] (any shape) of segment labels, constants.PAD_LABEL for padding.
        predictions: int array of the same shape: predicted class ids.
    Returns:
        float: correct / real segments (metrics.frame_hits), NaN when there is no real segment.
    """
    correct, total = (
        float(value) for value in frame_hits(np.asarray(labels), np.asarray(predictions))
    )
    return correct / total if total else float("nan")


def confusion_matrix(labels, predictions, num_classes=constants.NUM_CLASSES):
    """Counts of (true, predicted) class pairs over real segments.

    Args:
        labels: int array [N, T] (any shape), constants.PAD_LABEL for padding (skipped).
        predictions: int array of the same shape.
        num_classes: K, the matrix size (29: 28 events + background).
    Returns:
        int64 array [K, K]: counts[true, predicted].
    """
    labels, predictions = _valid(labels, predictions)
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def per_class_accuracy(confusion):
    """Recall of each class from a confusion matrix.

    Args:
        confusion: int array [K, K], counts[true, predicted] (confusion_matrix).
    Returns:
        float array [K]: diagonal / row total; NaN for a class with no segments.
    """
    totals = confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(confusion) / np.maximum(totals, 1), np.nan)


def intervals(labels):
    """The event intervals of one video's segment labels: runs of one non-background class.

    Args:
        labels: int sequence [T]; constants.PAD_LABEL entries (padding) are dropped first.
    Returns:
        list of (class, start, end) tuples, end exclusive, in segments (seconds for AVE).
    """
    runs = []
    labels = [int(label) for label in labels if label != constants.PAD_LABEL]
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
    at least `iou_threshold` with one not yet matched.

    Args:
        label_batches: per video, int [T] segment labels (constants.PAD_LABEL for padding); an
            array [N, T] works.
        prediction_batches: per video, int [T] predicted class ids (same count of videos).
        iou_threshold: the temporal IoU a hit needs.
    Returns:
        dict: "precision", "recall", "f1", "mean_iou" (the mean best IoU of each annotated
        interval, 0 when no prediction of its class overlaps), "iou_threshold", and the counts
        "annotated_intervals", "predicted_intervals".
    """
    hits = predicted = annotated = 0
    best_ious = []
    for labels, predictions in zip(label_batches, prediction_batches, strict=True):
        truth = intervals(labels)
        guess = intervals(
            np.asarray(predictions)[: len([x for x in labels if x != constants.PAD_LABEL])]
        )
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
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "mean_iou": float(np.mean(best_ious)) if best_ious else 0.0,
        "iou_threshold": iou_threshold,
        "annotated_intervals": annotated,
        "predicted_intervals": predicted,
    }


def summarize(labels, predictions, class_names):
    """Every evaluation metric of one split, JSON-ready (what metrics.json holds per split).

    Args:
        labels: int array [N, T] of segment labels, constants.PAD_LABEL for padding.
        predictions: int array [N, T] of predicted class ids.
        class_names: the K class names, in class-id order.
    Returns:
        dict: "accuracy" (frame-wise), "segments", "videos", "per_class_accuracy" {name: recall or
        None}, "mean_class_accuracy", "intervals" (interval_metrics) and "confusion_matrix" [K][K].
    """
    labels = np.asarray(labels)
    predictions = np.asarray(predictions)
    confusion = confusion_matrix(labels, predictions, len(class_names))
    per_class = per_class_accuracy(confusion)
    return {
        "accuracy": frame_accuracy(labels, predictions),
        "segments": int((labels != constants.PAD_LABEL).sum()),
        "videos": int(len(labels)),
        "per_class_accuracy": {
            name: None if np.isnan(value) else float(value)
            for name, value in zip(class_names, per_class, strict=True)
        },
        "mean_class_accuracy": (
            float(np.nanmean(per_class)) if np.isfinite(per_class).any() else None
        ),
        "intervals": interval_metrics(labels, predictions),
        "confusion_matrix": confusion.tolist(),
    }
