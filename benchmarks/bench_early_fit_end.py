"""What a Keras fit left in the middle of an epoch leaves behind: the garbage collection that
frees its tf.data iterator, at once and after an idle wait.

    python benchmarks/bench_early_fit_end.py --idle_seconds 0,30 --repeats 2

A small model is fit on an autotuned tf.data pipeline (map with AUTOTUNE parallelism, prefetch)
with a callback that raises at a batch's end, as the NaN stop does. Automatic collection is
off, so the iterator left in fit's reference cycle (its epoch iterator and the suspended
generator over it) stays until the timed gc.collect(), --idle_seconds after fit. Each case runs
in a fresh process. Freed late, the iterator's teardown waits on tf.data's autotuning thread
on a busy machine (another training beside it: 10.9 s after 30 s idle), not on a quiet one
(0.2 s), so run it both ways (trainer._freeing_an_early_end collects at once).
"""

import math
import os
import subprocess
import sys

from absl import app, flags

flags.DEFINE_list("idle_seconds", ["0", "30"], "Seconds between fit's end and the collection.")
flags.DEFINE_integer("repeats", 2, "Fresh processes per idle time.")
FLAGS = flags.FLAGS

_CASE = """
import gc, sys, time
import numpy as np, tensorflow as tf, keras

idle = float(sys.argv[1])
rng = np.random.default_rng(0)
x, y = rng.random((4096, 16), np.float32), rng.integers(0, 3, 4096)
data = (
    tf.data.Dataset.from_tensor_slices((x, y)).shuffle(4096).batch(32)
    .map(lambda a, b: (a * 2, b), num_parallel_calls=tf.data.AUTOTUNE)
    .prefetch(tf.data.AUTOTUNE).repeat()
)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(8), keras.layers.Dense(3)])
model.compile("adam", "sparse_categorical_crossentropy")

class EndEarly(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch == 50:
            raise RuntimeError("ended early")

gc.disable()
try:
    model.fit(data, epochs=3, steps_per_epoch=100, callbacks=[EndEarly()], verbose=0)
except RuntimeError:
    pass
time.sleep(idle)
started = time.perf_counter()
objects = gc.collect()
print(f"{time.perf_counter() - started:.3f} {objects}")
"""


def _idle_times(values):
    """--idle_seconds as floats >= 0, or one usage error naming the flag."""
    try:
        idle = [float(value) for value in values]
    except ValueError:
        idle = None
    if not idle or not all(math.isfinite(x) and x >= 0 for x in idle):
        raise app.UsageError(f"--idle_seconds: expected numbers >= 0, found {','.join(values)}")
    return idle


def main(argv):
    del argv
    idle_times = _idle_times(FLAGS.idle_seconds)
    print("idle after fit   gc.collect()   objects")
    for idle in idle_times:
        for _ in range(FLAGS.repeats):
            done = subprocess.run(
                [sys.executable, "-c", _CASE, str(idle)],
                capture_output=True,
                text=True,
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
            )
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no message"])[-1]
                sys.exit(f"error: the fit process ended with status {done.returncode}: {last}")
            seconds, objects = done.stdout.split()
            print(f"{idle:>12.0f} s {float(seconds):>12.3f} s {objects:>9}")


if __name__ == "__main__":
    app.run(main)
