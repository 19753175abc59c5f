"""The HTML writer of inference/viewer.py, read back with Python's HTML parser (no browser)."""

import html.parser
import json
import os
import re

import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.errors import UserError
from avsdn_tf.inference import timeline, viewer

from viewer_testlib import prediction

pytest.importorskip("matplotlib")

HOSTILE = "<img src=x onerror=\"alert('&')\">"


class _Cells(html.parser.HTMLParser):
    """Collects each row's cells (data-second, title, text), the <script> bodies, the text of
    every element by tag, every start tag with its attributes, and table rows (cell texts)."""

    def __init__(self, text):
        super().__init__()
        self.rows, self.scripts, self.tags, self.texts = {}, [], [], {}
        self.table_rows = []
        self._row, self._cell, self._stack = None, None, []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        self._stack.append(tag)
        if tag == "tr":
            self.table_rows.append([])
        if tag in ("td", "th") and self.table_rows:
            self.table_rows[-1].append("")
        if "data-row" in attrs:
            self._row = self.rows.setdefault(attrs["data-row"], [])
        if "data-second" in attrs and self._row is not None:
            self._cell = {**attrs, "text": ""}
            self._row.append(self._cell)

    def handle_endtag(self, tag):
        if self._stack and self._stack[-1] == tag:
            self._stack.pop()
        if tag == "div":
            self._cell = None

    def handle_data(self, data):
        if self.table_rows and self.table_rows[-1] and set(self._stack) & {"td", "th"}:
            self.table_rows[-1][-1] += data
        if self._cell is not None:
            self._cell["text"] += data
        if self._stack:
            self.texts.setdefault(self._stack[-1], []).append(data)
            if self._stack[-1] == "script":
                self.scripts.append(data)


def _names(hostile_class):
    names = list(constants.class_names())
    names[hostile_class] = HOSTILE
    return names


def test_names_are_escaped_and_cells_name_their_classes(tmp_path):
    names = _names(2)
    video = tmp_path / f"{HOSTILE}.mp4"
    video.write_bytes(b"")
    result = prediction(str(video), [28, 2, 2, 5], names, truth=[28, 2, 28, 28])
    page = viewer.video_page(result, names, os.path.basename(video))
    parsed = _Cells(page)
    assert [c["text"] for c in parsed.rows["prediction"]] == [names[c] for c in (28, 2, 2, 5)]
    assert [c["text"] for c in parsed.rows["truth"]] == [names[c] for c in (28, 2, 28, 28)]
    assert [c["data-second"] for c in parsed.rows["prediction"]] == ["0", "1", "2", "3"]
    assert parsed.rows["prediction"][1]["title"].startswith(f"1\u20132 s: {HOSTILE} (p ")
    assert [tag for tag, _ in parsed.tags].count("img") == 0  # the name made no element
    assert HOSTILE in parsed.texts["h1"]
    (source,) = [attrs["src"] for tag, attrs in parsed.tags if tag == "video"]
    assert source == "%3Cimg%20src%3Dx%20onerror%3D%22alert%28%27%26%27%29%22%3E.mp4"
    # The data the script reads: no '<' that could close the <script>, and the names intact.
    data = next(s for s in parsed.scripts if s.startswith("{"))
    assert "<" not in data and ">" not in data and "&" not in data
    decoded = json.loads(data)
    assert decoded["classes"][2] == HOSTILE and decoded["prediction"] == [28, 2, 2, 5]
    assert decoded["truth"] == [28, 2, 28, 28]


def test_cells_take_the_png_timelines_colours():
    names = constants.class_names()
    page = viewer.timeline_html(np.array([28, 0, 7]), names)
    styles = [c["style"] for c in _Cells(page).rows["prediction"]]
    for style, label in zip(styles, (28, 0, 7), strict=True):
        red, green, blue = (round(255 * c) for c in timeline.colour(label)[:3])
        assert f"background:#{red:02x}{green:02x}{blue:02x}" in style
    assert styles[0].startswith("background:#ebebeb")  # the PNG's light grey background


def test_top_classes_per_second_are_the_most_probable_in_order(tmp_path):
    names = constants.class_names()
    result = prediction(str(tmp_path / "v.mp4"), [3, 28], names, seed=4)
    data = json.loads(
        next(s for s in _Cells(viewer.video_page(result, names, "v.mp4")).scripts if "{" in s[:1])
    )
    probabilities = np.asarray(result["probabilities"])
    for k in range(2):
        expected = sorted(range(29), key=lambda c: -probabilities[k, c])[: viewer.TOP_CLASSES]
        assert [c for c, _ in data["top"][k]] == expected
        assert [p for _, p in data["top"][k]] == pytest.approx(probabilities[k, expected], abs=1e-4)


@pytest.mark.parametrize("seconds", [1, 600])
def test_one_second_and_ten_minute_videos(tmp_path, seconds):
    names = constants.class_names()
    predicted = np.arange(seconds) % 29
    result = prediction(str(tmp_path / "long.mp4"), predicted, names, truth=predicted[::-1])
    page = viewer.video_page(result, names, "long.mp4")
    parsed = _Cells(page)
    for row, labels in (("prediction", predicted), ("truth", predicted[::-1])):
        cells = parsed.rows[row]
        assert [int(c["data-second"]) for c in cells] == list(range(seconds))
        assert [c["text"] for c in cells] == [names[label] for label in labels]
    # Cells never shrink below a readable width; the timeline scrolls sideways instead.
    assert viewer.CELL_MIN_WIDTH_PX >= 40
    assert f"--cell-min: {viewer.CELL_MIN_WIDTH_PX}px" in page
    assert re.search(r"\.cell \{[^}]*min-width: var\(--cell-min\)", page)
    assert re.search(r"\.timeline \{[^}]*overflow-x: auto", page)


def test_probabilities_of_the_wrong_shape_are_one_clear_error(tmp_path):
    names = constants.class_names()
    result = prediction(str(tmp_path / "v.mp4"), [1, 2], names)
    result["seconds"] = 3
    with pytest.raises(UserError) as caught:
        viewer.video_page(result, names, "v.mp4")
    assert str(caught.value) == (
        "prediction of v field probabilities: expected [3, 29] (seconds x classes), found [2, 29]"
    )
    result["seconds"] = 2
    result["segments"].pop()
    with pytest.raises(UserError) as caught:
        viewer.video_page(result, names, "v.mp4")
    assert str(caught.value) == (
        "prediction of v field segments: expected 2 segments (one per second), found 1"
    )


def test_cells_show_the_segments_labels_of_the_json(tmp_path):
    """The cells name the JSON's segment labels, also where its rounded probabilities tie."""
    names = constants.class_names()
    result = prediction(str(tmp_path / "v.mp4"), [4, 9], names)
    result["probabilities"] = [[0.5 if c in (4, 9) else 0.0 for c in range(29)]] * 2
    parsed = _Cells(viewer.video_page(result, names, "v.mp4"))
    assert [c["text"] for c in parsed.rows["prediction"]] == [names[4], names[9]]


def test_index_lists_every_prediction_in_the_directory(tmp_path):
    names = _names(4)
    out = tmp_path / "out"
    out.mkdir()
    first = prediction(str(tmp_path / "b&b.mp4"), [4, 4, 28], names, truth=[4, 28, 28])
    second = prediction(str(tmp_path / "a.mp4"), [28], names)
    for result in (first, second):
        (out / f"{result['video_id']}.json").write_text(json.dumps(result))
    (out / "other.json").write_text('{"not": "a prediction"}')
    (out / "broken.json").write_text("{")
    parsed = _Cells(open(viewer.write_index(str(out))).read())
    links = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert links == ["a.html", "b%26b.html"]
    assert parsed.table_rows == [
        ["video", "duration", "events", "frame-wise accuracy"],
        ["a", "1.0 s", "none (background throughout)", "\u2014"],
        ["b&b", "3.0 s", f"{HOSTILE} 0\u20132 s", "0.667"],
    ]


def test_video_source_is_relative_to_the_pages(tmp_path):
    video = tmp_path / "videos" / "clip.mp4"
    assert viewer.video_source(str(video), str(tmp_path / "out")) == "../videos/clip.mp4"


def test_worst_videos_drop_padding_and_sort_by_accuracy():
    pad = constants.PAD_LABEL
    labels = np.array([[1, 1, 1, 1], [2, 2, pad, pad], [3, 3, 3, 28]])
    predictions = np.array([[1, 1, 1, 28], [5, 5, pad, pad], [28, 28, 3, 28]])
    probabilities = np.full((3, 4, 29), 0.01)
    worst = viewer.worst_videos(["x", "y", "z"], labels, predictions, probabilities, count=2)
    assert [(v["video_id"], v["accuracy"]) for v in worst] == [("y", 0.0), ("z", 0.5)]
    assert worst[0]["labels"].tolist() == [2, 2] and worst[0]["predictions"].tolist() == [5, 5]


def test_evaluation_page_shows_accuracies_confusion_and_the_worst_timelines():
    names = _names(1)
    confusion = np.zeros((29, 29), int)
    confusion[1, 1], confusion[1, 28], confusion[28, 28] = 3, 1, 4
    summary = {
        "accuracy": 7 / 8,
        "segments": 8,
        "videos": 2,
        "mean_class_accuracy": 0.875,
        "per_class_accuracy": {name: None for name in names} | {names[1]: 0.75, names[28]: 1.0},
        "confusion_matrix": confusion.tolist(),
    }
    worst = viewer.worst_videos(
        ["v1", "v2"],
        np.array([[1, 1, 1, 1], [28, 28, 28, 28]]),
        np.array([[1, 1, 1, 28], [28, 28, 28, 28]]),
        np.full((2, 4, 29), 0.5),
    )
    page = viewer.evaluation_page(summary, names, worst, "run on test")
    parsed = _Cells(page)
    assert "<strong>0.8750</strong> over 8 segments of 2 videos" in page
    # Worst first: v1 (0.75) then v2 (1.0), each truth above prediction.
    assert [c["text"] for c in parsed.rows["truth"]] == [names[1]] * 4 + [names[28]] * 4
    assert [c["text"] for c in parsed.rows["prediction"]] == (
        [names[1]] * 3 + [names[28]] + [names[28]] * 4
    )
    tables = parsed.table_rows
    per_class = {row[0].strip(): row[1:] for row in tables if len(row) == 3}
    assert per_class[HOSTILE] == ["4", "0.750"]
    assert per_class[names[28]] == ["4", "1.000"] and per_class[names[0]] == ["0", "\u2014"]
    matrix = {row[0]: row[1:] for row in tables if len(row) == 30}
    assert matrix[HOSTILE][1] == "3" and matrix[HOSTILE][28] == "1"
    assert matrix[names[28]][28] == "4" and matrix[names[0]] == [""] * 29
    assert [tag for tag, _ in parsed.tags].count("img") == 0


def test_a_full_disk_while_writing_a_page_names_it_and_leaves_nothing(tmp_path, monkeypatch):
    import errno

    import tensorflow as tf

    names = constants.class_names()
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    out = tmp_path / "out"
    out.mkdir()
    original = tf.io.gfile.GFile.write

    def write(self, data):
        if ".html.tmp-" not in self.name:
            return original(self, data)
        original(self, data[:100])
        self.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tf.io.gfile.GFile, "write", write)
    with pytest.raises(UserError) as caught:
        viewer.write_video_page(prediction(str(video), [1, 28], names), names, str(out))
    assert str(caught.value) == (
        f"{out / 'clip.html'}: expected free space to write it, found No space left on device"
        " (ENOSPC)"
    )
    assert os.listdir(out) == []
