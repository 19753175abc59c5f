"""Benchmark serving: SavedModel latency at batch 1 (p50, p99) and throughput at batch 64, in
process
and through the TF Serving stand-in (tests/serving_test_server.py) over gRPC and REST on 127.0.0.1.

    python benchmarks/bench_serving.py [--model_dir RUN] [--visual_shape 512] [--workdir DIR]

Without --model_dir the model is AVSDN at the paper's sizes (hparams defaults: 128-unit LSTMs,
256-unit fusion MLPs) on AVE-sized features (audio 128; visual 512-d vectors, or 7,7,512 maps with
--visual_shape 7,7,512), with untrained weights: the cost of a forward pass does not depend on the
weights. Either way the model is exported with export.export_model, so what is measured is exactly
what TF Serving would load. Each request holds 10-second videos (10 segments).

Request counts are bounded (flags below). Latency is per call, measured at the caller: in process
a call of the loaded serving_default signature; over gRPC a PredictionService.Predict round trip
(TensorProto in and out); over REST an HTTP POST of TF Serving's JSON "inputs" format on a
kept-alive connection, JSON encoding and decoding included. The server is a Python stand-in, not
tensorflow_model_server: its REST numbers include Python's JSON handling, which the C++ server does
faster, and it does no request batching. "REST records" sends the same videos as serialized
records in base64 to predict_examples (record encoding included), the compact way to send visual
maps over REST.
"""

import base64
import http.client
import json
import os
import platform
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from absl import app, flags

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import benchlib  # noqa: E402  (benchmarks/)
import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow_serving.apis import prediction_service_pb2_grpc  # noqa: E402

from avsdn_tf import cli, constants, fileio, hparams, records  # noqa: E402
from avsdn_tf.models import registry  # noqa: E402
from avsdn_tf.runs import RUN_FORMAT, RunDir  # noqa: E402
from export import export_model, warmup  # noqa: E402

flags.DEFINE_string(
    "model_dir", None, "A trained run to export and measure; default: untrained AVSDN, paper sizes."
)
flags.DEFINE_string(
    "visual_shape", "512", "Visual feature shape of the default model: 512 or 7,7,512."
)
flags.DEFINE_string(
    "workdir", None, "Where the run and the export are written; default: a temporary directory."
)
flags.DEFINE_integer("latency_requests", 200, "Batch-1 requests timed in process and over gRPC.")
flags.DEFINE_integer("rest_latency_requests", 100, "Batch-1 requests timed over REST.")
flags.DEFINE_integer("throughput_batches", 10, "Batch-64 requests timed in process and over gRPC.")
flags.DEFINE_integer("rest_throughput_batches", 5, "Batch-64 requests timed over REST.")
flags.DEFINE_integer("batch_size", 64, "Batch size of the throughput measurement.")
flags.DEFINE_integer("warmup_requests", 5, "Untimed requests before each measurement.")
flags.DEFINE_string(
    "output_json", None, "Also write the results here (default: WORKDIR/bench_serving.json)."
)
cli.define(*cli.THREAD_FLAGS)  # in process, the commands' thread rule unless given
FLAGS = flags.FLAGS

SEGMENTS = constants.NUM_SEGMENTS


def default_run(workdir, visual_shape):
    """A run directory as train writes it, holding an untrained AVSDN at the default (paper)
    sizes."""
    hp = hparams.HParams()
    data_dir, run = workdir / "data", RunDir(str(workdir / "run"))
    channels = visual_shape[-1]
    data_dir.mkdir(
        parents=True, exist_ok=True
    )  # holds only the normalisation statistics export needs
    fileio.write_json(
        str(data_dir / constants.NORMALIZATION_FILE),
        {
            "split": "train",
            "audio_mean": [0.0] * constants.AUDIO_DIM,
            "audio_std": [1.0] * constants.AUDIO_DIM,
            "visual_mean": [0.0] * channels,
            "visual_std": [1.0] * channels,
        },
    )
    tf.io.gfile.makedirs(os.path.dirname(run.best_checkpoint))
    registry.task_for(hp).build(constants.AUDIO_DIM, visual_shape).save(run.best_checkpoint)
    fileio.write_json(
        run.config,
        {
            "hparams": hp.to_dict(),
            "run_format": RUN_FORMAT,
            "data_dir": str(data_dir),
            "data": {
                "audio_dim": constants.AUDIO_DIM,
                "visual_shape": visual_shape,
                "num_segments": SEGMENTS,
            },
        },
    )
    return run.path


def features(batch, audio_dim, visual_shape, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((batch, SEGMENTS, audio_dim), dtype=np.float32),
        rng.standard_normal((batch, SEGMENTS, *visual_shape), dtype=np.float32),
    )


def measure(call, single, batch, latency_requests, throughput_batches, warmup_requests):
    """p50 / p99 latency (ms) of `call(single)` and videos/s of `call(batch)`."""
    for _ in range(warmup_requests):
        call(single)
        call(batch)
    latencies = []
    for _ in range(latency_requests):
        started = time.perf_counter()
        call(single)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(throughput_batches):
        call(batch)
    seconds = time.perf_counter() - started
    return {
        "p50_ms": 1e3 * float(np.percentile(latencies, 50)),
        "p99_ms": 1e3 * float(np.percentile(latencies, 99)),
        "latency_requests": latency_requests,
        "videos_per_s": throughput_batches * FLAGS.batch_size / seconds,
        "batch_ms": 1e3 * seconds / throughput_batches,
        "throughput_batches": throughput_batches,
    }


def start_server(export_base):
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tests" / "serving_test_server.py"),
            "--model_name",
            "avsdn",
            "--model_base_path",
            export_base,
            "--port",
            "0",
            "--rest_api_port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout], daemon=True
    ).start()
    line = lines.get(timeout=600)
    if not line.startswith("READY"):
        process.kill()
        raise SystemExit(f"test server did not start: {line!r}")
    ports = dict(item.split("=") for item in line.split()[1:])
    return process, int(ports["grpc"]), int(ports["rest"])


def main(argv):
    del argv
    tf.get_logger().setLevel("ERROR")
    intra, inter = cli.configure_threads()
    workdir = Path(FLAGS.workdir or tempfile.mkdtemp(prefix="avsdn_bench_serving_"))
    workdir.mkdir(parents=True, exist_ok=True)
    visual_shape = [int(d) for d in FLAGS.visual_shape.split(",")]
    model_dir = FLAGS.model_dir or default_run(workdir, visual_shape)
    export_base = str(workdir / "serving" / "avsdn")
    version_dir = export_model.export(model_dir, export_base, verbose=False)
    info = fileio.read_json(
        os.path.join(version_dir, "assets.extra", export_model.EXPORT_INFO_FILE)
    )
    audio_dim, visual_shape = info["audio_dim"], info["visual_shape"]
    print(
        f"model {info['model']} (audio {audio_dim}, visual {visual_shape}), exported to"
        f" {version_dir}"
    )
    single = features(1, audio_dim, visual_shape)
    batch = features(FLAGS.batch_size, audio_dim, visual_shape, seed=1)
    counts = dict(
        latency_requests=FLAGS.latency_requests,
        throughput_batches=FLAGS.throughput_batches,
        warmup_requests=FLAGS.warmup_requests,
    )
    results = {}

    serve = tf.saved_model.load(version_dir).signatures["serving_default"]
    probe = benchlib.RoundLoad([])
    results["in process"] = measure(
        lambda x: serve(audio=tf.constant(x[0]), visual=tf.constant(x[1]))["segment_probs"].numpy(),
        single,
        batch,
        **counts,
    )
    results["in process"]["load"] = load = probe.finish()
    print(
        f"in process: threads intra {intra or 'TF default'}, inter {inter or 'TF default'};"
        f" {benchlib.describe_load(load)}"
    )

    process, grpc_port, rest_port = start_server(export_base)
    try:
        options = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}", options=options) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

            def grpc_call(x):
                request = warmup.predict_request(
                    "avsdn", "serving_default", {"audio": x[0], "visual": x[1]}
                )
                response = stub.Predict(request, timeout=600)
                return tf.make_ndarray(response.outputs["segment_probs"])

            results["gRPC"] = measure(grpc_call, single, batch, **counts)

        connection = http.client.HTTPConnection("127.0.0.1", rest_port, timeout=600)

        def rest_predict(request):
            connection.request(
                "POST",
                "/v1/models/avsdn:predict",
                json.dumps(request),
                {"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200:
                raise SystemExit(f"REST request failed: {answer}")
            return np.asarray(answer["outputs"]["segment_probs"], np.float32)

        def rest_call(x):
            return rest_predict({"inputs": {"audio": x[0].tolist(), "visual": x[1].tolist()}})

        rest_counts = dict(
            latency_requests=FLAGS.rest_latency_requests,
            warmup_requests=FLAGS.warmup_requests,
            throughput_batches=FLAGS.rest_throughput_batches,
        )
        results["REST"] = measure(rest_call, single, batch, **rest_counts)

        def rest_examples_call(encoded):
            return rest_predict(
                {"signature_name": "predict_examples", "inputs": {"examples": encoded}}
            )

        def as_records(x):  # the client's encoding is part of the request's cost
            return lambda: rest_examples_call(
                [
                    {
                        "b64": (
                            base64.b64encode(
                                records.encode_video("v", 0, 0, 0, 0, a, v, np.zeros(SEGMENTS))
                            ).decode()
                        )
                    }
                    for a, v in zip(*x)
                ]
            )

        results["REST records"] = measure(
            lambda call: call(), as_records(single), as_records(batch), **rest_counts
        )
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=60)

    print(
        f"\n{'path':<12} {'batch 1 p50':>12} {'batch 1 p99':>12} {f'batch {FLAGS.batch_size}':>12} "
        f"{'videos/s':>10}   requests (batch 1 / batch {FLAGS.batch_size})"
    )
    for name, result in results.items():
        print(
            f"{name:<12} {result['p50_ms']:>9.2f} ms {result['p99_ms']:>9.2f} ms"
            f" {result['batch_ms']:>9.1f} ms {result['videos_per_s']:>10.0f}  "
            f" {result['latency_requests']} / {result['throughput_batches']}"
        )
    load = os.getloadavg()
    print(
        f"\n{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
        f"TensorFlow {tf.__version__}, Python {platform.python_version()}"
    )
    output = FLAGS.output_json or str(workdir / "bench_serving.json")
    fileio.write_json(
        output,
        {
            "model": info["model"],
            "audio_dim": audio_dim,
            "visual_shape": visual_shape,
            "segments": SEGMENTS,
            "batch_size": FLAGS.batch_size,
            "results": results,
            "cpus": os.cpu_count(),
            "load_average": list(load),
            "tensorflow": tf.__version__,
        },
    )
    print(f"results: {output}")


if __name__ == "__main__":
    app.run(main)
