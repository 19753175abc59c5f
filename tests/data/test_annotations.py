"""The AVE annotation files, checked against the real release files in ../shared/data/ave/.

The packaged copies in avsdn_tf/resources are tested always; the comparisons with the release's
h5 files (order files, labels_closs.h5, mil_labels.h5) are skipped when the real files are absent.
"""

import collections

import h5py
import numpy as np
import pytest

from avsdn_tf import constants
from avsdn_tf.data import annotations
from avsdn_tf.errors import UserError

from testlib import REAL_AVE, needs_real_ave

SPLIT_FILES = {"train": "trainSet.txt", "val": "valSet.txt", "test": "testSet.txt"}
SPLIT_SIZES = {"train": 3339, "val": 402, "test": 402}
ZERO_LENGTH_ROW = "Church bell&VWi2ENBuTbw&good&0&0"

needs_real = needs_real_ave("Annotations.txt")
RELEASE_TEXT_FILES = [
    "Annotations.txt",
    "trainSet.txt",
    "valSet.txt",
    "testSet.txt",
    "categories.txt",
]


def real_h5(name, key=constants.H5_KEY):
    with h5py.File(REAL_AVE / name, "r") as handle:
        return handle[key][()]


@pytest.fixture(scope="module")
def rows():
    return annotations.packaged_annotations()


@pytest.fixture(scope="module")
def labels(rows):
    """Segment labels [4143, 10] and category indices rebuilt from Annotations.txt."""
    names = constants.category_names()
    categories = np.asarray([annotations.category_index(row, names) for row in rows])
    segments = np.stack(
        [annotations.segment_labels(row, category) for row, category in zip(rows, categories)]
    )
    return segments, categories


# --------------------------------------------------------------------------------------------
# The files themselves.


@needs_real_ave(*RELEASE_TEXT_FILES)
@pytest.mark.parametrize("name", RELEASE_TEXT_FILES)
def test_packaged_copies_equal_the_real_files(name):
    assert constants.resource_text(name) == (REAL_AVE / name).read_text()


@needs_real
def test_real_annotations_parse_like_the_packaged_copy(rows):
    assert annotations.read_annotations(str(REAL_AVE / "Annotations.txt")) == rows


def test_annotations_rows_and_ids(rows):
    assert len(rows) == 4143
    counts = collections.Counter(row.video_id for row in rows)
    assert len(counts) == 4097
    repeated = {video: count for video, count in counts.items() if count > 1}
    # The data README says "45 ids appear twice"; exactly: 45 ids repeat, 44 of them twice and
    # one three times (4097 + 44 + 2 = 4143), each repeat a different event of the same video.
    assert len(repeated) == 45
    assert collections.Counter(repeated.values()) == {2: 44, 3: 1}
    assert [row.category for row in rows if row.video_id == "0f_iTO5t3hU"] == [
        "Ukulele",
        "Banjo",
        "Mandolin",
    ]
    for video in repeated:
        events = [(row.category, row.start, row.end) for row in rows if row.video_id == video]
        assert len(set(events)) == len(events)  # never the same row twice
    assert len(set(rows)) == len(rows)


def test_categories(rows):
    names = constants.category_names()
    assert len(names) == constants.NUM_EVENT_CLASSES == 28
    assert names[0] == "Church bell" and names[-1] == "Mandolin"
    assert constants.class_names()[constants.BACKGROUND] == "background"
    assert {row.category for row in rows} == set(names)


def test_split_files(rows):
    splits = {split: annotations.packaged_annotations(name) for split, name in SPLIT_FILES.items()}
    assert {split: len(value) for split, value in splits.items()} == SPLIT_SIZES
    orders = {split: annotations.split_order(rows, value) for split, value in splits.items()}
    for split, order in orders.items():
        assert [rows[i] for i in order] == splits[split]  # row i of the split file == its row
    together = np.concatenate(list(orders.values()))
    assert sorted(together.tolist()) == list(range(len(rows)))  # every row in exactly one split
    # The thrice-annotated video sits in two splits: twice in train, once in test.
    split_of = {
        split: [rows[i].category for i in order if rows[i].video_id == "0f_iTO5t3hU"]
        for split, order in orders.items()
    }
    assert split_of == {"train": ["Ukulele", "Banjo"], "val": [], "test": ["Mandolin"]}


@needs_real_ave("train_order.h5", "val_order.h5", "test_order.h5")
@pytest.mark.parametrize("split", sorted(SPLIT_FILES))
def test_split_order_equals_the_release_order_files(rows, split):
    expected = real_h5(f"{split}_order.h5", key=constants.ORDER_KEY)
    assert expected.dtype == np.int64 and expected.shape == (SPLIT_SIZES[split],)
    order = annotations.split_order(rows, annotations.packaged_annotations(SPLIT_FILES[split]))
    np.testing.assert_array_equal(order, expected)
    assert order.dtype == np.int64


@needs_real_ave("labels_closs.h5")
def test_segment_labels_match_labels_closs(rows, labels):
    segments, categories = labels
    closs = real_h5("labels_closs.h5")
    assert closs.shape == (len(rows), constants.NUM_SEGMENTS) and closs.dtype == np.float32
    np.testing.assert_array_equal((segments != constants.BACKGROUND).astype(np.float32), closs)
    # Inside the event the label is the row's category, outside it background.
    np.testing.assert_array_equal(
        np.where(closs == 1.0, categories[:, None], constants.BACKGROUND), segments
    )


@needs_real_ave("mil_labels.h5")
def test_video_labels_match_mil_labels(rows, labels):
    _, categories = labels
    mil = real_h5("mil_labels.h5")
    assert mil.shape == (len(rows), constants.NUM_CLASSES)
    rebuilt = np.stack([annotations.video_label_vector(category) for category in categories])
    np.testing.assert_array_equal(rebuilt, mil)
    assert (mil[:, constants.BACKGROUND] == 0).all()


def test_background_share_of_test_segments():
    names = constants.category_names()
    test = annotations.packaged_annotations("testSet.txt")
    segments = np.stack(
        [annotations.segment_labels(row, annotations.category_index(row, names)) for row in test]
    )
    assert segments.shape == (402, constants.NUM_SEGMENTS)
    assert (segments == constants.BACKGROUND).mean() == pytest.approx(0.178, abs=0.001)


def test_event_bounds(rows, labels):
    segments, _ = labels
    lengths = np.asarray([row.end - row.start for row in rows])
    np.testing.assert_array_equal((segments != constants.BACKGROUND).sum(1), lengths)
    assert all(0 <= row.start <= row.end <= constants.NUM_SEGMENTS for row in rows)


# --------------------------------------------------------------------------------------------
# Quirks.


def test_zero_length_event(rows, labels):
    segments, categories = labels
    zero = [i for i, row in enumerate(rows) if row.start == row.end]
    assert len(zero) == 1
    row = zero[0]
    assert (
        "&".join([rows[row].category, rows[row].video_id, rows[row].quality, "0", "0"])
        == ZERO_LENGTH_ROW
    )
    np.testing.assert_array_equal(
        segments[row], np.full(constants.NUM_SEGMENTS, constants.BACKGROUND)
    )
    assert categories[row] == constants.category_names().index("Church bell")
    train = annotations.split_order(rows, annotations.packaged_annotations("trainSet.txt"))
    assert row in train


@needs_real_ave("labels_closs.h5", "mil_labels.h5")
def test_zero_length_event_in_the_release_labels(rows):
    row = next(i for i, row in enumerate(rows) if row.start == row.end)
    assert (real_h5("labels_closs.h5")[row] == 0).all()  # no event segment at all
    assert real_h5("mil_labels.h5")[row].argmax() == 0  # yet the video label is Church bell


def test_header_line_and_crlf_are_accepted(rows):
    text = constants.resource_text("Annotations.txt")
    assert not text.startswith(annotations.HEADER)  # this copy has no header
    with_header = annotations.HEADER + "\n" + text
    crlf = with_header.replace("\n", "\r\n")
    assert annotations.parse_annotations(with_header) == rows
    assert annotations.parse_annotations(crlf) == rows
    assert annotations.parse_annotations(text.replace("\n", "\r\n")) == rows
    assert (
        annotations.parse_annotations(
            "\n" + annotations.HEADER + "\r\n\r\n" + "\n".join(text.splitlines()[:3])
        )
        == rows[:3]
    )


def test_read_annotations_from_a_crlf_file_with_header(tmp_path, rows):
    path = tmp_path / "Annotations.txt"
    path.write_bytes(
        (
            "\r\n".join(
                [annotations.HEADER] + constants.resource_text("Annotations.txt").splitlines()
            )
            + "\r\n"
        ).encode()
    )
    assert annotations.read_annotations(str(path)) == rows
    with pytest.raises(UserError, match="nowhere.txt: file not found"):
        annotations.read_annotations(str(tmp_path / "nowhere.txt"))


GOOD = "Church bell&RUhOCu3LNXM&good&0&10"


@pytest.mark.parametrize(
    "bad, line, expected",
    [
        ("Church bell&RUhOCu3LNXM&good&0", 2, "expected 5 '&'-separated fields"),
        ("Church bell&RUhOCu3LNXM&good&0&10&x", 2, "expected 5 '&'-separated fields"),
        ("Church bell&RUhOCu3LNXM&good&zero&10", 2, "expected integer StartTime and EndTime"),
        ("Church bell&RUhOCu3LNXM&good&0&9.5", 2, "expected integer StartTime and EndTime"),
        (
            "Church bell&RUhOCu3LNXM&good&6&2",
            2,
            "expected 0 <= StartTime <= EndTime <= 10, found 6 and 2",
        ),
        (
            "Church bell&RUhOCu3LNXM&good&0&11",
            2,
            "expected 0 <= StartTime <= EndTime <= 10, found 0 and 11",
        ),
        ("Church bell&RUhOCu3LNXM&good&-1&3", 2, "expected 0 <= StartTime <= EndTime <= 10"),
        (annotations.HEADER, 2, "expected integer StartTime"),  # a header is only allowed first
    ],
)
def test_bad_rows_name_the_line(bad, line, expected):
    with pytest.raises(UserError) as error:
        annotations.parse_annotations(f"{GOOD}\n{bad}\n{GOOD}\n", source="my_annotations.txt")
    message = str(error.value)
    assert message.startswith(f"my_annotations.txt line {line}: ")
    assert expected in message


def test_bad_row_line_numbers_count_header_and_blank_lines():
    text = f"{annotations.HEADER}\r\n{GOOD}\r\n\r\n{GOOD}\r\nBark&x&good&3\r\n"
    with pytest.raises(UserError, match=r"^Annotations.txt line 5: expected 5"):
        annotations.parse_annotations(text)


def test_unknown_category_and_unknown_split_row(rows):
    row = annotations.parse_annotations("Kazoo&abc&good&0&10")[0]
    with pytest.raises(
        UserError, match="my.txt: expected a category from the 28 AVE categories, found 'Kazoo'"
    ):
        annotations.category_index(row, constants.category_names(), source="my.txt")
    with pytest.raises(UserError, match="rows that appear in Annotations.txt"):
        annotations.split_order(rows, [row])
    # Each Annotations.txt row can be claimed once: a split file listing a row twice is an error.
    with pytest.raises(UserError, match="rows that appear in Annotations.txt"):
        annotations.split_order(rows, [rows[0], rows[0]])


def test_segment_and_video_labels_of_one_row():
    row = annotations.parse_annotations("Bark&abc&good&3&6")[0]
    category = constants.category_names().index("Bark")
    labels = annotations.segment_labels(row, category)
    assert labels.tolist() == [28, 28, 28, category, category, category, 28, 28, 28, 28]
    assert labels.dtype == np.int64
    vector = annotations.video_label_vector(category)
    assert vector.shape == (29,) and vector[category] == 1.0 and vector.sum() == 1.0
