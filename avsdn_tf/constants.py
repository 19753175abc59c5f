"""Every constant and default of the project, in one place (as vggish_params does for VGGish)."""

import importlib.resources

# The AVE task: T one-second segments, 28 event categories plus background.
NUM_SEGMENTS = 10
NUM_EVENT_CLASSES = 28
BACKGROUND = 28
NUM_CLASSES = NUM_EVENT_CLASSES + 1

# Feature sizes of the official AVE release.
AUDIO_DIM = 128
VISUAL_MAP_SHAPE = (7, 7, 512)
VISUAL_VECTOR_DIM = 512

# Visual layouts stored in records: one vector per segment, or a flattened H x W x C map.
LAYOUT_VECTOR = "vector"
LAYOUT_MAP = "map"

# Split names. The background-only videos of the weak-supervision release are their own split.
SPLITS = ("train", "val", "test")
SPLIT_NAME_PATTERN = r"^[A-Za-z0-9_]+$"  # what any split may be called (own videos: a CSV column)
NOISY_SPLIT = "noisy"

# Category index stored for videos that hold no event at all.
NO_CATEGORY = -1

# Label of a padding segment (videos of different lengths batched together): losses, metrics
# and the serving outputs skip it.
PAD_LABEL = -1

# Supervisions: segment labels (full) or the video label only (weak).
FULL = "full"
WEAK = "weak"
SUPERVISIONS = (FULL, WEAK)

# tf.distribute strategies (--strategy): auto picks MirroredStrategy over several GPUs, else the
# default; multi_worker reads the cluster from TF_CONFIG.
SINGLE_PROCESS_STRATEGIES = ("auto", "default", "mirrored")  # what one tuning trial may use
STRATEGIES = (*SINGLE_PROCESS_STRATEGIES, "multi_worker")

# Output names of the Keras models: per-segment probabilities [B, T, 29], the weak head's
# time-pooled distribution [B, 29], the label-guided ablation's two video-label heads [B, 29].
SEGMENT_OUTPUT = "segment_probs"
VIDEO_OUTPUT = "video_probs"
GUIDE_OUTPUTS = ("audio_guide", "visual_guide")

# Names of the normalisation layers every model starts with (train-split statistics inside).
AUDIO_NORMALIZATION = "audio_normalization"
VISUAL_NORMALIZATION = "visual_normalization"
MIN_STD = 1e-6  # a constant feature is divided by this instead of zero

# Files every data directory carries beside its shards.
DATASET_INFO_FILE = "dataset_info.json"
NORMALIZATION_FILE = "normalization.json"
SHARD_PATTERN = "{split}-{index:05d}-of-{count:05d}.tfrecord"

# The release's h5 datasets all use this key; the order files use "order".
H5_KEY = "avadataset"
ORDER_KEY = "order"

# Where `python -m avsdn_tf.train` with no flags keeps its built-in data set and run.
DEFAULT_SYNTHETIC_DIR = "~/.cache/avsdn_tf/synthetic"
DEFAULT_MODEL_DIR = "runs/avsdn"


def _read_resource(name):
    return importlib.resources.files("avsdn_tf.resources").joinpath(name).read_text()


def category_names():
    """The 28 AVE categories in class-index order, as categories.txt ships them."""
    return [line.strip() for line in _read_resource("categories.txt").splitlines() if line.strip()]


def class_names():
    """All 29 class names: the 28 categories, then background at index 28."""
    return category_names() + ["background"]


def resource_text(name):
    """Text of a file packaged in avsdn_tf/resources (the AVE annotation files).

    Args:
        name: the file name, e.g. "Annotations.txt".
    Returns:
        str: its content.
    """
    return _read_resource(name)


# Cross-modality localization (AVEL Sec. 5, the authors' AVDLN): embedding sizes (units), the
# contrastive loss margin (distance units) and the floor under the squared distance (Keras 2's
# K.epsilon(), squared-distance units) before its square root.
AVDLN_HIDDEN_UNITS = 128
AVDLN_EMBEDDING_UNITS = 64
AVDLN_LEAKY_SLOPE = 0.3
CONTRASTIVE_MARGIN = 2.0
DISTANCE_EPSILON = 1e-7
