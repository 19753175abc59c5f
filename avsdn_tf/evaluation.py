"""Predicting a split with the per-segment model and scoring it with every metric."""

import os

import numpy as np
import tensorflow as tf

from avsdn_tf import dataset_info, fileio, metrics, models, pipeline, records, report
from avsdn_tf.errors import UserError, input_error
from avsdn_tf.run_dir import RunDir


def _predictor(segment_model):
    """The lean forward pass (models.inference_function), made once per model so epochs reuse it."""
    cached = getattr(segment_model, "_avsdn_predict", None)
    if cached is None:
        cached = models.inference_function(segment_model)
        segment_model._avsdn_predict = cached
    return cached


def frame_accuracy_of(segment_model, data):
    """Frame-wise accuracy of a per-segment model over a dataset of (inputs, segment labels)."""
    predict = _predictor(segment_model)
    correct = total = 0
    for inputs, labels in data:
        predicted = np.argmax(predict(inputs).numpy(), axis=-1)
        labels = labels.numpy()
        valid = labels >= 0
        correct += int((predicted[valid] == labels[valid]).sum())
        total += int(valid.sum())
    return correct / max(total, 1)


def predict_split(model, data_dir, split, batch_size=64, max_videos=None):
    """Per-video ids, segment labels, predicted labels and probabilities of one split."""
    # A training model with more heads than the segment one (weak pooling, the label-guided ablation's
    # video-label heads) is cut down to inputs -> segment_probs.
    segment_model = model if list(model.output_names) == [models.SEGMENT_OUTPUT] else models.segment_model(model)
    predict = _predictor(segment_model)
    data = pipeline.make_dataset(data_dir, split, batch_size, with_metadata=True, max_videos=max_videos)
    ids, labels, probs = [], [], []
    for parsed in data:
        inputs = {records.AUDIO: parsed[records.AUDIO], records.VISUAL: parsed[records.VISUAL]}
        probs.append(predict(inputs).numpy())
        labels.append(parsed[records.LABEL].numpy())
        ids.extend(video_id.decode() for video_id in parsed[records.VIDEO_ID].numpy())
    width = max(p.shape[1] for p in probs)  # videos of different lengths: pad with label -1
    probs = np.concatenate([np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in probs])
    labels = np.concatenate([np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=-1) for x in labels])
    predictions = np.where(labels >= 0, probs.argmax(-1), -1)
    return ids, labels, predictions, probs


def evaluate_split(model, data_dir, split, max_videos=None):
    info = dataset_info.read(data_dir)
    _, labels, predictions, _ = predict_split(model, data_dir, split, max_videos=max_videos)
    return metrics.summarize(labels, predictions, info.class_names)


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
    _, labels, predictions, _ = predict_split(model, data_dir, split)
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
