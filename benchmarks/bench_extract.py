"""Benchmark feature extraction from own videos: seconds of video per second of wall time, per
backbone.

    python benchmarks/bench_extract.py [--backbones vgg19,resnet152] [--seconds 5] \\
        [--frames_per_second 16] [--image_size 224] [--workdir /tmp/avsdn_bench_extract]

Makes an mp4 with PyAV (--width x --height at 25 fps, moving picture, stereo AAC tone at 44.1 kHz),
a full-size VGGish checkpoint (random weights, the official variable names and shapes) and runs
extract's FeatureExtractor on the video with each backbone (random weights: speed does not
depend on their values). Model loading and the first call (tracing) are timed apart on a 1-s
warm-up video; then the --seconds video is extracted --repeats times and the best run is kept.
Also prints the time of the decoding alone (frames at --frames_per_second and 16 kHz audio) and
of VGGish alone, so the backbone's share is visible. CPU only unless TensorFlow sees a GPU.

    python benchmarks/bench_extract.py --compare_runners [--num_videos 4] [--seconds 5] \
        [--direct_num_workers 2] [--backbones vgg19]

instead times the whole extract command on a folder of --num_videos such videos, end to end
(networks loaded, every video, the data set assembled), once in one process and once as a Beam
pipeline on the DirectRunner with --direct_num_workers worker processes
(--direct_running_mode multi_processing), and prints seconds of video per second of wall time
for both and their ratio. Needs apache-beam (pip install 'avsdn-tf[beam]'). With
--dask_workers N (default 2; 0: none) it also starts a dask.distributed scheduler and N
one-thread worker processes on 127.0.0.1 (tests/dask_testlib.py), times the same command on
--runner DaskRunner against them, and prints the workers' model loading time (the first video
of a worker includes it) and the driver's assembly time, the two terms of what N workers reach.
"""

import contextlib
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avsdn_tf.features import (  # noqa: E402
    assembly,
    extraction,
    feature_extractor,
    feature_settings,
    vggish_slim,
    video,
)

flags.DEFINE_list("backbones", ["vgg19", "resnet152"], "Visual backbones to time.")
flags.DEFINE_float("seconds", 5.0, "Length of the timed video.")
flags.DEFINE_integer("frames_per_second", 16, "Frames per segment through the backbone (AVE: 16).")
flags.DEFINE_integer("image_size", 224, "Backbone input size.")
flags.DEFINE_integer("batch_size", 32, "Frames per backbone forward pass.")
flags.DEFINE_integer("width", 640, "Video width.")
flags.DEFINE_integer("height", 360, "Video height.")
flags.DEFINE_integer("repeats", 1, "Timed runs per backbone (the fastest is reported).")
flags.DEFINE_string(
    "workdir", "/tmp/avsdn_bench_extract", "Where the video and checkpoint are kept."
)
flags.DEFINE_bool(
    "compare_runners",
    False,
    "Time the single process against the DirectRunner "
    "with --direct_num_workers processes on --num_videos videos (first backbone).",
)
flags.DEFINE_integer(
    "num_videos", 4, "Videos of --seconds each for --compare_runners.", lower_bound=1
)
flags.DEFINE_integer(
    "direct_num_workers", 2, "DirectRunner worker processes for --compare_runners.", lower_bound=1
)
flags.DEFINE_integer(
    "dask_workers",
    2,
    "Dask worker processes (one thread each) for --compare_runners; 0 skips the DaskRunner.",
    lower_bound=0,
)
FLAGS = flags.FLAGS

FPS = 25
AUDIO_RATE = 44100


def make_video(path, seconds, width, height):
    import av

    frames = int(round(seconds * FPS))
    rng = np.random.default_rng(0)
    base = (
        rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    )
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast"}
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "stereo"
        for i in range(frames):
            image = np.roll(base, 4 * i, axis=1)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        count = int(seconds * AUDIO_RATE)
        times = np.arange(count) / AUDIO_RATE
        wave = (0.3 * np.sin(2 * np.pi * 440 * times) + 0.05 * rng.standard_normal(count)).astype(
            np.float32
        )
        wave = np.stack([wave, wave])
        for start in range(0, count, 1024):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(wave[:, start : start + 1024]), format="fltp", layout="stereo"
            )
            frame.sample_rate, frame.pts = AUDIO_RATE, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return str(path)


def write_checkpoint(path):
    """Random VGGish weights under the official names and shapes, TF1 V1 format (like
    vggish_model.ckpt)."""
    import tensorflow as tf

    model = vggish_slim.build_vggish("relu")
    shapes = vggish_slim.checkpoint_shapes(model)
    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        variables = [
            tf.compat.v1.get_variable(
                name, shape=shape, initializer=tf.compat.v1.zeros_initializer()
            )
            for name, shape in shapes.items()
        ]
        saver = tf.compat.v1.train.Saver(variables, write_version=tf.compat.v1.train.SaverDef.V1)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            for variable, shape in zip(variables, shapes.values()):
                fan_in = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
                variable.load(
                    rng.standard_normal(shape, dtype=np.float32) * np.sqrt(1.0 / fan_in), session
                )
            saver.save(session, str(path), write_meta_graph=False, write_state=False)
    return str(path)


def _timed(function):
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def decode_only(path, frames_per_second, image_size):
    info = video.probe(path)
    audio = video.read_audio(info)
    frames = sum(
        len(segment) for segment in video.iter_segment_frames(info, frames_per_second, image_size)
    )
    return info, audio, frames


def compare_runners(workdir, checkpoint):
    """Seconds of video per wall second of the single process and of the DirectRunner."""
    import shutil

    from avsdn_tf.features import beam_extraction

    videos = workdir / f"videos_{FLAGS.num_videos}x{FLAGS.seconds:g}s_{FLAGS.width}x{FLAGS.height}"
    videos.mkdir(exist_ok=True)
    for index in range(FLAGS.num_videos):
        path = videos / f"clip_{index}.mp4"
        if not path.exists():
            make_video(path, FLAGS.seconds, FLAGS.width, FLAGS.height)
    paths = sorted(str(path) for path in videos.glob("*.mp4"))
    settings = feature_settings.FeatureSettings(
        vggish_checkpoint=str(checkpoint),
        visual_backbone=FLAGS.backbones[0],
        visual_weights=None,
        frames_per_second=FLAGS.frames_per_second,
        image_size=FLAGS.image_size,
        batch_size=FLAGS.batch_size,
    )
    seconds_of_video = FLAGS.num_videos * int(FLAGS.seconds)
    workers = FLAGS.direct_num_workers
    runs = {
        "single process": lambda output: extraction.extract_videos(
            paths, output, settings, verbose=False
        ),
        f"DirectRunner, {workers} processes": lambda output: beam_extraction.extract_videos(
            paths,
            output,
            settings,
            runner="DirectRunner",
            verbose=False,
            pipeline_args=[
                "--direct_num_workers",
                str(workers),
                "--direct_running_mode",
                "multi_processing",
            ],
        ),
    }
    speeds = {}
    with _dask_cluster(workdir, FLAGS.dask_workers) as address:
        if address:
            runs[f"DaskRunner, {FLAGS.dask_workers} workers"] = lambda output: (
                beam_extraction.extract_videos(
                    paths,
                    output,
                    settings,
                    runner="DaskRunner",
                    verbose=False,
                    pipeline_args=[f"--dask_client_address={address}"],
                )
            )
        for name, run in runs.items():
            output = workdir / "compare_output"
            shutil.rmtree(output, ignore_errors=True)
            _, seconds = _timed(lambda run=run, output=output: run(str(output)))
            speeds[name] = seconds_of_video / seconds
            print(
                f"{name:<26} {seconds:7.1f} s wall  {speeds[name]:6.3f} s of video per s",
                flush=True,
            )
    single = speeds["single process"]
    for name, speed in list(speeds.items())[1:]:
        print(f"ratio ({name} / single process): {speed / single:.2f}")
    print(
        f"on {os.cpu_count()} CPUs ({FLAGS.num_videos} videos x {FLAGS.seconds:g} s,"
        f" {FLAGS.backbones[0]}, {FLAGS.frames_per_second} frames per s at {FLAGS.image_size} px;"
        " end to end: networks loaded, every video, the data set assembled)"
    )
    _print_terms(str(workdir / "compare_output"), paths, settings)


def _print_terms(output, paths, settings):
    """Time what more workers do not shrink: loading the networks, assembling from features/."""
    _, load_seconds = _timed(lambda: feature_extractor.FeatureExtractor(settings))
    _, assemble_seconds = _timed(lambda: assembly.assemble(output, paths, settings))
    print(
        f"terms: networks loaded once per worker process {load_seconds:.1f} s; the data set"
        f" assembled by the driver from features/ {assemble_seconds:.2f} s for"
        f" {len(paths)} videos"
    )


@contextlib.contextmanager
def _dask_cluster(workdir, workers):
    """The address of a scheduler and `workers` worker processes on 127.0.0.1 (None for 0)."""
    if not workers:
        yield None
        return
    sys.path.insert(0, str(REPO / "tests"))
    from dask_testlib import dask_cluster

    logs = workdir / "dask_logs"
    logs.mkdir(exist_ok=True)
    with dask_cluster(str(logs), workers) as cluster:
        yield cluster["address"]


def main(argv):
    del argv
    import tensorflow as tf

    workdir = Path(FLAGS.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint = workdir / "vggish_model.ckpt"
    if not checkpoint.exists():
        print(f"writing a random full-size VGGish checkpoint to {checkpoint}")
        write_checkpoint(checkpoint)
    clip = workdir / f"clip_{FLAGS.seconds:g}s_{FLAGS.width}x{FLAGS.height}.mp4"
    if not clip.exists():
        make_video(clip, FLAGS.seconds, FLAGS.width, FLAGS.height)
    if FLAGS.compare_runners:
        compare_runners(workdir, checkpoint)
        return
    warmup = workdir / f"warmup_{FLAGS.width}x{FLAGS.height}.mp4"
    if not warmup.exists():
        make_video(warmup, 1.0, FLAGS.width, FLAGS.height)
    gpus = tf.config.list_physical_devices("GPU")
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, {len(gpus)} GPUs; video"
        f" {FLAGS.seconds:g} s {FLAGS.width}x{FLAGS.height} @ {FPS} fps; {FLAGS.frames_per_second}"
        f" frames per second through the backbone at {FLAGS.image_size} px, batch"
        f" {FLAGS.batch_size}"
    )

    (info, waveform, frames), decode_seconds = _timed(
        lambda: decode_only(str(clip), FLAGS.frames_per_second, FLAGS.image_size)
    )
    print(
        f"decode only (PyAV: {frames} frames resized + audio to 16 kHz): {decode_seconds:.2f} s "
        f"= {info.num_segments / decode_seconds:.2f} s of video per s"
    )

    rows = []
    for backbone in FLAGS.backbones:
        settings = feature_settings.FeatureSettings(
            vggish_checkpoint=str(checkpoint),
            visual_backbone=backbone,
            visual_weights=None,
            frames_per_second=FLAGS.frames_per_second,
            image_size=FLAGS.image_size,
            batch_size=FLAGS.batch_size,
        )
        extractor, load_seconds = _timed(
            lambda settings=settings: feature_extractor.FeatureExtractor(settings)
        )
        _, warm_seconds = _timed(lambda extractor=extractor: extractor.extract(str(warmup)))
        if not rows:
            _, vggish_seconds = _timed(
                lambda extractor=extractor: extractor.audio(waveform, info.num_segments)
            )
            print(
                f"VGGish only (front end + network, {info.num_segments} examples):"
                f" {vggish_seconds:.2f} s"
            )
        best = None
        for _ in range(FLAGS.repeats):
            features, seconds = _timed(lambda extractor=extractor: extractor.extract(str(clip)))
            best = seconds if best is None else min(best, seconds)
        rows.append(
            (
                backbone,
                list(features.visual.shape[1:]),
                load_seconds,
                warm_seconds,
                best,
                info.num_segments / best,
            )
        )
        del extractor

    print()
    print(
        f"{'backbone':<10} {'feature':<14} {'load s':>7} {'1st video s':>11} {'extract s':>9} "
        f"{'video s / wall s':>16}"
    )
    for backbone, shape, load_seconds, warm_seconds, seconds, speed in rows:
        print(
            f"{backbone:<10} {str(shape):<14} {load_seconds:7.1f} {warm_seconds:11.1f}"
            f" {seconds:9.1f} {speed:16.3f}"
        )
    print(
        f"(extract s: {info.num_segments} s of video, decoding + VGGish + backbone; load: both"
        " networks built and weights read; 1st video: a 1-s warm-up that traces the functions)"
    )


if __name__ == "__main__":
    app.run(main)
