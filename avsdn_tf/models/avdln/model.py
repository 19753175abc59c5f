"""The AVEL authors' audio-visual distance learning network (AVDLN) for cross-modality
localization (A2V / V2A), and the import of their released Keras 2 weights (cmm_model_weights.h5).

visual [B, T, 512] -> Dense(128) -> LeakyReLU(0.3) -> Dense(64); audio [B, T, 128] -> Dense(128)
-> LeakyReLU(0.3) -> Dense(64); distance [B, T] = sqrt(max(sum((v - a)^2), eps)). The model takes
raw features (no normalisation layers: the authors' code feeds raw features); visual maps
[B, T, H, W, C] are averaged over space inside the model first.
"""

import h5py
import keras
import numpy as np
from keras import ops

from avsdn_tf import constants
from avsdn_tf.errors import input_error
from avsdn_tf.models import layers, metrics

DISTANCE_OUTPUT = "distance"
AUDIO_EMBEDDING = "audio_embedding"
VISUAL_EMBEDDING = "visual_embedding"

# Layer of this model <- layer of the authors' h5 file (their Keras 2 names, in build order).
H5_LAYERS = {
    "visual_hidden": "dense_1",
    "visual_projection": "dense_2",
    "audio_hidden": "dense_3",
    "audio_projection": "dense_4",
}


def build_avdln(
    audio_dim=128, visual_dim=512, num_segments=constants.NUM_SEGMENTS, visual_map_shape=None
):
    """The AVDLN Keras model.

    Args:
        audio_dim: A, the audio feature size; visual_dim: V, the pooled visual vector size.
        num_segments: T, or None for any length.
        visual_map_shape: (H, W, C) when the visual input is a map per segment (averaged over
            space inside the model to a C-d vector; visual_dim is then ignored), else None.
    Returns:
        keras.Model mapping {"audio": [B, T, A], "visual": [B, T, V] or [B, T, H, W, C]} to
        {"distance": [B, T], "audio_embedding": [B, T, 64], "visual_embedding": [B, T, 64]}.
    """
    audio = keras.Input((num_segments, audio_dim), name="audio")
    if visual_map_shape is None:
        visual_input = visual = keras.Input((num_segments, visual_dim), name="visual")
    else:
        visual_input = keras.Input((num_segments, *visual_map_shape), name="visual")
        visual = layers.SpatialAveragePooling(name="visual_pooling")(visual_input)

    def branch(features, modality):
        hidden = keras.layers.Dense(constants.AVDLN_HIDDEN_UNITS, name=f"{modality}_hidden")(
            features
        )
        hidden = keras.layers.LeakyReLU(constants.AVDLN_LEAKY_SLOPE)(hidden)
        return keras.layers.Dense(constants.AVDLN_EMBEDDING_UNITS, name=f"{modality}_projection")(
            hidden
        )

    audio_embedding, visual_embedding = branch(audio, "audio"), branch(visual, "visual")
    distance = metrics.embedding_distance(visual_embedding, audio_embedding)
    outputs = {
        DISTANCE_OUTPUT: keras.layers.Identity(name=DISTANCE_OUTPUT)(distance),
        AUDIO_EMBEDDING: keras.layers.Identity(name=AUDIO_EMBEDDING)(audio_embedding),
        VISUAL_EMBEDDING: keras.layers.Identity(name=VISUAL_EMBEDDING)(visual_embedding),
    }
    return keras.Model({"audio": audio, "visual": visual_input}, outputs, name="avdln")


def variable_length(model):
    """An AVDLN model that takes any number of segments, with `model`'s weights.

    Args:
        model: a model from build_avdln, for a fixed T or for any (num_segments=None).
    Returns:
        `model` itself when its time axis is already None and it reads vectors, else
        build_avdln(A, V, None) with the same weights (the Dense layers act per segment, so the
        outputs are the same; a model of visual maps becomes one of their pooled V-d vectors,
        its pooling having no weights).
    Raises:
        UserError: when `model` does not take {"audio": [B, T, A], "visual": [B, T, V]} and
            give the audio and visual embeddings, or its weights do not fit an AVDLN.
    """
    inputs = {tensor.name: tensor.shape for tensor in model.inputs}
    outputs = model.output if isinstance(model.output, dict) else {}
    wanted = {"audio", "visual"}
    if set(inputs) != wanted or not {AUDIO_EMBEDDING, VISUAL_EMBEDDING} <= set(outputs):
        raise input_error(
            f"model {model.name!r}",
            "an AVDLN model (inputs audio and visual, outputs audio_embedding and "
            "visual_embedding)",
            f"inputs {sorted(inputs)} and outputs {sorted(outputs)}",
        )
    if all(shape[1] is None for shape in inputs.values()) and len(inputs["visual"]) == 3:
        return model
    rebuilt = build_avdln(inputs["audio"][-1], inputs["visual"][-1], num_segments=None)
    try:
        rebuilt.set_weights(model.get_weights())
    except ValueError as error:
        raise input_error(
            f"model {model.name!r}", "the weights of an AVDLN model", f"{error}"
        ) from None
    return rebuilt


def read_keras2_weights(path):
    """The kernels and biases of a Keras 2 `save_weights` h5 file.

    Args:
        path: the h5 file (layer groups, each with a `weight_names` attribute).
    Returns:
        {layer name: [kernel [in, out], bias [out]] as float32 arrays} for the layers that
        have weights.
    Raises:
        UserError naming the file when it cannot be read as such.
    """
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        raise input_error(path, "a Keras 2 weights h5 file", "no such file") from None
    except OSError as error:
        raise input_error(
            path, "a Keras 2 weights h5 file", f"a file h5py cannot open ({error})"
        ) from None
    with handle:
        weights = {}
        for layer in handle.keys():
            group = handle[layer]
            names = [
                n.decode() if isinstance(n, bytes) else n
                for n in group.attrs.get("weight_names", [])
            ]
            if names:  # input, activation and lambda layers have none
                weights[layer] = [np.asarray(group[name], np.float32) for name in names]
        return weights


def import_keras2_weights(model, path):
    """Set the AVDLN `model`'s Dense layers from the authors' h5 file (dense_1..dense_4).

    Args:
        model: a model from build_avdln.
        path: a Keras 2 `save_weights` h5 file with layers dense_1..dense_4.
    Raises:
        UserError naming the file and the layer when one is missing or its shapes do not fit.
    """
    weights = read_keras2_weights(path)
    for ours, theirs in H5_LAYERS.items():
        layer = model.get_layer(ours)
        expected = [tuple(v.shape) for v in layer.get_weights()]
        if theirs not in weights:
            raise input_error(
                path, f"a layer {theirs!r} (kernel and bias)", f"layers {sorted(weights)}"
            )
        found = [tuple(v.shape) for v in weights[theirs]]
        if found != expected:
            raise input_error(
                f"{path} layer {theirs}", f"kernel and bias shapes {expected}", f"{found}"
            )
        layer.set_weights(weights[theirs])


def event_targets(labels):
    """The contrastive targets of parsed records' segment labels (in a tf.data map or eagerly).

    Args:
        labels: [B, T] int segment labels (constants.BACKGROUND outside the event,
            constants.PAD_LABEL for padding): an array or a tensor.
    Returns:
        [B, T] float32 tensor: 1 for the segments inside the event, else 0.
    """
    labels = ops.convert_to_tensor(labels, "int32")
    inside = ops.logical_and(
        ops.not_equal(labels, constants.BACKGROUND), ops.not_equal(labels, constants.PAD_LABEL)
    )
    return ops.cast(inside, "float32")


def embedding_model(model):
    """What cross-modal evaluation reads of an AVDLN model: its two embeddings.

    Args:
        model: a model from build_avdln (any input layout).
    Returns:
        keras.Model: the same inputs -> (audio_embedding, visual_embedding), [B, T, 64] each.
    """
    return keras.Model(
        model.inputs,
        [model.get_layer(AUDIO_EMBEDDING).output, model.get_layer(VISUAL_EMBEDDING).output],
        name=f"{model.name}_embeddings",
    )


def evaluate_batches(model, batches):
    """A2V and V2A accuracy of an AVDLN model over batches (metrics.cross_modal_accuracy).

    Args:
        model: a model from build_avdln.
        batches: iterable of (inputs {"audio", "visual"}, labels [B, T] segment labels).
    Returns:
        {"a2v_accuracy", "v2a_accuracy", "evaluated"}.
    """
    embed = embedding_model(model)
    audio, visual, events = [], [], []
    for inputs, labels in batches:
        audio_embedding, visual_embedding = embed(inputs, training=False)
        audio.append(ops.convert_to_numpy(audio_embedding))
        visual.append(ops.convert_to_numpy(visual_embedding))
        events.append(ops.convert_to_numpy(event_targets(labels)))
    if not audio:
        return metrics.cross_modal_accuracy([], [], [])
    return metrics.cross_modal_accuracy(
        np.concatenate(audio), np.concatenate(visual), np.concatenate(events)
    )


def evaluate(model, audio, visual, labels, batch_size=64):
    """A2V and V2A accuracy of an AVDLN model on videos (metrics.cross_modal_accuracy).

    Args:
        model: a model from build_avdln.
        audio: [N, T, A]; visual: [N, T, V] pooled visual vectors; labels: [N, T] segment labels.
        batch_size: videos per forward pass.
    Returns:
        {"a2v_accuracy", "v2a_accuracy", "evaluated"}.
    """
    batches = (
        (
            {"audio": audio[i : i + batch_size], "visual": visual[i : i + batch_size]},
            labels[i : i + batch_size],
        )
        for i in range(0, len(labels), batch_size)
    )
    return evaluate_batches(model, batches)
