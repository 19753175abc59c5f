"""SavedModel export: the command, both signatures against the Keras model at any length, bad
inputs,
saved_model_cli's view of the signatures (and the docs' table of them), warmup records, configs.

The tests marked slow share one trained and exported run (serving_testlib.exported); the rest
build small models in process.
"""

import errno
import os
import re
import shutil
import sys

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from avsdn_tf import constants, fileio, hparams, records
from avsdn_tf.errors import UserError
from avsdn_tf.models import backbones, registry, serving
from export import export_model, verify, warmup

from serving_testlib import ROOT, exported
from testlib import copy_with_damaged_shard, read_records

A, V = 16, [24]  # the tiny data set's feature sizes (conftest.tiny_config)


@pytest.fixture(scope="module")
def export(tmp_path_factory, tiny_vector_data):
    return exported(tmp_path_factory, tiny_vector_data)


@pytest.fixture(scope="module")
def loaded(export):
    return tf.saved_model.load(export.version_dir)


@pytest.fixture(scope="module")
def keras_models(export):
    trained = registry.load_model(
        os.path.join(export.run_dir, "checkpoints", "best.keras"), compile=False
    )
    hp = hparams.from_dict(fileio.read_json(os.path.join(export.run_dir, "config.json"))["hparams"])
    spec = serving.FeatureSpec.of(A, V, constants.class_names())
    return (
        backbones.segment_model(trained),
        registry.task_for(hp).variable_length_model(trained, A, V),
        spec,
    )


def val_videos(data_dir, count=6):
    serialized, videos = zip(*read_records(data_dir, "val", serialized=True)[:count])
    serialized = list(serialized)
    ids = [v[records.VIDEO_ID].decode() for v in videos]
    audio = np.stack([v[records.AUDIO] for v in videos])
    visual = np.stack([v[records.VISUAL] for v in videos])
    return ids, audio, visual, serialized


def encode(ids, audio, visual):
    return [
        records.encode_video(
            i,
            constants.NO_CATEGORY,
            0,
            0,
            constants.BACKGROUND,
            a,
            v,
            np.full(len(a), constants.BACKGROUND),
        )
        for i, a, v in zip(ids, audio, visual)
    ]


def readme_video_label(segment_probs):
    """The README's video-level label, written out for one video's [T, 29] probabilities:
    background (28) when no segment's label (its arg-max) is an event, otherwise the event class
    (0..27) with the highest time-averaged probability."""
    segment_probs = [list(map(float, row)) for row in segment_probs]
    labels = [row.index(max(row)) for row in segment_probs]
    if all(label == 28 for label in labels):
        return 28
    averages = [sum(row[k] for row in segment_probs) / len(segment_probs) for k in range(28)]
    return averages.index(max(averages))


def test_video_label_rule_on_hand_worked_videos():
    """serving.video_labels (which the signatures share) against cases worked out by hand."""
    probs = np.zeros((3, 2, 29), np.float32)
    probs[0, 0, [28, 3]] = 0.6, 0.4  # every segment background -> 28, though 3 and 5 score
    probs[0, 1, [28, 5]] = 0.7, 0.3
    probs[1, 0, [3, 28]] = 0.9, 0.1  # an event segment: the best event average, 3 (0.45)
    probs[1, 1, [28, 5]] = 0.7, 0.3
    probs[2, 0, [5, 3, 28]] = 0.5, 0.3, 0.2  # the segment says 5, the average says 3 (0.35 > 0.25)
    probs[2, 1, [28, 3]] = 0.6, 0.4
    assert serving.video_labels(probs).tolist() == [28, 3, 3]
    assert [readme_video_label(p) for p in probs] == [28, 3, 3]
    # A model's own segment labels decide whether there is an event (CMBS's decoding).
    own = np.array([[28, 7], [28, 28], [5, 28]])
    assert serving.video_labels(probs, own).tolist() == [3, 28, 3]


def assert_consistent(outputs, probs, class_names):
    """Outputs of either signature agree with segment probabilities `probs` from Keras."""
    np.testing.assert_allclose(
        outputs["segment_probs"].numpy(), probs, atol=serving.MATCH_TOLERANCE
    )
    labels = outputs["segment_labels"].numpy()
    np.testing.assert_array_equal(labels, probs.argmax(-1))
    assert [[n.decode() for n in row] for row in outputs["segment_label_names"].numpy()] == [
        [class_names[i] for i in row] for row in labels
    ]
    np.testing.assert_allclose(
        outputs["video_probs"].numpy(), probs.mean(1), atol=serving.MATCH_TOLERANCE
    )
    assert outputs["video_label"].numpy().tolist() == [readme_video_label(p) for p in probs]
    assert [n.decode() for n in outputs["video_label_name"].numpy()] == [
        class_names[i] for i in outputs["video_label"].numpy()
    ]


@pytest.mark.slow
def test_export_command_publishes_one_verified_version(export):
    assert sorted(os.listdir(export.export_base)) == ["1"]  # no temporary directory left behind
    for name in (
        "saved_model.pb",
        "variables",
        "batching_params.pbtxt",
        "assets.extra/tf_serving_warmup_requests",
        "assets.extra/avsdn_export.json",
    ):
        assert os.path.exists(os.path.join(export.version_dir, name)), name
    assert (
        "verified serving_default@7, predict_examples@7, serving_default@10, predict_examples@10, "
        "predict_examples@mixed, 3 warmup requests" in export.command_output
    )
    # Quiet: none of the INFO lines SavedModel writing logs (renamed inputs, sharding, fingerprint)
    info_lines = [
        line for line in export.command_stderr.splitlines() if re.match(r"I\d{4} |INFO:", line)
    ]
    assert info_lines == [], export.command_stderr
    info = fileio.read_json(os.path.join(export.version_dir, "assets.extra", "avsdn_export.json"))
    assert info["model"] == "avsdn" and info["audio_dim"] == A and info["visual_shape"] == V
    assert info["verification"]["max_difference"] <= serving.MATCH_TOLERANCE


@pytest.mark.slow
def test_both_signatures_match_the_keras_model_at_ten_and_other_lengths(
    export, loaded, keras_models
):
    trained, variable, spec = keras_models
    ids, audio, visual, serialized = val_videos(export.data_dir)
    assert audio.shape[1] == 10
    expected = serving.keras_predict(trained, audio, visual)  # the trained, unrolled-length model
    serve, serve_examples = (
        loaded.signatures["serving_default"],
        loaded.signatures["predict_examples"],
    )
    assert_consistent(
        serve(audio=tf.constant(audio), visual=tf.constant(visual)), expected, spec.class_names
    )
    outputs = serve_examples(examples=tf.constant(serialized))  # the data set's own records
    assert_consistent(outputs, expected, spec.class_names)
    assert [i.decode() for i in outputs["video_id"].numpy()] == ids
    assert outputs["num_segments"].numpy().tolist() == [10] * len(ids)
    np.testing.assert_allclose(serving.keras_predict(variable, audio, visual), expected, atol=1e-6)
    for length in (4, 13):  # shorter and longer than training's 10 segments
        a = np.concatenate([audio, audio], axis=1)[:, :length]
        v = np.concatenate([visual, visual], axis=1)[:, :length]
        expected = serving.keras_predict(variable, a, v)
        assert_consistent(
            serve(audio=tf.constant(a), visual=tf.constant(v)), expected, spec.class_names
        )
        outputs = serve_examples(examples=tf.constant(encode(ids, a, v)))
        assert_consistent(outputs, expected, spec.class_names)
        assert outputs["num_segments"].numpy().tolist() == [length] * len(ids)


@pytest.mark.slow
def test_predict_examples_runs_mixed_lengths_each_at_its_own_length(export, loaded, keras_models):
    _, variable, spec = keras_models
    ids, audio, visual, serialized = val_videos(export.data_dir, 2)
    short = encode(ids[1:], audio[1:, :6], visual[1:, :6])
    outputs = loaded.signatures["predict_examples"](examples=tf.constant([serialized[0], short[0]]))
    assert outputs["num_segments"].numpy().tolist() == [10, 6]
    labels = outputs["segment_labels"].numpy()
    assert labels.shape == (2, 10) and (labels[1, 6:] == -1).all()
    assert [n.decode() for n in outputs["segment_label_names"].numpy()[1, 6:]] == [""] * 4
    for row, (a, v) in enumerate([(audio[:1], visual[:1]), (audio[1:, :6], visual[1:, :6])]):
        expected = serving.keras_predict(variable, a, v)
        length = a.shape[1]
        np.testing.assert_allclose(
            outputs["segment_probs"].numpy()[row, :length],
            expected[0],
            atol=serving.MATCH_TOLERANCE,
        )
        assert outputs["video_label"].numpy()[row] == readme_video_label(expected[0])


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, needle",
    [
        ("nan_audio", "audio: expected finite values"),
        ("inf_visual", "visual: expected finite values"),
        ("time_mismatch", "audio and visual: expected the same [batch, time]"),
        ("no_segments", "expected time >= 1"),
    ],
)
def test_serving_default_rejects_bad_values_naming_the_input(export, loaded, case, needle):
    _, audio, visual, _ = val_videos(export.data_dir, 2)
    if case == "nan_audio":
        audio[0, 3, 2] = np.nan
    elif case == "inf_visual":
        visual[1, 0, 0] = -np.inf
    elif case == "time_mismatch":
        visual = visual[:, :7]
    else:
        audio, visual = audio[:, :0], visual[:, :0]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(needle)):
        loaded.signatures["serving_default"](audio=tf.constant(audio), visual=tf.constant(visual))


@pytest.mark.slow
def test_predict_examples_rejects_bad_records_naming_the_feature(export, loaded):
    ids, audio, visual, _ = val_videos(export.data_dir, 1)
    wide = records.encode_video("x", 0, 0, 0, 0, np.zeros((10, A + 1)), visual[0], np.zeros(10))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="Feature list 'audio' has an unexpected number of values",
    ):
        loaded.signatures["predict_examples"](examples=tf.constant([wide]))
    audio[0, 0, 0] = np.inf
    with pytest.raises(
        tf.errors.InvalidArgumentError, match="feature list 'audio': expected finite"
    ):
        loaded.signatures["predict_examples"](examples=tf.constant(encode(ids, audio, visual)))
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures["predict_examples"](examples=tf.constant([b"not a record"]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="found an empty batch"):
        loaded.signatures["predict_examples"](examples=tf.constant([], tf.string))


def _signatures_shown(saved_model_cli):
    """{signature: {"method": ..., (kind, name): (dtype, shape)}} from `saved_model_cli show
    --all`."""
    result = saved_model_cli.result()  # started in the background when the export was made
    assert result.returncode == 0, result.stderr[-2000:]
    found = {}
    for block in re.split(r"\nsignature_def\['", result.stdout)[1:]:
        name = block.split("'", 1)[0]
        tensors = re.findall(
            r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: ([^\n]+)", block
        )
        method = re.search(r"Method name is: ([^\n]*)", block).group(1).strip()
        found[name] = {
            "method": method,
            **{
                (kind[:-1], tensor): (dtype, shape.strip())
                for kind, tensor, dtype, shape in tensors
            },
        }
    return found


def _documented_signatures():
    """The signature table in README.md, with the tiny model's A and V filled in."""
    rows = {}
    with open(os.path.join(ROOT, "README.md")) as handle:
        for line in handle:
            cells = [cell.strip().strip("`") for cell in line.strip().strip("|").split("|")]
            if len(cells) == 5 and cells[0] in serving.SIGNATURES:
                shape = cells[4].replace("*V", ", ".join(map(str, V))).replace("A", str(A))
                rows.setdefault(cells[0], {})[(cells[1], cells[2])] = (cells[3], shape)
    return rows


@pytest.mark.slow
def test_saved_model_cli_shows_the_documented_signatures(export):
    assert export.saved_model_cli.command[0] == os.path.join(
        os.path.dirname(sys.executable), "saved_model_cli"
    )
    assert export.saved_model_cli.command[1:] == ["show", "--all", "--dir", export.version_dir]
    shown = _signatures_shown(export.saved_model_cli)
    expected = {
        "serving_default": {
            ("input", "audio"): ("DT_FLOAT", f"(-1, -1, {A})"),
            ("input", "visual"): ("DT_FLOAT", "(-1, -1, 24)"),
            ("output", "segment_probs"): ("DT_FLOAT", "(-1, -1, 29)"),
            ("output", "segment_labels"): ("DT_INT32", "(-1, -1)"),
            ("output", "segment_label_names"): ("DT_STRING", "(-1, -1)"),
            ("output", "video_probs"): ("DT_FLOAT", "(-1, 29)"),
            ("output", "video_label"): ("DT_INT32", "(-1)"),
            ("output", "video_label_name"): ("DT_STRING", "(-1)"),
        },
    }
    expected["predict_examples"] = {
        ("input", "examples"): ("DT_STRING", "(-1)"),
        **{key: value for key, value in expected["serving_default"].items() if key[0] == "output"},
        ("output", "video_id"): ("DT_STRING", "(-1)"),
        ("output", "num_segments"): ("DT_INT32", "(-1)"),
    }
    for name, tensors in expected.items():
        assert shown[name].pop("method") == "tensorflow/serving/predict"
        assert shown[name] == tensors, name
    assert _documented_signatures() == expected  # the README table says what the model has


@pytest.mark.slow
def test_warmup_records_are_prediction_logs_the_model_answers(export, loaded):
    logs = warmup.read(warmup.warmup_path(export.version_dir))
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default",
        "serving_default",
        "predict_examples",
    ]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "avsdn"
        inputs = warmup.request_inputs(request)
        outputs = loaded.signatures[request.model_spec.signature_name](
            **{key: tf.constant(value) for key, value in inputs.items()}
        )
        batch = len(next(iter(inputs.values())))
        assert outputs["segment_probs"].shape == (batch, 10, constants.NUM_CLASSES)
        np.testing.assert_allclose(outputs["segment_probs"].numpy().sum(-1), 1.0, atol=1e-5)


def _batching_parameters_class():
    """tensorflow.serving.BatchingParameters (session_bundle_config.proto, not in the pip
    package)."""
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(
        name="batching.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = proto.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, name, kind in [
        (1, "max_batch_size", "Int64Value"),
        (2, "batch_timeout_micros", "Int64Value"),
        (3, "max_enqueued_batches", "Int64Value"),
        (4, "num_batch_threads", "Int64Value"),
        (5, "thread_pool_name", "StringValue"),
    ]:
        message.field.add(
            name=name,
            number=number,
            type=field.TYPE_MESSAGE,
            label=field.LABEL_OPTIONAL,
            type_name=f".google.protobuf.{kind}",
        )
    message.field.add(
        name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=7,
        type=field.TYPE_BOOL,
        label=field.LABEL_OPTIONAL,
    )
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


@pytest.mark.slow
def test_serving_configs_parse_as_tf_serving_protos(export):
    with open(export_model.MODELS_CONFIG_TEMPLATE) as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    models_listed = config.model_config_list.config
    assert [m.name for m in models_listed] == ["avsdn", "av_att"]
    assert all(
        os.path.isabs(m.base_path) and m.model_platform == "tensorflow" for m in models_listed
    )
    with open(export_model.BATCHING_TEMPLATE) as handle:
        template = handle.read()
    parameters = text_format.Parse(template, _batching_parameters_class()())
    assert parameters.max_batch_size.value == 64 and not parameters.pad_variable_length_inputs
    assert parameters.num_batch_threads.value >= 1 and parameters.batch_timeout_micros.value > 0
    with open(os.path.join(export.version_dir, export_model.PER_MODEL_BATCHING_FILE)) as handle:
        assert handle.read() == template


@pytest.mark.slow
def test_a_failed_export_leaves_existing_versions_untouched(export, tmp_path, monkeypatch):
    base = str(tmp_path / "avsdn")
    shutil.copytree(export.version_dir, os.path.join(base, "1"))
    os.makedirs(os.path.join(base, "7"))
    assert export_model.next_version(base) == 8
    before = sorted(os.listdir(base))
    write_reference, staged = serving.SegmentServing.write_reference, []

    def wrong_expectations(self, directory, cases):  # as if the SavedModel computed otherwise
        reference = write_reference(self, directory, cases)
        path = os.path.join(directory, "trained_length.npz")
        arrays = dict(np.load(path, allow_pickle=False))
        arrays["expected"] = arrays["expected"] + 1e-3
        np.savez(path, **arrays)
        return reference

    def verify_here(saved_model_dir, reference_dir):
        # export.verify's check, run in this process to spare a TensorFlow start-up (the
        # fresh-process path itself runs in the export fixture); failures are reported as
        # export_model reports them.
        assert os.path.exists(
            os.path.join(saved_model_dir, "saved_model.pb")
        )  # fully written, then rejected
        staged.append(saved_model_dir)
        try:
            return verify.verify(saved_model_dir, reference_dir)
        except verify.Mismatch as error:
            raise UserError(
                f"verification of the SavedModel in a fresh process failed: {error}"
            ) from None

    def copy_of_the_export(
        graph, path
    ):  # the same SavedModel the fixture's export wrote, without re-tracing it
        shutil.copytree(export.version_dir, path)

    monkeypatch.setattr(serving.ServingGraph, "write", copy_of_the_export)
    monkeypatch.setattr(serving.SegmentServing, "write_reference", wrong_expectations)
    monkeypatch.setattr(export_model, "verify_in_fresh_process", verify_here)
    with pytest.raises(
        UserError,
        match=r"fresh process failed: serving_default at 10 segments: segment_probs "
        r"differ from the Keras model's by 1\.0\de-03",
    ):
        export_model.export(export.run_dir, base, verbose=False)
    assert staged and os.path.basename(staged[0]).startswith("tmp-export-8-")
    assert sorted(os.listdir(base)) == before
    with pytest.raises(UserError, match="already exists"):
        export_model.export(export.run_dir, base, version=1, verbose=False)
    with pytest.raises(UserError, match="run directory not found"):
        export_model.export(str(tmp_path / "missing"), base, verbose=False)
    assert sorted(os.listdir(base)) == before


@pytest.mark.slow  # the shared export (serving_testlib.exported)
@pytest.mark.parametrize(
    "failing, error, found",
    [
        (
            "savedmodel",
            OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
            "expected free space to write it, found No space left on device (ENOSPC)",
        ),
        (
            "batching",
            tf.errors.PermissionDeniedError(None, None, "x; Permission denied"),
            "expected permission to write it, found Permission denied (EACCES)",
        ),
    ],
)
def test_a_failing_write_names_the_version_and_leaves_nothing(
    export, tmp_path, monkeypatch, failing, error, found
):
    base = str(tmp_path / "avsdn")
    shutil.copytree(export.version_dir, os.path.join(base, "1"))

    def write(graph, path):  # the fixture's SavedModel, half of it when the disk fills up
        shutil.copytree(export.version_dir, path)
        if failing == "savedmodel":
            os.remove(os.path.join(path, "saved_model.pb"))
            raise error

    def copy(source, destination):
        raise error

    monkeypatch.setattr(serving.ServingGraph, "write", write)
    if failing == "batching":
        monkeypatch.setattr(export_model, "_copy", copy)
    with pytest.raises(UserError) as caught:
        export_model.export(export.run_dir, base, verbose=False)
    assert str(caught.value) == f"{os.path.join(base, '2')}: {found}"
    assert sorted(os.listdir(base)) == ["1"]  # the staging directory is gone


@pytest.mark.slow  # the shared export (serving_testlib.exported)
def test_a_damaged_record_read_for_verification_names_the_shard(export, tmp_path):
    data_dir, shard = copy_with_damaged_shard(
        export.data_dir, tmp_path / "data", "val-00000-of-00002.tfrecord", "overwrite"
    )
    base = tmp_path / "avsdn"
    with pytest.raises(UserError) as caught:
        export_model.export(export.run_dir, str(base), data_dir=data_dir, verify_videos=16)
    assert str(caught.value).startswith(
        f"{shard}: expected a readable TFRecord shard, found a corrupted record at offset"
    )
    assert not base.exists()


@pytest.mark.parametrize(
    "model, visual_shape, supervision",
    [
        ("av_att", [3, 3, 8], "full"),  # attention over maps, unrolled BiLSTMs
        ("avsdn_label_guided", [12], "weak"),  # extra heads on the training model
    ],
)
def test_unrolled_fixed_length_models_rebuild_for_any_length(model, visual_shape, supervision):
    hp = hparams.HParams(
        model=model,
        supervision=supervision,
        encoder_units=6,
        fusion_units=6,
        lstm_units=5,
        classifier_units=7,
        attention_units=9,
        unroll=True,
    )
    trained = registry.task_for(hp).build(A, visual_shape, num_segments=10)
    rebuilt = registry.task_for(hp).variable_length_model(trained, A, visual_shape)
    assert rebuilt.inputs[0].shape[1] is None
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(3, 10, A)).astype(np.float32)
    visual = rng.normal(size=(3, 10, *visual_shape)).astype(np.float32)
    inputs = {"audio": audio, "visual": visual}
    np.testing.assert_allclose(rebuilt(inputs), backbones.segment_model(trained)(inputs), atol=1e-6)
    assert rebuilt({"audio": audio[:, :3], "visual": visual[:, :3]}).shape == (
        3,
        3,
        constants.NUM_CLASSES,
    )


def test_predict_examples_reshapes_visual_maps(tmp_path):
    hp = hparams.HParams(model="avsdn", encoder_units=6, fusion_units=6)
    shape = [2, 2, 5]
    task = registry.task_for(hp)
    rebuilt = task.variable_length_model(task.build(A, shape), A, shape)
    rng = np.random.default_rng(1)
    statistics = {
        "audio_mean": rng.normal(size=A),
        "audio_std": rng.uniform(0.5, 2, A),
        "visual_mean": rng.normal(size=5),
        "visual_std": rng.uniform(0.5, 2, 5),
    }
    backbones.set_statistics(rebuilt, statistics)
    spec = serving.FeatureSpec.of(A, shape, constants.class_names())
    graph = serving.ServingGraph(rebuilt, spec)
    audio = rng.normal(size=(2, 5, A)).astype(np.float32)
    visual = rng.normal(size=(2, 5, *shape)).astype(np.float32)
    expected = serving.keras_predict(rebuilt, audio, visual)
    outputs = tf.function(graph.serve_examples)(tf.constant(encode(["a", "b"], audio, visual)))
    assert_consistent(outputs, expected, spec.class_names)
    # The model normalises inside: the served probabilities are those of the normalised inputs.
    standardized = {
        "audio": (audio - statistics["audio_mean"]) / statistics["audio_std"],
        "visual": (visual - statistics["visual_mean"]) / statistics["visual_std"],
    }
    backbones.set_statistics(
        rebuilt,
        {
            key: np.zeros_like(v) if key.endswith("mean") else np.ones_like(v)
            for key, v in statistics.items()
        },
    )
    np.testing.assert_allclose(
        expected, rebuilt({k: v.astype(np.float32) for k, v in standardized.items()}), atol=1e-5
    )
    with pytest.raises(UserError, match="expected 29 names, found 30"):
        serving.FeatureSpec.of(A, shape, constants.class_names() + ["extra"])


@pytest.mark.slow  # the shared export (serving_testlib.exported)
def test_truncated_checkpoint_is_reported_as_truncated_not_missing(export, tmp_path):

    run = tmp_path / "run"
    shutil.copytree(export.run_dir, run)
    best = run / "checkpoints" / "best.keras"
    best.write_bytes(best.read_bytes()[: best.stat().st_size // 2])
    with pytest.raises(UserError, match="best.keras.*truncated or corrupt file of"):
        registry.load_run(str(run))
