"""VGGish's parameters, as tensorflow/models research/audioset/vggish/vggish_params.py defines
them, and the official files. Constants only, grouped, each with its unit."""

import numpy as np

# -- The official files (the VGGish README in tensorflow/models), fetched once into Keras'
# cache (KERAS_HOME, default ~/.keras) under vggish/, as keras.applications fetches weights.
OFFICIAL_BASE_URL = "https://storage.googleapis.com/audioset/"  # (URL)
BASE_URL_ENV = "AVSDN_TF_VGGISH_BASE_URL"  # another base: a mirror, or file:// (variable name)
CACHE_SUBDIR = "vggish"  # under the Keras cache (directory name)
CHECKPOINT_FILE = "vggish_model.ckpt"  # the network's weights, TF1 V1 checkpoint (file name)
PCA_PARAMS_FILE = "vggish_pca_params.npz"  # the post-processing PCA (file name)

# -- Audio and the log-mel front end.
SAMPLE_RATE = 16000  # the waveform's rate (Hz)
STFT_WINDOW_LENGTH_SECONDS = 0.025  # one STFT frame (seconds)
STFT_HOP_LENGTH_SECONDS = 0.010  # between STFT frames (seconds)
NUM_MEL_BINS = 64  # mel bands (bands)
MEL_MIN_HZ = 125.0  # lowest mel band edge (Hz)
MEL_MAX_HZ = 7500.0  # highest mel band edge (Hz)
LOG_OFFSET = 0.01  # added before the log (mel magnitude)

# -- Examples: what the network takes.
EXAMPLE_WINDOW_SECONDS = 0.96  # one example (seconds)
EXAMPLE_HOP_SECONDS = 0.96  # between examples when a clip is framed whole (seconds)
NUM_FRAMES = 96  # log-mel frames per example (frames)
NUM_BANDS = 64  # mel bands per example (bands)

# -- Derived, as mel_features.log_mel_spectrogram derives them.
WINDOW_SAMPLES = int(round(SAMPLE_RATE * STFT_WINDOW_LENGTH_SECONDS))  # 400 (samples)
HOP_SAMPLES = int(round(SAMPLE_RATE * STFT_HOP_LENGTH_SECONDS))  # 160 (samples)
FFT_LENGTH = 2 ** int(np.ceil(np.log2(WINDOW_SAMPLES)))  # 512 (points)
FRAMES_PER_SECOND = int(round(1.0 / STFT_HOP_LENGTH_SECONDS))  # 100 (log-mel frames per second)

# -- The network's output and the post-processing.
EMBEDDING_SIZE = 128  # fc2's width (units)
PCA_EIGEN_VECTORS_NAME = "pca_eigen_vectors"  # array in PCA_PARAMS_FILE, [128, 128] (name)
PCA_MEANS_NAME = "pca_means"  # array in PCA_PARAMS_FILE, [128] (name)
QUANTIZE_MIN_VAL = -2.0  # PCA output clipped to this before 8-bit quantisation (value)
QUANTIZE_MAX_VAL = 2.0  # PCA output clipped to this before 8-bit quantisation (value)

# -- Choices.
OUTPUTS = ("relu", "linear", "postprocessed")  # --vggish_output (names)
FRAMINGS = ("second", "vggish")  # --audio_framing: examples per 1-s segment (names)

# -- Keras layer name -> checkpoint scope, in network order.
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
