"""`python -m avsdn_tf.train`: train a registered model, select on val, evaluate on test.

With no flags it trains AVSDN on the built-in synthetic data set (made on first use).
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import contextlib
import sys

from absl import flags

from avsdn_tf import cli, constants, dataset_info, locks, runs
from avsdn_tf.data import synthetic
from avsdn_tf.models import registry
from avsdn_tf.training import strategies, trainer

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs (not at import, so modules with flags of the
    same names can be imported side by side)."""
    flags.DEFINE_integer(
        "inject_nan_at_epoch",
        None,
        "Fault injection, to see the NaN stop work: from this epoch (1-based) on, every training "
        "batch's audio is NaN, as a broken feature extractor would write it. Training stops at "
        "that epoch's first step with one message, keeping the last good checkpoint (exit 2).",
        lower_bound=1,
    )
    flags.DEFINE_string(
        "init_weights",
        None,
        "Released weights to start from: for --model avdln the AVE authors' Keras 2 h5 "
        "(cmm_model_weights.h5). With --epochs 0 they are imported into --model_dir and "
        "evaluated without training; with more epochs training fine-tunes them.",
    )
    cli.define(
        "data_dir",
        "model_dir",
        "strategy",
        "max_videos",
        "hparams_file",
        model_dir=(constants.DEFAULT_MODEL_DIR, "Run directory: checkpoints, logs, metrics.json."),
    )
    cli.define_hparams(helps={"model": "Registered model name, or 'help' to list them."})
    flags.DEFINE_integer(
        "cpu_devices",
        None,
        "Split the CPU into this many logical devices, so MirroredStrategy "
        "can be tried without GPUs (--strategy mirrored).",
    )
    cli.define(
        wait=(
            "If another process trains in --model_dir, wait for it to end instead of refusing "
            "(the lock is --model_dir/.lock; none on gs:// or s3://, and none with --strategy "
            "multi_worker, whose workers share the directory)."
        )
    )
    cli.define(*cli.THREAD_FLAGS)
    flags.DEFINE_bool(
        "repair_config",
        False,
        "Rewrite --model_dir's config.json so it describes its checkpoints, and do nothing else: "
        "the training settings they record (learning rate and schedule, clip_norm, ...) and the "
        "layer widths their weights have. For a run an older train left inconsistent (it "
        "rewrote config.json when resuming with other flags); every command names this flag "
        "for such a run.",
    )


def _repair(model_dir):
    """--repair_config: rewrite the run's config.json from its checkpoints, say what changed."""
    changed = registry.repair_config(model_dir)
    if not changed:
        print(f"{model_dir}/config.json already describes its checkpoints; nothing changed")
        return
    for name, was, now in changed:
        print(f"hparams.{name}: {was!r} -> {now!r}")
    print(f'{model_dir}/config.json now describes its checkpoints (its "repaired" lists this)')


def main(argv):
    """Run `python -m avsdn_tf.train` with absl's parsed global flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
    Returns:
        None (exit 0) on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    del argv
    if FLAGS.model == "help":
        print(registry.describe())
        return
    cli.configure_threads()
    if FLAGS.repair_config:
        with locks.directory_lock(FLAGS.model_dir, "`model_dir`", wait=FLAGS.wait):
            _repair(FLAGS.model_dir)
        return
    if FLAGS.cpu_devices:
        strategies.split_cpu(FLAGS.cpu_devices)
    # An existing run is resumed with its own hyperparameters; only those given are compared.
    hp = cli.hparams_from_flags(run=runs.RunDir(FLAGS.model_dir).recorded_hparams())
    registry.check_name(hp.model)  # before any file is read: a mistyped model is the message
    data_dir = FLAGS.data_dir or synthetic.ensure_default_dataset()
    lock = (
        contextlib.nullcontext()
        if FLAGS.strategy == "multi_worker"
        else locks.directory_lock(
            FLAGS.model_dir, "`model_dir`", wait=FLAGS.wait, stale=runs.STALE_TEMPORARIES
        )
    )
    with lock:  # taken before the data is read: a held run directory is the first message
        trainer.train(
            dataset_info.DataDir.open(data_dir),
            FLAGS.model_dir,
            hp,
            strategy_name=FLAGS.strategy,
            max_videos=FLAGS.max_videos,
            verbose=2 if not sys.stdout.isatty() else 1,
            inject_nan_at_epoch=FLAGS.inject_nan_at_epoch,
            init_weights=FLAGS.init_weights,
        )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
