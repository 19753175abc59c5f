"""The authors' PyTorch weights (jasongief/PSP_CVPR_2021) into the Keras PSP model.

import_state_dict reads a state_dict saved by torch.save (optionally wrapped, e.g.
{"state_dict": ...}, and with or without DataParallel's "module." prefix) and maps every
parameter of the authors' psp_net (fully_model.py or weakly_model.py) to the Keras weights of
model.build. PyTorch is imported only here, inside the function (the `[torch]` extra).

The mapping: a Linear's weight [out, in] is the Dense kernel transposed; an LSTM's
weight_ih / weight_hh [4u, in] are the kernel / recurrent kernel transposed (PyTorch's gate
order i, f, g, o is Keras's i, f, c, o), its two biases b_ih + b_hh sum to Keras's one bias;
"_reverse" parameters go to the backward LSTM; LayerNorm weight / bias are gamma / beta.
The authors' psp_net also holds parameters its forward pass never reads (full: linear_v,
v_classify, a_classify, L3, L4; weak: temperature, W1, W2): they are checked for shape, so a
file of another model is caught, and not imported.
"""

from collections.abc import Mapping

import numpy as np

from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models.psp import recipe

_PREFIX = "module."  # what torch.nn.DataParallel puts before every parameter name
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net")


def _linear(layer, key, bias=False):
    """(torch key, Keras variable, transform) entries of a Linear mapped to a Dense."""
    entries = [((f"{key}.weight",), layer.kernel, "transpose")]
    if bias:
        entries.append(((f"{key}.bias",), layer.bias, "copy"))
    return entries


def _lstm(bidirectional, key):
    """Entries of a bidirectional nn.LSTM (one layer) mapped to a Keras Bidirectional LSTM."""
    entries = []
    for suffix, direction in (
        ("", bidirectional.forward_layer),
        ("_reverse", bidirectional.backward_layer),
    ):
        cell = direction.cell
        entries += [
            ((f"{key}.weight_ih_l0{suffix}",), cell.kernel, "transpose"),
            ((f"{key}.weight_hh_l0{suffix}",), cell.recurrent_kernel, "transpose"),
            ((f"{key}.bias_ih_l0{suffix}", f"{key}.bias_hh_l0{suffix}"), cell.bias, "sum"),
        ]
    return entries


def _shared_entries(model, supervision):
    """Entries both supervisions have: attention, LSTMs, the PSP block, the classifier."""
    attention = model.get_layer("visual_attention")
    psp = model.get_layer("psp")
    logits = "segment_logits" if supervision == recipe.FULL else "segment_scores"
    entries = (
        _linear(attention.audio_projection, "attention.affine_audio", bias=True)
        + _linear(attention.video_projection, "attention.affine_video", bias=True)
        + _linear(attention.region_scores, "attention.affine_v")
        + _linear(attention.audio_prior, "attention.affine_g")
        + _linear(attention.score, "attention.affine_h")
        + _lstm(model.get_layer("audio_lstm"), "lstm_a_v.lstm_audio")
        + _lstm(model.get_layer("visual_lstm"), "lstm_a_v.lstm_video")
        + _linear(psp.visual_branch_1, "psp.v_L1")
        + _linear(psp.visual_branch_2, "psp.v_L2")
        + _linear(psp.audio_branch_1, "psp.a_L1")
        + _linear(psp.audio_branch_2, "psp.a_L2")
        + [
            (("psp.layer_norm.weight",), psp.layer_norm.gamma, "copy"),
            (("psp.layer_norm.bias",), psp.layer_norm.beta, "copy"),
        ]
        + _linear(model.get_layer("classifier_hidden"), "L1")
        + _linear(model.get_layer(logits), "L2")
    )
    return entries


def _entries(model, supervision):
    """Every entry of the supervision's psp_net, and the shapes of its unread parameters."""
    entries = _shared_entries(model, supervision)
    audio_dim = model.get_layer("visual_attention").audio_projection.kernel.shape[0]
    channels = model.get_layer("visual_attention").video_projection.kernel.shape[0]
    hidden, classes = recipe.CLASSIFIER_HIDDEN_UNITS, recipe.NUM_CLASSES
    if supervision == recipe.FULL:
        psp = model.get_layer("psp")
        entries += (
            _linear(model.get_layer("audio_projection_1"), "fa.0")
            + _linear(model.get_layer("audio_projection_2"), "fa.1")
            + _linear(model.get_layer("visual_projection_1"), "fv.0")
            + _linear(model.get_layer("visual_projection_2"), "fv.1")
            + _linear(psp.visual_output, "psp.v_fc")
            + _linear(psp.audio_output, "psp.a_fc")
        )
        unread = {"linear_v.weight": (audio_dim, channels), "linear_v.bias": (audio_dim,)}
        for branch in ("v_classify", "a_classify"):
            unread[f"{branch}.L1.weight"] = (hidden, recipe.PSP_UNITS)
            unread[f"{branch}.L2.weight"] = (classes - 1, hidden)
        unread.update(
            {"L3.weight": (hidden, recipe.PSP_UNITS), "L3.bias": (hidden,)}
            | {"L4.weight": (2, hidden), "L4.bias": (2,)}
        )
    else:
        weighting = model.get_layer("segment_logits").weight_projection
        entries += _linear(model.get_layer("visual_projection"), "linear_v", bias=True)
        entries += _linear(weighting, "W3")
        unread = {
            "temperature": (1, classes),
            "W1.weight": (1, recipe.PSP_UNITS),
            "W2.weight": (1, hidden),
        }
    return entries, unread


def _torch_shape(variable, transform):
    shape = tuple(variable.shape)
    return shape[::-1] if transform == "transpose" else shape


def _import_torch():
    try:
        import torch
    except ImportError:
        raise UserError(
            "init_weights: expected PyTorch to read the authors' state_dict, found it not "
            "installed: pip install 'avsdn-tf[torch]'",
            argument="init_weights",
        ) from None
    return torch


def _read_state_dict(torch, path):
    """The file's parameters as {name: float32 array}: unwrapped, "module." removed."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise input_error(path, "a PyTorch state_dict file", "no such file") from None
    except Exception as error:  # torch.load raises pickle, zip and runtime errors alike
        raise input_error(
            path,
            "a state_dict saved with torch.save(model.state_dict(), path)",
            f"a file torch.load cannot read as one ({type(error).__name__})",
        ) from None
    if isinstance(loaded, Mapping) and not any(torch.is_tensor(v) for v in loaded.values()):
        for key in _WRAPPER_KEYS:
            if isinstance(loaded.get(key), Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not loaded:
        raise input_error(
            path, "a state_dict (parameter name -> tensor)", f"a {type(loaded).__name__}"
        )
    parameters = {}
    for name, value in loaded.items():
        if not torch.is_tensor(value):
            raise input_error(f"{path}: parameter {name}", "a tensor", type(value).__name__)
        name = name[len(_PREFIX) :] if name.startswith(_PREFIX) else name
        parameters[name] = value.detach().to(torch.float32).cpu().numpy()
    return parameters


def _problems(parameters, expected, what):
    """One line per parameter that does not fit, missing and wrong-shaped first."""
    problems = []
    for name, shape in expected.items():
        if name not in parameters:
            problems.append((name, f"shape {list(shape)} ({what})", "it missing"))
        elif parameters[name].shape != shape:
            found = f"shape {list(parameters[name].shape)}"
            problems.append((name, f"shape {list(shape)} ({what})", found))
    for name in sorted(set(parameters) - set(expected)):
        found = f"shape {list(parameters[name].shape)}, a parameter {what} does not have"
        problems.append((name, "no such parameter", found))
    return problems


def import_state_dict(model, path, supervision):
    """Load the authors' PyTorch state_dict into a model of model.build.

    Args:
        model: the keras.Model of model.build(..., supervision).
        path: a file of torch.save(state_dict) (or of a dict wrapping it under "state_dict",
            "model_state_dict", "model" or "net"); names may carry DataParallel's "module.".
        supervision: "full" (fully_model.psp_net) or "weak" (weakly_model.psp_net).
    Returns:
        list of str: the file's parameter names that the forward pass does not read and that
        were checked but not imported.
    Raises:
        UserError: torch not installed; the file unreadable; or one message naming the first
            parameter that is missing, unexpected or of another shape, with both shapes.
    """
    if supervision not in recipe.SUPERVISIONS:
        raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)
    torch = _import_torch()
    parameters = _read_state_dict(torch, path)
    entries, unread = _entries(model, supervision)
    expected = dict(unread)
    for keys, variable, transform in entries:
        for key in keys:
            expected[key] = _torch_shape(variable, transform)
    what = f"the authors' PSP psp_net, {supervision} supervision"
    problems = _problems(parameters, expected, what)
    if problems:
        name, wanted, found = problems[0]
        more = f" ({len(problems) - 1} more parameters do not fit)" if len(problems) > 1 else ""
        raise UserError(f"{path}: parameter {name}: expected {wanted}, found {found}{more}")
    for keys, variable, transform in entries:
        values = [parameters[key] for key in keys]
        value = values[0].T if transform == "transpose" else np.sum(values, axis=0)
        variable.assign(value.astype(variable.dtype))
    return sorted(unread)
