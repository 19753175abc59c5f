"""The CMBS task (`--model cmbs`): the authors' supv_main_model / weak_main_model on the
release's raw features, trained with their losses and recipe, selected on val like every model
here.

Full supervision: BCE(is_event) + BCE(gate) + CE(event class) + CE(av_score), each weight 1;
weak: MultiLabelSoftMargin of the video-level scores against the one-hot video label, the
release's background videos in training. A segment's label is the authors' decoding (the
video's event class where sigmoid(is_event) > 0.5, else background), inside the model that
evaluation and serving read (decoding.SegmentDecoding).
"""

import keras

from avsdn_tf import constants, records
from avsdn_tf.models import tasks
from avsdn_tf.models.cmbs import decoding, losses, model, recipe, torch_import

NAME = "cmbs"


def defaults(supervision):
    """The authors' recipe as hyperparameters (what `--model cmbs` trains with unless told).

    Args:
        supervision: "full" or "weak".
    Returns:
        dict of HParams fields: Adam 7e-4 (weak 6e-4), batch 64, 200 epochs, the rate x0.5
        after epochs 10, 20, 30 (weak 10, 20, 40), gradient global norm clipped to 0.5.
    """
    weak = supervision == constants.WEAK
    milestones = recipe.WEAK_LR_MILESTONES if weak else recipe.FULL_LR_MILESTONES
    return {
        "batch_size": recipe.WEAK_BATCH_SIZE if weak else recipe.FULL_BATCH_SIZE,
        "epochs": recipe.WEAK_EPOCHS if weak else recipe.FULL_EPOCHS,
        "learning_rate": recipe.WEAK_LEARNING_RATE if weak else recipe.FULL_LEARNING_RATE,
        "lr_schedule": "multistep",
        "lr_milestones": ",".join(str(epoch) for epoch in milestones),
        "lr_decay_rate": recipe.WEAK_LR_DECAY if weak else recipe.FULL_LR_DECAY,
        "clip_norm": recipe.WEAK_CLIP_NORM if weak else recipe.FULL_CLIP_NORM,
    }


class CMBSTask(tasks.AuthorsModelTask):
    """CMBS, fully or weakly supervised (module docstring)."""

    name = NAME
    maps_reason = "attends over the channels and regions of the release's 7x7x512 VGG-19 maps"

    def build_model(self, audio_dim, visual_shape, num_segments):
        """cmbs.build's model (outputs model.FULL_OUTPUTS or model.WEAK_OUTPUTS)."""
        return model.build(audio_dim, visual_shape, num_segments, self.supervision)

    def targets(self, parsed):
        """Targets of a parsed batch, by output name (losses.targets).

        Args:
            parsed: a parsed batch: "label" int32 [B, T], "video_label" int32 [B].
        Returns:
            full: is_event and gate [B, T] segment labels, event_logits and av_score [B] event
            classes; weak: event_scores [B, 29] one-hot video labels.
        """
        return losses.targets(self.supervision, parsed[records.LABEL], parsed[records.VIDEO_LABEL])

    def compile(self, trained, optimizer, **kwargs):
        """Compile with the authors' losses (losses.losses, each weighted 1).

        Args:
            trained: the model `build` returned. optimizer: a keras optimizer.
            **kwargs: more keras.Model.compile arguments.
        """
        trained.compile(optimizer=optimizer, loss=losses.losses(self.supervision), **kwargs)

    def segment_model(self, trained):
        """What evaluation and serving read: inputs -> {"segment_probs" [B, T, 29],
        "segment_labels" int32 [B, T]}, the authors' decoding inside."""
        decoded = decoding.SegmentDecoding(self.supervision, name="decoding")(trained.output)
        return keras.Model(trained.inputs, decoded, name=f"{NAME}_segments")

    def import_weights(self, trained, path):
        """Set the authors' PyTorch state_dict (a .pth.tar of theirs or a plain state_dict).

        Args:
            trained: the model `build` returned. path: the file.
        Raises:
            UserError: naming the file and the parameter that does not fit, or torch missing.
        """
        torch_import.import_state_dict(trained, path, self.supervision)


def task(hp):
    """The registry's task factory for `--model cmbs` (full or weak supervision)."""
    return CMBSTask(hp)
