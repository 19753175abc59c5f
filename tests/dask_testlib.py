"""A real dask.distributed cluster on 127.0.0.1 for the tests: a scheduler and worker processes.

Each is `python -m distributed.cli.dask_scheduler` / `dask_worker` in its own process (no nanny,
so a worker killed stays dead), on a free port, logging to a file under the test's directory;
all are killed by pid when the block ends.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

from testlib import ROOT, free_ports

START_SECONDS = 60  # at most, for the scheduler and every worker to be up


def _environment():
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        # the workers' own log lines (dask_pipeline logs "extracting <path> in process <pid>")
        "DASK_LOGGING__AVSDN_TF": "info",
    }


def _start(args, log_path):
    log = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_environment(),
        cwd=str(ROOT),
        start_new_session=True,
    )
    log.close()
    return process


def _kill(process):
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _wait_for_workers(address, count, processes):
    from distributed import Client

    deadline = time.time() + START_SECONDS
    with Client(address, timeout=START_SECONDS, set_as_default=False) as client:
        while len(client.nthreads()) < count:
            dead = [p.args for p in processes if p.poll() is not None]
            assert not dead and time.time() < deadline, f"the cluster did not start: {dead}"
            time.sleep(0.2)


@contextlib.contextmanager
def dask_cluster(log_dir, workers=2):
    """Yield {"address": "tcp://127.0.0.1:PORT", "workers": [Popen], "logs": [worker log
    paths]} for a scheduler and `workers` one-thread worker processes; all killed at the end."""
    (port,) = free_ports()
    address = f"tcp://127.0.0.1:{port}"
    processes = [
        _start(
            [
                "distributed.cli.dask_scheduler",
                "--host=127.0.0.1",
                f"--port={port}",
                "--no-dashboard",
            ],
            os.path.join(log_dir, "scheduler.log"),
        )
    ]
    logs = [os.path.join(log_dir, f"worker-{i}.log") for i in range(workers)]
    try:
        for log in logs:
            processes.append(
                _start(
                    [
                        "distributed.cli.dask_worker",
                        address,
                        "--no-nanny",
                        "--nthreads=1",
                        "--host=127.0.0.1",
                        "--no-dashboard",
                    ],
                    log,
                )
            )
        _wait_for_workers(address, workers, processes)
        yield {"address": address, "workers": processes[1:], "logs": logs}
    finally:
        for process in reversed(processes):
            _kill(process)
