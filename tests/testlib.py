"""What the test modules share: paths, the tiny data configuration, small models, commands.

The tests mirror the packages (tests/data/ tests avsdn_tf/data/, ...). Session fixtures built on
these helpers live in conftest.py; heavier shared setups have their own modules
(serving_testlib.py: one exported run; s3_testlib.py: a local S3 server).
"""

import contextlib
import fcntl
import functools
import gc
import inspect
import os
import re
import shutil
import socket
import subprocess
import sys
import weakref
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import hparams
from avsdn_tf.data import synthetic

ROOT = Path(__file__).resolve().parents[1]  # the repository
# The real AVE files (annotations, splits, small h5 files) beside the repository, if present.
REAL_AVE = ROOT.parent / "shared" / "data" / "ave"


@contextlib.contextmanager
def session_shared(tmp_path_factory, name):
    """A directory made once per test session, also across pytest-xdist workers (a file lock).

    The first process to enter makes it; the others wait on the lock, then find it done:

        with session_shared(tmp_path_factory, "tuning_data") as (path, done):
            if not done:
                make(path)

    Args:
        tmp_path_factory: pytest's fixture (the session's base temp directory; under xdist,
            its parent, which the workers share).
        name: the directory's name.
    Yields:
        (pathlib.Path path, bool done): done when an earlier process finished making it (a
        path that exists after the block is marked done).
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = root / name
        yield path, (path / ".done").exists()
        if path.exists():
            (path / ".done").touch()


def free_ports(count=1):
    """TCP ports on 127.0.0.1 that nothing listens on now, all different.

    Args:
        count: how many.
    Returns:
        list of `count` int ports (the probes are held until all are found, so none repeats).
    """
    probes = [socket.socket() for _ in range(count)]
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def needs_real_ave(*names):
    """Marks a test that reads the real AVE files NAMES (in REAL_AVE, i.e. ../shared).

    conftest.py's pytest_runtest_setup skips the test when one is missing, except under CI
    (CI=true), where the real data must be there and its absence fails the test in one message.
    """
    return pytest.mark.real_ave(*names)


# A line TensorFlow's C++ runtime prints at start-up ("2026-01-01 10:00:00.123: E ..."),
# before a command can quiet it.
TF_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] ")

# Videos per split of the tiny synthetic data sets (conftest.py's session fixtures).
TINY_SPLITS = {"train": 96, "val": 32, "test": 32, "noisy": 16}

# Layer widths for tests that only build models: tiny, and unlike each other where they can be.
TINY_UNITS = dict(
    encoder_units=8, fusion_units=6, lstm_units=5, classifier_units=7, attention_units=6
)
# Layer widths small enough to build and fit in seconds; every model of the registry takes them.
SMALL_UNITS = dict(
    encoder_units=16, fusion_units=16, lstm_units=8, classifier_units=8, attention_units=8
)


def tiny_config(**changes):
    """The SyntheticConfig of the tiny data sets (16-d audio, 24-d visual vectors), with changes."""
    values = dict(videos_per_split=dict(TINY_SPLITS), audio_dim=16, visual_dim=24, seed=3)
    values.update(changes)
    return synthetic.SyntheticConfig(**values)


@contextlib.contextmanager
def every_iterator_freed_without_gc(monkeypatch):
    """A block after which every tf.data iterator made inside it (Keras fit's included) must
    already be freed, with automatic garbage collection off inside: one left for a later
    collection stalls whatever runs then, waiting on tf.data's autotuning thread."""
    made, original = [], tf.data.Dataset.__iter__

    def spy(self):
        iterator = original(self)
        made.append(weakref.ref(iterator))
        return iterator

    monkeypatch.setattr(tf.data.Dataset, "__iter__", spy)
    gc.disable()
    try:
        yield
        alive = [ref() for ref in made if ref() is not None]  # before any collection can run
    finally:
        gc.enable()
    assert made, "the block made no tf.data iterator"
    assert alive == [], f"{len(alive)} of {len(made)} iterators outlived the block"


def small_hparams(**changes):
    """HParams with SMALL_UNITS, batch 16, 2 epochs and looped LSTMs, then the changes.

    Looped (unroll=False) LSTMs trace faster than the unrolled CPU default; the unrolled path
    is covered where it matters (tests/models, tests/export).
    """
    values = {**SMALL_UNITS, "batch_size": 16, "epochs": 2, "unroll": False, **changes}
    return hparams.HParams(**values)


def avel_distance(a, b):
    """The AVEL authors' AVDLN distance written out (a test reference, independent of
    avsdn_tf.models.metrics): sqrt(max(sum((a - b)^2), K.epsilon())) in float64, where Keras 2's
    K.epsilon() is 1e-7.

    Args:
        a, b: [..., D] embeddings, broadcastable against each other.
    Returns:
        float64 array [...].
    """
    squared = np.square(np.asarray(a, np.float64) - np.asarray(b, np.float64)).sum(-1)
    return np.sqrt(np.maximum(squared, 1e-7))


def avel_localize(query, candidates, event):
    """The AVEL authors' cross-modality localization loop, one window at a time (a test
    reference): the start p minimising sum_i avel_distance(candidates[p + i], query[s_i]) over
    the event's segments s_0 < s_1 < ...

    Args:
        query: [T, D] embeddings of the modality whose event segments are the query.
        candidates: [T, D] embeddings of the other modality.
        event: bool [T], the event's segments.
    Returns:
        (int best start, float64 [T - l + 1] scores of every start).
    """
    segments = np.flatnonzero(event)
    length = len(segments)
    scores = [
        avel_distance(candidates[p : p + length], query[segments]).sum()
        for p in range(len(event) - length + 1)
    ]
    return int(np.argmin(scores)), np.array(scores)


def avel_accuracy(audio, visual, events):
    """A2V and V2A accuracy as the AVEL paper defines them, written out with avel_localize:
    a video whose event covers no segment or every segment is skipped; one is right when the
    localized start is the event's first segment.

    Args:
        audio, visual: [N, T, D] embeddings. events: bool [N, T].
    Returns:
        {"a2v_accuracy", "v2a_accuracy", "evaluated"}.
    """
    a2v = v2a = evaluated = 0
    for a, v, event in zip(audio, visual, np.asarray(events, bool)):
        if not event.any() or event.all():
            continue
        evaluated += 1
        first = int(np.flatnonzero(event)[0])
        a2v += avel_localize(a, v, event)[0] == first
        v2a += avel_localize(v, a, event)[0] == first
    if not evaluated:
        return {"a2v_accuracy": 0.0, "v2a_accuracy": 0.0, "evaluated": 0}
    return {
        "a2v_accuracy": a2v / evaluated,
        "v2a_accuracy": v2a / evaluated,
        "evaluated": evaluated,
    }


def event_runs(labels):
    """Event intervals written out (a test reference, independent of metrics.intervals): each
    maximal run of one event class (not background, 28), end exclusive.

    Args:
        labels: int [T] per-segment labels.
    Returns:
        list of (label, start, end) int tuples, in time order.
    """
    runs = []
    for t, label in enumerate(int(label) for label in labels):
        if label == 28:
            continue
        if runs and runs[-1][0] == label and runs[-1][2] == t:
            runs[-1][2] = t + 1
        else:
            runs.append([label, t, t + 1])
    return [tuple(run) for run in runs]


def read_records(data_dir, split=None, shard=None, serialized=False):
    """The records of a data directory, decoded with the sizes its dataset_info.json gives.

    Args:
        data_dir: a local data directory (str or Path).
        split: read this split's shards, in the order dataset_info.json lists them.
        shard: or read this one shard file (a name inside data_dir).
        serialized: also return each record's bytes.
    Returns:
        list of decoded records (dicts of records.decode_video: audio [T, A], visual [T, *V],
        label [T], video_id bytes, ...) in file order; with serialized, (bytes, dict) pairs.
    """
    import tensorflow as tf

    from avsdn_tf import dataset_info, records

    data_dir = str(data_dir)
    info = dataset_info.read(data_dir)
    paths = [os.path.join(data_dir, shard)] if shard else info.shard_paths(data_dir, split)
    found = []
    for path in paths:
        for record in tf.data.TFRecordDataset(path):
            raw = record.numpy()
            decoded = records.decode_video(raw, info.audio_dim, info.visual_shape)
            found.append((raw, decoded) if serialized else decoded)
    return found


def copy_with_damaged_shard(source, destination, shard, damage):
    """A copy of a data directory with one shard damaged, as a disk or a user may damage it.

    Args:
        source: the data directory to copy.
        destination: a pathlib.Path that does not exist yet (the copy).
        shard: the shard's file name.
        damage: "overwrite" (200 bytes in its middle), "truncate" (cut to just over half its
            size, not at a record's end) or "half_records" (cut at a record's end: the first
            half of its records kept, each whole).
    Returns:
        (str copy, str path of the damaged shard in it).
    """
    shutil.copytree(source, destination)
    path = Path(destination) / shard
    if damage == "half_records":
        import tensorflow as tf

        kept = [record.numpy() for record in tf.data.TFRecordDataset(str(path))]
        with tf.io.TFRecordWriter(str(path)) as writer:
            for record in kept[: len(kept) // 2]:
                writer.write(record)
        return str(destination), str(path)
    content = bytearray(path.read_bytes())
    middle = len(content) // 2
    if damage == "overwrite":
        content[middle : middle + 200] = b"\xff" * 200
    else:
        content = content[: middle + 100]
    path.write_bytes(bytes(content))
    return str(destination), str(path)


def command_env(**changes):
    """The environment of a command run by a test: the repository importable, TF's C++ quiet."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env.update(changes)
    return env


def run_command(module, *args, env=None, timeout=600, cwd=ROOT):
    """Run `python -m MODULE ARGS` from the repository root (or `cwd`), as a user would.

    Returns:
        the finished subprocess.CompletedProcess (text stdout and stderr captured).
    """
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=command_env() if env is None else env,
    )


def run_in_process(module, *args, capsys=None):
    """Run the command `python -m MODULE ARGS` in this process, as cli.run runs it.

    The command's flags are defined and parsed from ARGS (on a FlagValues of their own when its
    define_flags takes one, else on absl's global flags, removed again after), and its main runs
    through cli.run_main: a user error is one line on stderr and status 2.

    Args:
        module: the command's module (avsdn_tf.train, avsdn_tf.extract, ...).
        *args: its command line (flags and arguments).
        capsys: pytest's fixture, to read what the command printed (without it, in a fixture
            that cannot have it, the output is left to pytest's capture).
    Returns:
        (int exit status, str stdout, str stderr); stdout and stderr are None without capsys.
    """
    from absl import flags

    from avsdn_tf import cli

    own = "flag_values" in inspect.signature(module.define_flags).parameters
    flag_values = flags.FlagValues() if own else flags.FLAGS
    before = set(flag_values)
    module.define_flags(flag_values) if own else module.define_flags()
    command_line = [module.__name__.rsplit(".", 1)[-1], *map(str, args)]
    try:
        if hasattr(module, "parse_flags"):
            argv = module.parse_flags(command_line, flag_values)
        else:
            argv = flag_values(command_line)
        main = functools.partial(module.main, flag_values=flag_values) if own else module.main
        try:
            status = cli.run_main(main, flag_values)(argv)
        except SystemExit as stop:
            status = stop.code
    finally:
        if not own:
            flag_values.unparse_flags()
            for name in set(flag_values) - before:
                delattr(flag_values, name)
    if capsys is None:
        return status or 0, None, None
    captured = capsys.readouterr()
    return status or 0, captured.out, captured.err


def one_error_line(status, stderr, allow_tf_log=True):
    """Check a user error as every command reports it and return its line.

    Exit status 2, no traceback, and exactly one non-blank line on stderr, starting "error: ".

    Args:
        status: the command's exit status.
        stderr: what it printed on stderr.
        allow_tf_log: ignore TensorFlow's C++ start-up lines (TF_LOG_LINE), which a process
            that imports TensorFlow may print before the command can quiet them.
    Returns:
        str: the error line.
    """
    assert status == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = [
        line
        for line in stderr.splitlines()
        if line.strip() and not (allow_tf_log and TF_LOG_LINE.match(line))
    ]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def drawn_png(monkeypatch, draw):
    """A picture as the project writes it, and the figure it drew.

    Args:
        monkeypatch: pytest's fixture (fileio.write_png is wrapped to keep the figure).
        draw: function() -> the path of the PNG it wrote through fileio.write_png.
    Returns:
        (image float RGB [H, W, 3] decoded from the PNG, the matplotlib figure).
    """
    import matplotlib.image

    from avsdn_tf import fileio

    drawn = []
    write_png = fileio.write_png

    def keep(path, figure, dpi):
        drawn.append(figure)
        write_png(path, figure, dpi)

    monkeypatch.setattr(fileio, "write_png", keep)
    path = draw()
    (figure,) = drawn
    return matplotlib.image.imread(path)[..., :3], figure
