"""`python -m avsdn_tf.experiments`: the AVSDN paper's tables with one command.

    python -m avsdn_tf.experiments --data_dir data/ave --table all --seeds 3 --output_dir EXP
    python -m avsdn_tf.experiments --data_dir data/ave --table cross_modal --seeds 3 --output_dir X

Trains every row of the chosen tables once per seed (seed k uses HParams(seed=k)), each in
EXP/runs/<table>/<model>/seed<k>, selects each run's epoch on val, and writes EXP/results.json
and EXP/results.md: measured accuracies as mean ± std over the seeds, beside (never mixed with)
the accuracies the paper reports on the real AVE features. Rerunning the same command resumes an
interrupted experiment and reads finished runs back without retraining them. With no --data_dir
it uses the built-in synthetic data set; --epochs and --max_videos make a quick version.
`all` is the paper's Tables 1-3; `cross_modal` (AVEL's A2V / V2A localization with the AVE
authors' AVDLN, on the match splits `prepare` writes; avdln's own defaults, batch 8 and 20
epochs, under --hparams_file and --epochs) is run on its own.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import shlex
import sys

from absl import flags

from avsdn_tf import cli, dataset_info, invocation
from avsdn_tf.data import synthetic
from avsdn_tf.errors import input_error
from avsdn_tf.paper import rows as paper_rows
from avsdn_tf.paper import runner

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs (not at import, so modules with flags of the
    same names can be imported side by side)."""
    cli.define(
        "data_dir",
        "max_videos",
        "strategy",
        output_dir=("runs/experiments", "Where runs/, results.json and results.md go."),
        max_videos="Use at most this many videos per split (quick version).",
        hparams_file=(
            "JSON file of hyperparameters shared by every run (tuning writes best_hparams.json); "
            "each row sets its own model, supervision and seed."
        ),
    )
    cli.define_hparams(
        ["epochs"],
        helps={
            "epochs": (
                "Epochs per run (quick version: a few; default: the "
                "--hparams_file value, else the default)."
            )
        },
    )
    flags.DEFINE_string(
        "table",
        paper_rows.ALL,
        f"Which table to run: one of {', '.join(paper_rows.TABLE_CHOICES)} (all: the paper's "
        "Tables 1-3; cross_modal, AVEL's A2V / V2A localization, runs on its own; field: AVEL "
        "A+V with attention, AVSDN, PSP and CMBS, fully and weakly supervised, each with its "
        "authors' recipe, beside their published numbers).",
    )
    flags.DEFINE_integer(
        "seeds", 3, "Runs per row, with seeds 0 .. seeds-1; accuracies are mean ± std over them."
    )
    flags.DEFINE_list(
        "rows", None, "Only these rows (model names, e.g. avsdn,av_att); default: every row."
    )
    flags.DEFINE_boolean(
        "extras",
        True,
        "Also run the rows that are not in the paper's tables (DMRN), marked as extra.",
    )
    cli.define(*cli.THREAD_FLAGS)


def main(argv):
    """Run `python -m avsdn_tf.experiments` with absl's parsed global flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
    Returns:
        None (exit 0) on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    if len(argv) > 1:
        raise input_error("command line", "only --flags", f"unexpected arguments {argv[1:]}")
    cli.configure_threads()
    selection = paper_rows.select(FLAGS.table, FLAGS.rows, FLAGS.extras)  # bad flags: now
    if FLAGS.seeds < 1:
        raise input_error("--seeds", "a positive number of seeds", FLAGS.seeds)
    if FLAGS.max_videos is not None and FLAGS.max_videos < 1:
        raise input_error("--max_videos", "a positive number of videos per split", FLAGS.max_videos)
    base = cli.hparams_from_flags(["epochs"], model=paper_rows.own_defaults_model(selection))
    data = dataset_info.DataDir.open(FLAGS.data_dir or synthetic.ensure_default_dataset())
    runner.run(
        data,
        FLAGS.output_dir,
        table=FLAGS.table,
        seeds=FLAGS.seeds,
        base=base,
        rows=FLAGS.rows,
        extras=FLAGS.extras,
        max_videos=FLAGS.max_videos,
        strategy_name=FLAGS.strategy,
        verbose=1 if sys.stdout.isatty() else 0,
        command=" ".join([invocation.name(), *map(shlex.quote, sys.argv[1:])]),
        given=cli.given_hparams(["epochs"]),
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
