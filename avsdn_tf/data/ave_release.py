"""Reading the official AVE feature release and writing it as a data directory (prepare's work).

reads the release exactly as published (../shared/data/ave/README.md lists files, keys, shapes):

    Annotations.txt                 Category&VideoID&Quality&StartTime&EndTime, one row per sample
    audio_feature.h5                avadataset (N, T, 128) float64 VGGish embeddings
    visual_feature.h5               avadataset (N, T, 7, 7, 512) maps, or (N, T, D) vectors
                                    (--visual_file picks visual_feature_vec.h5 or your own file)
    labels.h5                       avadataset (N, T, 29) one-hot segment labels, background = 28
    {train,val,test}_order.h5       order (n,) int64 row indices into Annotations.txt
    {train,val,test}_order_match.h5 (optional, all three or none) the cross-modality splits,
                                    written as train_match, val_match, test_match
    labels_noisy.h5, audio_feature_noisy.h5, visual_feature_noisy.h5   (optional) the
                                    background-only videos of the weak-supervision setting

and writes OUT/{split}-xxxxx-of-yyyyy.tfrecord (see docs/data_format.md), dataset_info.json,
normalization.json (train statistics), label_disagreements.json and prepare_summary.json.

Row r of every h5 file is row r of Annotations.txt. The h5 files are read in chunks of
contiguous rows and every row goes to the shard writer of its split, so memory stays bounded
by --chunk_videos whatever the size of visual_feature.h5 (about 4 GB). Everything is checked
before the first record is written (except the finiteness of the visual features, checked
chunk by chunk), and output is built in a staging directory that replaces OUT only once
complete: bad input or a crash leaves no partial output, and running again is safe.
"""

import collections
import contextlib
import dataclasses
import os
import sys
import time

import h5py
import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, fileio, progress, records, remote
from avsdn_tf.data import annotations, normalization, shards
from avsdn_tf.errors import UserError, argument_error, input_error

ANNOTATIONS_FILE = "Annotations.txt"
AUDIO_FILE = "audio_feature.h5"
VISUAL_FILE = "visual_feature.h5"
LABELS_FILE = "labels.h5"
ORDER_FILES = {split: f"{split}_order.h5" for split in constants.SPLITS}
# The cross-modality localization task's own splits (AVEL Sec. 5; they overlap the ones above):
# written as train_match, val_match, test_match when all three files are in the release.
MATCH_FILES = {f"{split}_match": f"{split}_order_match.h5" for split in constants.SPLITS}
NOISY_LABELS_FILE = "labels_noisy.h5"
NOISY_AUDIO_FILE = "audio_feature_noisy.h5"
NOISY_VISUAL_FILE = "visual_feature_noisy.h5"
# The authors' globally pooled visual vectors (N, T, 512), which their cross-modality code reads.
VISUAL_VECTOR_FILE = "visual_feature_vec.h5"

DISAGREEMENTS_FILE = "label_disagreements.json"
SUMMARY_FILE = "prepare_summary.json"
LABEL_SOURCES = ("h5", "annotations")


# --------------------------------------------------------------------------------------------
# Reading and checking the h5 files.


def _open_dataset(path, key, stack):
    """The h5py dataset under `key` in `path`, or one clear UserError. `stack` (an ExitStack)
    keeps the file open until the conversion is done."""
    try:
        # h5py reads local files only: a remote file is streamed to a local temporary copy
        # (tensorflow-io's HDF5 reader aborts the process on TF 2.17; see docs/data_format.md).
        handle = stack.enter_context(h5py.File(stack.enter_context(remote.local_copy(path)), "r"))
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError as error:
        raise input_error(path, "an HDF5 file", f"a file h5py cannot open ({error})") from None
    if key not in handle or not isinstance(handle[key], h5py.Dataset):
        raise input_error(
            path, f"an HDF5 dataset under the key {key!r}", f"keys {sorted(handle.keys())}"
        )
    return handle[key]


def _check_dtype(dataset, path, kinds, expected):
    if dataset.dtype.kind not in kinds:
        raise input_error(path, expected, f"dtype {dataset.dtype}")


def _float32(values):
    """Features as float32, the dtype of records and models (the release's audio is float64).
    Values beyond float32's range become Inf here and are then rejected by _check_finite."""
    with np.errstate(over="ignore"):
        return values.astype(np.float32, copy=False)


def _check_finite(values, path, first_row, video_ids):
    """Features must be finite once in float32: NaN, Inf and float64 values beyond float32's
    range (which become Inf) are all rejected, naming the row, its video and the segment."""
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.argwhere(~finite)[0]
    row = first_row + int(bad[0])
    raise input_error(
        f"{path} row {row} ({video_ids(row)}) segment {int(bad[1])}",
        "finite feature values that fit in float32",
        f"{values[tuple(bad)]} ({int((~finite).sum())} non-finite values in rows"
        f" {first_row}..{first_row + len(values) - 1})",
    )


def _one_hot_classes(values, path, first_row, video_ids):
    """Class indices of one-hot vectors along the last axis, or a UserError at the first row that
    is not one-hot (a value other than 0 and 1, no 1, several 1s, NaN)."""
    is_binary = (values == 0) | (values == 1)
    valid = is_binary.all(-1) & (values.sum(-1) == 1)
    if not valid.all():
        bad = tuple(np.argwhere(~valid)[0])
        vector = values[bad]
        nonzero = {int(k): float(vector[k]) for k in np.flatnonzero(vector != 0)}
        where = f"{path} row {first_row + int(bad[0])} ({video_ids(first_row + int(bad[0]))})"
        if len(bad) > 1:
            where += f" segment {int(bad[1])}"
        raise input_error(
            where,
            f"a one-hot vector over {values.shape[-1]} classes (one 1.0, the rest 0.0)",
            f"nonzero entries {nonzero}" if nonzero else "all zeros",
        )
    return values.argmax(-1)


def _features_shape(dataset, path, what, example):
    """(videos, segments, per-segment shape) of a feature file: (N, T, D) or (N, T, H, W, C)."""
    ranks = (3, 5) if what == "visual" else (3,)
    if dataset.ndim not in ranks:
        raise input_error(path, f"{what} features shaped {example}", f"shape {dataset.shape}")
    _check_dtype(dataset, path, "f", f"floating-point {what} features")
    return dataset.shape[0], dataset.shape[1], tuple(int(d) for d in dataset.shape[2:])


def _read_order(path, num_rows, annotations_path, stack):
    dataset = _open_dataset(path, constants.ORDER_KEY, stack)
    if dataset.ndim != 1 or dataset.dtype.kind not in "iu":
        raise input_error(
            path,
            f"a 1-D integer array of row indices into {annotations_path}",
            f"shape {dataset.shape} dtype {dataset.dtype}",
        )
    order = dataset[()].astype(np.int64)
    outside = np.flatnonzero((order < 0) | (order >= num_rows))
    if len(outside):
        raise input_error(
            path,
            f"row indices into {annotations_path} in 0..{num_rows - 1}",
            f"{order[outside[0]]} at position {outside[0]} ({len(outside)} out of range)",
        )
    values, counts = np.unique(order, return_counts=True)
    if (counts > 1).any():
        value = values[np.argmax(counts > 1)]
        positions = np.flatnonzero(order == value)[:2].tolist()
        raise input_error(
            path, "each row index at most once", f"row {value} at positions {positions}"
        )
    return order


# --------------------------------------------------------------------------------------------
# The conversion.


@dataclasses.dataclass
class _Inputs:
    """What the checks found, ready to convert."""

    rows: list  # annotations.Annotation per row of Annotations.txt
    categories: np.ndarray  # category index per row
    annotation_labels: np.ndarray  # [N, T] labels rebuilt from Annotations.txt
    h5_labels: np.ndarray | None  # [N, T] labels of labels.h5 (None if it was not used)
    split_of_row: np.ndarray  # index into constants.SPLITS, -1 for rows of no split
    order: dict  # split -> row indices
    match_order: dict  # match split -> row indices ({} when the release has no match files)
    audio: h5py.Dataset
    visual: h5py.Dataset
    visual_path: str  # the path given (visual.file may be a local copy of a remote file)
    audio_dim: int
    visual_shape: tuple
    num_segments: int
    noisy: dict | None  # {"audio", "visual", "count"} when the noisy split is written
    noisy_note: str  # what happened to the weak-supervision files, in words
    sources: list  # paths of every file read


def _video_namer(rows):
    return lambda row: f"video {rows[row].video_id}" if 0 <= row < len(rows) else f"row {row}"


def _check_release_files(ave_dir, visual_file, label_source, path):
    """Refuse a missing release directory or any file the conversion needs, in one message."""
    if not tf.io.gfile.isdir(ave_dir):
        raise argument_error(
            "ave_dir", "a directory holding the AVE release", f"{ave_dir!r}, no such directory"
        )
    needed = [ANNOTATIONS_FILE, AUDIO_FILE, visual_file, *ORDER_FILES.values()]
    if label_source == "h5":
        needed.append(LABELS_FILE)
    missing = [name for name in needed if not tf.io.gfile.exists(path(name))]
    if missing:
        raise input_error(
            ave_dir, "the AVE release files " + ", ".join(needed), "missing " + ", ".join(missing)
        )


def _open_visual(visual_path, num_rows, num_segments, audio_path, stack):
    """The visual h5 dataset and its per-segment shape, checked against the audio's videos."""
    visual = _open_dataset(visual_path, constants.H5_KEY, stack)
    _, _, visual_shape = _features_shape(
        visual,
        visual_path,
        "visual",
        "(videos, segments, H, W, C) maps or (videos, segments, D) vectors",
    )
    if visual.shape[:2] != (num_rows, num_segments):
        raise input_error(
            visual_path,
            f"{num_rows} videos x {num_segments} segments like {audio_path}",
            f"shape {visual.shape}",
        )
    return visual, visual_shape


def _annotation_labels(rows, categories, num_segments):
    """Labels rebuilt from Annotations.txt: [N, T], segment t the category when start <= t < end.

    The release's zero-length event (`Church bell&VWi2ENBuTbw&good&0&0`) has no such t: all its
    segments are background, while its category and its video label (as in mil_labels.h5) stay
    Church bell; it is kept as published and listed in the summary.
    """
    if not rows:
        return np.zeros((0, num_segments), np.int64)
    return np.stack(
        [
            annotations.segment_labels(row, category, num_segments)
            for row, category in zip(rows, categories)
        ]
    )


def _read_h5_labels(labels_path, num_rows, num_segments, chunk_videos, video_ids, stack):
    """labels_closs.h5 as class ids [N, T], checked; None when the release has no such file."""
    if not tf.io.gfile.exists(labels_path):
        return None
    labels = _open_dataset(labels_path, constants.H5_KEY, stack)
    expected = (
        f"one-hot segment labels shaped ({num_rows}, {num_segments}, {constants.NUM_CLASSES})"
    )
    if labels.shape != (num_rows, num_segments, constants.NUM_CLASSES):
        raise input_error(labels_path, expected, f"shape {labels.shape}")
    _check_dtype(labels, labels_path, "fiub", expected)
    if not num_rows:
        return np.zeros((0, num_segments), int)
    return np.concatenate(
        [
            _one_hot_classes(labels[start : start + chunk_videos], labels_path, start, video_ids)
            for start in range(0, num_rows, chunk_videos)
        ]
    )


def _read_split_orders(path, num_rows, annotations_path, video_ids, stack):
    """The train / val / test order files: (order {split: rows}, split index of every row).

    Raises:
        UserError: naming the order file, for a row that is already in another split.
    """
    order, split_of_row, owner = {}, np.full(num_rows, -1), {}
    for index, split in enumerate(constants.SPLITS):
        order_path = path(ORDER_FILES[split])
        order[split] = _read_order(order_path, num_rows, annotations_path, stack)
        taken = order[split][split_of_row[order[split]] >= 0]
        if len(taken):
            row = int(taken[0])
            raise input_error(
                order_path,
                f"row indices not already in {owner[row]}",
                f"row {row} ({video_ids(row)}) in both ({len(taken)} shared rows)",
            )
        split_of_row[order[split]] = index
        owner.update({int(row): order_path for row in order[split]})
    return order, split_of_row


def _read_rows(annotations_path, num_rows, num_segments, audio_path):
    """Annotations.txt's rows, their category ids, and the namer of a row's video.

    Quirks of Annotations.txt, all handled by annotations.parse_annotations: copies in the wild
    may start with the header line `Category&VideoID&Quality&StartTime&EndTime` (skipped) or not,
    and may use CRLF line ends; every row must fit in the h5 files' segments. Rows are matched by
    position, never by video id: 45 ids of the release appear on more than one row (a video can
    hold two or three different events). Each row is its own record.
    """
    rows = annotations.read_annotations(annotations_path, num_segments=num_segments)
    names = constants.category_names()
    categories = np.asarray(
        [annotations.category_index(row, names, annotations_path) for row in rows]
    )
    if num_rows != len(rows):
        raise input_error(
            audio_path, f"{len(rows)} rows, one per row of {annotations_path}", f"{num_rows} rows"
        )
    return rows, categories, _video_namer(rows)


def _check_inputs(
    ave_dir, visual_file, noisy_visual_file, include_noisy, label_source, chunk_videos, stack
):
    path = lambda name: os.path.join(ave_dir, name)  # noqa: E731  (absolute names stay absolute)
    _check_release_files(ave_dir, visual_file, label_source, path)
    annotations_path = path(ANNOTATIONS_FILE)
    audio_path, visual_path, labels_path = path(AUDIO_FILE), path(visual_file), path(LABELS_FILE)
    audio = _open_dataset(audio_path, constants.H5_KEY, stack)
    num_rows, num_segments, audio_shape = _features_shape(
        audio, audio_path, "audio", "(videos, segments, dims)"
    )
    rows, categories, video_ids = _read_rows(annotations_path, num_rows, num_segments, audio_path)
    visual, visual_shape = _open_visual(visual_path, num_rows, num_segments, audio_path, stack)
    annotation_labels = _annotation_labels(rows, categories, num_segments)
    h5_labels = _read_h5_labels(labels_path, num_rows, num_segments, chunk_videos, video_ids, stack)
    # Audio is small (about 40 MB): check it is finite now, before anything is written.
    # Visual features are checked chunk by chunk while converting.
    for start in range(0, num_rows, chunk_videos):
        _check_finite(_float32(audio[start : start + chunk_videos]), audio_path, start, video_ids)
    order, split_of_row = _read_split_orders(path, num_rows, annotations_path, video_ids, stack)
    sources = [annotations_path, audio_path, visual_path] + [
        path(name) for name in ORDER_FILES.values()
    ]
    match_order = _read_match_orders(path, ave_dir, num_rows, annotations_path, stack)
    sources += [path(MATCH_FILES[split]) for split in match_order]
    if h5_labels is not None:
        sources.append(labels_path)
    noisy, noisy_note = _check_noisy(
        path,
        noisy_visual_file,
        include_noisy,
        num_segments,
        audio_shape,
        visual_path,
        visual_shape,
        chunk_videos,
        stack,
    )
    if noisy:
        sources += noisy.pop("paths")
    return _Inputs(
        rows=rows,
        categories=categories,
        annotation_labels=annotation_labels,
        h5_labels=h5_labels,
        split_of_row=split_of_row,
        order=order,
        match_order=match_order,
        audio=audio,
        visual=visual,
        visual_path=visual_path,
        audio_dim=audio_shape[0],
        visual_shape=visual_shape,
        num_segments=num_segments,
        noisy=noisy,
        noisy_note=noisy_note,
        sources=sources,
    )


def _read_match_orders(path, ave_dir, num_rows, annotations_path, stack):
    """The cross-modality splits' row indices: all three match files, or none of them.

    Returns:
        {match split: [n] int64 row indices}, {} when the release has none of the files.
    """
    present = {split: name for split, name in MATCH_FILES.items() if tf.io.gfile.exists(path(name))}
    if not present:
        return {}
    if len(present) < len(MATCH_FILES):
        missing = [name for split, name in MATCH_FILES.items() if split not in present]
        names = ", ".join(MATCH_FILES.values())
        expected = f"all of the cross-modality split files {names} or none of them"
        found = f"only {', '.join(present.values())} (missing {', '.join(missing)})"
        raise input_error(ave_dir, expected, found)
    return {
        split: _read_order(path(name), num_rows, annotations_path, stack)
        for split, name in present.items()
    }


def _check_noisy_labels(labels_path, audio, audio_path, count, num_segments, chunk_videos, stack):
    """The noisy videos' labels: one-hot background only, one per video (or per segment); the
    noisy audio finite. Raises UserError naming the file and row otherwise."""
    labels = _open_dataset(labels_path, constants.H5_KEY, stack)
    # The release stores video-level labels (178, 29); segment-level (M, T, 29) is accepted too.
    if labels.shape not in (
        (count, constants.NUM_CLASSES),
        (count, num_segments, constants.NUM_CLASSES),
    ):
        raise input_error(
            labels_path,
            f"one-hot labels shaped ({count}, {constants.NUM_CLASSES}) like the "
            f"{count} videos of {audio_path}",
            f"shape {labels.shape}",
        )
    _check_dtype(labels, labels_path, "fiub", "numeric one-hot labels")
    for start in range(0, count, chunk_videos):
        classes = _one_hot_classes(
            labels[start : start + chunk_videos], labels_path, start, _noisy_ids
        )
        if (classes != constants.BACKGROUND).any():
            bad = np.argwhere(classes != constants.BACKGROUND)[0]
            found = int(classes[tuple(bad)])
            raise input_error(
                f"{labels_path} row {start + int(bad[0])}",
                f"background-only videos (one-hot at class {constants.BACKGROUND}, background)",
                f"class {found} ({constants.class_names()[found]})",
            )
        _check_finite(_float32(audio[start : start + chunk_videos]), audio_path, start, _noisy_ids)


def _check_noisy(
    path,
    noisy_visual_file,
    include_noisy,
    num_segments,
    audio_shape,
    visual_path,
    visual_shape,
    chunk_videos,
    stack,
):
    """The weak-supervision files: all three present -> a 'noisy' split; none -> no such split;
    some -> a warning naming the missing ones, and no noisy split (it needs all three)."""
    names = [NOISY_LABELS_FILE, NOISY_AUDIO_FILE, noisy_visual_file]
    present = [name for name in names if tf.io.gfile.exists(path(name))]
    if not present:
        return (
            None,
            (
                "no weak-supervision files (labels_noisy.h5, audio_feature_noisy.h5,"
                " visual_feature_noisy.h5)"
            ),
        )
    if not include_noisy:
        return None, "weak-supervision files skipped (include_noisy is off)"
    if len(present) < len(names):
        missing = [name for name in names if name not in present]
        note = (
            f"the noisy split is NOT written: found {', '.join(present)} but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing in {path('')}; it needs all three "
            "weak-supervision files (train, val and test are written as usual)"
        )
        print(f"warning: {note}", file=sys.stderr)
        return None, note

    labels_path, audio_path, noisy_visual_path = (path(name) for name in names)
    audio = _open_dataset(audio_path, constants.H5_KEY, stack)
    count, segments, shape = _features_shape(audio, audio_path, "audio", "(videos, segments, dims)")
    if (segments, shape) != (num_segments, audio_shape):
        raise input_error(
            audio_path,
            f"(videos, {num_segments}, {audio_shape[0]}) like {AUDIO_FILE}",
            f"shape {audio.shape}",
        )
    visual = _open_dataset(noisy_visual_path, constants.H5_KEY, stack)
    expected_shape = (count, num_segments, *visual_shape)
    if visual.shape != expected_shape:
        raise input_error(
            noisy_visual_path,
            f"shape {expected_shape} (the layout of {visual_path}, "
            f"{count} videos like {audio_path}); pass `noisy_visual_file` with matching "
            "features or `include_noisy=False`",
            f"shape {visual.shape}",
        )
    _check_dtype(visual, noisy_visual_path, "f", "floating-point visual features")
    _check_noisy_labels(labels_path, audio, audio_path, count, num_segments, chunk_videos, stack)
    return {
        "audio": audio,
        "visual": visual,
        "count": count,
        "visual_path": noisy_visual_path,
        "paths": [labels_path, audio_path, noisy_visual_path],
    }, f"{count} background-only videos"


def noisy_video_id(index):
    """Ids of the background-only videos, which the release does not name: noisy_0000, ...

    Args:
        index: int, the video's row in the *_noisy.h5 files.
    Returns:
        str, "noisy_" and the index in four digits.
    """
    return f"noisy_{index:04d}"


def _noisy_ids(index):
    return f"video {noisy_video_id(index)}"


def _disagreements(inputs):
    """Every row where labels.h5 and the labels rebuilt from Annotations.txt differ."""
    if inputs.h5_labels is None:
        return []
    found = []
    for row in np.flatnonzero((inputs.h5_labels != inputs.annotation_labels).any(axis=1)):
        annotation = inputs.rows[row]
        split = inputs.split_of_row[row]
        found.append(
            {
                "row": int(row),
                "video_id": annotation.video_id,
                "split": constants.SPLITS[split] if split >= 0 else None,
                "category": annotation.category,
                "event_start": annotation.start,
                "event_end": annotation.end,
                "segments": (
                    np.flatnonzero(inputs.h5_labels[row] != inputs.annotation_labels[row]).tolist()
                ),
                "labels_h5": inputs.h5_labels[row].tolist(),
                "labels_annotations": inputs.annotation_labels[row].tolist(),
            }
        )
    return found


def _write_noisy(inputs, writer, chunk_videos, bar):
    """Write the background-only videos: no event at all (category NO_CATEGORY, event 0..0,
    every label background)."""
    noisy_audio, noisy_visual = inputs.noisy["audio"], inputs.noisy["visual"]
    background = np.full(inputs.num_segments, constants.BACKGROUND)
    num_rows = len(inputs.rows)
    for start in range(0, inputs.noisy["count"], chunk_videos):
        audio = _float32(noisy_audio[start : start + chunk_videos])
        visual = _float32(noisy_visual[start : start + chunk_videos])
        _check_finite(visual, inputs.noisy["visual_path"], start, _noisy_ids)
        for offset in range(len(audio)):
            writer.write(
                records.encode_video(
                    noisy_video_id(start + offset),
                    constants.NO_CATEGORY,
                    0,
                    0,
                    constants.BACKGROUND,
                    audio[offset],
                    visual[offset],
                    background,
                )
            )
        bar.update(num_rows + min(start + chunk_videos, inputs.noisy["count"]))


def _convert(inputs, staging, label_source, chunk_videos, videos_per_shard, bar):
    """Write every row of the release, then the noisy videos, into per-split shards."""
    labels = inputs.h5_labels if label_source == "h5" else inputs.annotation_labels
    visual_path = inputs.visual_path
    video_ids = _video_namer(inputs.rows)
    writers = {
        split: shards.ShardWriter(
            staging, split, shards.shard_count(len(inputs.order[split]), videos_per_shard)
        )
        for split in constants.SPLITS
    }
    match_of_row = collections.defaultdict(list)  # row -> the match splits that hold it
    for split, order in inputs.match_order.items():
        count = shards.shard_count(len(order), videos_per_shard)
        writers[split] = shards.ShardWriter(staging, split, count)
        for row in order:
            match_of_row[int(row)].append(split)
    if inputs.noisy:
        writers[constants.NOISY_SPLIT] = shards.ShardWriter(
            staging,
            constants.NOISY_SPLIT,
            shards.shard_count(inputs.noisy["count"], videos_per_shard),
        )
    try:
        num_rows = len(inputs.rows)
        for start in range(0, num_rows, chunk_videos):
            # Contiguous rows read well from h5 (one hyperslab); each goes to its split's writer.
            # The release's audio is float64; records (and models) are float32.
            audio = _float32(inputs.audio[start : start + chunk_videos])
            visual = _float32(inputs.visual[start : start + chunk_videos])
            _check_finite(visual, visual_path, start, video_ids)
            for offset in range(len(audio)):
                row = start + offset
                split = inputs.split_of_row[row]
                names = ([constants.SPLITS[split]] if split >= 0 else []) + match_of_row[row]
                if not names:
                    continue  # in no split file: counted in the summary
                annotation, category = inputs.rows[row], int(inputs.categories[row])
                record = records.encode_video(
                    annotation.video_id,
                    category,
                    annotation.start,
                    annotation.end,
                    category,
                    audio[offset],
                    visual[offset],
                    labels[row],
                )
                for name in names:
                    writers[name].write(record)
            bar.update(min(start + chunk_videos, num_rows))
        if inputs.noisy:
            _write_noisy(inputs, writers[constants.NOISY_SPLIT], chunk_videos, bar)
    finally:
        for writer in writers.values():
            writer.close()
    return {
        split: {"videos": writer.written, "shards": writer.names}
        for split, writer in writers.items()
    }


def _check_output_dir(output_dir, ave_dir):
    """OUT is replaced as a whole: refuse anything whose loss would hurt."""
    out, source = os.path.abspath(output_dir.rstrip("/")), os.path.abspath(ave_dir.rstrip("/"))
    if "://" not in output_dir and (out == source or source.startswith(out + os.sep)):
        raise argument_error(
            "output_dir",
            f"a directory outside `ave_dir` {ave_dir} (it is replaced as a whole)",
            f"{output_dir!r}",
        )
    if tf.io.gfile.exists(output_dir):
        if not tf.io.gfile.isdir(output_dir):
            raise argument_error(
                "output_dir",
                "a directory (new, or an earlier prepare output)",
                f"{output_dir!r} is a file",
            )
        entries = tf.io.gfile.listdir(output_dir)
        if entries and constants.DATASET_INFO_FILE not in [entry.rstrip("/") for entry in entries]:
            raise argument_error(
                "output_dir",
                "a new or empty directory, or an earlier output (with "
                f"{constants.DATASET_INFO_FILE}) to replace",
                f"{output_dir!r} holding {len(entries)} other entries; choose another directory",
            )


def prepare(
    ave_dir,
    output_dir,
    visual_file=VISUAL_FILE,
    noisy_visual_file=NOISY_VISUAL_FILE,
    include_noisy=True,
    label_source="h5",
    chunk_videos=64,
    videos_per_shard=256,
    verbose=1,
):
    """Convert the AVE release in `ave_dir` to TFRecords in `output_dir`; returns the summary.

    Everything is checked before the first record is written, and `output_dir` is built in a
    staging directory that replaces it only once complete (fileio.staged_directory).

    Args:
        ave_dir: directory of the release: Annotations.txt, audio_feature.h5 (N, T, A), the
            visual file, {train,val,test}_order.h5 and, with label_source "h5", labels.h5.
        output_dir: a new or empty directory, or an earlier prepare output to replace.
        visual_file: name of the visual features in `ave_dir`: (N, T, H, W, C) maps, e.g.
            visual_feature.h5 (N, 10, 7, 7, 512), or (N, T, V) vectors (visual_feature_vec.h5).
        noisy_visual_file: name of the visual features of the background-only videos.
        include_noisy: write the "noisy" split of background-only videos when all three
            weak-supervision files are present (labels_noisy.h5, audio_feature_noisy.h5,
            `noisy_visual_file`).
        label_source: "h5" (segment labels from labels.h5) or "annotations" (rebuilt from
            Annotations.txt); the two are compared whenever labels.h5 is read.
        chunk_videos: videos read from the h5 files at once (bounds memory).
        videos_per_shard: target videos per TFRecord shard (shards.shard_count).
        verbose: Keras progress bar verbosity (0 silent, 1 bar, 2 one line; 1 is one line too
            when stdout is not a terminal: progress.bar).
    Returns:
        dict, the summary also written as prepare_summary.json: videos and shards per split,
        audio_dim, visual_shape, visual_layout, label_source, label disagreements, duplicate
        video ids, zero-length events, the noisy split's note and timings.
    Raises:
        errors.UserError: when an argument is out of range, `output_dir` is a file or holds other
            entries, or a release file is missing or has the wrong key, shape, dtype or values.
    """
    began = time.time()
    if label_source not in LABEL_SOURCES:
        raise argument_error("label_source", f"one of {LABEL_SOURCES}", repr(label_source))
    if chunk_videos < 1 or videos_per_shard < 1:
        raise input_error(
            "`chunk_videos` / `videos_per_shard`",
            "positive numbers",
            f"{chunk_videos} and {videos_per_shard}",
        )
    _check_output_dir(output_dir, ave_dir)
    with contextlib.ExitStack() as stack:
        inputs = _check_inputs(
            ave_dir,
            visual_file,
            noisy_visual_file,
            include_noisy,
            label_source,
            chunk_videos,
            stack,
        )
        return _write_output(
            inputs, output_dir, label_source, chunk_videos, videos_per_shard, verbose, began
        )


def _write_output(inputs, output_dir, label_source, chunk_videos, videos_per_shard, verbose, began):
    """prepare()'s writing, once every input is checked: the shards, dataset_info.json, the
    statistics, the disagreements and the summary, in a staging directory published whole."""
    disagreements = _disagreements(inputs)
    # A remote file's MD5 is taken of its local copy: the bytes read, read once.
    sources = [
        {"file": os.path.basename(source), "md5": dataset_info.md5_of(remote.local_path(source))}
        for source in inputs.sources
    ]
    total = len(inputs.rows) + (inputs.noisy["count"] if inputs.noisy else 0)
    bar = progress.bar(total, verbose, "video")
    with fileio.staged_directory(output_dir, marker=constants.DATASET_INFO_FILE) as staging:
        splits = _convert(inputs, staging, label_source, chunk_videos, videos_per_shard, bar)
        info = dataset_info.DatasetInfo(
            audio_dim=inputs.audio_dim,
            visual_shape=list(inputs.visual_shape),
            num_segments=inputs.num_segments,
            class_names=constants.class_names(),
            splits=splits,
            sources=sources,
            generator="prepare",
        )
        dataset_info.write(staging, info)
        normalization.write_statistics(staging)
        fileio.write_json(os.path.join(staging, DISAGREEMENTS_FILE), disagreements)
        seconds = time.time() - began
        summary = _summary(
            inputs, splits, disagreements, label_source, info.visual_layout, seconds, output_dir
        )
        fileio.write_json(os.path.join(staging, SUMMARY_FILE), summary)
    return summary


def _summary(inputs, splits, disagreements, label_source, layout, seconds, output_dir):
    ids = collections.Counter(row.video_id for row in inputs.rows)
    written = sum(split["videos"] for split in splits.values())
    return {
        "output_dir": output_dir,
        "videos": {name: split["videos"] for name, split in splits.items()},
        "shards": {name: len(split["shards"]) for name, split in splits.items()},
        "annotation_rows": len(inputs.rows),
        "rows_in_no_split": int((inputs.split_of_row < 0).sum()),
        "audio_dim": inputs.audio_dim,
        "visual_shape": list(inputs.visual_shape),
        "visual_layout": layout,
        "label_source": label_source,
        "label_disagreements": {
            "checked": inputs.h5_labels is not None,
            "videos": len(disagreements),
            "segments": sum(len(entry["segments"]) for entry in disagreements),
            "file": DISAGREEMENTS_FILE,
        },
        "duplicate_video_ids": {
            "ids": sum(1 for count in ids.values() if count > 1),
            "rows": sum(count for count in ids.values() if count > 1),
        },
        "zero_length_events": [row.video_id for row in inputs.rows if row.start == row.end],
        "noisy": inputs.noisy_note,
        "seconds": round(seconds, 3),
        "videos_per_second": round(written / seconds, 2) if seconds > 0 else None,
    }
