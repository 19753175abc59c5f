"""PSP's losses and their targets, as the authors' training scripts compute them.

Fully supervised (fully_supervised_main.py, measure.AVPSLoss): cross-entropy of each
segment's logits against its label, averaged over all B x T segments, plus recipe.AVPS_WEIGHT x
the audio-visual pair similarity (AVPS) loss: the per-segment similarity [B, T] through ReLU,
divided by its sum over T plus 1e-8, against 1/k on the k segments of the video's event and 0
elsewhere, by mean squared error over all B x T entries.

Weakly supervised (weakly_supervised_main.py): binary cross-entropy of the video-level
probabilities [B, K] against a video-level target, averaged over all B x K entries. The
authors' target (their prob_label.h5) is the share of the video's segments in each class
(`proportion_targets`); `video_label_targets` gives the one-hot video label instead.
"""

import keras
from keras import ops

from avsdn_tf.errors import argument_error
from avsdn_tf.models.psp import recipe

_PACKAGE = "avsdn_tf"
_SUM_EPSILON = 1e-8  # the authors' 1e-8 added to the similarity's sum


def avps_targets(segment_labels, num_classes=recipe.NUM_CLASSES):
    """The AVPS loss's target per segment, as the authors' data loader builds it.

    The video's event is the smallest class index among its segments' labels (the event
    category, or background when every segment is background); each of the k segments of that
    class gets 1/k, the others 0.

    Args:
        segment_labels: int [B, T] class indices.
        num_classes: K.
    Returns:
        float32 [B, T]; each row sums to 1.
    """
    labels = ops.cast(segment_labels, "int32")
    present = ops.max(ops.one_hot(labels, num_classes), axis=1)  # [B, K]
    event = ops.cast(ops.argmax(present, axis=-1), "int32")  # the first class present
    on_event = ops.cast(ops.equal(labels, ops.expand_dims(event, -1)), "float32")
    return on_event / ops.sum(on_event, axis=-1, keepdims=True)


def proportion_targets(segment_labels, num_classes=recipe.NUM_CLASSES):
    """The authors' weak target (prob_label.h5): each class's share of the video's segments.

    Args:
        segment_labels: int [B, T] class indices.
        num_classes: K.
    Returns:
        float32 [B, K]; each row sums to 1.
    """
    return ops.mean(ops.one_hot(ops.cast(segment_labels, "int32"), num_classes), axis=1)


def video_label_targets(video_labels, num_classes=recipe.NUM_CLASSES):
    """One-hot video labels [B] -> float32 [B, K], the weak target without segment counts."""
    return ops.one_hot(ops.cast(video_labels, "int32"), num_classes)


def _avps_errors(targets, similarity):
    """(ReLU(s) / (sum_T ReLU(s) + 1e-8) - target)^2 per segment, [B, T]."""
    positive = ops.relu(similarity)
    shares = positive / (ops.sum(positive, axis=-1, keepdims=True) + _SUM_EPSILON)
    return ops.square(shares - ops.cast(targets, shares.dtype))


def avps_loss(targets, similarity):
    """The AVPS loss (measure.AVPSLoss).

    Args:
        targets: float [B, T], avps_targets of the segment labels.
        similarity: float [B, T], the model's av_similarity output.
    Returns:
        scalar float32: the mean over B x T of (ReLU(s) / (sum_T ReLU(s) + 1e-8) - target)^2.
    """
    return ops.mean(_avps_errors(targets, similarity))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AVPSLoss(keras.losses.Loss):
    """avps_loss as a Keras loss: y_true avps_targets [B, T], y_pred av_similarity [B, T].

    Keras averages the per-video values over the batch, which equals the authors' mean over
    B x T when every video has T segments.
    """

    def __init__(self, name="avps_loss", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return ops.mean(_avps_errors(y_true, y_pred), axis=-1)


def losses(supervision):
    """The Keras losses per model output, to compile the model with.

    Args:
        supervision: "full" or "weak".
    Returns:
        (losses, loss_weights, targets_of): dicts keyed by output name; targets_of names what
        each loss's target is ("segment_labels" int [B, T], "avps_targets" float [B, T],
        "video_targets" float [B, K]).
    Raises:
        UserError: naming `supervision`, when it is neither.
    """
    if supervision == recipe.FULL:
        return (
            {
                "segment_logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                "av_similarity": AVPSLoss(),
            },
            {"segment_logits": 1.0, "av_similarity": recipe.AVPS_WEIGHT},
            {"segment_logits": "segment_labels", "av_similarity": "avps_targets"},
        )
    if supervision == recipe.WEAK:
        return (
            {"video_probabilities": keras.losses.BinaryCrossentropy()},
            {"video_probabilities": 1.0},
            {"video_probabilities": "video_targets"},
        )
    raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)
