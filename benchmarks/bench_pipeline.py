"""Input pipeline speed: the project's TFRecords versus the release's h5 files, against training.

    python benchmarks/bench_pipeline.py                       # AVE size: 3339 videos, 7x7x512 maps
    python benchmarks/bench_pipeline.py --visual_layout vector --visual_dim 512
    python benchmarks/bench_pipeline.py --videos 640 --repeats 2   # a quick look

Data: the built-in synthetic data set (avsdn_tf.data.synthetic.write_dataset) with --videos training
videos, and an AVE-release-style h5 directory of the SAME content (written from those records):
audio_feature.h5 (N, 10, 128) float64, visual_feature.h5 (N, 10, 7, 7, 512) float32 (or (N, 10, D)
vectors), labels.h5 (N, 10, 29), train_order.h5. Both are reused by later runs with the same flags.

Measured, in interleaved rounds (each round runs every reader and the training step once, so all
see the same background load), on a warm page cache:

- tfrecords, read every epoch: pipeline.make_dataset(train split, batch 64, training=True,
  cache=False), one full pass, every batch materialised (raw features: since avsdn-tf 0.2.0 the
  model normalises them itself, so that work is in the training step);
- tfrecords, kept in memory (what training does when the decoded data fits --cache_gb):
  make_dataset(cache=True) over 1 + --cached_epochs epochs; the first epoch reads and parses
  the records and fills the cache, the later ones shuffle and batch from memory;
- tfrecords read only (a floor, not a pipeline): the shards read 8 at a time in parallel,
  CRC-checked and batched, never parsed;
- h5 random batches: h5py reading each batch of random indices straight from the files (sorted
  within the batch, as h5py requires), float64 audio cast to float32, the same normalisation;
- h5 in memory (AVEL): the AVEL code's way, the whole arrays read into memory first (the load time
  is printed apart), then random-index batches from memory, the same normalisation;
- training step: AVSDN training videos/s in Keras on in-memory data of the same visual layout
  (benchmarks/bench_training.py's worker, the project's defaults, in its own process).

The issue's requirement: the pipeline at least 5x the training step's videos/s. The ratio is
printed for the epochs from memory (every epoch after the first, when the data fit --cache_gb),
for the first epoch, and for reading the records every epoch.
"""

import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import h5py
import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_training  # noqa: E402

flags.DEFINE_integer("videos", 3339, "Training videos (AVE: 3339).")
flags.DEFINE_enum(
    "visual_layout", "map", ["map", "vector"], "Visual features: 7x7 maps (the release) or vectors."
)
flags.DEFINE_integer("visual_dim", 512, "Channels of a map, or the vector size.")
flags.DEFINE_integer("batch_size", 64, "Batch size.")
flags.DEFINE_integer("repeats", 3, "Interleaved rounds.")
flags.DEFINE_integer(
    "train_videos",
    640,
    "Videos per timed training round (the training step's speed does not "
    "depend on the data set size; fewer keeps its in-memory copy of the maps small).",
)
flags.DEFINE_integer(
    "cached_epochs", 3, "Epochs timed after the first in the kept-in-memory pipeline."
)
flags.DEFINE_bool(
    "avel_in_memory", True, "Also measure the AVEL way (whole h5 arrays loaded into memory)."
)
flags.DEFINE_string(
    "workdir", "/tmp/avsdn_bench_pipeline", "Where the records and the h5 files are written."
)
flags.DEFINE_bool("cleanup", False, "Delete the generated data at the end.")
flags.DEFINE_string("json", None, "Also write the measurements to this JSON file.")
FLAGS = flags.FLAGS

NUM_SEGMENTS = 10
H5_KEY = "avadataset"


def build_data(workdir, videos, layout, visual_dim):
    """Records via synthetic.write_dataset, then h5 files of the same train videos, in record
    order."""
    from avsdn_tf import constants, records
    from avsdn_tf.data import pipeline, synthetic
    from avsdn_tf.dataset_info import DataDir

    records_dir, h5_dir = workdir / "records", workdir / "h5"
    stamp = {"videos": videos, "layout": layout, "visual_dim": visual_dim}
    stamp_file = workdir / "bench_pipeline.json"
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        print(f"reusing the data in {workdir}")
        return records_dir, h5_dir
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    began = time.time()
    config = synthetic.SyntheticConfig(
        videos_per_split={"train": videos, "val": 8, "test": 8, "noisy": 0},
        visual_layout=layout,
        visual_dim=visual_dim,
    )
    info = synthetic.write_dataset(str(records_dir), config, verbose=False)
    print(f"wrote the records in {time.time() - began:.0f} s")
    began = time.time()
    h5_dir.mkdir()
    data = pipeline.make_dataset(DataDir.open(str(records_dir)), "train", 64)
    visual_shape = tuple(info.visual_shape)
    with (
        h5py.File(h5_dir / "audio_feature.h5", "w") as audio_file,
        h5py.File(h5_dir / "visual_feature.h5", "w") as visual_file,
        h5py.File(h5_dir / "labels.h5", "w") as labels_file,
    ):
        audio = audio_file.create_dataset(
            H5_KEY, (videos, NUM_SEGMENTS, info.audio_dim), np.float64
        )
        visual = visual_file.create_dataset(
            H5_KEY, (videos, NUM_SEGMENTS, *visual_shape), np.float32
        )
        labels = labels_file.create_dataset(
            H5_KEY, (videos, NUM_SEGMENTS, constants.NUM_CLASSES), np.float32
        )
        row = 0
        for parsed in data:
            count = len(parsed[records.AUDIO])
            audio[row : row + count] = parsed[records.AUDIO].numpy().astype(np.float64)
            visual[row : row + count] = (
                parsed[records.VISUAL].numpy().reshape(count, NUM_SEGMENTS, *visual_shape)
            )
            labels[row : row + count] = np.eye(constants.NUM_CLASSES, dtype=np.float32)[
                parsed[records.LABEL].numpy()
            ]
            row += count
    with h5py.File(h5_dir / "train_order.h5", "w") as handle:
        handle.create_dataset("order", data=np.arange(videos, dtype=np.int64))
    print(f"wrote the h5 files in {time.time() - began:.0f} s")
    stamp_file.write_text(json.dumps(stamp))
    return records_dir, h5_dir


def _size_gb(path):
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e9


class Normalizer:
    """The per-feature normalisation the model does, in NumPy, from the records' normalization.json
    (the h5 readers do it in the input pipeline, as AVEL-style code does)."""

    def __init__(self, records_dir):
        stats = json.loads((records_dir / "normalization.json").read_text())
        self.audio = (np.float32(stats["audio_mean"]), np.float32(stats["audio_std"]))
        self.visual = (np.float32(stats["visual_mean"]), np.float32(stats["visual_std"]))

    def __call__(self, audio, visual):
        return (
            (audio.astype(np.float32) - self.audio[0]) / self.audio[1],
            (visual - self.visual[0]) / self.visual[1],
        )


def _videos_in(audio, visual, labels):
    assert len(audio) == len(visual) == len(labels)
    return len(visual)


def tfrecords_pass(records_dir, batch_size, seed):
    from avsdn_tf.data import pipeline
    from avsdn_tf.dataset_info import DataDir

    data = pipeline.make_dataset(
        DataDir.open(str(records_dir)), "train", batch_size, training=True, seed=seed
    ).dataset
    videos = 0
    for batch in data:
        videos += int(batch["visual"].shape[0])
    return videos


def tfrecords_read_only(records_dir, batch_size):
    """The floor under any TFRecord pipeline: the train shards read 8 files at a time in parallel
    (CRC-checked, as TFRecordDataset always does), batched, never parsed."""
    import tensorflow as tf

    from avsdn_tf import dataset_info

    files = dataset_info.read(str(records_dir)).shard_paths(str(records_dir), "train")
    data = tf.data.Dataset.from_tensor_slices(files).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    videos = 0
    for batch in data.batch(batch_size).prefetch(tf.data.AUTOTUNE):
        videos += int(batch.shape[0])
    return videos


def tfrecords_cached(records_dir, batch_size, seed, later_epochs):
    """(first epoch videos/s, later epochs videos/s) of one kept-in-memory pipeline, as training
    builds it."""
    from avsdn_tf import dataset_info
    from avsdn_tf.data import pipeline

    data_dir = dataset_info.DataDir.open(str(records_dir))
    steps = -(-pipeline.split_size(data_dir.info, "train") // batch_size)
    data = pipeline.make_dataset(
        data_dir,
        "train",
        batch_size,
        training=True,
        cache=True,
        epoch_seeds=[seed * 1000 + epoch for epoch in range(1 + later_epochs)],
    ).dataset
    batches = iter(data)
    speeds = []
    for epochs in (1, later_epochs):
        began, videos = time.perf_counter(), 0
        for _ in range(epochs * steps):
            videos += int(next(batches)["visual"].shape[0])
        speeds.append(videos / (time.perf_counter() - began))
    return speeds


def h5_file_pass(h5_dir, batch_size, normalize, seed):
    """Random-index batches read straight from the files (h5py needs increasing indices per
    read)."""
    rng = np.random.default_rng(seed)
    with (
        h5py.File(h5_dir / "audio_feature.h5", "r") as audio_file,
        h5py.File(h5_dir / "visual_feature.h5", "r") as visual_file,
        h5py.File(h5_dir / "labels.h5", "r") as labels_file,
        h5py.File(h5_dir / "train_order.h5", "r") as order_file,
    ):
        audio, visual, labels = audio_file[H5_KEY], visual_file[H5_KEY], labels_file[H5_KEY]
        order = rng.permutation(order_file["order"][:])
        videos = 0
        for start in range(0, len(order), batch_size):
            index = np.sort(order[start : start + batch_size])
            batch_audio, batch_visual = normalize(audio[index], visual[index])
            batch_labels = labels[index].argmax(-1)
            videos += _videos_in(batch_audio, batch_visual, batch_labels)
    return videos


class AvelInMemory:
    """The AVEL code's loader: every h5 array read whole into memory, then random-index batches."""

    def __init__(self, h5_dir):
        began = time.perf_counter()
        with h5py.File(h5_dir / "audio_feature.h5", "r") as handle:
            self.audio = handle[H5_KEY][:]
        with h5py.File(h5_dir / "visual_feature.h5", "r") as handle:
            self.visual = handle[H5_KEY][:]
        with h5py.File(h5_dir / "labels.h5", "r") as handle:
            self.labels = handle[H5_KEY][:]
        with h5py.File(h5_dir / "train_order.h5", "r") as handle:
            self.order = handle["order"][:]
        self.load_seconds = time.perf_counter() - began

    def epoch(self, batch_size, normalize, seed):
        order = np.random.default_rng(seed).permutation(self.order)
        videos = 0
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch_audio, batch_visual = normalize(self.audio[index], self.visual[index])
            batch_labels = self.labels[index].argmax(-1)
            videos += _videos_in(batch_audio, batch_visual, batch_labels)
        return videos


def timed(function, *args):
    began = time.perf_counter()
    videos = function(*args)
    return videos / (time.perf_counter() - began)


def main(argv):
    del argv
    workdir = Path(FLAGS.workdir)
    load = bench_training.loadavg
    print(f"machine: {os.cpu_count()} CPUs; load average {' '.join(map(str, load()))}")
    records_dir, h5_dir = build_data(workdir, FLAGS.videos, FLAGS.visual_layout, FLAGS.visual_dim)
    visual_shape = [7, 7, FLAGS.visual_dim] if FLAGS.visual_layout == "map" else [FLAGS.visual_dim]
    print(
        f"data: {FLAGS.videos} training videos, visual {visual_shape}; records"
        f" {_size_gb(records_dir):.2f} GB, h5 {_size_gb(h5_dir):.2f} GB in {workdir}"
    )
    normalize = Normalizer(records_dir)

    print(
        "starting the training-step worker (AVSDN, project defaults, in-memory data) ...",
        flush=True,
    )
    trainer = bench_training.Worker(
        "keras training step",
        {
            "framework": "keras",
            "mode": "train",
            "visual_dim": FLAGS.visual_dim,
            "visual_shape": visual_shape,
            "videos": FLAGS.train_videos,
            "batch_size": FLAGS.batch_size,
            "epochs": 1,
            "steps": 0,
            "threads": os.cpu_count(),
        },
    )
    avel = None
    if FLAGS.avel_in_memory:
        avel = AvelInMemory(h5_dir)
        print(
            f"AVEL in-memory load: {avel.load_seconds:.1f} s for {FLAGS.videos} videos "
            f"({FLAGS.videos / avel.load_seconds:.0f} videos/s)"
        )
    # Warm-up: one untimed pass of each reader (page cache, tf.data function tracing).
    tfrecords_pass(records_dir, FLAGS.batch_size, 0)
    h5_file_pass(h5_dir, FLAGS.batch_size, normalize, 0)

    results = {
        "tfrecords_in_memory_later_epochs": [],
        "tfrecords_in_memory_first_epoch": [],
        "tfrecords_every_epoch": [],
        "tfrecords_read_only_no_parsing": [],
        "h5_random_batches": [],
        **({"h5_in_memory_avel": []} if avel else {}),
        "training_step": [],
        "loadavg": [],
    }
    try:
        for repeat in range(FLAGS.repeats):
            seed = repeat + 1
            first, later = tfrecords_cached(
                records_dir, FLAGS.batch_size, seed, FLAGS.cached_epochs
            )
            results["tfrecords_in_memory_first_epoch"].append(first)
            results["tfrecords_in_memory_later_epochs"].append(later)
            results["tfrecords_every_epoch"].append(
                timed(tfrecords_pass, records_dir, FLAGS.batch_size, seed)
            )
            results["tfrecords_read_only_no_parsing"].append(
                timed(tfrecords_read_only, records_dir, FLAGS.batch_size)
            )
            results["h5_random_batches"].append(
                timed(h5_file_pass, h5_dir, FLAGS.batch_size, normalize, seed)
            )
            if avel:
                results["h5_in_memory_avel"].append(
                    timed(avel.epoch, FLAGS.batch_size, normalize, seed)
                )
            results["training_step"].append(trainer.run()["videos_per_second"])
            results["loadavg"].append(load())
            print(
                f"round {repeat + 1}/{FLAGS.repeats}: load {' '.join(map(str, load()))}; videos/s "
                + ", ".join(f"{k} {v[-1]:.0f}" for k, v in results.items() if k != "loadavg"),
                flush=True,
            )
    finally:
        trainer.finish()

    print(
        f"\ninput pipeline vs training, {FLAGS.videos} videos, visual {visual_shape}, batch"
        f" {FLAGS.batch_size} (videos/s: median [min-max] of {FLAGS.repeats} interleaved rounds,"
        " warm page cache)"
    )
    for key, values in results.items():
        if key != "loadavg":
            print(
                f"  {key:<34} {statistics.median(values):>8.0f} "
                f" [{min(values):.0f}-{max(values):.0f}]"
            )
    print(f"  training-step worker peak memory {trainer.done['maxrss_mb']:.0f} MB")
    ratios = {}
    for key in (
        "tfrecords_in_memory_later_epochs",
        "tfrecords_in_memory_first_epoch",
        "tfrecords_every_epoch",
    ):
        ratios[key] = [p / t for p, t in zip(results[key], results["training_step"], strict=True)]
        print(
            f"  ratio {key}/training: median {statistics.median(ratios[key]):.1f} "
            f"[{min(ratios[key]):.1f}-{max(ratios[key]):.1f}] "
            f"(>= 5 in every round: {'yes' if min(ratios[key]) >= 5 else 'no'})"
        )
    loads = [x[0] for x in results["loadavg"]]
    print(f"  load average (1 min) during the rounds: {min(loads):.2f}-{max(loads):.2f}")
    if FLAGS.json:
        Path(FLAGS.json).write_text(
            json.dumps(
                {
                    "flags": {
                        k: FLAGS[k].value
                        for k in (
                            "videos",
                            "visual_layout",
                            "visual_dim",
                            "batch_size",
                            "repeats",
                            "train_videos",
                            "cached_epochs",
                        )
                    },
                    "visual_shape": visual_shape,
                    "results": results,
                    "ratio_per_round": ratios,
                    "avel_load_seconds": avel.load_seconds if avel else None,
                    "training_maxrss_mb": trainer.done["maxrss_mb"],
                },
                indent=1,
            )
        )
        print(f"wrote {FLAGS.json}")
    if FLAGS.cleanup:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    app.run(main)
