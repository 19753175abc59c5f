"""Crash consistency of `train`: kill it at every atomic-write point, restart it, compare metrics.

    python benchmarks/bench_reliability.py          # synthetic data, 2 epochs, every point
    python benchmarks/bench_reliability.py --epochs 3 --work_dir /tmp/reliability

What it does: one uninterrupted `python -m avsdn_tf.train` run on a tiny synthetic data set (made
under --work_dir) records every rename it makes (fileio.RENAME_LOG_ENV); every file the project
writes atomically is published by one such rename, so these are the run's write points. Then for
every point k, a fresh run directory is trained with fileio.KILL_AT_RENAME_ENV=k (the process
SIGKILLs itself right after its k-th rename), started again without it, and its metrics.json is
compared with the uninterrupted run's (every field but the wall-clock train_seconds_this_process).
It prints how many points were tried and how many resumes matched; exit status 1 on any mismatch.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from avsdn_tf import fileio  # noqa: E402

# A tiny model and data set: the check is about files, not accuracy (about 10 s per run on 1 core).
TINY_HPARAMS = dict(
    encoder_units=16, fusion_units=16, lstm_units=8, classifier_units=8, batch_size=16, unroll=False
)
TINY_SPLITS = {"train": 96, "val": 32, "test": 32, "noisy": 16}
TIMING_FIELD = "train_seconds_this_process"  # wall-clock: differs between any two runs


def _train(data_dir, model_dir, hparams_file, env):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "avsdn_tf.train",
            "--data_dir",
            data_dir,
            "--model_dir",
            model_dir,
            "--hparams_file",
            hparams_file,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env},
    )


def _metrics(model_dir):
    metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
    metrics.pop(TIMING_FIELD, None)
    return metrics


def write_points(data_dir, work_dir, hparams_file):
    """Train once uninterrupted.

    Returns:
        (its metrics without timing, the renames it made, in order).
    """
    model_dir, log = os.path.join(work_dir, "uninterrupted"), os.path.join(work_dir, "renames.txt")
    done = _train(data_dir, model_dir, hparams_file, {fileio.RENAME_LOG_ENV: log})
    if done.returncode != 0:
        raise RuntimeError(f"uninterrupted run failed:\n{done.stderr[-3000:]}")
    return _metrics(model_dir), Path(log).read_text().splitlines()


def kill_and_resume(data_dir, work_dir, hparams_file, point):
    """Kill a fresh run right after its `point`-th rename, rerun it; return (killed?, metrics)."""
    model_dir = os.path.join(work_dir, f"killed_at_{point}")
    killed = _train(data_dir, model_dir, hparams_file, {fileio.KILL_AT_RENAME_ENV: str(point)})
    resumed = _train(data_dir, model_dir, hparams_file, {})
    if resumed.returncode != 0:
        raise RuntimeError(
            f"resume after a kill at write point {point} failed:\n{resumed.stderr[-3000:]}"
        )
    return killed.returncode == -9, _metrics(model_dir)


def make_inputs(work_dir, epochs):
    """A tiny synthetic data set and an hparams file under work_dir.

    Returns:
        (data_dir, hparams_file).
    """
    from avsdn_tf.data import synthetic

    data_dir = os.path.join(work_dir, "data")
    if not os.path.exists(os.path.join(data_dir, "dataset_info.json")):
        config = synthetic.SyntheticConfig(
            videos_per_split=dict(TINY_SPLITS), audio_dim=16, visual_dim=24, seed=3
        )
        synthetic.write_dataset(data_dir, config, verbose=False)
    hparams_file = os.path.join(work_dir, "hparams.json")
    Path(hparams_file).write_text(json.dumps({**TINY_HPARAMS, "epochs": epochs}))
    return data_dir, hparams_file


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the run that is killed")
    parser.add_argument(
        "--work_dir", default=None, help="where data and runs go (default: a temp dir)"
    )
    args = parser.parse_args()
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="bench_reliability-")
    os.makedirs(work_dir, exist_ok=True)
    data_dir, hparams_file = make_inputs(work_dir, args.epochs)
    started = time.time()
    reference, renames = write_points(data_dir, work_dir, hparams_file)
    print(
        f"uninterrupted {args.epochs}-epoch run: {len(renames)} write points (renames), "
        f"test accuracy {reference['test']['accuracy']:.4f}",
        flush=True,
    )
    matched, killed_count = 0, 0
    for point, target in enumerate(renames, start=1):
        killed, metrics = kill_and_resume(data_dir, work_dir, hparams_file, point)
        killed_count += killed
        same = metrics == reference
        matched += same
        print(
            f"point {point:2d} (after {os.path.relpath(target, work_dir)}): "
            f"{'killed' if killed else 'NOT killed'}, resume {'matched' if same else 'DIFFERED'}",
            flush=True,
        )
    print(
        f"{len(renames)} write points tried, {killed_count} kills, {matched}/{len(renames)} resumes"
        f" matched the uninterrupted run ({time.time() - started:.0f} s)"
    )
    return 0 if matched == killed_count == len(renames) else 1


if __name__ == "__main__":
    sys.exit(main())
