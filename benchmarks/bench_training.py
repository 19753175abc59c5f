"""AVSDN training and inference speed in Keras (this project) against the same model in PyTorch.

    python benchmarks/bench_training.py                       # AVE size, 512-d and 2048-d, every
    lever
    python benchmarks/bench_training.py --visual_dim 512 --repeats 3 --levers=false
    python benchmarks/bench_training.py --videos 640 --frameworks keras --json out.json
    python benchmarks/bench_training.py --nolevers --baseline /tmp/before   # a change, A/B

With --baseline CHECKOUT (another checkout of this repository, e.g. the commit before a change),
every Keras configuration runs twice, once with each checkout's avsdn_tf, in the same interleaved
rounds, and the report adds "this checkout / baseline" per round: the before/after of a change
without two runs on a machine whose load changes between them.

What it measures, on in-memory random data of AVE's shapes (the same arrays for both frameworks:
--videos training videos, T = 10, audio 128-d, visual --visual_dim vectors, labels 0..28), at
batch 64 with the AVSDN defaults of avsdn_tf.hparams (encoder 128, fusion 256):

- training videos/s: Keras through the project's own path (registry.task_for(hp).build,
  trainer.compile_model, model.fit on the arrays, shuffled); PyTorch through
  benchmarks/torch_avsdn.py (Adam 1e-3, cross-entropy, a random order each epoch);
- inference videos/s over the same videos, batch by batch, per-segment probabilities out;
- peak resident memory (ru_maxrss) of each measured configuration.

Every configuration runs in its own worker process (so memory peaks never mix and the two
frameworks' thread pools never share a process). Workers start one at a time and are warmed up
(traced, compiled, one untimed epoch or pass) before any timing. Then, because the machine may be
shared, the parent runs ROUNDS: each round asks every live worker in turn (in a rotating order)
for one timed epoch or pass, so every configuration sees the same background load; each round's
keras/torch ratio is computed from numbers taken seconds apart, and the medians are reported, with
the load average at every round.

The levers (--levers): LSTM unrolling (hp.unroll), steps_per_execution, jit_compile (XLA), the
inference path (backbones.inference_function: a tf.function with a fixed input_signature, which
evaluate, predict and train's validation pass use; model.predict; predict_on_batch; a tf.function
with reduce_retracing; the first under XLA), and thread counts (TF intra/inter-op
and torch.set_num_threads, 1 or 2). With or without --levers, Keras is also measured with 1
intra-op and --threads inter-op threads (the commands' --intra_op_threads/--inter_op_threads,
avsdn_tf/training/threads.py). Every Keras row's ratio is taken against the FASTEST PyTorch thread
setting of each round, so a thread count that happens to suit PyTorch badly under the current
load does not flatter Keras.
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

PROTOCOL = "@@bench "  # prefix of the lines a worker sends its parent (everything else is log)
AUDIO_DIM = 128
NUM_SEGMENTS = 10
NUM_CLASSES = 29

if __name__ == "__main__":
    flags.DEFINE_integer("videos", 3339, "Training videos (AVE: 3339).")
    flags.DEFINE_list(
        "visual_dim",
        ["512", "2048"],
        "Visual vector sizes to measure (AVE pooled: 512; the paper's ResNet-152: 2048).",
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
    """The project's --intra_op_threads/--inter_op_threads knob; both default to --threads."""
    _project().configure_threads(
        spec.get("intra_op_threads", spec["threads"]), spec.get("inter_op_threads", spec["threads"])
    )


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
        for start, end in _batches(count, self.batch_size):
            batch = {"audio": self.audio[start:end], "visual": self.visual[start:end]}
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
    data = make_data(spec["videos"], spec.get("visual_shape") or [spec["visual_dim"]])
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
            "rss_data_mb": rss_data,
            "rss_ready_mb": _rss_mb(),
        }
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            _send({"event": "round", **worker.run_round()})
        elif command == "quit":
            break
    _send({"event": "done", "maxrss_mb": _maxrss_mb()})


# ---------------------------------------------------------------------------------------------
# The parent: start workers one by one, then interleaved rounds.


def loadavg():
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


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
        speeds = [r["videos_per_second"] for r in self.rounds]
        return {
            "name": self.name,
            "spec": self.spec,
            "videos_per_second": speeds,
            "median": statistics.median(speeds),
            "min": min(speeds),
            "max": max(speeds),
            "setup_seconds": self.ready["setup_seconds"],
            "rss_ready_mb": self.ready["rss_ready_mb"],
            "maxrss_mb": self.done["maxrss_mb"],
            "loadavg": [r["loadavg"] for r in self.rounds],
            "fit_overhead_seconds": statistics.median(
                r["wall_seconds"] - r["seconds"] for r in self.rounds
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
    # --intra_op_threads 1 --inter_op_threads N: each core runs whole small ops side by side
    split = {"intra_op_threads": 1, "inter_op_threads": threads}
    split_name = f"--intra_op_threads 1 --inter_op_threads {threads}"
    found = []
    if "keras" in frameworks:
        if mode == "train":
            found += [("keras defaults", {}), (f"keras defaults, {split_name}", split)]
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
                    (f"keras defaults, {other} thread(s)", {"threads": other}),
                    (
                        "keras defaults, TF_ENABLE_ONEDNN_OPTS=0",
                        {"env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
                    ),
                ]
        else:
            found += [
                ("keras backbones.inference_function", {"path": "project"}),
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
                        {"path": "project", "threads": other},
                    ),
                    (
                        "keras backbones.inference_function, TF_ENABLE_ONEDNN_OPTS=0",
                        {"path": "project", "env": {"TF_ENABLE_ONEDNN_OPTS": "0"}},
                    ),
                ]
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


def measure(mode, visual_dim, frameworks):
    base = {
        "mode": mode,
        "visual_dim": visual_dim,
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
        for repeat in range(FLAGS.repeats):
            shift = repeat % len(workers)
            for worker in workers[shift:] + workers[:shift]:
                worker.run()
            load = loadavg()
            speeds = "  ".join(f"{w.rounds[-1]['videos_per_second']:.0f}" for w in workers)
            print(
                f"  round {repeat + 1}/{FLAGS.repeats}: load {load[0]:.2f} {load[1]:.2f}"
                f" {load[2]:.2f}; videos/s {speeds}",
                flush=True,
            )
    finally:
        for worker in workers:
            try:
                worker.finish()
            except (BrokenPipeError, SystemExit, ValueError):
                worker.process.kill()
    return [worker.summary() for worker in workers]


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


def report(mode, visual_dim, summaries):
    title = "training" if mode == "train" else "inference"
    print(
        f"\n{title}, visual {visual_dim}-d, {FLAGS.videos} videos, batch {FLAGS.batch_size} "
        f"(videos/s: median [min-max] of {FLAGS.repeats} interleaved rounds)"
    )
    torch_runs = [s for s in summaries if s["spec"]["framework"] == "torch"]
    best_torch = max(torch_runs, key=lambda s: s["median"]) if torch_runs else None
    header = (
        f"  {'configuration':<88} {'videos/s':>9} {'min-max':>13} {'vs torch':>8} {'per round':>9} "
        f"{'setup s':>8} {'peak MB':>8}"
    )
    print(header)
    for s in summaries:
        ratio = per_round = ""
        if best_torch and s["spec"]["framework"] == "keras":
            ratio = f"{s['median'] / best_torch['median']:.2f}"
            s["ratio_per_round"] = _ratio_rounds(s, torch_runs)
            per_round = f"{statistics.median(s['ratio_per_round']):.2f}"
        print(
            f"  {s['name']:<88} {s['median']:>9.0f} {s['min']:>6.0f}-{s['max']:<6.0f} {ratio:>8}"
            f" {per_round:>9} {s['setup_seconds']:>8.1f} {s['maxrss_mb']:>8.0f}"
        )
    print(
        "  (vs torch: median / the fastest torch median; per round: median over rounds of keras /"
        " the fastest torch of that round)"
    )
    result = {"mode": mode, "visual_dim": visual_dim, "configurations": summaries}
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
    loads = [load[0] for s in summaries for load in s["loadavg"]]
    print(f"  load average (1 min) during the rounds: {min(loads):.2f}-{max(loads):.2f}")
    return result


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
    results = []
    for visual_dim in [int(d) for d in FLAGS.visual_dim]:
        for mode in FLAGS.modes:
            print(f"\n== {mode}, visual {visual_dim}-d ==", flush=True)
            summaries = measure(mode, visual_dim, frameworks)
            results.append(report(mode, visual_dim, summaries))
    print("\nsummary (keras / fastest torch, median of per-round ratios):")
    for result in results:
        for s in result["configurations"]:
            if "ratio_per_round" in s:
                ratios = s["ratio_per_round"]
                print(
                    f"  {result['mode']:<5} visual {result['visual_dim']:>4}-d:"
                    f" {_spread(ratios)} "
                    f" {s['name']}"
                )
    for result in results:
        for row in result.get("vs_baseline", []):
            ratios = row["ratio_per_round"]
            print(
                f"  {result['mode']:<5} visual {result['visual_dim']:>4}-d: this checkout /"
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
                        )
                    },
                    "versions": versions,
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
