"""Media the feature tests share: tiny mp4 files with known content, VGGish checkpoints.

make_video writes videos whose timing is in their content (see its docstring), so a test checks
"segment t holds second t" on what comes out; official_checkpoint writes a full-size VGGish V1
checkpoint of seeded random weights under the official variable names, once per session.
"""

import functools
from pathlib import Path

import numpy as np
import tensorflow as tf

from testlib import read_records

FPS = 25
AUDIO_RATE = 44100
TONE_HZ = 440.0


STEPS = (40, 110, 180, 250)  # grey level of second t: STEPS[t % 4]


def make_video(
    path, seconds=3.0, tone_seconds=(1,), audio=True, size=(64, 48), audio_start=0.0, levels=STEPS
):
    """An mp4 of `seconds` s: grey level levels[t % len(levels)] in second t with a white square
    moving left to right within every second; a 440 Hz tone (stereo) in the seconds of
    `tone_seconds`, silence elsewhere, starting `audio_start` s after the picture (silence before).
    """
    import av  # PyAV, of the video extra: imported here so that importing this module needs none

    width, height = size
    frames = int(round(seconds * FPS))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        audio_stream = None
        if audio:
            audio_stream = container.add_stream("aac", rate=AUDIO_RATE)
            audio_stream.layout = "stereo"
        for i in range(frames):
            second, within = divmod(i, FPS)
            image = np.full((height, width, 3), levels[second % len(levels)], np.uint8)
            x = int(within / FPS * (width - 8))
            image[height // 2 - 4 : height // 2 + 4, x : x + 8] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio_stream is not None:
            count = int(round((seconds - audio_start) * AUDIO_RATE))
            times = np.arange(count) / AUDIO_RATE + audio_start
            on = np.isin(np.floor(times).astype(int), list(tone_seconds))
            wave = (0.5 * np.sin(2 * np.pi * TONE_HZ * times) * on).astype(np.float32)
            wave = np.stack([wave, wave])
            for start in range(0, count, 1024):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, start : start + 1024]),
                    format="fltp",
                    layout="stereo",
                )
                frame.sample_rate = AUDIO_RATE
                frame.pts = start + int(round(audio_start * AUDIO_RATE))
                for packet in audio_stream.encode(frame):
                    container.mux(packet)
            for packet in audio_stream.encode():
                container.mux(packet)
    return str(path)


OFFICIAL_SHAPES = {
    "vggish/conv1": [3, 3, 1, 64],
    "vggish/conv2": [3, 3, 64, 128],
    "vggish/conv3/conv3_1": [3, 3, 128, 256],
    "vggish/conv3/conv3_2": [3, 3, 256, 256],
    "vggish/conv4/conv4_1": [3, 3, 256, 512],
    "vggish/conv4/conv4_2": [3, 3, 512, 512],
    "vggish/fc1/fc1_1": [12288, 4096],
    "vggish/fc1/fc1_2": [4096, 4096],
    "vggish/fc2": [4096, 128],
}


@functools.lru_cache(maxsize=1)
def official_values(seed=0):
    """Weights ~ N(0, 0.01) (vggish_params.INIT_STDDEV) and small biases, by official variable name.
    Conv weights are scaled up a little so activations stay informative through nine layers."""
    rng = np.random.default_rng(seed)
    values = {}
    for scope, shape in OFFICIAL_SHAPES.items():
        fan_in = int(np.prod(shape[:-1]))
        values[f"{scope}/weights"] = rng.standard_normal(shape, dtype=np.float32) * np.sqrt(
            2.0 / fan_in
        )
        values[f"{scope}/biases"] = rng.standard_normal(shape[-1:], dtype=np.float32) * 0.01
    return values


def write_v1_checkpoint(path, values):
    """A TF1 checkpoint in the V1 format (one file), as vggish_model.ckpt is."""
    graph = tf.Graph()
    with graph.as_default():
        variables = [
            tf.compat.v1.get_variable(
                name,
                shape=value.shape,
                dtype=tf.float32,
                initializer=tf.compat.v1.zeros_initializer(),
            )
            for name, value in values.items()
        ]
        saver = tf.compat.v1.train.Saver(variables, write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for variable in variables:
                variable.load(values[variable.op.name], session)
            saver.save(session, str(path), write_meta_graph=False, write_state=False)
    return str(path)


def official_checkpoint(tmp_path_factory):
    """The full-size checkpoint (about 290 MB), written once per test session and shared."""
    directory = tmp_path_factory.getbasetemp() / "vggish_official"
    path = directory / "vggish_model.ckpt"
    if not path.exists():
        directory.mkdir(exist_ok=True)
        write_v1_checkpoint(path, official_values())
    return str(path)


# extract's tests run real-sized VGGish and VGG-19 at 64 px and 2 frames per second.
IMAGE_SIZE = 64


def feature_args(inputs, **changes):
    """extract/predict feature flags for the networks in `inputs` ("checkpoint", "weights")."""
    values = {
        "vggish_checkpoint": inputs["checkpoint"],
        "visual_backbone": "vgg19",
        "visual_weights": inputs["weights"],
        "frames_per_second": 2,
        "image_size": IMAGE_SIZE,
        "batch_size": 8,
    }
    values.update(changes)
    return [f"--{name}={value}" for name, value in values.items()]


def records_by_id(data_dir, split):
    """{video_id: decoded record} of one split of a data directory."""
    return {video["video_id"].decode(): video for video in read_records(data_dir, split)}


def random_vgg19_weights(directory):
    """VGG-19 (no top) at IMAGE_SIZE px with seeded random weights, saved as extract reads them.

    Returns:
        str: the path of the .weights.h5 file in `directory`.
    """
    import keras

    keras.utils.set_random_seed(0)
    backbone = keras.applications.VGG19(
        include_top=False, weights=None, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    weights = str(Path(directory) / "vgg19_notop.weights.h5")
    backbone.save_weights(weights)
    return weights


# The clips every runner's extraction test reads (one process, Beam's DirectRunner, Dask):
# clip_a has two events, clip_d gets no labels row, silent has no audio track.
RUNNER_CLIPS = {
    "clip_a.mp4": dict(seconds=3.5, tone_seconds=(1,), levels=(40, 200)),
    "clip_b.mp4": dict(seconds=2.2, tone_seconds=(0,), levels=(120,)),
    "clip_c.mp4": dict(seconds=3.0, tone_seconds=(2,), levels=(200, 60, 90)),
    "clip_d.mp4": dict(seconds=2.0, tone_seconds=(1,), levels=(30,)),
    "silent.mp4": dict(seconds=2.0, audio=False),
}


def extract_inputs(tmp_path_factory, name, clips, labels_csv, other_files=None):
    """What an extract test reads: a folder of videos, the networks' files and a labels CSV.

    Args:
        tmp_path_factory: pytest's, for a new folder and the shared VGGish checkpoint.
        name: the new folder's name.
        clips: {file name: make_video keyword arguments} of the videos to write.
        labels_csv: the text of labels.csv.
        other_files: {file name: bytes} written beside the videos (not videos, broken ones).
    Returns:
        {"root", "videos", "weights", "labels", "checkpoint"}: the folder and the paths.
    """
    root = tmp_path_factory.mktemp(name)
    videos = root / "videos"
    videos.mkdir()
    for file_name, options in clips.items():
        make_video(videos / file_name, **options)
    for file_name, content in (other_files or {}).items():
        (videos / file_name).write_bytes(content)
    labels = root / "labels.csv"
    labels.write_text(labels_csv)
    return {
        "root": root,
        "videos": str(videos),
        "weights": random_vgg19_weights(root),
        "labels": str(labels),
        "checkpoint": official_checkpoint(tmp_path_factory),
    }


def tiny_own_video_run(directory, visual_layout="map", seed=0):
    """A tiny AVSDN run trained on synthetic data of what extract gives here (64 px VGG-19).

    Args:
        directory: where the data set ("data") and the run ("run") are written.
        visual_layout: "map" (2x2x512 maps, as VGG-19 at 64 px) or "vector" (512-d).
        seed: the synthetic data's seed.
    Returns:
        str: the run directory.
    """
    from avsdn_tf import hparams
    from avsdn_tf.data import synthetic
    from avsdn_tf.training import trainer

    data, run = str(Path(directory) / "data"), str(Path(directory) / "run")
    synthetic.write_dataset(
        data,
        synthetic.SyntheticConfig(
            videos_per_split={"train": 16, "val": 8, "test": 8, "noisy": 0},
            audio_dim=128,
            visual_layout=visual_layout,
            visual_dim=512,
            map_size=2,
            seed=seed,
        ),
        verbose=False,
    )
    hp = hparams.HParams(epochs=1, batch_size=8, encoder_units=8, fusion_units=8)
    trainer.train(data, run, hp, verbose=0)
    return run
