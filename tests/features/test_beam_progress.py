"""The progress line and the quiet logs every Beam runner's extraction shows (beam_progress)."""

import io
import logging
import os
import subprocess
import sys
import time

import pytest

from avsdn_tf.features import beam_progress


def test_the_progress_line_counts_the_markers_written(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_progress, "POLL_SECONDS", 0.01)
    staging, out = str(tmp_path), io.StringIO()
    beam_progress.make_staging(staging)
    with beam_progress.watch(staging, 3, "DaskRunner", out=out):
        time.sleep(0.1)
        beam_progress.write_marker(staging, 2, {"index": 2})
        beam_progress.write_marker(staging, 0, {"index": 0})
        time.sleep(0.1)
        beam_progress.write_marker(staging, 0, {"index": 0})  # a retried video: no new count
        time.sleep(0.1)
    counts = [line.split(" videos")[0] for line in out.getvalue().splitlines()]
    assert counts[0] == "extract: 0 of 3"
    assert counts[-1] == "extract: 2 of 3"
    assert counts == sorted(counts)
    # A line per new count while the job runs (the retried video adds none), then the final one.
    assert all(a != b for a, b in zip(counts[:-2], counts[1:-1]))
    assert beam_progress.count_markers(staging) == 2
    assert not [
        name for name in (tmp_path / beam_progress.MARKERS_DIR).iterdir() if "tmp" in name.name
    ]


def test_a_failed_job_prints_no_final_line_and_silent_prints_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(beam_progress, "POLL_SECONDS", 10)  # only the final line could show
    out = io.StringIO()
    try:
        with beam_progress.watch(str(tmp_path), 2, "DirectRunner", out=out):
            raise RuntimeError("the job failed")
    except RuntimeError:
        pass
    assert out.getvalue() == ""
    with beam_progress.watch(str(tmp_path), 2, "DirectRunner", verbose=False, out=out):
        pass
    assert out.getvalue() == ""


def test_quiet_logs_keeps_info_off_and_restores_the_levels():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append((record.name, record.levelname))

    handler = Keep(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    beam = logging.getLogger("apache_beam.runners.test")
    worker = logging.getLogger("avsdn_tf.features.beam_pipeline")
    before = logging.getLogger("apache_beam").level, worker.level
    old_root = root.level
    root.setLevel(logging.DEBUG)
    try:
        with beam_progress.quiet_logs():
            beam.info("a bundle ran")
            beam.warning("a real problem")
            worker.warning("skipped: x.mp4")
            worker.error("a worker error")
        with beam_progress.quiet_logs(verbose_logs=True):
            beam.info("asked for")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_root)
    assert records == [
        ("apache_beam.runners.test", "WARNING"),
        ("avsdn_tf.features.beam_pipeline", "ERROR"),
        ("apache_beam.runners.test", "INFO"),
    ]
    assert (logging.getLogger("apache_beam").level, worker.level) == before


def test_runner_log_takes_what_processes_print_and_keeps_it_only_when_named(capfd):
    with beam_progress.runner_log() as log:
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('INFO: a worker\\n')"])
        os.write(2, b"INFO: this process\n")
    assert capfd.readouterr().err == ""
    assert not os.path.exists(log)  # removed: the block ended without error
    with pytest.raises(RuntimeError), beam_progress.runner_log() as log:
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('a worker died\\n')"])
        raise RuntimeError(f"the job failed; the runner's log: {log}")
    assert open(log).read() == "a worker died\n"
    os.remove(log)
    with pytest.raises(RuntimeError), beam_progress.runner_log() as other:
        raise RuntimeError("a mistake before the job")
    assert not os.path.exists(other)
    with beam_progress.runner_log(verbose_logs=True) as none:
        os.write(2, b"shown\n")
    assert none is None and capfd.readouterr().err == "shown\n"
