"""tf.distribute strategies: which one a run uses, who is the chief, logical CPU devices."""

import os

import tensorflow as tf

from avsdn_tf import constants
from avsdn_tf.errors import argument_error

STRATEGIES = constants.STRATEGIES


def split_cpu(count):
    """Expose the CPU as `count` logical devices (before TensorFlow first touches a device).

    Args:
        count: the number of logical CPU devices (MirroredStrategy's replicas on a CPU).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * count
    )


def _reduce_nested_structures(strategy):
    """Make MultiWorkerMirroredStrategy.reduce take what Keras 3's fit hands it.

    Keras reduces the first input batch (a dict here) in one call to build the model
    (keras-team/keras#20329), and averages scalar logs with axis=0, which this strategy rejects
    for rank-0 values. Reduce each leaf on its own, and scalars across replicas only.
    """
    reduce_one = strategy.reduce

    def reduce_leaf(reduce_op, leaf, axis):
        local = strategy.experimental_local_results(leaf)[0] if hasattr(leaf, "values") else leaf
        if axis is not None and getattr(local, "shape", None) is not None and local.shape.rank == 0:
            axis = None
        return reduce_one(reduce_op, leaf, axis)

    def reduce(reduce_op, value, axis=None):
        return tf.nest.map_structure(lambda leaf: reduce_leaf(reduce_op, leaf, axis), value)

    strategy.reduce = reduce
    return strategy


def make_strategy(name):
    """The tf.distribute strategy of a name.

    auto: MirroredStrategy over the GPUs when there are several, else the default strategy;
    mirrored: MirroredStrategy over the GPUs, else over the logical CPUs; multi_worker:
    MultiWorkerMirroredStrategy from TF_CONFIG.

    Args:
        name: one of constants.STRATEGIES.
    Returns:
        a tf.distribute.Strategy.
    Raises:
        errors.UserError: naming `strategy`, for an unknown name or multi_worker without TF_CONFIG.
    """
    if name not in STRATEGIES:
        raise argument_error("strategy", f"one of {STRATEGIES}", repr(name))
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise argument_error(
                "strategy",
                "the TF_CONFIG environment variable describing the cluster",
                "none",
                detail="multi_worker",
            )
        return _reduce_nested_structures(tf.distribute.MultiWorkerMirroredStrategy())
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """Whether this process writes the run's files (the chief, or worker 0 of a chief-less cluster).

    Args:
        strategy: a tf.distribute.Strategy.
    Returns:
        bool: True for every single-process strategy.
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker"
        and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict()
    )
