"""The AVE annotation files: Annotations.txt, the split files and the segment labels they imply.

Each row reads `Category&VideoID&Quality&StartTime&EndTime`. Segment t (one second) belongs to
the event when StartTime <= t < EndTime, else it is background.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from avsdn_tf import constants
from avsdn_tf.errors import UserError, input_error

HEADER = "Category&VideoID&Quality&StartTime&EndTime"


@dataclasses.dataclass(frozen=True)
class Annotation:
    category: str
    video_id: str
    quality: str
    start: int
    end: int
    line: int | None = dataclasses.field(default=None, compare=False)  # in the file, from 1


def parse_annotations(text, source="Annotations.txt", num_segments=constants.NUM_SEGMENTS):
    """Rows of an AVE annotation text, in file order. A header line, CRLF and blank lines are ok.

    Args:
        text: the content of Annotations.txt (Category&VideoID&Quality&StartTime&EndTime rows).
        source: the file name errors give.
        num_segments: T, the bound of StartTime and EndTime.
    Returns:
        list of Annotation(category, video_id, quality, start, end, line).
    Raises:
        errors.UserError: naming the line, for a row with other fields or times out of range.
    """
    rows = []
    for line_number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or (not rows and line.replace(" ", "") == HEADER):
            continue
        fields = line.split("&")
        where = f"{source} line {line_number}"
        if len(fields) != 5:
            raise input_error(
                where,
                "5 '&'-separated fields (Category&VideoID&Quality&StartTime&EndTime)",
                f"{len(fields)} in {line!r}",
            )
        category, video_id, quality, start, end = (field.strip() for field in fields)
        try:
            start, end = int(start), int(end)
        except ValueError:
            raise input_error(
                where, "integer StartTime and EndTime", f"{fields[3]!r} and {fields[4]!r}"
            ) from None
        if not 0 <= start <= end <= num_segments:
            raise input_error(
                where, f"0 <= StartTime <= EndTime <= {num_segments}", f"{start} and {end}"
            )
        rows.append(Annotation(category, video_id, quality, start, end, line_number))
    return rows


def read_annotations(path, num_segments=constants.NUM_SEGMENTS):
    """The rows of an AVE annotation file (parse_annotations on its text).

    Args:
        path: Annotations.txt or a *Set.txt file (local or a URL).
        num_segments: T, the bound of the event times.
    Returns:
        list of Annotation, in file order.
    Raises:
        errors.UserError: naming the file when absent, or its line when malformed.
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path}: file not found")
    with tf.io.gfile.GFile(path, "r") as handle:
        return parse_annotations(handle.read(), source=path, num_segments=num_segments)


def packaged_annotations(name="Annotations.txt"):
    """The real AVE annotation files shipped with the package.

    Args:
        name: "Annotations.txt", "trainSet.txt", "valSet.txt" or "testSet.txt".
    Returns:
        list of Annotation, in file order.
    """
    return parse_annotations(constants.resource_text(name), source=name)


def category_index(annotation, categories, source="Annotations.txt"):
    """The class id of a row's category.

    Args:
        annotation: an Annotation.
        categories: the category names, in class-id order.
        source: the file errors name.
    Returns:
        int: the index of annotation.category in `categories`.
    Raises:
        errors.UserError: naming the file and the video, for an unknown category.
    """
    try:
        return categories.index(annotation.category)
    except ValueError:
        raise input_error(
            source,
            f"a category from the {len(categories)} AVE categories",
            f"{annotation.category!r} (video {annotation.video_id})",
        ) from None


def segment_labels(annotation, class_index, num_segments=constants.NUM_SEGMENTS):
    """Per-segment labels of one annotated video: its class where start <= t < end, else background.

    Args:
        annotation: an Annotation (start, end in segments, end exclusive).
        class_index: the class id of its category.
        num_segments: T.
    Returns:
        int64 array [T].
    """
    labels = np.full(num_segments, constants.BACKGROUND, dtype=np.int64)
    labels[annotation.start : annotation.end] = class_index
    return labels


def video_label_vector(class_index):
    """The release's video-level label (mil_labels.h5): one-hot over the K classes.

    Args:
        class_index: the video's class id.
    Returns:
        float32 array [K].
    """
    vector = np.zeros(constants.NUM_CLASSES, dtype=np.float32)
    vector[class_index] = 1.0
    return vector


def split_order(annotations, split_rows):
    """Row indices into `annotations` for the rows of a split file, as train_order.h5 stores them.

    A video id can appear twice with different events, so rows are matched on the whole row.

    Args:
        annotations: the Annotation rows of Annotations.txt.
        split_rows: the Annotation rows of a split file (trainSet.txt, ...).
    Returns:
        list of int row indices, in the split file's order.
    """
    positions = {}
    for index, row in enumerate(annotations):
        positions.setdefault(row, []).append(index)
    order = []
    for row in split_rows:
        if row not in positions or not positions[row]:
            raise input_error("split file", "rows that appear in Annotations.txt", f"{row}")
        order.append(positions[row].pop(0))
    return np.asarray(order, dtype=np.int64)
