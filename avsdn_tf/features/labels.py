"""Own-video lists and labels: which videos to read, and their events (a CSV or an AVE
annotation file), as extract and predict take them."""

import csv
import dataclasses
import io
import os
import re

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, remote
from avsdn_tf.data import annotations
from avsdn_tf.errors import UserError, input_error
from avsdn_tf.features import video


def not_a_video_reason(name):
    """Why a file in a directory of videos is not read (skipped.json's "other_files").

    Args:
        name: the file's name.
    Returns:
        str, the reason: a hidden file, or an extension that is not a video's.
    """
    if name.startswith("."):
        return "a hidden file (its name starts with '.'), not read as a video"
    extension = os.path.splitext(name)[1] or "none"
    return (
        f"not a video file: extension {extension}, expected one of "
        f"{', '.join(video.VIDEO_EXTENSIONS)}"
    )


def scan_videos(spec):
    """Video paths from a directory (its video files, sorted), a list file, or a single video,
    and the other files of a directory with the reason each is not read.

    Args:
        spec: a directory, a text file of paths (one a line, # comments, relative paths from the
            file's directory) or one video file (by extension: video.VIDEO_EXTENSIONS).
    Returns:
        (paths, other_files): the video paths (list of str); {path: reason} of a directory's
        files that are not read (hidden files, other extensions, sub-directories), {} otherwise.
    Raises:
        errors.UserError: when spec is empty or not found, a directory holds no video files, or a
            list file holds no paths.
    """
    if not spec:
        raise UserError(
            "videos: expected a directory of videos, a list file or a video, found none",
            argument="videos",
        )
    # tf.io.gfile: local paths, and gs:// or s3:// ones (which extract reads with --runner).
    if tf.io.gfile.isdir(spec):
        paths, other_files = [], {}
        for name in sorted(tf.io.gfile.listdir(spec)):
            path = os.path.join(spec, name.rstrip("/"))
            if name.lower().endswith(video.VIDEO_EXTENSIONS) and not name.startswith("."):
                paths.append(path)
            elif name.endswith("/") or tf.io.gfile.isdir(path):  # asked of the others only
                other_files[path] = "a directory, not read (videos are taken from the top level)"
            else:
                other_files[path] = not_a_video_reason(name)
        if not paths:
            raise input_error(
                spec,
                f"a directory holding video files ({', '.join(video.VIDEO_EXTENSIONS)})",
                "none",
            )
        return paths, other_files
    if not tf.io.gfile.exists(spec):
        raise input_error(
            f"`videos` {spec}", "a video file or a directory of videos", "nothing at that path"
        )
    if spec.lower().endswith(video.VIDEO_EXTENSIONS):
        return [spec], {}
    base = os.path.dirname(spec if remote.is_remote(spec) else os.path.abspath(spec))
    with tf.io.gfile.GFile(spec, "r") as handle:
        lines = [line.strip() for line in handle.read().splitlines()]
    paths = [
        line if os.path.isabs(line) or remote.is_remote(line) else os.path.join(base, line)
        for line in lines
        if line and not line.startswith("#")
    ]
    if not paths:
        raise input_error(spec, "a list of video paths, one per line", "no paths")
    return paths, {}


@dataclasses.dataclass(frozen=True)
class LabelRow:
    video_id: str
    category: int  # 0..27, or -1 for a video with no event
    start: int
    end: int  # exclusive
    split: str | None = None
    # where the row is (label_warnings.json names it); not part of the row's value
    source: str | None = dataclasses.field(default=None, compare=False)
    line: int | None = dataclasses.field(default=None, compare=False)

    def segment_labels(self, num_segments):
        """This row's segment labels: the category where start <= t < end, background elsewhere.

        Args:
            num_segments: T, the video's length in segments (start and end are clipped to it).
        Returns:
            int64 [T] segment labels (28 = background; all 28 for a row with no event).
        """
        labels = np.full(num_segments, constants.BACKGROUND, np.int64)
        if self.category >= 0:
            labels[min(self.start, num_segments) : min(self.end, num_segments)] = self.category
        return labels

    @property
    def video_label(self):
        return self.category if self.category >= 0 else constants.BACKGROUND


def _category(value, where):
    value = value.strip()
    if value == "" or value.lower() in ("background", "-1", str(constants.BACKGROUND)):
        return constants.NO_CATEGORY
    names = constants.category_names()
    lowered = [name.lower() for name in names]
    if value.lower() in lowered:
        return lowered.index(value.lower())
    if value.isdigit() and int(value) < constants.NUM_EVENT_CLASSES:
        return int(value)
    raise input_error(
        where,
        f"a category name of the {len(names)} AVE categories (or 0..27, or empty)",
        repr(value),
    )


def parse_labels(text, source):
    """{video_id: [LabelRow]} from a labels CSV or an AVE annotation file.

    The first non-blank line tells the format: with '&' an AVE annotation file
    (Category&VideoID&Quality&StartTime&EndTime), else a CSV with the columns video_id, category,
    start, end and optionally split. A category is an AVE category name (any case) or 0..27;
    empty, background, -1 or 28 mean no event. start and end are whole seconds, end exclusive.

    Args:
        text: the file's text.
        source: the file's name, for error messages.
    Returns:
        dict video_id -> list of LabelRow in file order (a video may have several rows).
    Raises:
        errors.UserError: for a missing CSV column, an unknown category, start and end that are
            not whole numbers with 0 <= start <= end, a bad split name, an empty video_id, a
            malformed annotation line, or no rows at all.
    """
    rows = []
    first = next((line for line in text.splitlines() if line.strip()), "")
    if "&" in first:
        for row in annotations.parse_annotations(text, source=source, num_segments=10**9):
            rows.append(
                LabelRow(
                    row.video_id,
                    _category(row.category, f"{source} video {row.video_id}"),
                    row.start,
                    row.end,
                    source=source,
                    line=row.line,
                )
            )
    else:
        reader = csv.DictReader(io.StringIO(text))
        needed = ["video_id", "category", "start", "end"]
        header = [name.strip() for name in reader.fieldnames or []]
        if any(name not in header for name in needed):
            raise input_error(
                source,
                f"a CSV header with columns {needed} (and optionally split)",
                f"columns {header}",
            )
        reader.fieldnames = header
        for line_number, row in enumerate(reader, start=2):
            where = f"{source} line {line_number}"
            category = _category(row["category"] or "", where)
            try:
                start = int((row["start"] or "0").strip())
                end = int((row["end"] or "0").strip())
            except ValueError:
                raise input_error(
                    where, "whole seconds in start and end", f"{row['start']!r} and {row['end']!r}"
                ) from None
            if not 0 <= start <= end:
                raise input_error(where, "0 <= start <= end", f"start {start}, end {end}")
            split = (row.get("split") or "").strip() or None
            if split is not None and not re.match(constants.SPLIT_NAME_PATTERN, split):
                raise input_error(where, "a split name of letters, digits and _", repr(split))
            video_id = (row["video_id"] or "").strip()
            if not video_id:
                raise input_error(where, "a video_id", "an empty field")
            rows.append(
                LabelRow(video_id, category, start, end, split, source=source, line=line_number)
            )
    if not rows:
        raise input_error(source, "at least one labelled video", "no rows")
    by_video = {}
    for row in rows:
        by_video.setdefault(row.video_id, []).append(row)
    return by_video


def read_labels(path):
    """parse_labels of a labels file, or None when there is none.

    Args:
        path: a labels CSV or AVE annotation file (local or a storage URL), or None / "".
    Returns:
        {video_id: [LabelRow]}, or None when path is empty.
    Raises:
        errors.UserError: when the file is not found or parse_labels rejects it.
    """
    if not path:
        return None
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path}: labels file not found")
    with tf.io.gfile.GFile(path, "r") as handle:
        return parse_labels(handle.read(), path)


def ground_truth(rows, num_segments):
    """One segment-label sequence for a video from all its rows (later rows win where they overlap).

    Args:
        rows: the video's LabelRows (parse_labels()[video_id]).
        num_segments: T, the video's length in segments.
    Returns:
        int64 [T] segment labels: a row's category where start <= t < end, 28 (background)
        elsewhere.
    """
    labels = np.full(num_segments, constants.BACKGROUND, np.int64)
    for row in rows:
        if row.category >= 0:
            labels[min(row.start, num_segments) : min(row.end, num_segments)] = row.category
    return labels


def label_warnings(labels, paths, lengths):
    """What a labels file says that the videos cannot hold: rows that name none of the videos,
    and events that end after their video (clipped to it in the records).

    Args:
        labels: {video_id: [LabelRow]} (read_labels).
        paths: every video given (their ids by video.video_id), used or skipped.
        lengths: {video_id: T} of the videos whose records were written.
    Returns:
        dict with "rows_matching_no_video" and "events_clipped": lists, in file order, of
        {"file", "line", "video_id", "what"} (what happened, in words).
    """
    given = {video.video_id(path) for path in paths}
    rows = sorted((row for rows in labels.values() for row in rows), key=lambda row: row.line or 0)
    unmatched, clipped = [], []
    for row in rows:
        where = {"file": row.source, "line": row.line, "video_id": row.video_id}
        if row.video_id not in given:
            what = (
                f"no video named {row.video_id!r} among the {len(given)} videos given; row ignored"
            )
            unmatched.append({**where, "what": what})
            continue
        length = lengths.get(row.video_id)
        if length is None or row.category < 0 or row.end <= length:
            continue
        start, end = min(row.start, length), min(row.end, length)
        kept = f"clipped to {start}-{end} s" if end > start else "no second of it is kept"
        what = (
            f"the event {constants.category_names()[row.category]} {row.start}-{row.end} s ends"
            f" after the video's {length} s; {kept}"
        )
        clipped.append({**where, "what": what})
    return {"rows_matching_no_video": unmatched, "events_clipped": clipped}
