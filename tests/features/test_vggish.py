"""VGGish: the TF front end against NumPy written here from the published formulas
(tensorflow/models research/audioset/vggish: mel_features.py, vggish_input.py, vggish_params.py),
the Keras network against the published graph run with raw tf.nn ops on a TF1 V1-format
checkpoint written here under the official variable names, and the PCA post-processing against
vggish_postprocess.py's arithmetic.
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf.errors import UserError
from avsdn_tf.features import vggish_input, vggish_params, vggish_postprocess, vggish_slim

from media_testlib import OFFICIAL_SHAPES, official_checkpoint, official_values, write_v1_checkpoint
from testlib import REAL_AVE, needs_real_ave

# ---------------------------------------------------------------------------------------------
# NumPy reference, from the published formulas.


def np_hertz_to_mel(hertz):
    return 1127.0 * np.log(1.0 + hertz / 700.0)


def np_mel_matrix(
    num_mel_bins=64, num_spectrogram_bins=257, sample_rate=16000, lower=125.0, upper=7500.0
):
    bins_mel = np_hertz_to_mel(np.linspace(0.0, sample_rate / 2.0, num_spectrogram_bins))
    edges = np.linspace(np_hertz_to_mel(lower), np_hertz_to_mel(upper), num_mel_bins + 2)
    matrix = np.empty((num_spectrogram_bins, num_mel_bins))
    for i in range(num_mel_bins):
        low, centre, high = edges[i : i + 3]
        matrix[:, i] = np.maximum(
            0.0, np.minimum((bins_mel - low) / (centre - low), (high - bins_mel) / (high - centre))
        )
    matrix[0, :] = 0.0  # HTK leaves out the DC bin
    return matrix


def np_frame(data, window, hop):
    count = 1 + (len(data) - window) // hop
    return np.stack([data[i * hop : i * hop + window] for i in range(count)])


def np_log_mel(waveform, sample_rate=16000):
    window = int(round(sample_rate * 0.025))
    hop = int(round(sample_rate * 0.010))
    fft_length = 2 ** int(np.ceil(np.log(window) / np.log(2.0)))
    hann = 0.5 - 0.5 * np.cos(2 * np.pi / window * np.arange(window))  # periodic Hann
    spectrogram = np.abs(np.fft.rfft(np_frame(waveform, window, hop) * hann, fft_length))
    return np.log(spectrogram @ np_mel_matrix(num_spectrogram_bins=spectrogram.shape[1]) + 0.01)


def np_examples(waveform):
    """vggish_input.waveform_to_examples on a 16 kHz mono waveform: 96-frame examples every 0.96
    s."""
    return np_frame(np_log_mel(waveform), 96, 96)


def _waveform(seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    chirp = 0.4 * np.sin(2 * np.pi * (200 + 1500 * t) * t)
    return (chirp + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_front_end_constants_are_the_published_ones():
    assert (vggish_params.WINDOW_SAMPLES, vggish_params.HOP_SAMPLES, vggish_params.FFT_LENGTH) == (
        400,
        160,
        512,
    )
    assert (vggish_params.NUM_FRAMES, vggish_params.NUM_BANDS, vggish_params.NUM_MEL_BINS) == (
        96,
        64,
        64,
    )
    assert (vggish_params.MEL_MIN_HZ, vggish_params.MEL_MAX_HZ, vggish_params.LOG_OFFSET) == (
        125.0,
        7500.0,
        0.01,
    )
    np.testing.assert_allclose(
        vggish_input.mel_matrix(tf.float64).numpy(), np_mel_matrix(), atol=1e-6
    )


def test_log_mel_matches_the_published_formulas():
    waveform = _waveform(2.5)
    expected = np_log_mel(waveform.astype(np.float64))
    found = vggish_input.log_mel_spectrogram(waveform).numpy()
    assert found.shape == expected.shape == (1 + (40000 - 400) // 160, 64)
    np.testing.assert_allclose(found, expected, atol=1e-4, rtol=0)
    # Silence: log(0 + 0.01) everywhere.
    np.testing.assert_allclose(
        vggish_input.log_mel_spectrogram(np.zeros(1600, np.float32)), np.log(0.01), atol=1e-6
    )


def test_examples_per_second_and_as_waveform_to_examples():
    waveform = _waveform(10.0, seed=1)  # an AVE-length clip
    reference = np_examples(waveform.astype(np.float64))
    assert reference.shape == (10, 96, 64)  # waveform_to_examples gives exactly 10 on 10 s
    published = vggish_input.waveform_to_examples(waveform, 10, framing="vggish").numpy()
    np.testing.assert_allclose(published, reference, atol=1e-4, rtol=0)
    per_second = vggish_input.waveform_to_examples(waveform, framing="second").numpy()
    assert per_second.shape == (10, 96, 64)
    log_mel = np_log_mel(waveform.astype(np.float64))
    for t in (0, 4, 9):  # example t is the first 0.96 s of second t
        np.testing.assert_allclose(
            per_second[t], log_mel[100 * t : 100 * t + 96], atol=1e-4, rtol=0
        )
    np.testing.assert_allclose(per_second[0], published[0], atol=1e-6)


def test_front_end_runs_inside_a_graph_with_any_length():
    function = tf.function(
        lambda waveform: vggish_input.waveform_to_examples(waveform),
        input_signature=[tf.TensorSpec([None], tf.float32)],
    )
    for seconds in (1.0, 3.2):
        waveform = _waveform(seconds, seed=2)
        np.testing.assert_allclose(
            function(waveform).numpy(),
            vggish_input.waveform_to_examples(waveform).numpy(),
            atol=1e-5,
        )
    assert function(_waveform(3.2)).shape == (3, 96, 64)


# ---------------------------------------------------------------------------------------------
# The official checkpoint, written here.


def published_graph(examples, values, relu_embedding):
    """define_vggish_slim's graph with raw tf.nn ops on the checkpoint's arrays."""
    net = tf.reshape(tf.constant(examples), [-1, 96, 64, 1])

    def conv(net, scope):
        out = (
            tf.nn.conv2d(net, values[f"{scope}/weights"], strides=1, padding="SAME")
            + values[f"{scope}/biases"]
        )
        return tf.nn.relu(out)

    def pool(net):
        return tf.nn.max_pool2d(net, 2, 2, padding="SAME")

    net = pool(conv(net, "vggish/conv1"))
    net = pool(conv(net, "vggish/conv2"))
    net = pool(conv(conv(net, "vggish/conv3/conv3_1"), "vggish/conv3/conv3_2"))
    net = pool(conv(conv(net, "vggish/conv4/conv4_1"), "vggish/conv4/conv4_2"))
    net = tf.reshape(net, [tf.shape(net)[0], -1])  # slim.flatten
    for scope in ("vggish/fc1/fc1_1", "vggish/fc1/fc1_2"):
        net = tf.nn.relu(tf.matmul(net, values[f"{scope}/weights"]) + values[f"{scope}/biases"])
    net = tf.matmul(net, values["vggish/fc2/weights"]) + values["vggish/fc2/biases"]
    return (tf.nn.relu(net) if relu_embedding else net).numpy()


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_checkpoint_loader_reads_the_official_names_and_matches_the_published_graph(
    tmp_path_factory,
):
    path = official_checkpoint(tmp_path_factory)
    assert os.path.isfile(path) and not os.path.exists(path + ".index")  # V1: one file
    values = official_values()
    examples = vggish_input.waveform_to_examples(_waveform(2.0, seed=3)).numpy()
    loaded = vggish_slim.load_checkpoint(vggish_slim.build_vggish("relu"), path)
    assert set(vggish_slim.checkpoint_shapes(loaded)) == set(values)
    for name, value in values.items():
        scope, kind = name.rsplit("/", 1)
        layer = next(layer for layer, s in vggish_params.CHECKPOINT_SCOPES.items() if s == scope)
        np.testing.assert_array_equal(
            loaded.get_layer(layer).get_weights()[kind == "biases"], value
        )
    linear = vggish_slim.build_vggish("linear")
    linear.set_weights(loaded.get_weights())
    for output, model in (("relu", loaded), ("linear", linear)):
        found = model.predict(examples, verbose=0)
        expected = published_graph(examples, values, relu_embedding=output == "relu")
        assert found.shape == (2, 128)
        np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
        if output == "relu":
            assert (found >= 0).all() and (found == 0).any() and (found > 0).any()
        else:
            assert (found < 0).any()


def test_checkpoint_errors_name_the_variable(tmp_path):
    model = vggish_slim.build_vggish()
    missing = write_v1_checkpoint(
        tmp_path / "partial.ckpt", {"vggish/conv1/weights": np.zeros([3, 3, 1, 64], np.float32)}
    )
    with pytest.raises(
        UserError,
        match=r"partial\.ckpt: expected a VGGish checkpoint holding the variable "
        r"vggish/conv1/biases, found no such variable",
    ):
        vggish_slim.load_checkpoint(model, missing)
    values = {
        f"{scope}/{kind}": np.zeros(shape if kind == "weights" else shape[-1:], np.float32)
        for scope, shape in {**OFFICIAL_SHAPES, "vggish/fc2": [4096, 64]}.items()
        for kind in ("weights", "biases")
    }
    values = {name: value for name, value in values.items() if not name.startswith("vggish/fc1/")}
    wrong = write_v1_checkpoint(tmp_path / "wrong.ckpt", values)
    with pytest.raises(UserError, match="holding the variable vggish/fc1/fc1_1/weights"):
        vggish_slim.load_checkpoint(model, wrong)
    with pytest.raises(UserError, match="VGGish checkpoint not found"):
        vggish_slim.load_checkpoint(model, str(tmp_path / "nothing.ckpt"))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint" * 10)
    with pytest.raises(UserError, match=r"garbage\.ckpt: expected a TensorFlow checkpoint"):
        vggish_slim.load_checkpoint(model, str(garbage))


def test_checkpoint_shape_mismatch_is_reported(tmp_path):
    model = vggish_slim.build_vggish()
    values = {
        "vggish/conv1/weights": np.zeros([3, 3, 1, 32], np.float32),
        "vggish/conv1/biases": np.zeros([32], np.float32),
    }
    path = write_v1_checkpoint(tmp_path / "narrow.ckpt", values)
    with pytest.raises(
        UserError,
        match=r"variable vggish/conv1/weights: expected shape \[3, 3, 1, 64\], "
        r"found shape \[3, 3, 1, 32\]",
    ):
        vggish_slim.load_checkpoint(model, path)


# ---------------------------------------------------------------------------------------------
# Post-processing.


def np_postprocess(embeddings, eigen_vectors, means):
    """vggish_postprocess.Postprocessor.postprocess."""
    projected = np.dot(eigen_vectors, (embeddings.T - means.reshape(-1, 1))).T
    clipped = np.clip(projected, -2.0, 2.0)
    return ((clipped - -2.0) * (255.0 / 4.0)).astype(np.uint8)


def test_postprocessing_is_pca_then_8_bit_quantisation(tmp_path):
    rng = np.random.default_rng(4)
    eigen_vectors = np.linalg.qr(rng.standard_normal((128, 128)))[0].astype(np.float32) * 0.5
    means = rng.standard_normal(128).astype(np.float32)
    path = tmp_path / "vggish_pca_params.npz"
    np.savez(
        path, pca_eigen_vectors=eigen_vectors, pca_means=means.reshape(-1, 1)
    )  # as published: a column
    embeddings = (rng.standard_normal((50, 128)) * 3).astype(np.float32)
    found = vggish_postprocess.Postprocessor(str(path))(embeddings).numpy()
    expected = np_postprocess(
        embeddings.astype(np.float64), eigen_vectors.astype(np.float64), means.astype(np.float64)
    )
    assert (
        found.dtype == np.float32 and found.min() == 0 and found.max() == 255
    )  # both clip ends reached
    differences = np.abs(found - expected)
    assert (
        differences.max() <= 1 and (differences == 0).mean() > 0.99
    )  # float32 vs float64 at bin edges only
    bad = tmp_path / "bad.npz"
    np.savez(bad, pca_eigen_vectors=eigen_vectors[:64])
    with pytest.raises(UserError, match="pca_means"):
        vggish_postprocess.Postprocessor(str(bad))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, pca_eigen_vectors=eigen_vectors, pca_means=np.array([means], dtype=object))
    with pytest.raises(UserError, match=r"pickled.npz: expected .* found a pickled object array"):
        vggish_postprocess.Postprocessor(str(pickled))


AVE_NOISY_AUDIO = str(REAL_AVE / "audio_feature_noisy.h5")


@needs_real_ave("audio_feature_noisy.h5")
def test_ave_audio_features_are_relu_embeddings_not_postprocessed():
    """What the README says about the release: non-negative floats with many exact zeros
    (the 2017 embedding with ReLU), not whole numbers 0..255 (post-processed)."""
    import h5py

    with h5py.File(AVE_NOISY_AUDIO, "r") as handle:
        audio = handle["avadataset"][:]
    assert audio.shape[1:] == (10, 128)
    assert audio.min() == 0.0 and 0.5 < (audio == 0).mean() < 0.8 and audio.max() < 10
    assert (audio != np.round(audio)).mean() > 0.3
