"""All-or-nothing writes: a full disk, a read-only file system or a missing permission ends in
one UserError naming the file and the errno's meaning, and leaves no temporary behind."""

import errno
import json
import os
import pickle

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import fileio
from avsdn_tf.errors import UserError

MESSAGES = {
    errno.ENOSPC: "expected free space to write it, found No space left on device (ENOSPC)",
    errno.EROFS: "expected a writable file system, found Read-only file system (EROFS)",
    errno.EACCES: "expected permission to write it, found Permission denied (EACCES)",
}


def _failing_gfile_write(monkeypatch, make_error):
    """GFile.write writes half of what it is given, then raises make_error(path)."""
    original = tf.io.gfile.GFile.write

    def write(self, data):
        original(self, data[: len(data) // 2])
        self.flush()
        raise make_error(self.name)

    monkeypatch.setattr(tf.io.gfile.GFile, "write", write)


def _temporaries(directory):
    return [name for name in os.listdir(directory) if ".tmp-" in name]


@pytest.mark.parametrize("number", sorted(MESSAGES))
def test_an_os_error_while_writing_json_is_one_message_and_the_old_file_stays(
    tmp_path, monkeypatch, number
):
    path = str(tmp_path / "state.json")
    fileio.write_json(path, {"epochs_done": 1})
    _failing_gfile_write(monkeypatch, lambda name: OSError(number, os.strerror(number), name))
    with pytest.raises(UserError) as caught:
        fileio.write_json(path, {"epochs_done": 2, "padding": "x" * 1000})
    assert str(caught.value) == f"{path}: {MESSAGES[number]}"
    assert caught.value.__suppress_context__  # shown alone, without the OSError's traceback
    assert _temporaries(tmp_path) == []
    assert json.loads((tmp_path / "state.json").read_text()) == {"epochs_done": 1}


def test_tensorflow_file_errors_are_read_by_their_strerror(tmp_path, monkeypatch):
    path = str(tmp_path / "metrics.json")
    _failing_gfile_write(
        monkeypatch,
        lambda name: tf.errors.ResourceExhaustedError(
            None, None, f"{name}; No space left on device"
        ),
    )
    with pytest.raises(UserError, match=r"metrics\.json: expected free space to write it, found"):
        fileio.write_text(path, "{}")
    assert _temporaries(tmp_path) == [] and not os.path.exists(path)


def test_other_errors_pass_through_and_still_remove_the_temporary(tmp_path):
    path = str(tmp_path / "model.keras")
    with pytest.raises(ValueError, match="not a file-system error"):
        with fileio.atomic_file(path, suffix=".keras") as temporary:
            assert temporary.startswith(str(tmp_path / "model.tmp-"))
            assert temporary.endswith(".keras")
            with open(temporary, "w") as handle:
                handle.write("half")
            raise ValueError("not a file-system error")
    assert os.listdir(tmp_path) == []
    unexplained = tf.errors.InternalError(None, None, "something else")
    assert fileio.write_error(path, unexplained) is None


def test_a_complete_atomic_file_replaces_the_old_one(tmp_path):
    path = tmp_path / "best.keras"
    path.write_text("old")
    with fileio.atomic_file(str(path), suffix=".keras") as temporary:
        with open(temporary, "w") as handle:
            handle.write("new")
        assert path.read_text() == "old"  # not before the block ends
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["best.keras"]


def test_make_directories_names_the_directory(tmp_path, monkeypatch):
    target = str(tmp_path / "run" / "checkpoints")

    def makedirs(path):
        raise tf.errors.PermissionDeniedError(None, None, f"{path}; Read-only file system")

    monkeypatch.setattr(tf.io.gfile, "makedirs", makedirs)
    with pytest.raises(UserError) as caught:
        fileio.make_directories(target)
    assert str(caught.value) == f"{target}: {MESSAGES[errno.EROFS]}"


def test_a_full_disk_inside_a_staged_directory_names_the_output_and_keeps_the_old_one(tmp_path):
    """prepare, synthesize and the tuner write whole directories through staged_directory."""
    output = tmp_path / "data"
    with fileio.staged_directory(str(output)) as staging:
        (tmp_path / staging / "old.txt").write_text("old")
    with pytest.raises(UserError) as caught:
        with fileio.staged_directory(str(output)) as staging:
            with tf.io.TFRecordWriter(os.path.join(staging, "train.tfrecord")) as writer:
                writer.write(b"record")
            raise tf.errors.ResourceExhaustedError(
                None, None, f"{staging}/train.tfrecord; No space left on device"
            )
    assert str(caught.value) == f"{output}: {MESSAGES[errno.ENOSPC]}"
    assert sorted(os.listdir(tmp_path)) == ["data"]  # the staging directory is gone
    assert os.listdir(output) == ["old.txt"]


def test_publish_files_moves_the_marker_last_and_keeps_the_directory_s_other_files(
    tmp_path, monkeypatch
):
    staging, target = tmp_path / "staging", tmp_path / "out"
    staging.mkdir()
    target.mkdir()
    for name, text in [("info.json", "new"), ("a.bin", "A"), ("b.bin", "B")]:
        (staging / name).write_text(text)
    for name, text in [("info.json", "old"), ("stale.bin", "S"), ("keep.txt", "K")]:
        (target / name).write_text(text)
    log = tmp_path / "renames.log"
    monkeypatch.setenv(fileio.RENAME_LOG_ENV, str(log))
    fileio.publish_files(
        str(staging),
        str(target),
        ["info.json", "a.bin", "b.bin"],
        marker="info.json",
        remove=["stale.bin", "gone.bin"],
    )
    renamed = [os.path.basename(line) for line in log.read_text().splitlines()]
    assert renamed == ["a.bin", "b.bin", "info.json"]
    assert sorted(os.listdir(target)) == ["a.bin", "b.bin", "info.json", "keep.txt"]
    assert (target / "info.json").read_text() == "new"


class _Planted:
    """Unpickling this object creates a file: a pickle that runs code when it is loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_read_arrays_gives_plain_arrays_of_npz_and_npy(tmp_path):
    audio = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.savez(tmp_path / "f.npz", audio=audio, ids=np.array(["a", "b"]))
    np.save(tmp_path / "one.npy", audio)
    arrays = fileio.read_arrays(str(tmp_path / "f.npz"), "features")
    assert sorted(arrays) == ["audio", "ids"]
    np.testing.assert_array_equal(arrays["audio"], audio)
    assert arrays["ids"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(fileio.read_arrays(str(tmp_path / "one.npy"), "x"), audio)


@pytest.mark.parametrize("name", ["dict.npy", "objects.npz", "raw.npy"])
def test_read_arrays_never_runs_a_pickle_and_names_the_file(tmp_path, name):
    marker = tmp_path / "the pickle ran"
    planted = _Planted(str(marker))
    path = tmp_path / name
    if name == "dict.npy":
        np.save(path, {"audio": planted})
    elif name == "objects.npz":
        np.savez(path, audio=np.zeros(3), visual=np.array([planted], dtype=object))
    else:
        path.write_bytes(pickle.dumps(planted))
    with pytest.raises(UserError) as error:
        fileio.read_arrays(str(path), "an .npz of features")
    message = str(error.value)
    assert message.startswith(f"{path}: expected an .npz of features (plain numeric arrays)")
    found = "a pickle, not a NumPy file" if name == "raw.npy" else fileio.PICKLED
    assert f"found {found}" in message and "\n" not in message
    if name == "objects.npz":
        assert "(array 'visual')" in message
    assert not marker.exists()
    # the same file loaded with pickles allowed does run it: the check above can fail
    if name != "raw.npy":
        loaded = np.load(path, allow_pickle=True)
        if name == "objects.npz":
            loaded["visual"]
        assert marker.exists()


def test_read_arrays_names_a_file_that_is_not_numpy(tmp_path):
    (tmp_path / "text.npz").write_text("audio,visual\n")
    with pytest.raises(UserError, match=r"text.npz: expected x, found a file that is not a NumPy"):
        fileio.read_arrays(str(tmp_path / "text.npz"), "x")
