"""PSP (Zhou et al., CVPR 2021) as a Keras model: the authors' psp_net, fully or weakly supervised.

Both variants read the AVE release's features as they are (no normalisation layers: the
authors' models see raw features) and work for any number of segments T, so the same weights
answer a 7-second video. Layer names are the ones torch_import.py maps the authors'
parameters to.

Outputs (a dict; B videos, T segments, K = 29 classes):
    segment_logits [B, T, K]: the authors' per-segment class scores (for weak supervision
        after the weighting branch); what the cross-entropy reads.
    segment_probabilities [B, T, K]: softmax of segment_logits; its argmax over K is the
        authors' per-segment prediction (the same argmax as segment_logits').
    full only: av_similarity [B, T]: cosine similarity of each segment's visual and audio
        feature after the PSP block; what the AVPS loss reads.
    weak only: video_probabilities [B, K]: softmax of segment_logits averaged over T; what the
        binary cross-entropy reads.
"""

import math

import keras

from avsdn_tf.errors import argument_error
from avsdn_tf.models.layers import AudioGuidedVisualAttention, TemporalPooling
from avsdn_tf.models.psp import recipe
from avsdn_tf.models.psp.layers import (
    PositiveSamplePropagation,
    SegmentCosineSimilarity,
    TemporalWeighting,
)

# The options build() accepts, with their defaults for a supervision.
OPTION_NAMES = ("threshold", "dropout", "unroll")


def _torch_uniform(fan_in):
    """PyTorch's default Linear / LSTM initialisation: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _dense(units, fan_in, name, use_bias=False, xavier=False, activation=None):
    """A Dense initialised as the authors' Linear: Xavier where they ask for it, else PyTorch's."""
    init = "glorot_uniform" if xavier else _torch_uniform(fan_in)
    return keras.layers.Dense(
        units,
        use_bias=use_bias,
        activation=activation,
        kernel_initializer=init,
        bias_initializer=_torch_uniform(fan_in),
        name=name,
    )


def _bilstm(name, unroll):
    """A BiLSTM of recipe.LSTM_UNITS per direction, outputs of both directions concatenated."""
    init = _torch_uniform(recipe.LSTM_UNITS)
    lstm = keras.layers.LSTM(
        recipe.LSTM_UNITS,
        return_sequences=True,
        unroll=unroll,
        kernel_initializer=init,
        recurrent_initializer=init,
        bias_initializer=init,
        unit_forget_bias=False,
    )
    return keras.layers.Bidirectional(lstm, merge_mode="concat", name=name)


def _options(supervision, options, num_segments):
    """options (a mapping or None) over the supervision's defaults, checked."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(OPTION_NAMES))
    if unknown:
        raise argument_error("options", f"keys among {list(OPTION_NAMES)}", unknown)
    merged = {
        "threshold": recipe.THRESHOLD[supervision],
        "dropout": recipe.PSP_DROPOUT,
        "unroll": False,
    }
    merged.update(options)
    if not 0.0 <= merged["threshold"] < 1.0:
        raise argument_error("options", "threshold in [0, 1)", merged["threshold"])
    if merged["unroll"] and num_segments is None:
        raise argument_error(
            "options", "unroll only with a fixed num_segments", "num_segments None"
        )
    return merged


def _check_shapes(audio_dim, visual_shape, num_segments):
    if not isinstance(audio_dim, int) or audio_dim < 1:
        raise argument_error("audio_dim", "a positive int", repr(audio_dim))
    if len(tuple(visual_shape)) != 3:
        raise argument_error(
            "visual_shape",
            "a map shape (height, width, channels) such as (7, 7, 512): PSP attends over regions",
            tuple(visual_shape),
        )
    if num_segments is not None and (not isinstance(num_segments, int) or num_segments < 1):
        raise argument_error("num_segments", "a positive int or None", repr(num_segments))


def _full_branch(audio, visual, options):
    """fully_model.psp_net up to the classifier: (fusion [B,T,256], similarity [B,T])."""
    audio = _dense(256, audio.shape[-1], "audio_projection_1")(audio)
    audio = _dense(128, 256, "audio_projection_2")(audio)
    attended = AudioGuidedVisualAttention(recipe.ATTENTION_UNITS, name="visual_attention")(
        [audio, visual]
    )
    hidden, second = recipe.VISUAL_PROJECTION_UNITS
    attended = _dense(hidden, attended.shape[-1], "visual_projection_1")(attended)
    attended = _dense(second, hidden, "visual_projection_2")(attended)
    audio = _bilstm("audio_lstm", options["unroll"])(audio)
    attended = _bilstm("visual_lstm", options["unroll"])(attended)
    block = PositiveSamplePropagation(
        options["threshold"], recipe.PSP_UNITS, options["dropout"], name="psp"
    )
    fusion, visual_psp, audio_psp = block([audio, attended])
    similarity = SegmentCosineSimilarity(name="av_similarity")([visual_psp, audio_psp])
    return fusion, similarity


def _weak_branch(audio, visual, options):
    """weakly_model.psp_net up to the classifier: fusion [B, T, 256]."""
    attended = AudioGuidedVisualAttention(recipe.ATTENTION_UNITS, name="visual_attention")(
        [audio, visual]
    )
    attended = _dense(
        recipe.WEAK_VISUAL_UNITS, attended.shape[-1], "visual_projection", use_bias=True
    )(attended)
    audio = _bilstm("audio_lstm", options["unroll"])(audio)
    attended = _bilstm("visual_lstm", options["unroll"])(attended)
    block = PositiveSamplePropagation(
        options["threshold"],
        recipe.PSP_UNITS,
        options["dropout"],
        renormalize=False,
        output_projection=False,
        name="psp",
    )
    fusion, _, _ = block([audio, attended])
    return fusion


def build(audio_dim, visual_shape, num_segments, supervision, options=None):
    """PSP as the authors' psp_net for a supervision.

    Args:
        audio_dim: A, the audio feature size (the release's 128).
        visual_shape: (H, W, C), the visual map per segment (the release's (7, 7, 512)).
        num_segments: T, or None for any length.
        supervision: "full" (fully_model.psp_net) or "weak" (weakly_model.psp_net).
        options: None or a mapping with any of "threshold" (default recipe.THRESHOLD of the
            supervision), "dropout" (the PSP block's, default recipe.PSP_DROPOUT) and "unroll"
            (unroll the LSTMs; needs an int num_segments; default False).
    Returns:
        keras.Model: inputs {"audio": float32 [B, T, A], "visual": float32 [B, T, H, W, C]},
        outputs the dict of the module docstring.
    Raises:
        UserError: naming the argument, when one does not fit.
    """
    if supervision not in recipe.SUPERVISIONS:
        raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)
    _check_shapes(audio_dim, visual_shape, num_segments)
    options = _options(supervision, options, num_segments)
    audio = keras.Input((num_segments, audio_dim), name="audio")
    visual = keras.Input((num_segments, *tuple(visual_shape)), name="visual")
    outputs = {}
    if supervision == recipe.FULL:
        fusion, outputs["av_similarity"] = _full_branch(audio, visual, options)
    else:
        fusion = _weak_branch(audio, visual, options)
    hidden = _dense(
        recipe.CLASSIFIER_HIDDEN_UNITS,
        recipe.PSP_UNITS,
        "classifier_hidden",
        xavier=True,
        activation="relu",
    )(fusion)
    logits_name = "segment_logits" if supervision == recipe.FULL else "segment_scores"
    logits = _dense(recipe.NUM_CLASSES, recipe.CLASSIFIER_HIDDEN_UNITS, logits_name, xavier=True)(
        hidden
    )
    if supervision == recipe.WEAK:
        logits = TemporalWeighting(name="segment_logits")(logits)
        video = TemporalPooling("mean", name="video_scores")(logits)
        outputs["video_probabilities"] = keras.layers.Softmax(name="video_probabilities")(video)
    outputs["segment_logits"] = logits
    outputs["segment_probabilities"] = keras.layers.Softmax(name="segment_probabilities")(logits)
    name = f"psp_{supervision}"
    return keras.Model({"audio": audio, "visual": visual}, outputs, name=name)
