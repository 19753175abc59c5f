"""PSP: the Keras model against a PyTorch reference of the authors' psp_net (their parameter
names, so its state_dict is what their code saves), the losses against the authors' formulas by
hand, the import's error messages, a .keras round trip and a tiny fit."""

import sys

import keras
import numpy as np
import pytest
import torch

from avsdn_tf.errors import UserError
from avsdn_tf.models import psp

import psp_torch_reference as reference

TOLERANCE = 1e-5
REFERENCES = {"full": reference.PSPFull, "weak": reference.PSPWeak}


def _inputs(batch, time, seed):
    """Random raw features in the release's ranges (both >= 0)."""
    rng = np.random.default_rng(seed)
    audio = rng.uniform(0, 2, (batch, time, 128)).astype("float32")
    visual = rng.uniform(0, 3, (batch, time, 7, 7, 512)).astype("float32")
    return audio, visual


@pytest.fixture(scope="module", params=["full", "weak"])
def imported(request, tmp_path_factory):
    """(supervision, torch reference in eval mode, Keras model with its weights, the file)."""
    supervision = request.param
    torch.manual_seed(7)
    net = REFERENCES[supervision]().eval()
    path = tmp_path_factory.mktemp("psp") / f"psp_{supervision}.pt"
    torch.save(net.state_dict(), path)
    model = psp.build(128, (7, 7, 512), None, supervision)
    unread = psp.import_state_dict(model, str(path), supervision)
    return supervision, net, model, path, unread


def _torch_outputs(net, supervision, audio, visual):
    with torch.no_grad():
        outputs = net(torch.from_numpy(audio), torch.from_numpy(visual))
    if supervision == "full":
        _, logits, similarity = outputs
        extra = {"av_similarity": similarity.numpy()}
    else:
        video, logits = outputs
        extra = {"video_probabilities": video.numpy()}
    probabilities = torch.softmax(logits, dim=-1).numpy()
    return {"segment_logits": logits.numpy(), "segment_probabilities": probabilities, **extra}


@pytest.mark.parametrize("time", [10, 7])
def test_same_outputs_as_the_torch_reference(imported, time):
    supervision, net, model, _, _ = imported
    audio, visual = _inputs(3, time, seed=time)
    expected = _torch_outputs(net, supervision, audio, visual)
    found = model({"audio": audio, "visual": visual}, training=False)
    assert sorted(found) == sorted(expected)
    for name, values in expected.items():
        difference = np.max(np.abs(np.asarray(found[name]) - values))
        assert difference < TOLERANCE, (name, difference)
    assert np.array_equal(
        np.argmax(found["segment_probabilities"], -1), np.argmax(expected["segment_logits"], -1)
    )


def test_unread_parameters_are_reported(imported):
    supervision, _, _, _, unread = imported
    if supervision == "full":
        assert "L4.weight" in unread and "v_classify.L2.weight" in unread
    else:
        assert unread == ["W1.weight", "W2.weight", "temperature"]


def test_module_prefixed_and_wrapped_files_import_the_same(imported, tmp_path):
    supervision, net, model, _, _ = imported
    state = {f"module.{name}": value for name, value in net.state_dict().items()}
    path = tmp_path / "wrapped.pth.tar"
    torch.save({"epoch": 3, "state_dict": state}, path)
    other = psp.build(128, (7, 7, 512), None, supervision)
    psp.import_state_dict(other, str(path), supervision)
    for mine, theirs in zip(model.weights, other.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))


def _edited_file(net, tmp_path, edit):
    state = dict(net.state_dict())
    edit(state)
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return str(path)


def test_wrong_shape_missing_and_unexpected_parameters(imported, tmp_path):
    supervision, net, model, _, _ = imported

    def wrong_shape(state):
        state["psp.v_L1.weight"] = torch.zeros(256, 128)

    def missing(state):
        del state["L2.weight"]

    def unexpected(state):
        state["extra.weight"] = torch.zeros(4, 2)

    cases = [
        (wrong_shape, "psp.v_L1.weight: expected shape [256, 256]", "found shape [256, 128]"),
        (missing, "L2.weight: expected shape [29, 64]", "found it missing"),
        (unexpected, "extra.weight: expected no such parameter", "found shape [4, 2]"),
    ]
    for edit, expected, found in cases:
        path = _edited_file(net, tmp_path, edit)
        with pytest.raises(UserError) as error:
            psp.import_state_dict(model, path, supervision)
        message = str(error.value)
        assert message.startswith(f"{path}: parameter {expected}"), message
        assert found in message and supervision in message


def test_the_other_supervisions_state_dict_is_refused(imported):
    supervision, _, model, path, _ = imported
    other = "weak" if supervision == "full" else "full"
    with pytest.raises(UserError, match=r"parameter \S+: expected .*more parameters do not fit"):
        psp.import_state_dict(psp.build(128, (7, 7, 512), None, other), str(path), other)


def test_files_that_are_not_a_state_dict(imported, tmp_path):
    supervision, net, model, _, _ = imported
    with pytest.raises(UserError, match="no such file"):
        psp.import_state_dict(model, str(tmp_path / "absent.pt"), supervision)
    whole = tmp_path / "whole_model.pt"
    torch.save(net, whole)  # the authors' release: a pickled whole model
    with pytest.raises(UserError, match=r"torch.save\(model.state_dict\(\), path\)"):
        psp.import_state_dict(model, str(whole), supervision)


def test_import_without_torch_says_how_to_install(imported, monkeypatch):
    supervision, _, model, path, _ = imported
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(UserError, match=r"pip install 'avsdn-tf\[torch\]'"):
        psp.import_state_dict(model, str(path), supervision)


def test_avps_targets_by_hand():
    labels = np.array([[28, 3, 3, 28], [7, 2, 2, 28], [28, 28, 28, 28], [5, 5, 5, 5]])
    # The event is the smallest class index present; background only when nothing else is.
    expected = [[0, 0.5, 0.5, 0], [0, 0.5, 0.5, 0], [0.25] * 4, [0.25] * 4]
    np.testing.assert_allclose(psp.avps_targets(labels), expected, rtol=1e-6)


def test_avps_loss_by_hand_and_against_the_reference():
    similarity = np.array([[3.0, 1.0, -2.0, 0.0], [0.5, 0.5, 0.5, 0.5]], "float32")
    targets = np.array([[0, 0.5, 0.5, 0], [0.25] * 4], "float32")
    # Row 0: shares [0.75, 0.25, 0, 0] -> errors 0.5625 + 0.0625 + 0.25; row 1: 0.
    by_hand = (0.5625 + 0.0625 + 0.25) / 8
    assert float(psp.avps_loss(targets, similarity)) == pytest.approx(by_hand, rel=1e-5)
    theirs = reference.avps_loss(torch.from_numpy(similarity), torch.from_numpy(targets))
    assert float(psp.AVPSLoss()(targets, similarity)) == pytest.approx(float(theirs), rel=1e-5)


def test_full_loss_is_cross_entropy_plus_100_avps():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(2, 4, 29)).astype("float32")
    similarity = rng.normal(size=(2, 4)).astype("float32")
    labels = np.array([[28, 3, 3, 28], [1, 1, 1, 1]])
    losses, weights, targets_of = psp.losses("full")
    targets = {"segment_logits": labels, "av_similarity": psp.avps_targets(labels)}
    outputs = {"segment_logits": logits, "av_similarity": similarity}
    total = sum(weights[k] * float(losses[k](targets[k], outputs[k])) for k in losses)
    ce = torch.nn.CrossEntropyLoss()(
        torch.from_numpy(logits).permute(0, 2, 1), torch.from_numpy(labels)
    )
    avps = reference.avps_loss(
        torch.from_numpy(similarity), torch.tensor(np.asarray(targets["av_similarity"]))
    )
    assert total == pytest.approx(float(ce) + 100 * float(avps), rel=1e-5)
    assert targets_of == {"segment_logits": "segment_labels", "av_similarity": "avps_targets"}


def test_weak_loss_and_targets():
    labels = np.array([[28, 3, 3, 28], [28, 28, 28, 28]])
    proportions = np.asarray(psp.proportion_targets(labels))
    assert proportions[0, 3] == 0.5 and proportions[0, 28] == 0.5 and proportions[1, 28] == 1.0
    assert np.count_nonzero(proportions) == 3
    one_hot = np.asarray(psp.video_label_targets([3, 28]))
    assert one_hot.sum() == 2 and one_hot[0, 3] == 1 and one_hot[1, 28] == 1
    probabilities = np.random.default_rng(4).dirichlet(np.ones(29), size=2).astype("float32")
    losses, _, _ = psp.losses("weak")
    found = float(losses["video_probabilities"](proportions, probabilities))
    theirs = torch.nn.BCELoss()(torch.from_numpy(probabilities), torch.from_numpy(proportions))
    assert found == pytest.approx(float(theirs), rel=1e-4)


def test_bad_build_arguments():
    with pytest.raises(UserError, match=r"supervision: expected one of \['full', 'weak'\]"):
        psp.build(128, (7, 7, 512), 10, "strong")
    with pytest.raises(UserError, match=r"visual_shape: expected a map shape .*found \(512,\)"):
        psp.build(128, (512,), 10, "full")
    with pytest.raises(UserError, match=r"options: expected keys among .*found \['lr'\]"):
        psp.build(128, (7, 7, 512), 10, "full", {"lr": 1})
    with pytest.raises(UserError, match="unroll only with a fixed num_segments"):
        psp.build(128, (7, 7, 512), None, "weak", {"unroll": True})


@pytest.mark.parametrize("supervision", ["full", "weak"])
def test_keras_file_round_trip(supervision, tmp_path):
    keras.utils.set_random_seed(1)
    model = psp.build(16, (2, 2, 8), None, supervision, {"threshold": 0.2})
    audio = np.random.default_rng(0).uniform(0, 1, (2, 5, 16)).astype("float32")
    visual = np.random.default_rng(1).uniform(0, 1, (2, 5, 2, 2, 8)).astype("float32")
    path = tmp_path / "psp.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_layer("psp").threshold == 0.2
    before = model({"audio": audio, "visual": visual})
    after = loaded({"audio": audio, "visual": visual})
    for name in before:
        np.testing.assert_allclose(after[name], before[name], atol=1e-6)


def _tiny_data(supervision):
    """16 videos, T = 4, whose event class is visible in the audio's first dimensions."""
    rng = np.random.default_rng(5)
    classes = rng.integers(0, 3, 16)
    labels = np.where(rng.random((16, 4)) < 0.6, classes[:, None], 28)
    audio = rng.uniform(0, 0.2, (16, 4, 8)).astype("float32")
    audio[np.arange(16)[:, None], np.arange(4)[None], np.minimum(labels, 3)] += 1.0
    visual = rng.uniform(0, 1, (16, 4, 2, 2, 8)).astype("float32")
    if supervision == "full":
        targets = {"segment_logits": labels, "av_similarity": psp.avps_targets(labels)}
    else:
        targets = {"video_probabilities": psp.proportion_targets(labels)}
    return {"audio": audio, "visual": visual}, targets


@pytest.mark.parametrize("supervision", ["full", "weak"])
def test_a_tiny_fit_lowers_the_loss(supervision):
    keras.utils.set_random_seed(2)
    model = psp.build(8, (2, 2, 8), 4, supervision)
    losses, weights, _ = psp.losses(supervision)
    model.compile(keras.optimizers.Adam(1e-2), loss=losses, loss_weights=weights)
    inputs, targets = _tiny_data(supervision)
    before = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    model.fit(inputs, targets, batch_size=8, epochs=15, verbose=0)
    after = model.evaluate(inputs, targets, verbose=0, return_dict=True)["loss"]
    assert after < 0.7 * before, (before, after)
