"""CMBS training and inference speed in Keras (avsdn_tf.models.cmbs) against PyTorch.

    python benchmarks/bench_cmbs.py                                    # AVE batch, 3339 videos
    python benchmarks/bench_cmbs.py --videos 64 --batch_size 16 --rounds 3 --supervision weak

The PyTorch side is the test-only reference tests/cmbs_torch_reference.py (the authors'
architecture and parameter names, float32; the authors run it in double). Both frameworks get
the same in-memory random data of AVE's shapes (--videos videos, T = 10, audio [128], visual
maps [7, 7, 512], segment labels with one event class per video) and the same batch size:

- training videos/s: one epoch of the authors' recipe (Adam 7e-4 / 6e-4, in PyTorch's form on
  both sides as train uses it: models/optimizers.PyTorchAdam; gradient-norm clipping 0.5; the
  authors' losses), Keras through model.compile + model.fit on the arrays, PyTorch through a
  loop over shuffled batches (zero_grad, forward, loss, backward, clip, step);
- inference videos/s: per-segment labels and probabilities for every video, batch by batch,
  eval mode; Keras through one tf.function with a fixed input signature (any B and T).

Each (framework, mode) runs in its own worker process, warmed up (traced, one untimed epoch or
pass) before any timing. The machine may be shared, so the parent runs ROUNDS: each round asks
every worker in turn (rotating order) for one timed epoch or pass, and each round's
keras / torch ratio comes from numbers taken seconds apart; medians are reported. PyTorch runs
with its default threads and with one thread; the ratio is against the faster of the two.
"""

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

if __name__ == "__main__":
    flags.DEFINE_integer("videos", 3339, "Training videos (AVE: 3339).")
    flags.DEFINE_integer("batch_size", 64, "Batch size (the authors': 64).")
    flags.DEFINE_enum("supervision", "full", ["full", "weak"], "Which CMBS.")
    flags.DEFINE_list("modes", ["train", "infer"], "What to measure: train, infer or both.")
    flags.DEFINE_integer("rounds", 5, "Timed rounds (one epoch or pass per worker each).")
    flags.DEFINE_integer("threads", 0, "torch / TF intra-op threads; 0 = the library default.")
    flags.DEFINE_string("json", None, "Also write every measurement to this JSON file.")
    flags.DEFINE_string("worker", None, "Internal: run as a worker with this JSON spec.")

STEPS = 10


def make_data(videos, seed=0):
    """Random AVE-shaped arrays: audio, visual, segment labels [N, T], video labels [N]."""
    rng = np.random.default_rng(seed)
    audio = rng.random((videos, STEPS, 128), dtype=np.float32)
    visual = rng.random((videos, STEPS, 7, 7, 512), dtype=np.float32)
    classes = rng.integers(0, 28, videos)
    is_event = rng.random((videos, STEPS)) < 0.6
    labels = np.where(is_event, classes[:, None], 28).astype(np.int32)
    return audio, visual, labels, classes.astype(np.int32)


def _keras_runner(spec, data):
    import tensorflow as tf

    from avsdn_tf.models import cmbs, optimizers
    from avsdn_tf.models.cmbs import decoding, losses, recipe

    supervision, batch = spec["supervision"], spec["batch_size"]
    audio, visual, labels, video_labels = data
    model = cmbs.build(128, (7, 7, 512), None, supervision)
    if spec["mode"] == "train":
        full = supervision == recipe.FULL
        rate = recipe.FULL_LEARNING_RATE if full else recipe.WEAK_LEARNING_RATE
        clip = recipe.FULL_CLIP_NORM if full else recipe.WEAK_CLIP_NORM
        optimizer = optimizers.PyTorchAdam(rate, global_clipnorm=clip)  # the trainer's for CMBS
        model.compile(optimizer, losses.losses(supervision))
        targets = {
            k: np.asarray(v) for k, v in losses.targets(supervision, labels, video_labels).items()
        }
        inputs = {"audio": audio, "visual": visual}
        return lambda: model.fit(inputs, targets, batch_size=batch, epochs=1, verbose=0)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 128], tf.float32),
            tf.TensorSpec([None, None, 7, 7, 512], tf.float32),
        ]
    )
    def serve(audio_batch, visual_batch):
        outputs = model({"audio": audio_batch, "visual": visual_batch}, training=False)
        return decoding.labels(outputs, supervision), decoding.probabilities(outputs, supervision)

    def infer():
        for start in range(0, len(audio), batch):
            serve(audio[start : start + batch], visual[start : start + batch])[0].numpy()

    return infer


def _torch_loss(torch, supervision, outputs, labels, video_labels):
    """The authors' losses (supv_main.py / weakly_main.py) on one batch."""
    functional = torch.nn.functional
    if supervision == "weak":
        one_hot = functional.one_hot(video_labels.long(), 29).float()
        return torch.nn.MultiLabelSoftMarginLoss()(outputs[2], one_hot)
    is_event, event, gate, av_score = outputs
    foreground = ((labels >= 0) & (labels < 28)).float()
    event_class = torch.where(foreground > 0, labels, torch.zeros_like(labels)).max(1)[0].long()
    bce = torch.nn.BCEWithLogitsLoss()
    return (
        bce(is_event[:, :, 0].T, foreground)
        + bce(gate[:, :, 0].T, foreground)
        + functional.cross_entropy(event, event_class)
        + functional.cross_entropy(av_score, event_class)
    )


def _torch_runner(spec, data):
    import torch

    from avsdn_tf.models.cmbs import recipe

    import cmbs_torch_reference as reference

    supervision, batch = spec["supervision"], spec["batch_size"]
    tensors = [torch.from_numpy(array) for array in data]
    audio, visual, labels, video_labels = tensors
    torch.manual_seed(0)
    full = supervision == "full"
    model = reference.supv_main_model() if full else reference.weak_main_model()
    if spec["mode"] == "train":
        rate = recipe.FULL_LEARNING_RATE if full else recipe.WEAK_LEARNING_RATE
        optimizer = torch.optim.Adam(model.parameters(), lr=rate)
        clip = recipe.FULL_CLIP_NORM if full else recipe.WEAK_CLIP_NORM

        def train():
            model.train()
            for index in torch.randperm(len(audio)).split(batch):
                optimizer.zero_grad()
                outputs = model(visual[index], audio[index])
                _torch_loss(
                    torch, supervision, outputs, labels[index], video_labels[index]
                ).backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
                optimizer.step()

        return train

    def infer():
        model.eval()
        with torch.no_grad():
            for start in range(0, len(audio), batch):
                outputs = model(visual[start : start + batch], audio[start : start + batch])
                if full:  # the authors' decoding and the displayed probabilities
                    event = torch.sigmoid(outputs[0][:, :, 0].T)
                    classes = outputs[1].argmax(-1)[:, None].expand_as(event)
                    torch.where(event > 0.5, classes, torch.full_like(classes, 28))
                    torch.softmax(outputs[1], -1)[:, None, :] * event[:, :, None]
                else:
                    torch.where(torch.sigmoid(outputs[0]) > 0.5, outputs[1].argmax(-1)[:, None], 28)
                    torch.softmax(outputs[1], -1)

    return infer


def run_worker(spec):
    """Build, warm up, then answer each "go" line on stdin with one timed run's seconds."""
    if spec["threads"]:
        os.environ["OMP_NUM_THREADS"] = str(spec["threads"])
    data = make_data(spec["videos"])
    if spec["framework"] == "torch":
        import torch

        if spec["threads"]:
            torch.set_num_threads(spec["threads"])
        run = _torch_runner(spec, data)
    else:
        if spec["threads"]:
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(spec["threads"])
        run = _keras_runner(spec, data)
    run()  # warm-up: tracing, first allocation
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        start = time.perf_counter()
        run()
        print(json.dumps({"seconds": time.perf_counter() - start}), flush=True)


def _start(spec):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, __file__, f"--worker={json.dumps(spec)}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    json.loads(process.stdout.readline())  # ready
    return process


def _ask(process):
    process.stdin.write("go\n")
    process.stdin.flush()
    return json.loads(process.stdout.readline())["seconds"]


def measure(mode, options):
    """Videos/s per round of each worker, and the keras / fastest-torch ratio per round.

    PyTorch runs twice, with its default thread count and with one thread (on a loaded
    machine its default can be several times slower); each round's ratio is taken against
    the faster of the two, so a thread setting that suits PyTorch badly does not flatter Keras.
    """
    workers = {}
    for name, framework, threads in (
        ("keras", "keras", options["threads"]),
        ("torch", "torch", options["threads"]),
        ("torch_1_thread", "torch", 1),
    ):
        spec = dict(options, framework=framework, mode=mode, threads=threads)
        workers[name] = _start(spec)  # one at a time: warm-ups never overlap
    rates = {name: [] for name in workers}
    order = list(workers)
    for round_index in range(options["rounds"]):
        shift = round_index % len(order)
        for name in order[shift:] + order[:shift]:
            rates[name].append(options["videos"] / _ask(workers[name]))
        fastest = max(rates["torch"][-1], rates["torch_1_thread"][-1])
        print(
            f"  {mode} round {round_index + 1}: "
            + ", ".join(f"{name} {values[-1]:.1f}" for name, values in rates.items())
            + f" videos/s, ratio {rates['keras'][-1] / fastest:.2f}, "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    for process in workers.values():
        process.stdin.close()
        process.wait()
    torch_best = [max(a, b) for a, b in zip(rates["torch"], rates["torch_1_thread"])]
    ratios = [k / t for k, t in zip(rates["keras"], torch_best)]
    return {"videos_per_s": rates, "ratios": ratios}


def main(argv):
    del argv
    options = {
        "videos": flags.FLAGS.videos,
        "batch_size": flags.FLAGS.batch_size,
        "supervision": flags.FLAGS.supervision,
        "rounds": flags.FLAGS.rounds,
        "threads": flags.FLAGS.threads,
    }
    if flags.FLAGS.worker:
        run_worker(json.loads(flags.FLAGS.worker))
        return
    print(f"CMBS {options['supervision']}: {options}, {os.cpu_count()} CPUs")
    results = {"options": options}
    for mode in flags.FLAGS.modes:
        result = measure(mode, options)
        results[mode] = result
        medians = {k: statistics.median(v) for k, v in result["videos_per_s"].items()}
        print(
            f"{mode}: "
            + ", ".join(f"{name} {value:.1f}" for name, value in medians.items())
            + f" videos/s (medians), median keras / fastest-torch ratio per round "
            f"{statistics.median(result['ratios']):.2f}"
        )
    if flags.FLAGS.json:
        Path(flags.FLAGS.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    app.run(main)
