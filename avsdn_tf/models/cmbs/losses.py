"""CMBS's losses, as the authors' supv_main.py and weakly_main.py compute them, and their targets.

Full supervision: the sum of four terms, each with weight 1:
    is_event      BCE-with-logits against "segment t is an event" (mean over segments),
    gate          the same BCE-with-logits applied to the gate, which is already a probability
                  (audio_gate * video_gate): the authors pass it to BCEWithLogitsLoss as it is,
                  so it goes through a second sigmoid; reproduced as published,
    event_logits  cross-entropy against the video's event class,
    av_score      cross-entropy against the video's event class.
Weak supervision: MultiLabelSoftMarginLoss of the softmax `event_scores` against the one-hot
video label (a sigmoid over the softmax probabilities, as theirs).
Targets come from the segment labels int32 [B, T] (0..27 events, 28 background, -1 padding) and
the video label int32 [B] (0..28); padded segments count in no term.
"""

import keras
from keras import ops

from avsdn_tf.errors import argument_error
from avsdn_tf.models.cmbs import recipe

_PACKAGE = "avsdn_tf"


def _is_event(segment_labels):
    """bool [B, T]: the segment is one of the 28 events (not background, not padding)."""
    return ops.logical_and(segment_labels >= 0, segment_labels < recipe.NUM_EVENT_CLASSES)


def event_class_targets(segment_labels):
    """The video's event class as the authors derive it: int32 [B].

    Args:
        segment_labels: int [B, T], 0..27 events, 28 background, -1 padding.
    Returns:
        int32 [B]: the largest event class among the video's segments (an AVE video has one),
        0 for a video without any event segment (their argmax of an all-zero row).
    """
    labels = ops.cast(segment_labels, "int32")
    return ops.max(ops.where(_is_event(labels), labels, 0), axis=1)


def full_targets(segment_labels):
    """{output name: target} for the full-supervision losses.

    Args:
        segment_labels: int [B, T], 0..27 events, 28 background, -1 padding.
    Returns:
        {"is_event": int32 [B, T], "gate": int32 [B, T] (the segment labels),
        "event_logits": int32 [B], "av_score": int32 [B] (event_class_targets)}.
    """
    labels = ops.cast(segment_labels, "int32")
    event = event_class_targets(labels)
    return {"is_event": labels, "gate": labels, "event_logits": event, "av_score": event}


def weak_targets(video_labels):
    """{"event_scores": float32 [B, 29]}: the one-hot video label (28 = background video)."""
    return {"event_scores": ops.one_hot(ops.cast(video_labels, "int32"), recipe.NUM_CLASSES)}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SegmentEventBCE(keras.losses.Loss):
    """BCE-with-logits of per-segment scores against "the segment is an event".

    y_true: int [B, T] segment labels (0..27 events, 28 background, -1 padding).
    y_pred: float [B, T] logits.
    Returns the mean over the unpadded segments of the batch (a scalar; the authors' mean
    over B * T when nothing is padded).
    """

    def __init__(self, name="segment_event_bce", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        labels = ops.cast(y_true, "int32")
        valid = ops.cast(labels >= 0, y_pred.dtype)
        target = ops.cast(_is_event(labels), y_pred.dtype)
        per_segment = ops.binary_crossentropy(target, y_pred, from_logits=True)
        return ops.sum(per_segment * valid) / ops.maximum(ops.sum(valid), 1.0)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MultiLabelSoftMargin(keras.losses.Loss):
    """PyTorch's MultiLabelSoftMarginLoss: -mean_c [y log s(x) + (1 - y) log s(-x)] per video.

    y_true: float [B, C] multi-hot targets. y_pred: float [B, C] scores (CMBS weak: softmax
    probabilities, used as the scores). Returns [B] per video (reduced to the batch mean).
    """

    def __init__(self, name="multi_label_soft_margin", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        target = ops.cast(y_true, y_pred.dtype)
        log_positive = ops.log_sigmoid(y_pred)
        log_negative = ops.log_sigmoid(-y_pred)
        return -ops.mean(target * log_positive + (1 - target) * log_negative, axis=-1)


def losses(supervision):
    """{output name: keras Loss} for model.compile (each weighted 1, as the authors sum them).

    Args:
        supervision: "full" or "weak".
    Returns:
        full: {"is_event": SegmentEventBCE, "gate": SegmentEventBCE,
        "event_logits": sparse CE from logits, "av_score": sparse CE from logits};
        weak: {"event_scores": MultiLabelSoftMargin}.
    """
    if supervision == recipe.FULL:
        return {
            "is_event": SegmentEventBCE(name="is_event_bce"),
            "gate": SegmentEventBCE(name="gate_bce"),
            "event_logits": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, name="event_class_ce"
            ),
            "av_score": keras.losses.SparseCategoricalCrossentropy(
                from_logits=True, name="av_score_ce"
            ),
        }
    if supervision == recipe.WEAK:
        return {"event_scores": MultiLabelSoftMargin()}
    raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)


def targets(supervision, segment_labels, video_labels):
    """The targets `losses(supervision)` needs, keyed like the model's outputs.

    Args:
        supervision: "full" or "weak".
        segment_labels: int [B, T] (used by full).
        video_labels: int [B] (used by weak).
    Returns:
        full_targets(segment_labels) or weak_targets(video_labels).
    """
    if supervision == recipe.FULL:
        return full_targets(segment_labels)
    if supervision == recipe.WEAK:
        return weak_targets(video_labels)
    raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)
