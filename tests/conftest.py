"""Shared fixtures (tiny synthetic data sets made once per test session) and the CI checks.

Under CI (CI=true, as .ci/run sets it) nothing may vanish silently: a test marked
testlib.needs_real_ave fails when the real AVE files are missing, and the session fails when any
test is skipped for a reason not in EXPECTED_CI_SKIPS (pyproject's addopts has -rs, so each
skip's reason is printed).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The official VGGish files (avsdn_tf/features/vggish.py) from a folder that does not exist: a
# test that forgets --vggish_checkpoint fails at once instead of reaching the network.
os.environ["AVSDN_TF_VGGISH_BASE_URL"] = "file:///nonexistent-avsdn-tf-test-server"

import pytest  # noqa: E402

from avsdn_tf import constants  # noqa: E402
from avsdn_tf.data import synthetic  # noqa: E402

from testlib import REAL_AVE, command_env, tiny_config  # noqa: E402

# Skip reasons (substrings) a CI run may report; any other skip fails a CI session. None: CI
# installs every optional dependency ('.[test]', chromium) and has the real AVE files.
EXPECTED_CI_SKIPS = ()


def _under_ci():
    return os.environ.get("CI") == "true"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "real_ave(*names): reads the real AVE files NAMES (testlib.needs_real_ave)"
    )


def pytest_runtest_setup(item):
    """Tests marked needs_real_ave: skipped without the real AVE files, failed under CI."""
    for mark in item.iter_markers("real_ave"):
        missing = [name for name in mark.args if not (REAL_AVE / name).exists()]
        if not missing:
            continue
        message = (
            f"{REAL_AVE}: expected the real AVE files (../shared/data/ave beside the checkout), "
            f"missing: {', '.join(missing)}"
        )
        if _under_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


_UNEXPECTED_SKIPS = []


def pytest_runtest_logreport(report):
    if report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(expected in reason for expected in EXPECTED_CI_SKIPS):
            _UNEXPECTED_SKIPS.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session, exitstatus):
    """Under CI, a skip not in EXPECTED_CI_SKIPS fails the session (on xdist's controller)."""
    if not _under_ci() or hasattr(session.config, "workerinput") or not _UNEXPECTED_SKIPS:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("=", "CI: unexpected skips (conftest.EXPECTED_CI_SKIPS)", red=True)
        for line in _UNEXPECTED_SKIPS:
            reporter.write_line(line, red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tiny_vector_data(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data") / "vector")
    synthetic.write_dataset(path, tiny_config(), verbose=False)
    return path


@pytest.fixture(scope="session")
def tiny_map_data(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data") / "map")
    synthetic.write_dataset(
        path,
        tiny_config(visual_layout=constants.LAYOUT_MAP, visual_dim=8, map_size=3),
        verbose=False,
    )
    return path


@pytest.fixture(scope="session")
def browser():
    """One headless Debian chromium for the session's browser tests (viewer_testlib.launch).

    Without /usr/bin/chromium the tests are skipped, except under CI (CI=true), where .ci/run
    installs it and its absence is a failure.
    """
    import viewer_testlib

    if not os.path.exists(viewer_testlib.CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"{viewer_testlib.CHROMIUM}: expected Debian's chromium, found none")
        pytest.skip(f"{viewer_testlib.CHROMIUM} not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        launched = viewer_testlib.launch(playwright)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 (s3_testlib.moto_server), its log in the test's temp.

    Yields:
        (environment for `testlib.run_command(..., env=...)`: the repository importable and the
        S3 settings, TensorFlow's C++ logging left to the commands as users run them; boto3
        client of the server).
    """
    from s3_testlib import moto_server, s3_environment

    with (
        open(tmp_path_factory.mktemp("moto") / "server.log", "w") as log,
        moto_server(log) as (endpoint, client),
    ):
        env = command_env(**s3_environment(endpoint))
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the commands quiet TensorFlow themselves
        yield env, client
