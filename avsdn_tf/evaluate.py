"""`python -m avsdn_tf.evaluate --model_dir RUN --data_dir OUT --split test`: score a run again.

Prints a table, writes RUN/eval_<split>.json and, with matplotlib installed, a confusion-matrix PNG.
"""

from absl import app, flags

from avsdn_tf import evaluation, threads
from avsdn_tf.errors import UserError, run_main

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Run directory written by train.")
flags.DEFINE_string("data_dir", None, "Data directory; default: the one the run was trained on.")
flags.DEFINE_string("split", "test", "Split to evaluate.")
flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "The best-on-val checkpoint or the last epoch's.")
flags.DEFINE_string("output_dir", None, "Where to write the JSON and PNG; default: the run directory.")
threads.define_flags()


def main(argv):
    del argv
    threads.configure_from_flags()
    if not FLAGS.model_dir:
        raise UserError("--model_dir: expected a run directory written by train, found none")
    evaluation.evaluate_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.split, FLAGS.checkpoint, FLAGS.output_dir)


if __name__ == "__main__":
    app.run(run_main(main))
