"""`python -m avsdn_tf.train`: train a registered model, select on val, evaluate on test.

With no flags it trains AVSDN on the built-in synthetic data set (made on first use).
"""

import sys

from absl import app, flags

from avsdn_tf import constants, hparams, models, synthetic, threads, training
from avsdn_tf.errors import run_main

FLAGS = flags.FLAGS
_D = hparams.HParams()
flags.DEFINE_string("data_dir", None, "Data directory (prepare / synthesize / extract output). "
                    "Default: the built-in synthetic data set.")
flags.DEFINE_string("model_dir", constants.DEFAULT_MODEL_DIR, "Run directory: checkpoints, logs, metrics.json.")
flags.DEFINE_string("model", None, f"Registered model name, or 'help' to list them. Default {_D.model!r}.")
flags.DEFINE_enum("supervision", None, ["full", "weak"], f"Segment labels or video labels only. Default {_D.supervision!r}.")
flags.DEFINE_integer("epochs", None, f"Training epochs. Default {_D.epochs}.")
flags.DEFINE_integer("batch_size", None, f"Batch size per replica. Default {_D.batch_size}.")
flags.DEFINE_float("learning_rate", None, f"Adam learning rate. Default {_D.learning_rate}.")
flags.DEFINE_enum("lr_schedule", None, ["constant", "step", "cosine"], "Learning-rate schedule.")
flags.DEFINE_enum("visual_reduction", None, ["pool", "attention"], "Visual maps: pooling or audio-guided attention.")
flags.DEFINE_float("dropout", None, "Dropout before the classifier.")
flags.DEFINE_integer("early_stopping_patience", None, "Stop after this many epochs without val improvement.")
flags.DEFINE_integer("seed", None, f"Random seed. Default {_D.seed}.")
flags.DEFINE_float("cache_gb", None, "Keep the decoded train and val splits in memory when they fit in this "
                   f"many GB (epochs after the first then skip reading and parsing); 0 = never. Default {_D.cache_gb}.")
flags.DEFINE_string("hparams_file", None, "JSON file of hyperparameters (tuning writes best_hparams.json); "
                    "flags given explicitly override it.")
flags.DEFINE_enum("strategy", "auto", list(training.STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_integer("max_videos", None, "Use at most this many videos per split (quick runs).")
flags.DEFINE_integer("cpu_devices", None, "Split the CPU into this many logical devices, so MirroredStrategy "
                     "can be tried without GPUs (--strategy mirrored).")
threads.define_flags()

_HPARAM_FLAGS = ("model", "supervision", "epochs", "batch_size", "learning_rate", "lr_schedule",
                 "visual_reduction", "dropout", "early_stopping_patience", "seed", "cache_gb")


def resolve_hparams():
    """Defaults, then --hparams_file, then the flags given on the command line."""
    hp = hparams.load(FLAGS.hparams_file) if FLAGS.hparams_file else hparams.HParams()
    given = {name: getattr(FLAGS, name) for name in _HPARAM_FLAGS if getattr(FLAGS, name) is not None}
    return hparams.from_dict(given, source="command-line flags", base=hp)


def main(argv):
    del argv
    if FLAGS.model == "help":
        print(models.describe())
        return
    threads.configure_from_flags()
    if FLAGS.cpu_devices:
        training.split_cpu(FLAGS.cpu_devices)
    hp = resolve_hparams()
    data_dir = FLAGS.data_dir or synthetic.ensure_default_dataset()
    training.train(data_dir, FLAGS.model_dir, hp, strategy_name=FLAGS.strategy, max_videos=FLAGS.max_videos,
                   verbose=2 if not sys.stdout.isatty() else 1)


if __name__ == "__main__":
    app.run(run_main(main))
