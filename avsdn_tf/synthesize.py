"""`python -m avsdn_tf.synthesize --output_dir OUT`: the built-in data set, in the project's
format."""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

from absl import flags

from avsdn_tf import cli, constants
from avsdn_tf.data import synthetic

FLAGS = flags.FLAGS


_DEFAULTS = synthetic.SyntheticConfig()


def define_flags():
    """The command's flags, defined when it runs (not at import, so modules with flags of the
    same names can be imported side by side)."""
    cli.define(output_dir="Directory to write the data set to (replaced when complete).")
    flags.DEFINE_integer(
        "train_videos", _DEFAULTS.videos_per_split["train"], "Videos in the train split."
    )
    flags.DEFINE_integer(
        "val_videos", _DEFAULTS.videos_per_split["val"], "Videos in the val split."
    )
    flags.DEFINE_integer(
        "test_videos", _DEFAULTS.videos_per_split["test"], "Videos in the test split."
    )
    flags.DEFINE_integer(
        "noisy_videos",
        _DEFAULTS.videos_per_split["noisy"],
        "Background-only videos (the weak-supervision extra split); 0 for none.",
    )
    flags.DEFINE_integer("audio_dim", _DEFAULTS.audio_dim, "Audio feature size per segment.")
    flags.DEFINE_enum(
        "visual_layout",
        _DEFAULTS.visual_layout,
        [constants.LAYOUT_VECTOR, constants.LAYOUT_MAP],
        "One visual vector per segment, or a map_size x map_size x visual_dim map.",
    )
    flags.DEFINE_integer("visual_dim", _DEFAULTS.visual_dim, "Visual vector size, or map channels.")
    flags.DEFINE_integer("map_size", _DEFAULTS.map_size, "Height and width of visual maps.")
    flags.DEFINE_float(
        "noise",
        _DEFAULTS.noise,
        "Spread of each observation around its class (per dimension, times sqrt(dim)); the "
        "classes stay the same, so a larger value makes each segment harder to read alone and "
        "rewards models that read the whole video.",
    )
    flags.DEFINE_integer(
        "seed", _DEFAULTS.seed, "Seed: the same seed gives byte-identical records."
    )


def main(argv):
    """Run `python -m avsdn_tf.synthesize` with absl's parsed global flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
    Returns:
        None (exit 0) on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    del argv
    config = synthetic.SyntheticConfig(
        videos_per_split={
            "train": FLAGS.train_videos,
            "val": FLAGS.val_videos,
            "test": FLAGS.test_videos,
            "noisy": FLAGS.noisy_videos,
        },
        audio_dim=FLAGS.audio_dim,
        visual_layout=FLAGS.visual_layout,
        visual_dim=FLAGS.visual_dim,
        map_size=FLAGS.map_size,
        seed=FLAGS.seed,
        noise=FLAGS.noise,
    )
    synthetic.write_dataset(FLAGS.output_dir, config)


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("output_dir",))
