"""The cross-modality localization task (`--model avdln`, AVEL's A2V / V2A): the AVE authors'
AVDLN on raw features (no normalisation; visual maps averaged over space inside the model); the
target of a segment pair is 1 inside the event; the contrastive loss on the distance; splits
train_match / val_match / test_match; evaluation reads the two embeddings and scores A2V and V2A
(metrics.cross_modal_accuracy).
"""

from avsdn_tf import constants, records
from avsdn_tf.errors import argument_error
from avsdn_tf.models import losses, tasks
from avsdn_tf.models.avdln import model as avdln
from avsdn_tf.models.avdln import serving as cross_modal_serving

NAME = "avdln"


class CrossModalTask(tasks.BaseTask):
    """Cross-modality localization (A2V / V2A) with the AVE authors' AVDLN: segment pairs instead
    of segment classes."""

    supervision = constants.FULL  # segment-level targets (inside the event or not)
    splits = {"train": "train_match", "val": "val_match", "test": "test_match"}
    splits_origin = (
        "the cross-modality splits prepare writes when the release folder has "
        "train_order_match.h5, val_order_match.h5 and test_order_match.h5"
    )
    normalized = False  # the authors' network takes raw features
    validation_name = "val_cross_modal_accuracy"
    evaluation_kind = "cross_modal"

    def build(
        self,
        audio_dim,
        visual_shape,
        num_segments=constants.NUM_SEGMENTS,
        statistics=None,
        source="statistics",
    ):
        """The AVDLN over raw features (statistics are not used: it has no normalisation).

        Args:
            audio_dim: A. visual_shape: [D] vectors, or [H, W, C] maps (averaged over space
                inside the model). num_segments: T, or None for any.
            statistics, source: ignored (the signature of Task.build).
        Returns:
            avdln.build_avdln's model: outputs distance, audio_embedding, visual_embedding.
        """
        del statistics, source
        visual_shape = list(visual_shape)
        if len(visual_shape) == 3:
            return avdln.build_avdln(audio_dim, None, num_segments, visual_map_shape=visual_shape)
        return avdln.build_avdln(audio_dim, visual_shape[0], num_segments)

    @staticmethod
    def describe_inputs(visual_shape):
        """What the train output says once about the features the AVDLN reads.

        Args:
            visual_shape: [D] or [H, W, C].
        Returns:
            str.
        """
        visual = (
            f"visual maps {list(visual_shape)} averaged over space inside the model to "
            f"{visual_shape[-1]}-d vectors"
            if len(visual_shape) == 3
            else f"visual vectors of {visual_shape[0]} used as they are"
        )
        return f"avdln: raw features (no normalisation, as the authors' code); {visual}"

    def targets(self, parsed):
        """{"distance": [B, T] float32}: 1 for the segment pairs inside the event, else 0."""
        return {avdln.DISTANCE_OUTPUT: avdln.event_targets(parsed[records.LABEL])}

    def compile(self, model, optimizer, **kwargs):
        """Compile with the contrastive loss (margin constants.CONTRASTIVE_MARGIN) on the distance.

        Args:
            model: the model `build` returned. optimizer: a keras optimizer.
            **kwargs: more keras.Model.compile arguments.
        """
        model.compile(
            optimizer=optimizer, loss={avdln.DISTANCE_OUTPUT: losses.contrastive_loss}, **kwargs
        )

    def import_weights(self, model, path):
        """Set the authors' released weights (Keras 2 h5, cmm_model_weights.h5) into the model.

        Args:
            model: the model `build` returned. path: the h5 file.
        Raises:
            UserError naming the file (and layer) when it is missing or its shapes do not fit.
        """
        avdln.import_keras2_weights(model, path)

    def evaluate_batches(self, model, parsed_batches, class_names=None):
        """A2V and V2A accuracy of one split (avdln.evaluate_batches).

        Args:
            model: the model `build` returned. parsed_batches: one split's parsed batches.
            class_names: unused (the signature of Task.evaluate_batches).
        Returns:
            {"a2v_accuracy", "v2a_accuracy", "evaluated"}.
        """
        return avdln.evaluate_batches(
            model,
            ((records.model_inputs(parsed), parsed[records.LABEL]) for parsed in parsed_batches),
        )

    def validation_score(self, model, parsed_batches):
        """The mean of A2V and V2A accuracy on val_match (the epoch selection's score).

        Args:
            model: the model being trained. parsed_batches: val_match's parsed batches.
        Returns:
            float.
        """
        summary = self.evaluate_batches(model, parsed_batches)
        return (summary["a2v_accuracy"] + summary["v2a_accuracy"]) / 2

    def headline(self, summary):
        """One line of a split's summary for the train output."""
        return (
            f"A2V {summary['a2v_accuracy']:.4f}, V2A {summary['v2a_accuracy']:.4f} "
            f"({summary['evaluated']} videos)"
        )

    serving_class = cross_modal_serving.CrossModalServing

    def serving(self, run):
        """The cross_modal signature over the run's AVDLN (CrossModalServing).

        Args:
            run: the loaded run (registry.LoadedRun).
        Returns:
            cross_modal_serving.CrossModalServing.
        """
        return cross_modal_serving.CrossModalServing(run.model)

    def variable_length_model(self, trained, audio_dim, visual_shape):
        """The AVDLN of `trained` for any number of segments (avdln.variable_length).

        Args:
            trained: the trained AVDLN. audio_dim, visual_shape: unused (the model's own).
        Returns:
            keras.Model {"audio": [B, T, A], "visual": [B, T, V]} -> the distance and the two
            embeddings, any T (maps become their pooled vectors).
        """
        del audio_dim, visual_shape
        return avdln.variable_length(trained)


def task(hp):
    """The registry's task factory for `--model avdln`.

    Args:
        hp: HParams (supervision must be full: the targets say which segments are in the event).
    Returns:
        CrossModalTask.
    Raises:
        UserError: for weak supervision.
    """
    if hp.supervision != constants.FULL:
        raise argument_error(
            "supervision",
            f"{constants.FULL!r} for `model={NAME}` (its targets say which segments are inside "
            "the event)",
            repr(hp.supervision),
        )
    return CrossModalTask(hp)
