"""Packaging for avsdn-tf.

The commands: the console script `avsdn-tf VERB` (train, evaluate, export, tune, ...;
avsdn_tf/console.py) and, running the same main, `python -m avsdn_tf.<verb>`, `python -m
tuning.<verb>` and `python -m export.<verb>` in a checkout (docs/commands.md).

Installed names: the repository's top-level export/ and tuning/ folders are installed as the
subpackages avsdn_tf.export and avsdn_tf.tuning (package_dir below), so the distribution claims
only the name avsdn_tf in site-packages; installed, the commands are `python -m
avsdn_tf.export.export_model`, `python -m avsdn_tf.export.client` and `python -m
avsdn_tf.tuning.tune` (export/ and tuning/ import their own modules relatively, so both names work).
"""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
VERSION = re.search(
    r'^__version__ = "([^"]+)"', (HERE / "avsdn_tf" / "__init__.py").read_text(), re.MULTILINE
).group(1)

# Why TensorFlow stays on 2.17: tensorflow-io 0.37.1 is its newest release, and its compiled
# ops load on TF 2.17 but not on TF 2.18+ (the C++ ABI they link against changed).
# tensorflow-serving-api moves in lock-step with TF, so it is held to 2.17.x as well.
# tensorflow-io is pinned WITHOUT its [tensorflow] extra: that extra asks for tensorflow<2.17
# and would fight the pin below. TF 2.17 itself requires numpy<2; keras<3.16 is the newest
# Keras 3 tested with it here.
INSTALL_REQUIRES = [
    "tensorflow>=2.17,<2.18",
    "tensorflow-io==0.37.1",
    "keras>=3.5,<3.16",
    # 1.4.x: the distributed search's chief loop uses KerasTuner's oracle internals;
    # [bayesian] brings scikit-learn and scipy so `--tuner bayesian` works out of the box.
    "keras-tuner[bayesian]>=1.4.7,<1.5",
    "numpy<2",
    "absl-py",
    "h5py",
    "tensorflow-serving-api>=2.17,<2.18",
]

VIDEO = ["av"]
PLOTS = ["matplotlib"]
# Extraction as an Apache Beam pipeline (extract --runner ...). 2.77.0 installs beside
# TensorFlow 2.17 and numpy<2 when resolved with them (protobuf 4.25: TF 2.17 needs <5, Beam
# excludes 4.21-4.24); `pip install apache-beam` alone into an existing environment takes
# protobuf 6 and breaks TensorFlow, hence the extra (and protobuf pinned in it). dask[distributed]
# is for --runner DaskRunner (Beam's own [dask] extra asks only for >=2024.4.2); 2026.8.0
# resolves with the pins here (pip check clean, TensorFlow imports).
BEAM = [
    "apache-beam==2.77.0",
    "protobuf>=4.25,<5",
    "dask[distributed]==2026.8.0",
    "distributed==2026.8.0",
]

EXTRAS_REQUIRE = {
    # Decoding people's own videos (avsdn_tf feature extraction).
    "video": VIDEO,
    # Figures (training curves, localisation plots).
    "plots": PLOTS,
    # Feature extraction on Apache Beam runners (DirectRunner, Dask, Dataflow, Flink, Spark).
    "beam": BEAM,
    # The test suite exercises the video, plot and Beam paths, so it needs those extras.
    # ruff is pinned so the lint gate in .ci/run does not move under us. moto[server] is the local
    # S3-compatible endpoint tests/test_remote.py starts on 127.0.0.1 (with boto3 to seed it);
    # the project itself talks to S3 through tensorflow-io only. playwright drives Debian's
    # chromium (/usr/bin/chromium, which .ci/run installs with apt) in the viewer's browser tests;
    # its own browser downloads are never used. import-linter checks the layering contracts of
    # pyproject.toml (.ci/run's lint-imports). torch: the exactness tests of PSP and CMBS
    # against PyTorch references of their authors' code (exactly 2.13.0, the CPU build; see
    # "torch" below).
    "test": [
        "pytest",
        "pytest-xdist",
        "ruff==0.17.6",
        "import-linter==2.17",
        "moto[server]>=5,<6",
        "playwright>=1.65,<2",
        "torch==2.13.0",
        *VIDEO,
        *PLOTS,
        *BEAM,
    ],
    # The peer comparison in benchmarks/: exactly PyTorch 2.13.0, CPU build. "==2.13.0" also
    # matches the local version "2.13.0+cpu"; this machine serves that wheel from its
    # find-links, so no CUDA build (nor nvidia-* packages) is resolved. Elsewhere, install with
    # --extra-index-url https://download.pytorch.org/whl/cpu to get the same wheel.
    "bench": ["torch==2.13.0"],
    # Importing the authors' PyTorch checkpoints (--init_weights); imported lazily.
    "torch": ["torch==2.13.0"],
}

# The repository's top-level folders that are installed under avsdn_tf (see the docstring).
INSTALLED_AS = {"avsdn_tf.export": "export", "avsdn_tf.tuning": "tuning"}

setup(
    name="avsdn-tf",
    version=VERSION,
    description=(
        "AVSDN (audio-visual sequence-to-sequence dual network) and the AVEL baselines "
        "for audio-visual event localization, in TensorFlow / Keras"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=[*find_packages(include=["avsdn_tf", "avsdn_tf.*"]), *INSTALLED_AS],
    package_dir=INSTALLED_AS,
    # Data files read at run time: AVE annotations, and the TF Serving configs export/ ships.
    package_data={"avsdn_tf": ["resources/*.txt"], "avsdn_tf.export": ["*.txt", "*.config"]},
    include_package_data=False,
    # `avsdn-tf VERB`: the command `python -m` runs (avsdn_tf/console.py, cli.VERBS).
    entry_points={"console_scripts": ["avsdn-tf = avsdn_tf.console:main"]},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
