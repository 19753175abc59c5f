"""The field's feature-based models wired in like every model here: `train --model psp` and
`--model cmbs`, fully and weakly supervised, on 7x7 maps, selected on val, imported from the
authors' state_dicts, exported, verified and answering a 7-second video through serving_default
(CMBS with its own decoding inside); one message for data of the wrong layout and for another
model's weights."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import torch

from avsdn_tf import constants, hparams
from avsdn_tf.data import synthetic
from avsdn_tf.errors import UserError
from avsdn_tf.inference import predictors
from avsdn_tf.models import registry
from avsdn_tf.models.cmbs import model as cmbs_model
from avsdn_tf.models.registry import load_run
from avsdn_tf.training import trainer
from export import export_model

import cmbs_torch_reference
import psp_torch_reference
from testlib import tiny_config

MAPS = (7, 7, 512)  # PSP attends over the release's 49 regions


@pytest.fixture(scope="module")
def map_data(tmp_path_factory):
    """A small data set of 7x7x512 maps and 128-d audio, with background-only videos."""
    path = str(tmp_path_factory.mktemp("field") / "data")
    config = tiny_config(
        audio_dim=128, visual_layout=constants.LAYOUT_MAP, visual_dim=512, map_size=7
    )
    synthetic.write_dataset(path, config, verbose=False)
    return path


def _hp(model, supervision, **changes):
    base = registry.default_hparams(model, supervision)
    return base.replace(**{"epochs": 1, "batch_size": 8, "unroll": False, **changes})


def test_psp_defaults_are_the_authors_recipe():
    full, weak = (registry.default_hparams("psp", s) for s in (constants.FULL, constants.WEAK))
    assert (full.batch_size, full.epochs, full.learning_rate) == (128, 300, 1e-3)
    # x0.8 after every 60 epochs before epoch 170 (full), every 80 before 200 (weak).
    assert (full.lr_schedule, full.lr_milestones, full.lr_decay_rate) == (
        "multistep",
        "60,120",
        0.8,
    )
    assert weak.lr_milestones == "80,160"
    assert registry.default_hparams("avsdn") == hparams.HParams()  # no defaults of its own


def test_cmbs_defaults_are_the_authors_recipe():
    full, weak = (registry.default_hparams("cmbs", s) for s in (constants.FULL, constants.WEAK))
    assert (full.batch_size, full.epochs, full.learning_rate, full.clip_norm) == (
        64,
        200,
        7e-4,
        0.5,
    )
    assert (full.lr_schedule, full.lr_milestones, full.lr_decay_rate) == (
        "multistep",
        "10,20,30",
        0.5,
    )
    assert (weak.learning_rate, weak.lr_milestones) == (6e-4, "10,20,40")


def _rates_per_step(torch_scheduler, steps_per_epoch, epochs):
    """The rate each optimizer step of the authors' loop uses: their scheduler steps per epoch."""
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    scheduler = torch_scheduler(optimizer)
    rates = []
    for _ in range(epochs):
        for _ in range(steps_per_epoch):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
        scheduler.step()
    return rates


def _keras_rates(hp, steps_per_epoch, steps):
    """The rate of each of `steps` SGD updates of a scalar whose gradient is always 1."""
    variable = keras.Variable(0.0)
    optimizer = keras.optimizers.SGD(trainer.learning_rate_schedule(hp, steps_per_epoch))
    rates, before = [], 0.0
    for _ in range(steps):
        optimizer.apply([tf.constant(1.0)], [variable])
        after = float(variable.numpy())
        rates.append(before - after)
        before = after
    return rates


@pytest.mark.parametrize(
    "model, supervision",
    [("cmbs", constants.FULL), ("cmbs", constants.WEAK), ("psp", constants.FULL)],
)
def test_each_step_uses_the_rate_of_the_authors_per_epoch_multisteplr(model, supervision):
    hp = registry.default_hparams(model, supervision).replace(learning_rate=1.0)
    milestones = hp.milestones()
    steps_per_epoch, epochs = 2, milestones[-1] + 2
    expected = _rates_per_step(
        lambda optimizer: torch.optim.lr_scheduler.MultiStepLR(
            optimizer, milestones, gamma=hp.lr_decay_rate
        ),
        steps_per_epoch,
        epochs,
    )
    found = _keras_rates(hp, steps_per_epoch, len(expected))
    np.testing.assert_allclose(found, expected, rtol=1e-5)
    first_decayed = milestones[0] * steps_per_epoch  # epoch milestones[0] + 1 starts decayed
    assert found[first_decayed - 1] == pytest.approx(1.0, rel=1e-5)
    assert found[first_decayed] == pytest.approx(hp.lr_decay_rate, rel=1e-5)


def test_the_step_schedule_is_pytorchs_steplr_stepped_per_epoch():
    hp = hparams.HParams(
        learning_rate=1.0, lr_schedule="step", lr_decay_epochs=3, lr_decay_rate=0.5
    )
    expected = _rates_per_step(
        lambda optimizer: torch.optim.lr_scheduler.StepLR(optimizer, 3, gamma=0.5), 4, 8
    )
    np.testing.assert_allclose(_keras_rates(hp, 4, len(expected)), expected, rtol=1e-5)


def _cmbs_labels(is_event, event_logits):
    """The authors' decoding written out: the video's class where sigmoid > 0.5, else 28."""
    event = 1 / (1 + np.exp(-is_event)) > 0.5
    return np.where(event, event_logits.argmax(-1)[:, None], 28)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["psp", "cmbs"])
@pytest.mark.parametrize("supervision", [constants.FULL, constants.WEAK])
def test_field_model_trains_exports_and_answers_a_seven_second_video(
    map_data, tmp_path, model, supervision
):
    run_dir = str(tmp_path / "run")
    summary = trainer.train(map_data, run_dir, _hp(model, supervision), verbose=0)
    assert summary["best_epoch"] == 1 and 0.0 <= summary["test"]["accuracy"] <= 1.0
    run = load_run(run_dir)
    assert run.task.include_noisy(type("Info", (), {"splits": {"noisy": {}}})) == (
        supervision == constants.WEAK
    )
    final = export_model.export(run_dir, str(tmp_path / "serving" / model), verbose=False)
    served = tf.saved_model.load(final).signatures["serving_default"]
    rng = np.random.default_rng(0)
    audio = rng.random((2, 7, 128), np.float32)
    visual = rng.random((2, 7, *MAPS), np.float32)
    outputs = served(audio=tf.constant(audio), visual=tf.constant(visual))
    probs = outputs["segment_probs"].numpy()
    # predict reads the same labels from the run directory (CMBS: its decoding, not an arg-max)
    _, run_labels = predictors.RunPredictor(run_dir).segments(audio[0], visual[0])
    np.testing.assert_array_equal(run_labels, outputs["segment_labels"].numpy()[0])
    assert probs.shape == (2, 7, constants.NUM_CLASSES)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    expected = run.variable_length_model({"audio": audio, "visual": visual})
    if model == "psp":
        np.testing.assert_allclose(probs, np.asarray(expected), atol=1e-5)
        np.testing.assert_array_equal(outputs["segment_labels"].numpy(), probs.argmax(-1))
        return
    np.testing.assert_allclose(probs, np.asarray(expected["segment_probs"]), atol=1e-5)
    any_length = cmbs_model.build(128, MAPS, None, supervision)  # the raw outputs at T = 7
    any_length.set_weights(run.model.get_weights())
    raw = any_length({"audio": audio, "visual": visual})
    if supervision == constants.FULL:
        want = _cmbs_labels(np.asarray(raw["is_event"]), np.asarray(raw["event_logits"]))
    else:  # the gate is a probability: sigmoid(gate) > 0.5 always; every segment the video's
        want = np.broadcast_to(np.asarray(raw["raw_logits"]).argmax(-1)[:, None], (2, 7))
    np.testing.assert_array_equal(outputs["segment_labels"].numpy(), want)


@pytest.mark.parametrize("model", ["psp", "cmbs"])
def test_field_models_refuse_visual_vectors_in_one_message(tiny_vector_data, tmp_path, model):
    with pytest.raises(UserError, match=r"visual features: expected maps \[H, W, C\] per segment"):
        trainer.train(tiny_vector_data, str(tmp_path / "run"), _hp(model, "full"), verbose=0)
    # Nothing written: a run directory would make the retry on map data a resume of other
    # settings ("config.json: expected the settings of the run being resumed").
    assert not os.path.exists(tmp_path / "run")


def test_psp_init_weights_imports_the_authors_state_dict_and_refuses_another(map_data, tmp_path):
    torch.manual_seed(0)
    reference = psp_torch_reference.PSPFull().eval()
    weights = tmp_path / "psp_full.pt"
    torch.save(reference.state_dict(), weights)
    run_dir = str(tmp_path / "imported")
    hp = _hp("psp", "full", epochs=0)
    summary = trainer.train(map_data, run_dir, hp, verbose=0, init_weights=str(weights))
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    rng = np.random.default_rng(1)
    audio = rng.random((2, 10, 128), np.float32)
    visual = rng.random((2, 10, *MAPS), np.float32)
    with torch.no_grad():
        want = reference(torch.from_numpy(audio), torch.from_numpy(visual))
    run = load_run(run_dir)
    got = run.segment_model({"audio": audio, "visual": visual})
    want_probs = torch.softmax(want[1], -1).numpy()  # (fusion, logits, similarity)
    np.testing.assert_allclose(np.asarray(got), want_probs, atol=1e-5)
    other = tmp_path / "weak.pt"
    torch.save(psp_torch_reference.PSPWeak().state_dict(), other)
    with pytest.raises(UserError, match=r"weak\.pt: parameter .*: expected"):
        trainer.train(map_data, str(tmp_path / "wrong"), hp, verbose=0, init_weights=str(other))


def test_cmbs_init_weights_imports_the_authors_state_dict_and_refuses_psp(map_data, tmp_path):
    torch.manual_seed(0)
    reference = torch.nn.DataParallel(cmbs_torch_reference.supv_main_model()).eval()
    weights = tmp_path / "cmbs_full.pth.tar"
    torch.save({"state_dict": reference.state_dict()}, weights)  # as their save_checkpoint
    run_dir = str(tmp_path / "imported")
    hp = _hp("cmbs", "full", epochs=0)
    summary = trainer.train(map_data, run_dir, hp, verbose=0, init_weights=str(weights))
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    rng = np.random.default_rng(2)
    audio = rng.random((2, 10, 128), np.float32)
    visual = rng.random((2, 10, *MAPS), np.float32)
    with torch.no_grad():
        is_event, event, _, _ = reference.module(torch.from_numpy(visual), torch.from_numpy(audio))
    decoded = load_run(run_dir).segment_model({"audio": audio, "visual": visual})
    want = _cmbs_labels(is_event[:, :, 0].T.numpy(), event.numpy())  # theirs is time-first
    np.testing.assert_array_equal(np.asarray(decoded["segment_labels"]), want)
    other = tmp_path / "psp.pt"
    torch.save(psp_torch_reference.PSPFull().state_dict(), other)
    with pytest.raises(UserError, match=r"psp\.pt parameter .*: expected"):
        trainer.train(map_data, str(tmp_path / "wrong"), hp, verbose=0, init_weights=str(other))
