"""VGGish in TensorFlow 2 / Keras: the log-mel front end, the network, the official checkpoint
and the PCA + 8-bit post-processing, as tensorflow/models research/audioset/vggish defines them.

Front end (vggish_input.waveform_to_examples with mel_features.log_mel_spectrogram), in TF ops
only, so it also runs inside a tf.function or a SavedModel:
  16 kHz mono waveform -> frames of 400 samples (25 ms) every 160 samples (10 ms), no padding
  -> periodic Hann window -> |rfft| with 512 points (257 bins) -> 64 triangular mel bands from
  125 to 7500 Hz on the HTK mel scale (mel = 1127 ln(1 + f / 700), DC bin weight 0)
  -> log(mel + 0.01) -> examples of 96 frames x 64 bands (0.96 s).

Examples per 1-s segment ("framing"):
  second  example t = log-mel frames [100 t, 100 t + 96): the first 0.96 s of second t, the same
          whatever the video's length (the default).
  vggish  examples every 0.96 s, as waveform_to_examples frames a whole clip; the first T are
          kept. For a 10-s clip this gives exactly 10 examples, the layout of a VGGish run on an
          AVE clip; on longer videos example t drifts 0.04 t s ahead of second t.

Network (vggish_slim.define_vggish_slim): conv 3x3 SAME + ReLU, max-pool 2x2 stride 2:
  conv1 64, pool1, conv2 128, pool2, conv3/conv3_1 256, conv3/conv3_2 256, pool3,
  conv4/conv4_1 512, conv4/conv4_2 512, pool4, flatten (6 x 4 x 512 = 12288, NHWC order),
  fc1/fc1_1 4096 + ReLU, fc1/fc1_2 4096 + ReLU, fc2 128. The checkpoint vggish_model.ckpt (TF1,
  V1 format) holds `vggish/<scope>/weights` and `vggish/<scope>/biases` for each of them.

Outputs ("vggish_output"):
  relu           fc2 followed by ReLU, as vggish_slim.py had it in 2017-2019 (every layer inherited
                 the ReLU of its arg_scope). The AVE release's audio features are these: >= 0, about
                 65% exact zeros, maxima near 4.5 (audio_feature_noisy.h5). The default.
  linear         fc2 without activation, as vggish_slim.py defines it today.
  postprocessed  linear, then the published PCA (vggish_pca_params.npz: pca_eigen_vectors [128, 128],
                 pca_means [128]), clipped to [-2, 2] and quantised to 0..255 (truncated, as the
                 uint8 cast does): the AudioSet / YouTube-8M release format, stored as floats.
"""

import os

import numpy as np
import tensorflow as tf

from avsdn_tf.errors import UserError, argument_error, input_error

# The official files (the VGGish README in tensorflow/models), fetched once into Keras' cache
# (KERAS_HOME, default ~/.keras) under vggish/ as keras.applications fetches ImageNet weights.
OFFICIAL_BASE_URL = "https://storage.googleapis.com/audioset/"
BASE_URL_ENV = "AVSDN_TF_VGGISH_BASE_URL"  # another base (a mirror, or file:// in the tests)
CACHE_SUBDIR = "vggish"
CHECKPOINT_FILE = "vggish_model.ckpt"
PCA_PARAMS_FILE = "vggish_pca_params.npz"

# The published parameters (vggish_params.py).
SAMPLE_RATE = 16000
STFT_WINDOW_LENGTH_SECONDS = 0.025
STFT_HOP_LENGTH_SECONDS = 0.010
NUM_MEL_BINS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_WINDOW_SECONDS = 0.96
EXAMPLE_HOP_SECONDS = 0.96
NUM_FRAMES = 96
NUM_BANDS = 64
EMBEDDING_SIZE = 128
PCA_EIGEN_VECTORS_NAME = "pca_eigen_vectors"
PCA_MEANS_NAME = "pca_means"
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = 2.0

# Derived as mel_features.log_mel_spectrogram derives them.
WINDOW_SAMPLES = int(round(SAMPLE_RATE * STFT_WINDOW_LENGTH_SECONDS))  # 400
HOP_SAMPLES = int(round(SAMPLE_RATE * STFT_HOP_LENGTH_SECONDS))  # 160
FFT_LENGTH = 2 ** int(np.ceil(np.log2(WINDOW_SAMPLES)))  # 512
FRAMES_PER_SECOND = int(round(1.0 / STFT_HOP_LENGTH_SECONDS))  # 100 log-mel frames per second

OUTPUTS = ("relu", "linear", "postprocessed")
FRAMINGS = ("second", "vggish")

# Keras layer name -> checkpoint scope, in network order.
CHECKPOINT_SCOPES = {
    "conv1": "vggish/conv1",
    "conv2": "vggish/conv2",
    "conv3_1": "vggish/conv3/conv3_1",
    "conv3_2": "vggish/conv3/conv3_2",
    "conv4_1": "vggish/conv4/conv4_1",
    "conv4_2": "vggish/conv4/conv4_2",
    "fc1_1": "vggish/fc1/fc1_1",
    "fc1_2": "vggish/fc1/fc1_2",
    "fc2": "vggish/fc2",
}


# ---------------------------------------------------------------------------------------------
# Front end.


def mel_matrix(dtype=tf.float32):
    """[257, 64] weights from |rfft| bins to mel bands (mel_features.spectrogram_to_mel_matrix).
    tf.signal's matrix uses the same HTK formula and also zeroes the DC bin.

    Args:
        dtype: the dtype of the result (computed in float64).
    Returns:
        [257, 64] tensor of `dtype`.
    """
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=NUM_MEL_BINS,
        num_spectrogram_bins=FFT_LENGTH // 2 + 1,
        sample_rate=SAMPLE_RATE,
        lower_edge_hertz=MEL_MIN_HZ,
        upper_edge_hertz=MEL_MAX_HZ,
        dtype=tf.float64,
    )
    return tf.cast(matrix, dtype)


def log_mel_spectrogram(waveform):
    """[frames, 64] log-mel spectrogram of a 16 kHz mono waveform [samples] (float, about [-1, 1]).

    Args:
        waveform: float [samples] 16 kHz mono, about [-1, 1].
    Returns:
        float32 [frames, 64], frames = 1 + (samples - 400) // 160 (0 below 400 samples): 25-ms
        windows every 10 ms, log(mel + 0.01).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    stft = tf.signal.stft(
        waveform,
        frame_length=WINDOW_SAMPLES,
        frame_step=HOP_SAMPLES,
        fft_length=FFT_LENGTH,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )  # hann_window is periodic
    mel = tf.matmul(tf.abs(stft), mel_matrix())
    return tf.math.log(mel + LOG_OFFSET)


def examples_from_log_mel(log_mel, num_segments, framing="second"):
    """[T, 96, 64] examples, one per 1-s segment (see the module docstring for the framings).

    Args:
        log_mel: float32 [frames, 64] (log_mel_spectrogram); "second" framing needs at least
            100 T - 4 frames (T whole seconds of waveform give 100 T - 2).
        num_segments: T, an int or int32 scalar tensor.
        framing: "second" or "vggish".
    Returns:
        float32 [T, 96, 64]; with "vggish", fewer than T when log_mel is too short for T.
    Raises:
        errors.UserError: for another framing.
    """
    if framing == "second":
        starts = tf.range(num_segments) * FRAMES_PER_SECOND
        return tf.gather(log_mel, starts[:, None] + tf.range(NUM_FRAMES)[None, :])
    if framing == "vggish":
        hop = int(round(EXAMPLE_HOP_SECONDS * FRAMES_PER_SECOND))
        return tf.signal.frame(log_mel, NUM_FRAMES, hop, axis=0)[:num_segments]
    raise argument_error("audio_framing", f"one of {FRAMINGS}", repr(framing))


def waveform_to_examples(waveform, num_segments=None, framing="second"):
    """[T, 96, 64] VGGish examples of a 16 kHz mono waveform; T defaults to its whole seconds.

    Args:
        waveform: float [samples] 16 kHz mono, about [-1, 1].
        num_segments: T; default samples // 16000.
        framing: "second" or "vggish" (examples_from_log_mel).
    Returns:
        float32 [T, 96, 64] log-mel examples.
    Raises:
        errors.UserError: for another framing.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if num_segments is None:
        num_segments = tf.shape(waveform)[0] // SAMPLE_RATE
    return examples_from_log_mel(log_mel_spectrogram(waveform), num_segments, framing)


# ---------------------------------------------------------------------------------------------
# The official files, downloaded once.


def official_url(file_name):
    """The URL of an official VGGish file: $AVSDN_TF_VGGISH_BASE_URL or OFFICIAL_BASE_URL + name."""
    base = os.environ.get(BASE_URL_ENV) or OFFICIAL_BASE_URL
    return base.rstrip("/") + "/" + file_name


def cache_dir():
    """Keras' cache directory, as keras.utils.get_file uses it: $KERAS_HOME or ~/.keras."""
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def fetch_official(file_name, argument, verbose=True):
    """The local path of an official VGGish file, downloaded on first use.

    Args:
      file_name: CHECKPOINT_FILE or PCA_PARAMS_FILE.
      argument: the argument (flag) that takes a local copy instead, named in the error.
      verbose: print where the file is (and where it came from on download).

    Returns:
      The path in the cache: cache_dir()/vggish/<file_name>.
    """
    import keras

    url = official_url(file_name)
    directory = os.path.join(cache_dir(), CACHE_SUBDIR)
    path = os.path.join(directory, file_name)
    cached = os.path.exists(path)
    try:
        # get_file falls back to /tmp/.keras when the cache does not exist yet: make it first.
        os.makedirs(directory, exist_ok=True)
        path = keras.utils.get_file(
            file_name, url, cache_subdir=CACHE_SUBDIR, cache_dir=cache_dir()
        )
    except Exception as error:  # get_file raises Exception for every URL failure
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise UserError(
            f"{argument}: expected to download {url} into {path}, found {reason}; "
            f"without network access, copy the file over and pass --{argument}=PATH",
            argument=argument,
        ) from None
    if verbose:
        print(
            f"vggish: {path}" + (" (cached)" if cached else f" (downloaded from {url})"), flush=True
        )
    return path


# ---------------------------------------------------------------------------------------------
# Network and checkpoint.


def build_vggish(output="relu"):
    """The VGGish network in Keras: [B, 96, 64] log-mel examples -> [B, 128] embeddings.

    output "relu" ends with ReLU (the 2017 model that made the AVE features); "linear" and
    "postprocessed" end without one (post-processing is applied by `Postprocessor`).

    Args:
        output: "relu", "linear" or "postprocessed".
    Returns:
        keras.Model "vggish": float32 [B, 96, 64] -> float32 [B, 128], with random weights until
        load_checkpoint sets them.
    Raises:
        errors.UserError: for another output.
    """
    import keras

    if output not in OUTPUTS:
        raise argument_error("vggish_output", f"one of {OUTPUTS}", repr(output))

    def conv(units, name):
        """A 3x3 SAME convolution with ReLU (vggish_slim's arg_scope).

        Args:
            units: output channels. name: the layer name (a key of CHECKPOINT_SCOPES).
        Returns:
            keras.layers.Conv2D.
        """
        return keras.layers.Conv2D(units, 3, padding="same", activation="relu", name=name)

    def pool(name):
        """A 2x2 stride-2 max-pool: halves height and width.

        Args:
            name: the layer name.
        Returns:
            keras.layers.MaxPooling2D.
        """
        return keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)

    inputs = keras.Input((NUM_FRAMES, NUM_BANDS), name="log_mel")
    net = keras.layers.Reshape((NUM_FRAMES, NUM_BANDS, 1), name="add_channel")(inputs)
    net = pool("pool1")(conv(64, "conv1")(net))
    net = pool("pool2")(conv(128, "conv2")(net))
    net = pool("pool3")(conv(256, "conv3_2")(conv(256, "conv3_1")(net)))
    net = pool("pool4")(conv(512, "conv4_2")(conv(512, "conv4_1")(net)))
    net = keras.layers.Flatten(name="flatten")(net)
    net = keras.layers.Dense(4096, activation="relu", name="fc1_1")(net)
    net = keras.layers.Dense(4096, activation="relu", name="fc1_2")(net)
    net = keras.layers.Dense(
        EMBEDDING_SIZE, activation="relu" if output == "relu" else None, name="fc2"
    )(net)
    return keras.Model(inputs, net, name="vggish")


def _checkpoint_reader(path):
    if not path:
        raise UserError(
            "vggish_checkpoint: expected the path of vggish_model.ckpt, found none",
            argument="vggish_checkpoint",
        )
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if not tf.io.gfile.exists(path) and not tf.io.gfile.exists(f"{path}.index"):
            raise UserError(f"{path}: VGGish checkpoint not found") from None
        raise input_error(
            path,
            "a TensorFlow checkpoint (vggish_model.ckpt, V1 or V2 format)",
            f"a file TensorFlow cannot read as one ({message})",
        ) from None


def checkpoint_shapes(model):
    """{checkpoint variable name: shape} that `model` needs, in network order.

    Args:
        model: a build_vggish model.
    Returns:
        dict "vggish/<scope>/weights" and "vggish/<scope>/biases" -> shape as a list of ints,
        e.g. vggish/conv1/weights [3, 3, 1, 64], vggish/fc2/biases [128].
    """
    shapes = {}
    for layer_name, scope in CHECKPOINT_SCOPES.items():
        layer = model.get_layer(layer_name)
        shapes[f"{scope}/weights"] = list(layer.kernel.shape)
        shapes[f"{scope}/biases"] = list(layer.bias.shape)
    return shapes


def load_checkpoint(model, path):
    """Set the weights of a `build_vggish` model from the official checkpoint, by variable name.

    Every variable is checked for presence and shape before any weight is set; variables the
    model does not use (optimizer slots, a global step) are ignored.

    Args:
        model: a build_vggish model.
        path: the checkpoint prefix (vggish_model.ckpt), local or a storage URL.
    Returns:
        the same model, its weights set.
    Raises:
        errors.UserError: when path is empty or not found, is not a checkpoint TensorFlow reads,
            lacks a variable the model needs or holds one of another shape.
    """
    reader = _checkpoint_reader(path)
    available = reader.get_variable_to_shape_map()
    needed = checkpoint_shapes(model)
    for name, shape in needed.items():
        if name not in available:
            found = sorted(available)
            listing = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
            raise input_error(
                path,
                f"a VGGish checkpoint holding the variable {name}",
                f"no such variable among its {len(found)} ({listing})",
            )
        if list(available[name]) != shape:
            raise input_error(
                f"{path} variable {name}", f"shape {shape}", f"shape {list(available[name])}"
            )
    for layer_name, scope in CHECKPOINT_SCOPES.items():
        model.get_layer(layer_name).set_weights(
            [reader.get_tensor(f"{scope}/weights"), reader.get_tensor(f"{scope}/biases")]
        )
    return model


# ---------------------------------------------------------------------------------------------
# Post-processing.


class Postprocessor:
    """PCA (with whitening) and 8-bit quantisation of linear embeddings, as vggish_postprocess.py."""

    def __init__(self, pca_params_path):
        if not pca_params_path:
            raise UserError(
                "vggish_pca_params: expected the path of vggish_pca_params.npz "
                "(needed by `vggish_output=postprocessed`), found none",
                argument="vggish_pca_params",
            )
        if not tf.io.gfile.exists(pca_params_path):
            raise UserError(f"{pca_params_path}: VGGish PCA parameters not found")
        try:
            with tf.io.gfile.GFile(pca_params_path, "rb") as handle, np.load(handle) as params:
                eigen_vectors = np.asarray(params[PCA_EIGEN_VECTORS_NAME], np.float32)
                means = np.asarray(params[PCA_MEANS_NAME], np.float32)
        except (OSError, ValueError, KeyError) as error:
            raise input_error(
                pca_params_path,
                f"an .npz with arrays {PCA_EIGEN_VECTORS_NAME!r} and {PCA_MEANS_NAME!r}",
                f"{type(error).__name__}: {error}",
            ) from None
        if eigen_vectors.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE):
            raise input_error(
                f"{pca_params_path} array {PCA_EIGEN_VECTORS_NAME}",
                f"shape {[EMBEDDING_SIZE, EMBEDDING_SIZE]}",
                f"shape {list(eigen_vectors.shape)}",
            )
        if means.size != EMBEDDING_SIZE:
            raise input_error(
                f"{pca_params_path} array {PCA_MEANS_NAME}",
                f"{EMBEDDING_SIZE} values",
                f"shape {list(means.shape)}",
            )
        self.eigen_vectors = tf.constant(eigen_vectors)
        self.means = tf.constant(means.reshape(EMBEDDING_SIZE))

    def __call__(self, embeddings):
        """[N, 128] linear embeddings -> [N, 128] float32 values in 0..255 (whole numbers)."""
        projected = tf.matmul(
            tf.convert_to_tensor(embeddings, tf.float32) - self.means,
            self.eigen_vectors,
            transpose_b=True,
        )
        clipped = tf.clip_by_value(projected, QUANTIZE_MIN_VAL, QUANTIZE_MAX_VAL)
        scaled = (clipped - QUANTIZE_MIN_VAL) * (255.0 / (QUANTIZE_MAX_VAL - QUANTIZE_MIN_VAL))
        return tf.floor(scaled)


# ---------------------------------------------------------------------------------------------
# Waveform -> one 128-d feature per 1-s segment.


class AudioFeatureExtractor:
    """VGGish features [T, 128] of a 16 kHz mono waveform, one per whole second."""

    def __init__(self, checkpoint, output="relu", pca_params=None, framing="second", batch_size=64):
        if framing not in FRAMINGS:
            raise argument_error("audio_framing", f"one of {FRAMINGS}", repr(framing))
        self.output, self.framing, self.batch_size = output, framing, batch_size
        self.postprocessor = Postprocessor(pca_params) if output == "postprocessed" else None
        self.model = load_checkpoint(build_vggish(output), checkpoint)
        self._embed = tf.function(
            lambda examples: self.model(examples, training=False),
            input_signature=[tf.TensorSpec([None, NUM_FRAMES, NUM_BANDS], tf.float32)],
        )

    def examples(self, waveform, num_segments):
        """The VGGish examples of a waveform, in this extractor's framing.

        Args:
            waveform: float32 [samples] 16 kHz mono. num_segments: T.
        Returns:
            float32 [T, 96, 64] tensor (waveform_to_examples).
        """
        return waveform_to_examples(waveform, num_segments, self.framing)

    def __call__(self, waveform, num_segments):
        examples = self.examples(waveform, num_segments)
        outputs = [
            self._embed(examples[start : start + self.batch_size])
            for start in range(0, int(examples.shape[0]), self.batch_size)
        ]
        embeddings = tf.concat(outputs, axis=0)
        if self.postprocessor is not None:
            embeddings = self.postprocessor(embeddings)
        return embeddings.numpy().astype(np.float32)
