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

from testlib import run_command


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
    with locks.directory_lock(str(tmp_path / "run"), "--model_dir"):
        done = run_command(
            "avsdn_tf.train",
            "--data_dir",
            str(tmp_path / "data"),
            "--model_dir",
            str(tmp_path / "run"),
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


def test_sweep_removes_only_what_the_patterns_name_and_prints_a_line_each(tmp_path, capsys):
    files = {
        "state.json.tmp-1a2b3c4d": True,
        "checkpoints/best.tmp-5e6f7a8b.keras": True,
        ".hidden.tmp-00000000": True,  # `*` matches names starting with a dot too
        "state.json": False,
        "checkpoints/best.keras": False,
        "logs/events.tmp-0.v2": False,  # not under a pattern's folder
    }
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / "tmp-export-3-abcdef12" / "variables").mkdir(parents=True)
    (tmp_path / "tmp-export-3-abcdef12" / "variables" / "v.index").write_text("x")
    removed = locks.sweep_stale_temporaries(
        str(tmp_path), ["*.tmp-*", "checkpoints/*.tmp-*", "tmp-export-*"]
    )
    expected = sorted(
        [str(tmp_path / name) for name, stale in files.items() if stale]
        + [str(tmp_path / "tmp-export-3-abcdef12")]
    )
    assert removed == expected
    for name, stale in files.items():
        assert (tmp_path / name).exists() != stale
        if not stale:
            assert (tmp_path / name).read_text() == name
    assert not (tmp_path / "tmp-export-3-abcdef12").exists()
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        f"removed stale temporary {path} of an earlier killed run" for path in removed
    ]


def test_sweep_skips_object_stores_and_missing_directories(tmp_path, capsys):
    assert locks.sweep_stale_temporaries("gs://bucket/run", ["*.tmp-*"]) == []
    assert locks.sweep_stale_temporaries("s3://bucket/run", ["*.tmp-*"]) == []
    assert locks.sweep_stale_temporaries(str(tmp_path / "missing"), ["*.tmp-*"]) == []
    assert capsys.readouterr().out == ""


def test_sweep_runs_only_once_the_lock_is_held(tmp_path):
    stale = tmp_path / "state.json.tmp-1a2b3c4d"
    stale.write_text("{}")
    with locks.directory_lock(str(tmp_path), "`model_dir`"):
        with pytest.raises(UserError, match="held by pid"):
            with locks.directory_lock(str(tmp_path), "`model_dir`", stale=["*.tmp-*"]):
                pass
        assert stale.exists()  # the holder may be writing it
    with locks.directory_lock(str(tmp_path), "`model_dir`", stale=["*.tmp-*"]):
        assert not stale.exists()


def test_lock_beside_a_directory_replaced_whole(tmp_path):
    out = tmp_path / "parent" / "out"
    with locks.directory_lock(str(out), "`output_dir`", beside=True, stale=["out.partial-*"]):
        assert locks.lock_path(str(out), beside=True) == str(tmp_path / "parent" / "out.lock")
        assert (tmp_path / "parent" / "out.lock").exists() and not out.exists()
        with pytest.raises(UserError, match=r"`output_dir` .*/out: expected no other process"):
            with locks.directory_lock(str(out), "`output_dir`", beside=True):
                pass
    assert not (tmp_path / "parent").exists()  # made for the lock, empty again


def test_a_directory_that_cannot_be_made_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(UserError, match=r"`model_dir` .*/file/run: expected a directory .*found"):
        with locks.directory_lock(str(tmp_path / "file" / "run"), "`model_dir`"):
            pass


def test_a_lock_of_another_host_or_unreadable_is_never_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = tmp_path / locks.LOCK_FILE
    lock.write_text(json.dumps({"pid": dead.pid, "host": "some-other-host"}))
    with pytest.raises(UserError, match=rf"held by pid {dead.pid} on host some-other-host"):
        with locks.directory_lock(str(tmp_path), "`model_dir`"):
            pass
    lock.write_text("[1, 2]")  # not the object the lock writes
    with pytest.raises(UserError, match=r"held by pid \? on host \?"):
        with locks.directory_lock(str(tmp_path), "`model_dir`"):
            pass
    assert lock.read_text() == "[1, 2]"
