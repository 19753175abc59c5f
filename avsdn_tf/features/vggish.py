"""VGGish features of a waveform: one 128-d feature per whole second (AudioFeatureExtractor).

The parts, one job each, as tensorflow/models research/audioset/vggish splits them:
vggish_params.py (constants), vggish_input.py (the log-mel front end and the examples per
second), vggish_slim.py (the network, its checkpoint and the official files),
vggish_postprocess.py (PCA and 8-bit quantisation).
"""

import numpy as np
import tensorflow as tf

from avsdn_tf.errors import argument_error
from avsdn_tf.features import vggish_input, vggish_postprocess, vggish_slim
from avsdn_tf.features import vggish_params as params


class AudioFeatureExtractor:
    """VGGish features [T, 128] of a 16 kHz mono waveform, one per whole second."""

    def __init__(self, checkpoint, output="relu", pca_params=None, framing="second", batch_size=64):
        if framing not in params.FRAMINGS:
            raise argument_error("audio_framing", f"one of {params.FRAMINGS}", repr(framing))
        self.output, self.framing, self.batch_size = output, framing, batch_size
        self.postprocessor = (
            vggish_postprocess.Postprocessor(pca_params) if output == "postprocessed" else None
        )
        self.model = vggish_slim.load_checkpoint(vggish_slim.build_vggish(output), checkpoint)
        self._embed = tf.function(
            lambda examples: self.model(examples, training=False),
            input_signature=[
                tf.TensorSpec([None, params.NUM_FRAMES, params.NUM_BANDS], tf.float32)
            ],
        )

    def examples(self, waveform, num_segments):
        """The VGGish examples of a waveform, in this extractor's framing.

        Args:
            waveform: float32 [samples] 16 kHz mono. num_segments: T.
        Returns:
            float32 [T, 96, 64] tensor (waveform_to_examples).
        """
        return vggish_input.waveform_to_examples(waveform, num_segments, self.framing)

    def __call__(self, waveform, num_segments):
        examples = self.examples(waveform, num_segments)
        outputs = [
            self._embed(examples[start : start + self.batch_size])
            for start in range(0, int(examples.shape[0]), self.batch_size)
        ]
        embeddings = tf.concat(outputs, axis=0)
        if self.postprocessor is not None:
            embeddings = self.postprocessor(embeddings)
        return embeddings.numpy().astype(np.float32)
