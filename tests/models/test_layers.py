"""The custom layers against NumPy versions of their published equations."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf.models import layers


def _dense(layer, x):
    kernel = layer.kernel.numpy()
    out = x @ kernel
    if layer.use_bias:
        out = out + layer.bias.numpy()
    return out


def test_dmrn_fusion_matches_numpy_equations():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(4, 6)).astype("float32")
    visual = rng.normal(size=(4, 6)).astype("float32")
    fusion = layers.DMRNFusion(hidden_units=5)
    fused = fusion([audio, visual]).numpy()
    np.testing.assert_allclose(fused, _numpy_dmrn(fusion, audio, visual), rtol=1e-5, atol=1e-6)


def _numpy_dmrn(fusion, audio, visual):
    """The DMRN equations in NumPy for one [N, D] pair of audio and visual vectors."""
    u_a = _dense(fusion.audio_out, np.tanh(_dense(fusion.audio_hidden, audio)))
    u_v = _dense(fusion.visual_out, np.tanh(_dense(fusion.visual_hidden, visual)))
    merged = 0.5 * (u_a + u_v)
    return 0.5 * (np.tanh(audio + merged) + np.tanh(visual + merged))


def test_dmrn_fusion_works_per_segment_and_rejects_unequal_sizes():
    rng = np.random.default_rng(2)
    audio = rng.normal(size=(2, 5, 4)).astype("float32")
    visual = rng.normal(size=(2, 5, 4)).astype("float32")
    fusion = layers.DMRNFusion(hidden_units=3)
    fused = fusion([audio, visual]).numpy()
    assert fused.shape == (2, 5, 4)
    for t in range(5):  # each segment fused on its own, by the equations above
        np.testing.assert_allclose(
            fused[:, t], _numpy_dmrn(fusion, audio[:, t], visual[:, t]), rtol=1e-5, atol=1e-6
        )
    with pytest.raises(ValueError, match="equal sizes"):
        layers.DMRNFusion(3)([np.ones((2, 4), "float32"), np.ones((2, 5), "float32")])


def test_audio_guided_attention_matches_the_published_per_region_prior():
    rng = np.random.default_rng(1)
    batch, time, size, channels, audio_dim = 2, 3, 2, 5, 7
    regions = size * size
    audio = rng.normal(size=(batch, time, audio_dim)).astype("float32")
    visual = rng.normal(size=(batch, time, size, size, channels)).astype("float32")
    attention = layers.AudioGuidedVisualAttention(hidden_units=6)
    attended = attention([audio, visual]).numpy()

    v = visual.reshape(batch, time, regions, channels)
    v_proj = np.maximum(_dense(attention.video_projection, v), 0)
    a_proj = np.maximum(_dense(attention.audio_projection, audio), 0)
    content = v_proj @ attention.region_scores.kernel.numpy()  # [B, T, R, R]
    prior = a_proj @ attention.audio_prior.kernel.numpy()  # [B, T, R]
    expected = np.empty((batch, time, channels), "float32")
    for b in range(batch):
        for t in range(time):
            # Entry r of the audio prior joins every unit of region r's score vector.
            hidden = np.tanh(content[b, t] + prior[b, t][:, None])
            scores = (hidden @ attention.score.kernel.numpy())[:, 0]
            weights = np.exp(scores - scores.max())
            weights /= weights.sum()
            expected[b, t] = weights @ v[b, t]
    np.testing.assert_allclose(attended, expected, rtol=1e-4, atol=1e-5)


def test_pooling_layers():
    maps = np.arange(2 * 3 * 2 * 2 * 4, dtype="float32").reshape(2, 3, 2, 2, 4)
    np.testing.assert_allclose(layers.SpatialAveragePooling()(maps).numpy(), maps.mean(axis=(2, 3)))
    # one pooling window over each map, in a graph of any batch and length, any map side
    for side in ((7, 7), (3, 5)):
        maps = np.random.default_rng(1).normal(size=(3, 4, *side, 16)).astype("float32")
        pool = tf.function(
            layers.SpatialAveragePooling(),
            input_signature=[tf.TensorSpec([None, None, *side, 16], tf.float32)],
        )
        for batch, time in ((3, 4), (1, 2)):
            np.testing.assert_allclose(
                pool(maps[:batch, :time]).numpy(),
                maps[:batch, :time].mean(axis=(2, 3)),
                rtol=1e-6,
                atol=1e-6,
            )
    segments = np.random.default_rng(2).random((2, 5, 29)).astype("float32")
    np.testing.assert_allclose(
        layers.TemporalPooling("mean")(segments).numpy(), segments.mean(1), rtol=1e-6
    )
    np.testing.assert_allclose(layers.TemporalPooling("max")(segments).numpy(), segments.max(1))
    with pytest.raises(ValueError, match="mean' or 'max"):
        layers.TemporalPooling("median")


@pytest.mark.parametrize(
    "layer",
    [
        layers.DMRNFusion(7),
        layers.AudioGuidedVisualAttention(9),
        layers.SpatialAveragePooling(),
        layers.TemporalPooling("max"),
    ],
)
def test_layers_serialize(layer):
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert type(restored) is type(layer)
    assert restored.get_config() == layer.get_config()
