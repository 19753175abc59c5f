"""extract --runner DaskRunner on a real dask.distributed cluster on 127.0.0.1.

dask_testlib starts a scheduler and two one-thread worker processes (no nanny) per test that
needs them; the videos, the VGGish checkpoint and the random VGG-19 weights are
media_testlib's. The commands run in subprocesses, as a user runs them, so what they print is
what a terminal would show.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from avsdn_tf import dataset_info, extract
from avsdn_tf.features import assembly

from dask_testlib import dask_cluster
from media_testlib import RUNNER_CLIPS, extract_inputs
from media_testlib import feature_args as _feature_args
from testlib import ROOT, free_ports, one_error_line, read_records, run_in_process

pytest.importorskip("av")
pytest.importorskip("apache_beam")
pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    clips = RUNNER_CLIPS
    # clip_a: two records; clip_d: no row (skipped by the driver); silent: no audio (skipped
    # by a worker).
    labels = (
        "video_id,category,start,end,split\nclip_a,Bark,1,2,\nclip_a,Banjo,0,1,\n"
        "clip_b,,0,0,val\nclip_c,Cat,0,3,\nsilent,Bark,0,2,\n"
    )
    return extract_inputs(tmp_path_factory, "dask_videos", clips, labels)


def _args(inputs, output):
    return [
        f"--videos={inputs['videos']}",
        f"--output_dir={output}",
        f"--labels={inputs['labels']}",
        "--videos_per_shard=1",
        *_feature_args(inputs),
    ]


def _start(args):
    """`python -m avsdn_tf.extract ARGS` started in a subprocess (stdout and stderr piped)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the command's own setting, as a user gets it
    return subprocess.Popen(
        [sys.executable, "-m", "avsdn_tf.extract", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _run(args, timeout=300):
    process = _start(args)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def _records(data_dir):
    """{(shard, video_id, category): {feature: array}} of every shard of the data set."""
    found = {}
    for split in dataset_info.read(data_dir).splits.values():
        for shard in split["shards"]:
            for record in read_records(data_dir, shard=shard):
                found[(shard, record["video_id"].decode(), int(record["category"]))] = record
    return found


def _same_data_directory(found_dir, expected_dir):
    """The two data directories hold the same records per shard (features to 1e-6), the same
    dataset_info.json, statistics and skipped videos."""
    assert dataset_info.read(found_dir) == dataset_info.read(expected_dir)
    want, got = _records(expected_dir), _records(found_dir)
    assert sorted(got) == sorted(want)
    for key, record in want.items():
        for name, value in record.items():
            if np.asarray(value).dtype.kind == "f":
                np.testing.assert_allclose(got[key][name], value, rtol=1e-6, atol=1e-6)
            else:
                np.testing.assert_array_equal(got[key][name], value)
    for name in ("normalization.json", assembly.SKIPPED_FILE):
        with open(os.path.join(expected_dir, name)) as a, open(os.path.join(found_dir, name)) as b:
            assert json.load(b) == json.load(a), name
    features = os.path.join(found_dir, assembly.FEATURES_DIR)
    assert sorted(os.listdir(features)) == ["clip_a.npz", "clip_b.npz", "clip_c.npz"]
    assert not [name for name in os.listdir(found_dir) if name.startswith(".beam-")]


@pytest.fixture(scope="module")
def single(inputs):
    """The single process's data directory of the same videos."""
    output = str(inputs["root"] / "single")
    code, _, err = _run(_args(inputs, output))
    assert code == 0, err[-3000:]
    return output


def _summary(directory):
    with open(os.path.join(directory, assembly.SUMMARY_FILE)) as handle:
        return json.load(handle)


@pytest.mark.slow
def test_two_workers_write_what_the_single_process_writes_and_print_little(
    inputs, single, tmp_path
):
    output = str(tmp_path / "dask")
    with dask_cluster(str(tmp_path), workers=2) as cluster:
        code, out, err = _run(
            [
                *_args(inputs, output),
                "--runner=DaskRunner",
                f"--dask_client_address={cluster['address']}",
            ]
        )
        worker_logs = [open(log).read() for log in cluster["logs"]]
    assert code == 0, err[-3000:]
    _same_data_directory(output, single)
    skipped = json.load(open(os.path.join(output, assembly.SKIPPED_FILE)))["skipped"]
    assert sorted(os.path.basename(path) for path in skipped) == ["clip_d.mp4", "silent.mp4"]
    summary = _summary(output)
    assert (summary["runner"], summary["dask_workers"], summary["dask_partitions"]) == (
        "DaskRunner",
        2,
        4,  # one per video with a label row
    )
    assert (summary["videos_extracted_now"], summary["videos_already_done"]) == (3, 0)
    assert summary["videos_skipped"] == 2 and summary["seconds_of_video_extracted_now"] == 8
    # Both workers extracted videos (one partition per video, one thread each).
    assert all("extracting" in log for log in worker_logs), worker_logs
    # The terminal: the job line, progress lines "K of 4 videos done", the summary; no INFO.
    lines = (out + err).strip().splitlines()
    assert len(lines) <= 4 + 1 + 3, lines
    assert lines[0] == f"extract: 5 videos on DaskRunner at {cluster['address']} (2 workers)"
    summary_line = next(line for line in lines if line.startswith(f"extract: {output}: "))
    assert "3 videos extracted now, 0 already done, 2 skipped" in summary_line
    assert any(re.match(r"extract: 4 of 4 videos done on DaskRunner", line) for line in lines)
    assert not [line for line in lines if re.search(r"\bINFO\b|^I\d{4}|Traceback", line)], lines


def _kill_first_extracting_worker(cluster, process, timeout=240):
    """SIGKILL the first worker that logs "extracting <path>" (it then loads the networks and
    extracts, seconds of work); returns (its index, the path). Polls every 20 ms."""
    deadline = time.time() + timeout
    while time.time() < deadline and process.poll() is None:
        for index, log in enumerate(cluster["logs"]):
            found = re.search(r"extracting (\S+) in process", open(log).read())
            if found:
                os.kill(cluster["workers"][index].pid, signal.SIGKILL)
                return index, found.group(1)
        time.sleep(0.02)
    raise AssertionError(f"no worker started extracting: {process.communicate()}")


@pytest.mark.slow
def test_a_worker_killed_while_it_extracts_does_not_fail_the_job(inputs, single, tmp_path):
    output = str(tmp_path / "dask")
    with dask_cluster(str(tmp_path), workers=2) as cluster:
        process = _start(
            [
                *_args(inputs, output),
                "--runner=DaskRunner",
                f"--dask_client_address={cluster['address']}",
            ]
        )
        killed, path = _kill_first_extracting_worker(cluster, process)
        out, err = process.communicate(timeout=300)
        assert cluster["workers"][killed].wait() == -signal.SIGKILL
        survivor = open(cluster["logs"][1 - killed]).read()
    assert process.returncode == 0, err[-3000:]
    # The video the killed worker held was extracted again by the other one.
    assert f"extracting {path} in process" in survivor
    _same_data_directory(output, single)  # no video missing, none twice in the shards
    summary = _summary(output)
    assert (summary["videos_extracted_now"], summary["videos_already_done"]) == (3, 0)
    assert not [
        name for name in os.listdir(os.path.join(output, assembly.FEATURES_DIR)) if ".tmp-" in name
    ]


def test_an_unreachable_scheduler_is_one_message_within_the_timeout(inputs, tmp_path, capsys):
    output = str(tmp_path / "out")
    address = f"tcp://127.0.0.1:{free_ports()[0]}"  # nothing listens there
    started = time.time()
    status, _, err = run_in_process(
        extract,
        *_args(inputs, output),
        "--runner=DaskRunner",
        f"--dask_client_address={address}",
        "--dask_connection_timeout=2",
        capsys=capsys,
    )
    elapsed = time.time() - started
    assert elapsed < 2 + 15  # the timeout, plus the time to list videos and read labels
    assert one_error_line(status, err, allow_tf_log=False).startswith(
        "error: --dask_client_address: expected a Dask scheduler answering within "
        f"--dask_connection_timeout=2 s, found no answer from {address}"
    )
    assert not os.path.exists(output)  # refused before anything was written


def test_dask_runner_needs_a_scheduler_address(inputs, tmp_path, capsys):
    output = str(tmp_path / "out")
    status, _, err = run_in_process(
        extract, *_args(inputs, output), "--runner=DaskRunner", capsys=capsys
    )
    assert status == 2
    assert err.strip().splitlines() == [
        "error: --dask_client_address: expected the address of a running Dask scheduler "
        "(tcp://HOST:PORT) for --runner DaskRunner, found none (nor --dask_scheduler_file)"
    ]
    assert not os.path.exists(output)


@pytest.mark.slow
def test_direct_runner_prints_a_progress_line_and_the_summary_only(inputs, tmp_path):
    output = str(tmp_path / "direct")
    code, out, err = _run(
        [
            *_args(inputs, output),
            "--runner=DirectRunner",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",  # Beam's worker processes print too
        ]
    )
    assert code == 0, err[-3000:]
    lines = (out + err).strip().splitlines()
    assert len(lines) <= 1 + 6 + 3, "\n".join(lines)  # job line, a count per line, summary
    assert "extract: 5 of 5 videos done on DirectRunner" in out
    assert not [line for line in lines if re.search(r"\bINFO\b|^[IW]\d{4}|Traceback", line)], lines


@pytest.mark.parametrize("value, found", [("abc", "something else"), ("0", "0")])
def test_the_connection_timeout_is_whole_seconds(inputs, tmp_path, capsys, value, found):
    output = str(tmp_path / "out")
    args = [
        *_args(inputs, output),
        "--runner=DaskRunner",
        f"--dask_client_address=tcp://127.0.0.1:{free_ports()[0]}",
        "--dask_connection_timeout",
        value,
    ]
    status, _, err = run_in_process(extract, *args, capsys=capsys)
    assert status == 2
    assert err.strip().splitlines() == [
        "error: --dask_connection_timeout: expected a whole number of seconds above 0, "
        f"found {found}"
    ]
    assert not os.path.exists(output)


@pytest.mark.slow
def test_a_failed_job_publishes_nothing_and_a_rerun_succeeds(inputs, single, tmp_path):
    output = tmp_path / "dask"
    (output / assembly.FEATURES_DIR).mkdir(parents=True)
    damaged = output / assembly.FEATURES_DIR / "clip_c.npz"
    damaged.write_bytes(b"not an npz")  # not written by extract: the job must fail on it
    with dask_cluster(str(tmp_path), workers=2) as cluster:
        args = [
            *_args(inputs, str(output)),
            "--runner=DaskRunner",
            f"--dask_client_address={cluster['address']}",
        ]
        code, out, err = _run(args)
        assert code == 2, err[-3000:]
        message = err.strip().splitlines()
        assert len(message) == 1, message
        assert message[0].startswith(f"error: the Beam job on DaskRunner at {cluster['address']}")
        assert f"{damaged}: expected the features extract writes" in message[0]
        assert "nothing was published" in message[0]
        log = re.search(r"the runner's log: (\S+)$", message[0]).group(1)
        os.remove(log)
        assert sorted(os.listdir(output)) == [assembly.CONFIG_FILE, assembly.FEATURES_DIR]

        damaged.unlink()
        code, out, err = _run(args)
    assert code == 0, err[-3000:]
    _same_data_directory(str(output), single)
    summary = _summary(str(output))
    assert summary["videos_extracted_now"] + summary["videos_already_done"] == 3
    assert summary["videos_extracted_now"] >= 1  # clip_c at least
