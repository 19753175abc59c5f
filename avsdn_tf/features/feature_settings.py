"""The settings that decide the features of own videos (what extract's and predict's feature
flags become; the flags themselves are defined by the commands, avsdn_tf/feature_flags.py).

FeatureSettings (one value: networks, sampling, sizes, layout), its presets (PRESETS: the
settings of a published feature set) and its identity (what a rerun into the same data
directory must match).
"""

import dataclasses
import os

import tensorflow as tf

from avsdn_tf import constants
from avsdn_tf.errors import UserError, argument_error
from avsdn_tf.features import vggish_params, vggish_slim, video, visual_features

DEFAULT_FRAMES_PER_SECOND = 16  # the AVE release averaged 16 frames per second
DEFAULT_BATCH_SIZE = 32  # frames per forward pass of the visual backbone

# --preset NAME: feature flags set together; a flag given on the command line wins over its
# preset value (the run prints which ones it kept).
PRESETS = {
    # The README's "the AVE release" row: what AVSDN and AVEL were trained on (10-s clips).
    "ave_release": {
        "visual_backbone": "vgg19",
        "frames_per_second": 16,
        "image_size": 224,
        "vggish_output": "relu",
        "audio_framing": "vggish",
        "frame_sampling": video.SAMPLING_AVE,
        "visual_layout": constants.LAYOUT_MAP,
    },
}


def _file_identity(path):
    """What a rerun compares for a weights file: its name and size (cheap, survives moving it)."""
    if not path or path == visual_features.IMAGENET:
        return path
    size = tf.io.gfile.stat(path).length if tf.io.gfile.exists(path) else None
    return {"file": os.path.basename(path.rstrip("/")), "bytes": size}


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """What decides the features: the two networks, the frames sampled and the stored layout.

    Every field is one of extract's and predict's feature flags (avsdn_tf/feature_flags.py);
    batch_size changes the speed only, not the features.
    """

    vggish_checkpoint: str
    visual_backbone: str = "vgg19"
    visual_weights: str = visual_features.IMAGENET
    vggish_output: str = "relu"
    vggish_pca_params: str | None = None
    audio_framing: str = "second"
    frames_per_second: int = DEFAULT_FRAMES_PER_SECOND
    image_size: int = visual_features.DEFAULT_IMAGE_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    frame_sampling: str = video.SAMPLING_CENTRE
    visual_layout: str | None = None  # None: the backbone's own

    @classmethod
    def resolve(cls, values, preset=None, given=(), verbose=True):
        """The settings of `values` under a preset, with the official VGGish files as defaults.

        The preset's values replace those not in `given` (the flags given on the command line
        win), and the official VGGish files (downloaded once into Keras' cache) are used where
        no path is given.

        Args:
            values: field name -> value, for every field (the feature flags' values).
            preset: a name in PRESETS, or None.
            given: the names among `values` the user gave (kept over the preset's).
            verbose: print which given values were kept over the preset, and downloads.
        Returns:
            FeatureSettings.
        Raises:
            errors.UserError: naming `preset` when it is not one of PRESETS.
        """
        values = dict(values)
        if preset:
            if preset not in PRESETS:
                raise argument_error("preset", f"one of {sorted(PRESETS)}", repr(preset))
            kept = []
            for name, value in PRESETS[preset].items():
                if name in given:
                    if values[name] != value:
                        kept.append(f"--{name}={values[name]}")
                else:
                    values[name] = value
            if verbose and kept:
                print(
                    f"--preset={preset}: kept the flags given on the command line: "
                    f"{' '.join(kept)}",
                    flush=True,
                )
        if not values["vggish_checkpoint"]:
            values["vggish_checkpoint"] = vggish_slim.fetch_official(
                vggish_params.CHECKPOINT_FILE, "vggish_checkpoint", verbose
            )
        if values["vggish_output"] == "postprocessed" and not values["vggish_pca_params"]:
            values["vggish_pca_params"] = vggish_slim.fetch_official(
                vggish_params.PCA_PARAMS_FILE, "vggish_pca_params", verbose
            )
        return cls(**values)

    @property
    def audio_dim(self):
        """The audio feature's size per segment (VGGish: 128)."""
        return vggish_params.EMBEDDING_SIZE

    @property
    def backbone_shape(self):
        """The backbone's own feature shape: [S, S, C] maps or [C]."""
        return visual_features.get_backbone(self.visual_backbone).feature_shape(self.image_size)

    @property
    def visual_shape(self):
        """The stored feature shape: the backbone's, or [C] for --visual_layout vector."""
        shape = self.backbone_shape
        return shape[-1:] if self.visual_layout == constants.LAYOUT_VECTOR else shape

    def for_visual_shape(self, visual_shape):
        """These settings with the layout a model's input needs: maps pooled to vectors when the
        model takes [C] and the backbone gives [S, S, C]; otherwise unchanged.

        Args:
          visual_shape: the model's visual input shape per segment, [C] or [S, S, C].
        """
        shape = [int(d) for d in visual_shape]
        if (
            len(shape) == 1
            and len(self.backbone_shape) == 3
            and self.visual_layout is None
            and shape == self.backbone_shape[-1:]
        ):
            return dataclasses.replace(self, visual_layout=constants.LAYOUT_VECTOR)
        return self

    def identity(self):
        """What determines the features (paths reduced to file name and size; not batch_size)."""
        return {
            "vggish_checkpoint": _file_identity(self.vggish_checkpoint),
            "vggish_output": self.vggish_output,
            "vggish_pca_params": (
                _file_identity(self.vggish_pca_params)
                if self.vggish_output == "postprocessed"
                else None
            ),
            "audio_framing": self.audio_framing,
            "visual_backbone": self.visual_backbone,
            "visual_weights": _file_identity(self.visual_weights),
            "frames_per_second": self.frames_per_second,
            "image_size": self.image_size,
            "audio_dim": self.audio_dim,
            "visual_shape": self.visual_shape,
            # Only when not the defaults, so directories written before them still resume.
            **(
                {"frame_sampling": self.frame_sampling}
                if self.frame_sampling != video.SAMPLING_CENTRE
                else {}
            ),
            **({"visual_layout": self.visual_layout} if self.visual_layout else {}),
        }

    def check(self):
        """Refuse settings that cannot make features.

        Raises:
            errors.UserError: naming the field (vggish_checkpoint, visual_backbone,
                frame_sampling, visual_layout) that is missing or has a value it cannot take.
        """
        if not self.vggish_checkpoint:
            raise UserError(
                "vggish_checkpoint: expected the path of the official vggish_model.ckpt, found"
                " none",
                argument="vggish_checkpoint",
            )
        visual_features.get_backbone(self.visual_backbone)
        if self.frame_sampling not in video.FRAME_SAMPLINGS:
            raise argument_error(
                "frame_sampling", f"one of {video.FRAME_SAMPLINGS}", repr(self.frame_sampling)
            )
        layouts = (None, constants.LAYOUT_VECTOR, constants.LAYOUT_MAP)
        if self.visual_layout not in layouts:
            raise argument_error("visual_layout", f"one of {layouts[1:]}", repr(self.visual_layout))
        if self.visual_layout == constants.LAYOUT_MAP and len(self.backbone_shape) != 3:
            raise argument_error(
                "visual_layout",
                "vector for --visual_backbone="
                f"{self.visual_backbone} (it pools to {self.backbone_shape})",
                repr(self.visual_layout),
            )
