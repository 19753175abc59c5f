"""The inference copy with the normalisation folded into the kernels computes the same model."""

import keras
import numpy as np
import pytest

from avsdn_tf import constants, hparams
from avsdn_tf.models import backbones, folding, layers, registry

from testlib import TINY_UNITS

AUDIO, VECTORS, MAPS = constants.AUDIO_NORMALIZATION, [12], [3, 3, 8]
BOTH = {AUDIO, constants.VISUAL_NORMALIZATION}


def _model(name, visual_shape, reduction="pooling", seed=0):
    """A per-segment model whose statistics are far from the identity."""
    keras.utils.set_random_seed(seed)
    hp = hparams.HParams(model=name, visual_reduction=reduction, **TINY_UNITS)
    model = backbones.segment_model(registry.task_for(hp).build(16, visual_shape))
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.FeatureNormalization):
            channels = layer.mean.shape[0]
            layer.set_statistics(rng.normal(0, 3, channels), rng.uniform(0.2, 5.0, channels))
    return model


def _normalizations(model):
    return {layer.name for layer in model.layers if isinstance(layer, layers.FeatureNormalization)}


def _inputs(visual_shape, videos=5, seed=1):
    rng = np.random.default_rng(seed)
    return {  # raw features around the statistics' scale
        "audio": rng.normal(0, 3, (videos, constants.NUM_SEGMENTS, 16)).astype("float32"),
        "visual": rng.normal(0, 3, (videos, constants.NUM_SEGMENTS, *visual_shape)).astype(
            "float32"
        ),
    }


ALL = None  # every normalisation the model has
CASES = [(name, VECTORS, "pooling", ALL) for name in registry.names(tunable=True)] + [
    ("av", MAPS, "pooling", BOTH),  # folds through the spatial pooling
    ("avsdn", MAPS, "pooling", BOTH),
    ("av_att", MAPS, "attention", set()),  # the attention reads both normalised inputs
]


@pytest.mark.parametrize("name,visual_shape,reduction,folded", CASES)
def test_folded_copy_matches_the_model(name, visual_shape, reduction, folded):
    model = _model(name, visual_shape, reduction)
    copy = folding.FoldedModel(model)
    present = _normalizations(model)
    folded = present if folded is ALL else folded
    assert set(copy.plan) == folded
    assert _normalizations(copy.model) == present - folded
    inputs = _inputs(visual_shape)
    expected = np.asarray(model(inputs, training=False))  # called: no predict function to trace
    folded_out = np.asarray(copy.model(inputs, training=False))
    np.testing.assert_allclose(folded_out, expected, atol=2e-6)
    forward = backbones.inference_function(model)
    np.testing.assert_allclose(forward(inputs).numpy(), expected, atol=2e-6)


def test_the_decoder_reads_both_inputs_at_their_rows():
    plan = folding.fold_plan(_model("avsdn", VECTORS))
    assert sorted(plan[AUDIO]) == [("audio_encoder", 0), ("decoder", 0)]
    assert sorted(plan[constants.VISUAL_NORMALIZATION]) == [("decoder", 16), ("visual_encoder", 0)]


def test_sync_follows_new_weights_and_statistics_without_retracing():
    model = _model("avsdn", VECTORS)
    inputs = _inputs(VECTORS)
    forward = backbones.inference_function(model)
    before = forward(inputs).numpy()
    trained = _model("avsdn", VECTORS, seed=7)  # same architecture, other weights and statistics
    model.set_weights(trained.get_weights())
    expected = model.predict(inputs, verbose=0)
    assert not np.allclose(before, expected, atol=1e-3)
    np.testing.assert_allclose(forward(inputs).numpy(), before)  # stale until synced
    forward.sync()
    np.testing.assert_allclose(forward(inputs).numpy(), expected, atol=2e-6)
    assert forward.experimental_get_tracing_count() == 1
