"""The feature flags extract and predict share, and the settings they become.

`define_feature_flags(flag_values)` defines them in a command (--preset, --vggish_checkpoint,
--visual_backbone, --visual_weights, --frames_per_second, ...), `define_runner_flag` extract's
--runner, and `settings_from_flags` turns the parsed flags into a
features.feature_settings.FeatureSettings (the library takes that value, never the flags). Like
cli.py's shared flags, they belong to the command that defines them, so its --help lists them.
"""

import sys

from absl import flags
from absl.flags import _helpers

from avsdn_tf import constants
from avsdn_tf.features import (
    beam_extraction,
    feature_settings,
    vggish_params,
    vggish_slim,
    video,
    visual_features,
)

# absl files a flag under the module that defined it: frames of this module are skipped, so a
# flag defined here belongs to the command that asked for it (cli.py does the same).
_helpers.disclaim_module_ids.add(id(sys.modules[__name__]))

_AVE_RELEASE = " ".join(f"--{k}={v}" for k, v in feature_settings.PRESETS["ave_release"].items())

# name -> (definer, default, choices or None, help[, keyword arguments]), in definition order.
FEATURE_FLAGS = {
    "preset": (
        flags.DEFINE_enum,
        None,
        sorted(feature_settings.PRESETS),
        f"Set the feature flags of a published feature set: ave_release = {_AVE_RELEASE}. "
        "Feature flags given on the command line win over the preset's.",
    ),
    "vggish_checkpoint": (
        flags.DEFINE_string,
        None,
        None,
        "The official VGGish checkpoint, vggish_model.ckpt "
        "(TF1 checkpoint, V1 format; V2 works too). Default: downloaded once from "
        f"{vggish_slim.official_url(vggish_params.CHECKPOINT_FILE)} into Keras' cache "
        f"($KERAS_HOME or ~/.keras, under {vggish_params.CACHE_SUBDIR}/).",
    ),
    "vggish_output": (
        flags.DEFINE_enum,
        "relu",
        list(vggish_params.OUTPUTS),
        "relu: the embedding with ReLU, as the 2017 VGGish that made the AVE release's audio "
        "features; linear: today's vggish_slim.py (no activation); postprocessed: PCA + 8-bit "
        "quantisation as the AudioSet release (needs --vggish_pca_params).",
    ),
    "vggish_pca_params": (
        flags.DEFINE_string,
        None,
        None,
        "vggish_pca_params.npz (for --vggish_output="
        "postprocessed). Default: downloaded once from "
        f"{vggish_slim.official_url(vggish_params.PCA_PARAMS_FILE)} into Keras' cache.",
    ),
    "audio_framing": (
        flags.DEFINE_enum,
        "second",
        list(vggish_params.FRAMINGS),
        "second: the VGGish example of second t starts at t s; vggish: examples every 0.96 s "
        "as waveform_to_examples frames a clip (identical layout for 10-s AVE clips).",
    ),
    "visual_backbone": (
        flags.DEFINE_enum,
        "vgg19",
        sorted(visual_features.BACKBONES),
        "vgg19: pool5 maps (7x7x512 at 224 px), as the AVE release; resnet152: 2048-d pooled, "
        "as the AVSDN paper.",
    ),
    "visual_weights": (
        flags.DEFINE_string,
        visual_features.IMAGENET,
        None,
        "'imagenet' (downloaded by Keras) or the path of a weights file of the "
        "include_top=False backbone (*.weights.h5 from save_weights, or Keras' *_notop.h5).",
    ),
    "frame_sampling": (
        flags.DEFINE_enum,
        video.SAMPLING_CENTRE,
        list(video.FRAME_SAMPLINGS),
        "centre: frames at the centres of equal slices of each second, resized by "
        "swscale; ave: as the AVE authors' script, frames int(l * interval + i / F * "
        "interval) with interval = int(frames / seconds), resized as cv2.resize.",
    ),
    "visual_layout": (
        flags.DEFINE_enum,
        None,
        [constants.LAYOUT_MAP, constants.LAYOUT_VECTOR],
        "Default: the backbone's own (vgg19 maps, resnet152 vectors). vector: the "
        "spatial mean of the averaged maps, as the AVE release's "
        "visual_feature_vec.h5 (predict picks the layout its model was trained on).",
    ),
    "frames_per_second": (
        flags.DEFINE_integer,
        feature_settings.DEFAULT_FRAMES_PER_SECOND,
        None,
        "Frames per 1-s segment through the visual backbone, averaged (AVE: 16).",
        {"lower_bound": 1},
    ),
    "image_size": (
        flags.DEFINE_integer,
        visual_features.DEFAULT_IMAGE_SIZE,
        None,
        "Frames are resized to this many pixels square (224: 7x7 VGG-19 maps).",
        {"lower_bound": 32},
    ),
    "batch_size": (
        flags.DEFINE_integer,
        feature_settings.DEFAULT_BATCH_SIZE,
        None,
        "Frames per forward pass of the visual backbone.",
        {"lower_bound": 1},
    ),
}


def define_feature_flags(flag_values=flags.FLAGS):
    """Define the flags that decide the features (FEATURE_FLAGS); extract and predict share them.

    Args:
        flag_values: the absl FlagValues to define them in (default: the global flags.FLAGS).
    Returns:
        None; defines preset, vggish_checkpoint, vggish_output, vggish_pca_params,
        audio_framing, visual_backbone, visual_weights, frame_sampling, visual_layout,
        frames_per_second, image_size and batch_size.
    """
    for name, (definer, default, choices, help_text, *extra) in FEATURE_FLAGS.items():
        options = {**(extra[0] if extra else {}), "flag_values": flag_values}
        if choices is None:
            definer(name, default, help_text, **options)
        else:
            definer(name, default, choices, help_text, **options)


def define_runner_flag(flag_values=flags.FLAGS):
    """Define extract's --runner (an Apache Beam runner; default none: one process).

    Args:
        flag_values: the absl FlagValues to define it in.
    """
    flags.DEFINE_enum(
        "runner",
        None,
        list(beam_extraction.RUNNERS),
        "Run extraction as an Apache Beam pipeline on this runner (needs "
        f"{beam_extraction.INSTALL_HINT}); the arguments extract does not know (--project, "
        "--region, --temp_location, --direct_num_workers, ...) go to Beam's PipelineOptions. "
        "Default: one process, no Beam.",
        flag_values=flag_values,
    )


def settings_from_flags(flag_values=flags.FLAGS, verbose=True):
    """The FeatureSettings the parsed feature flags give.

    --preset's values fill the feature flags not given on the command line, and the official
    VGGish files (downloaded once into Keras' cache) are used where no path is given
    (feature_settings.FeatureSettings.resolve).

    Args:
        flag_values: parsed absl FlagValues holding the feature flags (define_feature_flags).
        verbose: print which given flags were kept over the preset, and downloads.
    Returns:
        feature_settings.FeatureSettings.
    """
    fields = [name for name in FEATURE_FLAGS if name != "preset"]
    return feature_settings.FeatureSettings.resolve(
        {name: flag_values[name].value for name in fields},
        preset=flag_values["preset"].value,
        given={name for name in fields if flag_values[name].present},
        verbose=verbose,
    )
