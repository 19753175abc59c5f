"""The confusion-matrix PNG: a class without segments in the split is marked as such, not drawn
like a class of 0 accuracy, and the colour bar says what its colours mean (read back from the
saved image)."""

import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.training import report

from testlib import drawn_png

pytest.importorskip("matplotlib")

DPI = 90  # save_confusion_png's


def _render(tmp_path, monkeypatch, confusion):
    """The PNG decoded (float RGB [H, W, 3]) and the figure save_confusion_png drew."""
    return drawn_png(
        monkeypatch,
        lambda: report.save_confusion_png(
            confusion, constants.class_names(), str(tmp_path / "c.png")
        ),
    )


def _row_band(image, figure, axes, row):
    """The PNG's pixels of matrix row `row`, between its top and bottom edges (a margin off)."""
    scale = DPI / figure.dpi  # the transforms are at the figure's dpi, the PNG at DPI
    left, top = axes.transData.transform((-0.5, row - 0.5)) * scale
    right, bottom = (
        axes.transData.transform((len(constants.class_names()) - 0.5, row + 0.5)) * scale
    )
    height = image.shape[0]
    rows = slice(int(height - top) + 2, int(height - bottom) - 1)
    return image[rows, int(left) + 2 : int(right) - 1]


def _neutral_grey(pixels):
    spread = pixels.max(axis=-1) - pixels.min(axis=-1)
    return (spread < 0.03) & (pixels.mean(axis=-1) > 0.55) & (pixels.mean(axis=-1) < 0.9)


def test_a_class_without_segments_is_marked_not_drawn_as_zero_accuracy(tmp_path, monkeypatch):
    k = len(constants.class_names())
    confusion = np.diag(np.full(k, 7))
    confusion[3] = 0  # no segment of class 3 in the split
    confusion[4] = 0
    confusion[4, 0] = 5  # class 4: five segments, none right
    image, figure = _render(tmp_path, monkeypatch, confusion)
    matrix, bar = figure.axes
    empty, wrong = _row_band(image, figure, matrix, 3), _row_band(image, figure, matrix, 4)
    assert _neutral_grey(empty).mean() > 0.05  # hatched
    assert not _neutral_grey(wrong).any()  # drawn in the colour map's blues, as any row
    texts = [text.get_text() for text in matrix.texts]
    assert texts == [report.NO_SEGMENTS]
    names = [label.get_text() for label in matrix.get_yticklabels()]
    assert names[3] == f"{constants.class_names()[3]} (0)" and names[4].endswith(" (5)")
    assert bar.get_ylabel() == report.COLOUR_BAR_LABEL


def test_a_matrix_with_every_class_has_no_mark(tmp_path, monkeypatch):
    k = len(constants.class_names())
    image, figure = _render(tmp_path, monkeypatch, np.diag(np.arange(1, k + 1)))
    matrix = figure.axes[0]
    assert len(matrix.texts) == 0 and image.std() > 0.05
    assert not any(_neutral_grey(_row_band(image, figure, matrix, row)).any() for row in range(k))
