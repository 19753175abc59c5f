"""How many CPU threads TensorFlow runs ops with: the commands' --intra_op_threads and
--inter_op_threads (defined in avsdn_tf/cli.py), and the rule that picks them when not given.

TensorFlow keeps two thread pools, by default one thread per core each: intra-op threads split
one op (a matmul) across cores, inter-op threads run independent ops side by side. The models
here are chains of small per-segment ops (an LSTM step over a batch of 64 is a [64, 640] x
[640, 512] matmul, ~40 MFLOP, well under a millisecond on one core): splitting such an op across
cores costs more in hand-offs than it gains, while the audio and visual chains are independent and
can run side by side.

The rule (default_threads), measured on the 2-core reference machine with
benchmarks/bench_training.py on a quiet machine (docs/benchmarks.md, 2026-12-05): with up to
SPLIT_MAX_CORES cores, 1 intra-op thread and one inter-op thread per core, so each core runs
whole ops. For 512-d and 2048-d vectors that made training and inference 11-34% faster than
TensorFlow's 2 + 2 in three runs (2 + 1 and 1 + 3 were slower); with 7x7x512 maps the settings
were within noise of each other. With more cores TensorFlow's own defaults are kept: there an
op's share of the cores grows with the core count while the graph still has only two or three
independent chains to run side by side, so one whole op per thread would leave most cores idle;
that regime was not measured here, so the rule does not guess. Flags given
explicitly always win.
"""

import os

from avsdn_tf.errors import argument_error

# Machines with at most this many cores run 1 intra-op and `cores` inter-op threads by default.
SPLIT_MAX_CORES = 2  # cores


def usable_cores():
    """Cores this process may run on (its CPU affinity: a container's cpuset limits it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(cores=None):
    """The (intra_op, inter_op) threads the commands use when the flags are not given.

    Args:
        cores: the machine's usable cores (default: usable_cores()).
    Returns:
        (intra_op_threads, inter_op_threads); 0 keeps TensorFlow's own default (one per core).
    """
    cores = cores or usable_cores()
    if cores <= SPLIT_MAX_CORES:
        return 1, cores
    return 0, 0


def configure(intra_op_threads=0, inter_op_threads=0, cores=None):
    """Set TensorFlow's thread pools; 0 takes default_threads()'s choice for that pool. Must run
    before TensorFlow runs any op.

    Args:
        intra_op_threads: threads one op is split across; 0: the rule's.
        inter_op_threads: ops run side by side; 0: the rule's.
        cores: the machine's usable cores, for the rule (default: usable_cores()).
    Returns:
        (intra_op_threads, inter_op_threads) chosen (0: TensorFlow's own default); the rule's
        choice is not applied when TensorFlow was already running.
    Raises:
        errors.UserError: naming the setting, when a count was given and TensorFlow has already
            started its pools (the rule's own choice then leaves them as they are).
    """
    import tensorflow as tf

    rule = default_threads(cores)
    chosen = (intra_op_threads or rule[0], inter_op_threads or rule[1])
    settings = (
        (
            intra_op_threads,
            rule[0],
            tf.config.threading.set_intra_op_parallelism_threads,
            "intra_op_threads",
        ),
        (
            inter_op_threads,
            rule[1],
            tf.config.threading.set_inter_op_parallelism_threads,
            "inter_op_threads",
        ),
    )
    for given, default, setter, flag in settings:
        if not (given or default):
            continue
        try:
            setter(given or default)
        except RuntimeError as error:  # TensorFlow's context was initialised already
            if not given:
                # The rule's choice is a default: a program that started TensorFlow before the
                # command keeps the pools it started with.
                continue
            raise argument_error(
                flag,
                "to be set before TensorFlow starts",
                f"it running ({error})",
                detail=str(given),
            ) from None
    return chosen
