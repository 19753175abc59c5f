"""What the README promises about the commands, each run the way the README shows it.

- `python -m avsdn_tf.train` with no flags makes the built-in synthetic data set in
  `~/.cache/avsdn_tf/synthetic` once, and prints the decoded size of what it keeps in memory;
- `--cache_gb` defaults to 6 GB (`python -m avsdn_tf.train --help` lists the defaults);
- running a finished run directory again with more `--epochs` continues it;
- `python -m export.export_model ... --checkpoint last` exports the last epoch.

(predict on videos longer than 10 s: tests/inference/test_extract_predict.py; `--wait`:
tests/test_output_locks.py.)
"""

import json
import math
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import records, train
from avsdn_tf.models import backbones
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer
from export import export_model, verify

from testlib import (
    SMALL_UNITS,
    command_env,
    read_records,
    run_command,
    run_in_process,
    small_hparams,
)

SMALL_FLAGS = [f"--{name}={value}" for name, value in SMALL_UNITS.items()]
TINY_TRAIN = [*SMALL_FLAGS, "--batch_size=16", "--unroll=false", "--max_videos=16"]


def _decoded_gb(data_dir):
    """train + val decoded in float32, from dataset_info.json's counts and dims."""
    info = json.loads((data_dir / "dataset_info.json").read_text())
    videos = info["splits"]["train"]["videos"] + info["splits"]["val"]["videos"]
    per_segment = info["audio_dim"] + math.prod(info["visual_shape"])
    return videos * info["num_segments"] * per_segment * 4 / 1e9


def _files(directory):
    """{path: modification time in ns} of every file under a directory."""
    return {
        os.path.join(parent, name): os.stat(os.path.join(parent, name)).st_mtime_ns
        for parent, _, names in os.walk(directory)
        for name in names
    }


@pytest.mark.slow  # the README's command verbatim: 12 epochs on the built-in data (1.5-5 min)
def test_train_with_no_flags_makes_the_synthetic_data_once_and_more_epochs_continue(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    env = command_env(HOME=str(home))
    data = home / ".cache" / "avsdn_tf" / "synthetic"

    first = run_command("avsdn_tf.train", env=env, cwd=work, timeout=1500)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"making the built-in synthetic data set in {data} (first use only)" in first.stdout
    assert (data / "dataset_info.json").exists()
    size = _decoded_gb(data)
    assert 0.01 < size < 6.0  # it fits the default limit, and prints what it computed
    assert f"train + val decoded: {size:.2f} GB; kept in memory after the first epoch" in (
        first.stdout
    )
    metrics = json.loads((work / "runs" / "avsdn" / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == list(range(1, 13))
    made = _files(data)

    # The same command later with more epochs: the data set is not made again, the finished
    # run continues from epoch 12 instead of starting over.
    again = run_command("avsdn_tf.train", "--epochs", "13", env=env, cwd=work, timeout=1500)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "making the built-in synthetic data set" not in again.stdout
    assert _files(data) == made
    continued = json.loads((work / "runs" / "avsdn" / "metrics.json").read_text())
    assert [entry["epoch"] for entry in continued["history"]] == list(range(1, 14))
    assert continued["history"][:12] == metrics["history"]


def test_train_help_lists_the_in_memory_limit_of_6_gb():
    shown = run_command("avsdn_tf.train", "--help")  # absl's --help exits 1 after the listing
    text = " ".join(shown.stdout.split())
    cache_gb = text[text.index("--cache_gb: ") :].split(" --", 1)[0]
    assert cache_gb.startswith("--cache_gb: Keep the decoded train and val splits in memory")
    assert "Default 6.0." in cache_gb


@pytest.mark.slow  # two trainings (~20 s under load)
def test_a_finished_run_given_more_epochs_continues_it(tiny_vector_data, tmp_path, capsys):
    run = tmp_path / "run"
    common = [f"--data_dir={tiny_vector_data}", f"--model_dir={run}", *TINY_TRAIN]
    status, printed, err = run_in_process(train, *common, "--epochs=1", capsys=capsys)
    assert status == 0, err
    size = (16 + 16) * 10 * (16 + 24) * 4 / 1e9  # 16 videos of each split, 16 + 24 floats
    assert f"train + val decoded: {size:.2f} GB; kept in memory after the first epoch" in printed
    first = json.loads((run / "metrics.json").read_text())
    assert [entry["epoch"] for entry in first["history"]] == [1]
    status, _, err = run_in_process(train, *common, "--epochs=2", capsys=capsys)
    assert status == 0, err
    continued = json.loads((run / "metrics.json").read_text())
    assert [entry["epoch"] for entry in continued["history"]] == [1, 2]
    assert continued["history"][0] == first["history"][0]  # epoch 1 kept, not trained again


@pytest.mark.slow  # a training and an export (~20 s under load)
def test_export_checkpoint_last_exports_the_last_epoch(
    tiny_vector_data, tmp_path, monkeypatch, capsys
):
    run = str(tmp_path / "run")
    trainer.train(tiny_vector_data, run, small_hparams(epochs=2), max_videos=16, verbose=0)
    base = tmp_path / "serving" / "avsdn"
    # The check in a fresh process is tested by tests/export; here it runs in this process.
    monkeypatch.setattr(export_model, "verify_in_fresh_process", verify.verify)
    status, _, err = run_in_process(
        export_model,
        f"--model_dir={run}",
        f"--output_dir={base}",
        "--checkpoint=last",
        capsys=capsys,
    )
    assert status == 0, err
    info = json.loads((base / "1" / "assets.extra" / "avsdn_export.json").read_text())
    assert os.path.basename(info["checkpoint"]) == "last.keras"
    # The served probabilities are those of checkpoints/last.keras itself.
    videos = read_records(tiny_vector_data, "val")[:4]
    audio = np.stack([video[records.AUDIO] for video in videos])
    visual = np.stack([video[records.VISUAL] for video in videos])
    last = backbones.segment_model(
        keras.models.load_model(RunDir(run).last_checkpoint, compile=False)
    )
    expected = np.asarray(last({"audio": audio, "visual": visual}, training=False))
    served = tf.saved_model.load(str(base / "1")).signatures["serving_default"](
        audio=tf.constant(audio), visual=tf.constant(visual)
    )
    np.testing.assert_allclose(served["segment_probs"].numpy(), expected, atol=1e-5)
