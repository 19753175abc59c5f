"""What the speed benchmarks share: the machine's load around each timed round, the machine's
measured float32 matmul peak, and the FLOPs of the models they time.

A timing is only comparable with another when nothing else ran on the machine meanwhile: on a
2-core machine one other process changes a framework's speed by 2-10x (PyTorch's multi-threaded
runs collapse far more than TensorFlow's). So every round records

- the 1-minute load average before it and right after it (/proc/loadavg), and
- the CPU other processes used during it, in cores: the machine's busy time over the round
  (/proc/stat) minus the CPU time of the benchmark's own processes (/proc/PID/stat), divided by
  the round's wall time. This one is exact where the load average lags by a minute.

A round is comparable when other processes used at most --max_other_cores during it (and, when
--max_load is given, the load average before it was at most that). The load average alone cannot
decide: it counts the benchmark's own workers too, and on a 2-core machine a run of seven
configurations pushes it from 0.8 to 2.0 with nothing else running (measured: other processes
0.00-0.02 cores in those rounds). The benchmarks repeat rounds that were not comparable (bounded)
and report which rounds they kept.
"""

import os
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # ticks/s of /proc/stat and /proc/PID/stat

# A round is comparable when other processes used at most MAX_OTHER_CORES cores during it; a
# limit on the 1-min load average before it (runnable processes, the benchmark's own included) is
# optional (0: none).
MAX_OTHER_CORES = 0.25  # cores
MAX_LOAD = 0.0  # processes; 0: no limit


def loadavg():
    """The 1-, 5- and 15-minute load averages."""
    with open("/proc/loadavg") as handle:
        return [float(x) for x in handle.read().split()[:3]]


def usable_cores():
    """Cores this process may run on (its CPU affinity, which a container's cpuset limits)."""
    return len(os.sched_getaffinity(0))


def _busy_seconds():
    """Seconds all cores spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as handle:
        fields = [int(x) for x in handle.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


def process_cpu_seconds(pid):
    """User + system CPU seconds of process `pid` and its waited-for children; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


class RoundLoad:
    """The load around one timed round.

    Usage: probe = RoundLoad(pids); ...the round...; record = probe.finish().

    Args:
        pids: the benchmark's own processes (the parent is added), whose CPU is not "other".
        max_load, max_other_cores: the comparability limits (module constants by default).
    """

    def __init__(self, pids, max_load=MAX_LOAD, max_other_cores=MAX_OTHER_CORES):
        self.pids = [os.getpid(), *pids]
        self.max_load, self.max_other_cores = max_load, max_other_cores
        self.load_before = loadavg()[0]
        self.ours = sum(process_cpu_seconds(pid) for pid in self.pids)
        self.busy = _busy_seconds()
        self.began = time.perf_counter()

    def finish(self):
        """Returns {load_before, load_after, other_cores, comparable} for the round."""
        wall = max(time.perf_counter() - self.began, 1e-9)
        busy = _busy_seconds() - self.busy
        ours = sum(process_cpu_seconds(pid) for pid in self.pids) - self.ours
        other = max(busy - ours, 0.0) / wall
        load_after = loadavg()[0]
        return {
            "load_before": self.load_before,
            "load_after": load_after,
            "other_cores": other,
            "comparable": other <= self.max_other_cores
            and (not self.max_load or self.load_before <= self.max_load),
        }


def describe_load(record):
    """'load 0.42 -> 0.61, others 0.03 cores' (+ ' NOT COMPARABLE') for one round's record."""
    text = (
        f"load {record['load_before']:.2f} -> {record['load_after']:.2f}, others"
        f" {record['other_cores']:.2f} cores"
    )
    return text if record["comparable"] else text + " NOT COMPARABLE"


# ---------------------------------------------------------------------------------------------
# The machine's peak: the best float32 matmul rate TensorFlow and PyTorch reach here.

PEAK_MATMUL_SIZE = 1024  # n of the n x n x n float32 matmul timed for the peak
PEAK_MATMUL_REPEATS = 20  # matmuls per timing
PEAK_TIMINGS = 5  # timings per framework; the best counts


def peak_gflops_tensorflow(threads=0, size=PEAK_MATMUL_SIZE):
    """Best GFLOP/s of TensorFlow's float32 [n, n] x [n, n] matmul (2 n^3 FLOPs each).

    Args:
        threads: intra-op threads (0: TensorFlow's default, every core). Call before TensorFlow
            has run any op (it fixes its pools at the first).
    """
    import tensorflow as tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
    # A chain x <- x b: each matmul needs the one before, so graph optimisation can neither fold
    # them (the inputs are arguments, not constants) nor merge them (no two are alike). b's
    # entries have variance 1/n, which keeps x's scale.
    x = tf.random.normal([size, size])
    b = tf.random.normal([size, size], stddev=size**-0.5)

    @tf.function
    def repeat(x, b):
        for _ in range(PEAK_MATMUL_REPEATS):
            x = tf.linalg.matmul(x, b)
        return x

    repeat(x, b).numpy()  # trace and warm up
    return _best_rate(lambda: repeat(x, b).numpy(), size)


def peak_gflops_torch(threads, size=PEAK_MATMUL_SIZE):
    """Best GFLOP/s of PyTorch's float32 [n, n] x [n, n] matmul on `threads` threads."""
    import torch

    torch.set_num_threads(threads)
    x, b = torch.randn(size, size), torch.randn(size, size) * size**-0.5

    def repeat():
        y = x
        for _ in range(PEAK_MATMUL_REPEATS):
            y = torch.mm(y, b)

    repeat()
    return _best_rate(repeat, size)


def _best_rate(run, size):
    best = float("inf")
    for _ in range(PEAK_TIMINGS):
        began = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 * PEAK_MATMUL_REPEATS / best / 1e9


# ---------------------------------------------------------------------------------------------
# FLOPs of the timed models (multiply-adds count 2; the matmuls and map pooling, which are
# nearly all of the work; element-wise activations are left out).


def lstm_flops(steps, input_dim, units):
    """Forward FLOPs of an LSTM over `steps`: per step [x, h] x [in + U, 4U]."""
    return steps * 2 * (input_dim + units) * 4 * units


def avsdn_forward_flops(audio_dim, visual_shape, num_segments=10, units=128, fusion_units=256):
    """Forward FLOPs per video of AVSDN (avsdn_tf.models.avsdn with the default pooling of maps).

    Args:
        audio_dim: A (128). visual_shape: [D] vectors or [H, W, C] maps (pooled to C).
        num_segments: T. units: encoder/decoder LSTM units. fusion_units: DMRN hidden width.
    Returns:
        FLOPs of one video's forward pass.
    """
    visual_dim = visual_shape[-1]
    pooling = (
        num_segments * int(_product(visual_shape[:-1])) * visual_dim if len(visual_shape) > 1 else 0
    )
    encoders = lstm_flops(num_segments, audio_dim, units) + lstm_flops(
        num_segments, visual_dim, units
    )
    # Two DMRN blocks (hidden, cell), each two MLPs U -> F -> U.
    fusion = 2 * 2 * (2 * units * fusion_units * 2)
    decoder = lstm_flops(num_segments, audio_dim + visual_dim, units)
    classifier = num_segments * 2 * units * 29
    return pooling + encoders + fusion + decoder + classifier


def training_flops(forward_flops):
    """FLOPs of one training step per video: the forward pass and a backward pass of twice its
    matmul work (the gradients of each matmul's two operands)."""
    return 3 * forward_flops


def _product(values):
    result = 1
    for value in values:
        result *= value
    return result
