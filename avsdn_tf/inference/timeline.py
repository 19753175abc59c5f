"""The timeline picture of one video's predictions, in the manner of the AVSDN paper's Figure 3:
a strip of frames, the ground truth (when known) above the prediction, one cell per second,
event runs coloured by class and named, background left light grey; and the probability of the
predicted class per second underneath.
"""

import importlib.util

import numpy as np

from avsdn_tf import constants
from avsdn_tf.models import metrics

_BACKGROUND_COLOUR = (0.92, 0.92, 0.92)
_MAX_THUMBNAILS = 12


def _colour(class_index):
    if class_index == constants.BACKGROUND:
        return _BACKGROUND_COLOUR
    import matplotlib

    tab20 = matplotlib.colormaps["tab20"].colors
    palette = tab20[:14] + tab20[16:] + matplotlib.colormaps["tab20b"].colors  # no greys: grey is background
    return palette[(class_index * 7) % len(palette)]  # neighbours in index get distant colours


def _draw_row(axes, y, labels, class_names, title):
    labels = np.asarray(labels)
    for t, label in enumerate(labels):
        axes.add_patch(_rectangle(t, y, _colour(int(label))))
    for class_index, start, end in metrics.intervals(labels):
        axes.text((start + end) / 2, y + 0.4, class_names[class_index], ha="center", va="center", fontsize=8,
                  clip_on=True)
    axes.text(-0.15, y + 0.4, title, ha="right", va="center", fontsize=9)


def _rectangle(t, y, colour):
    import matplotlib.patches

    return matplotlib.patches.Rectangle((t, y), 1, 0.8, facecolor=colour, edgecolor="white", linewidth=1)


def save_timeline(path, predicted, class_names=None, truth=None, probabilities=None, thumbnails=None,
                  title=""):
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
    import tensorflow as tf

    class_names = class_names or constants.class_names()
    predicted = np.asarray(predicted)
    seconds = len(predicted)
    rows = [("prediction", predicted)] + ([("ground truth", np.asarray(truth))] if truth is not None else [])
    has_thumbnails = bool(thumbnails)
    heights = ([1.0] if has_thumbnails else []) + [0.45 * len(rows) + 0.35] + ([0.9] if probabilities is not None else [])
    width = min(18.0, max(8.0, 0.6 * seconds + 2.5))
    figure, axes_list = plt.subplots(len(heights), 1, figsize=(width, sum(heights) + 0.8), squeeze=False,
                                     gridspec_kw={"height_ratios": heights})
    axes_list = list(axes_list[:, 0])

    if has_thumbnails:
        axes = axes_list.pop(0)
        shown = np.unique(np.linspace(0, len(thumbnails) - 1, min(len(thumbnails), _MAX_THUMBNAILS)).round().astype(int))
        for t in shown:
            axes.imshow(thumbnails[t], extent=(t + 0.05, t + 0.95, 0, 1), aspect="auto")
        axes.set_xlim(0, seconds)
        axes.set_ylim(0, 1)
        axes.axis("off")

    axes = axes_list.pop(0)
    for row, (name, labels) in enumerate(rows):
        _draw_row(axes, row, labels, class_names, name)
    axes.set_xlim(0, seconds)
    axes.set_ylim(-0.1, len(rows))
    axes.set_yticks([])
    axes.set_xticks(range(0, seconds + 1, max(1, seconds // 20)))
    axes.set_xlabel("seconds")
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)

    if probabilities is not None:
        axes = axes_list.pop(0)
        centres = np.arange(seconds) + 0.5
        axes.step(np.r_[0, centres + 0.5], np.r_[probabilities[0], probabilities], where="pre", color="0.3")
        axes.set_xlim(0, seconds)
        axes.set_ylim(0, 1.05)
        axes.set_ylabel("p", rotation=0, labelpad=10)
        axes.set_xticks([])
    if title:
        figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    with tf.io.gfile.GFile(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
    return path
