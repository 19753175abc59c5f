"""Extraction in one process: every video of a list through the networks, then the data set.

extract_videos (the extract command without --runner): each video not done yet goes through a
feature_extractor.FeatureExtractor (loaded on first need) into features/<video_id>.npz, one
status line per video (_Progress); then assembly.py writes skipped.json, the shards, the
statistics and dataset_info.json (last) and extract_summary.json. The settings:
feature_settings.py; on a Beam or Dask runner: beam_extraction.py, dask_extraction.py. The
command and its output layout: avsdn_tf/extract.py.
"""

import sys
import time

import tensorflow as tf

from avsdn_tf.features import assembly, feature_extractor, video


class _Progress:
    """One status line per video: count, done / skipped, speed and time left (no bar widget, so
    it reads the same in a terminal and in a log file)."""

    def __init__(self, total, verbose):
        self.total, self.verbose, self.count, self.started = total, verbose, 0, time.time()
        self.terminal = sys.stdout.isatty()

    def update(self, done, skipped, video_seconds):
        """Count one more video and, when verbose, print the status line.

        Args:
            done: videos with features so far (extracted now or already on disk).
            skipped: videos skipped so far.
            video_seconds: seconds of video extracted in this run so far (for the speed), or 0.
        Returns:
            None.
        """
        self.count += 1
        if not self.verbose:
            return
        elapsed = time.time() - self.started
        left = elapsed / self.count * (self.total - self.count)
        speed = (
            f", {video_seconds / elapsed:.2f} s of video/s" if video_seconds and elapsed > 0 else ""
        )
        line = (
            f"[{self.count}/{self.total}] {100 * self.count / self.total:5.1f}%  done {done},"
            f" skipped {skipped}{speed}, {elapsed:.0f} s elapsed, about {left:.0f} s left"
        )
        print(
            ("\r" + line.ljust(100)) if self.terminal else line,
            end="" if self.terminal else "\n",
            flush=True,
        )
        if self.terminal and self.count == self.total:
            print()

    def message(self, text):
        """Print `text` on a line of its own when verbose (below the status line in a terminal).

        Args:
            text: the message, e.g. "skipped: <path>: <reason>".
        Returns:
            None.
        """
        if self.verbose:
            print(("\n" if self.terminal else "") + text, flush=True)


def _extract_one(path, output_dir, settings, extractor):
    """Extract one video into features/<video_id>.npz.

    Args:
        path: the video. output_dir: the data directory. settings: the FeatureSettings.
        extractor: the FeatureExtractor, or None before the first video: the video is probed
            first, so an unusable first video is reported before the networks load.
    Returns:
        (the extractor, the video's seconds extracted).
    Raises:
        video.VideoError: when the video cannot be used.
    """
    if extractor is None:
        video.probe(path)
        extractor = feature_extractor.FeatureExtractor(settings)
    features = extractor.extract(path)
    assembly.save_features(assembly.features_path(output_dir, video.video_id(path)), features)
    return extractor, features.info.num_segments


def extract_videos(
    paths,
    output_dir,
    settings,
    labels=None,
    split="train",
    videos_per_shard=256,
    verbose=True,
    other_files=None,
):
    """Extract every video not done yet, then assemble the data set. Returns the summary dict.

    Resumable: a video whose features/<video_id>.npz exists is not extracted again. A video that
    cannot be used, or has no row in `labels`, is skipped and listed in skipped.json (with the
    video directory's other files, `other_files`); label rows naming no video and events ending
    after their video are listed in label_warnings.json (assembly.write_input_report).

    Args:
        paths: video file paths; their file names (the video ids) must be distinct.
        output_dir: the data directory to write (local or a storage URL).
        settings: feature_settings.FeatureSettings; must equal those of an earlier run into
            output_dir.
        labels: {video_id: [LabelRow]} (labels.read_labels): one record per row; or None: one
            unlabelled record per video (category -1, every segment background 28).
        split: the split of records whose label row names none (letters, digits and _).
        videos_per_shard: records per TFRecord shard wanted (shards.shard_count).
        verbose: print a status line per video and each skipped video.
        other_files: {path: reason} of the video directory's files that are not videos
            (labels.scan_videos), for skipped.json; or None.
    Returns:
        dict, also written as extract_summary.json: videos given, extracted now, already done and
        skipped, other files skipped, label rows matching no video and events clipped (with
        labels), records per split, timings, audio_dim, visual_shape, num_segments (None when
        the videos differ in length), labelled, and the settings' identity.
    Raises:
        errors.UserError: for a bad split name, duplicate video ids, output_dir holding other
            settings or another command's data set, networks that cannot be loaded, or no usable
            video at all.
    """
    assembly.start_output(paths, output_dir, settings, split)
    started = time.time()
    extractor = None  # loaded on first need: a rerun with everything done loads no network
    skipped, extracted, resumed, seconds_extracted = {}, 0, 0, 0.0
    progress = _Progress(len(paths), verbose)
    for path in paths:
        key = video.video_id(path)
        if labels is not None and key not in labels:
            skipped[path] = assembly.no_labels_reason(key)
            progress.message(f"skipped: {path}: {skipped[path]}")
        elif tf.io.gfile.exists(assembly.features_path(output_dir, key)):
            resumed += 1
        else:
            try:
                extractor, seconds = _extract_one(path, output_dir, settings, extractor)
                extracted += 1
                seconds_extracted += seconds
            except video.VideoError as error:
                skipped[path] = str(error)
                progress.message(f"skipped: {error}")
        progress.update(extracted + resumed, len(skipped), seconds_extracted)
    extract_seconds = time.time() - started
    done = assembly.write_skipped(output_dir, paths, skipped, other_files)
    info, lengths = assembly.assemble(output_dir, done, settings, labels, split, videos_per_shard)
    report = assembly.write_input_report(output_dir, labels, paths, lengths, other_files)
    return assembly.write_summary(
        output_dir,
        info,
        settings,
        labels,
        len(paths),
        extracted,
        resumed,
        len(skipped),
        seconds_extracted,
        extract_seconds,
        **report,
    )
