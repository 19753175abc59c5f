"""Predicting a split with the per-segment model and scoring it with every metric."""

import numpy as np
import tensorflow as tf

from avsdn_tf import dataset_info, metrics, models, pipeline, records


def _predictor(segment_model):
    """A compiled forward pass, made once per model (so epochs do not retrace it)."""
    cached = getattr(segment_model, "_avsdn_predict", None)
    if cached is None:
        cached = tf.function(lambda inputs: segment_model(inputs, training=False), reduce_retracing=True)
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
    segment_model = models.segment_model(model) if models.SEGMENT_OUTPUT not in model.output_names else model
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
