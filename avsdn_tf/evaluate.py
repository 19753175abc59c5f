"""`python -m avsdn_tf.evaluate --model_dir RUN --data_dir OUT --split test`: score a run again.

Prints a table, writes RUN/eval_<split>.json and, with matplotlib installed, a confusion-matrix PNG.
"""

import os

import numpy as np
import tensorflow as tf
from absl import app, flags

from avsdn_tf import dataset_info, evaluation, fileio, metrics, models, report
from avsdn_tf.errors import UserError, input_error, run_main
from avsdn_tf.run_dir import RunDir

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Run directory written by train.")
flags.DEFINE_string("data_dir", None, "Data directory; default: the one the run was trained on.")
flags.DEFINE_string("split", "test", "Split to evaluate.")
flags.DEFINE_enum("checkpoint", "best", ["best", "last"], "The best-on-val checkpoint or the last epoch's.")
flags.DEFINE_string("output_dir", None, "Where to write the JSON and PNG; default: the run directory.")


def load_run_model(model_dir, checkpoint="best"):
    run = RunDir(model_dir)
    path = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not tf.io.gfile.exists(model_dir):
        raise UserError(f"{model_dir}: run directory not found")
    if not tf.io.gfile.exists(path):
        raise input_error(model_dir, f"a trained run with {os.path.relpath(path, model_dir)}", "no such checkpoint")
    return models.load_model(path)


def evaluate_run(model_dir, data_dir=None, split="test", checkpoint="best", output_dir=None):
    run = RunDir(model_dir)
    config = run.read_config() or {}
    data_dir = data_dir or config.get("data_dir")
    if not data_dir:
        raise UserError("--data_dir: expected a data directory (the run does not record one), found none")
    model = load_run_model(model_dir, checkpoint)
    info = dataset_info.read(data_dir)
    expected = config.get("data")
    found = {"audio_dim": info.audio_dim, "visual_shape": list(info.visual_shape)}
    if expected and {k: expected[k] for k in found} != found:
        raise input_error(f"{data_dir}/dataset_info.json", f"the dims the run was trained on {expected}", found)
    _, labels, predictions, _ = evaluation.predict_split(model, data_dir, split)
    summary = metrics.summarize(labels, predictions, info.class_names)
    summary.update({"split": split, "data_dir": data_dir, "checkpoint": checkpoint})
    output_dir = output_dir or model_dir
    tf.io.gfile.makedirs(output_dir)
    fileio.write_json(os.path.join(output_dir, f"eval_{split}.json"), summary)
    print(report.metrics_table(summary, info.class_names))
    png = report.save_confusion_png(np.asarray(summary["confusion_matrix"]), info.class_names,
                                    os.path.join(output_dir, f"confusion_{split}.png"),
                                    title=f"{os.path.basename(model_dir.rstrip('/'))} on {split}")
    if png:
        print(f"confusion matrix: {png}")
    return summary


def main(argv):
    del argv
    if not FLAGS.model_dir:
        raise UserError("--model_dir: expected a run directory written by train, found none")
    evaluate_run(FLAGS.model_dir, FLAGS.data_dir, FLAGS.split, FLAGS.checkpoint, FLAGS.output_dir)


if __name__ == "__main__":
    app.run(run_main(main))
