"""VGGish's network in Keras, its official checkpoint and files, as vggish_slim.py.

Network (vggish_slim.define_vggish_slim): conv 3x3 SAME + ReLU, max-pool 2x2 stride 2:
  conv1 64, pool1, conv2 128, pool2, conv3/conv3_1 256, conv3/conv3_2 256, pool3,
  conv4/conv4_1 512, conv4/conv4_2 512, pool4, flatten (6 x 4 x 512 = 12288, NHWC order),
  fc1/fc1_1 4096 + ReLU, fc1/fc1_2 4096 + ReLU, fc2 128. The checkpoint vggish_model.ckpt (TF1,
  V1 format) holds `vggish/<scope>/weights` and `vggish/<scope>/biases` for each of them.

Outputs ("vggish_output"):
  relu           fc2 followed by ReLU, as vggish_slim.py had it in 2017-2019 (every layer inherited
                 the ReLU of its arg_scope). The AVE release's audio features are these: >= 0, about
                 65% exact zeros, maxima near 4.5 (audio_feature_noisy.h5). The default.
  linear         fc2 without activation, as vggish_slim.py defines it today.
  postprocessed  linear, then the published PCA (vggish_pca_params.npz: pca_eigen_vectors [128,
  128],
                 pca_means [128]), clipped to [-2, 2] and quantised to 0..255 (truncated, as the
                 uint8 cast does): the AudioSet / YouTube-8M release format, stored as floats.
"""

import os

import tensorflow as tf

from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.features import vggish_params as params


def official_url(file_name):
    """The URL of an official VGGish file: $AVSDN_TF_VGGISH_BASE_URL or OFFICIAL_BASE_URL + name."""
    base = os.environ.get(params.BASE_URL_ENV) or params.OFFICIAL_BASE_URL
    return base.rstrip("/") + "/" + file_name


def cache_dir():
    """Keras' cache directory, as keras.utils.get_file uses it: $KERAS_HOME or ~/.keras."""
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def fetch_official(file_name, argument, verbose=True):
    """The local path of an official VGGish file, downloaded on first use.

    Args:
      file_name: params.CHECKPOINT_FILE or params.PCA_PARAMS_FILE.
      argument: the argument (flag) that takes a local copy instead, named in the error.
      verbose: print where the file is (and where it came from on download).

    Returns:
      The path in the cache: cache_dir()/vggish/<file_name>.
    """
    import keras

    url = official_url(file_name)
    directory = os.path.join(cache_dir(), params.CACHE_SUBDIR)
    path = os.path.join(directory, file_name)
    cached = os.path.exists(path)
    try:
        # get_file falls back to /tmp/.keras when the cache does not exist yet: make it first.
        os.makedirs(directory, exist_ok=True)
        path = keras.utils.get_file(
            file_name, url, cache_subdir=params.CACHE_SUBDIR, cache_dir=cache_dir()
        )
    except Exception as error:  # get_file raises Exception for every URL failure
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise UserError(
            f"{argument}: expected to download {url} into {path}, found {reason}; "
            f"without network access, copy the file over and pass --{argument}=PATH",
            argument=argument,
        ) from None
    if verbose:
        print(
            f"vggish: {path}" + (" (cached)" if cached else f" (downloaded from {url})"), flush=True
        )
    return path


# The network and its checkpoint.


def build_vggish(output="relu"):
    """The VGGish network in Keras: [B, 96, 64] log-mel examples -> [B, 128] embeddings.

    output "relu" ends with ReLU (the 2017 model that made the AVE features); "linear" and
    "postprocessed" end without one (post-processing is applied by `Postprocessor`).

    Args:
        output: "relu", "linear" or "postprocessed".
    Returns:
        keras.Model "vggish": float32 [B, 96, 64] -> float32 [B, 128], with random weights until
        load_checkpoint sets them.
    Raises:
        errors.UserError: for another output.
    """
    import keras

    if output not in params.OUTPUTS:
        raise argument_error("vggish_output", f"one of {params.OUTPUTS}", repr(output))

    def conv(units, name):
        """A 3x3 SAME convolution with ReLU (vggish_slim's arg_scope).

        Args:
            units: output channels. name: the layer name (a key of params.CHECKPOINT_SCOPES).
        Returns:
            keras.layers.Conv2D.
        """
        return keras.layers.Conv2D(units, 3, padding="same", activation="relu", name=name)

    def pool(name):
        """A 2x2 stride-2 max-pool: halves height and width.

        Args:
            name: the layer name.
        Returns:
            keras.layers.MaxPooling2D.
        """
        return keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)

    inputs = keras.Input((params.NUM_FRAMES, params.NUM_BANDS), name="log_mel")
    net = keras.layers.Reshape((params.NUM_FRAMES, params.NUM_BANDS, 1), name="add_channel")(inputs)
    net = pool("pool1")(conv(64, "conv1")(net))
    net = pool("pool2")(conv(128, "conv2")(net))
    net = pool("pool3")(conv(256, "conv3_2")(conv(256, "conv3_1")(net)))
    net = pool("pool4")(conv(512, "conv4_2")(conv(512, "conv4_1")(net)))
    net = keras.layers.Flatten(name="flatten")(net)
    net = keras.layers.Dense(4096, activation="relu", name="fc1_1")(net)
    net = keras.layers.Dense(4096, activation="relu", name="fc1_2")(net)
    net = keras.layers.Dense(
        params.EMBEDDING_SIZE, activation="relu" if output == "relu" else None, name="fc2"
    )(net)
    return keras.Model(inputs, net, name="vggish")


def _checkpoint_reader(path):
    if not path:
        raise UserError(
            "vggish_checkpoint: expected the path of vggish_model.ckpt, found none",
            argument="vggish_checkpoint",
        )
    try:
        return tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if not tf.io.gfile.exists(path) and not tf.io.gfile.exists(f"{path}.index"):
            raise UserError(f"{path}: VGGish checkpoint not found") from None
        raise input_error(
            path,
            "a TensorFlow checkpoint (vggish_model.ckpt, V1 or V2 format)",
            f"a file TensorFlow cannot read as one ({message})",
        ) from None


def checkpoint_shapes(model):
    """{checkpoint variable name: shape} that `model` needs, in network order.

    Args:
        model: a build_vggish model.
    Returns:
        dict "vggish/<scope>/weights" and "vggish/<scope>/biases" -> shape as a list of ints,
        e.g. vggish/conv1/weights [3, 3, 1, 64], vggish/fc2/biases [128].
    """
    shapes = {}
    for layer_name, scope in params.CHECKPOINT_SCOPES.items():
        layer = model.get_layer(layer_name)
        shapes[f"{scope}/weights"] = list(layer.kernel.shape)
        shapes[f"{scope}/biases"] = list(layer.bias.shape)
    return shapes


def load_checkpoint(model, path):
    """Set the weights of a `build_vggish` model from the official checkpoint, by variable name.

    Every variable is checked for presence and shape before any weight is set; variables the
    model does not use (optimizer slots, a global step) are ignored.

    Args:
        model: a build_vggish model.
        path: the checkpoint prefix (vggish_model.ckpt), local or a storage URL.
    Returns:
        the same model, its weights set.
    Raises:
        errors.UserError: when path is empty or not found, is not a checkpoint TensorFlow reads,
            lacks a variable the model needs or holds one of another shape.
    """
    reader = _checkpoint_reader(path)
    available = reader.get_variable_to_shape_map()
    needed = checkpoint_shapes(model)
    for name, shape in needed.items():
        if name not in available:
            found = sorted(available)
            listing = ", ".join(found[:6]) + (", ..." if len(found) > 6 else "")
            raise input_error(
                path,
                f"a VGGish checkpoint holding the variable {name}",
                f"no such variable among its {len(found)} ({listing})",
            )
        if list(available[name]) != shape:
            raise input_error(
                f"{path} variable {name}", f"shape {shape}", f"shape {list(available[name])}"
            )
    for layer_name, scope in params.CHECKPOINT_SCOPES.items():
        model.get_layer(layer_name).set_weights(
            [reader.get_tensor(f"{scope}/weights"), reader.get_tensor(f"{scope}/biases")]
        )
    return model
