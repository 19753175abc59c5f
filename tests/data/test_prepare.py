"""prepare: small AVE-format directories written here, converted, read back and compared.

Every directory mimics the official release (same file names, keys, dtypes and layouts) with a
handful of videos of real categories and seeded random features, plus the quirks of the real
files: a duplicated video id, a zero-length event, a header line and CRLF line ends.
"""

import hashlib
import json
import os
import shutil

import h5py
import numpy as np
import pytest

from avsdn_tf import constants, dataset_info, prepare
from avsdn_tf.data import ave_release
from avsdn_tf.errors import UserError

from ave_testlib import (
    AUDIO_DIM,
    MAP_SHAPE,
    MATCH_ORDER,
    NOISY_VIDEOS,
    ORDER,
    ROWS,
    VECTOR_SHAPE,
    T,
    write_ave_dir,
    write_h5,
    write_match_files,
)
from testlib import (
    REAL_AVE,
    command_env,
    needs_real_ave,
    one_error_line,
    read_records,
    run_command,
    run_in_process,
)


def row_of(video):
    """The Annotations.txt row of a decoded record (id + category + event is unique in ROWS)."""
    names = constants.category_names()
    key = (
        video["video_id"].decode(),
        int(video["category"]),
        int(video["event_start"]),
        int(video["event_end"]),
    )
    matches = [i for i, (c, v, s, e) in enumerate(ROWS) if (v, names.index(c), s, e) == key]
    assert len(matches) == 1, key
    return matches[0]


def run(ave_dir, output_dir, **kwargs):
    return ave_release.prepare(str(ave_dir), str(output_dir), verbose=0, **kwargs)


def assert_release_round_trip(output_dir, written):
    names = constants.category_names()
    for split, order in ORDER.items():
        videos = read_records(output_dir, split)
        assert sorted(row_of(video) for video in videos) == sorted(order)
        for video in videos:
            row = row_of(video)
            category, _, start, end = ROWS[row]
            assert video["category"] == names.index(category)
            assert video["video_label"] == names.index(category)
            assert (video["event_start"], video["event_end"]) == (start, end)
            np.testing.assert_array_equal(video["audio"], written["audio"][row].astype(np.float32))
            assert video["audio"].dtype == np.float32
            np.testing.assert_array_equal(video["visual"], written["visual"][row])
            np.testing.assert_array_equal(video["label"], written["labels"][row])


# --------------------------------------------------------------------------------------------
# Conversions that succeed.


@pytest.mark.parametrize("layout", ["map", "vector"])
def test_round_trip_with_noisy_split(tmp_path, layout):
    written = write_ave_dir(tmp_path / "ave", layout=layout)
    summary = run(tmp_path / "ave", tmp_path / "out", videos_per_shard=3, chunk_videos=4)
    out = tmp_path / "out"
    assert_release_round_trip(out, written)

    noisy = sorted(read_records(out, constants.NOISY_SPLIT), key=lambda video: video["video_id"])
    assert [video["video_id"].decode() for video in noisy] == [
        "noisy_0000",
        "noisy_0001",
        "noisy_0002",
    ]
    for index, video in enumerate(noisy):
        assert video["category"] == constants.NO_CATEGORY
        assert (video["event_start"], video["event_end"]) == (0, 0)
        assert video["video_label"] == constants.BACKGROUND
        np.testing.assert_array_equal(video["label"], np.full(T, constants.BACKGROUND))
        np.testing.assert_array_equal(
            video["audio"], written["noisy_audio"][index].astype(np.float32)
        )
        np.testing.assert_array_equal(video["visual"], written["noisy_visual"][index])

    info = json.loads((out / constants.DATASET_INFO_FILE).read_text())
    assert info["audio_dim"] == AUDIO_DIM
    assert info["visual_shape"] == list(written["visual_shape"])
    assert info["visual_layout"] == (
        constants.LAYOUT_MAP if layout == "map" else constants.LAYOUT_VECTOR
    )
    assert info["num_segments"] == T
    assert info["class_names"] == constants.class_names()
    assert info["generator"] == "prepare"
    assert {split: value["videos"] for split, value in info["splits"].items()} == {
        "train": 8,
        "val": 3,
        "test": 3,
        "noisy": NOISY_VIDEOS,
    }
    assert info["splits"]["train"]["shards"] == [
        f"train-0000{i}-of-00003.tfrecord" for i in range(3)
    ]
    for value in info["splits"].values():
        assert all((out / name).is_file() for name in value["shards"])
    expected_sources = {
        "Annotations.txt",
        "audio_feature.h5",
        "visual_feature.h5",
        "labels.h5",
        "train_order.h5",
        "val_order.h5",
        "test_order.h5",
        "labels_noisy.h5",
        "audio_feature_noisy.h5",
        "visual_feature_noisy.h5",
    }
    assert {source["file"] for source in info["sources"]} == expected_sources
    for source in info["sources"]:
        assert (
            source["md5"]
            == hashlib.md5((tmp_path / "ave" / source["file"]).read_bytes()).hexdigest()
        )

    assert summary["videos"] == {"train": 8, "val": 3, "test": 3, "noisy": NOISY_VIDEOS}
    assert summary["label_disagreements"]["videos"] == 0
    assert summary["duplicate_video_ids"] == {"ids": 1, "rows": 2}
    assert summary["zero_length_events"] == ["cb_zero"]
    assert json.loads((out / ave_release.SUMMARY_FILE).read_text()) == summary
    assert json.loads((out / ave_release.DISAGREEMENTS_FILE).read_text()) == []
    assert sorted(os.listdir(tmp_path)) == ["ave", "out"]  # no staging directory left behind


def test_normalization_statistics_are_train_only(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="map")
    run(tmp_path / "ave", tmp_path / "out")
    stats = json.loads((tmp_path / "out" / constants.NORMALIZATION_FILE).read_text())
    train = ORDER["train"]
    audio = written["audio"][train].astype(np.float32).reshape(-1, AUDIO_DIM)
    visual = written["visual"][train].reshape(-1, MAP_SHAPE[-1])  # per channel over regions
    np.testing.assert_allclose(stats["audio_mean"], audio.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["audio_std"], audio.std(0), rtol=1e-4)
    np.testing.assert_allclose(stats["visual_mean"], visual.mean(0), rtol=1e-5)
    np.testing.assert_allclose(stats["visual_std"], visual.std(0), rtol=1e-4)


def test_vector_layout_without_noisy_files(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    summary = run(tmp_path / "ave", tmp_path / "out")
    info = dataset_info.read(str(tmp_path / "out"))
    assert sorted(info.splits) == ["test", "train", "val"]
    assert info.visual_shape == list(VECTOR_SHAPE) and info.visual_layout == constants.LAYOUT_VECTOR
    assert "no weak-supervision files" in summary["noisy"]
    assert_release_round_trip(tmp_path / "out", written)


def test_visual_file_flag_keeps_the_layout_given(tmp_path):
    """--visual_file picks pooled vectors next to the maps; nothing is pooled behind the user's
    back."""
    written = write_ave_dir(tmp_path / "ave", layout="map", noisy=False)
    vectors = written["visual"].mean(axis=(2, 3))  # what visual_feature_vec.h5 holds
    write_h5(tmp_path / "ave" / "visual_feature_vec.h5", vectors)
    run(tmp_path / "ave", tmp_path / "out", visual_file="visual_feature_vec.h5")
    info = dataset_info.read(str(tmp_path / "out"))
    assert info.visual_shape == [MAP_SHAPE[-1]]
    video = read_records(tmp_path / "out", "train")[0]
    np.testing.assert_array_equal(video["visual"], vectors[row_of(video)])


def test_noisy_split_needs_matching_layout_or_can_be_left_out(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="map")
    write_h5(tmp_path / "ave" / "visual_feature_vec.h5", np.ones((len(ROWS), T, 4), np.float32))
    with pytest.raises(UserError, match="visual_feature_noisy.h5.*`include_noisy=False`"):
        run(tmp_path / "ave", tmp_path / "out", visual_file="visual_feature_vec.h5")
    summary = run(
        tmp_path / "ave", tmp_path / "out", visual_file="visual_feature_vec.h5", include_noisy=False
    )
    assert constants.NOISY_SPLIT not in summary["videos"]


def test_partial_noisy_files_warn_and_skip_the_noisy_split(tmp_path, capsys):
    written = write_ave_dir(tmp_path / "ave", layout="map")
    (tmp_path / "ave" / "visual_feature_noisy.h5").unlink()
    summary = run(tmp_path / "ave", tmp_path / "out")
    warning = capsys.readouterr().err
    assert (
        "visual_feature_noisy.h5" in warning and "missing" in warning and "NOT written" in warning
    )
    assert "labels_noisy.h5" in warning and "audio_feature_noisy.h5" in warning
    assert summary["noisy"] in warning
    assert constants.NOISY_SPLIT not in dataset_info.read(str(tmp_path / "out")).splits
    assert_release_round_trip(tmp_path / "out", written)


@needs_real_ave("labels_noisy.h5", "audio_feature_noisy.h5")
def test_real_weak_supervision_files(tmp_path):
    """The release's own labels_noisy.h5 (178, 29) and audio_feature_noisy.h5 (178, 10, 128)
    float64."""
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    for name in ("labels_noisy.h5", "audio_feature_noisy.h5"):
        shutil.copy(REAL_AVE / name, tmp_path / "ave" / name)
    with h5py.File(REAL_AVE / "audio_feature_noisy.h5", "r") as handle:
        real_audio = handle[constants.H5_KEY][()]
    visual = np.random.default_rng(1).random((len(real_audio), T, *VECTOR_SHAPE), dtype=np.float32)
    write_h5(tmp_path / "ave" / "visual_feature_noisy.h5", visual)
    summary = run(tmp_path / "ave", tmp_path / "out")
    assert summary["videos"][constants.NOISY_SPLIT] == 178
    noisy = read_records(tmp_path / "out", constants.NOISY_SPLIT)
    assert len(noisy) == 178
    by_id = {video["video_id"].decode(): video for video in noisy}
    np.testing.assert_array_equal(by_id["noisy_0177"]["audio"], real_audio[177].astype(np.float32))
    assert all((video["label"] == constants.BACKGROUND).all() for video in noisy)


def test_label_disagreements_are_reported_and_label_source_chooses(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    with h5py.File(tmp_path / "ave" / "labels.h5", "r+") as handle:
        labels = handle[constants.H5_KEY]
        # Row 5 (Goat, 5..10): segment 3 marked Goat too; row 9 (speech, 0..10): segments 0, 1
        # background.
        labels[5, 3] = np.eye(constants.NUM_CLASSES)[constants.category_names().index("Goat")]
        labels[9, 0] = labels[9, 1] = np.eye(constants.NUM_CLASSES)[constants.BACKGROUND]
    summary = run(tmp_path / "ave", tmp_path / "out")
    assert summary["label_disagreements"] == {
        "checked": True,
        "videos": 2,
        "segments": 3,
        "file": ave_release.DISAGREEMENTS_FILE,
    }
    listed = json.loads((tmp_path / "out" / ave_release.DISAGREEMENTS_FILE).read_text())
    assert [
        (entry["row"], entry["video_id"], entry["split"], entry["segments"]) for entry in listed
    ] == [(5, "goat", "train", [3]), (9, "speech", "train", [0, 1])]
    assert listed[0]["labels_annotations"] == written["labels"][5].tolist()
    assert listed[0]["labels_h5"][3] == constants.category_names().index("Goat")

    goat = next(v for v in read_records(tmp_path / "out", "train") if v["video_id"] == b"goat")
    assert goat["label"][3] == constants.category_names().index("Goat")  # labels.h5 by default

    summary = run(tmp_path / "ave", tmp_path / "out", label_source="annotations")
    assert summary["label_disagreements"]["videos"] == 2  # still checked and reported
    goat = next(v for v in read_records(tmp_path / "out", "train") if v["video_id"] == b"goat")
    np.testing.assert_array_equal(goat["label"], written["labels"][5])


def test_annotations_source_works_without_labels_h5(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    (tmp_path / "ave" / "labels.h5").unlink()
    summary = run(tmp_path / "ave", tmp_path / "out", label_source="annotations")
    assert summary["label_disagreements"]["checked"] is False
    assert_release_round_trip(tmp_path / "out", written)
    with pytest.raises(UserError, match="labels.h5"):
        run(tmp_path / "ave", tmp_path / "out2")


def test_header_line_and_crlf(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="vector", noisy=False, header=True, crlf=True)
    summary = run(tmp_path / "ave", tmp_path / "out")
    assert summary["annotation_rows"] == len(ROWS)
    assert_release_round_trip(tmp_path / "out", written)


def test_rows_in_no_split_are_counted(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    write_h5(
        tmp_path / "ave" / "test_order.h5", np.asarray([10, 6], np.int64), key=constants.ORDER_KEY
    )
    summary = run(tmp_path / "ave", tmp_path / "out")
    assert summary["videos"]["test"] == 2 and summary["rows_in_no_split"] == 1


def test_rerun_replaces_the_output(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    run(tmp_path / "ave", tmp_path / "out", videos_per_shard=1)
    assert (tmp_path / "out" / "train-00007-of-00008.tfrecord").exists()
    run(tmp_path / "ave", tmp_path / "out")
    assert not (tmp_path / "out" / "train-00007-of-00008.tfrecord").exists()
    assert len(read_records(tmp_path / "out", "train")) == 8
    assert sorted(os.listdir(tmp_path)) == ["ave", "out"]


def test_main_prints_a_summary_and_exits_2_on_user_errors(tmp_path, capsys):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    args = [f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={tmp_path / 'out'}", "--chunk_videos=5"]
    status, printed, err = run_in_process(prepare, *args, capsys=capsys)
    assert status == 0, err
    assert "train" in printed and "videos/s" in printed and "disagree" in printed

    (tmp_path / "ave" / "labels.h5").unlink()
    status, _, err = run_in_process(prepare, *args, capsys=capsys)
    assert "labels.h5" in one_error_line(status, err, allow_tf_log=False)

    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    status, _, err = run_in_process(
        prepare, f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={tmp_path}", capsys=capsys
    )
    assert one_error_line(status, err, allow_tf_log=False).startswith(
        "error: --output_dir: expected a directory outside --ave_dir "
    )


def test_command_line_bad_input_exits_2_with_one_line(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    with h5py.File(tmp_path / "ave" / "audio_feature.h5", "r+") as handle:
        handle[constants.H5_KEY][6, 2, 5] = np.nan
    env = command_env()
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # prepare quiets TensorFlow itself
    result = run_command(
        "avsdn_tf.prepare",
        f"--ave_dir={tmp_path / 'ave'}",
        f"--output_dir={tmp_path / 'out'}",
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    line = one_error_line(result.returncode, result.stderr, allow_tf_log=False)
    assert "audio_feature.h5 row 6 (video cat) segment 2" in line
    assert "nan" in line
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# Bad input: one UserError naming the file, and no output (or the old output untouched).


def _remove(name):
    return lambda d: (d / name).unlink()


def _rewrite(name, transform, key=constants.H5_KEY):
    def apply(d):
        with h5py.File(d / name, "r") as handle:
            value = handle[key][()]
        write_h5(d / name, transform(value), key=key)

    return apply


def _set(name, index, value):
    def apply(d):
        with h5py.File(d / name, "r+") as handle:
            handle[constants.H5_KEY][index] = value

    return apply


def _annotations(transform):
    def apply(d):
        lines = (d / "Annotations.txt").read_text().splitlines()
        (d / "Annotations.txt").write_text("\n".join(transform(lines)) + "\n")

    return apply


def _renamed_key(name, key):
    def apply(d):
        with h5py.File(d / name, "r") as handle:
            value = handle[list(handle.keys())[0]][()]
        write_h5(d / name, value, key=key)

    return apply


def _two_hot(labels):
    labels[3, 2, 7] = 1.0
    return labels


def _half(labels):
    labels[4, 0] *= 0.5
    return labels


def _not_background(labels):
    labels[1] = np.eye(constants.NUM_CLASSES)[3]
    return labels


BAD_INPUTS = {
    "missing audio": (_remove("audio_feature.h5"), r"missing audio_feature\.h5"),
    "missing order": (_remove("train_order.h5"), r"missing train_order\.h5"),
    "missing annotations": (_remove("Annotations.txt"), r"missing Annotations\.txt"),
    "not hdf5": (
        lambda d: (d / "labels.h5").write_text("not an h5 file"),
        r"labels\.h5: expected an HDF5 file",
    ),
    "wrong key": (
        _renamed_key("visual_feature.h5", "features"),
        r"visual_feature\.h5: expected .*'avadataset', found keys \['features'\]",
    ),
    "wrong order key": (
        _renamed_key("val_order.h5", constants.H5_KEY),
        r"val_order\.h5: expected .*'order'",
    ),
    "audio rows": (
        _rewrite("audio_feature.h5", lambda v: v[:-1]),
        r"audio_feature\.h5: expected 14 rows, one per row of .*Annotations\.txt, found 13 rows",
    ),
    "visual rows": (
        _rewrite("visual_feature.h5", lambda v: v[:-2]),
        r"visual_feature\.h5: expected 14 videos x 10",
    ),
    "visual segments": (
        _rewrite("visual_feature.h5", lambda v: v[:, :9]),
        r"visual_feature\.h5.*shape \(14, 9",
    ),
    "visual rank": (
        _rewrite("visual_feature.h5", lambda v: v.reshape(14, 10, 4, 4)),
        r"visual_feature\.h5: expected visual features shaped",
    ),
    "audio rank": (
        _rewrite("audio_feature.h5", lambda v: v[..., None]),
        r"audio_feature\.h5: expected audio",
    ),
    "int visual": (
        _rewrite("visual_feature.h5", lambda v: v.astype(np.int32)),
        r"visual_feature\.h5.*dtype int32",
    ),
    "labels classes": (
        _rewrite("labels.h5", lambda v: v[..., :28]),
        (
            r"labels\.h5: expected one-hot segment labels shaped \(14, 10, 29\), found shape \(14,"
            r" 10, 28\)"
        ),
    ),
    "labels rows": (
        _rewrite("labels.h5", lambda v: v[:12]),
        r"labels\.h5.*found shape \(12, 10, 29\)",
    ),
    "two-hot label": (
        _rewrite("labels.h5", _two_hot),
        r"labels\.h5 row 3 \(video dup_id\) segment 2: expected a one-hot",
    ),
    "half label": (_rewrite("labels.h5", _half), r"labels\.h5 row 4 \(video uke\) segment 0.*0\.5"),
    "nan audio": (
        _set("audio_feature.h5", (11, 4, 0), np.nan),
        r"audio_feature\.h5 row 11 \(video clock\) segment 4",
    ),
    "inf audio": (
        _set("audio_feature.h5", (2, 0, 0), 1e300),
        r"audio_feature\.h5 row 2 .*float32.*inf",
    ),
    "inf visual": (
        _set("visual_feature.h5", (13, 9), np.inf),
        r"visual_feature\.h5 row 13 \(video flush\) segment 9",
    ),
    "nan noisy visual": (
        _set("visual_feature_noisy.h5", (2, 1), np.nan),
        r"visual_feature_noisy\.h5 row 2 \(video noisy_0002\) segment 1",
    ),
    "nan noisy audio": (
        _set("audio_feature_noisy.h5", (0, 0, 0), np.nan),
        r"audio_feature_noisy\.h5 row 0",
    ),
    "noisy not background": (
        _rewrite("labels_noisy.h5", _not_background),
        r"labels_noisy\.h5 row 1: expected background-only.*class 3 \(Fixed-wing",
    ),
    "noisy rows": (
        _rewrite("audio_feature_noisy.h5", lambda v: v[:2]),
        r"visual_feature_noisy\.h5: expected shape \(2,",
    ),
    "unknown category": (
        _annotations(lambda lines: lines[:4] + ["Kazoo&xyz&good&0&10"] + lines[5:]),
        r"Annotations\.txt: expected a category from the 28 AVE categories, found 'Kazoo'",
    ),
    "bad annotation row": (
        _annotations(lambda lines: lines[:6] + ["Cat&abc&good&3"] + lines[7:]),
        r"Annotations\.txt line 7: expected 5 '&'-separated fields",
    ),
    "event past the end": (
        _annotations(lambda lines: lines[:2] + ["Bark&dup_id&good&2&11"] + lines[3:]),
        r"Annotations\.txt line 3: expected 0 <= StartTime <= EndTime <= 10",
    ),
    "annotation rows": (
        _annotations(lambda lines: lines[:-1]),
        r"audio_feature\.h5: expected 13 rows, one per row of .*Annotations\.txt, found 14",
    ),
    "order out of range": (
        _rewrite("val_order.h5", lambda v: np.append(v, 14), key=constants.ORDER_KEY),
        r"val_order\.h5: expected row indices into .*Annotations\.txt in 0\.\.13, found 14",
    ),
    "negative order": (
        _rewrite("test_order.h5", lambda v: np.append(v, -1), key=constants.ORDER_KEY),
        r"test_order\.h5: expected row indices.*found -1",
    ),
    "order overlap": (
        _rewrite("test_order.h5", lambda v: np.append(v, 0), key=constants.ORDER_KEY),
        (
            r"test_order\.h5: expected row indices not already in .*train_order\.h5, found row 0"
            r" \(video cb_full\)"
        ),
    ),
    "order repeated": (
        _rewrite("val_order.h5", lambda v: np.append(v, 13), key=constants.ORDER_KEY),
        r"val_order\.h5: expected each row index at most once, found row 13 at positions \[1, 3\]",
    ),
    "float order": (
        _rewrite("train_order.h5", lambda v: v.astype(np.float64), key=constants.ORDER_KEY),
        r"train_order\.h5: expected a 1-D integer array.*float64",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_leaves_the_old_output_untouched(tmp_path, case):
    break_it, message = BAD_INPUTS[case]
    write_ave_dir(tmp_path / "ave", layout="map")
    break_it(tmp_path / "ave")
    old = tmp_path / "out"
    old.mkdir()
    (old / constants.DATASET_INFO_FILE).write_text('{"old": true}')  # an earlier output
    with pytest.raises(UserError, match=message):
        run(tmp_path / "ave", old, chunk_videos=4)
    assert os.listdir(old) == [constants.DATASET_INFO_FILE]
    assert (old / constants.DATASET_INFO_FILE).read_text() == '{"old": true}'
    assert sorted(os.listdir(tmp_path)) == ["ave", "out"]  # no staging directory left


def test_bad_input_creates_no_output(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="map")
    _set("visual_feature.h5", (12, 0), np.nan)(tmp_path / "ave")  # found while writing, not before
    with pytest.raises(UserError, match="visual_feature.h5 row 12"):
        run(tmp_path / "ave", tmp_path / "out", chunk_videos=3)
    assert sorted(os.listdir(tmp_path)) == ["ave"]


def test_missing_directory_and_files_are_named(tmp_path):
    with pytest.raises(UserError, match="ave_dir: expected a directory"):
        run(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as error:
        run(tmp_path / "empty", tmp_path / "out")
    for name in (
        "Annotations.txt",
        "audio_feature.h5",
        "visual_feature.h5",
        "labels.h5",
        "train_order.h5",
    ):
        assert name in str(error.value)
    assert not (tmp_path / "out").exists()


def test_refuses_to_replace_the_release_or_a_foreign_directory(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    with pytest.raises(UserError, match="output_dir: expected a directory outside `ave_dir`"):
        run(tmp_path / "ave", tmp_path / "ave")
    with pytest.raises(UserError, match="output_dir: expected a directory outside `ave_dir`"):
        run(tmp_path / "ave", tmp_path)
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="output_dir: expected a new or empty directory"):
        run(tmp_path / "ave", tmp_path / "home")
    assert (tmp_path / "home" / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "ave" / "audio_feature.h5").exists()


# The cross-modality splits overlap the localization ones, as the release's do.


def test_match_files_become_the_cross_modal_splits(tmp_path):
    written = write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    write_match_files(tmp_path / "ave")
    run(tmp_path / "ave", tmp_path / "out")
    for split, rows in MATCH_ORDER.items():
        videos = read_records(tmp_path / "out", f"{split}_match")
        assert sorted(row_of(video) for video in videos) == sorted(rows)
        for video in videos:
            np.testing.assert_array_equal(video["label"], written["labels"][row_of(video)])
    # The localization splits are unchanged.
    assert sorted(row_of(v) for v in read_records(tmp_path / "out", "test")) == sorted(
        ORDER["test"]
    )


def test_some_match_files_or_indices_out_of_range_are_one_clear_error(tmp_path):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    write_match_files(tmp_path / "ave", {"train": MATCH_ORDER["train"]})
    with pytest.raises(
        UserError,
        match=r"ave: expected all of the cross-modality split files "
        r"train_order_match.h5, val_order_match.h5, test_order_match.h5 or none of "
        r"them, found only train_order_match.h5 \(missing val_order_match.h5, "
        r"test_order_match.h5\)",
    ):
        run(tmp_path / "ave", tmp_path / "out")
    write_match_files(tmp_path / "ave", {**MATCH_ORDER, "val": [13, 99]})
    with pytest.raises(
        UserError,
        match=r"val_order_match.h5: expected row indices into .* in "
        rf"0..{len(ROWS) - 1}, found 99 at position 1 \(1 out of range\)",
    ):
        run(tmp_path / "ave", tmp_path / "out")


def test_prepare_says_what_the_cross_modal_splits_hold_when_they_are_maps(tmp_path):
    summary = {"visual_layout": "map", "videos": {"train": 3, "train_match": 2}}
    note = prepare.cross_modal_note(summary, str(tmp_path))
    assert "visual maps stored; `--model avdln` averages them over space" in note
    assert "visual_feature_vec.h5" not in note
    (tmp_path / "visual_feature_vec.h5").write_bytes(b"")
    note = prepare.cross_modal_note(summary, str(tmp_path))
    assert note.endswith(
        f"{tmp_path / 'visual_feature_vec.h5'} (the authors' pooled vectors) is here: "
        "`--visual_file visual_feature_vec.h5` stores those instead"
    )
    assert prepare.cross_modal_note({**summary, "visual_layout": "vector"}, str(tmp_path)) is None
    assert prepare.cross_modal_note({**summary, "videos": {"train": 3}}, str(tmp_path)) is None
