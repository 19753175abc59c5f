"""CMBS's own layers (Xia, Zhao, CVPR 2022): small, serializable, one job each, no Lambda.

Each mirrors one module of the authors' PyTorch code (marmot-xy/CMBS) with batch-first
sequences [B, T, D] instead of their time-first ones; the sums, products and orders of
operations are theirs, so their weights give the same numbers (see torch_import.py).
PyTorch's LayerNorm epsilon (1e-5) is used throughout, not Keras's default, and the weights
start as PyTorch's defaults start them (TorchDense, torch_lstm, the attention initialisers), so
training from scratch starts where the authors' does.
"""

import math

import keras
from keras import ops

_PACKAGE = "avsdn_tf"
# PyTorch nn.LayerNorm's default epsilon, which the authors' weights were trained with.
LAYER_NORM_EPSILON = 1e-5


def _layer_norm(name):
    return keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=name)


def _uniform(bound):
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TorchDense(keras.layers.Dense):
    """Dense initialised as PyTorch's nn.Linear (and a 1x1 Conv1d): kernel and bias drawn from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)). Otherwise keras.layers.Dense."""

    def __init__(self, units, **kwargs):
        kwargs.setdefault(
            "kernel_initializer", keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
        )
        super().__init__(units, **kwargs)

    def build(self, input_shape):
        self.bias_initializer = _uniform(1 / math.sqrt(input_shape[-1]))
        super().build(input_shape)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SumOfUniforms(keras.initializers.Initializer):
    """U(-bound, bound) + U(-bound, bound): a PyTorch LSTM's b_ih + b_hh at initialisation."""

    def __init__(self, bound):
        self.bound = bound

    def __call__(self, shape, dtype=None):
        return _uniform(self.bound)(shape, dtype) + _uniform(self.bound)(shape, dtype)

    def get_config(self):
        return {"bound": self.bound}


def torch_lstm(units, name):
    """A sequence-returning Bidirectional LSTM initialised as PyTorch's bidirectional nn.LSTM."""
    bound = 1 / math.sqrt(units)
    layer = keras.layers.LSTM(
        units,
        return_sequences=True,
        kernel_initializer=_uniform(bound),
        recurrent_initializer=_uniform(bound),
        bias_initializer=SumOfUniforms(bound),
        unit_forget_bias=False,
    )
    return keras.layers.Bidirectional(layer, name=name)


def torch_attention(num_heads, units, dropout, name, query_shape, memory_shape):
    """A built MultiHeadAttention with nn.MultiheadAttention's semantics and initialisation.

    q/k/v kernels as PyTorch's xavier_uniform of the [3 * units, units] in_proj, the output
    kernel as a Linear's, biases zero.
    """
    attention = keras.layers.MultiHeadAttention(
        num_heads,
        units // num_heads,
        dropout=dropout,
        kernel_initializer=_uniform(math.sqrt(6 / (4 * units))),
        name=name,
    )
    attention.build(query_shape, memory_shape)
    kernel = attention.output_dense.kernel
    kernel.assign(_uniform(1 / math.sqrt(units))(kernel.shape, kernel.dtype))
    return attention


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SpatialChannelAttention(keras.layers.Layer):
    """Audio-guided spatial-channel attention (the authors' New_Audio_Guided_Attention).

    Per segment, over the H*W regions of the visual map: a region self-attention (queries and
    keys of C/latent_ratio units, no scaling, residual, LayerNorm) and a spatial attention
    guided by the regions' own average give `self_att`; an audio-guided channel attention
    rescales the raw regions by (1 + sigmoid(...)); an audio-guided spatial attention pools
    them into `pooled`. Output: pooled + beta * sigmoid(self_att) * pooled.

    Call args:
        inputs: [visual [B, T, H, W, C], audio [B, T, A]].
    Returns:
        [B, T, C].
    """

    def __init__(self, beta, hidden_units=256, latent_ratio=4, dropout=0.2, **kwargs):
        super().__init__(**kwargs)
        self.beta = beta
        self.hidden_units = hidden_units
        self.latent_ratio = latent_ratio
        self.dropout_rate = dropout

    def _dense(self, name, units):
        layer = TorchDense(units, name=name)
        setattr(self, name, layer)
        return layer

    def build(self, input_shape):
        visual_shape, audio_shape = input_shape
        channels, hidden = visual_shape[-1], self.hidden_units
        region = (None, None, visual_shape[2] * visual_shape[3], channels)
        for name, units, shape in (
            ("video_query", channels // self.latent_ratio, region),
            ("video_key", channels // self.latent_ratio, region),
            ("video_value", channels, region),
            ("affine_video_ave", hidden, region[:2] + (channels,)),
            ("affine_video_3", hidden, region),
            ("ave_v_att", 1, region[:3] + (hidden,)),
            ("affine_audio_1", channels, audio_shape),
            ("affine_video_1", channels, region),
            ("affine_bottleneck", hidden, region[:2] + (channels,)),
            ("affine_v_c_att", channels, region[:2] + (hidden,)),
            ("affine_video_2", hidden, region),
            ("affine_audio_2", hidden, audio_shape),
            ("affine_v_s_att", 1, region[:3] + (hidden,)),
        ):
            self._dense(name, units).build(shape)
        self.norm = _layer_norm("norm")
        self.norm.build(region)
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def _self_attention(self, regions, training):
        """Region self-attention, then its spatial attention: ([B,T,N,C], [B,T,C])."""
        query = self.video_query(regions)
        key = self.video_key(regions)
        attention = ops.softmax(ops.matmul(query, ops.swapaxes(key, -1, -2)), axis=-1)
        attended = ops.matmul(attention, self.video_value(regions))
        attended = self.norm(regions + self.dropout(attended, training=training))
        average = ops.sum(attended, axis=2) / ops.cast(ops.shape(attended)[2], attended.dtype)
        average = ops.relu(self.affine_video_ave(average))[:, :, None, :]
        scores = self.ave_v_att(ops.relu(self.affine_video_3(attended)) * average)
        weights = ops.softmax(ops.tanh(ops.swapaxes(scores, -1, -2)), axis=-1)
        return attended, ops.matmul(weights, attended)[:, :, 0, :]

    def call(self, inputs, training=None):
        visual, audio = inputs
        shape = ops.shape(visual)
        regions = ops.reshape(visual, (shape[0], shape[1], shape[2] * shape[3], shape[4]))
        attended, self_att = self._self_attention(regions, training)
        # Channel attention: audio-guided, from the self-attended regions, on the raw ones.
        audio_query = ops.relu(self.affine_audio_1(audio))[:, :, None, :]
        joint = ops.mean(audio_query * ops.relu(self.affine_video_1(attended)), axis=-2)
        channel = ops.sigmoid(self.affine_v_c_att(ops.relu(self.affine_bottleneck(joint))))
        channel_attended = regions * (channel[:, :, None, :] + 1)
        # Spatial attention: audio-guided, over the channel-attended regions.
        visual_query = ops.relu(self.affine_video_2(channel_attended))
        audio_query = ops.relu(self.affine_audio_2(audio))[:, :, None, :]
        scores = self.affine_v_s_att(visual_query * audio_query)
        weights = ops.softmax(ops.tanh(ops.swapaxes(scores, -1, -2)), axis=-1)
        pooled = ops.matmul(weights, channel_attended)[:, :, 0, :]
        return pooled + self.beta * ops.sigmoid(self_att) * pooled

    def compute_output_shape(self, input_shape):
        visual_shape = input_shape[0]
        return (visual_shape[0], visual_shape[1], visual_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            beta=self.beta,
            hidden_units=self.hidden_units,
            latent_ratio=self.latent_ratio,
            dropout=self.dropout_rate,
        )
        return config


class _PostNormBlock(keras.layers.Layer):
    """Shared parts of the authors' EncoderLayer / DecoderLayer (post-norm, ReLU feed-forward).

    The attention is PyTorch's nn.MultiheadAttention semantics: q/k/v projections with biases,
    softmax(q k^T / sqrt(d / heads)), dropout on the attention weights, an output projection.
    """

    def __init__(self, units, num_heads, feedforward_units, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_heads = num_heads
        self.feedforward_units = feedforward_units
        self.dropout_rate = dropout

    def _build_parts(self, attention_name, query_shape, memory_shape):
        attention = torch_attention(
            self.num_heads, self.units, self.dropout_rate, attention_name, query_shape, memory_shape
        )
        self.linear1 = TorchDense(self.feedforward_units, name="linear1")
        self.linear1.build(query_shape)
        self.linear2 = TorchDense(self.units, name="linear2")
        self.linear2.build(query_shape[:-1] + (self.feedforward_units,))
        self.norm1 = _layer_norm("norm1")
        self.norm1.build(query_shape)
        self.norm2 = _layer_norm("norm2")
        self.norm2.build(query_shape)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        return attention

    def _finish(self, query, attended, training):
        """norm1(query + attended), then the feed-forward with its residual and norm2."""
        query = self.norm1(query + self.dropout(attended, training=training))
        hidden = self.dropout(ops.relu(self.linear1(query)), training=training)
        return self.norm2(query + self.dropout(self.linear2(hidden), training=training))

    def compute_output_shape(self, input_shape):
        query_shape = input_shape[0] if isinstance(input_shape, list) else input_shape
        return tuple(query_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_heads=self.num_heads,
            feedforward_units=self.feedforward_units,
            dropout=self.dropout_rate,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RelationEncoderLayer(_PostNormBlock):
    """The authors' EncoderLayer: self-attention over time, then the feed-forward.

    Call args:
        inputs: [B, T, units].
    Returns:
        [B, T, units].
    """

    def build(self, input_shape):
        self.self_attn = self._build_parts("self_attn", tuple(input_shape), tuple(input_shape))

    def call(self, inputs, training=None):
        attended = self.self_attn(inputs, inputs, inputs, training=training)
        return self._finish(inputs, attended, training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RelationDecoderLayer(_PostNormBlock):
    """The authors' DecoderLayer: the query attends over [memory ; query] (time-concatenated).

    Their DecoderLayer also holds a self-attention that its forward never uses; it has no
    counterpart here (torch_import checks its shapes and leaves it).

    Call args:
        inputs: [query [B, T, units], memory [B, S, units]].
    Returns:
        [B, T, units].
    """

    def build(self, input_shape):
        query_shape, memory_shape = (tuple(s) for s in input_shape)
        both = memory_shape[:1] + (None,) + memory_shape[2:]
        self.multihead_attn = self._build_parts("multihead_attn", query_shape, both)

    def call(self, inputs, training=None):
        query, memory = inputs
        memory = ops.concatenate([memory, query], axis=1)
        attended = self.multihead_attn(query, memory, memory, training=training)
        return self._finish(query, attended, training)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RelationEncoder(keras.layers.Layer):
    """InternalTemporalRelationModule: a linear map to `units`, then `num_layers` encoder layers.

    Call args:
        inputs: [B, T, D].
    Returns:
        [B, T, units].
    """

    def __init__(self, units, num_heads, feedforward_units, num_layers=2, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_heads = num_heads
        self.feedforward_units = feedforward_units
        self.num_layers = num_layers
        self.dropout_rate = dropout

    def build(self, input_shape):
        self.affine_matrix = TorchDense(self.units, name="affine_matrix")
        self.affine_matrix.build(input_shape)
        shape = tuple(input_shape[:-1]) + (self.units,)
        self.encoder_layers = []
        for index in range(self.num_layers):
            layer = RelationEncoderLayer(
                self.units,
                self.num_heads,
                self.feedforward_units,
                self.dropout_rate,
                name=f"layers_{index}",
            )
            layer.build(shape)
            self.encoder_layers.append(layer)

    def call(self, inputs, training=None):
        outputs = self.affine_matrix(inputs)
        for layer in self.encoder_layers:
            outputs = layer(outputs, training=training)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_heads=self.num_heads,
            feedforward_units=self.feedforward_units,
            num_layers=self.num_layers,
            dropout=self.dropout_rate,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RelationDecoder(RelationEncoder):
    """CrossModalRelationAttModule: the query mapped to `units`, then `num_layers` decoder layers.

    Call args:
        inputs: [query [B, T, D], memory [B, S, units]].
    Returns:
        [B, T, units].
    """

    def __init__(self, units, num_heads, feedforward_units, num_layers=1, dropout=0.1, **kwargs):
        super().__init__(units, num_heads, feedforward_units, num_layers, dropout, **kwargs)

    def build(self, input_shape):
        query_shape, memory_shape = (tuple(s) for s in input_shape)
        self.affine_matrix = TorchDense(self.units, name="affine_matrix")
        self.affine_matrix.build(query_shape)
        shape = query_shape[:-1] + (self.units,)
        self.decoder_layers = []
        for index in range(self.num_layers):
            layer = RelationDecoderLayer(
                self.units,
                self.num_heads,
                self.feedforward_units,
                self.dropout_rate,
                name=f"layers_{index}",
            )
            layer.build([shape, memory_shape])
            self.decoder_layers.append(layer)

    def call(self, inputs, training=None):
        query, memory = inputs
        outputs = self.affine_matrix(query)
        for layer in self.decoder_layers:
            outputs = layer([outputs, memory], training=training)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1]) + (self.units,)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AudioVisualInteraction(keras.layers.Layer):
    """The authors' AudioVideoInter: q = x * y attends over [y ; x]; LayerNorm(q + attended).

    Call args:
        inputs: [x [B, T, units] (the modality updated), y [B, T, units] (the other one)].
    Returns:
        [B, T, units].
    """

    def __init__(self, units, num_heads, attention_dropout=0.2, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout_rate = dropout

    def build(self, input_shape):
        shape = tuple(input_shape[0])
        memory_shape = shape[:1] + (None,) + shape[2:]
        self.video_multihead = torch_attention(
            self.num_heads,
            self.units,
            self.attention_dropout,
            "video_multihead",
            shape,
            memory_shape,
        )
        self.norm1 = _layer_norm("norm1")
        self.norm1.build(shape)
        self.dropout = keras.layers.Dropout(self.dropout_rate)

    def call(self, inputs, training=None):
        updated, other = inputs
        joint = updated * other
        memory = ops.concatenate([other, updated], axis=1)
        attended = self.video_multihead(joint, memory, memory, training=training)
        return self.norm1(joint + self.dropout(attended, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            num_heads=self.num_heads,
            attention_dropout=self.attention_dropout,
            dropout=self.dropout_rate,
        )
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class BackgroundSuppression(keras.layers.Layer):
    """Time-level background suppression: keep * x + gate * x * alpha.

    keep is 1 in the supervised model and 1 - alpha in the weak one (the authors' two forms).

    Call args:
        inputs: [x [B, T, D], gate [B, T, 1] in (0, 1)].
    Returns:
        [B, T, D].
    """

    def __init__(self, alpha, keep=1.0, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha
        self.keep = keep

    def call(self, inputs):
        features, gate = inputs
        kept = features if self.keep == 1.0 else self.keep * features
        return kept + gate * features * self.alpha

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(alpha=self.alpha, keep=self.keep)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TopKTemporalMean(keras.layers.Layer):
    """Per class, the mean of the k largest scores over time, k = min(self.k, T).

    The authors slice the descending sort with [:, :k], which also keeps all T when T < k;
    this does the same, so a 3-second video averages its 3 scores.

    Call args:
        inputs: [B, T, C].
    Returns:
        [B, C].
    """

    def __init__(self, k=4, **kwargs):
        super().__init__(**kwargs)
        self.k = k

    def call(self, inputs):
        top = -ops.sort(-inputs, axis=1)[:, : self.k, :]
        return ops.sum(top, axis=1) / ops.cast(ops.shape(top)[1], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(k=self.k)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TemporalMax(keras.layers.Layer):
    """The maximum over time. Call args: inputs [B, T, D]. Returns: [B, D]."""

    def call(self, inputs):
        return ops.max(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ScaledSum(keras.layers.Layer):
    """x + scale * y (the supervised head: class logits + gamma * av_score).

    Call args:
        inputs: [x, y] of one shape.
    Returns:
        x's shape.
    """

    def __init__(self, scale, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, inputs):
        return inputs[0] + self.scale * inputs[1]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(scale=self.scale)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ClassActivationGate(keras.layers.Layer):
    """Event-level suppression of the weak model: g*sigmoid(v)*cas + g*sigmoid(a)*cas.

    Call args:
        inputs: [cas [B, T, C], video_cas [B, T, C], audio_cas [B, T, C]] (logits).
    Returns:
        [B, T, C].
    """

    def __init__(self, gamma, **kwargs):
        super().__init__(**kwargs)
        self.gamma = gamma

    def call(self, inputs):
        cas, video_cas, audio_cas = inputs
        return self.gamma * ops.sigmoid(video_cas) * cas + self.gamma * ops.sigmoid(audio_cas) * cas

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def get_config(self):
        config = super().get_config()
        config.update(gamma=self.gamma)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GatedVideoScores(keras.layers.Layer):
    """The weak model's video scores: softmax over classes of max over time of gate * logits.

    Call args:
        inputs: [gate [B, T, 1], logits [B, C]].
    Returns:
        [B, C] probabilities.
    """

    def call(self, inputs):
        gate, logits = inputs
        return ops.softmax(ops.max(gate * logits[:, None, :], axis=1), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1])
