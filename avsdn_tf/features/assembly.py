"""Extracted features -> a data directory: the layout of extract's output_dir and its assembly.

features/<video_id>.npz (one per video, written as soon as it is done), extract_config.json
(the settings' identity; another run's settings are refused), skipped.json, the TFRecord shards,
normalization.json, dataset_info.json (published last: readers never see a half-assembled set)
and extract_summary.json. Used by the single process (extraction.py) and the Beam and Dask
runners (beam_extraction.py, dask_extraction.py) alike.
"""

import io
import os
import re
import uuid

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, fileio, records
from avsdn_tf.data import normalization, shards
from avsdn_tf.errors import argument_error, input_error
from avsdn_tf.features import labels as label_files
from avsdn_tf.features import video

FEATURES_DIR = "features"
CONFIG_FILE = "extract_config.json"
SKIPPED_FILE = "skipped.json"
LABEL_WARNINGS_FILE = "label_warnings.json"
SUMMARY_FILE = "extract_summary.json"
ASSEMBLY_PREFIX = ".assemble-"  # the staging directory of the data set, inside output_dir
# What a killed extract leaves in output_dir under temporary names (fileio.write_json's
# *.json.tmp-*, _save_features' features/*.npz.tmp-*.npz, the assembly directory): swept by
# the command once it holds the lock of output_dir.
STALE_TEMPORARIES = ("*.tmp-*", f"{FEATURES_DIR}/*.tmp-*", f"{ASSEMBLY_PREFIX}*")


def features_path(output_dir, video_id):
    """Where a video's features go: output_dir/features/<video_id>.npz.

    Args:
        output_dir: the data directory. video_id: the video's id (video.video_id).
    Returns:
        str, the path.
    """
    return os.path.join(output_dir, FEATURES_DIR, f"{video_id}.npz")


def save_features(path, features):
    """Write one video's features as .npz (audio, visual, seconds, source), all or nothing.

    Args:
        path: features_path of the video. features: feature_extractor.VideoFeatures.
    Raises:
        errors.UserError: naming `path` for a full disk, a read-only output, ...
    """
    buffer = io.BytesIO()  # zipfile seeks while writing; GFiles (s3://, gs://) only append
    np.savez(
        buffer,
        audio=features.audio,
        visual=features.visual,
        seconds=np.float64(features.info.duration),
        source=np.str_(features.info.path),
    )
    # All or nothing; a full disk or a read-only output is one message naming the file.
    with fileio.atomic_file(path, ".npz") as temporary, tf.io.gfile.GFile(temporary, "wb") as out:
        out.write(buffer.getvalue())


def check_config(output_dir, settings):
    """Write extract_config.json in a new output_dir, or check the one there against `settings`.

    Args:
        output_dir: the data directory. settings: feature_settings.FeatureSettings.
    Raises:
        errors.UserError: naming extract_config.json when it holds other settings (the fields
            listed), or output_dir when it holds a data set another command wrote.
    """
    path = os.path.join(output_dir, CONFIG_FILE)
    identity = settings.identity()
    if tf.io.gfile.exists(path):
        saved = fileio.read_json(path)
        if saved != identity:
            changed = sorted(key for key in identity if saved.get(key) != identity.get(key))
            raise input_error(
                path,
                f"the feature settings of this run to add to {output_dir}",
                f"other settings for {changed}: {[saved.get(k) for k in changed]} (now "
                f"{[identity[k] for k in changed]}); use a new `output_dir`",
            )
    elif tf.io.gfile.exists(os.path.join(output_dir, constants.DATASET_INFO_FILE)):
        raise input_error(
            output_dir,
            "a new directory or one written by extract (with extract_config.json)",
            "a data set written by another command; use a new `output_dir`",
        )
    else:
        fileio.write_json(path, identity)


def no_labels_reason(video_id):
    """Why a labelled run skips a video (skipped.json)."""
    return f"no row for video id {video_id!r} in --labels"


def check_unique_ids(paths):
    """Refuse two videos of one id (file name), naming both (a UserError about --videos)."""
    seen = {}
    for path in paths:
        key = video.video_id(path)
        if key in seen:
            raise argument_error(
                "videos",
                "video files with distinct names (the name is the video id)",
                f"{seen[key]} and {path}",
            )
        seen[key] = path


def start_output(paths, output_dir, settings, split):
    """Check the arguments of a run and make output_dir (refusing one of other settings).

    Args:
        paths: the videos. output_dir: the data directory. settings: the FeatureSettings.
        split: the split of records whose label row names none.
    Raises:
        errors.UserError: for a bad split name, bad settings, duplicate video ids, or an
            output_dir holding other settings or another command's data set.
    """
    if not re.match(constants.SPLIT_NAME_PATTERN, split or ""):
        raise argument_error("split", "a split name of letters, digits and _", repr(split))
    settings.check()
    check_unique_ids(paths)
    tf.io.gfile.makedirs(output_dir)
    check_config(output_dir, settings)
    tf.io.gfile.makedirs(os.path.join(output_dir, FEATURES_DIR))


def write_skipped(output_dir, paths, skipped, other_files=None):
    """skipped.json; the usable paths, in order.

    skipped.json: {"videos": count, "skipped": {path: reason}} of the videos, and
    {"other_files": {path: reason}} of the files of the video directory that were not read
    (hidden files, other extensions: labels.scan_videos).

    Args:
        output_dir: the data directory. paths: the videos given. skipped: {path: reason} of the
            videos not used. other_files: {path: reason} of the directory's other files, or None.
    Returns:
        the paths not in skipped, in order.
    Raises:
        errors.UserError: naming --videos when no video is usable.
    """
    fileio.write_json(
        os.path.join(output_dir, SKIPPED_FILE),
        {"videos": len(skipped), "skipped": skipped, "other_files": other_files or {}},
    )
    done = [path for path in paths if path not in skipped]
    if not done:
        raise argument_error(
            "videos",
            "at least one usable video",
            f"none of {len(paths)} (reasons in {os.path.join(output_dir, SKIPPED_FILE)})",
        )
    return done


def write_input_report(output_dir, labels, paths, lengths, other_files):
    """label_warnings.json (with labels: labels.label_warnings, and the labels file) and the
    counts extract_summary.json and the summary line give of what was set aside.

    Args:
        output_dir: the data directory. labels: {video_id: [LabelRow]}, or None (a
            label_warnings.json of an earlier run is then removed). paths: every video given.
        lengths: {video_id: T} of the videos whose records were written.
        other_files: {path: reason} of the video directory's files not read, or None.
    Returns:
        dict for write_summary: other_files_skipped, and with labels
        label_rows_matching_no_video and events_clipped.
    """
    path = os.path.join(output_dir, LABEL_WARNINGS_FILE)
    counts = {"other_files_skipped": len(other_files or {})}
    if labels is None:
        fileio.remove_tree(path)
        return counts
    warnings = label_files.label_warnings(labels, paths, lengths)
    sources = sorted({row.source for rows in labels.values() for row in rows if row.source})
    fileio.write_json(path, {"labels": sources, **warnings})
    counts["label_rows_matching_no_video"] = len(warnings["rows_matching_no_video"])
    counts["events_clipped"] = len(warnings["events_clipped"])
    return counts


def write_summary(
    output_dir,
    info,
    settings,
    labels,
    videos_given,
    extracted,
    resumed,
    skipped,
    seconds_extracted,
    extract_seconds,
    **more,
):
    """extract_summary.json (counts, seconds of video, speed, dims; `more` adds keys); returned."""
    summary = {
        "output_dir": output_dir,
        "videos_given": videos_given,
        "videos_extracted_now": extracted,
        "videos_already_done": resumed,
        "videos_skipped": skipped,
        "records": {name: value["videos"] for name, value in info.splits.items()},
        "seconds_of_video_extracted_now": seconds_extracted,
        "extract_seconds": round(extract_seconds, 2),
        "video_seconds_per_second": (
            round(seconds_extracted / extract_seconds, 3) if extracted else None
        ),
        "audio_dim": info.audio_dim,
        "visual_shape": info.visual_shape,
        "num_segments": info.num_segments,
        "labelled": labels is not None,
        "settings": settings.identity(),
        **more,
    }
    fileio.write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
    return summary


def load_features(output_dir, video_id):
    """A video's features/<video_id>.npz: audio [T, 128], visual [T, *visual_shape].

    Raises:
        errors.UserError: naming the file when it is not an .npz of plain arrays (e.g. pickled).
    """
    path = features_path(output_dir, video_id)
    stored = fileio.read_arrays(path, "an .npz of extracted features 'audio' and 'visual'")
    missing = [name for name in ("audio", "visual") if name not in stored]
    if not isinstance(stored, dict) or missing:
        found = f"no arrays {missing}" if isinstance(stored, dict) else "an .npy"
        raise input_error(path, "an .npz of extracted features 'audio' and 'visual'", found)
    return stored["audio"], stored["visual"]


def _records_of(path, output_dir, labels, split):
    """(split, num_segments, serialized record) for each record of one extracted video."""
    key = video.video_id(path)
    audio, visual = load_features(output_dir, key)
    yield from video_records(key, audio, visual, labels, split)


def video_records(key, audio, visual, labels, split):
    """(split, num_segments, serialized record) for each record of one video (a row of labels
    each; without labels one record of background placeholders).

    Args:
        key: the video id. audio: [T, 128]. visual: [T, *visual_shape].
        labels: video id -> label rows, or None. split: the split of rows that name none.
    """
    num_segments = len(audio)
    rows = labels[key] if labels is not None else [None]
    for row in rows:
        if row is None:  # unlabelled: background placeholders
            name, category, start, end = split, constants.NO_CATEGORY, 0, 0
            video_label = constants.BACKGROUND
            segment_labels = np.full(num_segments, constants.BACKGROUND, np.int64)
        else:
            name, category = row.split or split, row.category
            start, end = min(row.start, num_segments), min(row.end, num_segments)
            video_label, segment_labels = row.video_label, row.segment_labels(num_segments)
        serialized = records.encode_video(
            key, category, start, end, video_label, audio, visual, segment_labels
        )
        yield name, num_segments, serialized


def assemble(output_dir, paths, settings, labels=None, split="train", videos_per_shard=256):
    """Write the records of every extracted video, dataset_info.json and normalization.json.

    Built in a staging directory inside output_dir and moved in file by file, with
    dataset_info.json removed first and written last.

    Args:
        output_dir: the data directory holding features/<video_id>.npz of every path.
        paths: the videos to write (extracted already), in record order.
        settings: the FeatureSettings they were extracted with (gives audio_dim, visual_shape).
        labels: {video_id: [LabelRow]}: one record per row, in the row's split or `split`; or
            None: one unlabelled record per video in `split` (every segment background 28).
        split: the split of records whose label row names none.
        videos_per_shard: records per TFRecord shard wanted (shards.shard_count: at most 16
            shards, at least 2 once a split has 2 records).
    Returns:
        (info, lengths): the DatasetInfo written (num_segments None when the videos differ in
        length) and {video_id: T} of the videos written.
    """
    counts = {}
    for path in paths:
        rows = labels[video.video_id(path)] if labels is not None else [None]
        for row in rows:
            name = (row.split if row is not None else None) or split
            counts[name] = counts.get(name, 0) + 1
    staging = os.path.join(output_dir, f"{ASSEMBLY_PREFIX}{uuid.uuid4().hex[:8]}")
    # A full disk or a read-only output: one message naming output_dir (writing); the staging
    # directory is removed whatever happens.
    with fileio.writing(output_dir):
        tf.io.gfile.makedirs(staging)
        try:
            writers = {
                name: shards.ShardWriter(staging, name, shards.shard_count(count, videos_per_shard))
                for name, count in counts.items()
            }
            lengths = {}
            try:
                for path in paths:
                    for name, num_segments, serialized in _records_of(
                        path, output_dir, labels, split
                    ):
                        writers[name].write(serialized)
                        lengths[video.video_id(path)] = num_segments
            finally:
                for writer in writers.values():
                    writer.close()
            splits = {
                name: {"videos": writer.written, "shards": writer.names}
                for name, writer in writers.items()
            }
            info = finish_dataset(
                staging, output_dir, settings, splits, set(lengths.values()), len(paths), labels
            )
            return info, lengths
        finally:
            fileio.remove_tree(staging)


def finish_dataset(
    staging, output_dir, settings, splits, lengths, num_videos, labels, moments=None
):
    """dataset_info.json and normalization.json beside the shards in `staging`, then all of
    them published into output_dir (dataset_info.json last). Returns the DatasetInfo.

    Args:
        staging: a directory inside output_dir holding the shards (removed by the caller).
        output_dir: the data directory. settings: the FeatureSettings of the features.
        splits: name -> {"videos", "shards"} of the shards in staging.
        lengths: the set of the records' numbers of segments.
        num_videos: the videos the records came from. labels: the labels given, or None.
        moments: split name -> normalization.Moments of its records (Beam's workers summed
            them), or None to compute the statistics from the shards.
    """
    sources = [{"file": f"{num_videos} videos, features/*.npz", "md5": None}]
    if labels is not None:
        sources.append({"file": "labels (--labels)", "md5": None})
    info = dataset_info.DatasetInfo(
        audio_dim=settings.audio_dim,
        visual_shape=list(settings.visual_shape),
        num_segments=next(iter(lengths)) if len(lengths) == 1 else None,
        class_names=constants.class_names(),
        splits=splits,
        sources=sources,
        generator=_generator(settings, labels),
    )
    dataset_info.write(staging, info)
    statistics_split = "train" if "train" in splits else sorted(splits)[0]
    if moments is None:
        normalization.write_statistics(staging, statistics_split)
    else:
        fileio.write_json(
            os.path.join(staging, constants.NORMALIZATION_FILE),
            moments[statistics_split].statistics(statistics_split),
        )
    _publish(staging, output_dir, info)
    return info


def _generator(settings, labels):
    """dataset_info.json's "generator": the settings that made the features, in one line."""
    return (
        f"extract {settings.visual_backbone} fps={settings.frames_per_second} "
        + (
            f"sampling={settings.frame_sampling} "
            if settings.frame_sampling != video.SAMPLING_CENTRE
            else ""
        )
        + (f"layout={settings.visual_layout} " if settings.visual_layout else "")
        + f"size={settings.image_size} vggish={settings.vggish_output}/{settings.audio_framing}"
        + ("" if labels is not None else "; no labels: segment labels are placeholders (28)")
    )


def _publish(staging, output_dir, info):
    """Move the shards, normalization.json and dataset_info.json from `staging` into output_dir:
    the old dataset_info.json goes first, then the old shards the new set does not have, and
    the new dataset_info.json last (fileio.publish_files).

    Args:
        staging: the directory holding the new files. output_dir: the data directory.
        info: the DatasetInfo written in `staging`.
    """
    old_shards = []
    if tf.io.gfile.exists(os.path.join(output_dir, constants.DATASET_INFO_FILE)):
        old = dataset_info.read(output_dir)
        old_shards = [name for value in old.splits.values() for name in value["shards"]]
    new_shards = [name for value in info.splits.values() for name in value["shards"]]
    fileio.publish_files(
        staging,
        output_dir,
        [*new_shards, constants.NORMALIZATION_FILE, constants.DATASET_INFO_FILE],
        marker=constants.DATASET_INFO_FILE,
        remove=[name for name in old_shards if name not in new_shards],
    )
