"""`python -m export.client --server HOST:PORT [--grpc] --model_name avsdn --data FILE [--split S]`.

Sends features to a running TF Serving and prints each video's per-second labels and its event
intervals (runs of one event class; seconds, end exclusive), beside the annotated ones when the
records carry labels.

FILE may be:
- TFRecords of tf.train.SequenceExample in the project's format (prepare, synthesize and the
  feature extractor write them; a glob, or a data directory with dataset_info.json, of which
  the client sends one split: --split, default test): the serialized records go to the
  `predict_examples` signature as they are, so the client needs no feature sizes and videos may
  differ in length;
- .npz with arrays `audio` [T, A] or [B, T, A] and `visual` [T, ...] or [B, T, ...] (raw,
  un-normalised features; optional `video_id` [B] strings), sent to `serving_default`;
- a pickled file is never loaded (unpickling can run code): an .npy of a dict
  (np.save(path, {"audio": ..., "visual": ...})) or an .npz of object arrays ends in one message
  naming the file; save the arrays with np.savez.

REST (default) uses TF Serving's :predict JSON API (port 8501); --grpc uses
PredictionService.Predict
from tensorflow-serving-api (port 8500). An unreachable server, an unknown model and an input the
model rejects each end in one line on stderr and exit status 2.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import base64
import http.client
import json
import os
import sys
import urllib.error
import urllib.request

import numpy as np
import tensorflow as tf
from absl import flags

from avsdn_tf import cli, constants, dataset_info, fileio, records
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import metrics, serving

from . import warmup

FLAGS = flags.FLAGS


PER_SEGMENT = (serving.SEGMENT_PROBS, serving.SEGMENT_LABELS, serving.SEGMENT_LABEL_NAMES)
FETCHED = (
    serving.SEGMENT_LABELS,
    serving.SEGMENT_LABEL_NAMES,
    serving.VIDEO_LABEL,
    serving.VIDEO_LABEL_NAME,
)


class Request:
    """One Predict call: a signature, its inputs, and what the client knows of the videos."""

    def __init__(self, signature, inputs, ids, truths):
        self.signature, self.inputs, self.ids, self.truths = signature, inputs, ids, truths


# -- reading FILE ----------------------------------------------------------------------------
DEFAULT_SPLIT = "test"


def _refuse_split(split, path):
    """A split is taken from a data directory only; given with a file or glob, one message."""
    if split is not None:
        raise argument_error(
            "split", f"a data directory in `data` to take split {split!r} from", f"file {path}"
        )


def _record_files(path, split):
    if tf.io.gfile.isdir(path):
        return dataset_info.DataDir.open(path).shards(split or DEFAULT_SPLIT)
    _refuse_split(split, path)
    files = sorted(tf.io.gfile.glob(path))
    if not files:
        raise UserError(f"data {path}: no such file", argument="data")
    return files


def _summary(serialized, source):
    """Video id, number of segments and annotated labels (or None) of one record, without dims."""
    try:
        return records.summarize_record(serialized)
    except ValueError as error:
        raise input_error(
            source, "serialized tf.train.SequenceExample records (docs/data_format.md)", error
        ) from None


def _tfrecord_requests(files, batch_size):
    batch = []
    for file in files:
        try:
            for record in tf.data.TFRecordDataset(file):
                batch.append((record.numpy(), _summary(record.numpy(), file)))
                if len(batch) == batch_size:
                    yield _examples_request(batch)
                    batch = []
        except tf.errors.OpError as error:
            raise input_error(
                file,
                "TFRecords of tf.train.SequenceExample or an .npz",
                f"unreadable TFRecords ({error.message.splitlines()[0]})",
            ) from None
    if batch:
        yield _examples_request(batch)


def _examples_request(batch):
    examples = np.array([serialized for serialized, _ in batch], dtype=object)
    ids = [summary[0] for _, summary in batch]
    truths = [summary[2] for _, summary in batch]
    return Request(serving.PREDICT_EXAMPLES, {serving.EXAMPLES: examples}, ids, truths)


ARRAYS_EXPECTED = (
    "an .npz with arrays 'audio' [T, A] or [B, T, A] and 'visual' [T, ...] or [B, T, ...]"
)


def _array_requests(path, batch_size):
    values = fileio.read_arrays(path, ARRAYS_EXPECTED)
    if not isinstance(values, dict):  # an .npy holds one plain array
        raise input_error(
            path,
            ARRAYS_EXPECTED + " (np.savez(path, audio=..., visual=...))",
            f"one array of shape {list(values.shape)} (an .npy)",
        )
    if not {serving.AUDIO, serving.VISUAL} <= set(values):
        raise input_error(path, ARRAYS_EXPECTED, f"arrays {sorted(values)}")
    audio = np.asarray(values[serving.AUDIO], np.float32)
    visual = np.asarray(values[serving.VISUAL], np.float32)
    if audio.ndim == 2:  # one video
        audio, visual = audio[None], visual[None]
    count = len(audio)
    ids = [
        str(i)
        for i in values.get(
            serving.VIDEO_ID, [f"{os.path.basename(path)}[{i}]" for i in range(count)]
        )
    ]
    for start in range(0, count, batch_size):
        part = slice(start, start + batch_size)
        yield Request(
            serving.SERVING_DEFAULT,
            {serving.AUDIO: audio[part], serving.VISUAL: visual[part]},
            ids[part],
            [None] * len(ids[part]),
        )


def requests_from(path, batch_size, split=None):
    """The Predict requests of a data file, batch_size videos each (the last may hold fewer).

    Args:
        path: an .npz of features (audio [T, A] or [B, T, A], visual [T, ...] or [B, T, ...]),
            or TFRecords: a file, a glob or a data directory (an .npy is refused with a message).
        batch_size: videos per request, >= 1.
        split: the split of a data directory to send; None: DEFAULT_SPLIT ("test"). Only for a
            data directory.
    Returns:
        an iterator of Request: for an .npz, serving_default with float32 audio [b, T, A] and
        visual [b, T, ...]; for TFRecords, predict_examples with the serialized records,
        object [b], and each record's labels [T] as truths when it has them.
    Raises:
        errors.UserError: at once for batch_size < 1, a missing .npz / .npy, a split the data
            directory does not have (naming its dataset_info.json and its splits), or a split
            given with a file; for a pickled or unreadable file, or TFRecords that are not
            SequenceExamples, once iterated.
    """
    if batch_size < 1:
        raise argument_error("batch_size", "a positive integer", batch_size)
    if path.endswith((".npz", ".npy")):
        if not tf.io.gfile.exists(path):
            raise UserError(f"data {path}: no such file", argument="data")
        _refuse_split(split, path)
        return _array_requests(path, batch_size)
    return _tfrecord_requests(_record_files(path, split), batch_size)


# -- talking to TF Serving -------------------------------------------------------------------
def _one_line(message):
    message = message.split("\n\t [[")[0]  # drop TensorFlow's "[[{{node ...}}]]" trailer
    return " ".join(message.split())


class _Backend:
    protocol = ""
    port_hint = ""

    def __init__(self, server, model, version, timeout):
        self.server, self.model, self.version, self.timeout = server, model, version, timeout

    def unreachable(self, reason):
        """The error for a server that cannot be reached (or does not answer in time).

        Args:
            reason: why, e.g. "Connection refused".
        Returns:
            errors.UserError naming the server, the protocol and the usual port (not raised).
        """
        return UserError(
            f"cannot reach TF Serving at {self.server} over {self.protocol} ({reason}); is the"
            f" server running and is this its {self.protocol} port? {self.port_hint}"
        )

    def failed(self, status, message, source):
        """The error for a Predict call TF Serving answered with an error status.

        Args:
            status: the status name, e.g. "NOT_FOUND", "INVALID_ARGUMENT" (or "HTTP 500").
            message: TF Serving's error message (cut to one line).
            source: the data file the request came from.
        Returns:
            errors.UserError (not raised): no such model, the model rejected the input from
            source, or the status and message.
        """
        message = _one_line(message)
        model = f"{self.model!r}" + (f" version {self.version}" if self.version else "")
        if status == "NOT_FOUND" and "Servable not found" in message:
            return UserError(f"the server at {self.server} has no model {model} ({message})")
        if status in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"):
            return UserError(f"model {model} rejected the input from {source}: {message}")
        return UserError(f"TF Serving at {self.server} answered {status}: {message}")


class RestBackend(_Backend):
    protocol = "REST"
    port_hint = "(TF Serving's REST port is 8501; for its gRPC port add --grpc)"

    def url(self):
        version = f"/versions/{self.version}" if self.version else ""
        return f"http://{self.server}/v1/models/{self.model}{version}:predict"

    @staticmethod
    def _encode(value):
        if value.dtype == object:
            return [{"b64": base64.b64encode(item).decode("ascii")} for item in value.tolist()]
        return value.tolist()

    def predict(self, request, source):
        """One Predict call through the REST API (:predict, "inputs" format; strings as b64).

        Args:
            request: a Request (signature, inputs of NumPy arrays).
            source: the data file the request came from, for error messages.
        Returns:
            dict output name -> NumPy array with batch dim first, e.g. segment_labels [b, T].
        Raises:
            errors.UserError: when the server cannot be reached, is not TF Serving's REST API,
                has no such model, or rejects the input.
        """
        body = json.dumps(
            {
                "signature_name": request.signature,
                "inputs": {name: self._encode(value) for name, value in request.inputs.items()},
            }
        )
        http_request = urllib.request.Request(
            self.url(), data=body.encode("utf-8"), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                message = json.loads(text)["error"]
            except (ValueError, KeyError, TypeError):
                raise UserError(
                    f"{self.server} answered HTTP {error.code} without TF Serving's JSON error "
                    f"({_one_line(text)[:200] or error.reason}); is it TF Serving's REST port?"
                ) from None
            status = {404: "NOT_FOUND", 400: "INVALID_ARGUMENT", 503: "UNAVAILABLE"}.get(
                error.code, f"HTTP {error.code}"
            )
            raise self.failed(status, message, source) from None
        except urllib.error.URLError as error:
            raise self.unreachable(
                getattr(error.reason, "strerror", None) or str(error.reason)
            ) from None
        except TimeoutError:
            raise self.unreachable(f"no answer within {self.timeout:g} s") from None
        except (http.client.HTTPException, ConnectionError, ValueError) as error:
            raise self.unreachable(f"no TF Serving REST answer: {type(error).__name__}") from None
        outputs = answer.get("outputs") if isinstance(answer, dict) else None
        if not isinstance(outputs, dict):
            raise UserError(
                f"{self.server} did not answer like TF Serving's REST API (no 'outputs' object)"
            )
        return {name: np.asarray(value) for name, value in outputs.items()}


class GrpcBackend(_Backend):
    protocol = "gRPC"
    port_hint = "(TF Serving's gRPC port is 8500; for its REST port drop --grpc)"

    def __init__(self, server, model, version, timeout):
        super().__init__(server, model, version, timeout)
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        self.grpc = grpc
        unlimited = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.channel = grpc.insecure_channel(server, options=unlimited)
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, request, source):
        """One PredictionService.Predict call over gRPC.

        Args:
            request: a Request (signature, inputs of NumPy arrays).
            source: the data file the request came from, for error messages.
        Returns:
            dict output name -> NumPy array with batch dim first, e.g. segment_labels [b, T].
        Raises:
            errors.UserError: when the server cannot be reached or does not answer in time, has
                no such model, or rejects the input.
        """
        proto = warmup.predict_request(self.model, request.signature, request.inputs, self.version)
        try:
            response = self.stub.Predict(proto, timeout=self.timeout)
        except self.grpc.RpcError as error:
            code, details = error.code(), error.details() or ""
            if code == self.grpc.StatusCode.UNAVAILABLE:
                raise self.unreachable(_one_line(details)) from None
            if code == self.grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self.unreachable(f"no answer within {self.timeout:g} s") from None
            raise self.failed(code.name, details, source) from None
        return {name: tf.make_ndarray(value) for name, value in response.outputs.items()}


def _backend(server, model, version, use_grpc, timeout):
    server = server.split("://", 1)[-1].rstrip("/")
    if ":" not in server:
        raise argument_error("server", "HOST:PORT", repr(server))
    return (GrpcBackend if use_grpc else RestBackend)(server, model, version, timeout)


# -- results ---------------------------------------------------------------------------------
def _text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _videos(request, outputs):
    """Per-video results of one answer, trimmed to each video's own number of segments."""
    missing = [name for name in FETCHED if name not in outputs]
    if missing:
        raise UserError(
            f"the served model has no outputs {missing}; was it exported by export.export_model?"
        )
    labels = np.asarray(outputs[serving.SEGMENT_LABELS])
    lengths = outputs.get(serving.NUM_SEGMENTS, np.full(len(labels), labels.shape[1]))
    videos = []
    for i, video_id in enumerate(request.ids):
        length = int(lengths[i])
        segment_labels = [int(label) for label in labels[i][:length]]
        names = [
            _text(name) for name in np.asarray(outputs[serving.SEGMENT_LABEL_NAMES])[i][:length]
        ]
        id_to_name = dict(zip(segment_labels, names))
        video = {
            "video_id": video_id,
            "num_segments": length,
            "segment_labels": segment_labels,
            "segment_label_names": names,
            "video_label": int(outputs[serving.VIDEO_LABEL][i]),
            "video_label_name": _text(outputs[serving.VIDEO_LABEL_NAME][i]),
            "events": [
                {"label": id_to_name[c], "start": s, "end": e}
                for c, s, e in metrics.intervals(segment_labels)
            ],
        }
        truth = request.truths[i]
        if truth is not None:
            class_names = constants.class_names()
            video["truth_labels"] = [int(label) for label in truth]
            video["truth_events"] = [
                {"label": class_names[c], "start": s, "end": e}
                for c, s, e in metrics.intervals(truth)
            ]
        videos.append(video)
    return videos


def _events_text(events):
    return (
        ", ".join(f"{event['label']} {event['start']}-{event['end']} s" for event in events)
        or "none"
    )


def format_video(video):
    """One video's result as text: a line per second (prediction, annotation), then events.

    Args:
        video: one dict of run()'s results (video_id, num_segments, segment_label_names,
            video_label_name, events; truth_labels and truth_events when annotated).
    Returns:
        str, several lines without a final newline.
    """
    class_names = constants.class_names()
    truth = video.get("truth_labels")
    width = max(len(name) for name in video["segment_label_names"] + ["prediction"]) + 2
    lines = [
        (
            f"video {video['video_id'] or '(no id)'} ({video['num_segments']} s):"
            f" {video['video_label_name']}"
        ),
        f"  second  {'prediction':<{width}}" + ("truth" if truth is not None else ""),
    ]
    for t, name in enumerate(video["segment_label_names"]):
        annotated = (
            class_names[truth[t]] if truth is not None and t < len(truth) and truth[t] >= 0 else ""
        )
        lines.append(f"  {t:>6}  {name:<{width}}{annotated}".rstrip())
    lines.append(f"  events: {_events_text(video['events'])}")
    if truth is not None:
        lines.append(f"  annotated events: {_events_text(video['truth_events'])}")
    return "\n".join(lines)


def run(
    server,
    data,
    model="avsdn",
    use_grpc=False,
    version=None,
    batch_size=16,
    timeout=60.0,
    output_json=None,
    out=None,
    split=None,
):
    """Predict every video of `data` on the server; print them; return the per-video results.

    Args:
        server: TF Serving's HOST:PORT (a scheme such as http:// is dropped).
        data: the features to send (requests_from: an .npz or TFRecords).
        model: the model name on the server.
        use_grpc: gRPC PredictionService instead of the REST API.
        version: the model version; None: the newest the server has.
        batch_size: videos per request.
        timeout: seconds to wait for each answer.
        output_json: also write the results to this JSON file, or None.
        out: the text stream to print to; default sys.stdout.
        split: the split of a data directory `data` to send; None: test (DEFAULT_SPLIT).
    Returns:
        list of dicts, one per video: video_id, num_segments T, segment_labels [T] ints,
        segment_label_names [T], video_label, video_label_name, events ({label, start, end},
        end exclusive); truth_labels [T] and truth_events when the records carry labels.
    Raises:
        errors.UserError: for a bad server address or data, an unreachable server, an unknown
            model, an input the model rejects, or a model without the expected outputs.
    """
    out = out or sys.stdout
    backend = _backend(server, model, version, use_grpc, timeout)
    videos = []
    for request in requests_from(data, batch_size, split):
        for video in _videos(request, backend.predict(request, data)):
            print(format_video(video), file=out)
            videos.append(video)
    scored = [(v["segment_labels"], v["truth_labels"]) for v in videos if "truth_labels" in v]
    where = f" ({split or DEFAULT_SPLIT} split)" if tf.io.gfile.isdir(data) else ""
    summary = f"{len(videos)} videos{where} from {model} at {backend.server} ({backend.protocol})"
    if scored:
        hits = [metrics.frame_hits(np.asarray(t), np.asarray(p)) for p, t in scored]
        correct, total = (sum(float(pair[k]) for pair in hits) for k in (0, 1))
        summary += f"; frame accuracy against the records' labels: {correct / max(total, 1):.4f}"
    print(summary, file=out)
    if output_json:
        fileio.write_json(
            output_json,
            {
                "server": backend.server,
                "protocol": backend.protocol,
                "model": model,
                "data": data,
                "split": (split or DEFAULT_SPLIT) if tf.io.gfile.isdir(data) else None,
                "videos": videos,
            },
        )
    return videos


def define_flags():
    """The command's flags; defined when run as a command, so importing the module from other
    code (tests, other commands with flags of the same names) does not register them."""
    flags.DEFINE_string(
        "server",
        None,
        "TF Serving address HOST:PORT (REST 8501 by default, gRPC 8500 with --grpc).",
    )
    flags.DEFINE_bool("grpc", False, "Use gRPC PredictionService instead of the REST API.")
    flags.DEFINE_string(
        "model_name", "avsdn", "Model name on the server (TF Serving's --model_name)."
    )
    flags.DEFINE_integer("version", None, "Model version; default: the newest the server has.")
    flags.DEFINE_string(
        "data", None, "TFRecords (file, glob or data directory) or an .npz of features."
    )
    flags.DEFINE_string(
        "split",
        None,
        f"The split of a data directory in --data to send (default {DEFAULT_SPLIT}); not for a"
        " file or glob.",
    )
    flags.DEFINE_integer("batch_size", 16, "Videos per request.")
    flags.DEFINE_float("timeout", 60.0, "Seconds to wait for each answer.")
    cli.define(output="Also write the predictions to this JSON file.")
    cli.rename_flags(model="model_name", output_json="output")


def main(argv):
    """The command: run() with the flags (define_flags).

    Args:
        argv: the command line left after absl's flags (unused).
    Returns:
        None.
    Raises:
        errors.UserError: when --server or --data is missing, or run() raises one.
    """
    del argv
    run(
        FLAGS.server,
        FLAGS.data,
        FLAGS.model_name,
        FLAGS.grpc,
        FLAGS.version,
        FLAGS.batch_size,
        FLAGS.timeout,
        FLAGS.output,
        split=FLAGS.split,
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("server", "data"))
