"""`python -m avsdn_tf.evaluate --model_dir RUN --data_dir OUT --split test`: score a run again.

Prints a table, writes RUN/eval_<split>.json and, with matplotlib installed, a confusion-matrix PNG
and the page RUN/eval_<split>.html (accuracies, confusion matrix, the videos it gets most wrong).
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

from absl import flags

from avsdn_tf import cli, dataset_info
from avsdn_tf.inference import viewer
from avsdn_tf.training import evaluation

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs (not at import, so modules with flags of the
    same names can be imported side by side)."""
    cli.define(
        "model_dir",
        "checkpoint",
        "data_dir",
        "split",
        "output_dir",
        data_dir=(
            "Data directory to evaluate on; default: the one the run was trained on (the run"
            " directory carries the model's normalisation, so any data of the same feature dims"
            " works)."
        ),
        split=(
            None,
            "Split to evaluate; default: the run's test split (test, or test_match for an "
            "avdln run).",
        ),
        output_dir="Where to write the JSON, PNG and page; default: the run directory.",
    )
    cli.define(*cli.THREAD_FLAGS)


def main(argv):
    """Run `python -m avsdn_tf.evaluate` with absl's parsed global flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
    Returns:
        None (exit 0) on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    del argv
    cli.configure_threads()
    data = dataset_info.DataDir.open(FLAGS.data_dir) if FLAGS.data_dir else None
    evaluation.evaluate_run(
        FLAGS.model_dir,
        data,
        FLAGS.split,
        FLAGS.checkpoint,
        FLAGS.output_dir,
        write_page=viewer.write_evaluation_page if viewer.pages_available() else None,
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("model_dir",))
