"""tensorflow-io's in-graph audio resampling against the project's libswresample (PyAV) path.

    python benchmarks/bench_tfio_audio.py [--seconds 10] [--rate 44100] [--rounds 5]

The candidate from issue #17: resampling inside the TensorFlow graph (tfio.audio.resample), which
a serving signature taking raw audio would need, against what extract does today
(av.AudioResampler, libswresample). Prints milliseconds per clip for each (eager, in a
tf.function, and PyAV) and each output's RMS difference from the ideal 16 kHz tone after the
best alignment within +-50 ms (resampling filters delay the signal differently).
"""

import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsdn_tf import command_logging  # noqa: E402,F401  (TensorFlow start-up notes off)

flags.DEFINE_integer("seconds", 10, "Clip length (AVE clips are 10 s).")
flags.DEFINE_integer("rate", 44100, "Input sample rate.")
flags.DEFINE_integer("rounds", 5, "Timed rounds per method (after one warm-up call).")
FLAGS = flags.FLAGS
TARGET = 16000
TONE = 440.0


def _timed(function, rounds):
    function()
    started = time.perf_counter()
    for _ in range(rounds):
        result = function()
    return (time.perf_counter() - started) / rounds * 1000, result


def _aligned_rms(output):
    """RMS difference from the ideal tone at TARGET Hz, at the best lag within +-50 ms."""
    best = np.inf
    for lag in range(-TARGET // 20, TARGET // 20 + 1, 4):
        part = output[max(lag, 0) : len(output) + min(lag, 0)]
        start = max(-lag, 0)
        ideal = 0.5 * np.sin(2 * np.pi * TONE * (np.arange(len(part)) + start) / TARGET)
        middle = slice(TARGET // 10, len(part) - TARGET // 10)  # away from the edges
        best = min(best, float(np.sqrt(np.mean((part[middle] - ideal[middle]) ** 2))))
    return best


def main(argv):
    del argv
    import av
    import tensorflow as tf
    import tensorflow_io as tfio

    times = np.arange(FLAGS.rate * FLAGS.seconds) / FLAGS.rate
    wave = (0.5 * np.sin(2 * np.pi * TONE * times)).astype(np.float32)
    tensor = tf.constant(wave[:, None])
    graph = tf.function(lambda x: tfio.audio.resample(x, FLAGS.rate, TARGET))

    def swresample():
        frame = av.AudioFrame.from_ndarray(wave[None, :], format="fltp", layout="mono")
        frame.sample_rate = FLAGS.rate
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=TARGET)
        frames = list(resampler.resample(frame)) + list(resampler.resample(None))
        return np.concatenate([f.to_ndarray() for f in frames], axis=1)[0]

    rows = [
        ("tfio.audio.resample, eager", lambda: tfio.audio.resample(tensor, FLAGS.rate, TARGET)),
        ("tfio.audio.resample, tf.function", lambda: graph(tensor)),
        ("libswresample (PyAV), extract's path", swresample),
    ]
    print(f"{FLAGS.seconds} s of {FLAGS.rate} Hz mono to {TARGET} Hz, {FLAGS.rounds} rounds:")
    for name, function in rows:
        milliseconds, output = _timed(function, FLAGS.rounds)
        output = np.asarray(output).reshape(-1)
        print(
            f"  {name:40s} {milliseconds:8.1f} ms/clip  {len(output)} samples  "
            f"RMS vs ideal tone {_aligned_rms(output):.4f}"
        )


if __name__ == "__main__":
    app.run(main)
