"""Every registered model builds, trains a few steps and round-trips through save and load."""

import keras
import numpy as np
import pytest

from avsdn_tf import constants, hparams, records
from avsdn_tf.models import backbones, registry
from avsdn_tf.training import trainer

from testlib import TINY_UNITS

SMALL = dict(TINY_UNITS, batch_size=4)


def _batch(rng, visual_shape, videos=8, time=constants.NUM_SEGMENTS):
    inputs = {
        "audio": rng.normal(size=(videos, time, 16)).astype("float32"),
        "visual": rng.normal(size=(videos, time, *visual_shape)).astype("float32"),
    }
    labels = rng.integers(0, constants.NUM_CLASSES, size=(videos, time)).astype("int32")
    return inputs, labels, labels[:, 0]


def _targets(hp, labels, video):
    """The task's targets of a parsed batch holding these labels."""
    targets = registry.task_for(hp).targets({records.LABEL: labels, records.VIDEO_LABEL: video})
    return keras.tree.map_structure(np.asarray, targets)


CASES = [
    (name, "full", [3, 3, 8]) for name in registry.names(tunable=True)
] + [  # maps: pooling and attention paths
    (name, "weak", [12]) for name in ("avsdn", "dmrn", "avsdn_label_guided")
]


@pytest.mark.parametrize("name,supervision,visual_shape", CASES)
def test_model_trains_and_round_trips(name, supervision, visual_shape, tmp_path):
    rng = np.random.default_rng(0)
    hp = hparams.HParams(model=name, supervision=supervision, visual_reduction="attention", **SMALL)
    keras.utils.set_random_seed(0)
    model = registry.task_for(hp).build(16, visual_shape)
    trainer.compile_model(model, hp, steps_per_epoch=2)
    inputs, labels, video = _batch(rng, visual_shape)
    before = _infer(backbones.segment_model(model), inputs)
    history = model.fit(inputs, _targets(hp, labels, video), batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = _infer(backbones.segment_model(model), inputs)
    assert after.shape == (8, constants.NUM_SEGMENTS, constants.NUM_CLASSES)
    assert not np.allclose(before, after), "two training steps changed nothing"
    np.testing.assert_allclose(after.sum(-1), 1.0, rtol=1e-5)

    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_array_equal(_infer(backbones.segment_model(restored), inputs), after)
    np.testing.assert_array_equal(_infer(restored, inputs), _infer(model, inputs))


def _infer(model, inputs):
    """The model's first output in inference mode, called directly (8 videos, one batch: what
    predict gives, without tracing a predict function per model)."""
    outputs = model(inputs, training=False)
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return np.asarray(outputs)


def test_weak_model_pools_segments_over_time():
    hp = hparams.HParams(model="avsdn", supervision="weak", **SMALL)
    model = registry.task_for(hp).build(16, [12])
    inputs, _, _ = _batch(np.random.default_rng(1), [12])
    np.testing.assert_allclose(
        model.predict(inputs, verbose=0),
        backbones.segment_model(model).predict(inputs, verbose=0).mean(axis=1),
        rtol=1e-5,
    )


def test_models_take_any_number_of_segments_when_built_without_a_fixed_length():
    hp = hparams.HParams(model="avsdn", **SMALL)
    model = backbones.segment_model(registry.task_for(hp).build(16, [12], num_segments=None))
    for time in (3, 17):
        inputs, _, _ = _batch(np.random.default_rng(2), [12], videos=2, time=time)
        assert model.predict(inputs, verbose=0).shape == (2, time, constants.NUM_CLASSES)


def test_registry_lists_every_name_the_paper_tables_need():
    expected = {
        "avsdn",
        "audio",
        "visual",
        "av",
        "av_att",
        "dmrn",
        "avsdn_init_visual",
        "avsdn_init_audio",
        "avsdn_label_guided",
    }
    assert expected == set(registry.names(tunable=True))
    listing = registry.describe()
    assert all(name in listing for name in expected)


@pytest.mark.parametrize("num_segments", [constants.NUM_SEGMENTS, None])
def test_inference_function_matches_predict_and_traces_once(num_segments):
    hp = hparams.HParams(model="avsdn", **SMALL)
    keras.utils.set_random_seed(0)
    model = backbones.segment_model(
        registry.task_for(hp).build(16, [12], num_segments=num_segments)
    )
    forward = backbones.inference_function(model)
    times = [constants.NUM_SEGMENTS] * 2 if num_segments else [4, 13]
    for videos, time in zip((3, 7), times, strict=True):
        inputs, _, _ = _batch(np.random.default_rng(videos), [12], videos=videos, time=time)
        np.testing.assert_allclose(
            forward(inputs).numpy(), model.predict(inputs, verbose=0), rtol=1e-5, atol=1e-7
        )
    assert (
        forward.experimental_get_tracing_count() == 1
    )  # other batch sizes and lengths reuse the trace


def test_inference_functions_of_many_models_raise_no_retracing_warning(caplog):
    """A process building many models (experiments, tune) traces each model's inference function
    once; TensorFlow's "triggered tf.function retracing" warning must not count one model's trace
    as a retrace of another's (it did while they shared one lambda's code)."""
    hp = hparams.HParams(model="av", **SMALL)
    inputs, _, _ = _batch(np.random.default_rng(0), [12], videos=2)
    forwards = []
    with caplog.at_level("WARNING", logger="tensorflow"):
        for seed in range(7):  # 7 traces, 14 calls: over TensorFlow's 5-in-10 threshold
            keras.utils.set_random_seed(seed)
            forward = backbones.inference_function(
                backbones.segment_model(registry.task_for(hp).build(16, [12]))
            )
            forward(inputs), forward(inputs)
            forwards.append(forward)
    assert [forward.experimental_get_tracing_count() for forward in forwards] == [1] * 7
    assert not [r for r in caplog.records if "retracing" in r.getMessage()], caplog.text


@pytest.mark.parametrize("name", ["avsdn", "av"])
def test_pooled_maps_model_equals_the_vector_model_on_each_segments_mean_map(name):
    """A model that pools maps gives what its vector twin gives on the maps' region means,
    with the train split's statistics set."""
    rng = np.random.default_rng(3)
    hp = hparams.HParams(model=name, visual_reduction="pool", **SMALL)
    task = registry.task_for(hp)
    maps_model = task.build(16, [3, 3, 8])
    vector_model = task.build(16, [8])
    statistics = {
        "audio_mean": rng.normal(size=16),
        "audio_std": rng.uniform(0.5, 2.0, size=16),
        "visual_mean": rng.normal(size=8),
        "visual_std": rng.uniform(0.5, 2.0, size=8),
    }
    backbones.set_statistics(maps_model, statistics)
    for layer in vector_model.layers:  # the same weights, layer by layer (by name)
        layer.set_weights(maps_model.get_layer(layer.name).get_weights())
    inputs, _, _ = _batch(rng, [3, 3, 8])
    means = inputs["visual"].mean(axis=(2, 3), dtype=np.float64).astype("float32")
    expected = vector_model.predict({"audio": inputs["audio"], "visual": means}, verbose=0)
    np.testing.assert_allclose(maps_model.predict(inputs, verbose=0), expected, atol=1e-6)
