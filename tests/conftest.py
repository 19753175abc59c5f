"""Shared fixtures: tiny synthetic data sets made once per test session."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The official VGGish files (avsdn_tf/features/vggish.py) from a folder that does not exist: a
# test that forgets --vggish_checkpoint fails at once instead of reaching the network.
os.environ["AVSDN_TF_VGGISH_BASE_URL"] = "file:///nonexistent-avsdn-tf-test-server"

import pytest  # noqa: E402

from avsdn_tf import constants  # noqa: E402
from avsdn_tf.data import synthetic  # noqa: E402

from testlib import tiny_config  # noqa: E402


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
