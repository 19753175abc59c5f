"""Imported first by every command module (`python -m avsdn_tf.<verb>`, export.*, tuning.tune).

TensorFlow's C++ start-up notes (CPU features, oneDNN, CUDA plugin registration, logged even on
a CPU) would open every command's output; a user mistake should read as one line. TensorFlow
reads TF_CPP_MIN_LOG_LEVEL once, when it loads, so this must run before the first import of
TensorFlow: the ruff isort section "command-logging" (pyproject.toml) sorts it first. Set
TF_CPP_MIN_LOG_LEVEL yourself to see the notes. The library itself (import avsdn_tf) changes
no logging: code that uses it keeps TensorFlow's defaults.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
