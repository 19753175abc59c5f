"""How many CPU threads TensorFlow runs ops with (the commands' --intra_op_threads and
--inter_op_threads, defined in avsdn_tf/cli.py).

TensorFlow keeps two thread pools, by default one thread per core each: intra-op threads split
one op (a matmul) across cores, inter-op threads run independent ops side by side. AVSDN's
graph is two encoder chains and a decoder chain of small per-segment ops; on the 2-core reference
machine, 1 intra-op and 2 inter-op threads (each core runs a whole small op instead of both
cores splitting it) made inference 1.1-1.3x and training 1.1-1.15x faster (docs/benchmarks.md).
Bigger machines were not measured, so the default stays TensorFlow's.
"""

from avsdn_tf.errors import argument_error


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
