"""PSP's own layers (Zhou et al., CVPR 2021): small, serializable, one job each.

The audio-guided visual attention PSP uses is AVEL's, the same computation as
avsdn_tf.models.layers.AudioGuidedVisualAttention, which model.py reuses.
"""

import keras
from keras import ops

_PACKAGE = "avsdn_tf"
# Added to a sum before dividing by it, as the authors' code does (their 1e-8).
_SUM_EPSILON = 1e-8
# The smallest norm F.normalize divides by (PyTorch's default eps).
_NORM_EPSILON = 1e-12


def _l1_rows(matrix):
    """Each row divided by its sum plus 1e-8 (the entries are >= 0), as the authors do."""
    return matrix / (ops.sum(matrix, axis=-1, keepdims=True) + _SUM_EPSILON)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PositiveSamplePropagation(keras.layers.Layer):
    """The positive sample propagation block on audio and visual sequences.

    Per modality two bias-free projections with ReLU (and dropout while training): the visual
    ones v1, v2, the audio ones a1, a2. The affinity beta = ReLU(v2 . a1^T / sqrt(units))
    [B, T, T] (rows: visual segments, columns: audio segments) and its transpose are each
    row-L1-normalised; entries not above `threshold` are set to zero (gamma). The fully
    supervised block renormalises gamma's rows again (`renormalize`); the weakly supervised one
    does not. Then v' = v + gamma_va . a2 and a' = a + gamma_av . v1; the fully supervised block
    passes both through a bias-free Dense, ReLU and dropout (`output_projection`); a shared
    LayerNorm (epsilon 1e-6) follows, and the fusion is (v' + a') / 2.

    Call with [audio, visual], each [B, T, D]; returns [fusion, visual', audio'], each
    [B, T, units] (units == D: the residual needs it).
    """

    def __init__(
        self,
        threshold,
        units=256,
        dropout=0.1,
        renormalize=True,
        output_projection=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.threshold = float(threshold)
        self.units = units
        self.dropout_rate = dropout
        self.renormalize = renormalize
        self.output_projection = output_projection

    def build(self, input_shape):
        audio_shape, visual_shape = input_shape
        if audio_shape[-1] != self.units or visual_shape[-1] != self.units:
            raise ValueError(
                f"PositiveSamplePropagation needs audio and visual of {self.units} features "
                f"(the residual), got {audio_shape[-1]} and {visual_shape[-1]}"
            )
        names = ["visual_branch_1", "visual_branch_2", "audio_branch_1", "audio_branch_2"]
        if self.output_projection:
            names += ["visual_output", "audio_output"]
        for name in names:
            dense = keras.layers.Dense(self.units, use_bias=False, name=name)
            dense.build((None, self.units))
            setattr(self, name, dense)
        self.dropout = keras.layers.Dropout(self.dropout_rate)
        self.layer_norm = keras.layers.LayerNormalization(epsilon=1e-6, name="layer_norm")
        self.layer_norm.build((None, self.units))

    def _branch(self, name, features, training):
        return self.dropout(ops.relu(getattr(self, name)(features)), training=training)

    def _propagation(self, affinity):
        gamma = _l1_rows(affinity)
        gamma = ops.where(gamma > self.threshold, gamma, ops.zeros_like(gamma))
        return _l1_rows(gamma) if self.renormalize else gamma

    def call(self, inputs, training=None):
        audio, visual = inputs
        visual_1 = self._branch("visual_branch_1", visual, training)
        visual_2 = self._branch("visual_branch_2", visual, training)
        audio_1 = self._branch("audio_branch_1", audio, training)
        audio_2 = self._branch("audio_branch_2", audio, training)
        scale = ops.cast(ops.sqrt(float(self.units)), visual.dtype)
        beta_va = ops.relu(ops.matmul(visual_2, ops.transpose(audio_1, (0, 2, 1))) / scale)
        beta_av = ops.transpose(beta_va, (0, 2, 1))
        visual = visual + ops.matmul(self._propagation(beta_va), audio_2)
        audio = audio + ops.matmul(self._propagation(beta_av), visual_1)
        if self.output_projection:
            visual = self._branch("visual_output", visual, training)
            audio = self._branch("audio_output", audio, training)
        visual = self.layer_norm(visual)
        audio = self.layer_norm(audio)
        return [0.5 * (visual + audio), visual, audio]

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape[0][:-1]) + (self.units,)
        return [shape, shape, shape]

    def get_config(self):
        return {
            **super().get_config(),
            "threshold": self.threshold,
            "units": self.units,
            "dropout": self.dropout_rate,
            "renormalize": self.renormalize,
            "output_projection": self.output_projection,
        }


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SegmentCosineSimilarity(keras.layers.Layer):
    """Cosine similarity of the visual and audio feature of each segment.

    Call with [visual, audio], each [B, T, D]; returns [B, T]. Each vector is divided by
    max(its L2 norm, 1e-12), as PyTorch's F.normalize does.
    """

    def call(self, inputs):
        visual, audio = inputs

        def unit(x):
            norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
            return x / ops.maximum(norm, _NORM_EPSILON)

        return ops.sum(unit(visual) * unit(audio), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:-1])


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TemporalWeighting(keras.layers.Layer):
    """The weakly supervised model's weighting branch: scores x sigmoid(ReLU(w . scores)).

    w is a bias-free projection of a segment's K class scores to one number, so each segment's
    scores are scaled by a weight in [0.5, 1). Input and output [B, T, K].
    """

    def build(self, input_shape):
        self.weight_projection = keras.layers.Dense(1, use_bias=False, name="weight_projection")
        self.weight_projection.build((None, input_shape[-1]))

    def call(self, scores):
        return scores * ops.sigmoid(ops.relu(self.weight_projection(scores)))

    def compute_output_shape(self, input_shape):
        return input_shape
