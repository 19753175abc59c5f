"""Features from your own videos, in the project's data format: python -m avsdn_tf.extract.

    python -m avsdn_tf.extract --videos DIR_OR_LIST --output_dir OUT \\
        [--vggish_checkpoint vggish_model.ckpt] --visual_backbone vgg19 \\
        [--visual_weights PATH|imagenet] \\
        [--labels CSV] [--preset ave_release]

Without --vggish_checkpoint the official file is downloaded once into Keras' cache (see
features/vggish.py). --preset ave_release sets the feature flags of the AVE release (its frame
sampling, framing and layout: features/feature_settings.PRESETS); flags given on the command
line win.

Every video (a directory's video files, a text file listing one path per line, or one file) is
decoded with PyAV into T = floor(duration) one-second segments; each segment gets a VGGish audio
feature (128-d, see vggish.py) and a visual feature (VGG-19 pool5 7x7x512 or ResNet-152 2048-d,
averaged over --frames_per_second frames, see visual_features.py). OUT then holds

    features/<video_id>.npz        one per video, written as soon as it is done (resumable)
    extract_config.json            the feature settings; rerunning with other settings is refused
    skipped.json                   videos that could not be used, and why; and the video
                                   directory's other files (hidden files, other extensions)
    label_warnings.json            with --labels: rows naming none of the videos (ignored) and
                                   events ending after their video (clipped to it)
    <split>-xxxxx-of-yyyyy.tfrecord, dataset_info.json, normalization.json
                                   the data set, assembled when every video has been tried
    extract_summary.json           counts, seconds of video, speed

Rerunning the same command skips videos whose features/<video_id>.npz exists, so an interrupted
run resumes where it stopped; the data set files are rebuilt from features/ each time, and
dataset_info.json is written last (readers never see a half-assembled set). While it runs,
extract holds OUT/.lock (avsdn_tf/locks.py): a second extract into OUT is refused (--wait waits),
and the temporaries of a killed run (*.tmp-* files, .assemble-*) are removed once it is held.

Labels. Without --labels every record gets label 28 (background) in every segment, category -1
and video label 28: placeholders, fine for predict-style use, wrong for training. With --labels,
a CSV with header `video_id,category,start,end[,split]` (category: one of the 28 AVE category
names or its index, empty for a video with no event; start/end: whole seconds, end exclusive;
split: the split to put the record in, default --split) or an AVE annotation file
(Category&VideoID&Quality&StartTime&EndTime). Each row is one record (AVE has videos with two
events, as two rows); videos with no row are skipped and listed. Rows naming none of the videos
and events ending after their video (clipped to its length) are counted in the summary line and
listed, with the file and line, in label_warnings.json. All videos go to --split
(default "train") unless the CSV says otherwise; normalization.json holds the statistics of
"train" when there is one, else of the first split.

On a cluster. `--runner DirectRunner|DaskRunner|DataflowRunner|FlinkRunner|SparkRunner|
PortableRunner` runs the same extraction as an Apache Beam pipeline (pip install
'avsdn-tf[beam]'): the videos are spread over the runner's workers, which load the networks once
each, and OUT receives the same files, published only when the job has succeeded
(features/beam_extraction.py; on Dask features/dask_extraction.py). Arguments extract does not
know go to Beam's PipelineOptions:

    python -m avsdn_tf.extract --videos ... --output_dir gs://bucket/mine ... \
        --runner DataflowRunner --project P --region R --temp_location gs://bucket/tmp
    python -m avsdn_tf.extract --videos /shared/videos --output_dir /shared/out ... \
        --runner DaskRunner --dask_client_address tcp://HOST:8786 [--dask_npartitions N] \
        [--dask_connection_timeout S]

The terminal shows a progress line (videos done of total) and the summary; the runners' INFO
log lines appear with --verbosity 1.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

from absl import app, flags
from absl import logging as absl_logging

from avsdn_tf import cli, feature_flags, locks, remote
from avsdn_tf.errors import UserError
from avsdn_tf.features import assembly, beam_extraction, extraction, labels


def define_flags(flag_values=flags.FLAGS):
    """Define extract's flags: --videos, --output_dir, --labels, --split, features, --runner.

    Args:
        flag_values: the absl FlagValues to define them in.
    """
    flags.DEFINE_string(
        "videos",
        None,
        "A directory of videos, a text file listing video paths (one per line), or one video file.",
        flag_values=flag_values,
    )
    cli.define(
        flag_values=flag_values,
        output_dir="Where the features, records and dataset_info.json go.",
        labels=(
            "Optional labels: CSV video_id,category,start,end[,split] or an AVE annotation file. "
            "Without it, segment labels are background placeholders."
        ),
        split=("train", "Split the records go to (unless the labels CSV names one)."),
        videos_per_shard="Target records per TFRecord shard (at most 16 shards).",
        wait=(
            "If another process extracts into --output_dir, wait for it to end instead of "
            "refusing (the lock is --output_dir/.lock; none on gs:// or s3://)."
        ),
    )
    feature_flags.define_feature_flags(flag_values)
    feature_flags.define_runner_flag(flag_values)


def parse_flags(argv, flag_values=None):
    """absl's parsing of extract's flags, leaving the arguments it does not know in the returned
    argv (after argv[0]): Beam pipeline options for --runner, refused without it (main). A flag
    absl cannot parse raises flags.Error, one line and exit 2 in cli.run."""
    return (flag_values or flags.FLAGS)(argv, known_only=True)


def main(argv, flag_values=None):
    """Run `python -m avsdn_tf.extract` with the parsed flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
        flag_values: the parsed FlagValues (default: absl's global flags).
    Returns:
        0 on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    flag_values = flag_values or flags.FLAGS
    if len(argv) > 1 and not flag_values.runner:
        if argv[1].startswith("-"):  # a mistyped flag: the closest one extract has
            name = argv[1].lstrip("-").split("=")[0]
            raise UserError(
                cli.flag_error_message(flags.UnrecognizedFlagError(name))
                + "; Beam pipeline options are taken with --runner only"
            )
        raise app.UsageError(
            f"unexpected arguments: {' '.join(argv[1:])} (Beam pipeline options "
            "are taken with --runner only)"
        )
    paths, other_files = labels.scan_videos(flag_values.videos)
    if not flag_values.runner and (far := [path for path in paths if remote.is_remote(path)]):
        raise UserError(
            "--videos: expected local video files (remote ones are read with "
            f"--runner, e.g. --runner DirectRunner), found {far[0]}"
        )
    video_labels = labels.read_labels(flag_values.labels)
    settings = feature_flags.settings_from_flags(flag_values)
    with locks.directory_lock(
        flag_values.output_dir,
        "`output_dir`",
        wait=flag_values.wait,
        stale=assembly.STALE_TEMPORARIES,
    ):
        if flag_values.runner:
            summary = beam_extraction.extract_videos(
                paths,
                flag_values.output_dir,
                settings,
                video_labels,
                flag_values.split,
                flag_values.videos_per_shard,
                runner=flag_values.runner,
                pipeline_args=argv[1:],
                verbose_logs=absl_logging.get_verbosity() >= absl_logging.DEBUG,
                other_files=other_files,
            )
        else:
            summary = extraction.extract_videos(
                paths,
                flag_values.output_dir,
                settings,
                video_labels,
                flag_values.split,
                flag_values.videos_per_shard,
                other_files=other_files,
            )
    speed = summary["video_seconds_per_second"]
    print(_summary_line(summary))
    print(
        f"  records {summary['records']}, audio {summary['audio_dim']}-d, visual"
        f" {summary['visual_shape']}, T = {summary['num_segments'] or 'per video'}"
        + (f"; {speed} s of video per s" if speed else "")
    )
    if not summary["labelled"]:
        print(
            "  no --labels: segment labels are background placeholders (fine for predict, not for"
            " training)"
        )
    return 0


def _summary_line(summary):
    """extract's first summary line: videos extracted, done, skipped; the directory's other
    files skipped; with labels, rows matching no video and events clipped; where each is listed."""
    skipped = summary["videos_skipped"] + summary.get("other_files_skipped", 0)
    line = (
        f"extract: {summary['output_dir']}: {summary['videos_extracted_now']} videos extracted now,"
        f" {summary['videos_already_done']} already done, {summary['videos_skipped']} skipped"
    )
    if summary.get("other_files_skipped"):
        line += f", {summary['other_files_skipped']} other files in the folder skipped"
    line += f" (see {assembly.SKIPPED_FILE})" if skipped else ""
    if summary["labelled"]:
        unmatched, clipped = summary["label_rows_matching_no_video"], summary["events_clipped"]
        line += f"; labels: {unmatched} rows matching no video, {clipped} events clipped"
        line += f" (see {assembly.LABEL_WARNINGS_FILE})" if unmatched or clipped else ""
    return line


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("videos", "output_dir"), flags_parser=parse_flags)
