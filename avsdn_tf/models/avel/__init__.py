"""The AVEL baselines (Tian et al., ECCV 2018): audio, visual, A+V (with attention) and DMRN."""

from avsdn_tf.models.avel.model import build, build_dmrn

__all__ = ["build", "build_dmrn"]
