"""The timeline PNG draws each frame at its own aspect ratio (read back from the saved image)."""

import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.inference import timeline

from testlib import drawn_png

pytest.importorskip("matplotlib")


def _drawn_frames(path):
    """(width, height) in pixels of each pure-red frame drawn in the PNG at `path`."""
    import matplotlib.image

    image = matplotlib.image.imread(path)[..., :3]
    red = (image[..., 0] > 0.95) & (image[..., 1] < 0.05) & (image[..., 2] < 0.05)
    columns = np.flatnonzero(red.any(axis=0))
    groups = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    sizes = []
    for group in groups:
        rows = np.flatnonzero(red[:, group].any(axis=1))
        sizes.append((len(group), rows.max() - rows.min() + 1))
    return sizes


@pytest.mark.parametrize(
    "seconds, frame_shape", [(10, (224, 224)), (10, (360, 640)), (3, (224, 224)), (40, (48, 64))]
)
def test_timeline_frames_keep_their_aspect_ratio(tmp_path, seconds, frame_shape):
    height, width = frame_shape
    frame = np.zeros((height, width, 3), np.uint8)
    frame[..., 0] = 255
    predicted = np.full(seconds, constants.BACKGROUND)
    predicted[1:3] = 2
    path = timeline.save_timeline(
        str(tmp_path / "timeline.png"),
        predicted,
        truth=predicted,
        probabilities=np.full(seconds, 0.5),
        thumbnails=[frame] * seconds,
    )
    sizes = _drawn_frames(path)
    assert len(sizes) == min(seconds, 12)
    for drawn_width, drawn_height in sizes:
        assert drawn_height > 10
        # Within the rounding of a frame's edges to whole pixels.
        assert drawn_width / drawn_height == pytest.approx(width / height, abs=2.5 / drawn_height)


def _render(tmp_path, monkeypatch, predicted, **kwargs):
    """save_timeline's PNG decoded (float RGB [H, W, 3]) and the figure it drew."""
    image, figure = drawn_png(
        monkeypatch,
        lambda: timeline.save_timeline(str(tmp_path / "t.png"), np.asarray(predicted), **kwargs),
    )
    width, height = figure.get_size_inches() * 100  # saved at 100 dpi
    assert image.shape[:2] == (round(height), round(width)) and image.std() > 0.05  # not blank
    return image, figure


def _pixels_of(image, rgb, tolerance=0.01):
    return (np.abs(image - np.asarray(rgb[:3])) <= tolerance).all(axis=-1)


def test_names_are_not_crossed_by_cell_borders_and_each_second_stays_marked(tmp_path, monkeypatch):
    event = 5  # "Female speech, woman speaking": a long name across 10 one-second cells
    image, _ = _render(tmp_path, monkeypatch, np.full(10, event))
    rows, columns = np.nonzero(_pixels_of(image, timeline.colour(event)))
    top, bottom, left, right = rows.min(), rows.max(), columns.min(), columns.max()
    white = (image > 0.95).all(axis=-1)
    # Across the middle of the row, where the name is, no white border between the cells.
    middle = white[(top + bottom) // 2, left : right + 1]
    assert not middle.any()
    # At the row's top edge, a white mark at each of the 9 inner seconds.
    edge = white[top + 1, left : right + 1].astype(int)
    assert np.count_nonzero(np.diff(edge) == 1) == 9


def test_background_is_named_in_a_legend_above_the_rows(tmp_path, monkeypatch):
    predicted = np.full(10, constants.BACKGROUND)
    predicted[3:6] = 2
    image, figure = _render(tmp_path, monkeypatch, predicted, truth=predicted)
    legends = [axes.get_legend() for axes in figure.axes if axes.get_legend()]
    assert [t.get_text() for legend in legends for t in legend.get_texts()] == [
        timeline.BACKGROUND_LEGEND
    ]
    grey = np.nonzero(_pixels_of(image, timeline.colour(constants.BACKGROUND)))[0]
    event_top = np.nonzero(_pixels_of(image, timeline.colour(2)))[0].min()
    assert grey.min() < event_top - 5  # the legend's grey swatch, above the top row


def test_the_probability_strip_has_a_labelled_axis_with_ticks(tmp_path, monkeypatch):
    probabilities = np.linspace(0.55, 0.95, 12)
    image, figure = _render(tmp_path, monkeypatch, np.full(12, 2), probabilities=probabilities)
    (strip,) = [axes for axes in figure.axes if axes.get_ylabel() == timeline.PROBABILITY_LABEL]
    assert {0.0, 0.5, 1.0} <= set(strip.get_yticks()) and strip.get_ylim() == (0, 1.05)
    assert [label.get_text() for label in strip.get_yticklabels() if label.get_text()] == [
        "0",
        "0.5",
        "1",
    ]
    assert list(strip.get_xticks()) == list(range(13))  # seconds, as the rows above
    # the strip is drawn: its line's dots span the probabilities' range, not a flat line
    ((_, ys),) = [line.get_data() for line in strip.get_lines() if line.get_marker() == "o"]
    np.testing.assert_allclose(ys, probabilities)
    low, high = (strip.transData.transform((0.5, p))[1] for p in (0.55, 0.95))
    assert high - low > 30  # pixels between the lowest and the highest probability
