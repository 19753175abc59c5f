"""Crash-consistent resume: the state a run resumes from is the state of the weights it loads."""

import json
import types

import numpy as np
import pytest

from avsdn_tf import fileio
from avsdn_tf.errors import UserError
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

STEPS_PER_EPOCH = 6


def _checkpoint_after(epochs):
    """A stand-in for a model loaded from last.keras: only its optimizer's step count is read."""
    return types.SimpleNamespace(
        optimizer=types.SimpleNamespace(iterations=np.int64(epochs * STEPS_PER_EPOCH))
    )


def _epoch_state(epochs_done, **extra):
    history = [{"epoch": e, "loss": 1.0 / e} for e in range(1, epochs_done + 1)]
    return {"epochs_done": epochs_done, "history": history, **extra}


def _run_with_state(tmp_path, state):
    run = RunDir(str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    fileio.write_json(run.state, state)
    return run


def test_state_of_the_checkpoints_epoch_is_used(tmp_path):
    run = _run_with_state(tmp_path, {**_epoch_state(2), "previous": _epoch_state(1)})
    assert trainer.resume_state(run, _checkpoint_after(2), STEPS_PER_EPOCH)["epochs_done"] == 2


def test_kill_between_state_and_checkpoint_resumes_from_the_previous_state(tmp_path):
    # state.json of epoch 3 is written, the kill comes before last.keras of epoch 3 is renamed.
    run = _run_with_state(tmp_path, {**_epoch_state(3), "previous": _epoch_state(2)})
    state = trainer.resume_state(run, _checkpoint_after(2), STEPS_PER_EPOCH)
    assert state["epochs_done"] == 2 and [h["epoch"] for h in state["history"]] == [1, 2]


def test_state_matching_no_checkpoint_epoch_is_one_clear_error(tmp_path):
    # The layout the issue reproduced with the old order: weights one epoch ahead of the state.
    run = _run_with_state(tmp_path, _epoch_state(1))
    with pytest.raises(UserError, match=r"state\.json.*the state of epoch 2.*found epochs_done 1"):
        trainer.resume_state(run, _checkpoint_after(2), STEPS_PER_EPOCH)


def test_renames_are_logged_for_the_write_point_sweep(tmp_path, monkeypatch):
    log = tmp_path / "renames.txt"
    monkeypatch.setenv(fileio.RENAME_LOG_ENV, str(log))
    fileio.write_json(str(tmp_path / "a.json"), {"x": 1})
    fileio.write_text(str(tmp_path / "b.txt"), "b")
    assert log.read_text().splitlines() == [str(tmp_path / "a.json"), str(tmp_path / "b.txt")]
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}


@pytest.mark.slow
def test_kill_at_every_write_point_then_resume_matches_the_uninterrupted_run(tmp_path):
    from benchmarks import bench_reliability as reliability

    data_dir, hparams_file = reliability.make_inputs(str(tmp_path), epochs=2)
    reference, renames = reliability.write_points(data_dir, str(tmp_path), hparams_file)
    # config.json, then per epoch state.json, best.keras (if val improved), last.keras, then
    # metrics.json and the finished state.json.
    assert len(renames) >= 7
    for point in range(1, len(renames) + 1):
        killed, metrics = reliability.kill_and_resume(data_dir, str(tmp_path), hparams_file, point)
        assert killed, f"the run was not killed at write point {point}"
        assert metrics == reference, (
            f"resume after a kill at write point {point} ({renames[point - 1]})"
        )
