"""Model builders behind one registry keyed by name (`--model NAME`; `--model help` lists them).

Every builder returns the per-segment model (the backbone, in keras-hub's terms): inputs
{"audio": [B, T, A], "visual": [B, T, ...]} of raw features and output "segment_probs"
[B, T, 29]. Each starts with one FeatureNormalization layer per modality, so the model carries
its preprocessing (set from the train split's statistics by `set_statistics`). The heads a
supervision adds on top are the task's (avsdn_tf.models.tasks).
"""

import keras

from avsdn_tf import constants  # noqa: F401 (losses, metrics: registered for loading)
from avsdn_tf.errors import UserError
from avsdn_tf.models import folding, layers

SEGMENT_OUTPUT = constants.SEGMENT_OUTPUT


def _inputs(audio_dim, visual_shape, num_segments):
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


def _visual_vectors(audio, visual, hp, name="visual_reduction"):
    """Maps become one vector per segment (pooling or audio-guided attention); vectors pass."""
    if len(visual.shape) == 3:
        return visual
    if hp.visual_reduction == "attention":
        return layers.AudioGuidedVisualAttention(hp.attention_units, name=name)([audio, visual])
    return layers.SpatialAveragePooling(name=name)(visual)


def _classifier(features):
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


def _avsdn(audio_dim, visual_shape, num_segments, hp, init="fused", label_guided=False):
    inputs, audio, visual = _inputs(audio_dim, visual_shape, num_segments)
    visual_vectors = _visual_vectors(audio, visual, hp)

    options = lstm_options(hp, num_segments)

    def encoder(name):
        """One encoder LSTM of `hp.encoder_units` that returns its final states.

        Args:
            name: the layer's name ("audio_encoder" or "visual_encoder").
        Returns:
            keras.layers.LSTM mapping float32 [B, T, D] to (output [B, U], h [B, U], c [B, U]),
            U = hp.encoder_units.
        """
        return keras.layers.LSTM(hp.encoder_units, return_state=True, name=name, **options)

    _, audio_h, audio_c = encoder("audio_encoder")(audio)
    _, visual_h, visual_c = encoder("visual_encoder")(visual_vectors)
    if init == "fused":
        state = [
            layers.DMRNFusion(hp.fusion_units, name="fuse_hidden")([audio_h, visual_h]),
            layers.DMRNFusion(hp.fusion_units, name="fuse_cell")([audio_c, visual_c]),
        ]
    elif init == "visual":
        state = [visual_h, visual_c]
    else:
        state = [audio_h, audio_c]
    decoder_input = keras.layers.Concatenate(name="audio_visual")([audio, visual_vectors])
    decoded = keras.layers.LSTM(hp.encoder_units, return_sequences=True, name="decoder", **options)(
        decoder_input, initial_state=state
    )
    if hp.dropout:
        decoded = keras.layers.Dropout(hp.dropout, name="dropout")(decoded)
    probs = _classifier(decoded)
    model = keras.Model(inputs, probs, name="avsdn")
    return Built(model, guide_states=(audio_h, visual_h) if label_guided else None)


def _bilstm(features, hp, name):
    lstm = keras.layers.LSTM(
        hp.lstm_units, return_sequences=True, **lstm_options(hp, features.shape[1])
    )
    return keras.layers.Bidirectional(lstm, name=name)(features)


def _avel_head(features, hp):
    """AVEL's classifier: ReLU -> Dense(64) -> ReLU -> Dense(29) -> softmax, per segment."""
    hidden = keras.layers.ReLU(name="relu_in")(features)
    hidden = keras.layers.Dense(hp.classifier_units, activation="relu", name="hidden")(hidden)
    if hp.dropout:
        hidden = keras.layers.Dropout(hp.dropout, name="dropout")(hidden)
    return _classifier(hidden)


def _avel(
    audio_dim,
    visual_shape,
    num_segments,
    hp,
    use_audio=True,
    use_visual=True,
    attention=False,
    name="av",
):
    inputs, audio, visual = _inputs(audio_dim, visual_shape, num_segments)
    streams = []
    if use_audio:
        streams.append(_bilstm(audio, hp, "audio_bilstm"))
    if use_visual:
        reduced = _visual_vectors(
            audio, visual, hp.replace(visual_reduction="attention" if attention else "pool")
        )
        streams.append(_bilstm(reduced, hp, "visual_bilstm"))
    features = (
        streams[0] if len(streams) == 1 else keras.layers.Concatenate(name="audio_visual")(streams)
    )
    return Built(keras.Model(inputs, _avel_head(features, hp), name=name))


def _dmrn(audio_dim, visual_shape, num_segments, hp):
    """AVEL's DMRN: BiLSTMs over audio and attended visual, fused per segment, then Dense(29)."""
    inputs, audio, visual = _inputs(audio_dim, visual_shape, num_segments)
    reduced = _visual_vectors(audio, visual, hp.replace(visual_reduction="attention"))
    fused = layers.DMRNFusion(hp.fusion_units, name="dmrn")(
        [_bilstm(audio, hp, "audio_bilstm"), _bilstm(reduced, hp, "visual_bilstm")]
    )
    if hp.dropout:
        fused = keras.layers.Dropout(hp.dropout, name="dropout")(fused)
    return Built(keras.Model(inputs, _classifier(fused), name="dmrn"))


# name -> (builder(audio_dim, visual_shape, num_segments, hp) -> Built, description)
REGISTRY = {
    "avsdn": (
        _avsdn,
        "AVSDN: LSTM encoders, DMRN-fused states initialise an LSTM decoder (Lin et al. 2019)",
    ),
    "audio": (
        lambda *a: _avel(*a, use_visual=False, name="audio"),
        "AVEL audio only: BiLSTM over audio",
    ),
    "visual": (
        lambda *a: _avel(*a, use_audio=False, name="visual"),
        "AVEL visual only: BiLSTM over pooled visual features",
    ),
    "av": (
        lambda *a: _avel(*a, name="av"),
        "AVEL A+V: audio and pooled visual BiLSTMs, concatenated",
    ),
    "av_att": (
        lambda *a: _avel(*a, attention=True, name="av_att"),
        "AVEL A+V with audio-guided visual attention (maps; vectors pass through)",
    ),
    "dmrn": (_dmrn, "AVEL DMRN: dual multimodal residual fusion of the two BiLSTMs per segment"),
    "avsdn_init_visual": (
        lambda *a: _avsdn(*a, init="visual"),
        "Ablation: decoder initialised by the visual state",
    ),
    "avsdn_init_audio": (
        lambda *a: _avsdn(*a, init="audio"),
        "Ablation: decoder initialised by the audio state",
    ),
    "avsdn_label_guided": (
        lambda *a: _avsdn(*a, label_guided=True),
        "Ablation: each encoder's last state also trained against the video label",
    ),
}


def names():
    return list(REGISTRY)


def describe(width=None):
    """One line per registered model: its name (padded to `width`) and what it is."""
    width = width or max(map(len, REGISTRY))
    return "\n".join(
        f"{name:<{width}}  {description}" for name, (_, description) in REGISTRY.items()
    )


def is_label_guided(name):
    """Whether a registered model name is the label-guided ablation (two extra video-label heads).

    Args:
        name: a model name of the registry.
    Returns:
        bool.
    """
    return name == "avsdn_label_guided"


def build_backbone(hp, audio_dim, visual_shape, num_segments=constants.NUM_SEGMENTS):
    """The registered per-segment model `hp.model` (with the encoder states it exposes).

    Args:
        hp: HParams (model name and sizes).
        audio_dim: A, the audio feature size.
        visual_shape: [D] for visual vectors, [H, W, C] for maps.
        num_segments: the fixed time length T, or None for any length.
    Returns:
        Built: .model maps {"audio": [B, T, A], "visual": [B, T, *visual_shape]} (raw) to
        segment_probs [B, T, 29]; .guide_states the label-guided ablation's encoder states.
    """
    if hp.model not in REGISTRY:
        raise UserError(f"model: expected one of {names()}, found {hp.model!r}", argument="model")
    builder, _ = REGISTRY[hp.model]
    return builder(audio_dim, list(visual_shape), num_segments, hp)


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


def load_model(path, compile=True):
    """Load a saved .keras model of this project (its custom layers, losses, metrics registered).

    Args:
        path: a .keras file.
        compile: restore the optimizer, losses and metrics too (needed to resume training).
    Returns:
        the keras.Model, normalisation layers included.
    """
    return keras.models.load_model(path, compile=compile)


def variable_length_model(trained, hp, audio_dim, visual_shape):
    """The per-segment model of `trained`, rebuilt for any number of segments, with its weights.

    Training builds models with a fixed time length and unrolled LSTMs (hp.unroll); serving needs
    any length, so the same architecture is built again with num_segments=None and unroll=False
    and the trained weights (normalisation statistics included) are copied over in order.

    Args:
        trained: the trained model (any task head).
        hp: its HParams.
        audio_dim, visual_shape: its feature sizes.
    Returns:
        keras.Model {"audio": [B, T, A], "visual": [B, T, ...]} -> segment_probs [B, T, 29], any T.
    """
    from avsdn_tf.models import tasks  # the heads are the task's

    rebuilt = tasks.for_hparams(hp.replace(unroll=False)).build(
        audio_dim, visual_shape, num_segments=None
    )
    trained_shapes = [tuple(w.shape) for w in trained.weights]
    rebuilt_shapes = [tuple(w.shape) for w in rebuilt.weights]
    if trained_shapes != rebuilt_shapes:
        raise UserError(
            f"model {hp.model!r}: the variable-length rebuild has weights {rebuilt_shapes}, "
            f"the checkpoint has {trained_shapes}; the run's config.json does not describe "
            "its checkpoint"
        )
    rebuilt.set_weights(trained.get_weights())
    return segment_model(rebuilt)


class InferenceFunction:
    """A lean forward pass: one tf.function with a fixed input signature, over the model with
    its normalisation folded into the first kernels where it folds (models.folding).

    Call `sync()` after the model's weights change (e.g. between training epochs).
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
            lambda inputs: target(inputs, training=False), input_signature=[signature]
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


def cached_inference_function(model):
    """The inference_function of a model's per-segment part, made once per model (kept on it) so
    every validation pass and evaluation reuses its trace; synced with the model's current
    weights on every reuse.

    Args:
        model: a model built by a task (any head on top; its segment_probs are read).
    Returns:
        an InferenceFunction of segment_model(model).
    """
    cached = getattr(model, "_avsdn_predict", None)
    if cached is None:
        cached = inference_function(segment_model(model))
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
