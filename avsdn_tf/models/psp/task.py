"""The PSP task (`--model psp`): the authors' psp_net on the release's raw features, fully or
weakly supervised, trained with their losses and recipe, selected on val like every model here.

Full supervision: cross-entropy per segment + 100 x AVPS against 1/k on the event's k segments.
Weak: binary cross-entropy of the video-level distribution against the one-hot video label (the
authors' weak script reads prob_label.h5, each class's share of the video's segments, which is
more than a video label; psp.proportion_targets builds that target), with the background videos
of the release in training. Evaluation reads segment_probabilities (its arg-max is the authors'
per-segment prediction).
"""

import keras

from avsdn_tf import constants, records
from avsdn_tf.models import backbones, tasks
from avsdn_tf.models.psp import model, recipe, torch_import
from avsdn_tf.models.psp.losses import avps_targets, losses, video_label_targets

NAME = "psp"
SEGMENT_PROBABILITIES = "segment_probabilities"


def milestones(supervision):
    """The epochs after which the authors' schedule multiplies the rate by LR_DECAY_FACTOR.

    Args:
        supervision: "full" or "weak".
    Returns:
        list of int: after epoch e + 1 whenever (e + 1) % LR_DECAY_EVERY == 0 and
        e < LR_DECAY_BEFORE (0-based e), within EPOCHS: [60, 120] full, [80, 160] weak.
    """
    every, before = recipe.LR_DECAY_EVERY[supervision], recipe.LR_DECAY_BEFORE[supervision]
    return [e + 1 for e in range(recipe.EPOCHS) if (e + 1) % every == 0 and e < before]


def defaults(supervision):
    """The authors' recipe as hyperparameters (what `--model psp` trains with unless told).

    Args:
        supervision: "full" or "weak".
    Returns:
        dict of HParams fields.
    """
    return {
        "batch_size": recipe.BATCH_SIZE,
        "epochs": recipe.EPOCHS,
        "learning_rate": recipe.LEARNING_RATE,
        "lr_schedule": "multistep",
        "lr_milestones": ",".join(str(epoch) for epoch in milestones(supervision)),
        "lr_decay_rate": recipe.LR_DECAY_FACTOR,
    }


class PSPTask(tasks.AuthorsModelTask):
    """PSP, fully or weakly supervised (module docstring)."""

    name = NAME
    maps_reason = "attends over the regions of the release's 7x7x512 VGG-19 maps"

    def build_model(self, audio_dim, visual_shape, num_segments):
        """psp.build's model: segment_logits, segment_probabilities and (full) av_similarity
        or (weak) video_probabilities; LSTMs unrolled on a CPU for a fixed T (hp.unroll)."""
        unroll = backbones.lstm_options(self.hp, num_segments)["unroll"]
        return model.build(
            audio_dim, visual_shape, num_segments, self.supervision, {"unroll": unroll}
        )

    def targets(self, parsed):
        """Targets of a parsed batch, by output name.

        Args:
            parsed: a parsed batch: "label" int32 [B, T], "video_label" int32 [B].
        Returns:
            full: {"segment_logits": [B, T], "av_similarity": [B, T] AVPS targets};
            weak: {"video_probabilities": [B, 29] one-hot video labels}.
        """
        if self.supervision == constants.FULL:
            labels = parsed[records.LABEL]
            return {"segment_logits": labels, "av_similarity": avps_targets(labels)}
        return {"video_probabilities": video_label_targets(parsed[records.VIDEO_LABEL])}

    def compile(self, model, optimizer, **kwargs):
        """Compile with the authors' losses and weights (psp.losses).

        Args:
            model: the model `build` returned. optimizer: a keras optimizer.
            **kwargs: more keras.Model.compile arguments.
        """
        loss, weights, _ = losses(self.supervision)
        model.compile(optimizer=optimizer, loss=loss, loss_weights=weights, **kwargs)

    @staticmethod
    def segment_model(trained):
        """What evaluation and serving read: inputs -> segment_probabilities [B, T, 29]."""
        return keras.Model(trained.inputs, trained.output[SEGMENT_PROBABILITIES], name="psp")

    def import_weights(self, trained, path):
        """Set the authors' PyTorch state_dict (psp.import_state_dict) into the model.

        Args:
            trained: the model `build` returned. path: the state_dict file.
        Raises:
            UserError: naming the file and the parameter that does not fit, or torch missing.
        """
        torch_import.import_state_dict(trained, path, self.supervision)


def task(hp):
    """The registry's task factory for `--model psp` (full or weak supervision)."""
    return PSPTask(hp)
