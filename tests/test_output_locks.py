"""One lock per output, and the temporaries of killed runs swept once it is held (issue 14).

For each command that writes an output (train, export, prepare, extract): a lock file of a live
process (a sleeping child started here) makes it exit 2 with one line naming that pid and host,
and it writes nothing (not even the sweep); a lock of a dead process is taken over, what killed
runs left under temporary names is removed, and the real outputs stay as they were. Train and the
export refusal run as commands (subprocesses); the rest call the command's main or the library
function in this process.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import extract, locks, prepare
from avsdn_tf.data import shards
from avsdn_tf.errors import UserError
from avsdn_tf.features import assembly, feature_extractor
from avsdn_tf.training import trainer
from export import export_model, verify

from ave_testlib import write_ave_dir
from testlib import one_error_line, run_command, run_in_process, small_hparams

HOST = socket.gethostname()
STALE_LINE = "removed stale temporary {} of an earlier killed run"


@pytest.fixture
def live_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield child.pid
    child.kill()
    child.wait()


@pytest.fixture
def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hold(lock_file, pid):
    """Write a lock file as locks.directory_lock does, naming `pid` on this host."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock_file.write_text(json.dumps({"pid": pid, "host": HOST}))


def tree(directory):
    """{relative path: file bytes, or None for a directory} of everything under `directory`."""
    found = {}
    for parent, directories, files in os.walk(directory):
        for name in directories:
            found[os.path.relpath(os.path.join(parent, name), directory)] = None
        for name in files:
            path = os.path.join(parent, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, directory)] = handle.read()
    return found


def make(path, content=b"left by a killed run"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def assert_refused(status, stderr, flag, directory, pid):
    line = one_error_line(status, stderr)  # a subprocess may show TF's C++ start-up lines too
    assert line.startswith(f"error: {flag} {directory}: expected no other process writing it")
    assert f"held by pid {pid} on host {HOST}" in line
    assert "--wait waits for it" in line


# --------------------------------------------------------------------------------------------
# train: --model_dir/.lock; run directory temporaries *.tmp-* and checkpoints/*.tmp-*.

TRAIN_FLAGS = [
    "--epochs=1",
    "--max_videos=16",
    "--batch_size=16",
    "--nounroll",
    "--encoder_units=8",
    "--fusion_units=8",
    "--lstm_units=8",
    "--classifier_units=8",
]


def test_train_refuses_a_run_directory_a_live_process_holds(tmp_path, tiny_vector_data, live_pid):
    run = tmp_path / "run"
    hold(run / locks.LOCK_FILE, live_pid)
    make(run / "state.json.tmp-1a2b3c4d")
    before = tree(run)
    done = run_command(
        "avsdn_tf.train", "--data_dir", tiny_vector_data, "--model_dir", run, *TRAIN_FLAGS
    )
    assert_refused(done.returncode, done.stderr, "--model_dir", run, live_pid)
    assert "Traceback" not in done.stdout + done.stderr
    assert tree(run) == before


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_train_takes_over_a_dead_processs_lock_and_sweeps_its_temporaries(
    tmp_path, tiny_vector_data, dead_pid
):
    run = tmp_path / "run"
    hold(run / locks.LOCK_FILE, dead_pid)
    stale = [
        make(run / "state.json.tmp-1a2b3c4d"),
        make(run / "checkpoints" / "best.tmp-5e6f7a8b.keras"),
    ]
    notes = make(run / "notes.txt", b"the user's own file")
    done = run_command(
        "avsdn_tf.train", "--data_dir", tiny_vector_data, "--model_dir", run, *TRAIN_FLAGS
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"taking over the stale lock of dead process {dead_pid}" in done.stdout
    for path in stale:
        assert STALE_LINE.format(path) in done.stdout
        assert not path.exists()
    assert notes.read_bytes() == b"the user's own file"
    assert (run / "metrics.json").exists() and (run / "checkpoints" / "best.keras").exists()
    assert not (run / locks.LOCK_FILE).exists()
    assert not [name for name in tree(run) if ".tmp-" in name]


# --------------------------------------------------------------------------------------------
# export: --output_dir/.lock; tmp-export-* directories of killed exports.


def test_export_refuses_an_export_base_a_live_process_holds(tmp_path, live_pid):
    base = tmp_path / "serving" / "avsdn"
    hold(base / locks.LOCK_FILE, live_pid)
    make(base / "1" / "saved_model.pb", b"version 1")
    make(base / f"{export_model.TEMPORARY_PREFIX}2-1a2b3c4d" / "saved_model.pb")
    before = tree(base)
    # Refused before the run directory is read (it does not even exist).
    done = run_command(
        "export.export_model", "--model_dir", tmp_path / "no_run", "--output_dir", base
    )
    assert_refused(done.returncode, done.stderr, "--output_dir", base, live_pid)
    assert "Traceback" not in done.stdout + done.stderr
    assert tree(base) == before


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_vector_data):
    run = str(tmp_path_factory.mktemp("locks") / "run")
    trainer.train(tiny_vector_data, run, small_hparams(epochs=1), max_videos=16, verbose=0)
    return run


def test_export_takes_over_a_dead_processs_lock_and_sweeps_its_temporaries(
    tmp_path, trained_run, dead_pid, monkeypatch, capsys
):
    base = tmp_path / "serving" / "avsdn"
    hold(base / locks.LOCK_FILE, dead_pid)
    version_1 = tree(make(base / "1" / "saved_model.pb", b"version 1").parent)
    stale = make(base / f"{export_model.TEMPORARY_PREFIX}2-1a2b3c4d" / "saved_model.pb").parent
    # The check in a fresh process is tested by tests/export; here it runs in this process.
    monkeypatch.setattr(export_model, "verify_in_fresh_process", verify.verify)
    final = export_model.export(trained_run, str(base))
    printed = capsys.readouterr().out
    assert final == str(base / "2")
    assert f"taking over the stale lock of dead process {dead_pid}" in printed
    assert STALE_LINE.format(stale) in printed and not stale.exists()
    assert tree(base / "1") == version_1
    assert (base / "2" / "saved_model.pb").exists()
    assert sorted(os.listdir(base)) == ["1", "2"]  # no lock, no temporary left


def test_export_library_call_names_the_holder_too(tmp_path, live_pid):
    base = tmp_path / "avsdn"
    hold(base / locks.LOCK_FILE, live_pid)
    with pytest.raises(UserError, match=rf"`export_base` {base}: .* held by pid {live_pid} "):
        export_model.export(str(tmp_path / "no_run"), str(base))
    assert sorted(os.listdir(base)) == [locks.LOCK_FILE]


# --------------------------------------------------------------------------------------------
# prepare: OUT.lock beside --output_dir (OUT is replaced whole); OUT.partial-*, OUT.old-*.


def test_prepare_refuses_an_output_a_live_process_holds(tmp_path, live_pid, capsys):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    out = tmp_path / "out"
    hold(tmp_path / f"out{locks.BESIDE_SUFFIX}", live_pid)
    make(tmp_path / "out.partial-123-abcdef" / "train-00000-of-00001.tfrecord")
    before = tree(tmp_path)
    status, _, stderr = run_in_process(
        prepare, f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={out}", capsys=capsys
    )
    assert_refused(status, stderr, "--output_dir", out, live_pid)
    assert tree(tmp_path) == before  # no OUT, nothing swept


def test_prepare_takes_over_a_dead_processs_lock_and_sweeps_its_temporaries(
    tmp_path, dead_pid, capsys
):
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    out = tmp_path / "out"
    args = [f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={out}"]
    assert run_in_process(prepare, *args, capsys=capsys)[0] == 0
    first = tree(out)
    hold(tmp_path / f"out{locks.BESIDE_SUFFIX}", dead_pid)
    stale = [
        make(tmp_path / "out.partial-123-abcdef" / "train-00000-of-00001.tfrecord").parent,
        make(tmp_path / "out.old-abcdef" / "dataset_info.json").parent,
    ]
    other = make(tmp_path / "outside.partial-123-abcdef" / "x").parent  # another output's
    ave = tree(tmp_path / "ave")
    status, printed, stderr = run_in_process(prepare, *args, capsys=capsys)
    assert status == 0, stderr
    assert f"taking over the stale lock of dead process {dead_pid}" in printed
    for path in stale:
        assert STALE_LINE.format(path) in printed and not path.exists()
    assert other.exists() and tree(tmp_path / "ave") == ave
    assert sorted(os.listdir(tmp_path)) == ["ave", "out", "outside.partial-123-abcdef"]
    second = tree(out)  # the same release gives the same records
    assert {name for name in second if name.endswith(".tfrecord")} == {
        name for name in first if name.endswith(".tfrecord")
    }


def test_prepare_with_wait_waits_for_a_live_holder_then_writes(tmp_path, monkeypatch):
    """--wait (README: "waits instead"): the command keeps trying while the holder lives and
    writes its output once the lock is gone, taking nothing over."""
    monkeypatch.setattr(locks, "WAIT_POLL_SECONDS", 0.05)
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    out, lock = tmp_path / "out", tmp_path / f"out{locks.BESIDE_SUFFIX}"
    hold(lock, os.getpid())  # this process: alive, on this host
    finished = {}
    command = threading.Thread(
        target=lambda: finished.update(
            status=run_in_process(
                prepare, f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={out}", "--wait"
            )[0]
        )
    )
    command.start()
    time.sleep(2.0)  # 40 tries of the lock
    assert command.is_alive() and not out.exists()  # still waiting, nothing written
    lock.unlink()  # the holder ends (directory_lock removes its lock file)
    command.join(timeout=120)
    assert finished == {"status": 0}
    assert (out / "dataset_info.json").exists() and not lock.exists()


def test_prepare_keeps_an_old_output_when_the_new_one_never_arrived(tmp_path, dead_pid, capsys):
    # Killed between publish_directory's two renames: OUT is gone, OUT.old-* is all there is.
    write_ave_dir(tmp_path / "ave", layout="vector", noisy=False)
    hold(tmp_path / f"out{locks.BESIDE_SUFFIX}", dead_pid)
    old = make(tmp_path / "out.old-abcdef" / "dataset_info.json", b"{}").parent
    args = [f"--ave_dir={tmp_path / 'ave'}", f"--output_dir={tmp_path / 'out'}"]
    assert run_in_process(prepare, *args, capsys=capsys)[0] == 0
    assert (old / "dataset_info.json").read_bytes() == b"{}"
    assert (tmp_path / "out" / "dataset_info.json").exists()


# --------------------------------------------------------------------------------------------
# extract: --output_dir/.lock; *.tmp-* files (also in features/) and the .assemble-* directory.


def extract_args(tmp_path):
    """Flags of an extract of two (dummy) videos whose features exist already: no network runs."""
    videos = tmp_path / "videos"
    for name in ("clip_a.mp4", "clip_b.mp4"):
        make(videos / name, b"features already extracted")
    checkpoint = make(tmp_path / "vggish_model.ckpt", b"never read")
    return [
        f"--videos={videos}",
        f"--output_dir={tmp_path / 'out'}",
        f"--vggish_checkpoint={checkpoint}",
        "--visual_backbone=vgg19",
        "--visual_layout=vector",
    ]


def features(out, video_id, seconds, seed):
    """features/<video_id>.npz as extract writes it: audio [T, 128], visual [T, 512]."""
    rng = np.random.default_rng(seed)
    path = out / assembly.FEATURES_DIR / f"{video_id}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        audio=rng.random((seconds, 128), np.float32),
        visual=rng.random((seconds, 512), np.float32),
        seconds=np.float64(seconds),
        source=np.str_(f"{video_id}.mp4"),
    )
    return path


def test_extract_refuses_an_output_a_live_process_holds(tmp_path, live_pid, capsys):
    out = tmp_path / "out"
    args = extract_args(tmp_path)
    hold(out / locks.LOCK_FILE, live_pid)
    make(out / assembly.FEATURES_DIR / "clip_a.npz.tmp-1a2b3c4d.npz")
    before = tree(out)
    status, _, stderr = run_in_process(extract, *args, capsys=capsys)
    assert_refused(status, stderr, "--output_dir", out, live_pid)
    assert tree(out) == before


def test_extract_takes_over_a_dead_processs_lock_and_sweeps_its_temporaries(
    tmp_path, dead_pid, monkeypatch, capsys
):
    def no_networks(*args, **kwargs):
        raise AssertionError("every video was done: no network should be loaded")

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", no_networks)
    out = tmp_path / "out"
    args = extract_args(tmp_path)
    hold(out / locks.LOCK_FILE, dead_pid)
    done = [features(out, "clip_a", 3, 0), features(out, "clip_b", 2, 1)]
    kept = {path: path.read_bytes() for path in done}
    stale = [
        make(out / assembly.FEATURES_DIR / "clip_c.npz.tmp-1a2b3c4d.npz"),
        make(out / f"{assembly.CONFIG_FILE}.tmp-5e6f7a8b"),
        make(out / f"{assembly.ASSEMBLY_PREFIX}9c0d1e2f" / "train-00000-of-00001.tfrecord").parent,
    ]
    status, printed, stderr = run_in_process(extract, *args, capsys=capsys)
    assert status == 0, stderr
    assert f"taking over the stale lock of dead process {dead_pid}" in printed
    for path in stale:
        assert STALE_LINE.format(path) in printed and not path.exists()
    assert {path: path.read_bytes() for path in done} == kept
    summary = json.loads((out / assembly.SUMMARY_FILE).read_text())
    assert summary["videos_already_done"] == 2 and summary["records"] == {"train": 2}
    assert not (out / locks.LOCK_FILE).exists()
    assert not [name for name in tree(out) if ".tmp-" in name or "assemble" in name]


def test_extract_on_a_full_disk_is_one_message_and_keeps_the_extracted_features(
    tmp_path, monkeypatch, capsys
):
    def no_space(self, serialized):
        raise tf.errors.ResourceExhaustedError(None, None, "shard; No space left on device")

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", None)  # every video is done already
    monkeypatch.setattr(shards.ShardWriter, "write", no_space)
    out = tmp_path / "out"
    done = [features(out, "clip_a", 3, 0), features(out, "clip_b", 2, 1)]
    status, _, stderr = run_in_process(extract, *extract_args(tmp_path), capsys=capsys)
    assert status == 2
    assert stderr.strip().splitlines() == [
        f"error: {out}: expected free space to write it, found No space left on device (ENOSPC)"
    ]
    assert all(path.exists() for path in done)
    assert not [name for name in tree(out) if ".tmp-" in name or "assemble" in name]
    assert not (out / "dataset_info.json").exists()
