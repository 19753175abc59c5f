"""Packaging contracts: class names and resources, the pins in setup.py, and README <-> CI.

Fast and pure Python (no TensorFlow import); it also runs under Bazel (//tests:test_packaging),
where the files it reads are the target's data.
"""

import ast
import glob
import importlib.resources
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from avsdn_tf import constants

# Not resolved through symlinks: under Bazel the runfiles tree is the "repository".
ROOT = Path(__file__).absolute().parent.parent

RESOURCE_FILES = ("categories.txt", "Annotations.txt", "trainSet.txt", "valSet.txt", "testSet.txt")


def _setup_literals():
    """INSTALL_REQUIRES, EXTRAS_REQUIRE and the setup() keywords of setup.py, without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    names = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            names[node.targets[0].id] = node.value

    def value(node):
        if isinstance(node, ast.Name):
            return value(names[node.id])
        if isinstance(node, ast.Starred):
            return value(node.value)
        if isinstance(node, ast.List):
            out = []
            for element in node.elts:
                item = value(element)
                out.extend(item if isinstance(element, ast.Starred) else [item])
            return out
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        return ast.literal_eval(node)

    setup_call = next(
        node.value
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and node.value.func.id == "setup"
    )
    keywords = {kw.arg: kw.value for kw in setup_call.keywords}
    return (
        [Requirement(r) for r in value(names["INSTALL_REQUIRES"])],
        {
            extra: [Requirement(r) for r in reqs]
            for extra, reqs in value(names["EXTRAS_REQUIRE"]).items()
        },
        keywords,
        value,
    )


def _by_name(requirements):
    return {r.name: r for r in requirements}


def test_class_names_are_28_categories_then_background():
    names = constants.class_names()
    assert len(names) == constants.NUM_CLASSES == 29
    assert names[-1] == "background"
    assert names[constants.BACKGROUND] == "background"
    assert len(set(names)) == 29
    assert "background" not in constants.category_names()


@pytest.mark.parametrize("name", RESOURCE_FILES)
def test_packaged_resources_exist_and_are_not_empty(name):
    resource = importlib.resources.files("avsdn_tf.resources").joinpath(name)
    assert resource.is_file(), name
    assert resource.read_text().strip(), f"{name} is empty"


def test_package_data_glob_ships_every_resource():
    _, _, keywords, value = _setup_literals()
    package_data = value(keywords["package_data"])
    shipped = {
        Path(path).name
        for pattern in package_data["avsdn_tf"]
        for path in glob.glob(str(ROOT / "avsdn_tf" / pattern))
    }
    assert set(RESOURCE_FILES) <= shipped


def test_tensorflow_stays_on_2_17():
    install, _, _, _ = _setup_literals()
    reqs = _by_name(install)
    for name in ("tensorflow", "tensorflow-serving-api"):
        spec = reqs[name].specifier
        assert Version("2.17.1") in spec, (name, str(spec))
        assert Version("2.18.0") not in spec, (name, str(spec))
        assert Version("2.16.2") not in spec, (name, str(spec))
    assert str(reqs["tensorflow-io"].specifier) == "==0.37.1"
    # Its [tensorflow] extra asks for tensorflow<2.17 and would conflict with the pin above.
    assert not reqs["tensorflow-io"].extras
    assert Version("2.0.0") not in reqs["numpy"].specifier
    assert {"keras", "keras-tuner", "absl-py", "h5py"} <= set(reqs)


def test_extras():
    _, extras, _, _ = _setup_literals()
    assert set(extras) >= {"video", "plots", "test", "bench"}
    assert "av" in _by_name(extras["video"])
    assert "matplotlib" in _by_name(extras["plots"])
    # The suite exercises video and plots, and the README runs it with `-n 2` (xdist).
    assert {"pytest", "pytest-xdist", "ruff", "av", "matplotlib"} <= set(_by_name(extras["test"]))
    # The S3 tests' local endpoint: a test dependency, never a runtime one.
    assert "server" in _by_name(extras["test"])["moto"].extras
    # The viewer's browser tests drive Debian's chromium through playwright: a test dependency.
    assert "playwright" in _by_name(extras["test"])
    assert "moto" not in _by_name(_setup_literals()[0])
    # Exactly the CPU build of 2.13.0, never a CUDA resolve.
    assert [str(r) for r in extras["bench"]] == ["torch==2.13.0"]
    # extract --runner: one Beam release known to install beside TF 2.17 and numpy<2; optional
    # for users, in the test extra because the suite runs the DirectRunner equality test.
    # protobuf held to TF 2.17's (Beam alone takes 6.x); dask for --runner DaskRunner, pinned.
    beam = _by_name(extras["beam"])
    assert str(beam["apache-beam"].specifier) == "==2.77.0"
    assert str(beam["distributed"].specifier) == "==2026.8.0"
    assert "distributed" in beam["dask"].extras and str(beam["dask"].specifier) == "==2026.8.0"
    assert beam["protobuf"].specifier.contains("4.25.9")
    assert not beam["protobuf"].specifier.contains("5.0") and not beam[
        "protobuf"
    ].specifier.contains("6.33")
    assert "apache-beam" in _by_name(extras["test"])
    assert "dask" in _by_name(extras["test"])
    assert "apache-beam" not in _by_name(_setup_literals()[0])


def test_pytest_config_registers_slow_marker():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pytest_ini = config["tool"]["pytest"]["ini_options"]
    assert pytest_ini["testpaths"] == ["tests"]
    assert any(marker.startswith("slow:") for marker in pytest_ini["markers"])


def _quickstart_block(marker):
    """The single command inside README's fenced bash block between the given markers."""
    text = (ROOT / "README.md").read_text()
    match = re.search(
        rf"<!-- {marker}:begin -->\n```bash\n(.*?)\n```\n<!-- {marker}:end -->", text, re.DOTALL
    )
    assert match, f"README.md has no ```bash block between the {marker} markers"
    lines = [line for line in match.group(1).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def test_readme_quickstart_has_exactly_two_commands():
    text = (ROOT / "README.md").read_text()
    quickstart = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    assert quickstart.count("```bash") == 2
    main = _quickstart_block("quickstart-main")
    test = _quickstart_block("quickstart-test")
    assert "python3.11 -m venv .venv" in main and "avsdn-tf train" in main
    assert "python -m export." not in main  # names that work outside the checkout
    assert "python3.11 -m venv .venv" in test and "-m pytest" in test
    assert "'.[test]'" in test


def test_ci_runs_the_readme_test_command_verbatim():
    """.ci/run reads the command out of README.md; check it gets exactly the README's text."""
    ci = (ROOT / ".ci" / "run").read_text()
    assert "quickstart-test:begin" in ci and "quickstart-test:end" in ci
    extracted = subprocess.run(
        ["bash", str(ROOT / ".ci" / "run"), "--print-test-command"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    ).stdout.strip()
    assert extracted == _quickstart_block("quickstart-test")
    shlex.split(extracted)  # well-formed shell words
