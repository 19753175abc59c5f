"""The cost of an optimizer step: Keras' Adam against PyTorchAdam, on PSP's and CMBS's weights.

    python benchmarks/bench_optimizer.py
    python benchmarks/bench_optimizer.py --models cmbs --steps 100 --rounds 7

For each model (its full-supervision Keras model, the authors' sizes), one compiled function
per optimizer applies a fixed set of random gradients to every trainable variable, with the
recipe's global-norm clipping, as a training step's update does (forward and backward passes
excluded: only the update differs between the two optimizers). Rounds alternate the optimizers,
order rotating; each round times --steps updates per optimizer, and the ratio
PyTorchAdam / Adam (time per step) is taken per round. Prints the per-round times and the
median ratio; above 1.0, PyTorchAdam's update is slower.
"""

import statistics
import sys
import time
from pathlib import Path

from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from avsdn_tf import command_logging  # noqa: E402,F401  (TensorFlow start-up notes off)

if __name__ == "__main__":
    flags.DEFINE_list("models", ["psp", "cmbs"], "Models whose weights are updated.")
    flags.DEFINE_integer("steps", 50, "Updates timed per optimizer per round.")
    flags.DEFINE_integer("rounds", 5, "Interleaved rounds.")
FLAGS = flags.FLAGS

CLIP_NORM = 0.5  # CMBS's recipe; PSP trains unclipped, which costs less for both


def _updater(optimizer, variables, gradients):
    """A compiled function applying `gradients` to `variables` once per call."""
    import tensorflow as tf

    optimizer.build(variables)

    @tf.function
    def update():
        optimizer.apply(gradients, variables)

    update()  # trace and warm up
    return update


def _time(update, steps):
    start = time.perf_counter()
    for _ in range(steps):
        update()
    return (time.perf_counter() - start) / steps


def _bench(model_name):
    import keras
    import tensorflow as tf

    from avsdn_tf.models import cmbs, optimizers, psp

    build = {"psp": psp.build, "cmbs": cmbs.build}[model_name]
    model = build(128, (7, 7, 512), 10, "full")
    variables = model.trainable_variables
    gradients = [tf.random.normal(v.shape, stddev=1e-3, seed=i) for i, v in enumerate(variables)]
    count = sum(int(v.numpy().size) for v in variables)
    updaters = {
        "Adam": _updater(
            keras.optimizers.Adam(1e-3, global_clipnorm=CLIP_NORM), variables, gradients
        ),
        "PyTorchAdam": _updater(
            optimizers.PyTorchAdam(1e-3, global_clipnorm=CLIP_NORM), variables, gradients
        ),
    }
    print(f"{model_name}: {len(variables)} variables, {count} weights")
    names, ratios = list(updaters), []
    for r in range(FLAGS.rounds):
        order = names[r % 2 :] + names[: r % 2]
        seconds = {name: _time(updaters[name], FLAGS.steps) for name in order}
        ratios.append(seconds["PyTorchAdam"] / seconds["Adam"])
        print(
            f"  round {r + 1}: Adam {seconds['Adam'] * 1e3:.2f} ms, PyTorchAdam "
            f"{seconds['PyTorchAdam'] * 1e3:.2f} ms per update, ratio {ratios[-1]:.3f}"
        )
    print(f"{model_name}: median ratio PyTorchAdam / Adam {statistics.median(ratios):.3f}")


def main(argv):
    del argv
    unknown = sorted(set(FLAGS.models) - {"psp", "cmbs"})
    if unknown:
        sys.exit(f"--models: expected names from ['cmbs', 'psp'], found {unknown}")
    if FLAGS.steps < 1 or FLAGS.rounds < 1:
        sys.exit(f"--steps, --rounds: expected >= 1, found {FLAGS.steps}, {FLAGS.rounds}")
    for name in FLAGS.models:
        _bench(name)


if __name__ == "__main__":
    app.run(main)
