"""What the per-segment models (the backbones, in keras-hub's terms) share: their normalised
inputs, visual reduction, classifier and LSTM settings, the statistics they carry, and the lean
inference function every in-process prediction runs.

A per-segment model maps {"audio": [B, T, A], "visual": [B, T, ...]} raw features to
"segment_probs" [B, T, 29]; each starts with one FeatureNormalization layer per modality, so the
model carries its preprocessing (set from the train split's statistics by `set_statistics`). The
builders are in the model folders (models/avsdn, models/avel, ...), named in models/registry.py;
the heads a supervision adds on top are the task's (models/tasks.py).
"""

import functools

import keras

from avsdn_tf import constants  # noqa: F401 (losses, metrics: registered for loading)
from avsdn_tf.errors import UserError
from avsdn_tf.models import folding, layers

SEGMENT_OUTPUT = constants.SEGMENT_OUTPUT


def normalized_inputs(audio_dim, visual_shape, num_segments):
    """The raw inputs and their normalised features.

    Returns:
        (inputs, audio, visual): inputs {"audio": [B, T, A], "visual": [B, T, *visual_shape]};
        audio and visual the same tensors after the normalisation layers.
    """
    audio = keras.Input((num_segments, audio_dim), name="audio")
    visual = keras.Input((num_segments, *visual_shape), name="visual")
    normalized_audio = layers.FeatureNormalization(name=constants.AUDIO_NORMALIZATION)(audio)
    normalized_visual = layers.FeatureNormalization(name=constants.VISUAL_NORMALIZATION)(visual)
    return {"audio": audio, "visual": visual}, normalized_audio, normalized_visual


def visual_vectors(audio, visual, hp, name="visual_reduction"):
    """Maps become one vector per segment (pooling or audio-guided attention); vectors pass."""
    if len(visual.shape) == 3:
        return visual
    if hp.visual_reduction == "attention":
        return layers.AudioGuidedVisualAttention(hp.attention_units, name=name)([audio, visual])
    return layers.SpatialAveragePooling(name=name)(visual)


def classifier(features):
    """Dense(29) -> softmax per segment: the segment_probs output [B, T, 29]."""
    return keras.layers.Dense(constants.NUM_CLASSES, activation="softmax", name=SEGMENT_OUTPUT)(
        features
    )


def device_kind():
    """'gpu' when TensorFlow sees a GPU, else 'cpu': the kind of device the LSTMs will run on."""
    import tensorflow as tf

    return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"


def lstm_options(hp, num_segments, device=None):
    """Keyword arguments of every keras.layers.LSTM the builders make.

    On a GPU: not unrolled, with Keras's cuDNN-eligible settings (tanh, sigmoid, no recurrent
    dropout, biases), so Keras takes the fused cuDNN kernel. On a CPU: unrolled when hp.unroll
    and the time axis is fixed (short fixed-length sequences run faster unrolled there).

    Args:
        hp: HParams (reads `unroll`).
        num_segments: the fixed time length T, or None for any length.
        device: 'cpu' or 'gpu'; default: `device_kind()`.
    Returns:
        dict of LSTM constructor arguments.
    """
    device = device or device_kind()
    cudnn = device == "gpu"
    return {
        "unroll": bool(hp.unroll and num_segments is not None and not cudnn),
        "activation": "tanh",
        "recurrent_activation": "sigmoid",
        "recurrent_dropout": 0.0,
        "use_bias": True,
        "use_cudnn": "auto",
    }


class Built:
    """A built per-segment model plus the encoder states the label-guided ablation trains."""

    def __init__(self, model, guide_states=None):
        self.model = model
        self.guide_states = guide_states


def normalization_layers(model):
    """The model's FeatureNormalization layers by modality: {"audio": layer, "visual": layer}.

    A single-modality model has only the one it uses; a run written before the model carried
    its normalisation has none (an empty dict).

    Args:
        model: a keras.Model built here (any head on top).
    Returns:
        dict modality -> layer, for the layers named constants.AUDIO_NORMALIZATION and
        constants.VISUAL_NORMALIZATION that the model has.
    """
    found = {}
    for modality, name in (
        ("audio", constants.AUDIO_NORMALIZATION),
        ("visual", constants.VISUAL_NORMALIZATION),
    ):
        try:
            found[modality] = model.get_layer(name)
        except ValueError:
            pass
    return found


def set_statistics(model, statistics, source="statistics"):
    """Set the model's normalisation from train-split statistics.

    Args:
        model: a model built here (any head on top).
        statistics: dict with "audio_mean", "audio_std" [A] and "visual_mean", "visual_std" [C]
            (C: the visual features' last axis), as normalization.compute_statistics returns.
        source: what an error names (the statistics' file).
    Raises:
        UserError: naming `source` and the field, when a shape or value does not fit.
    """
    for modality, layer in normalization_layers(model).items():
        try:
            layer.set_statistics(
                statistics[f"{modality}_mean"],
                statistics[f"{modality}_std"],
                source=f"{source} {modality}",
            )
        except KeyError as missing:
            raise UserError(
                f"{source}: expected the field {missing}, found fields {sorted(statistics)}"
            ) from None
        except ValueError as error:
            raise UserError(str(error)) from None


def segment_model(model):
    """The per-segment part of a training model (no label-guidance heads).

    Args:
        model: a model built by a task (inputs {"audio", "visual"}).
    Returns:
        keras.Model: inputs -> segment_probs float32 [B, T, K]; `model` itself when that is its
        only output.
    """
    if list(model.output_names) == [SEGMENT_OUTPUT]:
        return model
    return keras.Model(
        model.inputs, model.get_layer(SEGMENT_OUTPUT).output, name=f"{model.name}_segments"
    )


def _forward(model, inputs):
    """model(inputs) for inference (training=False): what an InferenceFunction traces."""
    return model(inputs, training=False)


class InferenceFunction:
    """A lean forward pass: one tf.function with a fixed input signature, over the model with
    its normalisation folded into the first kernels where it folds (models.folding).

    Call `sync()` after the model's weights change (e.g. between training epochs).

    Each instance traces its function once. TensorFlow counts traces per Python code object
    (tf.function's retracing warning), so a lambda here, shared by the instances of every model
    a process builds (experiments, tune), made each new model's one trace count as a retrace of
    the others'; the function traced is a partial of `_forward` over this instance's model,
    counted on its own, so the warning is left to real retraces.
    """

    def __init__(self, model, fold=True):
        import tensorflow as tf

        self._folded = folding.FoldedModel(model) if fold else None
        target = self._folded.model if fold else model
        signature = {
            tensor.name: tf.TensorSpec((None, *tensor.shape[1:]), tensor.dtype, name=tensor.name)
            for tensor in model.inputs
        }
        self._function = tf.function(
            functools.partial(_forward, target), input_signature=[signature]
        )

    def __call__(self, inputs):
        return self._function(inputs)

    def sync(self):
        """Refresh the folded copy from the model's current weights and statistics."""
        if self._folded is not None:
            self._folded.sync()

    def experimental_get_tracing_count(self):
        """How many times the tf.function was traced (1: every batch size reused the trace)."""
        return self._function.experimental_get_tracing_count()


def cached_inference_function(model, part=None):
    """The inference_function of a model's per-segment part, made once per model (kept on it) so
    every validation pass and evaluation reuses its trace; synced with the model's current
    weights on every reuse.

    Args:
        model: a model built by a task (any head on top; its segment_probs are read).
        part: the task's function model -> its per-segment part; default segment_model.
    Returns:
        an InferenceFunction of part(model).
    """
    cached = getattr(model, "_avsdn_predict", None)
    if cached is None:
        cached = inference_function((part or segment_model)(model))
        model._avsdn_predict = cached
    else:
        cached.sync()
    return cached


def inference_function(model, fold=True):
    """A lean forward pass for inference: one tf.function with a fixed input signature.

    The signature is taken from the model's inputs with the batch axis free, so it is traced once,
    whatever the batch sizes it meets. The normalisation the model carries is folded into the
    kernels that read it where it folds (models.folding), so it costs nothing at inference. Same
    outputs as model.predict up to float32 rounding; measured faster than model.predict,
    predict_on_batch and a tf.function without a signature (benchmarks/bench_training.py,
    benchmarks/bench_normalization.py, docs/benchmarks.md).

    Args:
        model: a Keras model with inputs {"audio": [B, T, A], "visual": [B, T, ...]}.
        fold: False runs the model as it is, its normalisation layers included.
    Returns:
        an InferenceFunction: dict of arrays or tensors {"audio", "visual"} (any B; T fixed or
        free as the model's inputs are) -> the model's output tensor(s) with training=False,
        e.g. float32 [B, T, K] segment probabilities. Its `sync()` refreshes it after the
        model's weights change.
    """
    return InferenceFunction(model, fold=fold)
