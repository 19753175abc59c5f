"""The export behind a TF Serving stand-in (tests/serving_test_server.py) on 127.0.0.1: the client
over
REST and gRPC, TF Serving's REST and gRPC APIs, and the one-line errors users see.
"""

import base64
import io
import json
import os
import sys
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

from avsdn_tf import constants, records
from avsdn_tf.errors import UserError
from export import client, warmup

from serving_testlib import Background, exported
from testlib import command_env, event_runs, free_ports, read_records

pytestmark = pytest.mark.slow  # a trained run, its export and a server process (serving_testlib)

A = 16  # the tiny data set's audio size (conftest.tiny_config)


@pytest.fixture(scope="module")
def export(tmp_path_factory, tiny_vector_data):
    return exported(tmp_path_factory, tiny_vector_data)


@pytest.fixture(scope="module")
def server(export):
    """The test server (started in the background with the export) serving it as "avsdn" and
    "av_att"."""
    if not export.server.wait_ready():
        pytest.fail(f"the test server did not start: {export.server.log()[-3000:]}")
    yield export.server
    export.server.stop()


@pytest.fixture(scope="module")
def client_command(server, val_file):
    """`python -m export.client` naming a model the server lacks, started now and checked by its
    test."""
    env = command_env()
    del env["TF_CPP_MIN_LOG_LEVEL"]  # as users run it: the client keeps TF's C++ logging quiet
    return Background(
        [
            sys.executable,
            "-m",
            "export.client",
            "--server",
            server.rest,
            "--model_name",
            "avsdn_v2",
            "--data",
            val_file,
        ],
        env=env,
    )


@pytest.fixture(scope="module")
def loaded(export):
    return tf.saved_model.load(export.version_dir)


@pytest.fixture(scope="module")
def val_file(export):
    return sorted(tf.io.gfile.glob(os.path.join(export.data_dir, "val-*.tfrecord")))[0]


def post(server, path, body):
    request = urllib.request.Request(
        f"http://{server.rest}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def get(server, path):
    try:
        with urllib.request.urlopen(f"http://{server.rest}{path}", timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def features(length, batch=2, seed=0, audio_dim=A):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, length, audio_dim)).astype(np.float32),
        rng.normal(size=(batch, length, 24)).astype(np.float32),
    )


@pytest.mark.parametrize("use_grpc, model", [(False, "avsdn"), (True, "av_att")])
def test_client_prints_per_second_labels_and_intervals(
    server, loaded, val_file, tmp_path, use_grpc, model
):
    out = io.StringIO()
    output_json = str(tmp_path / "predictions.json")
    videos = client.run(
        server.grpc if use_grpc else server.rest,
        val_file,
        model=model,
        use_grpc=use_grpc,
        batch_size=5,
        output_json=output_json,
        out=out,
    )
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(val_file)]
    expected = loaded.signatures["predict_examples"](examples=tf.constant(serialized))
    assert [v["video_id"] for v in videos] == [i.decode() for i in expected["video_id"].numpy()]
    assert [v["segment_labels"] for v in videos] == expected["segment_labels"].numpy().tolist()
    assert [v["video_label"] for v in videos] == expected["video_label"].numpy().tolist()
    names = constants.class_names()
    text = out.getvalue()
    directory, shard = os.path.split(val_file)
    truths = [video[records.LABEL].tolist() for video in read_records(directory, shard=shard)]
    for video, truth in zip(videos, truths, strict=True):
        assert video["truth_labels"] == truth
        events = ", ".join(
            f"{names[c]} {s}-{e} s" for c, s, e in event_runs(video["segment_labels"])
        )
        block = [f"video {video['video_id']} (10 s): {names[video['video_label']]}"]
        block += [f"{t:>8}  {names[label]}" for t, label in enumerate(video["segment_labels"])]
        block += [f"  events: {events or 'none'}"]
        position = text.index(block[0])
        for line in block[1:]:
            position = text.index(line, position)  # in order, each prediction on its own line
    assert text.rstrip().splitlines()[-1].startswith(f"{len(serialized)} videos from {model}")
    assert len(json.load(open(output_json))["videos"]) == len(serialized)


def test_client_sends_npz_features_to_serving_default(server, loaded, tmp_path):
    audio, visual = features(7, batch=3)  # not the training length
    np.savez(tmp_path / "three.npz", audio=audio, visual=visual, video_id=np.array(["a", "b", "c"]))
    videos = client.run(server.grpc, str(tmp_path / "three.npz"), use_grpc=True, out=io.StringIO())
    expected = loaded.signatures["serving_default"](
        audio=tf.constant(audio), visual=tf.constant(visual)
    )
    assert [v["video_id"] for v in videos] == ["a", "b", "c"]
    assert [v["segment_labels"] for v in videos] == expected["segment_labels"].numpy().tolist()
    np.savez(tmp_path / "one.npz", audio=audio[0, :5], visual=visual[0, :5])  # one video [T, A]
    (video,) = client.run(server.rest, str(tmp_path / "one.npz"), out=io.StringIO())
    expected = loaded.signatures["serving_default"](
        audio=tf.constant(audio[:1, :5]), visual=tf.constant(visual[:1, :5])
    )
    assert (
        video["num_segments"] == 5
        and video["segment_labels"] == expected["segment_labels"].numpy()[0].tolist()
    )


@pytest.mark.parametrize("split", [None, "val"])
def test_client_scores_one_split_of_a_data_directory_default_test(server, loaded, export, split):
    name = split or "test"
    shards = sorted(tf.io.gfile.glob(os.path.join(export.data_dir, f"{name}-*.tfrecord")))
    serialized = [r.numpy() for shard in shards for r in tf.data.TFRecordDataset(shard)]
    out = io.StringIO()
    videos = client.run(server.rest, export.data_dir, batch_size=7, out=out, split=split)
    expected = loaded.signatures["predict_examples"](examples=tf.constant(serialized))
    assert [v["video_id"] for v in videos] == [i.decode() for i in expected["video_id"].numpy()]
    assert [v["segment_labels"] for v in videos] == expected["segment_labels"].numpy().tolist()
    truth = [records.decode_video(r, A, [24])[records.LABEL] for r in serialized]
    # Frame accuracy written out: segments whose served label is the record's, over all segments.
    right = sum(int(np.sum(np.asarray(t) == v["segment_labels"])) for t, v in zip(truth, videos))
    accuracy = right / sum(len(t) for t in truth)
    assert out.getvalue().rstrip().splitlines()[-1] == (
        f"{len(serialized)} videos ({name} split) from avsdn at {server.rest} (REST); frame"
        f" accuracy against the records' labels: {accuracy:.4f}"
    )


def test_client_errors_are_one_clear_line(server, val_file, tmp_path):
    wide = tmp_path / "wide.npz"
    audio, visual = features(10, batch=1, audio_dim=A + 1)
    np.savez(wide, audio=audio, visual=visual)
    (port,) = free_ports()
    cases = [
        (
            dict(server=f"127.0.0.1:{port}", data=val_file),
            rf"cannot reach TF Serving at 127.0.0.1:{port} over REST",
        ),
        (
            dict(server=f"127.0.0.1:{port}", data=val_file, use_grpc=True),
            rf"cannot reach TF Serving at 127.0.0.1:{port} over gRPC",
        ),
        (
            dict(server=server.rest, data=val_file, model="nope"),
            r"has no model 'nope' \(Servable not found",
        ),
        (
            dict(server=server.grpc, data=val_file, model="nope", use_grpc=True),
            r"has no model 'nope'",
        ),
        (dict(server=server.rest, data=val_file, version=9), r"has no model 'avsdn' version 9"),
        (
            dict(server=server.rest, data=str(wide)),
            r"rejected the input from .*wide.npz: assertion failed: \[audio: expected float32 of"
            r" shape "
            r"\[batch, time, 16\], found shape\] \[1 10 17\]$",
        ),
        (
            dict(server=server.grpc, data=str(wide), use_grpc=True),
            r"rejected the input .*\[1 10 17\]$",
        ),
        (dict(server=server.rest, data=str(tmp_path / "missing.tfrecord")), r"no such file"),
        (dict(server=server.rest, data=str(wide) + ".npy"), r"no such file"),
    ]
    for kwargs, message in cases:
        with pytest.raises(UserError, match=message) as error:
            client.run(**kwargs, out=io.StringIO())
        assert "\n" not in str(error.value), str(error.value)


def test_client_command_exits_2_with_one_line_on_stderr(server, client_command):
    result = client_command.result()
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: the server at {server.rest} has no model 'avsdn_v2' (Servable not found for"
        " request: Latest(avsdn_v2))"
    ]


def test_rest_api_row_and_columnar_formats(server, loaded):
    audio, visual = features(6)
    status, rows = post(
        server,
        "/v1/models/avsdn:predict",
        {"instances": [{"audio": a.tolist(), "visual": v.tolist()} for a, v in zip(audio, visual)]},
    )
    assert status == 200 and len(rows["predictions"]) == 2
    status, columns = post(
        server,
        "/v1/models/avsdn/versions/1:predict",
        {
            "signature_name": "serving_default",
            "inputs": {"audio": audio.tolist(), "visual": visual.tolist()},
        },
    )
    assert status == 200
    expected = loaded.signatures["serving_default"](
        audio=tf.constant(audio), visual=tf.constant(visual)
    )
    np.testing.assert_allclose(
        columns["outputs"]["segment_probs"], expected["segment_probs"].numpy(), atol=1e-6
    )
    for i, row in enumerate(rows["predictions"]):
        assert set(row) == set(columns["outputs"])
        assert row["segment_label_names"] == columns["outputs"]["segment_label_names"][i]
        assert row["video_label"] == columns["outputs"]["video_label"][i]
    record = records.encode_video("clip", 0, 0, 0, 0, audio[0], visual[0], np.zeros(6))
    status, answer = post(
        server,
        "/v1/models/avsdn:predict",
        {
            "signature_name": "predict_examples",
            "instances": [{"b64": base64.b64encode(record).decode()}],
        },
    )
    assert status == 200 and answer["predictions"][0]["video_id"] == "clip"
    assert (
        answer["predictions"][0]["segment_labels"] == expected["segment_labels"].numpy()[0].tolist()
    )


def _saved_model_error(loaded, audio, visual):
    """The message of the SavedModel's own check (tf.saved_model.load, no server) on an input."""
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        loaded.signatures["serving_default"](audio=tf.constant(audio), visual=tf.constant(visual))
    return error.value.message


def test_rest_api_metadata_and_the_models_checks(server, loaded):
    """Over REST the export's signatures and its input checks: the server passes on what the
    SavedModel itself (tf.saved_model.load) declares and refuses."""
    status, metadata = get(server, "/v1/models/avsdn/metadata")
    signature_defs = metadata["metadata"]["signature_def"]["signature_def"]
    served = set(signature_defs) - {"__saved_model_init_op"}  # TF Serving lists it too
    assert status == 200 and served == set(loaded.signatures)
    for name, signature in loaded.signatures.items():
        inputs = signature.structured_input_signature[1]
        shown = signature_defs[name]["inputs"]
        assert {key: shown[key]["dtype"] for key in shown} == {
            key: types_pb2.DataType.Name(spec.dtype.as_datatype_enum)
            for key, spec in inputs.items()
        }
        assert set(signature_defs[name]["outputs"]) == set(signature.structured_outputs)
    audio, visual = features(4, batch=1)
    cases = [
        (
            audio[..., :-1],
            visual,
            "audio: expected float32 of shape [batch, time, 16], found shape] [1 4 15]",
        ),
        (
            audio[0],
            visual,
            "audio: expected float32 of shape [batch, time, 16], found shape] [4 16]",
        ),
        (np.full_like(audio, np.nan), visual, "audio: expected finite values"),
        (audio, visual[:, :3], "audio and visual: expected the same [batch, time]"),
    ]
    for bad_audio, bad_visual, message in cases:
        assert message in _saved_model_error(loaded, bad_audio, bad_visual)
        body = {"inputs": {"audio": bad_audio.tolist(), "visual": bad_visual.tolist()}}
        status, answer = post(server, "/v1/models/avsdn:predict", body)
        assert status == 400 and message in answer["error"], (message, answer)


def test_grpc_prediction_service(server, loaded):
    """Over gRPC the export's signature metadata, outputs and input checks, each compared with
    the SavedModel itself (tf.saved_model.load)."""
    channel = grpc.insecure_channel(server.grpc)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = stub.GetModelMetadata(
        get_model_metadata_pb2.GetModelMetadataRequest(
            model_spec={"name": "avsdn"}, metadata_field=["signature_def"]
        ),
        timeout=60,
    )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    audio_info = signature_map.signature_def["serving_default"].inputs["audio"]
    declared = loaded.signatures["serving_default"].structured_input_signature[1]["audio"]
    assert (
        [d.size for d in audio_info.tensor_shape.dim]
        == [-1 if size is None else size for size in declared.shape]
        == [-1, -1, A]
    )
    audio, visual = features(12, batch=3)
    expected = loaded.signatures["serving_default"](
        audio=tf.constant(audio), visual=tf.constant(visual)
    )
    request = warmup.predict_request(
        "avsdn", "serving_default", {"audio": audio, "visual": visual}, version=1
    )
    answer = stub.Predict(request, timeout=60)
    assert set(answer.outputs) == set(expected)
    np.testing.assert_allclose(
        tf.make_ndarray(answer.outputs["segment_probs"]),
        expected["segment_probs"].numpy(),
        atol=1e-6,
    )
    for name in ("segment_labels", "video_label", "video_label_name"):
        np.testing.assert_array_equal(tf.make_ndarray(answer.outputs[name]), expected[name].numpy())
    bad = [
        (
            audio[0],
            visual,
            "audio: expected float32 of shape [batch, time, 16], found shape] [12 16]",
        ),
        (
            audio,
            visual[..., :5],
            "visual: expected float32 of shape [batch, time, 24], found shape] [3 12 5]",
        ),
    ]
    for bad_audio, bad_visual, message in bad:
        assert message in _saved_model_error(loaded, bad_audio, bad_visual)
        request = warmup.predict_request(
            "avsdn", "serving_default", {"audio": bad_audio, "visual": bad_visual}
        )
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request, timeout=60)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in error.value.details(), error.value.details()
    channel.close()
