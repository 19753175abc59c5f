"""The AVE authors' frame sampling (--frame_sampling ave), the ave_release preset and the official
VGGish files fetched into Keras' cache (file:// URLs only: nothing here reaches the network).

The sampling videos carry each frame's decoding index in their picture (left half: index // 20,
right half: index % 20, as grey levels), so the frames taken are read back from what comes out.
"""

import fractions

import numpy as np
import pytest
from absl import flags

from avsdn_tf import extract, feature_flags
from avsdn_tf.errors import UserError
from avsdn_tf.features import vggish_params, video

from testlib import one_error_line, run_in_process

SIZE = (64, 48)  # width, height of the sampling videos
IMAGE_SIZE = 32


def make_indexed_video(path, num_frames, rate):
    """An mp4 of num_frames frames at `rate` fps whose picture codes the frame's index, with a
    silent mono AAC track as long as the picture."""
    av = pytest.importorskip("av")
    width, height = SIZE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "10"}
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for index in range(num_frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:, : width // 2] = 8 + 16 * (index // 20)
            image[:, width // 2 :] = 8 + 12 * (index % 20)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        samples = int(num_frames / float(rate) * 16000)
        for start in range(0, samples, 1024):
            silence = np.zeros((1, min(1024, samples - start)), np.float32)
            frame = av.AudioFrame.from_ndarray(silence, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, start
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return str(path)


def frame_index(image):
    """The index a frame of make_indexed_video shows, read from a resized frame's two halves."""
    side = image.shape[1]
    left = image[4:-4, 2 : side // 2 - 3].mean()
    right = image[4:-4, side // 2 + 3 : -2].mean()
    return int(round((left - 8) / 16)) * 20 + int(round((right - 8) / 12))


def test_ave_frame_indices_follow_the_authors_formula():
    # 10-s clips at 23.9, 25, 30 fps and two counts that are not multiples of 10.
    for num_frames in (239, 250, 300, 251, 97):
        indices = video.ave_frame_indices(num_frames, 10, 16)
        interval = int(num_frames / 10)
        assert indices.shape == (10, 16) and indices.dtype == np.int64
        for second in range(10):
            for i in range(16):
                assert indices[second, i] == int(second * interval + i / 16 * interval)
        assert indices.max() < num_frames and (np.diff(indices.reshape(-1)) >= 0).all()
    # By hand: 250 frames, interval 25; 239 frames, interval 23 (the last 9 frames never taken).
    by_hand = [0, 1, 3, 4, 6, 7, 9, 10, 12, 14, 15, 17, 18, 20, 21, 23]
    assert video.ave_frame_indices(250, 10, 16)[0].tolist() == by_hand
    assert video.ave_frame_indices(239, 10, 16)[9, [0, 15]].tolist() == [207, 228]


def test_too_few_frames_for_the_formula_is_an_error():
    with pytest.raises(UserError, match=r"num_frames: expected at least one frame per second"):
        video.ave_frame_indices(9, 10, 16)


def test_resize_is_opencv_inter_linear():
    """Half-pixel centres, edge clamping, no antialiasing (cv2.resize's default)."""
    ramp = np.repeat(np.repeat(np.arange(8, dtype=np.uint8)[None, :, None] * 30, 8, 0), 3, 2)
    shrunk = video.resize_bilinear(ramp, 2)
    # Output pixel 0 samples source x = 0.5 * 4 - 0.5 = 1.5: the mean of pixels 1 and 2 only
    # (an antialiased resize would weigh pixels 0..3); output 1 samples x = 5.5.
    assert shrunk[0, :, 0].tolist() == [45, 165]
    small = np.zeros((2, 2, 3), np.uint8)
    small[:, 1] = 100
    # Upscaling 2 -> 4: source x = -0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
    assert video.resize_bilinear(small, 4)[0, :, 0].tolist() == [0, 25, 75, 100]


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("ave_sampling")
    return {
        239: make_indexed_video(root / "n239.mp4", 239, fractions.Fraction(239, 10)),
        300: make_indexed_video(root / "n300.mp4", 300, 30),
    }


@pytest.mark.parametrize("num_frames", [239, 300])
def test_ave_sampling_takes_the_formula_frames_of_a_decoded_clip(clips, num_frames):
    info = video.probe(clips[num_frames])
    assert info.num_segments == 10 and video.count_frames(info) == num_frames
    segments = list(video.iter_frames(info, 16, IMAGE_SIZE, video.SAMPLING_AVE))
    assert len(segments) == 10
    assert all(s.shape == (16, IMAGE_SIZE, IMAGE_SIZE, 3) and s.dtype == np.uint8 for s in segments)
    taken = [[frame_index(frame) for frame in segment] for segment in segments]
    assert taken == video.ave_frame_indices(num_frames, 10, 16).tolist()
    # The centre sampling takes other frames (second 0 of 30 fps: frames 0, 2, 3, 5, ...).
    centre = next(iter(video.iter_frames(info, 16, IMAGE_SIZE, video.SAMPLING_CENTRE)))
    if num_frames == 300:
        assert [frame_index(frame) for frame in centre] != taken[0]


def test_ave_visual_features_average_the_16_sampled_frames_through_vgg19(clips, tmp_path):
    """The extractor's features equal a direct computation: every frame decoded, resized with
    tf.image.resize (bilinear, half-pixel centres), the formula's frames through VGG-19 with
    preprocess_input, block5_pool averaged over each second's 16 frames."""
    import av
    import keras
    import tensorflow as tf

    from avsdn_tf.features import visual_features

    keras.utils.set_random_seed(3)
    model = visual_features.build("vgg19", weights=None, image_size=IMAGE_SIZE)
    weights = str(tmp_path / "vgg19.weights.h5")
    model.save_weights(weights)
    path = clips[239]
    extractor = visual_features.VisualFeatureExtractor("vgg19", weights, IMAGE_SIZE, 64)
    info = video.probe(path)
    features = extractor(video.iter_frames(info, 16, IMAGE_SIZE, video.SAMPLING_AVE))
    assert features.shape == (10, 1, 1, 512)

    with av.open(path) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert len(frames) == 239
    resized = tf.image.resize(frames.astype(np.float32), [IMAGE_SIZE, IMAGE_SIZE], "bilinear")
    resized = np.clip(np.rint(resized.numpy()), 0, 255)
    interval = int(len(frames) / 10)
    for second in range(10):
        chosen = [int(second * interval + i / 16 * interval) for i in range(16)]
        maps = model.predict(keras.applications.vgg19.preprocess_input(resized[chosen]), verbose=0)
        np.testing.assert_allclose(features[second], maps.mean(axis=0), rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------------------------------
# The ave_release preset and the official files.


def _settings(args):
    flag_values = flags.FlagValues()
    extract.define_flags(flag_values)
    flag_values(["extract", "--videos=v", "--output_dir=o", *args])
    return feature_flags.settings_from_flags(flag_values)


def test_ave_release_preset_sets_the_readme_row_and_given_flags_win(tmp_path, capsys):
    checkpoint = tmp_path / "vggish_model.ckpt"
    checkpoint.write_bytes(b"x")
    settings = _settings(["--preset=ave_release", f"--vggish_checkpoint={checkpoint}"])
    assert (settings.visual_backbone, settings.frames_per_second, settings.image_size) == (
        "vgg19",
        16,
        224,
    )
    assert (settings.vggish_output, settings.audio_framing, settings.frame_sampling) == (
        "relu",
        "vggish",
        "ave",
    )
    assert settings.visual_shape == [7, 7, 512] and settings.vggish_checkpoint == str(checkpoint)
    assert capsys.readouterr().out == ""
    # A flag given on the command line wins over the preset, and the run says so.
    given = _settings(
        [
            "--preset=ave_release",
            f"--vggish_checkpoint={checkpoint}",
            "--frames_per_second=4",
            "--image_size=64",
        ]
    )
    assert (given.frames_per_second, given.image_size, given.frame_sampling) == (4, 64, "ave")
    assert "kept the flags given on the command line: --frames_per_second=4 --image_size=64" in (
        capsys.readouterr().out
    )
    # Without the preset, today's defaults.
    plain = _settings([f"--vggish_checkpoint={checkpoint}"])
    assert (plain.frame_sampling, plain.audio_framing, plain.visual_layout) == (
        "centre",
        "second",
        None,
    )
    assert "frame_sampling" not in plain.identity()  # extract_config.json of older runs resumes
    assert given.identity()["frame_sampling"] == "ave"


@pytest.fixture
def official(tmp_path, monkeypatch):
    """A file:// 'server' holding the two official files, and an empty Keras cache."""
    server = tmp_path / "server"
    server.mkdir()
    (server / vggish_params.CHECKPOINT_FILE).write_bytes(b"checkpoint bytes")
    (server / vggish_params.PCA_PARAMS_FILE).write_bytes(b"pca bytes")
    monkeypatch.setenv(vggish_params.BASE_URL_ENV, server.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    return server


def test_official_vggish_files_are_fetched_once_into_keras_cache(official, tmp_path, capsys):
    cached = tmp_path / "keras_home" / "vggish" / vggish_params.CHECKPOINT_FILE
    settings = _settings(["--vggish_output=postprocessed"])
    assert settings.vggish_checkpoint == str(cached) and cached.read_bytes() == b"checkpoint bytes"
    assert settings.vggish_pca_params == str(cached.parent / vggish_params.PCA_PARAMS_FILE)
    printed = capsys.readouterr().out
    assert f"vggish: {cached} (downloaded from {official.as_uri()}/vggish_model.ckpt)" in printed
    # The second run reads the cache: the source may be gone.
    (official / vggish_params.CHECKPOINT_FILE).unlink()
    assert _settings([]).vggish_checkpoint == str(cached)
    assert f"vggish: {cached} (cached)" in capsys.readouterr().out
    # The PCA file is fetched only for the post-processed output; a local path is used as given.
    assert _settings(["--vggish_checkpoint=/local/ckpt"]).vggish_pca_params is None


def test_without_network_one_message_names_the_url_the_cache_and_the_flag(
    official, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(vggish_params.BASE_URL_ENV, (tmp_path / "offline").as_uri())
    url = f"{(tmp_path / 'offline').as_uri()}/vggish_model.ckpt"
    cache = tmp_path / "keras_home" / "vggish" / vggish_params.CHECKPOINT_FILE
    (tmp_path / "clip.mp4").write_bytes(b"")
    status, _, err = run_in_process(
        extract, f"--videos={tmp_path}", f"--output_dir={tmp_path / 'out'}", capsys=capsys
    )
    line = one_error_line(status, err, allow_tf_log=False)
    assert line.startswith("error: --vggish_checkpoint: expected to download")
    assert url in line and str(cache) in line and "--vggish_checkpoint=PATH" in line
    assert not cache.exists()
