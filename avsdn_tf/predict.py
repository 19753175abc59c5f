"""Event localisation on your own videos: python -m avsdn_tf.predict.

    python -m avsdn_tf.predict VIDEO.mp4 [VIDEO ...] --saved_model SERVING/avsdn/N \\
        --vggish_checkpoint vggish_model.ckpt --visual_backbone vgg19 --visual_weights PATH \\
        [--labels CSV] [--output_dir DIR]
    python -m avsdn_tf.predict VIDEO.mp4 --model_dir RUN ...            (a run of `train` instead)

For each video: features as `extract` makes them (same feature flags: use the settings the model
was trained on), a label per second, printed with the event intervals (runs of one event class),
written to DIR/<video_id>.json, and drawn in DIR/<video_id>.png with the ground truth beside the
prediction when --labels (extract's CSV or an AVE annotation file) has the video. The page
DIR/<video_id>.html plays the video beside its timeline, and DIR/index.html lists every
prediction in DIR (inference/viewer.py; like the PNG, they need matplotlib).

--saved_model loads an exported SavedModel (tf.saved_model.load) and calls its serving_default
signature with the raw features (the export normalises inside). --model_dir loads the run's
best checkpoint (it normalises its inputs itself: the run directory is all it needs) and
rebuilds the network without a fixed length, so a video of any number of seconds goes through.

A model trained on visual vectors (the AVE release's visual_feature_vec.h5, or data extracted
with --visual_layout vector) used with a backbone that gives maps gets the maps' spatial mean,
the vectors it was trained on, unless --visual_layout is given.

Models trained on 10-s clips (AVE) see the video in windows of their training length
(--window_seconds; the last window ends with the video and overlaps the one before), so every
second is judged in the context the model was trained with; 0 means the model's training length
when it had a fixed one, else the whole video at once.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import os

from absl import flags

from avsdn_tf import cli, feature_flags, fileio
from avsdn_tf.errors import UserError
from avsdn_tf.features import assembly, feature_extractor, labels, video
from avsdn_tf.inference import predictors, viewer


def define_flags(flag_values=flags.FLAGS):
    """Define predict's flags (--saved_model or --model_dir, --labels, --output_dir, the feature
    flags); --model is the old spelling of --saved_model (cli.rename_flags).

    Args:
        flag_values: the absl FlagValues to define them in.
    """
    cli.define(
        flag_values=flag_values,
        saved_model="An exported SavedModel version directory (SERVING/avsdn/N).",
        model_dir="A run directory written by train (instead of --saved_model).",
        checkpoint="--model_dir: the best-on-val or the last checkpoint.",
        labels="Optional ground truth: extract's labels CSV or an AVE annotation file.",
        output_dir=(
            "predictions",
            "Where <video_id>.json, .png and .html (its page) go, and index.html.",
        ),
    )
    flags.DEFINE_integer(
        "window_seconds",
        0,
        "Seconds the model sees at once; 0: its training length when fixed, else the whole video.",
        lower_bound=0,
        flag_values=flag_values,
    )
    feature_flags.define_feature_flags(flag_values)
    cli.define(*cli.THREAD_FLAGS, flag_values=flag_values)
    cli.rename_flags(model="saved_model")


def main(argv, flag_values=None):
    """Run `python -m avsdn_tf.predict` with the parsed flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
        flag_values: the parsed FlagValues (default: absl's global flags).
    Returns:
        0 on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    flag_values = flag_values or flags.FLAGS
    cli.configure_threads(flag_values)
    paths = argv[1:]
    if not paths:
        raise UserError("predict: expected one or more video files as arguments, found none")
    if len(paths) == 1:
        video.probe(paths[0])  # a video that cannot be used fails before any network is loaded
    predictor = predictors.load_predictor(
        flag_values.saved_model, flag_values.model_dir, flag_values.checkpoint
    )
    video_labels = labels.read_labels(flag_values.labels)
    settings = feature_flags.settings_from_flags(flag_values)
    adapted = settings.for_visual_shape(predictor.visual_shape)
    if adapted != settings:
        print(
            f"predict: the model takes visual vectors {list(adapted.visual_shape)}: the "
            f"{settings.visual_backbone} maps {settings.visual_shape} are averaged over space "
            "(--visual_layout vector)"
        )
    extractor = feature_extractor.FeatureExtractor(adapted)
    failed, lengths = 0, {}
    for path in paths:
        try:
            result = predictors.predict_video(
                path,
                extractor,
                predictor,
                flag_values.output_dir,
                video_labels,
                flag_values.window_seconds,
            )
            lengths[result["video_id"]] = result["seconds"]
        except video.VideoError as error:
            if len(paths) == 1:
                raise
            failed += 1
            print(f"skipped: {error}")
    if failed == len(paths):
        raise UserError(f"predict: none of the {len(paths)} videos could be used")
    if video_labels:
        _report_clipped_events(flag_values.output_dir, video_labels, paths, lengths)
    if viewer.pages_available():
        print(f"pages: {viewer.write_index(flag_values.output_dir)}")
    return 0


def _report_clipped_events(output_dir, video_labels, paths, lengths):
    """Say which annotated events end after their video (their truth is clipped to it): one
    line, and each listed in OUTPUT_DIR/label_warnings.json. Rows naming other videos are not
    reported here: a labels file usually covers many more videos than one predicts.

    Args:
        output_dir: predict's output directory. video_labels: {video_id: [LabelRow]}.
        paths: the videos given. lengths: {video_id: T} of the videos predicted.
    """
    clipped = labels.label_warnings(video_labels, paths, lengths)["events_clipped"]
    if not clipped:
        return
    sources = sorted({row.source for rows in video_labels.values() for row in rows if row.source})
    path = os.path.join(output_dir, assembly.LABEL_WARNINGS_FILE)
    fileio.write_json(path, {"labels": sources, "events_clipped": clipped})
    print(
        f"predict: labels: {len(clipped)} event{'s' * (len(clipped) != 1)} ending after the video"
        f" clipped to it in the ground truth (see {path})"
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
