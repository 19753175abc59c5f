"""The spatial average of a batch of visual maps, formulation by formulation, on this CPU.

    python benchmarks/bench_spatial_average.py --intra_op_threads 1 --inter_op_threads 2

Times a [batch, 10, 7, 7, 512] float32 batch averaged over its 49 regions (what
layers.SpatialAveragePooling does for maps) as a mean over the two axes, a sum times 1/49, and
one 7x7 pooling window over [batch * 10, 7, 7, 512] (what the layer runs), each a tf.function
called --calls times per measurement, median of --repeats measurements, after checking that
every formulation gives the mean's values.
"""

import statistics
import time

import numpy as np
from absl import app, flags

flags.DEFINE_integer("intra_op_threads", 1, "TensorFlow's intra-op threads (1: the rule's).")
flags.DEFINE_integer("inter_op_threads", 2, "TensorFlow's inter-op threads (2: the rule's).")
flags.DEFINE_integer("batch", 64, "Videos per batch.")
flags.DEFINE_integer("calls", 20, "Calls per measurement.")
flags.DEFINE_integer("repeats", 7, "Measurements; the median is printed.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.intra_op_threads)
    tf.config.threading.set_inter_op_parallelism_threads(FLAGS.inter_op_threads)
    rng = np.random.default_rng(0)
    maps = tf.constant(rng.normal(size=(FLAGS.batch, 10, 7, 7, 512)).astype("float32"))
    ways = {
        "mean over axes (2, 3)": lambda v: tf.reduce_mean(v, axis=[2, 3]),
        "sum over 49 regions / 49": lambda v: (
            tf.reduce_sum(tf.reshape(v, [-1, 10, 49, 512]), 2) / 49.0
        ),
        "one 7x7 pooling window": lambda v: tf.reshape(
            tf.nn.avg_pool2d(tf.reshape(v, [-1, 7, 7, 512]), 7, 1, "VALID"), [-1, 10, 512]
        ),
    }
    expected = maps.numpy().mean(axis=(2, 3))
    print(
        f"[{FLAGS.batch}, 10, 7, 7, 512] maps, {FLAGS.intra_op_threads} intra-op + "
        f"{FLAGS.inter_op_threads} inter-op threads, "
        f"median of {FLAGS.repeats} x {FLAGS.calls} calls"
    )
    for name, way in ways.items():
        function = tf.function(way)
        np.testing.assert_allclose(function(maps).numpy(), expected, rtol=1e-5, atol=1e-6)
        times = []
        for _ in range(FLAGS.repeats):
            start = time.perf_counter()
            for _ in range(FLAGS.calls):
                out = function(maps)
            out.numpy()
            times.append((time.perf_counter() - start) / FLAGS.calls * 1e3)
        print(f"  {name:28s} {statistics.median(times):6.2f} ms (min {min(times):.2f})")


if __name__ == "__main__":
    app.run(main)
