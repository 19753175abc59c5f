"""avsdn-tf: AVSDN (Lin, Li, Wang, ICASSP 2019) and the AVEL baselines in TensorFlow / Keras."""

__version__ = "0.2.0"
