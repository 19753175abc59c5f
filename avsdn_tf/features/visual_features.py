"""Visual features per 1-s segment from keras.applications backbones, averaged over its frames.

  vgg19      VGG-19 without its classifier: pool5 (block5_pool) maps, 7 x 7 x 512 at 224 x 224
             input, the layout of the AVE release (which averaged 16 frames per second).
  resnet152  ResNet-152 without its classifier, global average pooling: 2048-d, as the AVSDN
             paper used.

Frames arrive as uint8 RGB image_size x image_size (the video decoder resizes them) and get each
backbone's own preprocessing (both are Caffe-style: RGB -> BGR, ImageNet channel means removed).
Weights: 'imagenet' (downloaded by Keras on machines that can reach it) or the path of a weights
file of the include_top=False model: a Keras 3 `.weights.h5` as `model.save_weights` writes it,
or the legacy `*_notop.h5` file keras.applications downloads. The weights hold no input size, so
--image_size below 224 (smaller maps, faster) works with the same file.
"""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf

from avsdn_tf.errors import UserError, argument_error, input_error, one_line

DEFAULT_IMAGE_SIZE = 224
IMAGENET = "imagenet"


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str
    application: str  # keras.applications attribute
    preprocess_module: str  # keras.applications module with the matching preprocess_input
    pooling: str | None  # None: keep the last maps; "avg": global average pooling
    channels: int
    stride: int  # input pixels per output map cell (maps only)

    def feature_shape(self, image_size=DEFAULT_IMAGE_SIZE):
        """The shape of one frame's features at an input size.

        Args:
            image_size: S, the frames' side in pixels.
        Returns:
            list of ints: [S // 32, S // 32, channels] for map backbones ([7, 7, 512] for vgg19
            at 224 px), [channels] for pooled ones ([2048] for resnet152).
        """
        if self.pooling == "avg":
            return [self.channels]
        size = image_size // self.stride  # five VALID 2x2 max-pools: floor at each step
        return [size, size, self.channels]


BACKBONES = {
    "vgg19": Backbone("vgg19", "VGG19", "vgg19", None, 512, 32),
    "resnet152": Backbone("resnet152", "ResNet152", "resnet", "avg", 2048, 32),
}


def get_backbone(name):
    """The Backbone of a name.

    Args:
        name: a key of BACKBONES ("vgg19" or "resnet152").
    Returns:
        Backbone.
    Raises:
        errors.UserError: for another name.
    """
    if name not in BACKBONES:
        raise argument_error("visual_backbone", f"one of {sorted(BACKBONES)}", repr(name))
    return BACKBONES[name]


def build(name, weights=IMAGENET, image_size=DEFAULT_IMAGE_SIZE):
    """The include_top=False backbone with its weights: [N, S, S, 3] preprocessed -> features.

    weights: 'imagenet', a weights-file path, or None (random, for tests and speed benchmarks).
    """
    import keras

    backbone = get_backbone(name)
    if image_size < 32:
        raise argument_error("image_size", "at least 32 pixels (five 2x poolings)", image_size)
    application = getattr(keras.applications, backbone.application)
    kwargs = dict(
        include_top=False, input_shape=(image_size, image_size, 3), pooling=backbone.pooling
    )
    if weights == IMAGENET:
        try:
            return application(weights=IMAGENET, **kwargs)
        except Exception as error:  # a download failure surfaces as many different exception types
            raise UserError(
                "`visual_weights=imagenet`: expected Keras to download the ImageNet weights of "
                f"{backbone.application}, found {type(error).__name__}: {error} (on a machine "
                "without network access, pass the path of a weights file)"
            ) from None
    model = application(weights=None, **kwargs)
    if weights is None:
        return model
    if not tf.io.gfile.exists(weights):
        raise UserError(f"{weights}: visual backbone weights file not found")
    expected = (
        f"a weights file of keras.applications.{backbone.application}(include_top=False), as "
        "save_weights writes it (*.weights.h5) or as keras.applications downloads it (*_notop.h5)"
    )
    if not weights.endswith(".h5"):
        raise input_error(weights, expected, f"a file named {os.path.basename(weights)!r}")
    try:
        with (
            warnings.catch_warnings()
        ):  # a mismatch raises below; Keras' per-layer warnings add nothing
            warnings.simplefilter("ignore")
            model.load_weights(weights)
    except (
        Exception
    ) as error:  # Keras raises ValueError, KeyError or OSError depending on the mismatch
        found = f"{type(error).__name__}: {one_line(error)}"
        raise input_error(weights, expected, found) from None
    return model


class VisualFeatureExtractor:
    """Per-segment features: each second's frames through the backbone, averaged over the frames."""

    def __init__(
        self, backbone="vgg19", weights=IMAGENET, image_size=DEFAULT_IMAGE_SIZE, batch_size=32
    ):
        import keras

        self.backbone = get_backbone(backbone)
        self.image_size, self.batch_size = image_size, batch_size
        self.model = build(backbone, weights, image_size)
        preprocess = getattr(keras.applications, self.backbone.preprocess_module).preprocess_input
        self.feature_shape = list(self.model.output.shape[1:])

        def forward(images):
            """The backbone's preprocessing, then the backbone (inference mode).

            Args:
                images: uint8 [N, S, S, 3] RGB frames, S = image_size.
            Returns:
                float32 [N, *feature_shape] tensor.
            """
            return self.model(preprocess(tf.cast(images, tf.float32)), training=False)

        # One trace for every batch size (tracing ResNet-152 takes seconds).
        self._forward = tf.function(
            forward, input_signature=[tf.TensorSpec([None, image_size, image_size, 3], tf.uint8)]
        )

    def features(self, frames):
        """[N, S, S, 3] uint8 frames -> [N, *feature_shape] float32, in batches.

        Args:
            frames: uint8 [N, S, S, 3] RGB frames (S = image_size, N >= 1), array or list.
        Returns:
            float32 [N, *feature_shape] array: [N, S // 32, S // 32, 512] for vgg19,
            [N, 2048] for resnet152.
        """
        outputs = [
            self._forward(np.asarray(frames[start : start + self.batch_size], np.uint8)).numpy()
            for start in range(0, len(frames), self.batch_size)
        ]
        return np.concatenate(outputs).astype(np.float32)

    def __call__(self, segments):
        """An iterable of [F, S, S, 3] uint8 frames per segment -> [T, *feature_shape] float32.

        Segments are gathered until a batch is full, so memory holds about one batch of frames.
        """
        results, pending, pending_counts = [], [], []

        def flush():
            frames = np.concatenate(pending)
            features = self.features(frames)
            start = 0
            for count in pending_counts:
                results.append(features[start : start + count].mean(axis=0))
                start += count
            pending.clear()
            pending_counts.clear()

        for frames in segments:
            if frames.shape[1:] != (self.image_size, self.image_size, 3):
                raise input_error(
                    "frames", f"[F, {self.image_size}, {self.image_size}, 3]", list(frames.shape)
                )
            pending.append(frames)
            pending_counts.append(len(frames))
            if sum(pending_counts) >= self.batch_size:
                flush()
        if pending:
            flush()
        if not results:
            return np.zeros([0, *self.feature_shape], np.float32)
        return np.stack(results).astype(np.float32)
