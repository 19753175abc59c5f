"""Custom Keras layers: small, serializable, one job each (no Lambda layers)."""

import keras
import numpy as np
from keras import ops

_PACKAGE = "avsdn_tf"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FeatureNormalization(keras.layers.Layer):
    """(x - mean) / std over the last axis, with the train split's statistics inside the model.

    Audio [B, T, A] is normalised per dimension, visual vectors [B, T, D] and maps
    [B, T, H, W, C] per channel (a map's regions share one mean and deviation per channel).
    mean and std are non-trainable weights, so every checkpoint and SavedModel carries them;
    a new layer is the identity (mean 0, std 1) until `set_statistics` is called.
    """

    def build(self, input_shape):
        channels = input_shape[-1]
        self.mean = self.add_weight(
            shape=(channels,), initializer="zeros", trainable=False, name="mean"
        )
        self.std = self.add_weight(
            shape=(channels,), initializer="ones", trainable=False, name="std"
        )

    def call(self, features):
        return (features - ops.cast(self.mean, features.dtype)) / ops.cast(self.std, features.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def set_statistics(self, mean, std, source="statistics"):
        """Set the statistics.

        Args:
            mean: [C] per-channel means (C = the input's last axis).
            std: [C] per-channel standard deviations, all > 0.
            source: what to name in the error when the values do not fit.
        Raises:
            ValueError: naming `source`, when a shape differs from [C] or a std is not > 0.
        """
        mean = np.asarray(mean, np.float32)
        std = np.asarray(std, np.float32)
        expected = tuple(self.mean.shape)
        for name, values in (("mean", mean), ("std", std)):
            if values.shape != expected:
                raise ValueError(
                    f"{source} {name}: expected shape {list(expected)} (the {self.name} "
                    f"input's last axis), found {list(values.shape)}"
                )
        if not np.all(std > 0) or not np.all(np.isfinite(std)) or not np.all(np.isfinite(mean)):
            raise ValueError(
                f"{source}: expected finite means and positive deviations, found "
                f"std min {float(np.min(std))}"
            )
        self.mean.assign(mean)
        self.std.assign(std)

    def statistics(self):
        """(mean [C], std [C]) as NumPy arrays."""
        return np.asarray(self.mean), np.asarray(self.std)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DMRNFusion(keras.layers.Layer):
    """Dual multimodal residual fusion (Tian et al., ECCV 2018), as AVSDN uses it.

    merged = 0.5 * (U_a(x_a) + U_v(x_v)); x_a' = tanh(x_a + merged); x_v' = tanh(x_v + merged);
    output = 0.5 * (x_a' + x_v'), with U an MLP Dense(hidden) -> tanh -> Dense(dim).
    Works on vectors [B, D] and on sequences [B, T, D] alike (Dense acts on the last axis).
    """

    def __init__(self, hidden_units=256, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = hidden_units

    def build(self, input_shape):
        audio_shape, visual_shape = input_shape
        if audio_shape[-1] != visual_shape[-1]:
            raise ValueError(
                f"DMRNFusion needs equal sizes, got audio {audio_shape[-1]} "
                f"and visual {visual_shape[-1]}"
            )
        dim = audio_shape[-1]
        self.audio_hidden = keras.layers.Dense(
            self.hidden_units, activation="tanh", name="audio_hidden"
        )
        self.audio_out = keras.layers.Dense(dim, name="audio_out")
        self.visual_hidden = keras.layers.Dense(
            self.hidden_units, activation="tanh", name="visual_hidden"
        )
        self.visual_out = keras.layers.Dense(dim, name="visual_out")
        self.audio_hidden.build(audio_shape)
        self.audio_out.build(tuple(audio_shape[:-1]) + (self.hidden_units,))
        self.visual_hidden.build(visual_shape)
        self.visual_out.build(tuple(visual_shape[:-1]) + (self.hidden_units,))

    def call(self, inputs):
        audio, visual = inputs
        merged = 0.5 * (
            self.audio_out(self.audio_hidden(audio)) + self.visual_out(self.visual_hidden(visual))
        )
        audio = ops.tanh(audio + merged)
        visual = ops.tanh(visual + merged)
        return 0.5 * (audio + visual)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AudioGuidedVisualAttention(keras.layers.Layer):
    """AVEL's audio-guided visual attention (their att_Net), reproduced as published.

    Inputs: audio [B, T, A] and visual maps [B, T, H, W, C]; output [B, T, C], the attention-
    weighted sum of the raw C-d region features. v' = ReLU(W_video v), a' = ReLU(W_audio a);
    scores z = w_h . tanh(W_v v' + g) with g = W_g a'. As in the authors' code, the audio term
    is added with an extra axis at position 2: entry r of g is added to every unit of region r's
    score vector (a per-region audio prior). That only lines up because W_v and W_g project to
    as many units as there are regions (49 for 7x7 maps), so the projection size is H * W here.
    """

    def __init__(self, hidden_units=512, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = hidden_units

    def build(self, input_shape):
        audio_shape, visual_shape = input_shape
        self.regions = visual_shape[-3] * visual_shape[-2]
        channels = visual_shape[-1]
        init = "glorot_uniform"
        self.video_projection = keras.layers.Dense(
            self.hidden_units, activation="relu", name="w_video"
        )
        self.audio_projection = keras.layers.Dense(
            self.hidden_units, activation="relu", name="w_audio"
        )
        self.region_scores = keras.layers.Dense(
            self.regions, use_bias=False, kernel_initializer=init, name="w_v"
        )
        self.audio_prior = keras.layers.Dense(
            self.regions, use_bias=False, kernel_initializer=init, name="w_g"
        )
        self.score = keras.layers.Dense(1, use_bias=False, kernel_initializer=init, name="w_h")
        self.video_projection.build((None, channels))
        self.audio_projection.build((None, audio_shape[-1]))
        self.region_scores.build((None, self.hidden_units))
        self.audio_prior.build((None, self.hidden_units))
        self.score.build((None, self.regions))

    def call(self, inputs):
        audio, visual = inputs
        shape = ops.shape(visual)
        batch, time, channels = shape[0], shape[1], visual.shape[-1]
        regions = ops.reshape(visual, (batch, time, self.regions, channels))
        content = self.region_scores(self.video_projection(regions))  # [B, T, R, R]
        prior = self.audio_prior(self.audio_projection(audio))  # [B, T, R]
        hidden = ops.tanh(
            content + ops.expand_dims(prior, axis=-1)
        )  # prior[r] joins region r's row
        weights = ops.softmax(ops.squeeze(self.score(hidden), axis=-1), axis=-1)  # [B, T, R]
        return ops.sum(ops.expand_dims(weights, -1) * regions, axis=2)

    def compute_output_shape(self, input_shape):
        visual_shape = input_shape[1]
        return tuple(visual_shape[:2]) + (visual_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "hidden_units": self.hidden_units}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpatialAveragePooling(keras.layers.Layer):
    """Visual maps [B, T, H, W, C] to one vector per segment [B, T, C] by global average pooling.

    With the map's height and width known, the average is one H x W pooling window over the
    [B * T, H, W, C] maps: on CPU that is oneDNN's pooling kernel, which on one thread averages
    a [64, 10, 7, 7, 512] batch in 2.5 ms against 4.4 ms for a mean over the two axes
    (benchmarks/bench_spatial_average.py); on GPU it is cuDNN's.
    """

    def call(self, visual):
        height, width, channels = visual.shape[2:]
        if height is None or width is None or channels is None:
            return ops.mean(visual, axis=(2, 3))
        shape = ops.shape(visual)
        maps = ops.reshape(visual, (-1, height, width, channels))
        pooled = ops.average_pool(maps, pool_size=(height, width), strides=1, padding="valid")
        return ops.reshape(pooled, (shape[0], shape[1], channels))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2]) + (input_shape[-1],)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TemporalPooling(keras.layers.Layer):
    """Segment predictions [B, T, K] to one video-level distribution [B, K].

    'mean' is AVSDN's weak supervision (average pooling); 'max' is AVEL's.
    """

    def __init__(self, mode="mean", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("mean", "max"):
            raise ValueError(f"TemporalPooling mode must be 'mean' or 'max', got {mode!r}")
        self.mode = mode

    def call(self, segments):
        if self.mode == "max":
            return ops.max(segments, axis=1)
        return ops.mean(segments, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
