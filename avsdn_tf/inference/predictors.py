"""Trained models on people's videos: a run or an exported SavedModel as a predictor, the
windows a long video is seen in, and one video's prediction printed, saved as JSON and drawn.

Both predictors map raw features audio [T, A], visual [T, ...] to probabilities [T, 29]; the
models normalise their inputs themselves. The command: avsdn_tf/predict.py.
"""

import os

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, fileio
from avsdn_tf.errors import UserError, input_error
from avsdn_tf.features import labels as label_files
from avsdn_tf.inference import timeline, viewer
from avsdn_tf.models import backbones, metrics, tasks
from avsdn_tf.models.registry import load_run

# ---------------------------------------------------------------------------------------------
# Models: a train run, or an exported SavedModel. Both map raw features [T, ...] to [T, 29].


class RunPredictor:
    """A train run's checkpoint, rebuilt for any length (it normalises its inputs itself)."""

    def __init__(self, model_dir, checkpoint="best"):
        run = load_run(model_dir, checkpoint)
        run.require_segments()  # a cross-modality (avdln) run labels no segments: one message
        self.audio_dim, self.visual_shape = run.audio_dim, run.visual_shape
        self.window = run.num_segments
        self.model = run.variable_length_model
        self._forward = backbones.inference_function(self.model)  # traced once, for any length
        self.class_names = run.class_names
        self.description = run.describe()

    def segments(self, audio, visual):
        """(probabilities [T, 29], labels int [T]) of one video: labels are the model's own
        decoding where it has one (CMBS), else the arg-max."""
        inputs = {
            "audio": np.asarray(audio, np.float32)[None],
            "visual": np.asarray(visual, np.float32)[None],
        }
        probs, labels = tasks.probabilities_and_labels(self._forward(inputs))
        return np.asarray(probs)[0], np.asarray(labels)[0]

    def __call__(self, audio, visual):
        return self.segments(audio, visual)[0]


class SavedModelPredictor:
    """An exported SavedModel: serving_default takes raw audio [B, T, A] and visual [B, T, ...]."""

    SIGNATURE = "serving_default"
    EXPORT_INFO = os.path.join(
        "assets.extra", "avsdn_export.json"
    )  # written by export.export_model

    def __init__(self, path):
        if not tf.io.gfile.exists(os.path.join(path, "saved_model.pb")):
            raise input_error(
                path,
                "a SavedModel version directory (holding saved_model.pb), e.g. SERVING/avsdn/1",
                "no saved_model.pb",
            )
        try:
            self.loaded = tf.saved_model.load(path)
        except (tf.errors.OpError, ValueError) as error:
            raise input_error(
                path, "a SavedModel TensorFlow can load", f"{type(error).__name__}: {error}"
            ) from None
        if self.SIGNATURE not in self.loaded.signatures:
            raise input_error(
                path,
                f"a SavedModel with the signature {self.SIGNATURE!r}",
                f"signatures {sorted(self.loaded.signatures)}",
            )
        self.signature = self.loaded.signatures[self.SIGNATURE]
        specs = self.signature.structured_input_signature[1]
        for key in ("audio", "visual"):
            if key not in specs:
                raise input_error(
                    f"{path} signature {self.SIGNATURE}",
                    "inputs 'audio' and 'visual'",
                    f"inputs {sorted(specs)}",
                )
        self.specs = specs
        self.audio_dim = specs["audio"].shape[-1]
        self.visual_shape = specs["visual"].shape.as_list()[2:]
        length = specs["audio"].shape[1]
        self.fixed_length = length is not None
        self.description = path
        self.output_key = self._probabilities_key()
        # export/export_model.py leaves a description of the export beside the SavedModel.
        info_path = os.path.join(path, self.EXPORT_INFO)
        info = fileio.read_json(info_path) if tf.io.gfile.exists(info_path) else {}
        self.window = int(length) if length is not None else info.get("trained_num_segments")
        self.class_names = info.get("class_names") or constants.class_names()
        if info.get("model"):
            self.description = (
                f"{path} ({info['model']}, {info.get('supervision')} supervision, from"
                f" {info.get('run')})"
            )

    def _probabilities_key(self):
        outputs = self.signature.structured_outputs
        for key in ("probabilities", "segment_probs", "probs"):
            if key in outputs:
                return key
        for key, spec in sorted(outputs.items()):
            if (
                spec.dtype.is_floating
                and spec.shape.rank == 3
                and spec.shape[-1] == constants.NUM_CLASSES
            ):
                return key
        raise input_error(
            f"{self.description} signature {self.SIGNATURE}",
            f"an output of per-segment probabilities [B, T, {constants.NUM_CLASSES}]",
            f"outputs {sorted(outputs)}",
        )

    def segments(self, audio, visual):
        """(probabilities [T, 29], labels int [T]) of one video: the served segment_labels when
        the signature has them (a model's own decoding is served as is), else the arg-max."""
        audio = tf.constant(audio[None], self.specs["audio"].dtype)
        visual = tf.constant(visual[None], self.specs["visual"].dtype)
        outputs = self.signature(audio=audio, visual=visual)
        probs = outputs[self.output_key].numpy()[0]
        if "segment_labels" in outputs:
            return probs, outputs["segment_labels"].numpy()[0]
        return probs, probs.argmax(-1)

    def __call__(self, audio, visual):
        return self.segments(audio, visual)[0]


def load_predictor(saved_model=None, model_dir=None, checkpoint="best"):
    """The predictor of an exported SavedModel or of a train run (exactly one of them).

    Args:
        saved_model: a SavedModel version directory (holding saved_model.pb), e.g. SERVING/avsdn/1.
        model_dir: a train run directory.
        checkpoint: with model_dir, "best" (the best-on-val epoch) or "last".
    Returns:
        SavedModelPredictor or RunPredictor: called with raw audio float32 [T, A] and visual
        float32 [T, ...], gives float32 [T, K] probabilities.
    Raises:
        errors.UserError: when both or neither are given, or the SavedModel or run cannot be
            loaded.
    """
    if bool(saved_model) == bool(model_dir):
        raise UserError(
            "`saved_model` / `model_dir`: expected exactly one (an exported SavedModel or a train "
            f"run), found {'both' if saved_model else 'neither'}"
        )
    if saved_model:
        return SavedModelPredictor(saved_model)
    return RunPredictor(model_dir, checkpoint)


def windows(num_segments, window):
    """[(start, end)] covering 0..T: consecutive windows, the last one ending at T (overlapping).

    Args:
        num_segments: T, the video's length in segments.
        window: segments per window; 0 or None: one window over the whole video.
    Returns:
        list of (start, end) int pairs, end exclusive; [(0, T)] when T <= window.
    """
    if not window or num_segments <= window:
        return [(0, num_segments)]
    spans = [(start, start + window) for start in range(0, num_segments - window + 1, window)]
    if spans[-1][1] < num_segments:
        spans.append((num_segments - window, num_segments))
    return spans


def predict_segments(predictor, audio, visual, window=0):
    """Per-segment probabilities and labels for one video's raw features, window by window.

    Where the last window overlaps the one before, its outputs are kept.

    Args:
        predictor: a load_predictor predictor.
        audio: float32 [T, A] raw audio features (A = predictor.audio_dim).
        visual: float32 [T, *visual_shape] raw visual features ([T, V] for vector layouts,
            [T, H, W, C] for maps).
        window: segments per window; 0: the predictor's window (its training length, or None:
            the whole video at once).
    Returns:
        (float32 [T, K] per-segment class probabilities (K = 29), int [T] labels: the model's
        own decoding where it has one, else the arg-max).
    Raises:
        errors.UserError: when a fixed-length SavedModel gets a video shorter than its length.
    """
    window = window or predictor.window
    num_segments = len(audio)
    if getattr(predictor, "fixed_length", False) and num_segments < predictor.window:
        raise input_error(
            "video",
            f"at least {predictor.window} seconds for this SavedModel (exported with a "
            "fixed length)",
            f"{num_segments} seconds",
        )
    probabilities = np.zeros((num_segments, constants.NUM_CLASSES), np.float32)
    labels = np.zeros(num_segments, np.int64)
    for start, end in windows(num_segments, window):
        probabilities[start:end], labels[start:end] = predictor.segments(
            audio[start:end], visual[start:end]
        )
    return probabilities, labels


def predict_probabilities(predictor, audio, visual, window=0):
    """[T, 29] probabilities for one video's raw features, window by window (predict_segments).

    Args:
        predictor, audio, visual, window: as predict_segments.
    Returns:
        float32 [T, K] per-segment class probabilities (K = 29).
    """
    return predict_segments(predictor, audio, visual, window)[0]


# ---------------------------------------------------------------------------------------------
# One video: predict, print, JSON, PNG.


def _check_dims(predictor, features, settings):
    found = {
        "audio_dim": int(features.audio.shape[-1]),
        "visual_shape": list(features.visual.shape[1:]),
    }
    expected = {
        "audio_dim": int(predictor.audio_dim),
        "visual_shape": [int(d) for d in predictor.visual_shape],
    }
    if found != expected:
        raise input_error(
            f"features of {features.info.path} ({settings.visual_backbone} at"
            f" {settings.image_size} px)",
            f"the dims the model was trained on {expected}",
            f"{found}: use the `visual_backbone` / `image_size` / `visual_layout` of its "
            "training data",
        )


def describe(result, class_names):
    """The printed report: a line per second, then the event intervals.

    Args:
        result: the dict predict_video returns (video, seconds, segments, intervals, and
            ground_truth when labels were given).
        class_names: the K class names, indexed by label.
    Returns:
        str, several lines without a final newline.
    """
    lines = [f"{result['video']}: {result['seconds']} s"]
    truth = result.get("ground_truth")
    width = max(len(name) for name in class_names)
    header = f"  {'second':>9}  {'prediction':<{width}}  {'p':>5}"
    lines.append(header + (f"  {'ground truth':<{width}}" if truth else ""))
    for segment in result["segments"]:
        line = (
            f"  {segment['start']:>4}-{segment['end']:<4}  {segment['class_name']:<{width}}  "
            f"{segment['probability']:5.2f}"
        )
        if truth:
            line += f"  {class_names[truth['labels'][segment['start']]]:<{width}}"
        lines.append(line)
    if result["intervals"]:
        lines.append(
            "  events: "
            + "; ".join(f"{i['class_name']} {i['start']}-{i['end']} s" for i in result["intervals"])
        )
    else:
        lines.append("  events: none (background throughout)")
    if truth:
        lines.append(
            "  ground truth events: "
            + (
                "; ".join(
                    f"{i['class_name']} {i['start']}-{i['end']} s" for i in truth["intervals"]
                )
                or "none"
            )
            + f"; frame-wise accuracy {truth['accuracy']:.3f}"
        )
    return "\n".join(lines)


def predict_video(path, extractor, predictor, output_dir, labels=None, window=0, verbose=True):
    """Predict one video: features, probabilities, then <video_id>.json, .png and .html.

    Args:
        path: a local video file.
        extractor: a features.feature_extractor.FeatureExtractor with the settings of the
            model's data.
        predictor: a load_predictor predictor.
        output_dir: where the JSON and PNG go (local or a storage URL; made if missing).
        labels: {video_id: [LabelRow]} (labels.read_labels) to compare with, or None.
        window: segments per window (predict_probabilities); 0: the predictor's.
        verbose: print the report (describe) and the files written.
    Returns:
        dict, as written to the JSON: video, video_id, seconds (T), duration, model,
        window_seconds, features (the settings' identity), segments (per second: label,
        class_name, probability, background_probability), intervals (event runs, end exclusive),
        probabilities (T lists of K floats), ground_truth (labels [T], intervals, accuracy) when
        `labels` has the video, json and png (None without matplotlib) paths. The page
        (viewer.write_video_page) is written beside them when matplotlib is installed.
    Raises:
        errors.UserError: when the video cannot be used (video.VideoError), or its features'
            dims differ from those the model was trained on.
    """
    features = extractor.extract(path, thumbnails=True)
    _check_dims(predictor, features, extractor.settings)
    probabilities, predicted = predict_segments(predictor, features.audio, features.visual, window)
    class_names = predictor.class_names
    key = features.video_id
    result = {
        "video": path,
        "video_id": key,
        "seconds": int(features.info.num_segments),
        "duration": round(features.info.duration, 3),
        "model": predictor.description,
        "window_seconds": window or predictor.window,
        "features": extractor.settings.identity(),
        "segments": [
            {
                "start": t,
                "end": t + 1,
                "label": int(label),
                "class_name": class_names[label],
                "probability": round(float(probabilities[t, label]), 4),
                "background_probability": round(float(probabilities[t, constants.BACKGROUND]), 4),
            }
            for t, label in enumerate(predicted)
        ],
        "intervals": _named_intervals(predicted, class_names),
        "probabilities": np.round(probabilities, 5).tolist(),
    }
    truth = None
    if labels is not None and key in labels:
        truth = label_files.ground_truth(labels[key], len(predicted))
        result["ground_truth"] = {
            "labels": truth.tolist(),
            "intervals": _named_intervals(truth, class_names),
            "accuracy": metrics.frame_accuracy(truth, predicted),
        }
    fileio.make_directories(output_dir)
    json_path = os.path.join(output_dir, f"{key}.json")
    png_path = os.path.join(output_dir, f"{key}.png")
    result["json"] = json_path
    result["png"] = timeline.save_timeline(
        png_path,
        predicted,
        class_names,
        truth=truth,
        probabilities=probabilities[np.arange(len(predicted)), predicted],
        thumbnails=features.thumbnails,
        title=f"{key} ({features.info.num_segments} s)",
    )
    fileio.write_json(json_path, result)
    page = viewer.write_video_page(result, class_names, output_dir) if result["png"] else None
    if verbose:
        _print_report(result, class_names, page)
    return result


def _named_intervals(labels, class_names):
    """Event runs of int [T] labels as the JSON holds them: label, class_name, start, end."""
    return [
        {"label": c, "class_name": class_names[c], "start": s, "end": e}
        for c, s, e in metrics.intervals(labels)
    ]


def _print_report(result, class_names, page):
    """Print describe()'s report and the files written (page: None without matplotlib)."""
    print(describe(result, class_names))
    print(
        f"  wrote {result['json']}"
        + (f", {result['png']} and {page}" if page else " (no PNG or page: matplotlib absent)")
    )
