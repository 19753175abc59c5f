"""Scoring a trained model on a split of a data directory, the way its task scores."""

import os

import numpy as np

from avsdn_tf import dataset_info, fileio
from avsdn_tf.data import pipeline
from avsdn_tf.errors import UserError
from avsdn_tf.models import tasks
from avsdn_tf.models.registry import load_run
from avsdn_tf.training import report


def predict_split(model, data, split, batch_size=64, max_videos=None, task=None):
    """Per-video ids, segment labels, predicted labels and probabilities of one split.

    Args:
        model: a trained model of a segment-labelling task (its per-segment part is read).
        data: a dataset_info.DataDir (or a data directory's path, opened here).
        split: the split name. batch_size: videos per batch.
        max_videos: only the first this many videos (None: all).
        task: the model's task (its segment_model); default the classifiers' segment_probs.
    Returns:
        tasks.segment_predictions' (ids [N], labels [N, T], predictions [N, T], probs
        [N, T, 29]); videos of different lengths padded with constants.PAD_LABEL.
    """
    batches = pipeline.make_dataset(
        dataset_info.DataDir.of(data), split, batch_size, max_videos=max_videos
    )
    if task is None:
        return tasks.segment_predictions(model, batches)
    return tasks.segment_predictions(model, batches, task.segment_model)


def evaluate_split(task, model, data, split, class_names, max_videos=None, batch_size=64):
    """Score a model on one split of a data directory, as its task scores (Task.evaluate_batches).

    Args:
        task: the run's task (tasks.for_hparams).
        model: a trained model that task built.
        data: a dataset_info.DataDir.
        split: the split name, e.g. "test" (or "test_match" for the cross-modal task).
        class_names: the K class names of the run.
        max_videos: score only the first this many videos (None: all).
        batch_size: videos per forward pass.
    Returns:
        the task's summary: metrics.summarize's dict for the classifiers (accuracy, per-class
        accuracy, confusion matrix, intervals), A2V / V2A accuracy for the cross-modal task.
    """
    batches = pipeline.make_dataset(data, split, batch_size, max_videos=max_videos)
    return task.evaluate_batches(model, batches, class_names)


def evaluate_run(
    model_dir, data=None, split=None, checkpoint="best", output_dir=None, write_page=None
):
    """Score a run's checkpoint on a split; write eval_<split>.json and a confusion PNG.

    The run directory is all the model needs (it carries its normalisation); data_dir only
    supplies the records to score.

    Args:
        model_dir: a run directory written by train.
        data: the data to score, a dataset_info.DataDir or a path (opened here, once); default:
            the data the run was trained on.
        split: the split name (default: the run's task's test split, e.g. test_match for avdln).
        checkpoint: "best" or "last".
        output_dir: where the files go (default: model_dir).
        write_page: for the classifiers, called as write_page(path, summary, class_names,
            predictions, title) to write eval_<split>.html, predictions being predict_split's
            tuple (a second pass over the split); None: no page. (The page writer lives above
            this package: inference/viewer.write_evaluation_page, passed in by the command.)
    Returns:
        the summary dict (evaluate_split's, plus "split", "data_dir", "checkpoint"); the
        confusion PNG only for the classifiers.
    Raises:
        errors.UserError: for a missing or old run, or data of other dims than the run's.
    """
    run = load_run(model_dir, checkpoint)
    data = data or run.data_dir
    if not data:
        raise UserError(f"{run.path}: the run records no data directory; name one to evaluate on")
    data = dataset_info.DataDir.of(data)
    run.check_data(data.info, data.path)
    split = split or run.task.splits["test"]
    summary = evaluate_split(run.task, run.model, data, split, run.class_names)
    summary.update({"split": split, "data_dir": data.path, "checkpoint": checkpoint})
    output_dir = output_dir or model_dir
    fileio.make_directories(output_dir)
    fileio.write_json(os.path.join(output_dir, f"eval_{split}.json"), summary)
    print(report.table(run.task.evaluation_kind, summary, run.class_names))
    if "confusion_matrix" not in summary:
        return summary
    png = report.save_confusion_png(
        np.asarray(summary["confusion_matrix"]),
        run.class_names,
        os.path.join(output_dir, f"confusion_{split}.png"),
        title=f"{os.path.basename(model_dir.rstrip('/'))} on {split}",
    )
    if png:
        print(f"confusion matrix: {png}")
    if write_page is not None:
        page = write_page(
            os.path.join(output_dir, f"eval_{split}.html"),
            summary,
            run.class_names,
            predict_split(run.model, data, split, task=run.task),
            f"{os.path.basename(model_dir.rstrip('/'))}: {split}",
        )
        print(f"evaluation page: {page}")
    return summary
