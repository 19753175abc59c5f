"""The AVEL baselines' per-segment models (Tian et al., ECCV 2018, as in the authors' code).

A BiLSTM per modality used (visual maps pooled, or attended by the audio-guided attention);
A+V concatenates them, DMRN fuses them per segment. Inputs {"audio": [B, T, A], "visual":
[B, T, D] or [B, T, H, W, C]} of raw features (normalised inside); output segment_probs
[B, T, 29].
"""

import keras

from avsdn_tf.models import backbones, layers


def _bilstm(features, hp, name):
    lstm = keras.layers.LSTM(
        hp.lstm_units, return_sequences=True, **backbones.lstm_options(hp, features.shape[1])
    )
    return keras.layers.Bidirectional(lstm, name=name)(features)


def _head(features, hp):
    """AVEL's classifier: ReLU -> Dense(64) -> ReLU -> Dense(29) -> softmax, per segment."""
    hidden = keras.layers.ReLU(name="relu_in")(features)
    hidden = keras.layers.Dense(hp.classifier_units, activation="relu", name="hidden")(hidden)
    if hp.dropout:
        hidden = keras.layers.Dropout(hp.dropout, name="dropout")(hidden)
    return backbones.classifier(hidden)


def build(
    audio_dim,
    visual_shape,
    num_segments,
    hp,
    use_audio=True,
    use_visual=True,
    attention=False,
    name="av",
):
    """An AVEL audio, visual or A+V model.

    Args:
        audio_dim: A. visual_shape: [D] or [H, W, C]. num_segments: T, or None. hp: HParams.
        use_audio, use_visual: the streams used.
        attention: reduce visual maps with the audio-guided attention (else average pooling).
        name: the Keras model's name.
    Returns:
        backbones.Built: .model {"audio", "visual"} -> segment_probs [B, T, 29].
    """
    inputs, audio, visual = backbones.normalized_inputs(audio_dim, visual_shape, num_segments)
    streams = []
    if use_audio:
        streams.append(_bilstm(audio, hp, "audio_bilstm"))
    if use_visual:
        reduction = "attention" if attention else "pool"
        reduced = backbones.visual_vectors(audio, visual, hp.replace(visual_reduction=reduction))
        streams.append(_bilstm(reduced, hp, "visual_bilstm"))
    features = (
        streams[0] if len(streams) == 1 else keras.layers.Concatenate(name="audio_visual")(streams)
    )
    return backbones.Built(keras.Model(inputs, _head(features, hp), name=name))


def build_dmrn(audio_dim, visual_shape, num_segments, hp):
    """AVEL's DMRN: BiLSTMs over audio and attended visual, fused per segment, then Dense(29).

    Args:
        audio_dim: A. visual_shape: [D] or [H, W, C]. num_segments: T, or None. hp: HParams.
    Returns:
        backbones.Built: .model {"audio", "visual"} -> segment_probs [B, T, 29].
    """
    inputs, audio, visual = backbones.normalized_inputs(audio_dim, visual_shape, num_segments)
    reduced = backbones.visual_vectors(audio, visual, hp.replace(visual_reduction="attention"))
    fused = layers.DMRNFusion(hp.fusion_units, name="dmrn")(
        [_bilstm(audio, hp, "audio_bilstm"), _bilstm(reduced, hp, "visual_bilstm")]
    )
    if hp.dropout:
        fused = keras.layers.Dropout(hp.dropout, name="dropout")(fused)
    return backbones.Built(keras.Model(inputs, backbones.classifier(fused), name="dmrn"))
