"""AVEL's cross-modality localization (A2V / V2A): the AVE authors' audio-visual distance
learning network (model.py), its task (task.py) and its serving graph (serving.py)."""

from avsdn_tf.models.avdln.model import (
    AUDIO_EMBEDDING,
    DISTANCE_OUTPUT,
    H5_LAYERS,
    VISUAL_EMBEDDING,
    build_avdln,
    embedding_model,
    evaluate,
    evaluate_batches,
    event_targets,
    import_keras2_weights,
    read_keras2_weights,
    variable_length,
)

__all__ = [
    "AUDIO_EMBEDDING",
    "DISTANCE_OUTPUT",
    "H5_LAYERS",
    "VISUAL_EMBEDDING",
    "build_avdln",
    "embedding_model",
    "evaluate",
    "evaluate_batches",
    "event_targets",
    "import_keras2_weights",
    "read_keras2_weights",
    "variable_length",
]
