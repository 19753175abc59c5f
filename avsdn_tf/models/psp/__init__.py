"""PSP (Zhou et al., CVPR 2021; jasongief/PSP_CVPR_2021): fully and weakly supervised.

What a Task needs: `build` (the Keras model and its named outputs), `losses` (the Keras
losses, their weights and targets per output), the targets from segment labels
(`avps_targets`, `proportion_targets`, `video_label_targets`), `import_state_dict` (the
authors' PyTorch weights) and `recipe` (the authors' training recipe and sizes).
"""

from avsdn_tf.models.psp import recipe
from avsdn_tf.models.psp.layers import (
    PositiveSamplePropagation,
    SegmentCosineSimilarity,
    TemporalWeighting,
)
from avsdn_tf.models.psp.losses import (
    AVPSLoss,
    avps_loss,
    avps_targets,
    losses,
    proportion_targets,
    video_label_targets,
)
from avsdn_tf.models.psp.model import OPTION_NAMES, build
from avsdn_tf.models.psp.torch_import import import_state_dict

__all__ = [
    "AVPSLoss",
    "OPTION_NAMES",
    "PositiveSamplePropagation",
    "SegmentCosineSimilarity",
    "TemporalWeighting",
    "avps_loss",
    "avps_targets",
    "build",
    "import_state_dict",
    "losses",
    "proportion_targets",
    "recipe",
    "video_label_targets",
]
