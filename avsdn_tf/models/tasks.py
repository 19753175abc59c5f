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

Evaluation of these reads segment_probs (`segment_model`) and the segment labels.

- `CrossModalTask` (`--model avdln`, AVEL's cross-modality localization): the AVE authors'
  AVDLN (models/avdln.py) on raw features (no normalisation; visual maps averaged over space
  inside the model); the target of a segment pair is 1 inside the event; the contrastive loss
  on the distance; splits train_match / val_match / test_match; evaluation reads the two
  embeddings and scores A2V and V2A (metrics.cross_modal_accuracy).

What the trainer and evaluation ask of every task (BaseTask): `splits` (train, selection, report),
`normalized` (whether train sets statistics into the model), `build`, `batches`, `compile`,
`include_noisy`, `import_weights`, `validation_score` (named `validation_name`),
`evaluate_batches` (a split's metrics.json entry), `evaluation_kind` (the report's table) and
`headline`.
"""

import abc

import keras
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, records, runs
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import backbones, layers, losses, metrics, optimizers
from avsdn_tf.models import serving as segment_serving


def probabilities_and_labels(outputs):
    """Per-segment probabilities and labels of a per-segment model's outputs.

    Args:
        outputs: segment_probs [B, T, K], or a dict with "segment_probs" and "segment_labels"
            (a model with its own decoding, e.g. CMBS).
    Returns:
        (probs [B, T, K], labels int [B, T]): labels are the arg-max unless the model gives them.
    """
    if isinstance(outputs, dict):
        return outputs[constants.SEGMENT_OUTPUT], outputs[segment_serving.SEGMENT_LABELS]
    return outputs, keras.ops.argmax(outputs, axis=-1)


def segment_predictions(model, parsed_batches, segment_model=backbones.segment_model):
    """Per-video ids, segment labels, predicted labels and probabilities over parsed batches.

    Args:
        model: a model a segment-labelling task built.
        parsed_batches: iterable of parsed batches (pipeline.make_dataset).
        segment_model: the task's function model -> its per-segment part.
    Returns:
        (ids [N], labels [N, T], predictions [N, T], probs [N, T, 29]); videos of different
        lengths are padded to the longest, labels and predictions with constants.PAD_LABEL.
    """
    predict = backbones.cached_inference_function(model, segment_model)
    ids, labels, predicted, probs = [], [], [], []
    for parsed in parsed_batches:
        batch_probs, batch_labels = probabilities_and_labels(predict(records.model_inputs(parsed)))
        probs.append(np.asarray(batch_probs))
        predicted.append(np.asarray(batch_labels))
        labels.append(parsed[records.LABEL].numpy())
        ids.extend(video_id.decode() for video_id in parsed[records.VIDEO_ID].numpy())
    width = max(p.shape[1] for p in probs)

    def padded(arrays, value=0):
        return np.concatenate(
            [
                np.pad(
                    x,
                    [(0, 0), (0, width - x.shape[1])] + [(0, 0)] * (x.ndim - 2),
                    constant_values=value,
                )
                for x in arrays
            ]
        )

    probs = padded(probs)
    labels = padded(labels, constants.PAD_LABEL)
    predicted = padded(predicted, constants.PAD_LABEL)
    predictions = np.where(labels != constants.PAD_LABEL, predicted, constants.PAD_LABEL)
    return ids, labels, predictions, probs


class BaseTask(abc.ABC):
    """What the trainer and evaluation ask of every task; the parts all tasks share."""

    supervision = None
    splits = None  # {"train", "val", "test"} -> the split names a run trains, selects, reports
    splits_origin = ""  # where the splits come from, for the message when the data lacks them
    normalized = None  # whether the model has normalisation layers set from train statistics
    validation_name = None  # the name of validation_score in the history and the logs
    evaluation_kind = None  # the report's table (training/report.py TABLES)
    adam = keras.optimizers.Adam  # the Adam class train compiles with (optimizers.PyTorchAdam)

    def __init__(self, hp):
        self.hp = hp

    @abc.abstractmethod
    def build(
        self,
        audio_dim,
        visual_shape,
        num_segments=constants.NUM_SEGMENTS,
        statistics=None,
        source="statistics",
    ):
        """The model `train` fits, over {"audio", "visual"} raw features."""

    @abc.abstractmethod
    def targets(self, parsed):
        """Targets of a parsed batch, in the structure of the model's trained outputs."""

    @abc.abstractmethod
    def compile(self, model, optimizer, **kwargs):
        """Compile a model `build` made with this task's losses and metrics."""

    @abc.abstractmethod
    def validation_score(self, model, parsed_batches):
        """The score the epoch selection maximises, over the val split's parsed batches."""

    @abc.abstractmethod
    def evaluate_batches(self, model, parsed_batches, class_names):
        """A split's entry of metrics.json, over its parsed batches."""

    @abc.abstractmethod
    def headline(self, summary):
        """One line of a split's summary (evaluate_batches' dict) for the train output."""

    # What export asks of a task: the serving object of a loaded run (its SavedModel graph,
    # the reference cases the export is verified against, the warmup requests), and the class
    # whose static `check` verifies a written SavedModel in a fresh process.
    serving_class = None

    @abc.abstractmethod
    def serving(self, run):
        """What a trained run of this task serves (an instance of serving_class).

        Args:
            run: the loaded run (registry.LoadedRun).
        Returns:
            an object with write(path), cases(videos, count, seed), warmup(cases),
            write_reference(directory, cases), describe(), signatures, outputs, batch_output.
        """

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

    def include_noisy(self, info):
        """Whether training also reads the background-only (noisy) split.

        Args:
            info: the data's DatasetInfo.
        Returns:
            bool: False (the noisy split has no events; only weak supervision reads it).
        """
        return False

    def check_inputs(self, visual_shape):
        """Refuse features the model cannot read, before a run writes anything.

        Args:
            visual_shape: the data's per-segment visual shape, [D] or [H, W, C].
        Raises:
            UserError naming the visual features. The classifiers and AVDLN read both layouts
            (a map is pooled or attended over), so this base accepts both.
        """
        return None  # every layout is readable

    @staticmethod
    def describe_inputs(visual_shape):
        """What the train output says once about the features a model without normalisation
        layers reads (tasks whose `normalized` is False).

        Args:
            visual_shape: [D] or [H, W, C].
        Returns:
            str.
        """
        return f"raw features (no normalisation), visual {list(visual_shape)}"

    def import_weights(self, model, path):
        """Set released weights of another code base into a model this task built.

        Args:
            model: the model `build` returned. path: the weights file.
        Raises:
            UserError: unless the task overrides it (only the cross-modality network, avdln,
                has released weights).
        """
        raise argument_error(
            "init_weights",
            "a run of `model=avdln`, `model=psp` or `model=cmbs` (the models whose authors "
            "released weights to import)",
            f"model {self.hp.model!r}",
        )


class SegmentLabeling(BaseTask):
    """What every task whose model labels segments shares: the splits, the frame-wise accuracy
    it is selected and scored on, and the segment signatures it serves. A subclass says how its
    model is built and trained, and `segment_model` (its per-segment part)."""

    splits = {"train": "train", "val": "val", "test": "test"}
    validation_name = "val_frame_accuracy"
    evaluation_kind = "segments"

    # -- data and evaluation -----------------------------------------------------------------
    def validation_score(self, model, parsed_batches):
        """Frame-wise accuracy (metrics.FrameAccuracy) over parsed batches.

        Args:
            model: a model this task built.
            parsed_batches: batches of parsed records (pipeline.make_dataset).
        Returns:
            float, the share of real segments predicted right.
        """
        predict = backbones.cached_inference_function(model, self.segment_model)
        correct = total = 0.0
        for parsed in parsed_batches:
            _, predicted = probabilities_and_labels(predict(records.model_inputs(parsed)))
            hits, counted = metrics.frame_hits(parsed[records.LABEL], predicted)
            correct, total = correct + float(hits), total + float(counted)
        return correct / max(total, 1.0)

    def evaluate_batches(self, model, parsed_batches, class_names):
        """Every metric of one split (metrics.summarize), what metrics.json holds per split.

        Args:
            model: a model this task built. parsed_batches: one split's parsed batches.
            class_names: the K class names.
        Returns:
            metrics.summarize's dict.
        """
        _, labels, predictions, _ = segment_predictions(model, parsed_batches, self.segment_model)
        return metrics.summarize(labels, predictions, class_names)

    def headline(self, summary):
        """One line of a split's summary (evaluate_batches' dict) for the train output."""
        return f"accuracy {summary['accuracy']:.4f}"

    serving_class = segment_serving.SegmentServing

    def serving(self, run):
        """The two segment signatures over the run's variable-length model (SegmentServing).

        Args:
            run: the loaded run (registry.LoadedRun).
        Returns:
            segment_serving.SegmentServing.
        Raises:
            UserError: naming config.json when its class names are not 29.
        """
        spec = segment_serving.FeatureSpec.of(
            run.audio_dim,
            run.visual_shape,
            run.class_names,
            source=f"{runs.RunDir(run.path).config} field class_names",
        )
        return segment_serving.SegmentServing(run, run.variable_length_model, spec)

    def include_noisy(self, info):
        """Whether training also reads the background-only (noisy) split.

        Args:
            info: the data's DatasetInfo.
        Returns:
            bool: True for weak supervision when the data has one (it trains on video labels).
        """
        return self.supervision == constants.WEAK and constants.NOISY_SPLIT in info.splits

    @staticmethod
    def segment_model(model):
        """What evaluation reads: the model cut to its per-segment output.

        Args:
            model: a model this task built.
        Returns:
            keras.Model: inputs -> segment_probs float32 [B, T, K].
        """
        return backbones.segment_model(model)


class AuthorsModelTask(SegmentLabeling):
    """A field model run as its authors' code builds it (PSP, CMBS): raw release features (no
    normalisation layers), visual maps required, supervision chosen at build, weights that do
    not depend on T. A subclass says `name`, `maps_reason` and `build_model`."""

    normalized = False  # the authors' networks take raw features
    name = None  # the registry name, e.g. "psp"
    maps_reason = ""  # why the model needs maps, for the message about vectors
    adam = optimizers.PyTorchAdam  # the authors train with torch.optim.Adam

    def __init__(self, hp):
        super().__init__(hp)
        self.supervision = hp.supervision

    @abc.abstractmethod
    def build_model(self, audio_dim, visual_shape, num_segments):
        """The model folder's Keras model for this task's supervision, T fixed or None."""

    def build(
        self,
        audio_dim,
        visual_shape,
        num_segments=constants.NUM_SEGMENTS,
        statistics=None,
        source="statistics",
    ):
        """The model over raw features (statistics are not used: it has no normalisation).

        Args:
            audio_dim: A. visual_shape: [H, W, C] maps. num_segments: T, or None for any.
            statistics, source: ignored (the signature of BaseTask.build).
        Returns:
            build_model's model.
        Raises:
            UserError: for visual vectors (one message saying which features to prepare).
        """
        del statistics, source
        self.check_inputs(visual_shape)
        return self.build_model(audio_dim, visual_shape, num_segments)

    def check_inputs(self, visual_shape):
        """Refuse visual vectors: the authors' models attend over the regions of maps.

        Args:
            visual_shape: the data's per-segment visual shape.
        Raises:
            UserError naming the visual features, when they are vectors.
        """
        if len(visual_shape) != 3:
            raise input_error(
                "visual features",
                f"maps [H, W, C] per segment (`model={self.name}` {self.maps_reason})",
                f"vectors {list(visual_shape)}; prepare the data with the maps (visual_feature.h5)",
            )

    def describe_inputs(self, visual_shape):
        """What the train output says once about the features the model reads."""
        visual = "maps" if len(visual_shape) == 3 else "visual vectors"
        return (
            f"{self.name}: raw features (no normalisation, as the authors' code), {visual} "
            f"{list(visual_shape)}"
        )

    def variable_length_model(self, trained, audio_dim, visual_shape):
        """The trained model rebuilt for any number of segments (its weights do not depend on T).

        Args:
            trained: the trained model. audio_dim, visual_shape: its feature sizes.
        Returns:
            segment_model of the rebuild, any T.
        """
        rebuilt = self.build_model(audio_dim, visual_shape, None)
        rebuilt.set_weights(trained.get_weights())
        return self.segment_model(rebuilt)


class Task(SegmentLabeling):
    """Base task of the segment classifiers: the common parts; subclasses say the supervision's
    head, target and loss."""

    normalized = True

    def __init__(self, hp, builder, label_guided=False):
        """A classifier task around a per-segment model.

        Args:
            hp: HParams.
            builder: function(audio_dim, visual_shape, num_segments, hp) -> backbones.Built, the
                model folder's builder.
            label_guided: add the label-guided ablation's two video-label heads on the encoder
                states the builder exposes.
        """
        super().__init__(hp)
        self.builder = builder
        self.label_guided = label_guided

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
        built = self.builder(audio_dim, list(visual_shape), num_segments, self.hp)
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

    def variable_length_model(self, trained, audio_dim, visual_shape):
        """The per-segment model of `trained`, rebuilt for any number of segments, its weights.

        Training builds models with a fixed time length and unrolled LSTMs (hp.unroll); serving
        needs any length, so the same architecture is built again with num_segments=None and
        unroll=False and the trained weights (normalisation statistics included) are copied
        over in order.

        Args:
            trained: the trained model (this task's heads on top).
            audio_dim, visual_shape: its feature sizes.
        Returns:
            keras.Model {"audio": [B, T, A], "visual": [B, T, ...]} -> segment_probs [B, T, 29],
            any T.
        Raises:
            UserError: when the rebuild's weights differ from the checkpoint's.
        """
        rebuilding = type(self)(self.hp.replace(unroll=False), self.builder, self.label_guided)
        rebuilt = rebuilding.build(audio_dim, visual_shape, num_segments=None)
        trained_shapes = [tuple(w.shape) for w in trained.weights]
        rebuilt_shapes = [tuple(w.shape) for w in rebuilt.weights]
        if trained_shapes != rebuilt_shapes:
            raise UserError(
                f"model {self.hp.model!r}: the variable-length rebuild has weights "
                f"{rebuilt_shapes}, the checkpoint has {trained_shapes}; the run's config.json "
                "does not describe its checkpoint"
            )
        rebuilt.set_weights(trained.get_weights())
        return backbones.segment_model(rebuilt)


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


TASKS = {SegmentTask.supervision: SegmentTask, VideoTask.supervision: VideoTask}


def classifier(builder, label_guided=False):
    """The registry's task factory for a per-segment classifier model.

    Args:
        builder: the model folder's function(audio_dim, visual_shape, num_segments, hp) ->
            backbones.Built.
        label_guided: the label-guided ablation's two extra video-label heads.
    Returns:
        function(hp) -> SegmentTask (full supervision) or VideoTask (weak).
    """

    def task(hp):
        return TASKS[hp.supervision](hp, builder, label_guided)

    return task
