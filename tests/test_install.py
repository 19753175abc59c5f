"""The built wheel claims only the avsdn_tf name in site-packages, its export and tuning
commands import under their installed names, and it installs the console script avsdn-tf."""

import shutil
import subprocess
import sys
import zipfile

import pytest

from testlib import ROOT


@pytest.mark.slow
def test_the_wheel_installs_export_and_tuning_under_avsdn_tf(tmp_path):
    source = tmp_path / "source"  # a copy: setuptools writes build/ and *.egg-info beside setup.py
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "bazel-*", "*.egg-info", "__pycache__", "runs", "serving"
        ),
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(source),
            "-w",
            str(tmp_path / "wheel"),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (wheel,) = (tmp_path / "wheel").glob("avsdn_tf-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {
        name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")
    } == {"avsdn_tf"}
    assert "avsdn_tf/export/models.config" in names and "avsdn_tf/tuning/tune.py" in names
    top_level = next(name for name in names if name.endswith("top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["avsdn_tf"]
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert zipfile.ZipFile(wheel).read(entry_points).decode().split() == [
        "[console_scripts]",
        "avsdn-tf",
        "=",
        "avsdn_tf.console:main",
    ]
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    script = (
        "import avsdn_tf, avsdn_tf.export.export_model as e, avsdn_tf.tuning.tune\n"
        "print(avsdn_tf.__file__); print(e.PACKAGE_ROOT)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target), "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    installed, package_root = done.stdout.split()
    assert installed.startswith(str(target)) and package_root == str(target)
    assert not (target / "export").exists() and not (target / "tuning").exists()
