"""PSP training and inference speed in Keras (avsdn_tf.models.psp) against the same model in
PyTorch (the test-only reference tests/psp_torch_reference.py, the authors' psp_net).

    python benchmarks/bench_psp.py                                   # both supervisions
    python benchmarks/bench_psp.py --supervision full --videos 64 --repeats 3 --json out.json

What it measures, on in-memory random data of the AVE release's shapes (the same arrays for
both frameworks: --videos videos, T = --segments, audio 128-d, visual maps 7x7x512, segment
labels 0..28), at --batch_size (the authors' 128) with the authors' recipe:
- training videos/s: Keras model.fit of psp.build with psp.losses (cross-entropy + 100 x AVPS,
  or BCE of the video-level probabilities against the class proportions), Adam 1e-3 in
  PyTorch's form as train uses (models/optimizers.PyTorchAdam), shuffled;
  PyTorch: the reference in train mode, Adam 1e-3, the same losses, a random order per epoch;
- inference videos/s over the same videos, batch by batch, eval mode: Keras through one
  tf.function with a fixed input signature, PyTorch under torch.no_grad().

Both frameworks live in this one process (simpler than bench_training.py's worker processes;
each is given --threads intra-op threads). Every configuration is warmed up first (traced, one
untimed epoch or pass). Then, because the machine may be shared, ROUNDS alternate the frameworks
(the order rotates each round), and each round's keras / torch ratio is computed from numbers
taken seconds apart; the medians are reported with the load average of every round.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

FLAGS = flags.FLAGS
flags.DEFINE_enum("supervision", "both", ["full", "weak", "both"], "Which PSP variant(s).")
flags.DEFINE_integer("videos", 256, "Videos per epoch / inference pass.")
flags.DEFINE_integer("segments", 10, "Segments per video (T).")
flags.DEFINE_integer("batch_size", 128, "Videos per batch (the authors' 128).")
flags.DEFINE_integer("repeats", 5, "Rounds: timed measurements of every configuration.")
flags.DEFINE_integer("threads", 2, "Intra-op threads of TensorFlow and torch.set_num_threads.")
flags.DEFINE_bool("unroll", True, "Unroll the Keras LSTMs (fixed T on a CPU).")
flags.DEFINE_string("json", None, "Also write the results to this JSON file.")


def make_data(videos, segments, seed=0):
    """Random features of the release's shapes and ranges, and segment labels."""
    rng = np.random.default_rng(seed)
    audio = rng.uniform(0, 2, (videos, segments, 128)).astype("float32")
    visual = rng.uniform(0, 3, (videos, segments, 7, 7, 512)).astype("float32")
    classes = rng.integers(0, 28, videos)
    labels = np.where(rng.random((videos, segments)) < 0.7, classes[:, None], 28)
    return audio, visual, labels.astype("int64")


class KerasPSP:
    """The Keras model of one supervision: fit epochs and inference passes over the data."""

    def __init__(self, supervision, data):
        import tensorflow as tf

        from avsdn_tf.models import optimizers, psp

        audio, visual, labels = data
        self.inputs = {"audio": audio, "visual": visual}
        options = {"unroll": FLAGS.unroll}
        self.model = psp.build(128, (7, 7, 512), FLAGS.segments, supervision, options)
        losses, weights, _ = psp.losses(supervision)
        self.model.compile(optimizers.PyTorchAdam(1e-3), loss=losses, loss_weights=weights)
        if supervision == "full":
            self.targets = {
                "segment_logits": labels,
                "av_similarity": np.asarray(psp.avps_targets(labels)),
            }
        else:
            self.targets = {"video_probabilities": np.asarray(psp.proportion_targets(labels))}
        spec = {
            "audio": tf.TensorSpec((None, FLAGS.segments, 128), tf.float32),
            "visual": tf.TensorSpec((None, FLAGS.segments, 7, 7, 512), tf.float32),
        }
        self.predict = tf.function(
            lambda x: self.model(x, training=False)["segment_probabilities"],
            input_signature=[spec],
        )
        self.train()
        self.infer()

    def train(self):
        self.model.fit(self.inputs, self.targets, batch_size=FLAGS.batch_size, epochs=1, verbose=0)

    def infer(self):
        for start in range(0, FLAGS.videos, FLAGS.batch_size):
            batch = {k: v[start : start + FLAGS.batch_size] for k, v in self.inputs.items()}
            np.asarray(self.predict(batch))


class TorchPSP:
    """The PyTorch reference of one supervision, trained and run the way the authors do."""

    def __init__(self, supervision, data):
        import torch

        import psp_torch_reference as reference

        self.torch = torch
        self.supervision = supervision
        self.audio, self.visual, labels = (torch.from_numpy(x) for x in data)
        self.labels = labels
        one_hot = torch.nn.functional.one_hot(labels, 29).float()
        self.proportions = one_hot.mean(dim=1)
        counts = None
        if supervision == "full":
            event = one_hot.amax(dim=1).argmax(dim=-1, keepdim=True)  # smallest class present
            counts = (labels == event).float()
            self.avps = counts / counts.sum(dim=-1, keepdim=True)
        torch.manual_seed(0)
        self.net = (reference.PSPFull if supervision == "full" else reference.PSPWeak)()
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        self.reference = reference
        self.train()
        self.infer()

    def _loss(self, index):
        nn = self.torch.nn
        if self.supervision == "full":
            _, logits, similarity = self.net(self.audio[index], self.visual[index])
            ce = nn.CrossEntropyLoss()(logits.permute(0, 2, 1), self.labels[index])
            return ce + 100 * self.reference.avps_loss(similarity, self.avps[index])
        video, _ = self.net(self.audio[index], self.visual[index])
        return nn.BCELoss()(video, self.proportions[index])

    def train(self):
        self.net.train()
        order = self.torch.randperm(FLAGS.videos)
        for start in range(0, FLAGS.videos, FLAGS.batch_size):
            self.optimizer.zero_grad()
            self._loss(order[start : start + FLAGS.batch_size]).backward()
            self.optimizer.step()

    def infer(self):
        self.net.eval()
        with self.torch.no_grad():
            for start in range(0, FLAGS.videos, FLAGS.batch_size):
                end = start + FLAGS.batch_size
                self.net(self.audio[start:end], self.visual[start:end])


def _timed(function):
    start = time.perf_counter()
    function()
    return FLAGS.videos / (time.perf_counter() - start)


def measure(supervision, data):
    """Interleaved rounds of one supervision: videos/s per framework and phase, ratios per round.

    Returns:
        dict phase -> {"keras": [videos/s per round], "torch": [...], "ratio": [...]},
        plus "load" (the 1-minute load average at each round).
    """
    frameworks = {"keras": KerasPSP(supervision, data), "torch": TorchPSP(supervision, data)}
    results = {phase: {"keras": [], "torch": [], "ratio": []} for phase in ("train", "infer")}
    results["load"] = []
    for round_index in range(FLAGS.repeats):
        order = ["keras", "torch"] if round_index % 2 == 0 else ["torch", "keras"]
        for phase in ("train", "infer"):
            for name in order:
                results[phase][name].append(_timed(getattr(frameworks[name], phase)))
            rates = results[phase]
            rates["ratio"].append(rates["keras"][-1] / rates["torch"][-1])
        results["load"].append(os.getloadavg()[0])
        print(
            f"  {supervision} round {round_index + 1}: "
            + "  ".join(
                f"{phase} keras {results[phase]['keras'][-1]:.1f} torch "
                f"{results[phase]['torch'][-1]:.1f} ratio {results[phase]['ratio'][-1]:.2f}"
                for phase in ("train", "infer")
            )
            + f"  load {results['load'][-1]:.2f}",
            flush=True,
        )
    return results


def main(argv):
    del argv
    import tensorflow as tf
    import torch

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    torch.set_num_threads(FLAGS.threads)
    data = make_data(FLAGS.videos, FLAGS.segments)
    supervisions = ["full", "weak"] if FLAGS.supervision == "both" else [FLAGS.supervision]
    print(
        f"PSP, {FLAGS.videos} videos x {FLAGS.segments} segments, batch {FLAGS.batch_size}, "
        f"{FLAGS.threads} threads, unroll {FLAGS.unroll}, torch {torch.__version__}, "
        f"tensorflow {tf.__version__}, {FLAGS.repeats} rounds (videos/s)"
    )
    report = {}
    for supervision in supervisions:
        report[supervision] = measure(supervision, data)
    for supervision, results in report.items():
        for phase in ("train", "infer"):
            rates = results[phase]
            print(
                f"{supervision:4s} {phase:5s}: keras {statistics.median(rates['keras']):7.1f}  "
                f"torch {statistics.median(rates['torch']):7.1f}  keras/torch median "
                f"{statistics.median(rates['ratio']):.2f} (rounds "
                + ", ".join(f"{r:.2f}" for r in rates["ratio"])
                + ")"
            )
    if FLAGS.json:
        Path(FLAGS.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    app.run(main)
