"""Tasks: what one supervision puts around a per-segment model (keras-hub's Task, in spirit).

A task owns the output heads, the targets built from parsed records, the losses, the metrics and
what evaluation reads; the data pipeline knows records and the models know shapes, nothing more.

- `SegmentTask` (full supervision): the head is the backbone's segment_probs [B, T, 29]; the
  target is the segment labels [B, T] (padding PAD_LABEL); SegmentCrossEntropy; FrameAccuracy.
- `VideoTask` (weak supervision): segment_probs pooled over time into video_probs [B, 29]
  (mean as in the AVSDN paper, or max as in AVEL's code); the target is the one-hot video label;
  binary cross-entropy; the background-only "noisy" split joins training when present.
- Label guidance (the avsdn_label_guided ablation) on top of either: each encoder's last hidden
  state also goes through Dense(fusion_units, relu) -> Dense(29, softmax) against the video
  label, with categorical cross-entropy weighted by hp.guide_loss_weight.

Evaluation always reads segment_probs (`segment_model`) and the segment labels.
"""

import abc

import keras
import tensorflow as tf

from avsdn_tf import constants
from avsdn_tf.data import records
from avsdn_tf.models import backbones, layers, losses, metrics


class Task(abc.ABC):
    """Base task: the common parts; subclasses say the supervision's head, target and loss."""

    supervision = None

    def __init__(self, hp):
        self.hp = hp
        self.label_guided = backbones.is_label_guided(hp.model)

    # -- heads -------------------------------------------------------------------------------
    @abc.abstractmethod
    def _main_head(self, segment_probs):
        """The supervision's output on top of segment_probs [B, T, 29]."""

    def build(
        self,
        audio_dim,
        visual_shape,
        num_segments=constants.NUM_SEGMENTS,
        statistics=None,
        source="statistics",
    ):
        """The model `train` fits: the registered per-segment model plus this task's heads.

        Args:
            audio_dim: A. visual_shape: [D] or [H, W, C]. num_segments: T, or None for any.
            statistics: train-split normalisation statistics (normalization.compute_statistics);
                None leaves the normalisation the identity (a model about to receive weights).
            source: what an error about the statistics names.
        Returns:
            keras.Model over {"audio", "visual"} (raw features) with the outputs `output_names`.
        """
        built = backbones.build_backbone(self.hp, audio_dim, visual_shape, num_segments)
        backbone = built.model
        outputs = [self._main_head(backbone.outputs[0])]
        if self.label_guided:
            for state, name in zip(built.guide_states, constants.GUIDE_OUTPUTS, strict=True):
                hidden = keras.layers.Dense(
                    self.hp.fusion_units, activation="relu", name=f"{name}_hidden"
                )(state)
                outputs.append(
                    keras.layers.Dense(constants.NUM_CLASSES, activation="softmax", name=name)(
                        hidden
                    )
                )
        model = keras.Model(
            backbone.inputs, outputs if len(outputs) > 1 else outputs[0], name=backbone.name
        )
        if statistics is not None:
            backbones.set_statistics(model, statistics, source)
        return model

    # -- targets -----------------------------------------------------------------------------
    @abc.abstractmethod
    def _main_target(self, parsed):
        """The target of the main output, from a parsed batch."""

    def targets(self, parsed):
        """Targets of a parsed batch, in the order of the model's outputs.

        Args:
            parsed: a batch from records.parse_videos / pipeline.make_dataset: "label" int32 [B, T]
                (constants.PAD_LABEL for padding), "video_label" int32 [B], features.
        Returns:
            full supervision: int32 [B, T] segment labels; weak: float32 [B, K] one-hot video
            labels; with label guidance, a tuple (that target, [B, K] video one-hot twice).
        """
        main = self._main_target(parsed)
        if not self.label_guided:
            return main
        video = tf.one_hot(parsed[records.VIDEO_LABEL], constants.NUM_CLASSES)
        return (main, video, video)

    def batches(self, parsed_batches):
        """Parsed batches -> (inputs, targets) batches for Keras' fit and evaluate.

        Args:
            parsed_batches: tf.data.Dataset of parsed batches (pipeline.make_dataset).
        Returns:
            tf.data.Dataset of ({"audio": [B, T, A], "visual": [B, T, V] or [B, T, H, W, C]} raw
            features, targets(parsed)).
        """
        return parsed_batches.map(
            lambda parsed: (records.model_inputs(parsed), self.targets(parsed)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    # -- losses and metrics ------------------------------------------------------------------
    @abc.abstractmethod
    def _main_loss(self):
        """The loss of the main output."""

    def _main_metrics(self):
        return []

    def compile(self, model, optimizer, **kwargs):
        """Compile a model built by `build` with this task's losses, loss weights and metrics.

        Args:
            model: the Keras model `build` returned (one output, or three with label guidance).
            optimizer: a keras optimizer.
            **kwargs: more keras.Model.compile arguments (jit_compile, steps_per_execution).
        """
        loss, loss_weights, metric_list = self._main_loss(), None, self._main_metrics()
        if self.label_guided:
            loss = [
                loss,
                keras.losses.CategoricalCrossentropy(),
                keras.losses.CategoricalCrossentropy(),
            ]
            loss_weights = [1.0, self.hp.guide_loss_weight, self.hp.guide_loss_weight]
            metric_list = [metric_list, [], []]
        model.compile(
            optimizer=optimizer, loss=loss, loss_weights=loss_weights, metrics=metric_list, **kwargs
        )

    # -- data and evaluation -----------------------------------------------------------------
    def include_noisy(self, info):
        """Whether training also reads the background-only (noisy) split.

        Args:
            info: the data's DatasetInfo.
        Returns:
            bool: False for full supervision (the noisy split has no segment labels).
        """
        return False

    @staticmethod
    def segment_model(model):
        """What evaluation reads: the model cut to its per-segment output.

        Args:
            model: a model this task built.
        Returns:
            keras.Model: inputs -> segment_probs float32 [B, T, K].
        """
        return backbones.segment_model(model)


class SegmentTask(Task):
    """Full supervision: segment labels."""

    supervision = constants.FULL

    def _main_head(self, segment_probs):
        return segment_probs

    def _main_target(self, parsed):
        return parsed[records.LABEL]

    def _main_loss(self):
        return losses.SegmentCrossEntropy()

    def _main_metrics(self):
        return [metrics.FrameAccuracy()]


class VideoTask(Task):
    """Weak supervision: the video label only, against segment_probs pooled over time."""

    supervision = constants.WEAK

    def _main_head(self, segment_probs):
        return layers.TemporalPooling(self.hp.weak_pooling, name=constants.VIDEO_OUTPUT)(
            segment_probs
        )

    def _main_target(self, parsed):
        return tf.one_hot(parsed[records.VIDEO_LABEL], constants.NUM_CLASSES)

    def _main_loss(self):
        return losses.video_binary_cross_entropy()

    def include_noisy(self, info):
        """Whether training also reads the background-only (noisy) split.

        Args:
            info: the data's DatasetInfo.
        Returns:
            bool: True when the data has one (weak supervision trains on its video labels).
        """
        return constants.NOISY_SPLIT in info.splits


TASKS = {SegmentTask.supervision: SegmentTask, VideoTask.supervision: VideoTask}


def for_hparams(hp):
    """The task of a set of hyperparameters.

    Args:
        hp: HParams; reads `supervision` ("full" or "weak") and `model` (label guidance when it
            is the label-guided ablation).
    Returns:
        a SegmentTask (full) or VideoTask (weak).
    """
    return TASKS[hp.supervision](hp)
