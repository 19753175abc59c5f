"""One writer per run directory: refusal naming the holder, stale-lock takeover, waiting."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from avsdn_tf import locks
from avsdn_tf.errors import UserError

from testlib import ROOT


def test_second_holder_is_refused_with_the_holders_pid_and_host(tmp_path):
    with locks.directory_lock(str(tmp_path), "--model_dir"):
        holder = json.loads((tmp_path / locks.LOCK_FILE).read_text())
        with pytest.raises(UserError, match=rf"held by pid {holder['pid']} on host "):
            with locks.directory_lock(str(tmp_path), "--model_dir"):
                pass
    assert not (tmp_path / locks.LOCK_FILE).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / locks.LOCK_FILE).write_text(
        json.dumps({"pid": dead.pid, "host": socket.gethostname()})
    )
    with locks.directory_lock(str(tmp_path), "--model_dir"):
        assert json.loads((tmp_path / locks.LOCK_FILE).read_text())["pid"] != dead.pid


def test_wait_blocks_until_the_holder_releases(tmp_path, monkeypatch):
    monkeypatch.setattr(locks, "WAIT_POLL_SECONDS", 0.05)
    order = []
    with locks.directory_lock(str(tmp_path), "--model_dir"):

        def second():
            with locks.directory_lock(str(tmp_path), "--model_dir", wait=True):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first released")
    thread.join(timeout=10)
    assert order == ["first released", "second"]


def test_train_command_on_a_locked_run_directory_is_refused_without_traceback(tmp_path):
    root = ROOT
    with locks.directory_lock(str(tmp_path / "run"), "--model_dir"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "avsdn_tf.train",
                "--data_dir",
                str(tmp_path / "data"),
                "--model_dir",
                str(tmp_path / "run"),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"held by pid {os.getpid()} on host {socket.gethostname()}" in output
    assert "Traceback" not in output


def test_directory_created_by_a_refused_or_empty_run_is_removed_but_an_existing_one_kept(tmp_path):
    with locks.directory_lock(str(tmp_path / "new"), "--model_dir"):
        assert (tmp_path / "new" / locks.LOCK_FILE).exists()
    assert not (tmp_path / "new").exists()
    (tmp_path / "old").mkdir()
    with locks.directory_lock(str(tmp_path / "old"), "--model_dir"):
        pass
    assert (tmp_path / "old").is_dir() and not list((tmp_path / "old").iterdir())
    with locks.directory_lock(str(tmp_path / "used"), "--model_dir"):
        (tmp_path / "used" / "state.json").write_text("{}")
    assert (tmp_path / "used" / "state.json").exists()
