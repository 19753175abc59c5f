"""I/O failures a user can cause during train and evaluate: a damaged shard, a full disk, a
read-only directory, a missing permission. Each ends in one message naming the file, a non-zero
exit status, no traceback, and no temporary left behind."""

import errno
import os
import re
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from avsdn_tf.errors import UserError
from avsdn_tf.runs import RunDir
from avsdn_tf.training import evaluation, trainer

from testlib import (
    copy_with_damaged_shard,
    every_iterator_freed_without_gc,
    one_error_line,
    run_command,
    small_hparams,
)

DAMAGED = r"expected a readable TFRecord shard, found a corrupted record at offset \d+ of \d+ bytes"


@pytest.fixture(scope="module")
def trained_run(tiny_vector_data, tmp_path_factory):
    """A one-epoch run trained in process."""
    model_dir = str(tmp_path_factory.mktemp("runs") / "run")
    trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=1), verbose=0)
    return model_dir


def _temporaries(directory):
    return sorted(str(path) for path in Path(directory).rglob("*.tmp-*"))


def _one_error_line(done):
    """The command failed with status 2 and printed exactly one line, `error: ...`, on stderr
    (TensorFlow's C++ start-up lines aside); returns that line."""
    return one_error_line(done.returncode, done.stderr)


def test_evaluate_on_a_damaged_shard_names_it_and_writes_nothing(
    trained_run, tiny_vector_data, tmp_path
):
    data_dir, shard = copy_with_damaged_shard(
        tiny_vector_data, tmp_path / "data", "test-00001-of-00002.tfrecord", "overwrite"
    )
    output_dir = tmp_path / "eval"
    done = run_command(
        "avsdn_tf.evaluate",
        "--model_dir",
        trained_run,
        "--data_dir",
        data_dir,
        "--output_dir",
        output_dir,
    )
    line = _one_error_line(done)
    assert line.startswith(f"error: {shard}: "), line
    assert re.search(DAMAGED, line), line
    assert not output_dir.exists() or not any(output_dir.iterdir())


def test_train_on_a_truncated_shard_names_it(tiny_vector_data, tmp_path):
    data_dir, shard = copy_with_damaged_shard(
        tiny_vector_data, tmp_path / "data", "train-00001-of-00002.tfrecord", "truncate"
    )
    model_dir = tmp_path / "run"
    done = run_command(
        "avsdn_tf.train",
        "--data_dir",
        data_dir,
        "--model_dir",
        model_dir,
        "--epochs",
        "1",
        "--encoder_units",
        "8",
        "--fusion_units",
        "8",
        "--lstm_units",
        "8",
        "--nounroll",
    )
    line = _one_error_line(done)
    assert line.startswith(f"error: {shard}: expected a readable TFRecord shard, found a truncated")
    assert "the file cut short; make the data directory again" in line
    assert _temporaries(model_dir) == []


def _failing_save(monkeypatch, number):
    """keras.Model.save writes part of the file, then fails with OSError(number), as a full
    disk does; returns the list of paths it was called with."""
    calls = []

    def save(self, path, *args, **kwargs):
        calls.append(path)
        Path(path).write_bytes(b"PK\x03\x04 a part of a zip archive")
        raise OSError(number, os.strerror(number))  # Keras' OSError names no file

    monkeypatch.setattr(keras.Model, "save", save)
    return calls


def test_a_full_disk_while_saving_a_checkpoint_names_it_and_leaves_no_temporary(
    tiny_vector_data, tmp_path, monkeypatch
):
    calls = _failing_save(monkeypatch, errno.ENOSPC)
    model_dir = str(tmp_path / "run")
    # the error, kept, must not hold fit's iterator
    with every_iterator_freed_without_gc(monkeypatch), pytest.raises(UserError) as caught:
        trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=1), verbose=0)
    run = RunDir(model_dir)
    assert str(caught.value) == (
        f"{run.best_checkpoint}: expected free space to write it, found No space left on device"
        " (ENOSPC)"
    )
    assert len(calls) == 1 and ".tmp-" in calls[0]  # it did write a temporary
    assert _temporaries(model_dir) == [] and not os.path.exists(run.best_checkpoint)


@pytest.mark.slow  # a training per case, ~20 s under load (issue 28)
@pytest.mark.parametrize(
    "target, number, expected",
    [
        ("state.json", errno.EACCES, "permission to write it, found Permission denied (EACCES)"),
        ("metrics.json", errno.ENOSPC, "free space to write it, found No space left on device"),
    ],
)
def test_a_failing_state_or_metrics_write_names_the_file(
    tiny_vector_data, tmp_path, monkeypatch, target, number, expected
):
    original = tf.io.gfile.GFile.write

    def write(self, data):
        if not os.path.basename(self.name).startswith(f"{target}.tmp-"):
            return original(self, data)
        original(self, data[: len(data) // 2])
        self.flush()
        raise tf.errors.PermissionDeniedError(None, None, f"{self.name}; {os.strerror(number)}")

    monkeypatch.setattr(tf.io.gfile.GFile, "write", write)
    model_dir = str(tmp_path / "run")
    with pytest.raises(UserError) as caught:
        trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=1), verbose=0)
    assert str(caught.value).startswith(f"{os.path.join(model_dir, target)}: expected {expected}")
    assert _temporaries(model_dir) == [] and not os.path.exists(os.path.join(model_dir, target))


def test_a_full_disk_while_writing_the_confusion_png_names_it(trained_run, tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    original = tf.io.gfile.GFile.write

    def write(self, data):
        if ".png.tmp-" not in self.name:
            return original(self, data)
        original(self, data[:100])
        self.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(tf.io.gfile.GFile, "write", write)
    with pytest.raises(UserError) as caught:
        evaluation.evaluate_run(trained_run, split="val", output_dir=str(tmp_path))
    assert str(caught.value) == (
        f"{tmp_path / 'confusion_val.png'}: expected free space to write it, found No space left"
        " on device (ENOSPC)"
    )
    assert sorted(os.listdir(tmp_path)) == ["eval_val.json"]  # no half-written PNG
