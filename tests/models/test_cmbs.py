"""CMBS: exactness against a PyTorch reference with the authors' names, losses, decoding, import.

The reference (cmbs_torch_reference.py) was checked against the authors' own modules
(marmot-xy/CMBS, run in a scratch folder): same state_dict keys and shapes, same outputs.
"""

import numpy as np
import pytest
import torch

from avsdn_tf.errors import UserError
from avsdn_tf.models import cmbs
from avsdn_tf.models.cmbs import decoding, losses

import cmbs_torch_reference as reference

TOLERANCE = 1e-5
VISUAL_SHAPE = (7, 7, 512)


def _reference(supervision, seed):
    torch.manual_seed(seed)
    model = reference.supv_main_model() if supervision == "full" else reference.weak_main_model()
    return model.eval()


def _save(state, path, prefix="module."):
    torch.save({prefix + key: value for key, value in state.items()}, path)
    return str(path)


@pytest.fixture(scope="module", params=["full", "weak"])
def pair(request, tmp_path_factory):
    """(supervision, torch reference, Keras model with its weights imported, state_dict file)."""
    supervision = request.param
    torch_model = _reference(supervision, seed=3)
    # The authors' scripts save DataParallel's state_dict, in double precision.
    state = {key: value.double() for key, value in torch_model.state_dict().items()}
    path = _save(state, tmp_path_factory.mktemp("cmbs") / f"{supervision}.pth.tar")
    model = cmbs.build(128, VISUAL_SHAPE, None, supervision)
    cmbs.import_state_dict(model, path, supervision)
    return supervision, torch_model, model, path


def _inputs(steps, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    audio = rng.random((batch, steps, 128), dtype=np.float32)
    visual = rng.random((batch, steps, *VISUAL_SHAPE), dtype=np.float32)
    return audio, visual


def _torch_outputs(supervision, torch_model, audio, visual):
    with torch.no_grad():
        out = torch_model(torch.from_numpy(visual), torch.from_numpy(audio))
    if supervision == "full":  # time-first [T, B, 1] per-segment outputs
        is_event, event, gate, av_score = out
        return {
            "is_event": is_event[:, :, 0].T,
            "event_logits": event,
            "gate": gate[:, :, 0].T,
            "av_score": av_score,
        }
    return dict(zip(cmbs.WEAK_OUTPUTS, out))


@pytest.mark.parametrize("steps", [10, 7])
def test_imported_weights_give_the_reference_outputs(pair, steps):
    supervision, torch_model, model, _ = pair
    audio, visual = _inputs(steps)
    expected = _torch_outputs(supervision, torch_model, audio, visual)
    found = model({"audio": audio, "visual": visual}, training=False)
    assert set(found) == set(expected)
    for name, value in expected.items():
        got = np.asarray(found[name])
        assert got.shape == tuple(value.shape), name
        difference = np.max(np.abs(got - value.numpy()))
        assert difference < TOLERANCE, (supervision, steps, name, difference)
    # The decodings agree too (the authors' rule applied to the torch outputs).
    labels = np.asarray(decoding.labels(found, supervision))
    scores = expected["is_event"] if supervision == "full" else expected["gate"]
    logits = expected["event_logits"] if supervision == "full" else expected["raw_logits"]
    classes = logits.argmax(-1)
    theirs = np.where(torch.sigmoid(scores).numpy() > 0.5, classes.numpy()[:, None], 28)
    np.testing.assert_array_equal(labels, theirs)


def test_a_short_video_averages_all_its_segments():
    scores = np.array([[[1.0, 5.0], [3.0, -1.0], [2.0, 0.0]]], np.float32)  # [1, 3, 2]
    from avsdn_tf.models.cmbs.layers import TopKTemporalMean

    np.testing.assert_allclose(TopKTemporalMean(4)(scores), [[2.0, 4.0 / 3.0]], rtol=1e-6)
    np.testing.assert_allclose(TopKTemporalMean(2)(scores), [[2.5, 2.5]], rtol=1e-6)


def _one_hot_labels(segment_labels):
    """The authors' label tensor [B, T, 29] from segment labels (no padding)."""
    return torch.nn.functional.one_hot(torch.as_tensor(segment_labels).long(), 29).double()


def test_full_losses_are_the_authors_sum():
    rng = np.random.default_rng(1)
    segment_labels = np.array([[28, 4, 4], [7, 7, 28]], np.int32)
    outputs = {
        "is_event": rng.normal(size=(2, 3)).astype(np.float32),
        "gate": rng.uniform(size=(2, 3)).astype(np.float32),
        "event_logits": rng.normal(size=(2, 28)).astype(np.float32),
        "av_score": rng.normal(size=(2, 28)).astype(np.float32),
    }
    # Their supv_main.py train_epoch on the same numbers.
    labels = _one_hot_labels(segment_labels)
    labels_bce, labels_evn = labels[:, :, :-1].max(-1)
    labels_event, _ = labels_evn.max(-1)
    bce, ce = torch.nn.BCEWithLogitsLoss(), torch.nn.CrossEntropyLoss()
    t = {k: torch.from_numpy(v).double() for k, v in outputs.items()}
    expected = {
        "is_event": bce(t["is_event"], labels_bce),
        "gate": bce(t["gate"], labels_bce),
        "event_logits": ce(t["event_logits"], labels_event),
        "av_score": ce(t["av_score"], labels_event),
    }
    targets = losses.targets("full", segment_labels, None)
    np.testing.assert_array_equal(targets["event_logits"], [4, 7])
    for name, loss in losses.losses("full").items():
        found = float(loss(targets[name], outputs[name]))
        assert found == pytest.approx(float(expected[name]), rel=1e-5), name


def test_padded_segments_count_in_no_loss():
    logits = np.array([[0.3, -2.0, 5.0, 9.0]], np.float32)
    padded = np.array([[4, 28, 4, -1]], np.int32)
    loss = losses.SegmentEventBCE()
    expected = torch.nn.BCEWithLogitsLoss()(
        torch.tensor([0.3, -2.0, 5.0]), torch.tensor([1.0, 0.0, 1.0])
    )
    assert float(loss(padded, logits)) == pytest.approx(float(expected), rel=1e-5)
    np.testing.assert_array_equal(losses.event_class_targets(padded), [4])
    # A video without events gets class 0, as the authors' max over an all-zero one-hot row.
    np.testing.assert_array_equal(losses.event_class_targets(np.array([[28, -1]])), [0])


def test_weak_loss_is_multilabel_soft_margin_on_the_softmax():
    rng = np.random.default_rng(2)
    scores = torch.softmax(torch.from_numpy(rng.normal(size=(3, 29))), dim=-1).float()
    video_labels = np.array([3, 28, 11], np.int32)
    targets = losses.targets("weak", None, video_labels)["event_scores"]
    expected = torch.nn.MultiLabelSoftMarginLoss()(scores, torch.tensor(np.array(targets)))
    found = losses.losses("weak")["event_scores"](targets, scores.numpy())
    assert float(found) == pytest.approx(float(expected), rel=1e-5)


def test_full_decoding_and_probabilities():
    is_event = np.array([[2.0, -1.0, 0.0, 0.5]], np.float32)  # sigmoid(0) = 0.5 is not > 0.5
    event_logits = np.full((1, 28), -3.0, np.float32)
    event_logits[0, 5] = 4.0
    np.testing.assert_array_equal(decoding.full_labels(is_event, event_logits), [[5, 28, 28, 5]])
    probabilities = np.asarray(decoding.full_probabilities(is_event, event_logits))
    assert probabilities.shape == (1, 4, 29)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(probabilities[0, :, 28], 1 - 1 / (1 + np.exp(-is_event[0])), 1e-6)
    assert probabilities[0, 0].argmax() == 5


def test_weak_decoding_gives_the_video_class_to_every_gated_segment():
    gate = np.array([[0.9, 0.01], [0.4, 0.0]], np.float32)  # a gate of 0 decodes as background
    raw_logits = np.zeros((2, 29), np.float32)
    raw_logits[0, 28], raw_logits[1, 9] = 3.0, 2.0
    labels = np.asarray(decoding.weak_labels(gate, raw_logits))
    np.testing.assert_array_equal(labels, [[28, 28], [9, 28]])
    probabilities = np.asarray(decoding.weak_probabilities(gate, raw_logits))
    np.testing.assert_array_equal(probabilities.argmax(-1), labels)
    np.testing.assert_allclose(probabilities[1, 1], np.eye(29)[28])


def _state(supervision):
    return {k: v.clone() for k, v in _reference(supervision, seed=5).state_dict().items()}


def _import_error(model, supervision, state, path, prefix="module."):
    with pytest.raises(UserError) as raised:
        cmbs.import_state_dict(model, _save(state, path, prefix), supervision)
    return str(raised.value)


def test_import_names_the_parameter_and_both_shapes(pair, tmp_path):
    supervision, _, model, _ = pair
    state = _state(supervision)
    state["v_fc.weight"] = torch.zeros(512, 100)
    message = _import_error(model, supervision, state, tmp_path / "shape.pth.tar")
    assert "parameter v_fc.weight: expected shape [512, 512]" in message
    assert "found shape [512, 100]" in message

    state = _state(supervision)
    del state["AVInter.video_multihead.in_proj_weight"]
    message = _import_error(model, supervision, state, tmp_path / "missing.pth.tar")
    assert "AVInter.video_multihead.in_proj_weight: expected shape [768, 256]" in message
    assert "found no such parameter (1 of" in message

    state = _state(supervision)
    state["extra_head.weight"] = torch.zeros(3, 4)
    message = _import_error(model, supervision, state, tmp_path / "extra.pth.tar", prefix="")
    assert "parameter extra_head.weight: expected no such parameter" in message
    assert "found shape [3, 4]" in message


def test_import_refuses_the_other_supervisions_state_dict(pair, tmp_path):
    supervision, _, model, _ = pair
    other = "weak" if supervision == "full" else "full"
    message = _import_error(model, supervision, _state(other), tmp_path / "other.pth.tar")
    assert f"CMBS {supervision}" in message
    assert "another model or supervision" in message


def test_import_reads_a_wrapped_unprefixed_file(pair, tmp_path):
    supervision, torch_model, _, _ = pair
    path = tmp_path / "wrapped.pth.tar"
    torch.save({"state_dict": torch_model.state_dict(), "epoch": 3}, path)
    model = cmbs.build(128, VISUAL_SHAPE, 4, supervision)
    cmbs.import_state_dict(model, str(path), supervision)
    audio, visual = _inputs(4, seed=4)
    expected = _torch_outputs(supervision, torch_model, audio, visual)
    found = model({"audio": audio, "visual": visual}, training=False)
    for name, value in expected.items():
        np.testing.assert_allclose(found[name], value.numpy(), atol=TOLERANCE)


def test_import_without_torch_says_how_to_install(pair, monkeypatch):
    supervision, _, model, path = pair
    monkeypatch.setitem(__import__("sys").modules, "torch", None)
    with pytest.raises(UserError, match=r"pip install 'avsdn-tf\[torch\]'"):
        cmbs.import_state_dict(model, path, supervision)


def test_import_of_a_file_that_is_no_state_dict(pair, tmp_path):
    supervision, _, model, _ = pair
    path = tmp_path / "model.pth.tar"
    torch.save([1, 2, 3], path)
    with pytest.raises(UserError, match="expected a PyTorch state_dict"):
        cmbs.import_state_dict(model, str(path), supervision)
    with pytest.raises(UserError, match="no such file"):
        cmbs.import_state_dict(model, str(tmp_path / "absent.pth.tar"), supervision)


def test_keras_file_round_trip(pair, tmp_path):
    import keras

    supervision, _, model, _ = pair
    path = tmp_path / "cmbs.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    audio, visual = _inputs(5, seed=6)
    before = model({"audio": audio, "visual": visual}, training=False)
    after = loaded({"audio": audio, "visual": visual}, training=False)
    for name in before:
        np.testing.assert_array_equal(np.asarray(before[name]), np.asarray(after[name]))


def test_bad_arguments_are_one_message():
    with pytest.raises(UserError, match="supervision: expected one of"):
        cmbs.build(128, VISUAL_SHAPE, 10, "semi")
    with pytest.raises(UserError, match=r"options: expected keys among"):
        cmbs.build(128, VISUAL_SHAPE, 10, "full", {"delta": 1.0})
    with pytest.raises(UserError, match="visual_shape"):
        cmbs.build(128, (512,), 10, "full")


def _fit_batch(supervision, steps=4, batch=4):
    audio, visual = _inputs(steps, batch=batch, seed=7)
    segment_labels = np.array([[3, 3, 28, 28], [28, 9, 9, 9], [28] * 4, [5, 28, 5, -1]], np.int32)
    video_labels = np.array([3, 9, 28, 5], np.int32)
    targets = losses.targets(supervision, segment_labels, video_labels)
    targets = {name: np.asarray(value) for name, value in targets.items()}
    return {"audio": audio, "visual": visual}, targets


def _weak_loss_floor():
    """MultiLabelSoftMargin of a one-hot target when the softmax is sure: p = 1 on the target."""
    softplus = np.log1p(np.exp([-1.0, 0.0]))  # -log sigmoid(1), -log(1 - sigmoid(0))
    return (softplus[0] + 28 * softplus[1]) / 29


@pytest.mark.slow  # about 40 s each on a shared 2-core CPU (tracing the training graph)
@pytest.mark.parametrize("supervision", ["full", "weak"])
def test_a_tiny_fit_lowers_the_loss(supervision):
    import keras

    keras.utils.set_random_seed(11)
    model = cmbs.build(128, VISUAL_SHAPE, None, supervision)
    model.compile(
        # The authors' learning rates and clipping.
        optimizer=keras.optimizers.Adam(
            7e-4 if supervision == "full" else 6e-4, global_clipnorm=0.5
        ),
        loss=losses.losses(supervision),
    )
    inputs, targets = _fit_batch(supervision)
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    model.fit(inputs, targets, epochs=8, batch_size=4, verbose=0)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    if supervision == "full":
        assert after < 0.8 * before, (before, after)
    else:  # a sigmoid over softmax probabilities: the loss lives in [floor, about 0.71]
        closed = (before - after) / (before - _weak_loss_floor())
        assert closed > 0.25, (before, after, closed)


def test_decoding_runs_in_a_graph_of_any_length(pair):
    import tensorflow as tf

    supervision, _, model, _ = pair

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None, 128], tf.float32),
            tf.TensorSpec([None, None, *VISUAL_SHAPE], tf.float32),
        ]
    )
    def serve(audio, visual):
        outputs = model({"audio": audio, "visual": visual}, training=False)
        return decoding.labels(outputs, supervision), decoding.probabilities(outputs, supervision)

    audio, visual = _inputs(7, batch=1, seed=8)
    labels, probabilities = serve(audio, visual)
    eager = model({"audio": audio, "visual": visual}, training=False)
    np.testing.assert_array_equal(labels, decoding.labels(eager, supervision))
    assert labels.dtype == tf.int32 and labels.shape == (1, 7)
    assert probabilities.shape == (1, 7, 29)
    np.testing.assert_allclose(np.sum(probabilities, -1), 1.0, rtol=1e-5)


def test_weights_start_as_pytorch_starts_them():
    import keras

    keras.utils.set_random_seed(12)
    model = cmbs.build(128, VISUAL_SHAPE, 10, "full")
    theirs = _reference("full", seed=12).state_dict()
    attention = model.get_layer("video_encoder").encoder_layers[0].self_attn
    lstm = model.get_layer("visual_rnn").forward_layer.cell
    pairs = {
        "v_fc.weight": model.get_layer("v_fc").kernel,
        "v_fc.bias": model.get_layer("v_fc").bias,
        "spatial_channel_att.affine_audio_1.weight": model.get_layer(
            "spatial_channel_att"
        ).affine_audio_1.kernel,
        "audio_visual_rnn_layer.visual_rnn.weight_hh_l0": lstm.recurrent_kernel,
        "audio_visual_rnn_layer.visual_rnn.bias_ih_l0+bias_hh_l0": lstm.bias,
        "video_encoder.encoder.layers.0.self_attn.in_proj_weight": attention.query_dense.kernel,
        "video_encoder.encoder.layers.0.self_attn.out_proj.weight": attention.output_dense.kernel,
        "video_encoder.encoder.layers.0.linear1.bias": model.get_layer("video_encoder")
        .encoder_layers[0]
        .linear1.bias,
    }
    for key, variable in pairs.items():
        if "+" in key:
            first, second = key.split("+")
            prefix = first.rsplit(".", 1)[0] + "."
            expected = theirs[first] + theirs[prefix + second]
        else:
            expected = theirs[key]
        ours = np.asarray(variable)
        ratio = ours.std() / expected.numpy().std()
        assert 0.9 < ratio < 1.1, (key, ratio)
        assert np.abs(ours).max() <= np.abs(expected.numpy()).max() * 1.02, key
