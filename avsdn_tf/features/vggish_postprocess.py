"""VGGish's post-processing: PCA (with whitening) and 8-bit quantisation of linear embeddings,
as vggish_postprocess.py (the AudioSet / YouTube-8M release format, stored as floats)."""

import numpy as np
import tensorflow as tf

from avsdn_tf import fileio
from avsdn_tf.errors import UserError, input_error
from avsdn_tf.features import vggish_params as params


class Postprocessor:
    """PCA (with whitening) and 8-bit quantisation of linear embeddings, as
    vggish_postprocess.py."""

    def __init__(self, pca_params_path):
        if not pca_params_path:
            raise UserError(
                "vggish_pca_params: expected the path of vggish_pca_params.npz "
                "(needed by `vggish_output=postprocessed`), found none",
                argument="vggish_pca_params",
            )
        if not tf.io.gfile.exists(pca_params_path):
            raise UserError(f"{pca_params_path}: VGGish PCA parameters not found")
        expected = (
            f"an .npz with arrays {params.PCA_EIGEN_VECTORS_NAME!r} and {params.PCA_MEANS_NAME!r}"
        )
        arrays = fileio.read_arrays(pca_params_path, expected)
        names = (params.PCA_EIGEN_VECTORS_NAME, params.PCA_MEANS_NAME)
        if not isinstance(arrays, dict) or not set(names) <= set(arrays):
            found = f"arrays {sorted(arrays)}" if isinstance(arrays, dict) else "an .npy"
            raise input_error(pca_params_path, expected, found)
        try:
            eigen_vectors = np.asarray(arrays[params.PCA_EIGEN_VECTORS_NAME], np.float32)
            means = np.asarray(arrays[params.PCA_MEANS_NAME], np.float32)
        except (TypeError, ValueError) as error:
            raise input_error(pca_params_path, expected, f"non-numeric arrays ({error})") from None
        if eigen_vectors.shape != (params.EMBEDDING_SIZE, params.EMBEDDING_SIZE):
            raise input_error(
                f"{pca_params_path} array {params.PCA_EIGEN_VECTORS_NAME}",
                f"shape {[params.EMBEDDING_SIZE, params.EMBEDDING_SIZE]}",
                f"shape {list(eigen_vectors.shape)}",
            )
        if means.size != params.EMBEDDING_SIZE:
            raise input_error(
                f"{pca_params_path} array {params.PCA_MEANS_NAME}",
                f"{params.EMBEDDING_SIZE} values",
                f"shape {list(means.shape)}",
            )
        self.eigen_vectors = tf.constant(eigen_vectors)
        self.means = tf.constant(means.reshape(params.EMBEDDING_SIZE))

    def __call__(self, embeddings):
        """[N, 128] linear embeddings -> [N, 128] float32 values in 0..255 (whole numbers)."""
        projected = tf.matmul(
            tf.convert_to_tensor(embeddings, tf.float32) - self.means,
            self.eigen_vectors,
            transpose_b=True,
        )
        clipped = tf.clip_by_value(projected, params.QUANTIZE_MIN_VAL, params.QUANTIZE_MAX_VAL)
        scaled = (clipped - params.QUANTIZE_MIN_VAL) * (
            255.0 / (params.QUANTIZE_MAX_VAL - params.QUANTIZE_MIN_VAL)
        )
        return tf.floor(scaled)
