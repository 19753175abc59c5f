"""VGGish's front end: waveform -> log-mel examples, as vggish_input.py / mel_features.py.

Front end (vggish_input.waveform_to_examples with mel_features.log_mel_spectrogram), in TF ops
only, so it also runs inside a tf.function or a SavedModel:
  16 kHz mono waveform -> frames of 400 samples (25 ms) every 160 samples (10 ms), no padding
  -> periodic Hann window -> |rfft| with 512 points (257 bins) -> 64 triangular mel bands from
  125 to 7500 Hz on the HTK mel scale (mel = 1127 ln(1 + f / 700), DC bin weight 0)
  -> log(mel + 0.01) -> examples of 96 frames x 64 bands (0.96 s).

Examples per 1-s segment ("framing"):
  second  example t = log-mel frames [100 t, 100 t + 96): the first 0.96 s of second t, the same
          whatever the video's length (the default).
  vggish  examples every 0.96 s, as waveform_to_examples frames a whole clip; the first T are
          kept. For a 10-s clip this gives exactly 10 examples, the layout of a VGGish run on an
          AVE clip; on longer videos example t drifts 0.04 t s ahead of second t.
"""

import tensorflow as tf

from avsdn_tf.errors import argument_error
from avsdn_tf.features import vggish_params as params


def mel_matrix(dtype=tf.float32):
    """[257, 64] weights from |rfft| bins to mel bands (mel_features.spectrogram_to_mel_matrix).
    tf.signal's matrix uses the same HTK formula and also zeroes the DC bin.

    Args:
        dtype: the dtype of the result (computed in float64).
    Returns:
        [257, 64] tensor of `dtype`.
    """
    matrix = tf.signal.linear_to_mel_weight_matrix(
        num_mel_bins=params.NUM_MEL_BINS,
        num_spectrogram_bins=params.FFT_LENGTH // 2 + 1,
        sample_rate=params.SAMPLE_RATE,
        lower_edge_hertz=params.MEL_MIN_HZ,
        upper_edge_hertz=params.MEL_MAX_HZ,
        dtype=tf.float64,
    )
    return tf.cast(matrix, dtype)


def log_mel_spectrogram(waveform):
    """[frames, 64] log-mel spectrogram of a 16 kHz mono waveform [samples] (float, about [-1, 1]).

    Args:
        waveform: float [samples] 16 kHz mono, about [-1, 1].
    Returns:
        float32 [frames, 64], frames = 1 + (samples - 400) // 160 (0 below 400 samples): 25-ms
        windows every 10 ms, log(mel + 0.01).
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    stft = tf.signal.stft(
        waveform,
        frame_length=params.WINDOW_SAMPLES,
        frame_step=params.HOP_SAMPLES,
        fft_length=params.FFT_LENGTH,
        window_fn=tf.signal.hann_window,
        pad_end=False,
    )  # hann_window is periodic
    mel = tf.matmul(tf.abs(stft), mel_matrix())
    return tf.math.log(mel + params.LOG_OFFSET)


def examples_from_log_mel(log_mel, num_segments, framing="second"):
    """[T, 96, 64] examples, one per 1-s segment (see the module docstring for the framings).

    Args:
        log_mel: float32 [frames, 64] (log_mel_spectrogram); "second" framing needs at least
            100 T - 4 frames (T whole seconds of waveform give 100 T - 2).
        num_segments: T, an int or int32 scalar tensor.
        framing: "second" or "vggish".
    Returns:
        float32 [T, 96, 64]; with "vggish", fewer than T when log_mel is too short for T.
    Raises:
        errors.UserError: for another framing.
    """
    if framing == "second":
        starts = tf.range(num_segments) * params.FRAMES_PER_SECOND
        return tf.gather(log_mel, starts[:, None] + tf.range(params.NUM_FRAMES)[None, :])
    if framing == "vggish":
        hop = int(round(params.EXAMPLE_HOP_SECONDS * params.FRAMES_PER_SECOND))
        return tf.signal.frame(log_mel, params.NUM_FRAMES, hop, axis=0)[:num_segments]
    raise argument_error("audio_framing", f"one of {params.FRAMINGS}", repr(framing))


def waveform_to_examples(waveform, num_segments=None, framing="second"):
    """[T, 96, 64] VGGish examples of a 16 kHz mono waveform; T defaults to its whole seconds.

    Args:
        waveform: float [samples] 16 kHz mono, about [-1, 1].
        num_segments: T; default samples // 16000.
        framing: "second" or "vggish" (examples_from_log_mel).
    Returns:
        float32 [T, 96, 64] log-mel examples.
    Raises:
        errors.UserError: for another framing.
    """
    waveform = tf.convert_to_tensor(waveform, tf.float32)
    if num_segments is None:
        num_segments = tf.shape(waveform)[0] // params.SAMPLE_RATE
    return examples_from_log_mel(log_mel_spectrogram(waveform), num_segments, framing)
