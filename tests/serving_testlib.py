"""What test_export.py and test_serving.py share: one tiny trained run, exported once per session.

Pytest only shares fixtures between modules through conftest.py; these helpers memoise their
result per session temp directory instead, so both modules' fixtures reuse the same run and export.
"""

import os
import subprocess
import sys
import time

from avsdn_tf import hparams, training

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_HPARAMS = hparams.HParams(epochs=1, batch_size=16, encoder_units=8, fusion_units=8,
                               unroll=False)  # the unrolled fit trace costs ~30 s more; unroll=True is
#                                               covered by test_export's in-process rebuild tests
_CACHE = {}


def tool_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class Exported:
    """A trained run and its export: SERVING/avsdn/1, plus what the export command printed."""

    def __init__(self, data_dir, run_dir, export_base, command_output, seconds):
        self.data_dir, self.run_dir, self.export_base = data_dir, run_dir, export_base
        self.version_dir = os.path.join(export_base, "1")
        self.command_output, self.seconds = command_output, seconds


def exported(tmp_path_factory, data_dir):
    """Train AVSDN for one epoch on 16 videos and export it with the real command (once)."""
    key = str(tmp_path_factory.getbasetemp())
    if key not in _CACHE:
        root = tmp_path_factory.mktemp("serving")
        run_dir, export_base = str(root / "run"), str(root / "serving" / "avsdn")
        training.train(data_dir, run_dir, TINY_HPARAMS, max_videos=16, verbose=0)
        started = time.time()
        result = subprocess.run(
            [sys.executable, "-m", "export.export_model", "--model_dir", run_dir, "--export_base", export_base],
            cwd=ROOT, env=tool_env(), capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        _CACHE[key] = Exported(data_dir, run_dir, export_base, result.stdout, time.time() - started)
    return _CACHE[key]
