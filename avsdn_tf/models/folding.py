"""Inference with the input normalisation folded into the first layers that read each input.

The model carries its normalisation, x' = (x - mean) / std per channel (FeatureNormalization).
Where every reader of x' is affine in it (an LSTM's or Dense's input kernel, possibly through a
last-axis Concatenate or a spatial average pooling), the normalisation can be folded into those
kernels: x' @ K + b = x @ (K / std[:, None]) + (b - (mean / std) @ K). The folded copy computes
the same function without the two elementwise passes over [B, T, C] (measured by
benchmarks/bench_normalization.py, docs/benchmarks.md). An input whose normalised features reach
anything else (the audio-guided attention, a model output) keeps its normalisation layer.

The copy is for inference only: training, checkpoints and SavedModels keep the model as it is,
with its normalisation layers and statistics.
"""

import keras
import numpy as np

from avsdn_tf.models import layers

_AFFINE_READERS = (keras.layers.LSTM, keras.layers.Bidirectional, keras.layers.Dense)


def _readers(model, tensor):
    """[(layer, node)]: the calls of the model's layers that take `tensor` as an input."""
    return [
        (layer, node)
        for layer in model.layers
        for node in layer._inbound_nodes
        if any(argument is tensor for argument in node.input_tensors)
    ]


def _kernels_and_biases(layer):
    """[(input kernel [D, U] variable, bias [U] variable)] of an affine reader, or None."""
    if isinstance(layer, keras.layers.Bidirectional):
        inner = (layer.forward_layer, layer.backward_layer)
        if not all(isinstance(each, keras.layers.LSTM) for each in inner):
            return None
        pairs = [(each.cell.kernel, each.cell.bias) for each in inner]
    elif isinstance(layer, keras.layers.LSTM):
        pairs = [(layer.cell.kernel, layer.cell.bias)]
    elif isinstance(layer, keras.layers.Dense):
        if getattr(layer, "lora_enabled", False):
            return None
        pairs = [(layer.kernel, layer.bias)]
    else:
        return None
    return None if any(bias is None for _, bias in pairs) else pairs


def _affine_readers(model, tensor, offset=0):
    """Where `tensor`'s channels enter affine kernels, or None when some use is not affine.

    Args:
        model: a functional Keras model.
        tensor: a KerasTensor of the model whose last axis holds the channels.
        offset: the row at which those channels enter the kernels downstream.
    Returns:
        [(layer name, first kernel row)] or None.
    """
    if any(output is tensor for output in model.outputs):
        return None
    found = []
    for layer, node in _readers(model, tensor):
        uses = sum(argument is tensor for argument in node.input_tensors)
        args = node.arguments.args
        if isinstance(layer, _AFFINE_READERS):
            if uses != 1 or not args or args[0] is not tensor or not _kernels_and_biases(layer):
                return None
            found.append((layer.name, offset))
            continue
        if isinstance(layer, keras.layers.Concatenate):
            parts = args[0] if args else []
            if uses != 1 or layer.axis not in (-1, len(tensor.shape) - 1):
                return None
            position = offset
            for part in parts:
                if part is tensor:
                    break
                position += part.shape[-1]
            deeper = _affine_readers(model, node.output_tensors[0], position)
        elif isinstance(layer, layers.SpatialAveragePooling):
            deeper = _affine_readers(model, node.output_tensors[0], offset)
        else:
            return None
        if deeper is None:
            return None
        found.extend(deeper)
    return found


def fold_plan(model):
    """Which normalisations of `model` fold, and into which kernels.

    Args:
        model: a functional Keras model (e.g. backbones.segment_model of a task's model).
    Returns:
        {normalisation layer name: [(reader layer name, first kernel row)]}, only for the
        FeatureNormalization layers all of whose readers are affine.
    """
    plan = {}
    for layer in model.layers:
        if isinstance(layer, layers.FeatureNormalization):
            readers = _affine_readers(model, layer.output)
            if readers:
                plan[layer.name] = readers
    return plan


class FoldedModel:
    """A copy of a model with its foldable normalisations folded into the kernels that read them.

    `model` is the copy (the source itself when nothing folds); call `sync()` after the
    source's weights change (e.g. after an epoch of training) to refresh it.
    """

    def __init__(self, source):
        self.source = source
        self.plan = fold_plan(source)
        if not self.plan:
            self.model = source
            return

        def clone(layer):
            if layer.name in self.plan:
                return keras.layers.Identity(name=layer.name)
            return layer.__class__.from_config(layer.get_config())

        self.model = keras.models.clone_model(source, clone_function=clone)
        self.sync()

    def sync(self):
        """Copy the source's weights into the copy and fold its current statistics."""
        if self.model is self.source:
            return
        for layer in self.model.layers:
            if layer.weights:
                layer.set_weights(self.source.get_layer(layer.name).get_weights())
        folds = {}
        for norm_name, readers in self.plan.items():
            mean, std = self.source.get_layer(norm_name).statistics()
            for reader, row in readers:
                folds.setdefault(reader, []).append((row, mean, std))
        for reader, entries in folds.items():
            for kernel, bias in _kernels_and_biases(self.model.get_layer(reader)):
                kernel_values = np.asarray(kernel.numpy(), np.float64)
                bias_values = np.asarray(bias.numpy(), np.float64)
                for row, mean, std in entries:
                    rows = slice(row, row + mean.shape[0])
                    original = kernel_values[rows].copy()
                    bias_values = bias_values - (mean / std) @ original
                    kernel_values[rows] = original / std[:, None].astype(np.float64)
                kernel.assign(kernel_values.astype(kernel.dtype))
                bias.assign(bias_values.astype(bias.dtype))
