"""Losses for full (segment labels) and weak (video labels) supervision."""

import keras
from keras import ops

from avsdn_tf import constants

_EPSILON = 1e-7


@keras.saving.register_keras_serializable(package="avsdn_tf")
class SegmentCrossEntropy(keras.losses.Loss):
    """Cross-entropy of per-segment probabilities [B, T, 29] against labels [B, T].

    Padding segments (constants.PAD_LABEL, from videos of different lengths) count for nothing:
    the loss is the mean over real segments only.
    """

    def __init__(self, name="segment_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, labels, probs):
        labels = ops.cast(labels, "int32")
        valid = ops.cast(labels != constants.PAD_LABEL, probs.dtype)
        one_hot = ops.one_hot(ops.maximum(labels, 0), constants.NUM_CLASSES, dtype=probs.dtype)
        log_likelihood = ops.sum(one_hot * ops.log(ops.clip(probs, _EPSILON, 1.0)), axis=-1)
        per_video = -ops.sum(log_likelihood * valid, axis=-1) / ops.maximum(
            ops.sum(valid, axis=-1), 1.0
        )
        return per_video


def video_binary_cross_entropy():
    """Weak supervision: BCE of the time-pooled distribution [B, 29] against the one-hot video
    label."""
    return keras.losses.BinaryCrossentropy(name="video_binary_cross_entropy")


@keras.saving.register_keras_serializable(package="avsdn_tf")
def contrastive_loss(targets, distances, margin=constants.CONTRASTIVE_MARGIN):
    """The AVEL authors' contrastive loss: mean(y d^2 + (1 - y) max(margin - d, 0)^2).

    Args:
        targets: [B, T] 1 where the segment pair is inside the event, else 0.
        distances: [B, T] Euclidean distances of the audio and visual embeddings.
        margin: distance beyond which unmatched pairs cost nothing.
    Returns:
        The scalar mean loss.
    """
    targets = ops.cast(targets, distances.dtype)
    unmatched = ops.square(ops.maximum(margin - distances, 0.0))
    return ops.mean(targets * ops.square(distances) + (1.0 - targets) * unmatched)
