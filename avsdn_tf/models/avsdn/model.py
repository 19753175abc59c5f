"""The AVSDN per-segment model: LSTM encoders whose fused final states start an LSTM decoder.

Inputs {"audio": [B, T, A], "visual": [B, T, D] or [B, T, H, W, C]} of raw features (the model
normalises them itself); output segment_probs [B, T, 29]. `init` selects the paper's ablations
of the decoder's initial state; `label_guided` exposes the encoders' final hidden states, which
the label-guided ablation's task trains against the video label.
"""

import keras

from avsdn_tf.models import backbones, layers


def build(audio_dim, visual_shape, num_segments, hp, init="fused", label_guided=False):
    """The AVSDN per-segment model.

    Args:
        audio_dim: A. visual_shape: [D] vectors or [H, W, C] maps. num_segments: T, or None.
        hp: HParams (encoder_units, fusion_units, visual_reduction, attention_units, dropout,
            unroll).
        init: the decoder's initial state: "fused" (DMRN of both encoders' states, the paper's
            model), "visual" or "audio" (one encoder's states, the ablations).
        label_guided: also return the encoders' final hidden states ([B, U] each).
    Returns:
        backbones.Built: .model {"audio", "visual"} -> segment_probs [B, T, 29];
        .guide_states (audio_h, visual_h) when label_guided, else None.
    """
    inputs, audio, visual = backbones.normalized_inputs(audio_dim, visual_shape, num_segments)
    visual_vectors = backbones.visual_vectors(audio, visual, hp)
    options = backbones.lstm_options(hp, num_segments)

    def encoder(name):
        """An encoder LSTM of hp.encoder_units: [B, T, D] -> (output, h [B, U], c [B, U])."""
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
    model = keras.Model(inputs, backbones.classifier(decoded), name="avsdn")
    return backbones.Built(model, guide_states=(audio_h, visual_h) if label_guided else None)
