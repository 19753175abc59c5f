"""CMBS's decoding: per-segment labels int32 [B, T] in 0..28 (28 = background), in keras.ops.

Full supervision (the authors' compute_accuracy_supervised): segment t takes the video's event
class argmax(event_logits) where sigmoid(is_event_t) > 0.5, else background.
Weak supervision (weakly_main.py's evaluation): the same rule on (gate, raw_logits): the class
is argmax over the 29 raw_logits (background included) where sigmoid(gate_t) > 0.5. The gate is
already a probability in (0, 1), so sigmoid(gate) > 0.5 holds for every segment unless the gate
underflows to 0: in effect every segment takes the video's class. Reproduced as published.

The probabilities [B, T, 29] shown beside the labels:
    full: p[:28] = sigmoid(is_event) * softmax(event_logits), p[28] = 1 - sigmoid(is_event).
        The label is background where p[28] >= 0.5 (up to rounding at exactly 0.5), else the
        argmax of p[:28]; it is not always the argmax of all 29 (a 0.6 event chance spread
        over several classes can leave background the largest entry).
    weak: softmax(raw_logits) where the segment decodes as an event, else one-hot background:
        the label is the argmax of p.
"""

import keras
from keras import ops

from avsdn_tf.errors import argument_error
from avsdn_tf.models.cmbs import recipe

# The names the project's segment outputs go by (constants.SEGMENT_OUTPUT, models/serving.py).
SEGMENT_PROBS = "segment_probs"
SEGMENT_LABELS = "segment_labels"


def _where_event(scores, classes):
    """int32 [B, T]: classes [B] where sigmoid(scores [B, T]) > threshold, else background."""
    is_event = ops.sigmoid(scores) > recipe.EVENT_THRESHOLD
    classes = ops.cast(classes, "int32")[:, None]
    return ops.where(is_event, classes, ops.full_like(classes, recipe.NUM_EVENT_CLASSES))


def full_labels(is_event, event_logits):
    """Args: is_event [B, T] logits, event_logits [B, 28]. Returns: int32 [B, T] in 0..28."""
    return _where_event(is_event, ops.argmax(event_logits, axis=-1))


def weak_labels(gate, raw_logits):
    """Args: gate [B, T] in (0, 1), raw_logits [B, 29]. Returns: int32 [B, T] in 0..28."""
    return _where_event(gate, ops.argmax(raw_logits, axis=-1))


def full_probabilities(is_event, event_logits):
    """Args: is_event [B, T] logits, event_logits [B, 28]. Returns: float [B, T, 29]."""
    event = ops.sigmoid(is_event)[:, :, None]
    classes = ops.softmax(event_logits, axis=-1)[:, None, :]
    return ops.concatenate([event * classes, 1 - event], axis=-1)


def weak_probabilities(gate, raw_logits):
    """Args: gate [B, T] in (0, 1), raw_logits [B, 29]. Returns: float [B, T, 29]."""
    classes = ops.softmax(raw_logits, axis=-1)[:, None, :]
    is_event = (ops.sigmoid(gate) > recipe.EVENT_THRESHOLD)[:, :, None]
    background = ops.one_hot(
        ops.full_like(ops.cast(gate, "int32"), recipe.NUM_EVENT_CLASSES),
        recipe.NUM_CLASSES,
        dtype=classes.dtype,
    )
    return ops.where(is_event, classes, background)


def labels(outputs, supervision):
    """Per-segment labels int32 [B, T] from the model's output dict (full or weak)."""
    if supervision == recipe.FULL:
        return full_labels(outputs["is_event"], outputs["event_logits"])
    if supervision == recipe.WEAK:
        return weak_labels(outputs["gate"], outputs["raw_logits"])
    raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)


def probabilities(outputs, supervision):
    """Per-segment probabilities float [B, T, 29] from the model's output dict (see above)."""
    if supervision == recipe.FULL:
        return full_probabilities(outputs["is_event"], outputs["event_logits"])
    if supervision == recipe.WEAK:
        return weak_probabilities(outputs["gate"], outputs["raw_logits"])
    raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)


@keras.saving.register_keras_serializable(package="avsdn_tf")
class SegmentDecoding(keras.layers.Layer):
    """The decoding as a layer, so it runs inside every model that serves or scores CMBS.

    Input: the CMBS model's output dict. Output: {"segment_probs": [B, T, 29] (probabilities()),
    "segment_labels": int32 [B, T] (labels())}.
    """

    def __init__(self, supervision, **kwargs):
        super().__init__(**kwargs)
        self.supervision = supervision

    def call(self, outputs):
        return {
            SEGMENT_PROBS: probabilities(outputs, self.supervision),
            SEGMENT_LABELS: labels(outputs, self.supervision),
        }

    def get_config(self):
        return {**super().get_config(), "supervision": self.supervision}
