"""Predicting a split with the per-segment model and scoring it with every metric."""

import os

import numpy as np

from avsdn_tf import constants, fileio
from avsdn_tf.data import pipeline, records
from avsdn_tf.errors import UserError
from avsdn_tf.models import backbones, metrics
from avsdn_tf.training import report
from avsdn_tf.training.run_dir import load_run


def _predictor(segment_model):
    """The lean forward pass (backbones.inference_function), made once per model so epochs reuse
    its trace; synced with the model's current weights on every reuse."""
    cached = getattr(segment_model, "_avsdn_predict", None)
    if cached is None:
        cached = backbones.inference_function(segment_model)
        segment_model._avsdn_predict = cached
    else:
        cached.sync()
    return cached


def frame_accuracy_of(segment_model, data):
    """Frame-wise accuracy (metrics.FrameAccuracy) of a per-segment model over parsed batches.

    Args:
        segment_model: inputs -> segment_probs [B, T, 29].
        data: batches of parsed records (pipeline.make_dataset).
    Returns:
        float, the share of real segments predicted right.
    """
    predict = _predictor(segment_model)
    accuracy = metrics.FrameAccuracy()
    for parsed in data:
        accuracy.update_state(parsed[records.LABEL], predict(records.model_inputs(parsed)))
    return float(accuracy.result())


def predict_split(model, data_dir, split, batch_size=64, max_videos=None):
    """Per-video ids, segment labels, predicted labels and probabilities of one split.

    Args:
        model: a trained model (any task head; its segment_probs are read).
    Returns:
        (ids [N], labels [N, T], predictions [N, T], probs [N, T, 29]); videos of different
        lengths are padded to the longest, labels and predictions with constants.PAD_LABEL.
    """
    predict = _predictor(backbones.segment_model(model))
    data = pipeline.make_dataset(data_dir, split, batch_size, max_videos=max_videos)
    ids, labels, probs = [], [], []
    with pipeline.reading(data_dir, [split]):
        for parsed in data:
            probs.append(predict(records.model_inputs(parsed)).numpy())
            labels.append(parsed[records.LABEL].numpy())
            ids.extend(video_id.decode() for video_id in parsed[records.VIDEO_ID].numpy())
    width = max(p.shape[1] for p in probs)
    probs = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in probs])
    labels = np.concatenate(
        [
            np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=constants.PAD_LABEL)
            for x in labels
        ]
    )
    predictions = np.where(labels != constants.PAD_LABEL, probs.argmax(-1), constants.PAD_LABEL)
    return ids, labels, predictions, probs


def evaluate_split(model, data_dir, split, class_names, max_videos=None):
    """Score a model on one split of a data directory.

    Args:
        model: a trained model (any task head; its segment_probs are read).
        data_dir: a data directory (local path or storage URL).
        split: the split name, e.g. "test".
        class_names: the K class names of the run.
        max_videos: score only the first this many videos (None: all).
    Returns:
        metrics.summarize's dict: accuracy, per-class accuracy, confusion matrix, intervals.
    """
    _, labels, predictions, _ = predict_split(model, data_dir, split, max_videos=max_videos)
    return metrics.summarize(labels, predictions, class_names)


def evaluate_run(model_dir, data_dir=None, split="test", checkpoint="best", output_dir=None):
    """Score a run's checkpoint on a split; write eval_<split>.json and a confusion PNG.

    The run directory is all the model needs (it carries its normalisation); data_dir only
    supplies the records to score.

    Args:
        model_dir: a run directory written by train.
        data_dir: the data to score (default: the data the run was trained on).
        split: the split name.
        checkpoint: "best" or "last".
        output_dir: where the files go (default: model_dir).
    Returns:
        the summary dict (evaluate_split's, plus "split", "data_dir", "checkpoint").
    Raises:
        errors.UserError: for a missing or old run, or data of other dims than the run's.
    """
    run = load_run(model_dir, checkpoint)
    data_dir = data_dir or run.data_dir
    if not data_dir:
        raise UserError(f"{run.path}: the run records no data directory; name one to evaluate on")
    run.check_data(data_dir)
    summary = evaluate_split(run.model, data_dir, split, run.class_names)
    summary.update({"split": split, "data_dir": data_dir, "checkpoint": checkpoint})
    output_dir = output_dir or model_dir
    fileio.make_directories(output_dir)
    fileio.write_json(os.path.join(output_dir, f"eval_{split}.json"), summary)
    print(report.metrics_table(summary, run.class_names))
    png = report.save_confusion_png(
        np.asarray(summary["confusion_matrix"]),
        run.class_names,
        os.path.join(output_dir, f"confusion_{split}.png"),
        title=f"{os.path.basename(model_dir.rstrip('/'))} on {split}",
    )
    if png:
        print(f"confusion matrix: {png}")
    return summary
