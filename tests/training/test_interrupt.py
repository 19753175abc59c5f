"""Training interrupted by SIGINT or SIGTERM while it saves a checkpoint: one line saying what
was kept, no temporaries left, and the rerun resumes from the last complete epoch."""

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from avsdn_tf import fileio
from avsdn_tf.models import registry
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

from testlib import ROOT, TINY_SPLITS, command_env, small_hparams


@pytest.fixture(scope="module")
def uninterrupted(tiny_vector_data, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("interrupt") / "uninterrupted")
    return trainer.train(tiny_vector_data, run_dir, small_hparams(epochs=3), verbose=0)


def _default_signals():
    """In the command: SIGINT and SIGTERM as a terminal gives them, even when the tests run with
    them ignored (a background job of a script), which a process keeps."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _train(tiny_vector_data, tmp_path, run_dir, **env):
    hparams_file = tmp_path / "hparams.json"
    hparams_file.write_text(json.dumps(small_hparams(epochs=3).to_dict()))
    args = ["--data_dir", tiny_vector_data, "--model_dir", run_dir, "--hparams_file", hparams_file]
    return subprocess.run(
        [sys.executable, "-m", "avsdn_tf.train", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=command_env(**env),
        preexec_fn=_default_signals,
    )


@pytest.fixture(scope="module")
def interrupted(tiny_vector_data, tmp_path_factory):
    """interrupted(name) -> (RunDir, the finished command) of a training stopped by that signal
    when epoch 2's last.keras is written in full under its temporary name (once per signal)."""
    done = {}

    def stopped_by(name):
        if name not in done:
            tmp_path = tmp_path_factory.mktemp(name)
            run = RunDir(str(tmp_path / "run"))
            signal_at = {fileio.SIGNAL_BEFORE_RENAME_ENV: f"{name}:last.keras:2"}
            done[name] = run, _train(tiny_vector_data, tmp_path, run.path, **signal_at)
        return done[name]

    return stopped_by


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_in_the_save_of_epoch_2_keeps_epoch_1_and_says_so_in_one_line(name, interrupted):
    run, stopped = interrupted(name)
    assert stopped.returncode == 128 + signal.Signals[name], stopped.stderr[-3000:]
    assert "Traceback" not in stopped.stderr and "KeyboardInterrupt" not in stopped.stderr
    lines = [line for line in stopped.stderr.splitlines() if "interrupted" in line]
    assert lines == [
        f"interrupted by {name}: {run.path} keeps epoch 1 of 3 ({run.last_checkpoint}); rerun "
        "the same command to resume after epoch 1"
    ]
    assert [p.name for p in Path(run.path).rglob("*.tmp-*")] == []
    assert not Path(run.path, ".lock").exists() and not Path(run.metrics).exists()
    model = registry.load_model(run.last_checkpoint)
    assert (
        trainer.resume_state(run, model, steps_per_epoch=TINY_SPLITS["train"] // 16)["epochs_done"]
        == 1
    )


def test_the_rerun_of_an_interrupted_command_resumes_after_epoch_1_as_if_uninterrupted(
    interrupted, uninterrupted, tiny_vector_data, tmp_path
):
    """The same for both signals; on a copy of the SIGINT run, which the test above reads."""
    original, _ = interrupted("SIGINT")
    run = RunDir(str(tmp_path / "run"))
    shutil.copytree(original.path, run.path)
    resumed = _train(tiny_vector_data, tmp_path, run.path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run.path} after epoch 1" in resumed.stdout
    metrics = json.loads(Path(run.metrics).read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2, 3]
    for got, want in zip(metrics["history"], uninterrupted["history"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
    assert metrics["test"]["accuracy"] == uninterrupted["test"]["accuracy"]
