"""The authors' PyTorch CMBS weights (marmot-xy/CMBS) into the Keras model of model.build.

Their scripts save `nn.DataParallel(model).state_dict()` with torch.save (keys prefixed
"module.", tensors in double precision, file names ending .pth.tar). Every parameter their
forward uses is mapped to a Keras weight: Linear weights transposed; LSTM gates are i, f, g, o
in both frameworks (Keras's i, f, c, o), kernels transposed and b_ih + b_hh summed into Keras's
one bias; nn.MultiheadAttention's in_proj split into query / key / value kernels
[d, heads, d / heads]; LayerNorm weight / bias as gamma / beta; the 1x1 Conv1d as a bias-free
Dense. Parameters of modules their forward never uses (the template layers their encoders
clone, their decoder layers' self-attention, `ave_bottleneck`, the supervised model's
`video_norm` / `audio_norm`, the weak model's `classifier`) are checked for shape and left.
PyTorch is imported only inside import_state_dict.
"""

import numpy as np

from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models.cmbs import recipe

_ATTENTION_INPUTS = ("query", "key", "value")
_SCA_DENSE = (
    "affine_video_1",
    "affine_audio_1",
    "affine_bottleneck",
    "affine_v_c_att",
    "affine_video_2",
    "affine_audio_2",
    "affine_v_s_att",
    "video_query",
    "video_key",
    "video_value",
    "affine_video_ave",
    "affine_video_3",
    "ave_v_att",
)


class _Plan:
    """Expected PyTorch shapes per key, and the loaders that set the Keras weights from them."""

    def __init__(self):
        self.shapes = {}
        self.loaders = []

    def dense(self, prefix, layer):
        kernel = layer.kernel
        self.shapes[f"{prefix}weight"] = tuple(kernel.shape)[::-1]
        self.loaders.append(lambda s: kernel.assign(s[f"{prefix}weight"].T))
        if layer.use_bias:
            self.shapes[f"{prefix}bias"] = tuple(layer.bias.shape)
            self.loaders.append(lambda s: layer.bias.assign(s[f"{prefix}bias"]))

    def conv1x1(self, prefix, layer):
        units_in, units_out = layer.kernel.shape
        self.shapes[f"{prefix}weight"] = (units_out, units_in, 1)
        self.loaders.append(lambda s: layer.kernel.assign(s[f"{prefix}weight"][:, :, 0].T))

    def layer_norm(self, prefix, layer):
        self.shapes[f"{prefix}weight"] = tuple(layer.gamma.shape)
        self.shapes[f"{prefix}bias"] = tuple(layer.beta.shape)
        self.loaders.append(lambda s: layer.gamma.assign(s[f"{prefix}weight"]))
        self.loaders.append(lambda s: layer.beta.assign(s[f"{prefix}bias"]))

    def attention(self, prefix, layer):
        dense = [layer.query_dense, layer.key_dense, layer.value_dense]
        units, heads, head_units = dense[0].kernel.shape
        self.shapes[f"{prefix}in_proj_weight"] = (3 * heads * head_units, units)
        self.shapes[f"{prefix}in_proj_bias"] = (3 * heads * head_units,)
        self.shapes[f"{prefix}out_proj.weight"] = (units, heads * head_units)
        self.shapes[f"{prefix}out_proj.bias"] = (units,)

        def load(s):
            weights = np.split(s[f"{prefix}in_proj_weight"], 3, axis=0)
            biases = np.split(s[f"{prefix}in_proj_bias"], 3, axis=0)
            for part, weight, bias in zip(dense, weights, biases):
                part.kernel.assign(weight.T.reshape(units, heads, head_units))
                part.bias.assign(bias.reshape(heads, head_units))
            output = layer.output_dense
            output.kernel.assign(s[f"{prefix}out_proj.weight"].T.reshape(heads, head_units, units))
            output.bias.assign(s[f"{prefix}out_proj.bias"])

        self.loaders.append(load)

    def bidirectional_lstm(self, prefix, layer):
        for suffix, direction in (("", layer.forward_layer), ("_reverse", layer.backward_layer)):
            cell, names = direction.cell, [f"{prefix}{w}_l0{suffix}" for w in _LSTM_WEIGHTS]
            for name, shape in zip(names, _lstm_shapes(cell)):
                self.shapes[name] = shape

            def load(s, cell=cell, names=names):
                cell.kernel.assign(s[names[0]].T)
                cell.recurrent_kernel.assign(s[names[1]].T)
                cell.bias.assign(s[names[2]] + s[names[3]])

            self.loaders.append(load)

    def encoder_layer(self, prefix, layer, attention_name):
        self.attention(f"{prefix}{attention_name}.", getattr(layer, attention_name))
        for name in ("linear1", "linear2"):
            self.dense(f"{prefix}{name}.", getattr(layer, name))
        for name in ("norm1", "norm2"):
            self.layer_norm(f"{prefix}{name}.", getattr(layer, name))


_LSTM_WEIGHTS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def _lstm_shapes(cell):
    units_in, gates = cell.kernel.shape
    return [(gates, units_in), (gates, cell.units), (gates,), (gates,)]


def _relation_modules(plan, model):
    for name in ("video_encoder", "audio_encoder"):
        layer = model.get_layer(name)
        plan.dense(f"{name}.affine_matrix.", layer.affine_matrix)
        for index, sub in enumerate(layer.encoder_layers):
            plan.encoder_layer(f"{name}.encoder.layers.{index}.", sub, "self_attn")
    for name in ("video_decoder", "audio_decoder"):
        layer = model.get_layer(name)
        plan.dense(f"{name}.affine_matrix.", layer.affine_matrix)
        for index, sub in enumerate(layer.decoder_layers):
            plan.encoder_layer(f"{name}.decoder.layers.{index}.", sub, "multihead_attn")


def _plan(model, supervision):
    """The _Plan of a model from model.build for `supervision`."""
    plan = _Plan()
    plan.dense("v_fc.", model.get_layer("v_fc"))
    attention = model.get_layer("spatial_channel_att")
    for name in _SCA_DENSE:
        plan.dense(f"spatial_channel_att.{name}.", getattr(attention, name))
    plan.layer_norm("spatial_channel_att.norm.", attention.norm)
    _relation_modules(plan, model)
    for name in ("audio_gated", "video_gated"):
        plan.dense(f"{name}.0.", model.get_layer(name))
    for name in ("AVInter", "VAInter"):
        plan.attention(f"{name}.video_multihead.", model.get_layer(name).video_multihead)
        plan.layer_norm(f"{name}.norm1.", model.get_layer(name).norm1)
    for name in ("audio_cas", "video_cas"):
        plan.dense(f"{name}.", model.get_layer(name))
    if supervision == recipe.FULL:
        for name in ("audio_rnn", "visual_rnn"):
            plan.bidirectional_lstm(f"audio_visual_rnn_layer.{name}.", model.get_layer(name))
        for name in ("classifier", "event_classifier"):
            plan.dense(f"localize_module.{name}.", model.get_layer(name))
    else:
        plan.conv1x1("CAS_model.classifier.0.", model.get_layer("CAS_model"))
    return plan


def unused_shapes(shapes, supervision):
    """The shapes of the authors' parameters their forward never uses, from the used ones.

    Args:
        shapes: {PyTorch key: shape} of the used parameters (a _Plan's shapes).
        supervision: "full" or "weak".
    Returns:
        {PyTorch key: shape} of the unused ones (see the module docstring).
    """
    unused = {
        "spatial_channel_att.ave_bottleneck.weight": (256, 512),
        "spatial_channel_att.ave_bottleneck.bias": (256,),
    }
    for key, shape in shapes.items():
        module, _, rest = key.partition(".")
        for stack, template in (
            ("encoder.layers.0.", "encoder_layer."),
            ("decoder.layers.0.", "decoder_layer."),
        ):
            if not rest.startswith(stack):
                continue
            tail = rest[len(stack) :]
            unused[f"{module}.{template}{tail}"] = shape
            if tail.startswith("multihead_attn."):
                self_attention = tail.replace("multihead_attn.", "self_attn.", 1)
                unused[f"{module}.{stack}{self_attention}"] = shape
                unused[f"{module}.{template}{self_attention}"] = shape
    d_model = shapes["audio_gated.0.weight"][1]
    if supervision == recipe.FULL:
        for name in ("video_norm", "audio_norm"):
            unused.update({f"{name}.weight": (d_model,), f"{name}.bias": (d_model,)})
    else:
        unused.update({"classifier.weight": (1, d_model), "classifier.bias": (1,)})
    return unused


def _read(path):
    """{key: float32 array} from a torch.save'd state_dict (a "state_dict" wrapper, "module.")."""
    try:
        import torch
    except ImportError:
        raise UserError(
            f"{path}: reading a PyTorch state_dict needs PyTorch, which is not installed: "
            "pip install 'avsdn-tf[torch]'"
        ) from None
    expected = "a PyTorch state_dict saved with torch.save (the authors' .pth.tar)"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise input_error(path, expected, "no such file") from None
    except Exception as error:  # torch raises many kinds on a file that is not its pickle
        raise input_error(path, expected, f"a file torch.load cannot read ({error})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise input_error(path, expected, f"a {type(state).__name__} that is not one")
    if state and all(key.startswith("module.") for key in state):
        state = {key[len("module.") :]: value for key, value in state.items()}
    return {key: value.detach().cpu().numpy().astype(np.float32) for key, value in state.items()}


def _check(path, state, shapes, supervision):
    """Raise one UserError for the first missing, unexpected or wrong-shaped parameter."""
    model = f"CMBS {supervision}"
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    summary = (
        f" ({len(missing)} of {len(shapes)} {model} parameters missing, {len(unexpected)} "
        "unexpected: is it a state_dict of another model or supervision?)"
    )
    if missing:
        raise input_error(
            f"{path} parameter {missing[0]}",
            f"shape {list(shapes[missing[0]])} ({model})",
            f"no such parameter{summary}",
        )
    if unexpected:
        raise input_error(
            f"{path} parameter {unexpected[0]}",
            f"no such parameter in {model}",
            f"shape {list(state[unexpected[0]].shape)}{summary}",
        )
    for key in sorted(set(shapes) & set(state)):
        if tuple(state[key].shape) != tuple(shapes[key]):
            raise input_error(
                f"{path} parameter {key}",
                f"shape {list(shapes[key])} ({model})",
                f"shape {list(state[key].shape)}",
            )


def import_state_dict(model, path, supervision):
    """Set `model`'s weights from the authors' PyTorch state_dict file.

    Args:
        model: a keras.Model from model.build(..., supervision, ...).
        path: a file torch.save wrote: their state_dict (keys with or without DataParallel's
            "module." prefix, any float dtype), or a dict holding it under "state_dict".
        supervision: "full" (supv_main_model's keys) or "weak" (weak_main_model's).
    Raises:
        UserError: one message naming the file and, for a parameter that is missing,
        unexpected or of another shape, the parameter and both shapes; or saying to
        `pip install 'avsdn-tf[torch]'` when PyTorch is missing.
    """
    if supervision not in recipe.SUPERVISIONS:
        raise argument_error("supervision", f"one of {list(recipe.SUPERVISIONS)}", supervision)
    plan = _plan(model, supervision)
    state = _read(path)
    _check(path, state, {**plan.shapes, **unused_shapes(plan.shapes, supervision)}, supervision)
    for load in plan.loaders:
        load(state)
