"""Nothing vanishes silently under CI: conftest.py's real-data check and unexpected-skip check.

Each case runs pytest on a small test file of its own with tests/conftest.py as a plugin, once as
a developer would (CI unset: skips, exit 0) and once as .ci/run does (CI=true: failures, exit 1).
"""

import subprocess
import sys

from testlib import ROOT, command_env

SCRATCH_TESTS = """
import pytest
from testlib import needs_real_ave

@needs_real_ave("Annotations.txt", "no_such_release_file.h5")
def test_reads_real_files():
    pass

def test_skips_itself():
    pytest.skip("an optional tool is absent")

def test_passes():
    pass
"""


def _pytest(tmp_path, ci):
    (tmp_path / "test_scratch.py").write_text(SCRATCH_TESTS)
    env = command_env(PYTHONPATH=str(ROOT / "tests"))
    env.pop("CI", None)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q"]
        + ["-rs", "-o", "addopts=", "--rootdir", str(tmp_path), str(tmp_path / "test_scratch.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_without_ci_missing_real_files_and_other_skips_are_skips(tmp_path):
    result = _pytest(tmp_path, ci=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 2 skipped" in result.stdout
    assert "missing: no_such_release_file.h5" in result.stdout  # -rs prints the reason
    assert "an optional tool is absent" in result.stdout


def test_under_ci_missing_real_files_fail_and_an_unexpected_skip_fails_the_run(tmp_path):
    result = _pytest(tmp_path, ci=True)
    assert result.returncode == 1, result.stdout + result.stderr
    # The real-data test fails in one message naming the folder and only the missing file.
    failed = [line for line in result.stdout.splitlines() if "missing:" in line]
    assert failed == [
        f"{ROOT.parent / 'shared' / 'data' / 'ave'}: expected the real AVE files "
        "(../shared/data/ave beside the checkout), missing: no_such_release_file.h5"
    ]
    assert "1 passed, 1 skipped, 1 error" in result.stdout
    # The other skip is named as unexpected, with its reason.
    assert "CI: unexpected skips" in result.stdout
    assert "test_scratch.py::test_skips_itself: Skipped: an optional tool is absent" in (
        result.stdout
    )
