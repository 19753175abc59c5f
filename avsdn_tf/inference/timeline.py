"""The timeline picture of one video's predictions, in the manner of the AVSDN paper's Figure 3:
a strip of frames, the ground truth (when known) above the prediction, one cell per second
(marked by short ticks at the rows' edges, so no border crosses a name), event runs coloured by
class and named, background light grey and named in the legend; and the probability of the
predicted class per second underneath, on a labelled 0..1 axis with ticks.
"""

import importlib.util

import numpy as np

from avsdn_tf import constants
from avsdn_tf.models import metrics

_BACKGROUND_COLOUR = (0.92, 0.92, 0.92)
_MAX_THUMBNAILS = 12
BACKGROUND_LEGEND = "background (no event)"  # the legend's entry for the grey cells
PROBABILITY_LABEL = "probability of\nthe predicted class"
_ROW_HEIGHT = 0.8  # of a row's 1.0 (data units): the gap between rows is the rest
_TICK_HEIGHT = 0.12  # the second marks at a row's top and bottom edges (data units)
_NAME_FONT = 8


def colour(class_index):
    """The colour of a class in the timelines (the PNG and the HTML pages share it).

    Args:
        class_index: int class id; constants.BACKGROUND gets light grey.
    Returns:
        (r, g, b) floats in 0..1. Needs matplotlib (its tab20 palettes).
    """
    if class_index == constants.BACKGROUND:
        return _BACKGROUND_COLOUR
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    palette = (
        tab20[:14] + tab20[16:] + matplotlib.colormaps["tab20b"].colors
    )  # no greys: grey is background
    return palette[(class_index * 7) % len(palette)]  # neighbours in index get distant colours


def _fitted(name, width_inches):
    """`name`, cut with an ellipsis to about what fits in width_inches at the names' font size."""
    room = int(width_inches * 72 / (_NAME_FONT * 0.6))  # an average glyph: 0.6 em
    return name if len(name) <= room else name[: max(room - 1, 1)] + "\u2026"


def _draw_row(axes, y, labels, class_names, title, inches_per_second):
    """One row: a rectangle per run of one class (no border inside it), each second marked by
    short ticks at the row's top and bottom edges, each event run named inside its run."""
    import matplotlib.patches

    labels = np.asarray(labels)
    runs = metrics.intervals(labels)
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    for start, end in zip(starts, np.r_[starts[1:], len(labels)]):
        axes.add_patch(
            matplotlib.patches.Rectangle(
                (start, y),
                end - start,
                _ROW_HEIGHT,
                facecolor=colour(int(labels[start])),
                edgecolor="white",
                linewidth=1.5,
            )
        )
    for t in range(1, len(labels)):
        for low in (y, y + _ROW_HEIGHT - _TICK_HEIGHT):
            axes.plot([t, t], [low, low + _TICK_HEIGHT], color="white", linewidth=1)
    for class_index, start, end in runs:
        axes.text(
            (start + end) / 2,
            y + _ROW_HEIGHT / 2,
            _fitted(class_names[class_index], 0.95 * (end - start) * inches_per_second),
            ha="center",
            va="center",
            fontsize=_NAME_FONT,
            clip_on=True,
        )
    axes.text(-0.15, y + _ROW_HEIGHT / 2, title, ha="right", va="center", fontsize=9)


def _strip_height(thumbnails, seconds, figure_width):
    """The strip's height ratio: room for a frame as wide as 90% of a second's cell at its own
    aspect ratio (the axes take about figure_width - 2.5 inches; the margins and the gaps
    between the rows take about half of each row's share of the height)."""
    height, width = np.asarray(thumbnails[0]).shape[:2]
    cell = max(figure_width - 2.5, 1.0) / max(seconds, 1)
    return float(np.clip(2.0 * 0.9 * cell * height / width, 0.4, 2.5))


def _draw_thumbnails(figure, axes, thumbnails, seconds):
    """At most 12 evenly spaced frames, each centred in its second's cell and drawn at its own
    aspect ratio: as wide as 90% of the cell, or less when the strip is too low for that."""
    axes.set_xlim(0, seconds)
    axes.set_ylim(0, 1)
    axes.axis("off")
    box = axes.get_position()  # figure fractions
    figure_width, figure_height = figure.get_size_inches()
    inches_per_second = box.width * figure_width / seconds  # x data unit: one second
    strip_inches = box.height * figure_height  # y data: 0..1
    count = min(len(thumbnails), _MAX_THUMBNAILS)
    shown = np.unique(np.linspace(0, len(thumbnails) - 1, count).round().astype(int))
    for t in shown:
        height, width = np.asarray(thumbnails[t]).shape[:2]
        frame_width = 0.9 * inches_per_second
        frame_height = frame_width * height / width
        if frame_height > 0.96 * strip_inches:
            frame_height = 0.96 * strip_inches
            frame_width = frame_height * width / height
        half_x = frame_width / inches_per_second / 2
        half_y = frame_height / strip_inches / 2
        axes.imshow(
            thumbnails[t],
            extent=(t + 0.5 - half_x, t + 0.5 + half_x, 0.5 - half_y, 0.5 + half_y),
            aspect="auto",
        )
    axes.set_xlim(0, seconds)  # imshow rescales the limits to the images
    axes.set_ylim(0, 1)


def _draw_rows(axes, rows, class_names, seconds, inches_per_second):
    """The labelled rows (prediction, ground truth): one cell per second, x in seconds; the
    legend names the grey of background."""
    import matplotlib.patches

    for row, (name, labels) in enumerate(rows):
        _draw_row(axes, row, labels, class_names, name, inches_per_second)
    axes.set_xlim(0, seconds)
    axes.set_ylim(-0.1, len(rows))
    axes.set_yticks([])
    axes.set_xticks(range(0, seconds + 1, max(1, seconds // 20)))
    axes.set_xlabel("seconds")
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    grey = matplotlib.patches.Patch(facecolor=_BACKGROUND_COLOUR, edgecolor="0.6", linewidth=0.5)
    axes.legend(
        handles=[grey],
        labels=[BACKGROUND_LEGEND],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=1,
        frameon=False,
        fontsize=8,
        borderaxespad=0.1,
    )


def _draw_probabilities(axes, probabilities, seconds):
    """The strip of the predicted class's probability per second: a step line with a dot per
    second on a 0..1 axis with ticks and grid lines, x in seconds as the rows above."""
    probabilities = np.asarray(probabilities, float)
    centres = np.arange(seconds) + 0.5
    axes.step(
        np.r_[0, centres + 0.5],
        np.r_[probabilities[0], probabilities],
        where="pre",
        color="0.3",
    )
    axes.plot(centres, probabilities, "o", color="0.2", markersize=3)
    axes.set_xlim(0, seconds)
    axes.set_ylim(0, 1.05)
    axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "", "0.5", "", "1"], fontsize=8)
    axes.grid(axis="y", color="0.85", linewidth=0.8)
    axes.set_axisbelow(True)
    axes.set_ylabel(PROBABILITY_LABEL, fontsize=8)
    axes.set_xticks(range(0, seconds + 1, max(1, seconds // 20)))
    axes.tick_params(axis="x", labelsize=8)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)


def save_timeline(
    path, predicted, class_names=None, truth=None, probabilities=None, thumbnails=None, title=""
):
    """Draw the timeline PNG at `path`; returns the path, or None without matplotlib.

    predicted / truth: [T] class indices; probabilities: [T] confidence of the predicted class;
    thumbnails: T frames (uint8 [H, W, 3]), of which at most 12 evenly spaced are shown.

    Args:
        path: the PNG to write (local or a storage URL).
        predicted: int [T] predicted class per segment (28 = background).
        class_names: the K class names; default constants.class_names().
        truth: int [T] ground-truth segment labels, or None (no ground-truth row).
        probabilities: float [T] probability of the predicted class per segment, or None (no
            probability strip).
        thumbnails: a list of T uint8 [H, W, 3] frames (one per segment), or None / [].
        title: the figure title; "" for none.
    Returns:
        path, or None when matplotlib is not installed (nothing written).
    """
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from avsdn_tf import fileio  # TensorFlow's file system, loaded only to write

    class_names = class_names or constants.class_names()
    predicted = np.asarray(predicted)
    seconds = len(predicted)
    rows = [("prediction", predicted)] + (
        [("ground truth", np.asarray(truth))] if truth is not None else []
    )
    has_thumbnails = bool(thumbnails)
    width = min(18.0, max(8.0, 0.6 * seconds + 2.5))
    strip = _strip_height(thumbnails, seconds, width) if has_thumbnails else None
    heights = (
        ([strip] if has_thumbnails else [])
        + [0.45 * len(rows) + 0.55]  # the rows, the seconds axis and the legend above
        + ([1.3] if probabilities is not None else [])
    )
    figure, axes_list = plt.subplots(
        len(heights),
        1,
        figsize=(width, sum(heights) + 0.8),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    axes_list = list(axes_list[:, 0])

    thumbnail_axes = axes_list.pop(0) if has_thumbnails else None

    inches_per_second = max(width - 2.5, 1.0) / max(seconds, 1)  # the axes' width, about
    _draw_rows(axes_list.pop(0), rows, class_names, seconds, inches_per_second)
    if probabilities is not None:
        _draw_probabilities(axes_list.pop(0), probabilities, seconds)
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    if has_thumbnails:  # after the layout: the frames are sized to the strip's final box
        _draw_thumbnails(figure, thumbnail_axes, thumbnails, seconds)
    try:
        fileio.write_png(path, figure, dpi=100)
    finally:
        plt.close(figure)
    return path
