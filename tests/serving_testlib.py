"""What test_export.py and test_serving.py share: one tiny trained run, exported once per session.

Pytest only shares fixtures between modules through conftest.py; `exported` memoises its result per
session temp directory instead, so both modules' fixtures reuse the same run and export, and
under pytest-xdist the workers share it too (made once, under a file lock: testlib.session_shared).

Each child process pays ~5-10 s of TensorFlow start-up, so the slow ones (saved_model_cli, the
test server) are started in the background as soon as the export exists and collected by the
tests that need them; meanwhile the in-process tests run.
"""

import atexit
import os
import queue
import shutil
import subprocess
import sys
import threading
import time

from avsdn_tf.training import trainer

import testlib
from testlib import command_env, run_command, session_shared, small_hparams

ROOT = str(testlib.ROOT)
MODELS_CONFIG = os.path.join(ROOT, "export", "models.config")
_CACHE = {}


class Background:
    """A command running while the tests go on; result() waits for it like subprocess.run."""

    def __init__(self, command, env=None):
        self.command = command
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env or command_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._result = None

    def result(self, timeout=600):
        if self._result is None:
            stdout, stderr = self.process.communicate(timeout=timeout)
            self._result = subprocess.CompletedProcess(
                self.command, self.process.returncode, stdout, stderr
            )
        return self._result


class ServerProcess:
    """tests/serving_test_server.py on free ports, serving the export as "avsdn" and "av_att"."""

    def __init__(self, export_base, directory):
        with open(
            MODELS_CONFIG
        ) as handle:  # the shipped template, with its base paths pointed here
            config = (
                handle.read()
                .replace("/models/avsdn", export_base)
                .replace("/models/av_att", export_base)
            )
        config_file = os.path.join(directory, "models.config")
        self.log_file = os.path.join(directory, "server.log")
        with open(config_file, "w") as handle:
            handle.write(config)
        with open(self.log_file, "w") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(ROOT, "tests", "serving_test_server.py"),
                    "--model_config_file",
                    config_file,
                    "--port",
                    "0",
                    "--rest_api_port",
                    "0",
                    "--threads",
                    "4",
                ],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=command_env(),
            )
        atexit.register(self.stop)
        self._lines = queue.Queue()
        threading.Thread(
            target=lambda: [self._lines.put(line) for line in self.process.stdout], daemon=True
        ).start()
        self.grpc = self.rest = None

    def wait_ready(self, timeout=300):
        """Block until the server prints READY; returns False (and stops it) if it never does."""
        if self.grpc is None:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                line = ""
            if not line.startswith("READY"):
                self.stop()
                return False
            ports = dict(item.split("=") for item in line.split()[1:])
            self.grpc, self.rest = f"127.0.0.1:{ports['grpc']}", f"127.0.0.1:{ports['rest']}"
        return True

    def log(self):
        with open(self.log_file) as handle:
            return handle.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


class Exported:
    """A trained run and its export SERVING/avsdn/1, with the background helpers started on it."""

    def __init__(self, data_dir, run_dir, export_base, outputs, directory):
        """outputs: (stdout, stderr) of the export command."""
        self.data_dir, self.run_dir, self.export_base = data_dir, run_dir, export_base
        self.version_dir = os.path.join(export_base, "1")
        self.command_output, self.command_stderr = outputs
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        self.saved_model_cli = Background([cli, "show", "--all", "--dir", self.version_dir])
        self.server = ServerProcess(export_base, directory)


def exported(tmp_path_factory, data_dir):
    """Train AVSDN for one epoch on 16 videos of a copy of data_dir and export it with the real
    command: once per session, also across pytest-xdist workers (testlib.session_shared).

    Returns:
        this process's Exported (its own saved_model_cli and test server on the shared export).
    """
    key = str(tmp_path_factory.getbasetemp())
    if key not in _CACHE:
        with session_shared(tmp_path_factory, "serving_export") as (root, done):
            data, run_dir = str(root / "data"), str(root / "run")
            export_base = str(root / "serving" / "avsdn")
            output, errors = root / "export_output.txt", root / "export_stderr.txt"
            if not done:
                shutil.copytree(data_dir, data)
                trainer.train(data, run_dir, small_hparams(epochs=1), max_videos=16, verbose=0)
                started = time.time()
                result = run_command(
                    "export.export_model", "--model_dir", run_dir, "--output_dir", export_base
                )
                assert result.returncode == 0, result.stderr[-3000:]
                print(f"export command: {time.time() - started:.1f}s")
                output.write_text(result.stdout)
                errors.write_text(result.stderr)
        _CACHE[key] = Exported(
            data,
            run_dir,
            export_base,
            (output.read_text(), errors.read_text()),
            str(tmp_path_factory.mktemp("serving")),
        )
    return _CACHE[key]
