"""pytest_test: one Bazel py_test per pytest file, run through tests/bazel_pytest_main.py.

Usage in tests/BUILD (one line per test file; load() once at the top):

    pytest_test(name = "test_records", src = "test_records.py", size = "small")

Sizes: "small" (< 60 s), "medium" (< 300 s). Only fast tests belong in Bazel; tests marked
@pytest.mark.slow stay pytest-only. Pass deps = [...] for the packages the test imports
(//:models, //:training, //:tuning, //:export, //:avsdn_tf for the commands; //:data is always
included, conftest.py and testlib.py need it), srcs = [...] for helper modules the test imports from tests/
(conftest.py and testlib.py are always included), and data = [...] for fixtures.
"""

def pytest_test(name, src, size = "small", srcs = [], deps = [], data = [], args = [], **kwargs):
    native.py_test(
        name = name,
        srcs = ["bazel_pytest_main.py", src] + srcs + native.glob(["conftest.py", "testlib.py"]),
        main = "bazel_pytest_main.py",
        args = ["$(location %s)" % src] + args,
        size = size,
        python_version = "PY3",
        srcs_version = "PY3",
        legacy_create_init = False,
        deps = ["//:data"] + deps,
        # pyproject.toml carries the pytest configuration (registered markers).
        data = ["//:pyproject.toml"] + data,
        **kwargs
    )
