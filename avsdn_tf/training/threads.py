"""How many CPU threads TensorFlow runs ops with: the --intra_op_threads / --inter_op_threads flags.

TensorFlow keeps two thread pools, by default one thread per core each: intra-op threads split
one op (a matmul) across cores, inter-op threads run independent ops side by side. AVSDN's
graph is two encoder chains and a decoder chain of small per-segment ops; on the 2-core reference
machine, 1 intra-op and 2 inter-op threads (each core runs a whole small op instead of both
cores splitting it) made inference 1.1-1.3x and training 1.1-1.15x faster (docs/benchmarks.md).
Bigger machines were not measured, so the default stays TensorFlow's.
"""

import sys

from absl import flags
from absl.flags import _helpers

from avsdn_tf.errors import argument_error

# As in avsdn_tf.cli: the flags defined here belong to the command that asks for them (its --help).
_helpers.disclaim_module_ids.add(id(sys.modules[__name__]))


def define_flags(flag_values=flags.FLAGS):
    """Define --intra_op_threads and --inter_op_threads.

    Args:
        flag_values: the FlagValues to define them in.
    """
    flags.DEFINE_integer(
        "intra_op_threads",
        0,
        "Threads one op (e.g. a matmul) is split across; 0: "
        "TensorFlow's default (the number of cores). On 2 cores, 1 with --inter_op_threads 2 "
        "ran inference 1.1-1.3x and training 1.1-1.15x faster (docs/benchmarks.md).",
        lower_bound=0,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "inter_op_threads",
        0,
        "Independent ops run side by side on this many threads; "
        "0: TensorFlow's default (the number of cores).",
        lower_bound=0,
        flag_values=flag_values,
    )


def configure(intra_op_threads=0, inter_op_threads=0):
    """Set TensorFlow's thread pools; 0 keeps its default. Must run before TensorFlow runs any op.

    Args:
        intra_op_threads: threads one op is split across.
        inter_op_threads: ops run side by side.
    Raises:
        errors.UserError: naming the setting, when TensorFlow has already started its pools.
    """
    import tensorflow as tf

    settings = (
        (
            intra_op_threads,
            tf.config.threading.set_intra_op_parallelism_threads,
            "intra_op_threads",
        ),
        (
            inter_op_threads,
            tf.config.threading.set_inter_op_parallelism_threads,
            "inter_op_threads",
        ),
    )
    for count, setter, flag in settings:
        if not count:
            continue
        try:
            setter(count)
        except RuntimeError as error:  # TensorFlow's context was initialised already
            raise argument_error(
                flag,
                "to be set before TensorFlow starts",
                f"it running ({error})",
                detail=str(count),
            ) from None


def configure_from_flags(flag_values=flags.FLAGS):
    """configure() with the command's --intra_op_threads and --inter_op_threads.

    Args:
        flag_values: parsed FlagValues holding both flags (define_flags).
    """
    configure(flag_values.intra_op_threads, flag_values.inter_op_threads)
