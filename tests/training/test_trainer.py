"""Training end to end: selection on val, resumption after SIGKILL, NaN stop, bad input,
strategies."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from avsdn_tf import constants, dataset_info, hparams
from avsdn_tf.data import synthetic
from avsdn_tf.errors import UserError
from avsdn_tf.runs import RunDir
from avsdn_tf.training import evaluation, threads, trainer

from testlib import (
    ROOT,
    TINY_SPLITS,
    command_env,
    every_iterator_freed_without_gc,
    free_ports,
    run_command,
    small_hparams,
)


def _command(*args, env=None):
    """Run `python -m avsdn_tf.train ARGS` from the repo root; returns the finished process."""
    return run_command("avsdn_tf.train", *args, env=command_env(**(env or {})))


def _hparams_file(tmp_path, **changes):
    path = tmp_path / "hparams.json"
    path.write_text(json.dumps(small_hparams(**{"epochs": 3, **changes}).to_dict()))
    return str(path)


@pytest.fixture(scope="module")
def reference_run(tiny_vector_data, tmp_path_factory):
    """An uninterrupted single-device run, trained in process: the baseline other runs must
    match."""
    model_dir = str(tmp_path_factory.mktemp("runs") / "reference")
    result = trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=3), verbose=0)
    return model_dir, result


def test_train_selects_on_val_and_writes_everything(reference_run, tiny_vector_data):
    model_dir, result = reference_run
    run = RunDir(model_dir)
    metrics = json.loads(Path(run.metrics).read_text())
    assert 0.0 <= metrics["val"]["accuracy"] <= 1.0 and 0.0 <= metrics["test"]["accuracy"] <= 1.0
    for key in ("per_class_accuracy", "confusion_matrix", "intervals"):
        assert key in metrics["test"]
    history = metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    best = max(history, key=lambda h: h["val_frame_accuracy"])
    assert metrics["best_epoch"] == best["epoch"]  # selected on val, never on test
    assert metrics["val"]["accuracy"] == pytest.approx(best["val_frame_accuracy"])
    config = json.loads(Path(run.config).read_text())
    assert config["hparams"]["encoder_units"] == 16 and config["data"]["audio_dim"] == 16
    assert config["data_in_memory"] is True  # tiny data fits the default cache_gb
    assert Path(run.best_checkpoint).exists() and Path(run.last_checkpoint).exists()
    assert any(Path(run.logs).rglob("events.out.tfevents*"))

    summary = evaluation.evaluate_run(model_dir, split="test")
    assert summary["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert (
        Path(model_dir, "eval_test.json").exists()
        and Path(model_dir, "confusion_test.png").exists()
    )


def test_evaluate_command_with_split_thread_pools_scores_as_in_process(reference_run, tmp_path):
    model_dir, _ = reference_run
    metrics = json.loads(Path(RunDir(model_dir).metrics).read_text())
    done = run_command(
        "avsdn_tf.evaluate",
        "--model_dir",
        model_dir,
        "--split",
        "test",
        "--output_dir",
        tmp_path,
        "--intra_op_threads",
        "1",
        "--inter_op_threads",
        "2",
    )
    assert done.returncode == 0, done.stderr
    written = json.loads((tmp_path / "eval_test.json").read_text())
    assert written["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert "accuracy" in done.stdout  # the printed table
    # The page (inference/viewer.py): the split's accuracy, and a truth and a prediction row
    # for each of the worst videos (at most 12 of the split's).
    page = (tmp_path / "eval_test.html").read_text()
    assert f"evaluation page: {tmp_path / 'eval_test.html'}" in done.stdout
    assert f"<strong>{written['accuracy']:.4f}</strong>" in page
    shown = min(12, written["videos"])
    assert page.count('data-row="truth"') == page.count('data-row="prediction"') == shown


def test_thread_pools_are_set_before_tensorflow_starts_and_refused_after():
    script = (
        "import tensorflow as tf\n"
        "from avsdn_tf.training import threads\n"
        "from avsdn_tf.errors import UserError\n"
        "threads.configure(1, 2)\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "try:\n"
        "    threads.configure(3, 0)\n"
        "except UserError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "1 2"
    assert lines[1].startswith(
        "intra_op_threads 3: expected to be set before TensorFlow starts, found it running"
    )


@pytest.mark.parametrize(
    "cores, expected",
    # Up to 2 cores: whole ops per core (1 intra-op, one inter-op thread per core), as measured;
    # bigger machines keep TensorFlow's own defaults (0 = not set).
    [(1, (1, 1)), (2, (1, 2)), (3, (0, 0)), (64, (0, 0))],
)
def test_default_thread_rule_by_cores(cores, expected):
    assert threads.default_threads(cores) == expected


def test_commands_default_threads_follow_the_rule_and_explicit_flags_win():
    script = (
        "import os, sys\n"
        "os.sched_setaffinity(0, {0, 1})\n"  # a 2-core machine, whatever this one has
        "import tensorflow as tf\n"
        "from avsdn_tf.training import threads\n"
        "intra, inter = (int(x) for x in sys.argv[1:])\n"
        "print(threads.configure(intra, inter))\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
        "tf.constant(1.0) + 1.0\n"
        "threads.configure(0, 0)\n"  # the rule's choice once TensorFlow runs: left as it is
        "print('ok')\n"
    )
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 cores to pin the child to")
    seen = {}
    for flags in ((0, 0), (2, 0)):
        done = subprocess.run(
            [sys.executable, "-c", script, *map(str, flags)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        seen[flags] = done.stdout.split("\n")[1:3]
    assert seen[(0, 0)] == ["1 2", "ok"]  # the rule on 2 cores
    assert seen[(2, 0)] == ["2 2", "ok"]  # an explicit intra wins; inter from the rule


def test_data_is_kept_in_memory_when_its_decoded_size_fits_cache_gb(tiny_vector_data):
    info = dataset_info.read(tiny_vector_data)
    size = (
        (TINY_SPLITS["train"] + TINY_SPLITS["val"]) * constants.NUM_SEGMENTS * (16 + 24) * 4 / 1e9
    )
    assert trainer.decide_cache(info, small_hparams(cache_gb=size * 1.01), False, None) == (
        True,
        round(size, 3),
    )
    assert trainer.decide_cache(info, small_hparams(cache_gb=size * 0.99), False, None)[0] is False
    assert trainer.decide_cache(info, small_hparams(cache_gb=0.0), False, None)[0] is False
    assert trainer.decide_cache(info, small_hparams(cache_gb=0.0), False, 4)[1] == round(
        8 * size / (TINY_SPLITS["train"] + TINY_SPLITS["val"]), 3
    )
    with pytest.raises(UserError, match="cache_gb"):
        small_hparams(cache_gb=-1.0).validate()


def test_same_seed_same_result(reference_run, tiny_vector_data, tmp_path):
    _, first = reference_run
    again = trainer.train(
        tiny_vector_data, str(tmp_path / "again"), small_hparams(epochs=3), verbose=0
    )
    assert again["history"] == first["history"]
    assert again["test"]["accuracy"] == first["test"]["accuracy"]


def test_sigkill_mid_run_then_rerun_resumes_and_matches(reference_run, tiny_vector_data, tmp_path):
    _, reference = reference_run
    model_dir = tmp_path / "killed"
    args = [
        "--data_dir",
        tiny_vector_data,
        "--model_dir",
        str(model_dir),
        "--hparams_file",
        _hparams_file(tmp_path),
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "avsdn_tf.train", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = model_dir / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and process.poll() is None:
        # state.json of an epoch is written before its last.keras: wait for both.
        last = model_dir / "checkpoints" / "last.keras"
        if state.exists() and json.loads(state.read_text())["epochs_done"] >= 1 and last.exists():
            break
        time.sleep(0.05)
    assert process.poll() is None, "training ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (model_dir / "metrics.json").exists()

    resumed = _command(*args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming" in resumed.stdout
    assert "taking over the stale lock of dead process" in resumed.stdout  # the killed run's lock
    assert not (model_dir / ".lock").exists()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == reference["test"]["accuracy"]
    assert metrics["val"]["accuracy"] == reference["val"]["accuracy"]
    for got, want in zip(metrics["history"], reference["history"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    tiny_vector_data, tmp_path, monkeypatch
):
    model_dir = str(tmp_path / "run")
    trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=1), verbose=0)
    good = Path(RunDir(model_dir).last_checkpoint).read_bytes()
    # The same data with one training shard poisoned, as a broken feature extractor might write it.
    poisoned = tmp_path / "poisoned"
    shutil.copytree(tiny_vector_data, poisoned)
    info = dataset_info.read(str(poisoned))
    from avsdn_tf import records
    from avsdn_tf.data import shards

    with shards.ShardWriter(str(poisoned), "train", len(info.splits["train"]["shards"])) as writer:
        for _ in range(info.splits["train"]["videos"]):
            audio = np.full((constants.NUM_SEGMENTS, 16), np.nan, np.float32)
            writer.write(
                records.encode_video("bad", 0, 0, 10, 0, audio, np.zeros((10, 24)), [0] * 10)
            )
    # stopped mid-epoch, fit's iterator must not wait for a collection to go
    with every_iterator_freed_without_gc(monkeypatch):
        with pytest.raises(trainer.TrainingDiverged, match="expected a finite value, found nan"):
            trainer.train(str(poisoned), model_dir, small_hparams(epochs=2), verbose=0)
    assert Path(RunDir(model_dir).last_checkpoint).read_bytes() == good
    assert json.loads(Path(RunDir(model_dir).state).read_text())["epochs_done"] == 1


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_inject_nan_at_epoch_shows_the_nan_stop_from_the_command_line(tiny_vector_data, tmp_path):
    model_dir = tmp_path / "run"
    hparams_file = _hparams_file(tmp_path, epochs=3)
    stopped = _command(
        "--data_dir", tiny_vector_data, "--model_dir", model_dir, "--hparams_file", hparams_file,
        "--inject_nan_at_epoch", 2,
    )  # fmt: skip
    assert stopped.returncode == 2, stopped.stderr
    assert "Traceback" not in stopped.stderr
    errors = [line for line in stopped.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: training loss: expected a finite value, found nan at step 1 of epoch 2; the last "
        f"good checkpoint is kept in {RunDir(str(model_dir)).last_checkpoint} (try a lower "
        "--learning_rate)"
    ]
    state = json.loads(Path(RunDir(str(model_dir)).state).read_text())
    assert state["epochs_done"] == 1 and not Path(RunDir(str(model_dir)).metrics).exists()
    resumed = _command(
        "--data_dir", tiny_vector_data, "--model_dir", model_dir, "--hparams_file", hparams_file
    )  # without the fault the run resumes at epoch 2 and finishes
    assert resumed.returncode == 0, resumed.stderr
    history = json.loads(Path(RunDir(str(model_dir)).metrics).read_text())["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3]


def test_bad_input_is_one_clear_error_and_overwrites_nothing(
    tiny_vector_data, tiny_map_data, tmp_path
):
    with pytest.raises(UserError, match="'transformer'"):
        trainer.train(tiny_vector_data, str(tmp_path / "a"), small_hparams(model="transformer"))
    with pytest.raises(UserError, match="data directory not found"):
        trainer.train(str(tmp_path / "missing"), str(tmp_path / "b"), small_hparams())
    empty = tmp_path / "empty"
    synthetic.write_dataset(
        str(empty),
        synthetic.SyntheticConfig(
            videos_per_split={"train": 4, "val": 2, "test": 2, "noisy": 0},
            audio_dim=16,
            visual_dim=24,
        ),
        verbose=False,
    )
    info = dataset_info.read(str(empty))
    info.splits["test"] = {"videos": 0, "shards": []}
    dataset_info.write(str(empty), info)
    with pytest.raises(UserError, match="non-empty 'test' split"):
        trainer.train(str(empty), str(tmp_path / "c"), small_hparams())

    model_dir = str(tmp_path / "vector_run")
    trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=1), verbose=0)
    before = {p.name: p.read_bytes() for p in Path(model_dir).rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="dims of the run being resumed"):
        trainer.train(tiny_map_data, model_dir, small_hparams(epochs=2), verbose=0)
    with pytest.raises(UserError, match="'audio'"):
        trainer.train(
            tiny_vector_data, model_dir, small_hparams(model="audio", epochs=2), verbose=0
        )
    with pytest.raises(
        UserError, match="data_in_memory: expected True .* found False with cache_gb 0.0"
    ):
        trainer.train(tiny_vector_data, model_dir, small_hparams(epochs=2, cache_gb=0.0), verbose=0)
    after = {p.name: p.read_bytes() for p in Path(model_dir).rglob("*") if p.is_file()}
    assert before == after


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_command_line_errors_and_model_help(tmp_path):
    listing = _command("--model", "help")
    assert listing.returncode == 0 and "avsdn_label_guided" in listing.stdout
    missing = _command(
        "--data_dir", str(tmp_path / "nowhere"), "--model_dir", str(tmp_path / "run")
    )
    assert missing.returncode != 0
    assert (
        missing.stderr.strip().splitlines()[-1]
        == f"error: {tmp_path / 'nowhere'}: data directory not found"
    )
    bad_file = tmp_path / "bad.json"
    bad_file.write_text('{"encoder_units": "many"}')
    bad = _command("--hparams_file", str(bad_file), "--model_dir", str(tmp_path / "run"))
    assert bad.returncode != 0 and "'encoder_units'" in bad.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "run").exists()


def _reference_for_global_batch(tiny_vector_data, tmp_path_factory, batch):
    model_dir = str(tmp_path_factory.mktemp("runs") / f"single_{batch}")
    return trainer.train(
        tiny_vector_data, model_dir, small_hparams(epochs=2, batch_size=batch), verbose=0
    )


@pytest.fixture(scope="module")
def single_device_global_32(tiny_vector_data, tmp_path_factory):
    return _reference_for_global_batch(tiny_vector_data, tmp_path_factory, 32)


def _close_to(result, reference):
    for got, want in zip(result["history"], reference["history"], strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=2e-3)
    assert abs(result["val"]["accuracy"] - reference["val"]["accuracy"]) <= 0.05


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_mirrored_strategy_on_two_logical_cpus_matches_single_device(
    tiny_vector_data, tmp_path, single_device_global_32
):
    model_dir = tmp_path / "mirrored"
    done = _command(
        "--data_dir",
        tiny_vector_data,
        "--model_dir",
        str(model_dir),
        "--cpu_devices",
        "2",
        "--strategy",
        "mirrored",
        "--hparams_file",
        _hparams_file(tmp_path, epochs=2, batch_size=16),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    config = json.loads((model_dir / "config.json").read_text())
    assert config["replicas"] == 2 and config["global_batch_size"] == 32
    _close_to(json.loads((model_dir / "metrics.json").read_text()), single_device_global_32)


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_multi_worker_with_two_processes_matches_single_device(
    tiny_vector_data, tmp_path, single_device_global_32
):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    hparams_file = _hparams_file(tmp_path, epochs=2, batch_size=16)
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "avsdn_tf.train",
                    "--data_dir",
                    tiny_vector_data,
                    "--strategy",
                    "multi_worker",
                    "--model_dir",
                    str(tmp_path / f"worker{index}"),
                    "--hparams_file",
                    hparams_file,
                ],
                cwd=ROOT,
                env={**os.environ, "TF_CONFIG": tf_config},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = [worker.communicate(timeout=600) for worker in workers]
    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-2000:]
    chief = json.loads((tmp_path / "worker0" / "metrics.json").read_text())
    assert json.loads((tmp_path / "worker0" / "config.json").read_text())["replicas"] == 2
    assert not (tmp_path / "worker1" / "metrics.json").exists()  # only the chief writes results
    _close_to(chief, single_device_global_32)


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_on_synthetic_data_avsdn_beats_audio_only_and_visual_only(tmp_path):
    data_dir = str(tmp_path / "data")
    synthetic.write_dataset(
        data_dir,
        synthetic.SyntheticConfig(
            videos_per_split={"train": 200, "val": 50, "test": 100, "noisy": 0},
            audio_dim=32,
            visual_dim=32,
            seed=1,
        ),
        verbose=False,
    )
    accuracy = {}
    for name in ("avsdn", "audio", "visual"):
        hp = hparams.HParams(
            model=name,
            epochs=6,
            batch_size=16,
            encoder_units=32,
            lstm_units=32,
            fusion_units=32,
            learning_rate=3e-3,
        )
        accuracy[name] = trainer.train(data_dir, str(tmp_path / name), hp, verbose=0)["test"][
            "accuracy"
        ]
    assert accuracy["avsdn"] > accuracy["audio"] + 0.1, accuracy
    assert accuracy["avsdn"] > accuracy["visual"] + 0.1, accuracy
