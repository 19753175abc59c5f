"""The timeline PNG draws each frame at its own aspect ratio (read back from the saved image)."""

import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.inference import timeline

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
