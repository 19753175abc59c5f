"""Decoding real mp4 files made here with PyAV, and the visual backbones' per-second features.

The videos are tiny (64x48, 25 fps, AAC stereo at 44.1 kHz) and carry their timing in their
content: the picture's brightness steps once per second and a square moves within each second;
a 440 Hz tone plays only in the seconds asked for. So "segment t holds second t" is checked on
what comes out, not on counters.
"""

import os

import numpy as np
import pytest

from avsdn_tf.errors import UserError
from avsdn_tf.features import video, visual_features

from media_testlib import AUDIO_RATE, STEPS, TONE_HZ, make_video

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("video") / "clip.mp4", seconds=3.5, tone_seconds=(1,))


def test_probe_counts_whole_seconds(clip):
    info = video.probe(clip)
    assert info.num_segments == 3 and abs(info.duration - 3.5) < 0.05
    assert (info.width, info.height, info.audio_sample_rate, info.audio_channels) == (
        64,
        48,
        AUDIO_RATE,
        2,
    )
    assert info.video_id == "clip"


def test_frames_are_taken_inside_their_second(clip):
    info = video.probe(clip)
    segments = list(video.iter_segment_frames(info, frames_per_second=4, image_size=32))
    assert len(segments) == 3
    for t, frames in enumerate(segments):
        assert frames.shape == (4, 32, 32, 3) and frames.dtype == np.uint8
        # The background (a corner, away from the square) has the grey level of second t.
        np.testing.assert_allclose(frames[:, :4, :4].mean(axis=(1, 2, 3)), STEPS[t], atol=4)
        # The square moves right within the second: its column increases frame by frame.
        columns = [np.argmax(frame[16, :, 0].astype(int) - frame[16, 0, 0]) for frame in frames]
        assert columns == sorted(columns) and columns[0] < columns[-1]
    np.testing.assert_allclose(video.sample_times(2, 4)[1], [1.125, 1.375, 1.625, 1.875])


def test_audio_is_16k_mono_on_the_picture_clock(clip, tmp_path):
    samples = video.read_audio(video.probe(clip))
    assert samples.dtype == np.float32 and samples.shape == (3 * video.AUDIO_SAMPLE_RATE,)
    rms = np.sqrt((samples.reshape(3, -1) ** 2).mean(axis=1))
    assert rms[1] > 0.3 and rms[0] < 0.02 and rms[2] < 0.02  # the tone is in second 1 only
    spectrum = np.abs(np.fft.rfft(samples[16000 + 4000 : 16000 + 12000]))
    assert abs(np.argmax(spectrum) * video.AUDIO_SAMPLE_RATE / 8000 - TONE_HZ) <= 2.0
    # Audio that starts 1 s after the picture is placed 1 s in, with silence before.
    late = video.read_audio(
        video.probe(make_video(tmp_path / "late.mp4", 3.0, tone_seconds=(1,), audio_start=1.0))
    )
    late_rms = np.sqrt((late.reshape(3, -1) ** 2).mean(axis=1))
    assert late_rms[1] > 0.3 and late_rms[0] < 0.02


def test_unusable_videos_give_one_clear_message(tmp_path):
    cases = {
        "silent": (
            make_video(tmp_path / "silent.mp4", 2.0, audio=False),
            "expected an audio track, found none",
        ),
        "short": (
            make_video(tmp_path / "short.mp4", 0.6),
            "expected a video of at least 1 second, found 0.6",
        ),
        "missing": (str(tmp_path / "missing.mp4"), "video file not found"),
    }
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(2000))
    cases["garbage"] = (str(garbage), "unreadable")
    for name, (path, message) in cases.items():
        with pytest.raises(video.VideoError) as caught:
            video.probe(path)
        assert message in str(caught.value) and path in str(caught.value), name
        assert isinstance(caught.value, UserError)


def _random_backbone_weights(tmp_path, name, image_size):
    import keras

    keras.utils.set_random_seed(1)
    model = visual_features.build(name, weights=None, image_size=image_size)
    path = str(tmp_path / f"{name}_notop.weights.h5")
    model.save_weights(path)
    return model, path


def test_vgg19_pool5_from_a_weights_file_averages_each_second(tmp_path):
    model, path = _random_backbone_weights(tmp_path, "vgg19", 64)
    extractor = visual_features.VisualFeatureExtractor("vgg19", path, image_size=64, batch_size=5)
    assert (
        extractor.feature_shape
        == [2, 2, 512]
        == visual_features.BACKBONES["vgg19"].feature_shape(64)
    )
    assert visual_features.BACKBONES["vgg19"].feature_shape(224) == [7, 7, 512]
    rng = np.random.default_rng(0)
    segments = [rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    features = extractor(iter(segments))
    assert features.shape == (3, 2, 2, 512)
    import keras

    for t, frames in enumerate(
        segments
    ):  # the file's weights, Caffe preprocessing, mean over frames
        expected = model.predict(
            keras.applications.vgg19.preprocess_input(frames.astype("float32")), verbose=0
        )
        np.testing.assert_allclose(features[t], expected.mean(axis=0), rtol=1e-4, atol=1e-4)


def test_backbone_weights_errors_name_the_file(tmp_path):
    _, path = _random_backbone_weights(tmp_path, "vgg19", 32)
    with pytest.raises(UserError, match="not found"):
        visual_features.build("vgg19", str(tmp_path / "nothing.weights.h5"), 32)
    with pytest.raises(UserError, match=r"visual_backbone: expected one of"):
        visual_features.build("vgg16", path, 32)
    wrong = tmp_path / "wrong.weights.h5"
    import keras

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]).save_weights(str(wrong))
    with pytest.raises(UserError) as caught:
        visual_features.build("vgg19", str(wrong), 32)
    assert str(wrong) in str(caught.value) and "VGG19(include_top=False)" in str(caught.value)
