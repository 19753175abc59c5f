"""CMBS (Xia, Zhao, CVPR 2022) as a Keras model: the authors' supv_main_model and weak_main_model.

Layer names are the authors' module names (torch_import maps their state_dict by them). The
model sees the release's raw features, as theirs does: no normalisation layers.

Outputs (a dict), full supervision:
    is_event      [B, T]     logits: is segment t an event (sigmoid > 0.5 decodes as event).
    event_logits  [B, 28]    the video's event class logits (temporal max-pool + gamma * av_score).
    gate          [B, T]     time-level suppression gate, audio_gate * video_gate, in (0, 1).
    av_score      [B, 28]    event-level score: mean over modalities of the top-k class means.
Weak supervision:
    gate          [B, T]     (audio_gate + video_gate) / 2, in (0, 1).
    raw_logits    [B, 29]    video class logits (top-k temporal mean of the gated class scores).
    event_scores  [B, 29]    softmax over classes of max over time of gate * raw_logits.
"""

import keras

from avsdn_tf.errors import argument_error
from avsdn_tf.models.cmbs import layers, recipe

FULL_OUTPUTS = ("is_event", "event_logits", "gate", "av_score")
WEAK_OUTPUTS = ("gate", "raw_logits", "event_scores")

_DEFAULTS = {
    recipe.FULL: {
        "alpha": recipe.FULL_ALPHA,
        "beta": recipe.FULL_BETA,
        "gamma": recipe.FULL_GAMMA,
        "top_k": recipe.TOP_K,
    },
    recipe.WEAK: {
        "alpha": recipe.WEAK_ALPHA,
        "beta": recipe.WEAK_BETA,
        "gamma": recipe.WEAK_GAMMA,
        "top_k": recipe.TOP_K,
    },
}


def default_options(supervision):
    """The authors' alpha, beta, gamma and top_k for `supervision` ("full" or "weak")."""
    _check_supervision(supervision)
    return dict(_DEFAULTS[supervision])


def _check_supervision(supervision):
    if supervision not in recipe.SUPERVISIONS:
        raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)


def _options(supervision, options):
    merged = default_options(supervision)
    unknown = sorted(set(options or {}) - set(merged))
    if unknown:
        raise argument_error("options", f"keys among {sorted(merged)}", f"{unknown}")
    merged.update(options or {})
    return merged


def _visual_front(visual, audio, beta, dropout):
    """v_fc -> ReLU -> dropout -> the spatial-channel attention: [B, T, 512]."""
    hidden = layers.TorchDense(recipe.VISUAL_FC_UNITS, name="v_fc")(visual)
    hidden = keras.layers.ReLU(name="v_fc_relu")(hidden)
    hidden = keras.layers.Dropout(dropout, name="v_fc_dropout")(hidden)
    return layers.SpatialChannelAttention(
        beta,
        hidden_units=recipe.ATTENTION_HIDDEN_UNITS,
        latent_ratio=recipe.ATTENTION_LATENT_RATIO,
        dropout=recipe.ATTENTION_DROPOUT,
        name="spatial_channel_att",
    )([hidden, audio])


def _relations(audio, visual, encoder_feedforward):
    """The two relation encoders and cross-modal decoders: (audio_query, video_query,
    audio_key_value, video_key_value), each [B, T, D_MODEL]."""

    def encoder(name):
        return layers.RelationEncoder(
            recipe.D_MODEL,
            recipe.ENCODER_HEADS,
            encoder_feedforward,
            recipe.ENCODER_LAYERS,
            recipe.TRANSFORMER_DROPOUT,
            name=name,
        )

    def decoder(name):
        return layers.RelationDecoder(
            recipe.D_MODEL,
            recipe.ENCODER_HEADS,
            recipe.DECODER_FEEDFORWARD_UNITS,
            recipe.DECODER_LAYERS,
            recipe.TRANSFORMER_DROPOUT,
            name=name,
        )

    video_key_value = encoder("video_encoder")(visual)
    audio_query = decoder("audio_decoder")([audio, video_key_value])
    audio_key_value = encoder("audio_encoder")(audio)
    video_query = decoder("video_decoder")([visual, audio_key_value])
    return audio_query, video_query, audio_key_value, video_key_value


def _interactions(video, audio, num_heads):
    """AVInter then VAInter (the second sees the first's output): (video, audio) [B, T, D]."""
    options = dict(
        attention_dropout=recipe.INTERACTION_ATTENTION_DROPOUT,
        dropout=recipe.INTERACTION_DROPOUT,
    )
    video = layers.AudioVisualInteraction(recipe.D_MODEL, num_heads, name="AVInter", **options)(
        [video, audio]
    )
    audio = layers.AudioVisualInteraction(recipe.D_MODEL, num_heads, name="VAInter", **options)(
        [audio, video]
    )
    return video, audio


def _gate(name, features):
    return layers.TorchDense(1, activation="sigmoid", name=name)(features)


def _squeeze(name, tensor):
    """[B, T, 1] -> [B, T]."""
    return keras.layers.Reshape((-1,), name=name)(tensor)


def _full_outputs(audio, visual, opts):
    """supv_main_model's forward: the FULL_OUTPUTS dict."""
    visual = _visual_front(visual, audio, opts["beta"], recipe.FULL_VISUAL_DROPOUT)
    audio = layers.torch_lstm(recipe.FULL_AUDIO_LSTM_UNITS, "audio_rnn")(audio)
    visual = layers.torch_lstm(recipe.FULL_VISUAL_LSTM_UNITS, "visual_rnn")(visual)
    audio_query, video_query, audio_kv, video_kv = _relations(
        audio, visual, recipe.FULL_ENCODER_FEEDFORWARD_UNITS
    )
    audio_gate = _gate("audio_gated", audio_kv)
    video_gate = _gate("video_gated", video_kv)
    gate = keras.layers.Multiply(name="audio_visual_gate")([audio_gate, video_gate])
    alpha = opts["alpha"]
    video_query = layers.BackgroundSuppression(alpha, name="video_suppression")(
        [video_query, audio_gate]
    )
    audio_query = layers.BackgroundSuppression(alpha, name="audio_suppression")(
        [audio_query, video_gate]
    )
    scores = []
    for modality, query in (("video", video_query), ("audio", audio_query)):
        cas = layers.TorchDense(recipe.NUM_EVENT_CLASSES, name=f"{modality}_cas")(query)
        scores.append(layers.TopKTemporalMean(opts["top_k"], name=f"{modality}_top_k")(cas))
    av_score = keras.layers.Average(name="av_score")(scores)
    video_query, audio_query = _interactions(
        video_query, audio_query, recipe.FULL_INTERACTION_HEADS
    )
    fused = keras.layers.Average(name="fused")([video_query, audio_query])
    is_event = layers.TorchDense(1, name="classifier")(fused)
    pooled = layers.TemporalMax(name="temporal_max")(fused)
    class_logits = layers.TorchDense(recipe.NUM_EVENT_CLASSES, name="event_classifier")(pooled)
    return {
        "is_event": _squeeze("is_event", is_event),
        "event_logits": layers.ScaledSum(opts["gamma"], name="event_logits")(
            [class_logits, av_score]
        ),
        "gate": _squeeze("gate", gate),
        "av_score": av_score,
    }


def _weak_outputs(audio, visual, opts):
    """weak_main_model's forward: the WEAK_OUTPUTS dict."""
    visual = _visual_front(visual, audio, opts["beta"], recipe.WEAK_VISUAL_DROPOUT)
    audio_query, video_query, audio_kv, video_kv = _relations(
        audio, visual, recipe.WEAK_ENCODER_FEEDFORWARD_UNITS
    )
    # The weak model gates each modality by the OTHER modality's encoder (the authors' choice).
    audio_gate = _gate("audio_gated", video_kv)
    video_gate = _gate("video_gated", audio_kv)
    gate = keras.layers.Average(name="av_gate")([audio_gate, video_gate])
    alpha, keep = opts["alpha"], 1 - opts["alpha"]
    video_query = layers.BackgroundSuppression(alpha, keep, name="video_suppression")(
        [video_query, audio_gate]
    )
    audio_query = layers.BackgroundSuppression(alpha, keep, name="audio_suppression")(
        [audio_query, video_gate]
    )
    video_cas = layers.TorchDense(recipe.NUM_CLASSES, name="video_cas")(video_query)
    audio_cas = layers.TorchDense(recipe.NUM_CLASSES, name="audio_cas")(audio_query)
    video_query, audio_query = _interactions(
        video_query, audio_query, recipe.WEAK_INTERACTION_HEADS
    )
    fused = keras.layers.Average(name="fused")([video_query, audio_query])
    cas = layers.TorchDense(recipe.NUM_CLASSES, use_bias=False, name="CAS_model")(fused)
    cas = layers.ClassActivationGate(opts["gamma"], name="cas_gate")([cas, video_cas, audio_cas])
    raw_logits = layers.TopKTemporalMean(opts["top_k"], name="raw_logits")(cas)
    event_scores = layers.GatedVideoScores(name="event_scores")([gate, raw_logits])
    return {"gate": _squeeze("gate", gate), "raw_logits": raw_logits, "event_scores": event_scores}


def build(audio_dim, visual_shape, num_segments, supervision, options=None):
    """CMBS for `supervision`, on raw features.

    Args:
        audio_dim: audio units per segment (the release: 128).
        visual_shape: (height, width, channels) of a segment's visual map (the release: 7, 7, 512).
        num_segments: T, an int, or None for any length (the same weights serve any T).
        supervision: "full" (supv_main_model) or "weak" (weak_main_model).
        options: None, or a dict overriding some of alpha, beta, gamma, top_k (default_options).
    Returns:
        keras.Model named "cmbs_<supervision>": inputs {"audio": float32 [B, T, audio_dim],
        "visual": float32 [B, T, height, width, channels]}; outputs the dict described in this
        module's docstring (FULL_OUTPUTS or WEAK_OUTPUTS).
    Raises:
        UserError naming the argument when supervision, visual_shape or options do not fit.
    """
    _check_supervision(supervision)
    visual_shape = tuple(visual_shape)
    if len(visual_shape) != 3:
        raise argument_error(
            "visual_shape", "a map's (height, width, channels)", f"{list(visual_shape)}"
        )
    opts = _options(supervision, options)
    audio = keras.Input((num_segments, audio_dim), name="audio")
    visual = keras.Input((num_segments, *visual_shape), name="visual")
    make = _full_outputs if supervision == recipe.FULL else _weak_outputs
    outputs = make(audio, visual, opts)
    return keras.Model({"audio": audio, "visual": visual}, outputs, name=f"cmbs_{supervision}")
