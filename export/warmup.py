"""TF Serving warmup records: assets.extra/tf_serving_warmup_requests, a TFRecord of PredictionLogs.

TF Serving replays these requests when it loads a version, before it reports the version
AVAILABLE, so the first real request does not pay for graph optimisation and lazy allocation; a
request that fails fails the load. The same PredictRequest protos are what clients send over gRPC.
"""

import os

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from avsdn_tf import fileio

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_path(saved_model_dir):
    """Where TF Serving looks for the warmup records of a SavedModel.

    Args:
        saved_model_dir: a SavedModel version directory.
    Returns:
        str, saved_model_dir/assets.extra/tf_serving_warmup_requests.
    """
    return os.path.join(saved_model_dir, ASSETS_EXTRA, WARMUP_FILE)


def predict_request(model_name, signature_name, inputs, version=None):
    """A PredictRequest for `inputs` {name: array}; arrays are sent as TensorProtos.

    Args:
        model_name: the model name on the server.
        signature_name: "serving_default" or "predict_examples".
        inputs: {input name: array}, e.g. audio [B, T, A] and visual [B, T, ...] (floats are
            sent as float32), or examples object [B] of serialized records.
        version: the model version, or None: the newest the server has.
    Returns:
        tensorflow_serving.apis.predict_pb2.PredictRequest.
    """
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature_name)
    )
    if version is not None:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(np.float32)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def predict_requests(model_name, calls):
    """PredictRequests for a task's warmup calls.

    Args:
        model_name: the model name on the server.
        calls: [(signature name, {input name: array})] (a task serving's warmup()).
    Returns:
        list of PredictRequest.
    """
    return [predict_request(model_name, signature, inputs) for signature, inputs in calls]


def write(path, requests):
    """Write PredictRequests as PredictionLog records (under a temporary name, then renamed).

    Args:
        path: the warmup file (warmup_path); its directory is made if missing.
        requests: an iterable of PredictRequest.
    Returns:
        None.
    Raises:
        errors.UserError: for a full disk, a read-only file system, ... (fileio.atomic_file).
    """
    fileio.make_directories(os.path.dirname(path))
    with fileio.atomic_file(path) as temporary, tf.io.TFRecordWriter(temporary) as writer:
        for request in requests:
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())


def read(path):
    """The PredictionLog records of a warmup file."""
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(path)
    ]


def request_inputs(request):
    """{name: NumPy array} of a PredictRequest."""
    return {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
