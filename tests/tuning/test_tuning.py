"""tuning/: the search space against the model builders, a tiny Hyperband search whose
best_hparams.json reproduces its trial, Hyperband's later rounds continuing earlier ones,
resuming a search killed mid-trial, and a distributed search (a chief and two workers).

Trials are tiny (4-8 units, 48 training videos, 1-2 epochs, LSTMs not unrolled so tracing is
quick) and run under MirroredStrategy, the strategy code path the tuner passes to trainer.
"""

import json
import os
import shutil
import subprocess
import sys

import keras_tuner
import pytest

from avsdn_tf import constants, hparams
from avsdn_tf.data import synthetic
from avsdn_tf.errors import UserError
from avsdn_tf.models import registry
from avsdn_tf.training import trainer
from tuning import results, space, tune
from tuning.hypermodel import AVSDNHyperModel
from tuning.tuner import PROJECT, RESULT, RUN

from testlib import ROOT, free_ports, session_shared

REPO = str(ROOT)
SPACE = {
    "encoder_units": [4, 8],
    "fusion_units": [4],
    "batch_size": [16],
    "dropout": [0.0, 0.2],
    "learning_rate": {"min": 1e-3, "max": 3e-2, "sampling": "log"},
    "lr_schedule": ["constant", "step"],
}
BASE = hparams.HParams(unroll=False, seed=2, epochs=2)
SEGMENT = 1 / (16 * constants.NUM_SEGMENTS)  # one val segment's worth of frame accuracy


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    with session_shared(tmp_path_factory, "tuning_data") as (path, done):
        if not done:
            config = synthetic.SyntheticConfig(
                videos_per_split={"train": 48, "val": 16, "test": 16, "noisy": 0},
                audio_dim=16,
                visual_dim=24,
                seed=5,
            )
            synthetic.write_dataset(str(path), config, verbose=False)
    return str(path)


@pytest.fixture(scope="module")
def hyperband_search(data, tmp_path_factory):
    """Hyperband, factor 2, at most 2 epochs: two 1-epoch trials, then the better one continued to
    2."""
    assert "KERASTUNER_ORACLE_IP" not in os.environ
    with session_shared(tmp_path_factory, "tuning_hyperband") as (path, done):
        if not done:
            tune.run_search(
                data,
                str(path),
                "hyperband",
                3,
                BASE,
                SPACE,
                strategy_name="mirrored",
                hyperband_factor=2,
                verbose=0,
            )
    return str(path)


def _trials(directory):
    with open(os.path.join(directory, results.TRIALS_FILE)) as handle:
        return json.load(handle)


def _read(path):
    with open(path) as handle:
        return json.load(handle)


# --- the search space ------------------------------------------------------------------------


def _param_count(hp, **changes):
    return registry.task_for(hp.replace(**changes)).build(16, [3, 3, 4]).count_params()


def test_space_table_matches_what_each_builder_uses():
    """Changing a field in space.ARCHITECTURE[model] changes the model; changing any other does
    not."""
    units = ("encoder_units", "fusion_units", "lstm_units", "classifier_units", "attention_units")
    small = dict(
        encoder_units=4, fusion_units=5, lstm_units=6, classifier_units=7, attention_units=8
    )
    for name in registry.names(tunable=True):
        hp = hparams.HParams(model=name, visual_reduction="attention", **small)

        base = _param_count(hp)
        for field in units:
            changed = _param_count(hp, **{field: small[field] + 3}) != base
            assert changed == (field in space.ARCHITECTURE[name]), (name, field)
        if "visual_reduction" in space.ARCHITECTURE[name]:
            assert _param_count(hp, visual_reduction="pool") != base, name


def test_hypermodel_maps_a_sample_to_hparams_and_builds_the_registry_model():
    params = space.build(
        "avsdn",
        constants.LAYOUT_MAP,
        6,
        {"encoder_units": [4, 8], "fusion_units": [4], "attention_units": [4]},
    )
    assert [p.name for p in params] == [
        "encoder_units",
        "fusion_units",
        "visual_reduction",
        "attention_units",
        "dropout",
        "learning_rate",
        "lr_schedule",
        "lr_decay_epochs",
        "batch_size",
    ]
    hypermodel = AVSDNHyperModel(BASE.replace(epochs=6), params, 16, [3, 3, 4], 10)
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    assert hypermodel.hparams(hp) == BASE.replace(
        epochs=6,
        encoder_units=4,
        fusion_units=4,
        attention_units=512,
        dropout=0.0,
        learning_rate=1e-4,
        lr_schedule="constant",
        batch_size=16,
        visual_reduction="pool",
    )
    hp.values.update(
        {
            "encoder_units": 8,
            "visual_reduction": "attention",
            "lr_schedule": "step",
            "lr_decay_epochs": 3,
            "tuner/epochs": 2,
            "tuner/initial_epoch": 0,
        }
    )
    # As the oracle does: newly active conditional fields get their defaults.
    hp.ensure_active_values()
    sample = hypermodel.hparams(hp)
    assert (sample.encoder_units, sample.visual_reduction, sample.attention_units) == (
        8,
        "attention",
        4,
    )
    assert (sample.lr_schedule, sample.lr_decay_epochs, sample.epochs) == ("step", 3, 2)
    model = hypermodel.build(hp)
    assert model.get_layer("visual_reduction").__class__.__name__ == "AudioGuidedVisualAttention"
    assert model.get_layer("decoder").units == 8

    # Vectors: no visual reduction to search. AVEL models search their own fields.
    assert "visual_reduction" not in [
        p.name for p in space.build("avsdn", constants.LAYOUT_VECTOR, 6)
    ]
    assert [p.name for p in space.build("av", constants.LAYOUT_VECTOR, 6)][:2] == [
        "lstm_units",
        "classifier_units",
    ]
    # A parent fixed to a value that never activates the child drops the child.
    fixed = space.build("avsdn", constants.LAYOUT_VECTOR, 6, {"lr_schedule": "cosine"})
    assert "lr_decay_epochs" not in [p.name for p in fixed]


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"encoder_unit": [4]}, "unknown 'encoder_unit'"),
        ({"encoder_units": [4]}, "'av' ignores"),
        ({"epochs": [1, 2]}, "field 'epochs'"),
        ({"dropout": [0.1, 1.5]}, "field 'dropout'"),
        ({"lstm_units": {"min": 8, "max": 4}}, "min below max"),
        ({"lr_schedule": {"min": 1, "max": 2}}, "not numeric"),
        ({"batch_size": []}, "non-empty"),
    ],
)
def test_space_file_mistakes_name_the_field(overrides, message):
    with pytest.raises(UserError, match=message):
        space.build("av", constants.LAYOUT_VECTOR, 4, overrides, source="space.json")


# --- searching, reproducing, continuing, resuming --------------------------------------------


@pytest.mark.slow
def test_search_writes_best_hparams_that_train_reproduces(hyperband_search, data, tmp_path):
    trials = _trials(hyperband_search)["trials"]
    assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials)
    assert len({t["trial_id"] for t in trials}) == 3
    best_file = os.path.join(hyperband_search, results.BEST_FILE)
    saved = _read(best_file)
    best = max(trials, key=lambda t: t[results.OBJECTIVE])
    assert saved["val_frame_accuracy"] == best[results.OBJECTIVE]
    assert saved["hparams"] == best["hparams"]
    assert (
        saved["hparams"]["model"] == "avsdn"
        and saved["hparams"]["epochs"] == best["hparams"]["epochs"]
    )

    # What `python -m avsdn_tf.train --hparams_file F --strategy mirrored` does: load the file,
    # train.
    # (Same seed, data and strategy as the trial: one val segment of slack, none expected.)
    loaded = hparams.load(best_file)
    assert loaded.to_dict() == saved["hparams"]
    result = trainer.train(
        data, str(tmp_path / "retrained"), loaded, strategy_name="mirrored", verbose=0
    )
    assert result["val"]["accuracy"] == pytest.approx(saved["val_frame_accuracy"], abs=SEGMENT)


@pytest.mark.slow
def test_hyperband_later_round_continues_the_earlier_trial(hyperband_search):
    trials = {t["trial_id"]: t for t in _trials(hyperband_search)["trials"]}
    continued = [t for t in trials.values() if t["hyperband"]["initial_epoch"] == 1]
    assert len(continued) == 1
    child = continued[0]
    parent = trials[child["hyperband"]["trial_id"]]
    assert (parent["hparams"]["epochs"], child["hparams"]["epochs"]) == (1, 2)
    assert child["values"] == parent["values"]
    assert (
        child[results.OBJECTIVE] >= parent[results.OBJECTIVE]
    )  # its best-on-val includes the parent's epoch
    child_state = _read(os.path.join(child["run_dir"], "state.json"))
    parent_state = _read(os.path.join(parent["run_dir"], "state.json"))
    assert [h["epoch"] for h in child_state["history"]] == [1, 2]
    assert child_state["history"][0] == parent_state["history"][0]  # epoch 1 was not trained again
    assert (
        _read(os.path.join(os.path.dirname(child["run_dir"]), RESULT))["continued_from"]
        == parent["trial_id"]
    )


@pytest.mark.slow
def test_resuming_a_search_killed_mid_trial_reruns_no_finished_trial(
    hyperband_search, data, tmp_path, monkeypatch, capsys
):
    directory = str(tmp_path / "search")
    shutil.copytree(hyperband_search, directory)
    before = {t["trial_id"]: t for t in _trials(directory)["trials"]}
    result_files = {
        trial_id: os.path.join(directory, PROJECT, f"trial_{trial_id}", RESULT)
        for trial_id in before
    }
    stamps = {trial_id: os.stat(path).st_mtime_ns for trial_id, path in result_files.items()}

    # Killed after the first epoch of the fourth trial (its checkpoint and state are on disk).
    original = trainer.SelectOnValidation.on_epoch_end

    def killed(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.SelectOnValidation, "on_epoch_end", killed)
    with pytest.raises(KeyboardInterrupt):
        tune.run_search(
            data,
            directory,
            "hyperband",
            4,
            BASE,
            SPACE,
            strategy_name="mirrored",
            hyperband_factor=2,
            verbose=0,
        )
    monkeypatch.setattr(trainer.SelectOnValidation, "on_epoch_end", original)

    runs = []
    real_train = trainer.train

    def spy(data_dir, model_dir, hp, **kwargs):
        runs.append(model_dir)
        return real_train(data_dir, model_dir, hp, **kwargs)

    monkeypatch.setattr(trainer, "train", spy)
    capsys.readouterr()
    tune.run_search(
        data,
        directory,
        "hyperband",
        4,
        BASE,
        SPACE,
        strategy_name="mirrored",
        hyperband_factor=2,
        verbose=0,
    )
    output = capsys.readouterr().out

    after = {t["trial_id"]: t for t in _trials(directory)["trials"]}
    new = sorted(set(after) - set(before))
    assert len(new) == 1 and after[new[0]]["status"] == "COMPLETED"
    assert runs == [after[new[0]]["run_dir"]]  # only the interrupted trial trained again
    assert (
        f"resuming {after[new[0]]['run_dir']} after epoch 1" in output
    )  # from its epoch-1 checkpoint
    assert [h["epoch"] for h in _read(os.path.join(runs[0], "state.json"))["history"]] == [1, 2]
    for trial_id, trial in before.items():
        assert after[trial_id][results.OBJECTIVE] == trial[results.OBJECTIVE]
        assert os.stat(result_files[trial_id]).st_mtime_ns == stamps[trial_id]


def test_resuming_with_other_settings_is_refused(tmp_path):
    config = {
        "model": "avsdn",
        "tuner": "random",
        "data": {"audio_dim": 16},
        "space": [{"name": "dropout"}],
        "base_hparams": BASE.to_dict(),
        "hyperband_factor": None,
        "max_videos": None,
    }
    (tmp_path / tune.SEARCH_FILE).write_text(json.dumps(config))
    tune.check_resumable(str(tmp_path), {**config, "max_trials": 9, "strategy": "mirrored"})
    with pytest.raises(UserError, match=r"base_hparams\.epochs: expected 5 .* found 2"):
        tune.check_resumable(
            str(tmp_path), {**config, "base_hparams": BASE.replace(epochs=5).to_dict()}
        )
    with pytest.raises(UserError, match="field tuner: expected 'hyperband'"):
        tune.check_resumable(str(tmp_path), {**config, "tuner": "hyperband"})


@pytest.mark.parametrize(
    "tuner, per_trial",
    [
        ("hyperband", "at most 4 epochs per trial (Hyperband's rounds give fewer)"),
        ("random", "4 epochs per trial"),
    ],
)
def test_the_next_step_trains_a_new_run_and_states_the_searchs_epochs(
    tmp_path, capsys, tuner, per_trial
):
    directory = str(tmp_path / "runs" / "tune")
    os.makedirs(directory)
    config = {
        "data_dir": "data/ave",
        "tuner": tuner,
        "base_hparams": BASE.replace(epochs=4).to_dict(),
    }
    record = {
        "trial_id": "07",
        "status": "COMPLETED",
        results.OBJECTIVE: 0.5,
        "best_epoch": 2,
        "hparams": BASE.replace(epochs=3, model="av").to_dict(),
    }
    best = results.write(directory, [record], config)
    tune._print_best(directory, best, config)
    best_file = f"{directory}/best_hparams.json"
    command = (
        f"python -m avsdn_tf.train --data_dir data/ave --hparams_file {best_file} "
        f"--model_dir {tmp_path}/runs/av-tuned"
    )
    assert capsys.readouterr().out.splitlines() == [
        f"best: trial 07, val frame accuracy 0.5000; hyperparameters in {best_file}",
        f"the search's --epochs was 4: {per_trial}; the best trial trained 3, the epochs "
        "best_hparams.json holds (add --epochs N to train longer)",
        f"train it in a new run: {command}",
    ]
    assert _read(best_file)["usage"] == command


# --- distributed: a chief and two workers ----------------------------------------------------


@pytest.mark.slow
def test_distributed_search_with_a_chief_and_two_workers(data, tmp_path):
    directory = tmp_path / "search"
    space_file = tmp_path / "space.json"
    space_file.write_text(json.dumps(SPACE))
    base_file = tmp_path / "base.json"
    base_file.write_text(json.dumps({"unroll": False}))
    command = [
        sys.executable,
        "-m",
        "tuning.tune",
        f"--data_dir={data}",
        "--tuner=random",
        "--max_trials=3",
        "--epochs=1",
        "--seed=2",
        f"--output_dir={directory}",
        f"--space_file={space_file}",
        f"--hparams_file={base_file}",
        "--strategy=mirrored",
        "--intra_op_threads=1",
    ]
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "KERASTUNER_ORACLE_IP": "127.0.0.1",
        "KERASTUNER_ORACLE_PORT": str(free_ports()[0]),
    }
    processes = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            log = open(tmp_path / f"{tuner_id}.log", "w")
            processes[tuner_id] = subprocess.Popen(
                command,
                cwd=REPO,
                env={**env, "KERASTUNER_TUNER_ID": tuner_id},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
        codes = {tuner_id: process.wait(timeout=420) for tuner_id, process in processes.items()}
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    logs = {tuner_id: (tmp_path / f"{tuner_id}.log").read_text() for tuner_id in processes}
    assert codes == {"chief": 0, "tuner0": 0, "tuner1": 0}, "\n\n".join(
        f"{k}:\n{v[-3000:]}" for k, v in logs.items()
    )

    trials = _trials(str(directory))["trials"]
    assert len(trials) == 3 and all(t["status"] == "COMPLETED" for t in trials)
    assert len({t["trial_id"] for t in trials}) == 3
    assert len({json.dumps(t["values"], sort_keys=True) for t in trials}) == 3
    ran = {
        worker: [
            line.split(" trial ")[1].split(":")[0]
            for line in logs[worker].splitlines()
            if line.startswith(f"[{worker}] trial ")
        ]
        for worker in ("tuner0", "tuner1")
    }
    assert sorted(ran["tuner0"] + ran["tuner1"]) == sorted(
        t["trial_id"] for t in trials
    )  # each trained once
    assert ran["tuner0"] and ran["tuner1"], ran
    for trial in trials:
        assert trial["tuner_id"] == ("tuner0" if trial["trial_id"] in ran["tuner0"] else "tuner1")
        config = _read(os.path.join(trial["run_dir"], "config.json"))
        assert config["strategy"] == "mirrored"
    assert "best: trial" in logs["chief"]
    saved = hparams.load(os.path.join(directory, results.BEST_FILE))
    assert saved.epochs == 1 and saved.model == "avsdn"
    assert os.path.basename(trials[0]["run_dir"]) == RUN
