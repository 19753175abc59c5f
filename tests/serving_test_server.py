"""A small stand-in for tensorflow_model_server, for tests and benchmarks on machines without it.

    python tests/serving_test_server.py --model_name avsdn --model_base_path SERVING/avsdn \
        --port 0 --rest_api_port 0        # or --model_config_file models.config

It follows TF Serving where clients can see it:
- models load the way TF Serving loads them: a TF1 Session per version from the "serve"
  MetaGraphDef, signature tensors fed and fetched by name (Session::Run checks no shapes, so
  malformed inputs reach the graph), the newest numeric version directory unless a
  model_version_policy says otherwise, warmup records replayed before a version is available
  (a failing warmup request fails the load);
- gRPC: tensorflow.serving.PredictionService Predict and GetModelMetadata from
  tensorflow_serving.apis (the other methods answer UNIMPLEMENTED), TF Serving's status codes and
  messages ("Servable not found for request: Latest(name)", "input size does not match
  signature", ...), outputs as typed TensorProto fields;
- REST: POST /v1/models/NAME[/versions/N]:predict with the "instances" (row) or "inputs"
  (columnar) JSON formats, {"b64": ...} strings, NaN / Infinity, answered with "predictions" or
  "outputs"; GET /v1/models/NAME[/versions/N] (status) and .../metadata; errors as
  {"error": "..."} with TF Serving's HTTP codes (400 for INVALID_ARGUMENT and FAILED_PRECONDITION,
  404 for NOT_FOUND, ...).
Not implemented: Classify / Regress / MultiInference, version labels, batching, file-system
polling for new versions, model config reloading.

Port 0 picks a free port. When serving, prints one line: "READY grpc=PORT rest=PORT".
"""

import argparse
import base64
import concurrent.futures
import http.server
import json
import os
import re
import signal
import sys
import threading

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import grpc  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import json_format, text_format  # noqa: E402
from tensorflow.core.framework import tensor_pb2  # noqa: E402
from tensorflow.core.protobuf import config_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    predict_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
)
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
DEFAULT_SIGNATURE = "serving_default"
# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc).
HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}


class ServingError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code, self.message = code, message


def invalid(message):
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


class Servable:
    """One loaded version: a Session over the SavedModel's "serve" graph and its signatures."""

    def __init__(self, name, version, path, session_config=None):
        self.name, self.version, self.path = name, version, path
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph, config=session_config)
        with self.graph.as_default():
            self.meta_graph = tf.compat.v1.saved_model.load(self.session, ["serve"], path)
        self.signatures = self.meta_graph.signature_def
        self._callables = {}
        self._lock = threading.Lock()

    def _callable(self, signature, input_names, output_names):
        key = (tuple(input_names), tuple(output_names))
        with self._lock:
            if key not in self._callables:
                options = config_pb2.CallableOptions(
                    feed=[signature.inputs[name].name for name in input_names],
                    fetch=[signature.outputs[name].name for name in output_names],
                )
                # Session.run would check the fed shapes in Python; TF Serving's C++ Session::Run
                # does not, so feed through a callable, which hands the arrays to the runtime as is.
                self._callables[key] = self.session._make_callable_from_options(options)
            return self._callables[key]

    def signature(self, name):
        name = name or DEFAULT_SIGNATURE
        if name not in self.signatures:
            raise ServingError(
                grpc.StatusCode.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.'
            )
        return name, self.signatures[name]

    def predict(self, signature_name, inputs, output_filter=()):
        """{input name: array} -> {output name: array}, like TF Serving's RunPredict."""
        signature_name, signature = self.signature(signature_name)
        if set(inputs) != set(signature.inputs):
            sent, wanted = set(inputs), set(signature.inputs)
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        for alias in output_filter:
            if alias not in signature.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in"
                    f" the set {{{','.join(sorted(signature.outputs))}}}."
                )
        output_names = list(output_filter) or sorted(signature.outputs)
        input_names = sorted(inputs)
        run = self._callable(signature, input_names, output_names)
        try:
            values = run(*[inputs[name] for name in input_names])
        except tf.errors.OpError as error:
            raise ServingError(
                _GRPC_CODES.get(error.error_code, grpc.StatusCode.UNKNOWN), error.message
            ) from None
        return dict(zip(output_names, values))

    def warm_up(self):
        """Replay assets.extra/tf_serving_warmup_requests, as TF Serving does at load."""
        path = os.path.join(self.path, WARMUP_FILE)
        if not os.path.exists(path):
            return 0
        count = 0
        for record in tf.compat.v1.io.tf_record_iterator(path):
            log = prediction_log_pb2.PredictionLog.FromString(record)
            request = log.predict_log.request
            inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            self.predict(request.model_spec.signature_name, inputs, list(request.output_filter))
            count += 1
        return count


def _versions_to_load(base_path, policy):
    if not os.path.isdir(base_path):
        raise SystemExit(f"serving_test_server: model base path {base_path} not found")
    versions = sorted(int(name) for name in os.listdir(base_path) if name.isdigit())
    choice = policy.WhichOneof("policy_choice") if policy is not None else None
    if choice == "all":
        return versions
    if choice == "specific":
        return [v for v in versions if v in set(policy.specific.versions)]
    count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions else 1
    return versions[-count:]


class ModelManager:
    """The loaded servables by model name and version, looked up like TF Serving's ServerCore."""

    def __init__(self, config, session_config=None, log=print):
        self.models = {}
        for model in config.model_config_list.config:
            policy = model.model_version_policy if model.HasField("model_version_policy") else None
            loaded = {}
            for version in _versions_to_load(model.base_path, policy):
                servable = Servable(
                    model.name, version, os.path.join(model.base_path, str(version)), session_config
                )
                warmed = servable.warm_up()
                log(f"loaded {model.name} version {version} ({warmed} warmup requests)")
                loaded[version] = servable
            if not loaded:
                raise SystemExit(
                    f"serving_test_server: no numeric version directory in {model.base_path}"
                )
            self.models[model.name] = loaded

    def get(self, model_spec_name, version=None):
        versions = self.models.get(model_spec_name)
        if not versions or (version is not None and version not in versions):
            request = (
                f"Latest({model_spec_name})"
                if version is None
                else f"Specific({model_spec_name}, {version})"
            )
            raise ServingError(
                grpc.StatusCode.NOT_FOUND, f"Servable not found for request: {request}"
            )
        return versions[version if version is not None else max(versions)]


def _as_proto_field(array):
    """A TensorProto with typed value fields, as TF Serving's default AsProtoField writes them."""
    array = np.asarray(array)
    if array.dtype.kind in "SUO":
        return tf.make_tensor_proto(array.astype(object))
    proto = tensor_pb2.TensorProto(
        dtype=tf.as_dtype(array.dtype).as_datatype_enum,
        tensor_shape=tf.TensorShape(array.shape).as_proto(),
    )
    field = {
        np.dtype(np.float32): "float_val",
        np.dtype(np.float64): "double_val",
        np.dtype(np.int32): "int_val",
        np.dtype(np.int64): "int64_val",
        np.dtype(np.bool_): "bool_val",
    }[array.dtype]
    getattr(proto, field).extend(array.ravel().tolist())
    return proto


# -- gRPC ------------------------------------------------------------------------------------
class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager):
        self.manager = manager

    def _servable(self, model_spec):
        return self.manager.get(
            model_spec.name, model_spec.version.value if model_spec.HasField("version") else None
        )

    def Predict(self, request, context):
        try:
            servable = self._servable(request.model_spec)
            try:
                inputs = {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}
            except (TypeError, ValueError) as error:
                raise invalid(f"Failed to parse input tensor: {error}") from None
            outputs = servable.predict(
                request.model_spec.signature_name, inputs, list(request.output_filter)
            )
        except ServingError as error:
            context.abort(error.code, error.message)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        response.model_spec.signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(_as_proto_field(value))
        return response

    def GetModelMetadata(self, request, context):
        try:
            servable = self._servable(request.model_spec)
            if not request.metadata_field:
                raise invalid("GetModelMetadataRequest must specify at least one metadata_field")
            for field in request.metadata_field:
                if field != "signature_def":
                    raise invalid(f"Metadata field {field} is not supported")
        except ServingError as error:
            context.abort(error.code, error.message)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = servable.name
        response.model_spec.version.value = servable.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signatures.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response


# -- REST ------------------------------------------------------------------------------------
_PREDICT_PATH = re.compile(
    r"(?i)/v1/models/([^/:]+)(?:/versions/(\d+))?:(classify|regress|predict)"
)
_STATUS_PATH = re.compile(r"(?i)/v1/models(?:/([^/:]+))?(?:/versions/(\d+))?(?:/(metadata))?")


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _shape_of(value):
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _json_to_array(value, dtype):
    """A JSON value as an array of the signature's dtype, with TF Serving's checks and wording."""
    shape = _shape_of(value)

    def leaves(item, level):
        if not isinstance(item, list):
            if level != len(shape):
                raise invalid(
                    f"JSON Value: {json.dumps(item)} found at incorrect level: {level + 1} in the"
                    f" JSON DOM. Expected at level: {len(shape)}"
                )
            yield item
            return
        if level >= len(shape):
            raise invalid(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(item) != shape[level]:
            raise invalid(
                f"Encountered list at unexpected size: {len(item)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for element in item:
            yield from leaves(element, level + 1)

    if dtype == tf.string:
        flat = []
        for leaf in leaves(value, 0):
            if _is_b64(leaf):
                try:
                    flat.append(base64.b64decode(leaf["b64"], validate=True))
                except ValueError:
                    raise invalid("Unable to base64 decode") from None
            elif isinstance(leaf, str):
                flat.append(leaf.encode("utf-8"))
            else:
                raise invalid(f"JSON Value: {json.dumps(leaf)} is not of expected type: string")
        return np.array(flat, dtype=object).reshape(shape)
    numeric = dtype.as_numpy_dtype
    if dtype.is_floating or dtype.is_integer:
        try:  # the fast path; ragged or non-numeric input falls through to the exact checks
            array = np.asarray(value, dtype=numeric)
            if list(array.shape) == shape and not _contains_bool(value):
                return array
        except (ValueError, TypeError):
            pass
    flat = []
    for leaf in leaves(value, 0):
        ok = (
            isinstance(leaf, bool)
            if dtype == tf.bool
            else (
                isinstance(leaf, (int, float)) and not isinstance(leaf, bool)
                if dtype.is_floating
                else isinstance(leaf, int) and not isinstance(leaf, bool)
            )
        )
        if not ok:
            raise invalid(f"JSON Value: {json.dumps(leaf)} is not of expected type: {dtype.name}")
        flat.append(leaf)
    return np.array(flat, dtype=numeric).reshape(shape)


def _contains_bool(value):
    if isinstance(value, bool):
        return True
    return isinstance(value, list) and bool(value) and _contains_bool(value[0])


def _instances_to_inputs(instances, signature):
    names = sorted(signature.inputs)
    if not isinstance(instances, list):
        raise invalid("Excepting 'instances' to be an list/array")
    if not instances:
        raise invalid("No values in 'instances' array")
    as_objects = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not as_objects and len(names) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    columns = {name: [] for name in names}
    for index, instance in enumerate(instances):
        if as_objects != (isinstance(instance, dict) and not _is_b64(instance)):
            raise invalid(
                f"Expecting {'object but got list' if as_objects else 'value/list but got object'} "
                f"at item {index} of input list"
            )
        items = instance if as_objects else {names[0]: instance}
        for name, value in items.items():
            if name not in signature.inputs:
                raise invalid(
                    f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
                    f"JSON object: does not have named input: {name}"
                )
            try:
                array = _json_to_array(value, tf.dtypes.as_dtype(signature.inputs[name].dtype))
            except ServingError as error:
                raise invalid(
                    f"Failed to process element: {index} key: {name} of 'instances' list. "
                    f"Error: {error.message}"
                ) from None
            if columns[name] and array.shape != columns[name][0].shape:
                raise invalid(
                    f"Failed to process element: {index} key: {name} of 'instances' list. Error: "
                    f"Expecting shape {list(columns[name][0].shape)} but got: {list(array.shape)}"
                )
            columns[name].append(array)
        if set(items) != set(names):
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{json.dumps(instance)[:200]} keys must be equal to: {','.join(names)}"
            )
    return {name: np.stack(arrays) for name, arrays in columns.items()}


def _columns_to_inputs(value, signature):
    names = sorted(signature.inputs)
    if not isinstance(value, dict) or _is_b64(value):
        if len(names) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        value = {names[0]: value}
    inputs = {}
    for name in names:
        if name not in value:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        inputs[name] = _json_to_array(value[name], tf.dtypes.as_dtype(signature.inputs[name].dtype))
    return inputs


def _to_json(array, name):
    array = np.asarray(array)
    if array.dtype.kind in "SO":
        as_bytes = name.endswith("_bytes")  # TF Serving's convention for binary outputs
        return np.vectorize(
            lambda b: (
                {"b64": base64.b64encode(b).decode()} if as_bytes else b.decode("utf-8", "replace")
            ),
            otypes=[object],
        )(array).tolist()
    return array.tolist()


def rest_predict(manager, model, version, body):
    """The JSON answer of POST /v1/models/MODEL[/versions/VERSION]:predict."""
    try:
        request = json.loads(body) if body else None
    except ValueError as error:
        raise invalid(f"JSON Parse error: {error}") from None
    if request is None:
        raise invalid("JSON Parse error: The document is empty")
    if not isinstance(request, dict):
        raise invalid(f"JSON Value: {json.dumps(request)[:200]} Is not object")
    signature_name = request.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid(
            "JSON Value: not formatted correctly. 'signature_name' key must be a string value."
        )
    servable = manager.get(model, version)
    name = signature_name or DEFAULT_SIGNATURE
    if name not in servable.signatures:
        raise invalid(f'Serving signature name: "{name}" not found in signature def')
    signature = servable.signatures[name]
    if ("instances" in request) == ("inputs" in request):
        raise invalid(
            "Missing 'inputs' or 'instances' key"
            if "instances" not in request
            else (
                "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to"
                " exist"
            )
        )
    row_format = "instances" in request
    inputs = (
        _instances_to_inputs(request["instances"], signature)
        if row_format
        else _columns_to_inputs(request["inputs"], signature)
    )
    outputs = servable.predict(signature_name, inputs)
    if not row_format:
        values = {key: _to_json(value, key) for key, value in outputs.items()}
        return {"outputs": values if len(values) > 1 else next(iter(values.values()))}
    sizes = {key: np.shape(value)[0] if np.ndim(value) else None for key, value in outputs.items()}
    for key, size in sizes.items():
        if size is None:
            raise invalid(f"Tensor name: {key} has no shape information ")
        if size != next(iter(sizes.values())):
            raise invalid(
                f"Tensor name: {key} has inconsistent batch size: {size} expecting: "
                f"{next(iter(sizes.values()))}"
            )
    rows = {key: _to_json(value, key) for key, value in outputs.items()}
    batch = next(iter(sizes.values()))
    if len(rows) == 1:
        return {"predictions": next(iter(rows.values()))}
    return {"predictions": [{key: rows[key][i] for key in rows} for i in range(batch)]}


def rest_status(manager, model, version, metadata):
    if not model:
        raise invalid("Missing model name in request.")
    servable = manager.get(model, version)
    if metadata:
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in servable.signatures.items():
            signature_map.signature_def[name].CopyFrom(signature)
        return {
            "model_spec": {
                "name": servable.name,
                "signature_name": "",
                "version": str(servable.version),
            },
            "metadata": {
                "signature_def": json_format.MessageToDict(
                    signature_map, preserving_proto_field_name=True
                )
            },
        }
    versions = (
        [servable.version] if version is not None else sorted(manager.models[model], reverse=True)
    )
    response = get_model_status_pb2.GetModelStatusResponse()
    for number in versions:
        status = response.model_version_status.add(
            version=number, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
        )
        status.status.error_code = 0
    return json_format.MessageToDict(
        response, preserving_proto_field_name=True, including_default_value_fields=True
    )


def make_rest_handler(manager):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as TF Serving's HTTP server allows
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def log_message(self, format, *args):  # quiet, like TF Serving at default verbosity
            pass

        def _reply(self, status, payload):
            body = json.dumps(payload, indent=None).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, method):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not re.fullmatch(r"(?i)/v1/.*", path):
                self._reply(404, {"error": f"Not found: {path}"})
                return
            try:
                predict = _PREDICT_PATH.fullmatch(path) if method == "POST" else None
                status = _STATUS_PATH.fullmatch(path) if method == "GET" else None
                if predict:
                    model, version, verb = predict.groups()
                    if verb.lower() != "predict":
                        raise ServingError(
                            grpc.StatusCode.UNIMPLEMENTED,
                            f"{verb} is not implemented by this test server",
                        )
                    payload = rest_predict(manager, model, int(version) if version else None, body)
                elif status:
                    model, version, metadata = status.groups()
                    payload = rest_status(
                        manager, model, int(version) if version else None, metadata
                    )
                else:
                    raise invalid(f"Malformed request: {method} {path}")
            except ServingError as error:
                self._reply(HTTP_STATUS.get(error.code, 500), {"error": error.message})
                return
            self._reply(200, payload)

        def do_POST(self):
            self._handle("POST")

        def do_GET(self):
            self._handle("GET")

    return Handler


# -- the server ------------------------------------------------------------------------------
class TestServer:
    """gRPC and REST servers over one ModelManager, bound to `host` (ports 0: free ports)."""

    def __init__(self, manager, host="127.0.0.1", grpc_port=0, rest_port=0, threads=8):
        self.manager = manager
        unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.grpc_server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=threads), options=unlimited
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            PredictionService(manager), self.grpc_server
        )
        self.grpc_port = self.grpc_server.add_insecure_port(f"{host}:{grpc_port}")
        self.http_server = http.server.ThreadingHTTPServer(
            (host, rest_port), make_rest_handler(manager)
        )
        self.http_server.daemon_threads = True
        self.rest_port = self.http_server.server_address[1]
        self._http_thread = threading.Thread(target=self.http_server.serve_forever, daemon=True)

    def start(self):
        self.grpc_server.start()
        self._http_thread.start()
        return self

    def stop(self):
        self.http_server.shutdown()
        self.http_server.server_close()
        self.grpc_server.stop(grace=None)


def model_server_config(args):
    if args.model_config_file:
        with open(args.model_config_file) as handle:
            return text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    if not args.model_base_path:
        raise SystemExit("serving_test_server: give --model_base_path or --model_config_file")
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(
        name=args.model_name,
        base_path=os.path.abspath(args.model_base_path),
        model_platform="tensorflow",
    )
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: a free one)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: a free one)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--model_name", default="default")
    parser.add_argument("--model_base_path")
    parser.add_argument("--model_config_file")
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=0)
    parser.add_argument("--threads", type=int, default=8, help="request threads for each protocol")
    args = parser.parse_args(argv)
    session_config = config_pb2.ConfigProto(
        intra_op_parallelism_threads=args.tensorflow_intra_op_parallelism,
        inter_op_parallelism_threads=args.tensorflow_inter_op_parallelism,
    )
    manager = ModelManager(
        model_server_config(args),
        session_config,
        log=lambda message: print(message, file=sys.stderr, flush=True),
    )
    server = TestServer(manager, args.host, args.port, args.rest_api_port, args.threads).start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"READY grpc={server.grpc_port} rest={server.rest_port}", flush=True)
    stopped.wait()
    server.stop()


if __name__ == "__main__":
    main()
