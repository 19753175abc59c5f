"""Human-readable output: metric tables and the confusion-matrix picture."""

import importlib.util

import numpy as np


def metrics_table(summary, class_names):
    """The human-readable table of one split's metrics.

    Args:
        summary: metrics.summarize's dict.
        class_names: the K class names.
    Returns:
        str: accuracy, mean class accuracy, intervals, then one line per class.
    """
    lines = [
        f"frame-wise accuracy   {summary['accuracy']:.4f}  ({summary['segments']} segments, "
        f"{summary['videos']} videos)"
    ]
    if summary.get("mean_class_accuracy") is not None:
        lines.append(f"mean class accuracy   {summary['mean_class_accuracy']:.4f}")
    intervals = summary["intervals"]
    lines.append(
        f"event intervals       precision {intervals['precision']:.4f}  recall"
        f" {intervals['recall']:.4f}  F1 {intervals['f1']:.4f}  mean IoU"
        f" {intervals['mean_iou']:.4f}  (IoU >= {intervals['iou_threshold']})"
    )
    lines.append("")
    width = max(len(name) for name in class_names)
    confusion = np.asarray(summary["confusion_matrix"])
    lines.append(f"{'class':<{width}}  accuracy  segments")
    for index, name in enumerate(class_names):
        value = summary["per_class_accuracy"][name]
        shown = "     -  " if value is None else f"  {value:.4f}"
        lines.append(f"{name:<{width}}  {shown}  {int(confusion[index].sum()):>8}")
    return "\n".join(lines)


def cross_modal_table(summary, class_names=None):
    """The human-readable table of one split's A2V / V2A accuracy.

    Args:
        summary: avdln_task.CrossModalTask.evaluate_batches' dict (a2v_accuracy, v2a_accuracy,
            evaluated).
        class_names: unused (the signature of metrics_table).
    Returns:
        str: one line per direction, with the number of videos evaluated.
    """
    evaluated = summary["evaluated"]
    return "\n".join(
        [
            "cross-modality localization (videos whose event covers every segment are skipped)",
            f"A2V accuracy   {summary['a2v_accuracy']:.4f}  ({evaluated} videos)",
            f"V2A accuracy   {summary['v2a_accuracy']:.4f}  ({evaluated} videos)",
        ]
    )


TABLES = {"segments": metrics_table, "cross_modal": cross_modal_table}


def table(kind, summary, class_names):
    """The table of a split's summary for a task's evaluation kind (Task.evaluation_kind).

    Args:
        kind: "segments" (classifiers) or "cross_modal".
        summary: the task's summary of one split.
        class_names: the K class names.
    Returns:
        str.
    """
    return TABLES[kind](summary, class_names)


NO_SEGMENTS = "no segments of this class in the split"  # the text across an empty row
COLOUR_BAR_LABEL = "share of the annotated class's segments (row-normalised)"


def save_confusion_png(confusion, class_names, path, title=""):
    """The row-normalised confusion matrix as a PNG.

    A row whose class has no segments in the split is hatched and says so (NO_SEGMENTS), not
    drawn like a row of 0 accuracy; each row's name carries its number of segments, and the
    colour bar is labelled (COLOUR_BAR_LABEL).

    Args:
        confusion: int array [K, K], counts[true, predicted].
        class_names: the K class names.
        path: the PNG to write.
        title: the figure's title.
    Returns:
        the path, or None when matplotlib (the plots extra) is absent.
    """
    if importlib.util.find_spec("matplotlib") is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patches
    import matplotlib.pyplot as plt

    from avsdn_tf import fileio  # TensorFlow's file system, loaded only to write

    confusion = np.asarray(confusion)
    rows = confusion.sum(axis=1)
    normalised = np.ma.masked_array(
        np.divide(confusion, np.maximum(rows, 1)[:, None]),
        mask=np.repeat(rows[:, None] == 0, len(rows), axis=1),
    )
    figure, axes = plt.subplots(figsize=(11, 10))
    image = axes.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    for index in np.flatnonzero(rows == 0):
        axes.add_patch(
            matplotlib.patches.Rectangle(
                (-0.5, index - 0.5),
                len(rows),
                1,
                facecolor="white",
                hatch="///",
                edgecolor="0.75",
                linewidth=0,
            )
        )
        axes.text(
            (len(rows) - 1) / 2,
            index,
            NO_SEGMENTS,
            ha="center",
            va="center",
            fontsize=7,
            color="0.3",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
        )
    axes.set_xticks(range(len(class_names)), class_names, rotation=90, fontsize=7)
    axes.set_yticks(
        range(len(class_names)),
        [f"{name} ({int(count)})" for name, count in zip(class_names, rows)],
        fontsize=7,
    )
    axes.set_xlabel("predicted")
    axes.set_ylabel("annotated (segments in the split)")
    axes.set_title(title or "confusion matrix (rows normalised)")
    bar = figure.colorbar(image, ax=axes, fraction=0.046)
    bar.set_label(COLOUR_BAR_LABEL)
    figure.tight_layout()
    try:
        fileio.write_png(path, figure, dpi=90)
    finally:
        plt.close(figure)
    return path
