"""AVSDN training and inference speed in Keras (this project) against the same model in PyTorch.

    python benchmarks/bench_training.py --nolevers --repeats 3 --videos 1280   # the README table
    python benchmarks/bench_training.py                    # AVE size, 3 visual sizes, every lever
    python benchmarks/bench_training.py --visual_dim 7x7x512 --repeats 3 --levers=false
    python benchmarks/bench_training.py --videos 640 --frameworks keras --json out.json
    python benchmarks/bench_training.py --nolevers --baseline /tmp/before   # a change, A/B

With --baseline CHECKOUT (another checkout of this repository, e.g. the commit before a change),
every Keras configuration runs twice, once with each checkout's avsdn_tf, in the same interleaved
rounds, and the report adds "this checkout / baseline" per round: the before/after of a change
without two runs on a machine whose load changes between them.

What it measures, on in-memory random data of AVE's shapes (the same arrays for both frameworks:
--videos training videos, T = 10, audio 128-d, visual --visual_dim vectors or maps, labels
0..28), at batch 64 with the AVSDN defaults of avsdn_tf.hparams (encoder 128, fusion 256):

- training videos/s: Keras through the project's own path (registry.task_for(hp).build,
  trainer.compile_model, model.fit on the arrays, shuffled); PyTorch through
  benchmarks/torch_avsdn.py (Adam 1e-3, cross-entropy, a random order each epoch);
- inference videos/s over the same videos, batch by batch, per-segment probabilities out;
- peak resident memory (ru_maxrss) of each measured configuration.

Every configuration runs in its own worker process (so memory peaks never mix and the two
frameworks' thread pools never share a process). Workers start one at a time and are warmed up
(traced, compiled, one untimed epoch or pass) before any timing. Then the parent runs ROUNDS: each
round asks every live worker in turn (in a rotating order) for one timed epoch or pass, so every
configuration sees the same background load, and each round's keras/torch ratio is computed from
numbers taken seconds apart.

Quiet rounds only: every round records the 1-min load average before and after it and the CPU
other processes used during it (benchmarks/benchlib.py). A round in which other processes used
more than --max_other_cores (or, with --max_load, after a load average above it) is marked NOT
COMPARABLE and another is run in its place (at most --max_reruns more); medians and ratios use
the comparable rounds only, and a configuration measured only in loaded rounds is marked LOADED.

Work done: each configuration's GFLOP/s (videos/s x the model's FLOPs per video, benchlib's
count: matmuls and map pooling; training = 3x the forward pass) and its fraction of this
machine's peak, measured first in the same run as the best float32 1024^3 matmul rate of
TensorFlow and PyTorch at every core.

Memory: each worker's peak resident memory, and its resident memory right after importing its
framework (TensorFlow's import alone is about 0.5 GB here, PyTorch's about 0.2 GB).

The levers (--levers): LSTM unrolling (hp.unroll), steps_per_execution, jit_compile (XLA), the
inference path (backbones.inference_function: a tf.function with a fixed input_signature, which
evaluate, predict and train's validation pass use; model.predict; predict_on_batch; a tf.function
with reduce_retracing; the first under XLA), oneDNN, and thread counts. With or without
--levers, Keras runs with the commands' default threads (the rule of
avsdn_tf/training/threads.py), with TensorFlow's own (--threads in each pool) and with 1 intra-op
and --threads inter-op threads; PyTorch with --threads and with 1 thread. Every Keras row's ratio
is taken against the FASTEST PyTorch thread setting of each round, so a thread count that happens
to suit PyTorch badly does not flatter Keras.
"""

import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
# A --baseline worker imports avsdn_tf from the baseline checkout instead of this one.
BASELINE_ENV = "AVSDN_TF_BENCH_CHECKOUT"
sys.path.insert(0, os.environ.get(BASELINE_ENV) or str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402  (benchmarks/, on the path just above)

PROTOCOL = "@@bench "  # prefix of the lines a worker sends its parent (everything else is log)
AUDIO_DIM = 128
NUM_SEGMENTS = 10
NUM_CLASSES = 29

if __name__ == "__main__":
    flags.DEFINE_integer("videos", 3339, "Training videos (AVE: 3339).")
    flags.DEFINE_list(
        "visual_dim",
        ["512", "2048", "7x7x512"],
        "Visual feature sizes to measure: D for vectors (AVE pooled: 512; the paper's "
        "ResNet-152: 2048) or HxWxC for maps (the AVE release's VGG-19 pool5: 7x7x512, which "
        "AVSDN pools to C).",
    )
    flags.DEFINE_integer("batch_size", 64, "Batch size for training and inference.")
    flags.DEFINE_integer(
        "epochs",
        1,
        "Timed epochs (training) or passes over the videos (inference) per worker per round.",
    )
    flags.DEFINE_integer(
        "steps",
        0,
        "If > 0: time this many batches per round instead of --epochs "
        "(videos = steps x batch_size).",
    )
    flags.DEFINE_integer(
        "repeats", 5, "Rounds: timed measurements of every configuration, interleaved."
    )
    flags.DEFINE_list(
        "frameworks", ["keras", "torch"], "Frameworks to measure: keras, torch or both."
    )
    flags.DEFINE_list("modes", ["train", "infer"], "What to measure: train, infer or both.")
    flags.DEFINE_bool(
        "levers",
        True,
        "Measure every lever; with --nolevers only the project's defaults "
        "and PyTorch at 1 and 2 threads.",
    )
    flags.DEFINE_bool(
        "jit_levers",
        False,
        "Also measure jit_compile (XLA). Off by default: on this CPU its "
        "compile takes minutes and its steps are far slower (see docs/benchmarks.md).",
    )
    flags.DEFINE_integer(
        "jit_steps",
        4,
        "Batches per round for the jit_compile training variants (their XLA "
        "compile takes minutes and their steps are slow on this CPU; see docs/benchmarks.md).",
    )
    flags.DEFINE_string(
        "only",
        None,
        "Regular expression: measure only the configurations whose name matches "
        "(e.g. 'defaults|torch', 'jit|torch').",
    )
    flags.DEFINE_integer(
        "threads",
        os.cpu_count(),
        "Threads of the default configurations (TF intra- and inter-op, torch.set_num_threads).",
    )
    flags.DEFINE_string(
        "baseline",
        None,
        "A second checkout of avsdn_tf (e.g. `git worktree add /tmp/before REV`): every Keras "
        "configuration is also measured with that checkout's code, in the same rounds, and the "
        "report gives this checkout / baseline per round (a before/after of one change).",
    )
    flags.DEFINE_list(
        "thread_grid",
        [],
        "More Keras thread settings to measure, each INTRA:INTER (e.g. 1:3,2:1): how the "
        "commands' thread rule (avsdn_tf/training/threads.py) was chosen.",
    )
    flags.DEFINE_float(
        "settle_seconds",
        0.5,
        "Pause before each worker's timed round, so the thread pools of the worker before it "
        "(OpenMP and Eigen threads spin a while after their work) are idle when it starts. "
        "Without it, in one run, the configuration that always ran right after a PyTorch "
        "worker measured 13290 videos/s and its identical twin elsewhere in the round 17056.",
    )
    flags.DEFINE_integer(
        "max_reruns",
        6,
        "Rounds run at most on top of --repeats to replace rounds that were not comparable "
        "(other processes using more than --max_other_cores during them, or a load average over "
        "--max_load before them).",
    )
    flags.DEFINE_float(
        "max_load",
        benchlib.MAX_LOAD,
        "If > 0: a round is comparable only if the 1-min load average (the benchmark's own "
        "workers included) was at most this before it.",
    )
    flags.DEFINE_float(
        "max_other_cores",
        benchlib.MAX_OTHER_CORES,
        "A round is comparable if other processes used at most this many cores during it.",
    )
    flags.DEFINE_string("json", None, "Also write every measurement to this JSON file.")
    flags.DEFINE_string("worker", None, "Internal: run as a worker with this JSON spec.")
    FLAGS = flags.FLAGS


# ---------------------------------------------------------------------------------------------
# Data: the same arrays in every worker (a fixed seed).


def make_data(videos, visual_shape, seed=0):
    """audio [N, T, 128], visual [N, T, *visual_shape] (vectors [D] or maps [H, W, C]), labels [N,
    T]."""
    rng = np.random.default_rng(seed)
    audio = rng.standard_normal((videos, NUM_SEGMENTS, AUDIO_DIM), dtype=np.float32)
    visual = rng.standard_normal((videos, NUM_SEGMENTS, *visual_shape), dtype=np.float32)
    labels = rng.integers(0, NUM_CLASSES, size=(videos, NUM_SEGMENTS)).astype(np.int64)
    return audio, visual, labels


def _batches(videos, batch_size):
    return [(start, min(start + batch_size, videos)) for start in range(0, videos, batch_size)]


def _maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb():
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# ---------------------------------------------------------------------------------------------
# The project's API, in this checkout or in a --baseline checkout from before the redesign.


def _project():
    """(build, compile_model, inference_function, configure_threads) of the avsdn_tf imported.

    build(hp, audio_dim, visual_shape, num_segments) -> the model `train` fits. Checkouts up to
    9f807f9 (before the backbone/task redesign) had them in avsdn_tf.models / training / threads.
    """
    from types import SimpleNamespace

    try:
        from avsdn_tf.models import backbones, registry
        from avsdn_tf.training import threads, trainer
    except ImportError:  # a checkout from before the registry (f19d5f6 and earlier)
        return _project_before_registry(SimpleNamespace)
    return SimpleNamespace(
        build=lambda hp, *shapes: registry.task_for(hp).build(*shapes),
        compile_model=trainer.compile_model,
        inference_function=backbones.inference_function,
        configure_threads=threads.configure,
    )


def _project_before_registry(namespace):
    """_project() of a checkout from f19d5f6 back to 9f807f9, or from before the redesign."""
    try:
        from avsdn_tf.models import backbones, tasks
        from avsdn_tf.training import threads, trainer
    except ImportError:  # a checkout from before the redesign
        from avsdn_tf import models, threads, training

        return namespace(
            build=models.build_training_model,
            compile_model=training.compile_model,
            inference_function=models.inference_function,
            configure_threads=threads.configure,
        )
    return namespace(
        build=lambda hp, *shapes: tasks.for_hparams(hp).build(*shapes),
        compile_model=trainer.compile_model,
        inference_function=backbones.inference_function,
        configure_threads=threads.configure,
    )


# ---------------------------------------------------------------------------------------------
# Workers: one configuration each. setup() builds and warms up; run_round() is one timed round.


class KerasTrain:
    def __init__(self, spec, data):
        _tf_threads(spec)
        import keras

        from avsdn_tf import hparams

        project = _project()
        self.audio, self.visual, self.labels = data
        self.spec = spec
        hp = hparams.HParams()  # the project's defaults, then the lever under test
        hp = hp.replace(
            **{
                key: spec[key]
                for key in ("unroll", "jit_compile", "steps_per_execution")
                if key in spec
            }
        )
        hp = hp.replace(batch_size=spec["batch_size"]).validate()
        self.hp = hp
        keras.utils.set_random_seed(0)
        self.model = project.build(hp, AUDIO_DIM, list(self.visual.shape[2:]), NUM_SEGMENTS)
        project.compile_model(
            self.model, hp, steps_per_epoch=len(_batches(len(self.audio), hp.batch_size))
        )
        self.inputs = {"audio": self.audio, "visual": self.visual}
        self.fit(1)  # traces (and compiles) the train step, the partial last batch too

    def fit(self, epochs):
        kwargs = dict(batch_size=self.hp.batch_size, epochs=epochs, shuffle=True, verbose=0)
        if self.spec.get("steps"):
            count = self.spec["steps"] * self.hp.batch_size
            return self.model.fit(
                {k: v[:count] for k, v in self.inputs.items()}, self.labels[:count], **kwargs
            )
        return self.model.fit(self.inputs, self.labels, **kwargs)

    def run_round(self):
        timer = _EpochTimer()
        began = time.perf_counter()
        kwargs = dict(
            batch_size=self.hp.batch_size,
            epochs=self.spec["epochs"],
            shuffle=True,
            verbose=0,
            callbacks=[timer],
        )
        inputs, labels = self.inputs, self.labels
        if self.spec.get("steps"):
            count = self.spec["steps"] * self.hp.batch_size
            inputs, labels = {k: v[:count] for k, v in inputs.items()}, labels[:count]
        self.model.fit(inputs, labels, **kwargs)
        wall = time.perf_counter() - began
        # The epochs' own time (as a long fit sees it); the fit call's set-up is reported apart.
        return {
            "seconds": sum(timer.seconds),
            "wall_seconds": wall,
            "videos": len(labels) * self.spec["epochs"],
        }


class _EpochTimer:
    """A Keras callback (duck-typed, built lazily so keras is imported in the worker only)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.began = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.began)

        return Timer()


def _tf_threads(spec):
    """The commands' thread setting: --intra_op_threads / --inter_op_threads when the
    configuration names them, else the checkout's default (0: its rule, or TensorFlow's own
    default in checkouts from before the rule)."""
    _project().configure_threads(spec.get("intra_op_threads", 0), spec.get("inter_op_threads", 0))


class KerasInfer:
    """Inference paths over a trained-shape AVSDN (weights as built: speed does not depend on
    them)."""

    def __init__(self, spec, data):
        import tensorflow as tf

        _tf_threads(spec)
        import keras

        from avsdn_tf import hparams

        project = _project()
        self.tf = tf
        self.audio, self.visual, _ = data
        self.spec = spec
        hp = hparams.HParams()
        hp = hp.replace(**{key: spec[key] for key in ("unroll",) if key in spec})
        keras.utils.set_random_seed(0)
        model = project.build(hp, AUDIO_DIM, list(self.visual.shape[2:]), NUM_SEGMENTS)
        self.model = model
        self.batch_size = spec["batch_size"]
        path = spec["path"]
        if path in ("tf_function", "tf_function_jit"):
            signature = [
                {
                    "audio": tf.TensorSpec(
                        [None, NUM_SEGMENTS, AUDIO_DIM], tf.float32, name="audio"
                    ),
                    "visual": tf.TensorSpec(
                        [None, NUM_SEGMENTS, *self.visual.shape[2:]], tf.float32, name="visual"
                    ),
                }
            ]
            self.function = tf.function(
                lambda inputs: model(inputs, training=False),
                input_signature=signature,
                jit_compile=path == "tf_function_jit",
            )
        elif path == "reduce_retracing":
            # What evaluate and predict used before they switched to backbones.inference_function.
            self.function = tf.function(
                lambda inputs: model(inputs, training=False), reduce_retracing=True
            )
        elif path == "project":
            self.function = project.inference_function(model)  # the project's lean inference path
        self.count = spec["steps"] * self.batch_size if spec.get("steps") else len(self.audio)
        # The batches as TensorFlow tensors, made once before any timing, as the PyTorch worker
        # wraps its arrays once (torch.from_numpy): both then time the model, not a copy of the
        # NumPy input (a batch of 7x7x512 maps is 64 MB; converting it each call took about as
        # long as the model itself). evaluate and predict get tensors from tf.data likewise.
        self.tensor_batches = [
            {
                "audio": tf.constant(self.audio[start:end]),
                "visual": tf.constant(self.visual[start:end]),
            }
            for start, end in _batches(self.count, self.batch_size)
        ]
        self.run_round()  # warm up: traces, compiles, the partial last batch too

    def _pass(self):
        path, count = self.spec["path"], self.count
        if path == "predict":
            return self.model.predict(
                {"audio": self.audio[:count], "visual": self.visual[:count]},
                batch_size=self.batch_size,
                verbose=0,
            )
        outputs = []
        for batch in self.tensor_batches:
            if path == "predict_on_batch":
                outputs.append(self.model.predict_on_batch(batch))
            else:
                outputs.append(np.asarray(self.function(batch)))
        return np.concatenate(outputs)

    def run_round(self):
        began = time.perf_counter()
        for _ in range(self.spec["epochs"]):
            probs = self._pass()
        seconds = time.perf_counter() - began
        assert probs.shape == (self.count, NUM_SEGMENTS, NUM_CLASSES), probs.shape
        return {
            "seconds": seconds,
            "wall_seconds": seconds,
            "videos": self.count * self.spec["epochs"],
        }


class TorchWorker:
    def __init__(self, spec, data):
        import torch
        import torch_avsdn

        torch.set_num_threads(spec["threads"])
        self.torch, self.lib, self.spec = torch, torch_avsdn, spec
        torch.manual_seed(0)
        audio, visual, labels = data
        count = spec["steps"] * spec["batch_size"] if spec.get("steps") else len(audio)
        self.audio = torch.from_numpy(audio[:count])
        self.visual = torch.from_numpy(visual[:count])
        self.labels = torch.from_numpy(labels[:count])
        self.model = torch_avsdn.AVSDN(AUDIO_DIM, visual.shape[-1])
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=1e-3)
        self.generator = torch.Generator().manual_seed(0)
        self.run_round(epochs=1)  # warm up

    def run_round(self, epochs=None):
        epochs = epochs or self.spec["epochs"]
        began = time.perf_counter()
        for _ in range(epochs):
            if self.spec["mode"] == "train":
                self.lib.train_epoch(
                    self.model,
                    self.optimizer,
                    self.audio,
                    self.visual,
                    self.labels,
                    self.spec["batch_size"],
                    self.generator,
                )
            else:
                probs = self.lib.predict(
                    self.model, self.audio, self.visual, self.spec["batch_size"]
                )
                assert probs.shape == (len(self.audio), NUM_SEGMENTS, NUM_CLASSES)
        seconds = time.perf_counter() - began
        return {"seconds": seconds, "wall_seconds": seconds, "videos": len(self.audio) * epochs}


def _send(message):
    sys.__stdout__.write(PROTOCOL + json.dumps(message) + "\n")
    sys.__stdout__.flush()


def run_worker(spec):
    sys.stdout = sys.stderr  # library chatter goes to stderr; stdout carries the protocol only
    began = time.perf_counter()
    if spec["framework"] == "peak":
        _send(
            {
                "event": "ready",
                "package": None,
                "setup_seconds": 0.0,
                "rss_data_mb": 0.0,
                "rss_ready_mb": _rss_mb(),
            }
        )
        return _serve(PeakWorker(spec))
    # The framework's own import (its shared libraries and Python modules): the floor of every
    # configuration's memory, reported apart from what the model and its data add on top.
    if spec["framework"] == "torch":
        import torch  # noqa: F401
    else:
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    rss_framework = _rss_mb()
    data = make_data(spec["videos"], spec["visual_shape"])
    rss_data = _rss_mb()
    if spec["framework"] == "torch":
        worker = TorchWorker(spec, data)
    elif spec["mode"] == "train":
        worker = KerasTrain(spec, data)
    else:
        worker = KerasInfer(spec, data)
    package = None  # the checkout the Keras worker's avsdn_tf came from
    if spec["framework"] == "keras":
        import avsdn_tf

        package = str(Path(avsdn_tf.__file__).resolve().parents[1])
    _send(
        {
            "event": "ready",
            "package": package,
            "setup_seconds": time.perf_counter() - began,
            "rss_framework_mb": rss_framework,
            "rss_data_mb": rss_data,
            "rss_ready_mb": _rss_mb(),
        }
    )
    _serve(worker)


def _serve(worker):
    """Answer the parent's commands: `run` times one round, `quit` ends the worker."""
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            _send({"event": "round", **worker.run_round()})
        elif command == "quit":
            break
    _send({"event": "done", "maxrss_mb": _maxrss_mb()})


class PeakWorker:
    """The machine's float32 matmul peak (benchlib), in TensorFlow at every core and in PyTorch
    at every core, each round; the best over rounds is the peak the report divides by."""

    def __init__(self, spec):
        self.threads = spec["threads"]
        self.tensorflow = None

    def run_round(self):
        began = time.perf_counter()
        # TensorFlow fixes its pools at the first op: default threads (every core).
        tensorflow = benchlib.peak_gflops_tensorflow()
        torch = benchlib.peak_gflops_torch(self.threads)
        seconds = time.perf_counter() - began
        return {
            "seconds": seconds,
            "wall_seconds": seconds,
            "videos": 0,
            "gflops": {"tensorflow": tensorflow, "torch": torch},
        }


# ---------------------------------------------------------------------------------------------
# The parent: start workers one by one, then interleaved rounds.


loadavg = benchlib.loadavg


class Worker:
    def __init__(self, name, spec):
        self.name, self.spec = name, spec
        self.rounds, self.loads = [], []
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), f"--worker={json.dumps(spec)}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
            env={**_worker_env(), **spec.get("env", {})},
        )
        self.ready = self._receive("ready")
        expected = str(Path(spec.get("env", {}).get(BASELINE_ENV) or REPO).resolve())
        if spec["framework"] == "keras" and self.ready["package"] != expected:
            self.process.kill()
            raise SystemExit(
                f"worker {name}: expected avsdn_tf from {expected}, imported it from"
                f" {self.ready['package']}"
            )

    def _receive(self, event):
        for line in self.process.stdout:
            if line.startswith(PROTOCOL):
                message = json.loads(line[len(PROTOCOL) :])
                if message["event"] == event:
                    return message
        error = self.process.stderr.read()
        raise SystemExit(f"worker {self.name} ended before '{event}':\n{error[-4000:]}")

    def run(self):
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        result = self._receive("round")
        result["videos_per_second"] = result["videos"] / result["seconds"]
        result["loadavg"] = loadavg()
        self.rounds.append(result)
        return result

    def finish(self):
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.done = self._receive("done")
        self.process.stdin.close()
        self.process.wait()
        self.process.stderr.close()
        self.process.stdout.close()

    def summary(self):
        """Medians over the comparable rounds (all rounds, marked loaded, if none was)."""
        kept = [r for r in self.rounds if r["load"]["comparable"]] or self.rounds
        speeds = [r["videos_per_second"] for r in kept]
        return {
            "name": self.name,
            "spec": self.spec,
            "videos_per_second": speeds,
            "median": statistics.median(speeds),
            "min": min(speeds),
            "max": max(speeds),
            "loaded": not any(r["load"]["comparable"] for r in self.rounds),
            "rounds_run": len(self.rounds),
            "setup_seconds": self.ready["setup_seconds"],
            "rss_framework_mb": self.ready.get("rss_framework_mb", 0.0),
            "rss_data_mb": self.ready["rss_data_mb"],
            "rss_ready_mb": self.ready["rss_ready_mb"],
            "maxrss_mb": self.done["maxrss_mb"],
            "loads": [r["load"] for r in self.rounds],
            "fit_overhead_seconds": statistics.median(
                r["wall_seconds"] - r["seconds"] for r in kept
            ),
        }


def _worker_env():
    """The workers' environment: this one, plus the repository on the path.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE (set on some machines for old OpenBLAS builds) would only
    touch NumPy here (TF uses Eigen, PyTorch MKL/oneDNN); they are left as they are and reported.
    """
    return dict(
        os.environ,
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
    )


def variants(mode, frameworks, levers, jit_levers, threads):
    """(name, spec) of every configuration to measure for `mode`; the first Keras one is the
    default."""
    other = 1 if threads != 1 else 2
    # TensorFlow's own defaults (one thread per core in each pool), named explicitly, and the
    # split the rule picks on small machines (each core runs whole small ops).
    own = {"intra_op_threads": threads, "inter_op_threads": threads}
    own_name = f"--intra_op_threads {threads} --inter_op_threads {threads} (TensorFlow's own)"
    split = {"intra_op_threads": 1, "inter_op_threads": threads}
    split_name = f"--intra_op_threads 1 --inter_op_threads {threads}"
    found = []
    if "keras" in frameworks:
        if mode == "train":
            found += [
                ("keras defaults", {}),
                (f"keras {own_name}", own),
                (f"keras {split_name}", split),
            ]
            if levers:
                found += [
                    ("keras unroll=False", {"unroll": False}),
                    ("keras steps_per_execution=8", {"steps_per_execution": 8}),
                    ("keras steps_per_execution=53 (one epoch)", {"steps_per_execution": 53}),
                ]
                if jit_levers:
                    found += [
                        (
                            f"keras jit_compile=True ({FLAGS.jit_steps} batches a round)",
                            {"jit_compile": True, "steps": FLAGS.jit_steps},
                        ),
                        (
                            (
                                f"keras jit_compile=True, unroll=False ({FLAGS.jit_steps} batches a"
                                " round)"
                            ),
                            {"jit_compile": True, "unroll": False, "steps": FLAGS.jit_steps},
                        ),
                    ]
                found += [
                    (
                        f"keras {other} thread(s)",
                        {"intra_op_threads": other, "inter_op_threads": other},
                    ),
                    (
                        "keras defaults, TF_ENABLE_ONEDNN_OPTS=0",
                        {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
                    ),
                ]
        else:
            found += [
                ("keras backbones.inference_function", {"path": "project"}),
                (f"keras backbones.inference_function, {own_name}", {"path": "project", **own}),
                (f"keras backbones.inference_function, {split_name}", {"path": "project", **split}),
            ]
            if levers:
                found += [
                    ("keras model.predict", {"path": "predict"}),
                    ("keras predict_on_batch", {"path": "predict_on_batch"}),
                    (
                        "keras tf.function(reduce_retracing) (evaluate's earlier path)",
                        {"path": "reduce_retracing"},
                    ),
                ]
                if jit_levers:
                    found.append(
                        (
                            (
                                "keras tf.function(input_signature, jit_compile) "
                                f"({FLAGS.jit_steps} batches a round)"
                            ),
                            {"path": "tf_function_jit", "steps": FLAGS.jit_steps},
                        )
                    )
                found += [
                    (
                        "keras backbones.inference_function, unroll=False",
                        {"path": "project", "unroll": False},
                    ),
                    (
                        f"keras backbones.inference_function, {other} thread(s)",
                        {"path": "project", "intra_op_threads": other, "inter_op_threads": other},
                    ),
                    (
                        "keras backbones.inference_function, TF_ENABLE_ONEDNN_OPTS=0",
                        {"path": "project", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
                    ),
                ]
        for setting in FLAGS.thread_grid:
            intra, inter = (int(x) for x in setting.split(":"))
            extra = {"intra_op_threads": intra, "inter_op_threads": inter}
            prefix = "keras" if mode == "train" else "keras backbones.inference_function,"
            if mode != "train":
                extra["path"] = "project"
            found.append((f"{prefix} --intra_op_threads {intra} --inter_op_threads {inter}", extra))
        found = [(name, {"framework": "keras", **spec}) for name, spec in found]
        if FLAGS.baseline:
            found = [
                pair
                for name, spec in found
                for pair in (
                    (name, spec),
                    (
                        f"{name} [baseline]",
                        {**spec, "env": {**spec.get("env", {}), BASELINE_ENV: FLAGS.baseline}},
                    ),
                )
            ]
    if "torch" in frameworks:
        found += [
            (f"torch {threads} thread(s)", {"framework": "torch"}),
            (f"torch {other} thread(s)", {"framework": "torch", "threads": other}),
        ]
    if FLAGS.only:
        pattern = re.compile(FLAGS.only)
        found = [(name, spec) for name, spec in found if pattern.search(name)]
    return found


def visual_shape(text):
    """'512' -> [512] (vectors); '7x7x512' -> [7, 7, 512] (maps)."""
    try:
        shape = [int(part) for part in text.lower().split("x")]
    except ValueError:
        shape = []
    if len(shape) not in (1, 3) or min(shape) < 1:
        raise app.UsageError(
            f"--visual_dim: expected D or HxWxC (e.g. 512, 7x7x512), found {text!r}"
        )
    return shape


def run_rounds(workers, label):
    """Interleaved rounds until --repeats comparable ones (or --max_reruns more were run).

    Each round asks every worker in turn (in a rotating order) for one timed round, with the
    machine's load recorded around it (benchlib.RoundLoad); every worker's round gets it.
    """
    comparable = ran = 0
    while comparable < FLAGS.repeats and ran < FLAGS.repeats + FLAGS.max_reruns:
        shift = ran % len(workers)
        probe = benchlib.RoundLoad(
            [w.process.pid for w in workers], FLAGS.max_load, FLAGS.max_other_cores
        )
        for worker in workers[shift:] + workers[:shift]:
            time.sleep(FLAGS.settle_seconds)  # the previous worker's thread pools go idle
            worker.run()
        load = probe.finish()
        for worker in workers:
            worker.rounds[-1]["load"] = load
        ran += 1
        comparable += load["comparable"]
        speeds = "  ".join(f"{w.rounds[-1]['videos_per_second']:.0f}" for w in workers)
        print(
            f"  {label} round {ran} ({comparable}/{FLAGS.repeats} comparable):"
            f" {benchlib.describe_load(load)}; {speeds}",
            flush=True,
        )
    if comparable < FLAGS.repeats:
        print(
            f"  WARNING: only {comparable} of {ran} rounds were comparable (the machine was"
            " loaded); the report marks figures taken from loaded rounds",
            flush=True,
        )


def measure(mode, visual, frameworks):
    base = {
        "mode": mode,
        "visual_dim": visual,
        "visual_shape": visual_shape(visual),
        "videos": FLAGS.videos,
        "batch_size": FLAGS.batch_size,
        "epochs": FLAGS.epochs,
        "steps": FLAGS.steps,
        "threads": FLAGS.threads,
    }
    workers = []
    try:
        for name, spec in variants(mode, frameworks, FLAGS.levers, FLAGS.jit_levers, FLAGS.threads):
            print(f"  starting {name} ...", end="", flush=True)
            began = time.time()
            workers.append(Worker(name, {**base, **spec}))
            print(f" ready in {time.time() - began:.0f} s (load {loadavg()[0]:.2f})", flush=True)
        run_rounds(workers, "videos/s")
    finally:
        _finish(workers)
    return [worker.summary() for worker in workers]


def _finish(workers):
    for worker in workers:
        try:
            worker.finish()
        except (BrokenPipeError, SystemExit, ValueError):
            worker.process.kill()


def measure_peak():
    """The machine's float32 matmul peak (GFLOP/s) in this run: the best comparable round of
    TensorFlow's and PyTorch's n x n matmul at every core (benchlib)."""
    print("\n== peak: float32 matmul, every core ==", flush=True)
    worker = Worker("peak", {"framework": "peak", "threads": FLAGS.threads})
    try:
        run_rounds([worker], "peak")
    finally:
        _finish([worker])
    kept = [r for r in worker.rounds if r["load"]["comparable"]] or worker.rounds
    best = {name: max(r["gflops"][name] for r in kept) for name in ("tensorflow", "torch")}
    peak = max(best.values())
    print(
        f"  peak {peak:.0f} GFLOP/s (TensorFlow {best['tensorflow']:.0f}, PyTorch"
        f" {best['torch']:.0f}; {benchlib.PEAK_MATMUL_SIZE}^3 matmuls)"
        + ("" if any(r["load"]["comparable"] for r in worker.rounds) else " LOADED"),
        flush=True,
    )
    return {"gflops": peak, **{f"{name}_gflops": value for name, value in best.items()}}


def _spread(values, digits=2):
    """'median [min-max]' of per-round values, as every line of the report writes them."""
    low, middle, high = (
        f"{v:.{digits}f}" for v in (min(values), statistics.median(values), max(values))
    )
    return f"{middle} [{low}-{high}]"


def _ratio_rounds(keras_summary, torch_summaries):
    """Per round: keras / the fastest torch configuration in that round."""
    ratios = []
    for index, keras_round in enumerate(keras_summary["videos_per_second"]):
        best = max(s["videos_per_second"][index] for s in torch_summaries)
        ratios.append(keras_round / best)
    return ratios


def flops_per_video(mode, visual):
    """FLOPs one video costs in `mode` (benchlib's count for AVSDN's default sizes)."""
    forward = benchlib.avsdn_forward_flops(AUDIO_DIM, visual_shape(visual), NUM_SEGMENTS)
    return benchlib.training_flops(forward) if mode == "train" else forward


def report(mode, visual, summaries, peak):
    """Print one mode and size's table; returns its JSON record.

    Args:
        summaries: Worker.summary() of every configuration.
        peak: measure_peak()'s record (GFLOP/s of the machine's float32 matmul).
    """
    title = "training" if mode == "train" else "inference"
    flops = flops_per_video(mode, visual)
    print(
        f"\n{title}, visual {visual}, {FLAGS.videos} videos, batch {FLAGS.batch_size} "
        f"(videos/s: median [min-max] of the comparable interleaved rounds;"
        f" {flops / 1e6:.1f} MFLOP per video; peak {peak['gflops']:.0f} GFLOP/s)"
    )
    torch_runs = [s for s in summaries if s["spec"]["framework"] == "torch"]
    best_torch = max(torch_runs, key=lambda s: s["median"]) if torch_runs else None
    print(
        f"  {'configuration':<80} {'videos/s':>9} {'min-max':>13} {'vs torch':>8} {'per round':>9}"
        f" {'GFLOP/s':>8} {'of peak':>7} {'peak MB':>8} {'import':>7}"
    )
    for s in summaries:
        ratio = per_round = ""
        if best_torch and s["spec"]["framework"] == "keras":
            ratio = f"{s['median'] / best_torch['median']:.2f}"
            s["ratio_per_round"] = _ratio_rounds(s, torch_runs)
            per_round = f"{statistics.median(s['ratio_per_round']):.2f}"
        s["gflops"] = s["median"] * flops / 1e9
        s["fraction_of_peak"] = s["gflops"] / peak["gflops"]
        print(
            f"  {s['name'] + (' LOADED' if s['loaded'] else ''):<80} {s['median']:>9.0f}"
            f" {s['min']:>6.0f}-{s['max']:<6.0f} {ratio:>8} {per_round:>9} {s['gflops']:>8.1f}"
            f" {s['fraction_of_peak']:>7.0%} {s['maxrss_mb']:>8.0f} {s['rss_framework_mb']:>7.0f}"
        )
    print(
        "  (vs torch: median / the fastest torch median; per round: median over rounds of keras /"
        " the fastest torch of that round; GFLOP/s: videos/s x FLOPs per video; peak MB: the"
        " worker's peak resident memory; import: its resident memory right after importing the"
        " framework, before any data or model)"
    )
    result = {
        "mode": mode,
        "visual_dim": visual,
        "flops_per_video": flops,
        "configurations": summaries,
    }
    keras_default = next((s for s in summaries if s["spec"]["framework"] == "keras"), None)
    if keras_default and best_torch:
        ratios = keras_default["ratio_per_round"]  # computed for every Keras row above
        same_threads = next(s for s in torch_runs if s["spec"]["threads"] == FLAGS.threads)
        result.update(
            {
                "keras": keras_default["name"],
                "torch_best": best_torch["name"],
                "ratio_per_round": ratios,
                "ratio_median": statistics.median(ratios),
                "ratio_vs_torch_same_threads": keras_default["median"] / same_threads["median"],
            }
        )
        print(
            f"  ratio keras/torch ({keras_default['name']} / fastest torch per round): median"
            f" {_spread(ratios)}; against torch"
            f" at {FLAGS.threads} thread(s) as TF: {result['ratio_vs_torch_same_threads']:.2f}"
        )
    _report_baseline(summaries, result)
    loads = [load for s in summaries[:1] for load in s["loads"]]
    kept = [load for load in loads if load["comparable"]]
    print(
        f"  rounds: {len(kept)} comparable of {len(loads)} run; load average before them"
        f" {_range(load['load_before'] for load in loads)}, other processes"
        f" {_range((load['other_cores'] for load in loads), 2)} cores"
    )
    return result


def _range(values, digits=2):
    values = list(values)
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


def _report_baseline(summaries, result):
    """With --baseline: every Keras row / its baseline twin, per round (measured seconds apart)."""
    by_name = {s["name"]: s for s in summaries}
    rows = []
    for s in summaries:
        twin = by_name.get(f"{s['name']} [baseline]")
        if twin is None:
            continue
        ratios = [
            after / before
            for after, before in zip(s["videos_per_second"], twin["videos_per_second"], strict=True)
        ]
        rows.append({"name": s["name"], "ratio_per_round": ratios})
        print(
            f"  this checkout / baseline ({FLAGS.baseline}), {s['name']}: median"
            f" {_spread(ratios, 3)} over"
            f" {len(ratios)} rounds"
        )
    if rows:
        result["vs_baseline"] = rows


def main(argv):
    del argv
    if FLAGS.worker:
        run_worker(json.loads(FLAGS.worker))
        return
    import h5py  # noqa: F401  (only to fail early on a broken env, as the other benchmarks do)

    if FLAGS.baseline:
        FLAGS.baseline = os.path.abspath(FLAGS.baseline)
        if not os.path.isfile(os.path.join(FLAGS.baseline, "avsdn_tf", "__init__.py")):
            raise app.UsageError(
                f"--baseline {FLAGS.baseline}: expected a checkout of this repository (a"
                " directory holding avsdn_tf/__init__.py), found none there"
            )
    frameworks = [f.strip() for f in FLAGS.frameworks]
    unknown = set(frameworks) - {"keras", "torch"} or set(FLAGS.modes) - {"train", "infer"}
    if unknown:
        raise app.UsageError(f"unknown --frameworks/--modes value(s): {sorted(unknown)}")
    versions = _versions(frameworks)
    print(
        f"machine: {os.cpu_count()} CPUs; load average {' '.join(map(str, loadavg()))}; {versions}"
    )
    print(
        "OPENBLAS_CORETYPE="
        + os.environ.get("OPENBLAS_CORETYPE", "(unset)")
        + ", OPENBLAS_L2_SIZE="
        + os.environ.get("OPENBLAS_L2_SIZE", "(unset)")
        + " (NumPy's BLAS only; TF and PyTorch do not use it)"
    )
    sizes = [text.strip() for text in FLAGS.visual_dim]
    for text in sizes:
        visual_shape(text)  # a bad size fails before anything runs
    for setting in FLAGS.thread_grid:
        if not re.fullmatch(r"\d+:\d+", setting.strip()):
            raise app.UsageError(
                f"--thread_grid: expected INTRA:INTER (e.g. 1:3), found {setting!r}"
            )
    peak = measure_peak()
    results = []
    for visual in sizes:
        for mode in FLAGS.modes:
            print(f"\n== {mode}, visual {visual} ==", flush=True)
            summaries = measure(mode, visual, frameworks)
            results.append(report(mode, visual, summaries, peak))
    print("\nsummary (keras / fastest torch, median of per-round ratios):")
    for result in results:
        for s in result["configurations"]:
            if "ratio_per_round" in s:
                ratios = s["ratio_per_round"]
                print(
                    f"  {result['mode']:<5} visual {result['visual_dim']:>7}:"
                    f" {_spread(ratios)}  {s['gflops']:5.1f} GFLOP/s"
                    f" ({s['fraction_of_peak']:.0%} of peak)  {s['name']}"
                    + (" LOADED" if s["loaded"] else "")
                )
    for result in results:
        for row in result.get("vs_baseline", []):
            ratios = row["ratio_per_round"]
            print(
                f"  {result['mode']:<5} visual {result['visual_dim']:>7}: this checkout /"
                f" baseline {_spread(ratios, 3)}"
                f"  {row['name']}"
            )
    if FLAGS.json:
        Path(FLAGS.json).write_text(
            json.dumps(
                {
                    "flags": {
                        k: FLAGS[k].value
                        for k in (
                            "videos",
                            "visual_dim",
                            "batch_size",
                            "epochs",
                            "steps",
                            "repeats",
                            "frameworks",
                            "modes",
                            "levers",
                            "jit_levers",
                            "jit_steps",
                            "only",
                            "threads",
                            "baseline",
                            "max_reruns",
                            "settle_seconds",
                            "max_load",
                            "max_other_cores",
                        )
                    },
                    "versions": versions,
                    "peak": peak,
                    "results": results,
                },
                indent=1,
            )
        )
        print(f"wrote {FLAGS.json}")


def _versions(frameworks):
    code = (
        "import json, sys; v = {'python': sys.version.split()[0]}\nimport tensorflow, keras;"
        " v.update(tensorflow=tensorflow.__version__, keras=keras.__version__)\n"
    )
    if "torch" in frameworks:
        code += "import torch; v['torch'] = torch.__version__\n"
    code += "print(json.dumps(v))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_worker_env()
    )
    return json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}


if __name__ == "__main__":
    app.run(main)
