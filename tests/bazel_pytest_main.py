"""Runs one pytest file as a Bazel py_test (see tests/defs.bzl: pytest_test).

Bazel runs this with the test file's runfiles path as the argument. It maps Bazel's test
protocol onto pytest: results go to $XML_OUTPUT_FILE as JUnit XML, `bazel test --test_filter=X`
becomes `-k X`, and the exit code is pytest's, so "no tests collected" (5) fails the target.
"""

import os
import sys


def _only_runfiles():
    """Forget the editable install of the project (.venv is the toolchain, and `pip install -e`
    adds a finder that maps avsdn_tf, export and tuning to the source tree): the test then
    imports only the packages its target depends on, so a package that imports one above it
    (BUILD's layering) fails its tests here instead of finding the module in the source tree."""
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not type(finder).__module__.startswith("__editable__")
        and not getattr(finder, "__module__", "").startswith("__editable__")
    ]
    for name in [
        name for name in sys.modules if name.split(".")[0] in ("avsdn_tf", "export", "tuning")
    ]:
        del sys.modules[name]


_only_runfiles()

import pytest  # noqa: E402


def main(argv):
    if len(argv) < 2:
        print("usage: bazel_pytest_main.py TEST_FILE [pytest args...]", file=sys.stderr)
        return 2
    # The runfiles tree is read-only under the sandbox: no .pytest_cache. The suite's addopts
    # may carry options for a whole run (e.g. xdist's -n); one file under Bazel runs alone, so
    # they are replaced with the one that matters.
    args = [*argv[1:], "-p", "no:cacheprovider", "-o", "addopts=--strict-markers"]
    # Bazel gives tests no HOME, and the sandbox mounts the real one read-only: anything that
    # writes under ~ (Keras' ~/.keras, the default synthetic data dir) gets the test's own tmp.
    if os.environ.get("TEST_TMPDIR"):
        os.environ["HOME"] = os.environ["TEST_TMPDIR"]
        os.environ.setdefault("TMPDIR", os.environ["TEST_TMPDIR"])
    if os.environ.get("XML_OUTPUT_FILE"):
        args.append(f"--junitxml={os.environ['XML_OUTPUT_FILE']}")
    if os.environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", os.environ["TESTBRIDGE_TEST_ONLY"]]
    return int(pytest.main(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
