"""CMBS (Xia, Zhao, CVPR 2022): the model folder a Task uses.

build: the Keras model (full or weak supervision, any length); losses / targets: the authors'
losses over its outputs; decoding: per-segment labels and probabilities in keras.ops;
import_state_dict: the authors' PyTorch weights; recipe: their sizes and training recipes.
"""

from avsdn_tf.models.cmbs import decoding, losses, recipe
from avsdn_tf.models.cmbs.model import FULL_OUTPUTS, WEAK_OUTPUTS, build, default_options
from avsdn_tf.models.cmbs.torch_import import import_state_dict

__all__ = [
    "FULL_OUTPUTS",
    "WEAK_OUTPUTS",
    "build",
    "decoding",
    "default_options",
    "import_state_dict",
    "losses",
    "recipe",
]
