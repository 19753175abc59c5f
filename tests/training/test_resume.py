"""Resuming a run: only with its own settings (more epochs allowed and recorded); a refusal lists
every difference and changes nothing."""

import json
import re
import shutil
from pathlib import Path

import pytest

from avsdn_tf.data import synthetic
from avsdn_tf.errors import UserError
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

from testlib import command_env, run_command, small_hparams, tiny_config


@pytest.fixture(scope="module")
def finished_run(tiny_vector_data, tmp_path_factory):
    """A finished one-epoch run of small_hparams on the tiny vector data."""
    run_dir = str(tmp_path_factory.mktemp("resume") / "run")
    trainer.train(tiny_vector_data, run_dir, small_hparams(epochs=1), verbose=0)
    return run_dir


def _copy(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def _files(run_dir):
    return {p.relative_to(run_dir): p.read_bytes() for p in Path(run_dir).rglob("*") if p.is_file()}


def _train(*args):
    return run_command("avsdn_tf.train", *args, env=command_env())


def test_other_hyperparameters_are_refused_in_one_message_listing_each(
    finished_run, tiny_vector_data, tmp_path
):
    run_dir = _copy(finished_run, tmp_path)
    before = _files(run_dir)
    done = _train(
        "--data_dir", tiny_vector_data, "--model_dir", run_dir, "--epochs", 3,
        "--encoder_units", 8, "--learning_rate", 0.01,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    config = run_dir / "config.json"
    assert errors == [
        f"error: {config}: expected the settings of the run being resumed, found 2 "
        "difference(s): hparams.learning_rate: the run's 0.001, given 0.01; "
        "hparams.encoder_units: the run's 16, given 8; nothing was changed. Train a new run "
        "with a new --model_dir, or resume this one with the settings its config.json records "
        "(its hyperparameters are taken when only --model_dir is given, or with "
        f"--hparams_file={config}), with --epochs alone raised to train it further"
    ]
    assert _files(run_dir) == before


def test_a_finished_run_given_another_hparams_file_is_refused_not_called_finished(
    finished_run, tiny_vector_data, tmp_path
):
    run_dir = _copy(finished_run, tmp_path)
    before = _files(run_dir)
    other = tmp_path / "best_hparams.json"
    other.write_text(json.dumps({"hparams": small_hparams(epochs=1, dropout=0.5).to_dict()}))
    done = _train("--data_dir", tiny_vector_data, "--model_dir", run_dir, "--hparams_file", other)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "hparams.dropout: the run's 0.0, given 0.5" in done.stderr
    assert "already finished" not in done.stdout
    assert _files(run_dir) == before


def test_epochs_alone_trains_a_finished_run_further_and_config_records_it(
    finished_run, tiny_vector_data, tmp_path
):
    run_dir = _copy(finished_run, tmp_path)
    original = json.loads((run_dir / "config.json").read_text())
    again = _train("--data_dir", tiny_vector_data, "--model_dir", run_dir)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{run_dir} already finished" in again.stdout

    further = _train("--data_dir", tiny_vector_data, "--model_dir", run_dir, "--epochs", 2)
    assert further.returncode == 0, further.stderr[-2000:]
    assert f"{run_dir}: training it further, epochs 1 -> 2" in further.stdout
    assert "resuming" in further.stdout and "after epoch 1" in further.stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [entry["epoch"] for entry in metrics["history"]] == [1, 2]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["hparams"] == {**original["hparams"], "epochs": 2}
    assert config["epochs_extended"] == [{"epochs": 1, "raised_to": 2, "after_epoch": 1}]


def test_other_data_of_the_same_dims_is_refused(finished_run, tmp_path):
    run_dir = _copy(finished_run, tmp_path)
    before = _files(run_dir)
    other = str(tmp_path / "other")
    synthetic.write_dataset(other, tiny_config(seed=4), verbose=False)  # same dims and counts
    with pytest.raises(UserError) as refused:
        trainer.train(other, str(run_dir), small_hparams(epochs=1), verbose=0)
    message = str(refused.value)
    recorded = json.loads(Path(RunDir(str(run_dir)).config).read_text())
    assert message.count("difference(s)") == 1 and "1 difference(s): data.info_md5" in message
    assert f"the run's {recorded['data']['info_md5']!r}" in message
    assert f"it was trained on {recorded['data_dir']}" in message
    assert _files(run_dir) == before


def _left_inconsistent(run_dir):
    """What train in avsdn-tf 0.2.0 left after `--encoder_units 8 --learning_rate 0.01` on this
    run: config.json rewritten with them, the checkpoints trained on at 16 units and 0.001."""
    path = Path(run_dir) / "config.json"
    config = json.loads(path.read_text())
    config["hparams"].update(encoder_units=8, learning_rate=0.01)
    path.write_text(json.dumps(config))


def test_a_run_left_inconsistent_is_named_by_every_reader_with_its_repair(
    finished_run, tiny_vector_data, tmp_path
):
    from avsdn_tf import hparams
    from avsdn_tf.models import registry
    from avsdn_tf.paper import runner

    run_dir = _copy(finished_run, tmp_path)
    _left_inconsistent(run_dir)
    before = _files(run_dir)
    config = run_dir / "config.json"
    expected = (
        rf"^{re.escape(str(config))}: expected a config\.json that describes the checkpoint "
        rf"{re.escape(str(run_dir))}/checkpoints/(best|last)\.keras, found hparams\.learning_rate: "
        r"config\.json's 0\.01, the checkpoint's 0\.001; weights: config\.json's \d+ weights, "
        r"number \d+ of shape \[\d+, \d+\], the checkpoint's \d+, number \d+ of shape \[\d+, "
        r"\d+\] \(.*\); repair it with: python -m avsdn_tf\.train --model_dir "
        rf"{re.escape(str(run_dir))} --repair_config$"
    )
    # evaluate, export, predict, experiments' scoring and the tuner open runs with load_run.
    for checkpoint in ("best", "last"):
        with pytest.raises(UserError, match=expected):
            registry.load_run(str(run_dir), checkpoint)
    with pytest.raises(UserError, match=expected):  # train resuming it with its own settings
        trainer.train(tiny_vector_data, str(run_dir), small_hparams(epochs=1, encoder_units=8,
                      learning_rate=0.01), verbose=0)  # fmt: skip
    recorded = json.loads(config.read_text())
    with pytest.raises(UserError, match=expected):  # experiments reusing it as a finished run
        runner.saved_result(
            str(run_dir),
            hparams.from_dict(recorded["hparams"]),
            recorded["data_dir"],
            recorded["max_videos"],
        )
    evaluated = run_command("avsdn_tf.evaluate", "--model_dir", run_dir, "--split", "test")
    assert evaluated.returncode == 2, evaluated.stderr[-2000:]
    errors = [line for line in evaluated.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.match(expected, errors[0][len("error: ") :]), errors
    assert _files(run_dir) == before


def test_repair_config_rewrites_config_json_from_the_checkpoints(finished_run, tmp_path):
    from avsdn_tf.models import registry

    original = json.loads((Path(finished_run) / "config.json").read_text())
    run_dir = _copy(finished_run, tmp_path)
    _left_inconsistent(run_dir)
    repaired = _train("--model_dir", run_dir, "--repair_config")
    assert repaired.returncode == 0, repaired.stderr[-2000:]
    assert repaired.stdout.splitlines() == [
        "hparams.learning_rate: 0.01 -> 0.001",
        "hparams.encoder_units: 8 -> 16",
        f'{run_dir}/config.json now describes its checkpoints (its "repaired" lists this)',
    ]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["hparams"] == original["hparams"]
    assert config["repaired"] == [
        {"field": "learning_rate", "was": 0.01, "now": 0.001},
        {"field": "encoder_units", "was": 8, "now": 16},
    ]
    assert registry.load_run(str(run_dir)).hp.encoder_units == 16
    again = _train("--model_dir", run_dir, "--repair_config")
    assert again.returncode == 0
    assert again.stdout.splitlines() == [
        f"{run_dir}/config.json already describes its checkpoints; nothing changed"
    ]
