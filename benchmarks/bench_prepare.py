"""Benchmark `python -m avsdn_tf.prepare` on an AVE-sized release: videos/s and peak memory.

    python benchmarks/bench_prepare.py [--num_videos 4143] [--workdir /tmp/avsdn_bench_prepare]

Writes an AVE-format directory with synthetic values (default: 4143 videos, 7x7x512 visual maps,
the real Annotations.txt rows and split sizes, plus 178 background-only videos, about 4.2 GB of
h5), then runs prepare in a child process and prints its wall time, videos/s and peak resident
memory (ru_maxrss of the child), next to the peak memory of a child that only imports prepare
(TensorFlow alone) so the conversion's own share is visible. The generated release is reused by
later runs with the same --num_videos; pass --cleanup to delete everything at the end.

--remote also uploads the release to a moto S3 server started on 127.0.0.1 (the test extra's
moto[server]) and runs `prepare --ave_dir s3://...` (records written locally), so the peak
memory of reading the h5 files from an object store (streamed to local temporary copies) sits
beside the local one. moto keeps the objects in its own memory: keep --num_videos modest.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avsdn_tf import constants  # noqa: E402
from avsdn_tf.data import annotations  # noqa: E402

flags.DEFINE_integer(
    "num_videos", 4143, "Videos in the synthetic release (rows of Annotations.txt)."
)
flags.DEFINE_integer("noisy_videos", 178, "Background-only videos (0: no weak-supervision files).")
flags.DEFINE_string(
    "workdir", "/tmp/avsdn_bench_prepare", "Where the release and the records are written."
)
flags.DEFINE_integer("chunk_videos", 64, "prepare's --chunk_videos.")
flags.DEFINE_bool("cleanup", False, "Delete the generated release and records at the end.")
flags.DEFINE_bool("remote", False, "Also run prepare with --ave_dir on a local moto S3 server.")
FLAGS = flags.FLAGS

MAP_SHAPE = constants.VISUAL_MAP_SHAPE
WRITE_CHUNK = 64
SPLIT_FRACTIONS = {"train": 3339 / 4143, "val": 402 / 4143}


def _write_features(path, shape, dtype, rng, scale):
    """An h5 dataset written chunk by chunk, so the generator's memory stays small too."""
    with h5py.File(path, "w") as handle:
        dataset = handle.create_dataset(constants.H5_KEY, shape=shape, dtype=dtype)
        for start in range(0, shape[0], WRITE_CHUNK):
            rows = min(WRITE_CHUNK, shape[0] - start)
            dataset[start : start + rows] = (
                rng.random((rows, *shape[1:]), dtype=np.float32) * scale
            ).astype(dtype)


def build_release(directory, num_videos, noisy_videos, seed=0):
    """An AVE-format release of `num_videos` rows (the real rows, repeated if more are asked)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    real = annotations.packaged_annotations()
    rows = [real[i % len(real)] for i in range(num_videos)]
    (directory / "Annotations.txt").write_text(
        "".join(f"{r.category}&{r.video_id}&{r.quality}&{r.start}&{r.end}\n" for r in rows)
    )
    names = constants.category_names()
    labels = np.stack([annotations.segment_labels(r, names.index(r.category)) for r in rows])
    with h5py.File(directory / "labels.h5", "w") as handle:
        handle.create_dataset(
            constants.H5_KEY, data=np.eye(constants.NUM_CLASSES, dtype=np.float32)[labels]
        )
    permutation = rng.permutation(num_videos)
    train_end = int(round(num_videos * SPLIT_FRACTIONS["train"]))
    val_end = train_end + int(round(num_videos * SPLIT_FRACTIONS["val"]))
    for split, order in (
        ("train", permutation[:train_end]),
        ("val", permutation[train_end:val_end]),
        ("test", permutation[val_end:]),
    ):
        with h5py.File(directory / f"{split}_order.h5", "w") as handle:
            handle.create_dataset(constants.ORDER_KEY, data=order.astype(np.int64))
    T = constants.NUM_SEGMENTS
    _write_features(
        directory / "audio_feature.h5", (num_videos, T, constants.AUDIO_DIM), np.float64, rng, 2.0
    )
    _write_features(
        directory / "visual_feature.h5", (num_videos, T, *MAP_SHAPE), np.float32, rng, 4.0
    )
    if noisy_videos:
        noisy_labels = np.zeros((noisy_videos, constants.NUM_CLASSES), np.float32)
        noisy_labels[:, constants.BACKGROUND] = 1.0
        with h5py.File(directory / "labels_noisy.h5", "w") as handle:
            handle.create_dataset(constants.H5_KEY, data=noisy_labels)
        _write_features(
            directory / "audio_feature_noisy.h5",
            (noisy_videos, T, constants.AUDIO_DIM),
            np.float64,
            rng,
            2.0,
        )
        _write_features(
            directory / "visual_feature_noisy.h5",
            (noisy_videos, T, *MAP_SHAPE),
            np.float32,
            rng,
            4.0,
        )


def _size_gb(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e9


def _child_peak_mb(command, env):
    """Run `command` under a tiny wrapper process and return (seconds, the command's ru_maxrss in
    MB);
    the wrapper keeps each measured command's peak apart from the others'."""
    wrapper = (
        "import resource, subprocess, sys, json, time\nbegan = time.time()\ncode ="
        " subprocess.call(sys.argv[1:])\nusage ="
        " resource.getrusage(resource.RUSAGE_CHILDREN)\nprint(json.dumps({'code': code, 'seconds':"
        " time.time() - began, 'maxrss_kb': usage.ru_maxrss}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", wrapper, *command], env=env, capture_output=True, text=True
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        sys.stderr.write(result.stderr)
        raise SystemExit(f"benchmark: {' '.join(command)} exited {report['code']}")
    return report["seconds"], report["maxrss_kb"] / 1024


def main(argv):
    del argv
    workdir = Path(FLAGS.workdir)
    release, output = workdir / "ave", workdir / "records"
    stamp = {
        "num_videos": FLAGS.num_videos,
        "noisy_videos": FLAGS.noisy_videos,
        "visual": list(MAP_SHAPE),
    }
    stamp_file = release / "bench_release.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        print(f"reusing the release in {release}")
    else:
        shutil.rmtree(release, ignore_errors=True)
        began = time.time()
        build_release(release, FLAGS.num_videos, FLAGS.noisy_videos)
        stamp_file.write_text(json.dumps(stamp))
        print(f"built the release in {time.time() - began:.1f} s")
    h5_gb = _size_gb(release)
    print(
        f"release: {FLAGS.num_videos} videos + {FLAGS.noisy_videos} background-only, "
        f"visual {MAP_SHAPE}, {h5_gb:.2f} GB of h5 in {release}"
    )

    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    _, baseline_mb = _child_peak_mb(
        [sys.executable, "-c", "import avsdn_tf.data.ave_release, keras"], env
    )
    seconds, peak_mb = _child_peak_mb(
        [
            sys.executable,
            "-m",
            "avsdn_tf.prepare",
            f"--ave_dir={release}",
            f"--output_dir={output}",
            f"--chunk_videos={FLAGS.chunk_videos}",
        ],
        env,
    )
    summary = json.loads((output / "prepare_summary.json").read_text())
    videos = sum(summary["videos"].values())
    chunk_mb = FLAGS.chunk_videos * constants.NUM_SEGMENTS * int(np.prod(MAP_SHAPE)) * 4 / 2**20
    print(f"records: {_size_gb(output):.2f} GB in {output}")
    print(
        f"prepare: {videos} videos in {seconds:.1f} s wall = {videos / seconds:.1f} videos/s"
        f" (prepare's own clock: {summary['seconds']:.1f} s, {summary['videos_per_second']}"
        " videos/s)"
    )
    print(
        f"peak memory (ru_maxrss): prepare {peak_mb:.0f} MB; importing TensorFlow alone"
        f" {baseline_mb:.0f} MB; "
        f"one chunk of {FLAGS.chunk_videos} visual maps is {chunk_mb:.0f} MB; visual_feature.h5 is "
        f"{FLAGS.num_videos * constants.NUM_SEGMENTS * int(np.prod(MAP_SHAPE)) * 4 / 2**30:.2f} GiB"
    )
    if FLAGS.remote:
        _remote_run(release, workdir / "records_from_s3", env)
    if FLAGS.cleanup:
        shutil.rmtree(workdir, ignore_errors=True)


def _remote_run(release, output, env):
    """prepare --ave_dir s3://bench/ave against a moto server on 127.0.0.1; prints its peak."""
    sys.path.insert(0, str(REPO / "tests"))  # s3_testlib imports testlib from there
    from s3_testlib import moto_server, s3_environment

    with moto_server(key="bench") as (endpoint, client):
        client.create_bucket(Bucket="bench")
        for path in sorted(release.iterdir()):
            client.upload_file(str(path), "bench", f"ave/{path.name}")
        s3_env = dict(env, **s3_environment(endpoint, key="bench"))
        shutil.rmtree(output, ignore_errors=True)
        seconds, peak_mb = _child_peak_mb(
            [
                sys.executable,
                "-m",
                "avsdn_tf.prepare",
                "--ave_dir=s3://bench/ave",
                f"--output_dir={output}",
                f"--chunk_videos={FLAGS.chunk_videos}",
            ],
            s3_env,
        )
        summary = json.loads((output / "prepare_summary.json").read_text())
        videos = sum(summary["videos"].values())
        print(
            f"prepare from s3:// (moto on 127.0.0.1): {videos} videos in {seconds:.1f} s wall = "
            f"{videos / seconds:.1f} videos/s; peak memory (ru_maxrss) {peak_mb:.0f} MB"
        )


if __name__ == "__main__":
    app.run(main)
