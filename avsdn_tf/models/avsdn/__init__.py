"""AVSDN (Lin, Li, Wang, ICASSP 2019) and the paper's ablations of its decoder initialisation."""

from avsdn_tf.models.avsdn.model import build

__all__ = ["build"]
