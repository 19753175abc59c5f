"""Metrics: frame-wise accuracy (the paper's), per-class accuracy, confusion matrix, intervals,
and the A2V / V2A accuracy of cross-modality localization (`cross_modal_accuracy`).

Frame-wise accuracy has one implementation, `frame_hits`, behind the Keras metric (training
progress, the validation pass of every epoch) and `frame_accuracy` (metrics.json, evaluate).
Segments labelled constants.PAD_LABEL are padding and never counted.

Cross-modality localization scoring has one implementation too, `window_scores` (keras.ops, so
it runs in a serving graph for any T and a batch): `localize` and `cross_modal_accuracy` call it
on NumPy inputs in float64, models/avdln/serving.py's signature in float32.
"""

import keras
import numpy as np
from keras import ops

from avsdn_tf import constants
from avsdn_tf.errors import argument_error


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


def embedding_distance(a, b):
    """Euclidean distance of embeddings, as the AVEL authors' AVDLN computes it: the one
    distance of the model (avdln.build_avdln), of the localization scores and of pair_distances.

    Args:
        a: [..., D] embeddings; b: [..., D] embeddings broadcastable against a (tensors or arrays;
            the dtype of the inputs is kept, float64 stays float64).
    Returns:
        tensor [...]: sqrt(max(sum((a - b)^2), constants.DISTANCE_EPSILON)).
    """
    squared = ops.sum(ops.square(ops.subtract(a, b)), axis=-1)
    return ops.sqrt(ops.maximum(squared, ops.cast(constants.DISTANCE_EPSILON, squared.dtype)))


def pair_distances(a, b):
    """embedding_distance in float64 NumPy.

    Args:
        a: [..., D] embeddings; b: [..., D] embeddings broadcastable against a.
    Returns:
        float64 array [...]: sqrt(max(sum((a - b)^2), constants.DISTANCE_EPSILON)).
    """
    return np.asarray(embedding_distance(np.asarray(a, np.float64), np.asarray(b, np.float64)))


def window_scores(query, candidates, query_mask):
    """The cross-modality localization scores of every start, for a batch and any T (in-graph).

    The query segments s_0 < ... < s_{l-1} are where query_mask is non-zero; for every start p in
    0..T-l, scores[p] = sum over i of embedding_distance(candidates[p + i], query[s_i]); starts
    beyond T - l have no window and get +inf. Memory is O(B T^2 D) (every candidate-query pair).

    Args:
        query: [B, T, D] embeddings of the query modality (A2V: audio).
        candidates: [B, T, D] embeddings of the other modality (A2V: visual), the same dtype.
        query_mask: [B, T] (bool, int or float), non-zero for the query segments; 1 <= l <= T
            per video (models/avdln/serving.check_query_mask asserts 0 < l < T and contiguity).
    Returns:
        tensor [B, T] of the inputs' dtype: the scores, +inf where no window fits.
    """
    query, candidates = ops.convert_to_tensor(query), ops.convert_to_tensor(candidates)
    inside = ops.not_equal(query_mask, 0)  # [B, T_k]
    # distances[b, j, k]: candidate segment j against query segment k.
    distances = embedding_distance(candidates[:, :, None, :], query[:, None, :, :])
    num_segments = ops.shape(distances)[1]
    # rank[b, k] = i when k = s_i: query segment k is matched with candidate p + i.
    rank = ops.cumsum(ops.cast(inside, "int32"), axis=1) - 1
    starts = ops.arange(num_segments, dtype="int32")
    matched = ops.clip(starts[None, :, None] + rank[:, None, :], 0, num_segments - 1)  # [B, P, K]
    pairs = ops.take_along_axis(distances, matched, axis=1)  # [B, P, K]
    scores = ops.sum(ops.where(inside[:, None, :], pairs, ops.zeros_like(pairs)), axis=2)
    length = ops.sum(ops.cast(inside, "int32"), axis=1)  # [B]
    fits = starts[None, :] <= (num_segments - length)[:, None]
    return ops.where(fits, scores, ops.full_like(scores, float("inf")))


def localize_batch(query, candidates, query_mask):
    """The predicted start of a batch: argmin of window_scores (the first of equal scores).

    Args:
        query, candidates, query_mask: as window_scores.
    Returns:
        (start, scores): int32 tensor [B], window_scores' [B, T].
    """
    scores = window_scores(query, candidates, query_mask)
    return ops.cast(ops.argmin(scores, axis=1), "int32"), scores


def cross_modal_localize(audio_embedding, visual_embedding, query_mask, a2v):
    """A2V or V2A localization per video of a batch (the serving signature's computation).

    Args:
        audio_embedding: [B, T, D]; visual_embedding: [B, T, D] (AVDLN's embeddings).
        query_mask: [B, T], non-zero for the event's query segments (window_scores).
        a2v: bool [B]: True where the query is the audio of those segments and the candidates
            the visual (A2V), False for the reverse (V2A).
    Returns:
        (start, scores): int32 [B] and [B, T] (+inf where no window fits), localize_batch's.
    """
    a2v = ops.convert_to_tensor(a2v)[:, None, None]
    query = ops.where(a2v, audio_embedding, visual_embedding)
    candidates = ops.where(a2v, visual_embedding, audio_embedding)
    return localize_batch(query, candidates, query_mask)


def localize(query, candidates, event):
    """Where the event's query segments fit best in the other modality (one video, NumPy).

    Args:
        query: [T, D] embeddings of the query modality (A2V: audio).
        candidates: [T, D] embeddings of the other modality (A2V: visual).
        event: [T] bool, the event's segments s_0 < ... < s_{l-1} (0 < l <= T).
    Returns:
        (start, scores): argmin of scores, float64 scores [T - l + 1] with
        scores[p] = sum over i of distance(candidates[p + i], query[s_i]) (localize_batch in
        float64).
    Raises:
        UserError: when the event has no segment.
    """
    event = np.asarray(event, bool)
    if not event.any():
        raise argument_error("event", "at least one segment inside the event", "none")
    start, scores = localize_batch(
        np.asarray(query, np.float64)[None], np.asarray(candidates, np.float64)[None], event[None]
    )
    return int(start[0]), np.asarray(scores)[0, : len(event) - int(event.sum()) + 1]


def cross_modal_accuracy(audio, visual, events):
    """A2V and V2A accuracy of the cross-modality localization task (AVEL Sec. 5).

    Videos with no event segment or whose event covers every segment are skipped; a video is
    correct when the predicted start (localize_batch, in float64) equals the event's first
    segment.

    Args:
        audio: [N, T, D] audio embeddings; visual: [N, T, D] visual embeddings.
        events: [N, T] 1 where the segment is inside the event, else 0.
    Returns:
        {"a2v_accuracy", "v2a_accuracy"} (floats, 0 when nothing is evaluated) and "evaluated"
        (int, the number of videos counted).
    """
    events = np.asarray(events) > 0.5
    if events.size == 0:  # no videos at all
        return {"a2v_accuracy": 0.0, "v2a_accuracy": 0.0, "evaluated": 0}
    keep = events.any(axis=1) & ~events.all(axis=1)
    evaluated = int(keep.sum())
    if not evaluated:
        return {"a2v_accuracy": 0.0, "v2a_accuracy": 0.0, "evaluated": 0}
    audio = np.asarray(audio, np.float64)[keep]
    visual = np.asarray(visual, np.float64)[keep]
    events = events[keep]
    true_start = events.argmax(axis=1)
    result = {}
    for key, (query, candidates) in (
        ("a2v_accuracy", (audio, visual)),
        ("v2a_accuracy", (visual, audio)),
    ):
        start = np.asarray(localize_batch(query, candidates, events)[0])
        result[key] = float((start == true_start).sum()) / evaluated
    return {**result, "evaluated": evaluated}
