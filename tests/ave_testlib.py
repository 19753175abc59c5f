"""A small AVE-format release folder, as the official one is laid out, for the prepare tests.

The same file names, keys, dtypes and layouts as the release, a handful of videos of real
categories and seeded random features, plus the quirks of the real files: a duplicated video id,
a zero-length event, a header line and CRLF line ends.
"""

from pathlib import Path

import h5py
import numpy as np

from avsdn_tf import constants
from avsdn_tf.data import annotations, ave_release

T = constants.NUM_SEGMENTS
AUDIO_DIM = 128
MAP_SHAPE = (2, 2, 4)
VECTOR_SHAPE = (6,)
NOISY_VIDEOS = 3

# (category, video id, start, end): 14 rows of real categories.
ROWS = [
    ("Church bell", "cb_full", 0, 10),
    ("Church bell", "cb_zero", 0, 0),  # the release's zero-length event: all background
    ("Bark", "dup_id", 2, 6),  # the same video id on two rows, two different events
    ("Banjo", "dup_id", 0, 10),
    ("Ukulele", "uke", 3, 4),
    ("Goat", "goat", 5, 10),
    ("Cat", "cat", 0, 3),
    ("Horse", "horse", 1, 9),
    ("Mandolin", "mando", 4, 7),
    ("Male speech, man speaking", "speech", 0, 10),
    ("Train horn", "train_horn", 6, 8),
    ("Clock", "clock", 2, 3),
    ("Frying (food)", "fry", 0, 5),
    ("Toilet flush", "flush", 7, 10),
]
# Row indices per split, deliberately not sorted (the release's order files are not either).
ORDER = {"train": [5, 0, 3, 2, 9, 1, 12, 7], "val": [4, 13, 11], "test": [10, 6, 8]}


def write_h5(path, value, key=constants.H5_KEY):
    with h5py.File(path, "w") as handle:
        handle.create_dataset(key, data=value)


def write_ave_dir(
    directory, layout="map", noisy=True, header=False, crlf=False, seed=0, vector_shape=VECTOR_SHAPE
):
    """An AVE-format release in `directory`; returns the arrays written, for comparisons.

    vector_shape: the visual vectors' shape with layout "vector" ((512,) for the AVE authors'
    cross-modality weights).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = constants.category_names()
    n = len(ROWS)
    visual_shape = MAP_SHAPE if layout == "map" else tuple(vector_shape)
    lines = [f"{category}&{video}&good&{start}&{end}" for category, video, start, end in ROWS]
    if header:
        lines.insert(0, annotations.HEADER)
    newline = "\r\n" if crlf else "\n"
    (directory / "Annotations.txt").write_bytes((newline.join(lines) + newline).encode())

    audio = rng.normal(0.1, 0.3, size=(n, T, AUDIO_DIM))  # float64, as the release has it
    visual = rng.gamma(1.0, 0.5, size=(n, T, *visual_shape)).astype(np.float32)
    segment_labels = np.stack(
        [
            annotations.segment_labels(annotations.Annotation(c, v, "good", s, e), names.index(c))
            for c, v, s, e in ROWS
        ]
    )
    labels = np.eye(constants.NUM_CLASSES, dtype=np.float32)[segment_labels]  # (n, T, 29) one-hot
    write_h5(directory / "audio_feature.h5", audio)
    write_h5(directory / ave_release.VISUAL_FILE, visual)
    write_h5(directory / "labels.h5", labels)
    for split, order in ORDER.items():
        write_h5(
            directory / f"{split}_order.h5", np.asarray(order, np.int64), key=constants.ORDER_KEY
        )

    written = {
        "audio": audio,
        "visual": visual,
        "labels": segment_labels,
        "visual_shape": visual_shape,
    }
    if noisy:
        noisy_labels = np.zeros((NOISY_VIDEOS, constants.NUM_CLASSES), np.float32)
        noisy_labels[:, constants.BACKGROUND] = 1.0  # video-level, as labels_noisy.h5 is
        noisy_audio = rng.normal(size=(NOISY_VIDEOS, T, AUDIO_DIM))
        noisy_visual = rng.gamma(1.0, 0.5, size=(NOISY_VIDEOS, T, *visual_shape)).astype(np.float32)
        write_h5(directory / "labels_noisy.h5", noisy_labels)
        write_h5(directory / "audio_feature_noisy.h5", noisy_audio)
        write_h5(directory / "visual_feature_noisy.h5", noisy_visual)
        written.update(noisy_audio=noisy_audio, noisy_visual=noisy_visual)
    return written


# Row indices of the cross-modality (A2V / V2A) splits, as the release's *_order_match.h5 files.
MATCH_ORDER = {"train": [0, 4, 10, 7], "val": [13, 2], "test": [6, 5, 1]}


def write_match_files(directory, order=MATCH_ORDER):
    """The *_order_match.h5 files of the splits in `order` ({split: row indices})."""
    for split, rows in order.items():
        write_h5(
            Path(directory) / f"{split}_order_match.h5",
            np.asarray(rows, np.int64),
            key=constants.ORDER_KEY,
        )
