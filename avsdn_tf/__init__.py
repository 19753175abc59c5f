"""avsdn-tf: AVSDN (Lin, Li, Wang, ICASSP 2019) and the AVEL baselines in TensorFlow / Keras."""

import os

# TensorFlow's C++ start-up notes (CPU features, oneDNN, CUDA plugin registration, logged even on
# CPU) would open every command's output; a user mistake should read as one line. Set
# TF_CPP_MIN_LOG_LEVEL yourself to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"
