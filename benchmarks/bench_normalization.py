"""What the model's own input normalisation costs at inference.

    python benchmarks/bench_normalization.py [--model avsdn] [--visual_dim 512] [--rounds 7]

Builds the model `train` fits (registry.task_for(hp).build, the AVSDN defaults, batch 64, T = 10,
audio 128-d, visual --visual_dim vectors) with statistics far from the identity, and times three
forward passes over --videos random videos, all one tf.function with a fixed signature
(backbones.inference_function): the model as it is (fold=False, its normalisation layers run),
the project's inference path (the normalisation folded into the first kernels, models.folding)
and a copy in which every FeatureNormalization layer is an Identity (the floor: no normalisation
at all). Rounds rotate the order; each round's time per batch is printed, then the medians, each
variant's cost over the floor, and the largest output difference of folded and unfolded. Also
times the normalisation layers alone (both inputs, one tf.function).
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
from absl import app, flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsdn_tf import command_logging  # noqa: E402,F401  (TensorFlow start-up notes off)
from avsdn_tf.models import registry

flags.DEFINE_string("model", "avsdn", "A model of the registry (`--model help` in train).")
flags.DEFINE_integer("visual_dim", 512, "Visual vector size (AVE pooled: 512).")
flags.DEFINE_integer("videos", 1280, "Videos per timed pass.")
flags.DEFINE_integer("batch_size", 64, "Videos per batch.")
flags.DEFINE_integer("rounds", 7, "Timed passes of each variant, alternating.")
FLAGS = flags.FLAGS
AUDIO_DIM = 128
NUM_SEGMENTS = 10


def _without_normalization(model):
    """The same model with every FeatureNormalization replaced by an Identity, weights copied."""
    import keras

    from avsdn_tf.models import layers

    def clone(layer):
        if isinstance(layer, layers.FeatureNormalization):
            return keras.layers.Identity(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in copy.layers:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return copy


def _pass_seconds(forward, audio, visual, batch_size):
    began = time.perf_counter()
    for start in range(0, len(audio), batch_size):
        batch = {
            "audio": audio[start : start + batch_size],
            "visual": visual[start : start + batch_size],
        }
        np.asarray(forward(batch))
    return time.perf_counter() - began


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from avsdn_tf import hparams
    from avsdn_tf.models import backbones, layers

    keras.utils.set_random_seed(0)
    hp = hparams.HParams(model=FLAGS.model)
    model = backbones.segment_model(
        registry.task_for(hp).build(AUDIO_DIM, [FLAGS.visual_dim], NUM_SEGMENTS)
    )
    norms = [layer for layer in model.layers if isinstance(layer, layers.FeatureNormalization)]
    rng = np.random.default_rng(0)
    for layer in norms:  # statistics far from the identity, as a trained model's are
        channels = layer.mean.shape[0]
        layer.set_statistics(rng.normal(size=channels), rng.uniform(0.5, 2.0, channels))
    audio = rng.normal(size=(FLAGS.videos, NUM_SEGMENTS, AUDIO_DIM)).astype(np.float32)
    visual = rng.normal(size=(FLAGS.videos, NUM_SEGMENTS, FLAGS.visual_dim)).astype(np.float32)
    variants = {
        "unfolded": backbones.inference_function(model, fold=False),
        "folded": backbones.inference_function(model),
        "Identity": backbones.inference_function(_without_normalization(model), fold=False),
    }
    batches = -(-FLAGS.videos // FLAGS.batch_size)
    times = {name: [] for name in variants}
    for forward in variants.values():  # warm up: trace, the partial last batch too
        _pass_seconds(forward, audio, visual, FLAGS.batch_size)
    for index in range(FLAGS.rounds):
        names = list(variants)
        shift = index % len(names)
        order = names[shift:] + names[:shift]
        for name in order:
            seconds = _pass_seconds(variants[name], audio, visual, FLAGS.batch_size)
            times[name].append(seconds / batches * 1000)
        print(
            f"round {index + 1}/{FLAGS.rounds}: "
            + ", ".join(f"{name} {times[name][-1]:.2f} ms/batch" for name in variants),
            flush=True,
        )

    batch_inputs = {
        "audio": tf.constant(audio[: FLAGS.batch_size]),
        "visual": tf.constant(visual[: FLAGS.batch_size]),
    }
    by_input = {layer.name: "audio" if "audio" in layer.name else "visual" for layer in norms}
    alone = tf.function(lambda x: [layer(x[by_input[layer.name]]) for layer in norms])
    alone(batch_inputs)
    calls = 500
    began = time.perf_counter()
    for _ in range(calls):
        alone(batch_inputs)
    alone_ms = (time.perf_counter() - began) / calls * 1000

    medians = {name: statistics.median(values) for name, values in times.items()}
    floor = medians["Identity"]
    sample = {"audio": audio[: FLAGS.batch_size], "visual": visual[: FLAGS.batch_size]}
    difference = np.max(
        np.abs(variants["folded"](sample).numpy() - variants["unfolded"](sample).numpy())
    )
    print(
        f"\n{FLAGS.model}, visual {FLAGS.visual_dim}-d, batch {FLAGS.batch_size}, "
        f"{len(norms)} normalisation layers ({', '.join(layer.name for layer in norms)})"
    )
    described = {
        "unfolded": "the model as it is (normalisation layers run)",
        "folded": "inference_function (normalisation folded)",
        "Identity": "normalisation as Identity (floor)",
    }
    for name, text in described.items():
        print(
            f"  {text:<48} median {medians[name]:.2f} ms/batch "
            f"({(medians[name] - floor) / floor * 100:+.1f} % over the floor)"
        )
    unfolded, folded = medians["unfolded"], medians["folded"]
    print(
        f"  folded / unfolded time: {folded / unfolded:.3f} "
        f"({folded - unfolded:+.2f} ms/batch); max |folded - unfolded| output {difference:.1e}"
    )
    print(f"  the normalisation layers alone (one tf.function call): {alone_ms:.3f} ms/batch")


if __name__ == "__main__":
    app.run(main)
