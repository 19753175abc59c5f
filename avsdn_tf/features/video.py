"""Decoding people's own videos with PyAV into 1-second segments: frames and 16 kHz mono audio.

A video of D seconds has T = floor(D) segments; segment t covers [t, t + 1) seconds, measured
from the first video frame. Two frame samplings (`frame_sampling`):

  centre  for segment t, `frames_per_second` frames are taken at the centres of equal slices of
          the second (t + (k + 0.5) / F, k = 0..F-1): each is the frame on screen at that
          moment, resized to image_size x image_size RGB by swscale (bilinear). The default.
  ave     as the AVE authors' attention_visualization.py samples a 10-s clip: the N frames of
          the T whole seconds are counted (all frames decoded, for a clip of whole seconds),
          interval = int(N / T) and segment l takes frames int(l * interval + i / F * interval),
          i = 0..F-1 (F = 16 there), by decoding order; each is converted to RGB at full size
          and resized to image_size x image_size as OpenCV's default cv2.resize (INTER_LINEAR:
          bilinear, half-pixel centres, no antialiasing; see `resize_bilinear`). OpenCV is not
          a dependency: tf.image.resize computes the same interpolation (in floating point,
          where OpenCV uses 11-bit fixed point, so a pixel may differ by 1).
 The audio track is averaged over its
channels (as VGGish's waveform_to_examples does) and resampled to 16 kHz by libswresample,
placed on the same clock as the frames (silence before a late start or after an early end).

A video that cannot be used (unreadable, no video or audio track, shorter than one second)
raises VideoError, one message naming the file; batch extraction logs it and moves on.
"""

import dataclasses
import math
import os

import numpy as np

from avsdn_tf.errors import UserError, argument_error

AUDIO_SAMPLE_RATE = 16000  # VGGish's rate
VIDEO_EXTENSIONS = (
    ".mp4",
    ".m4v",
    ".mov",
    ".mkv",
    ".webm",
    ".avi",
    ".flv",
    ".mpg",
    ".mpeg",
    ".3gp",
    ".ogv",
    ".wmv",
    ".ts",
)
_END_TOLERANCE = 1e-3  # seconds: a video of 2.9995 s still has 3 whole segments
SAMPLING_CENTRE = "centre"  # frames at the centres of equal slices of each second
SAMPLING_AVE = "ave"  # the AVE authors' frame indices over all decoded frames
FRAME_SAMPLINGS = (SAMPLING_CENTRE, SAMPLING_AVE)


class VideoError(UserError):
    """A video that cannot be used: unreadable, no audio or video track, shorter than 1 s."""


def _av():
    try:
        import av
    except ImportError:
        raise UserError(
            "decoding videos needs PyAV: pip install 'avsdn-tf[video]' (or pip install av)"
        ) from None
    return av


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  # seconds, from the first video frame to the end of the last
    num_segments: int  # whole seconds
    width: int
    height: int
    frame_rate: float
    audio_sample_rate: int
    audio_channels: int

    @property
    def video_id(self):
        return video_id(self.path)


def video_id(path):
    """The id a video's records carry: its file name without the extension (AVE: the YouTube id)."""
    return os.path.splitext(os.path.basename(path.rstrip("/")))[0]


def _open(path):
    av = _av()
    if not os.path.exists(path):
        raise VideoError(f"{path}: video file not found")
    try:
        return av.open(path, metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, ValueError) as error:
        raise VideoError(
            f"{path}: expected a video file PyAV/FFmpeg can read, found an unreadable file "
            f"({error})"
        ) from None


def _streams(path, container):
    if not container.streams.video:
        raise VideoError(f"{path}: expected a video track, found none")
    if not container.streams.audio:
        raise VideoError(
            f"{path}: expected an audio track, found none (AVSDN needs both sound and picture)"
        )
    return container.streams.video[0], container.streams.audio[0]


def _stream_seconds(stream, value):
    return None if value is None else float(value * stream.time_base)


def _video_origin(stream):
    start = _stream_seconds(stream, stream.start_time)
    return start if start is not None else 0.0


def _duration_from_packets(container, stream):
    """The end of the last video packet, by demuxing only (no decoding): for files whose headers
    carry no duration (some webm and streamed mp4)."""
    end = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        finish = float((packet.pts + (packet.duration or 0)) * stream.time_base)
        end = finish if end is None else max(end, finish)
    return end


def probe(path):
    """VideoInfo of a video, or VideoError naming what is wrong with it.

    Reads the headers only (when they carry no duration: the video packets, without decoding).

    Args:
        path: a local video file.
    Returns:
        VideoInfo: duration (s, from the first video frame), num_segments T (its whole seconds),
        frame size and rate, the audio track's sample rate and channel count.
    Raises:
        VideoError (an errors.UserError): when the file is missing or unreadable, has no video or
            no audio track, no duration, frame size or sample rate, or is shorter than 1 s.
        errors.UserError: when PyAV is not installed.
    """
    av = _av()
    container = _open(path)
    try:
        video, audio = _streams(path, container)
        origin = _video_origin(video)
        duration = _stream_seconds(video, video.duration)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base - (
                origin - (container.start_time or 0) / av.time_base
            )
        if duration is None:
            end = _duration_from_packets(container, video)
            duration = None if end is None else end - origin
        rate = float(video.average_rate or video.guessed_rate or 0)
        width, height = video.codec_context.width, video.codec_context.height
        sample_rate, channels = audio.codec_context.sample_rate, audio.codec_context.channels
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{path}: expected a readable video, found a decoding error ({error})"
        ) from None
    finally:
        container.close()
    if duration is None:
        raise VideoError(f"{path}: expected a video track with timestamps, found no duration")
    if duration + _END_TOLERANCE < 1.0:
        raise VideoError(f"{path}: expected a video of at least 1 second, found {duration:.3f} s")
    if not width or not height:
        raise VideoError(
            f"{path}: expected a video track with a frame size, found {width}x{height}"
        )
    if not sample_rate:
        raise VideoError(f"{path}: expected an audio track with a sample rate, found none")
    return VideoInfo(
        path=path,
        duration=duration,
        num_segments=int(math.floor(duration + _END_TOLERANCE)),
        width=width,
        height=height,
        frame_rate=rate,
        audio_sample_rate=sample_rate,
        audio_channels=channels,
    )


def read_audio(info, sample_rate=AUDIO_SAMPLE_RATE):
    """The audio of the video's T whole seconds: float32 mono [T * sample_rate] in [-1, 1].

    Args:
        info: the video's VideoInfo (probe).
        sample_rate: the rate to resample to, in Hz (VGGish: 16000).
    Returns:
        float32 [T * sample_rate] samples, channels averaged, on the clock of the first video
        frame: silence where the audio starts late or ends early.
    Raises:
        VideoError (an errors.UserError): when the audio track does not decode or holds no samples.
    """
    av = _av()
    container = _open(info.path)
    pieces, offset = [], None
    try:
        video, audio = _streams(info.path, container)
        audio.thread_type = "AUTO"
        origin = _video_origin(video)
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)  # keeps the channel layout

        def add(frames):
            """Append each resampled frame's samples, averaged over channels, to `pieces`.

            Args:
                frames: the av.AudioFrames the resampler gave (planar float32, [channels, n]).
            Returns:
                None; appends one float64 [n] array per frame.
            """
            for frame in frames:
                # Channels are averaged here, not by swresample, whose downmix weights differ.
                pieces.append(
                    frame.to_ndarray().reshape(-1, frame.samples).mean(axis=0, dtype=np.float64)
                )

        for frame in container.decode(audio):
            if offset is None:
                offset = (frame.time - origin) if frame.time is not None else 0.0
            add(resampler.resample(frame))
        add(resampler.resample(None))
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{info.path}: expected a readable audio track, found a decoding error ({error})"
        ) from None
    finally:
        container.close()
    if not pieces:
        raise VideoError(f"{info.path}: expected audio samples in the audio track, found none")
    samples = np.concatenate(pieces).astype(np.float32)
    shift = int(round(offset * sample_rate))
    if shift > 0:  # the audio starts after the first frame: silence until it does
        samples = np.concatenate([np.zeros(shift, np.float32), samples])
    elif shift < 0:
        samples = samples[-shift:]
    wanted = info.num_segments * sample_rate
    if len(samples) < wanted:  # the audio ends before the picture: silence
        samples = np.pad(samples, (0, wanted - len(samples)))
    return samples[:wanted]


def sample_times(num_segments, frames_per_second):
    """[T, F] times (s) at which frames are taken: the centres of F equal slices of each second.

    Args:
        num_segments: T. frames_per_second: F.
    Returns:
        float64 [T, F] array, row t = t + (k + 0.5) / F for k = 0..F-1.
    """
    return (
        np.arange(num_segments)[:, None]
        + (np.arange(frames_per_second)[None, :] + 0.5) / frames_per_second
    )


def iter_segment_frames(info, frames_per_second, image_size):
    """Yield, for t = 0..T-1, the uint8 frames [F, image_size, image_size, 3] of segment t.

    Frames are decoded in order and only the ones on screen at a sample time are converted, so
    memory holds one segment at a time whatever the video's length.

    Args:
        info: the video's VideoInfo (probe); T = info.num_segments.
        frames_per_second: F, frames per segment (at sample_times).
        image_size: S, the side in pixels the frames are resized to.
    Yields:
        uint8 [F, S, S, 3] RGB frames, T times (the last frame stays on screen to the end).
    Raises:
        VideoError (an errors.UserError): when the video does not decode or no frame does.
    """
    av = _av()
    times = sample_times(info.num_segments, frames_per_second)
    flat = times.reshape(-1)
    container = _open(info.path)
    segment, next_index = [], 0
    previous = None  # (time, frame) of the last decoded frame

    def convert(frame):
        """One frame resized (bilinear) to RGB image_size x image_size.

        Args:
            frame: an av.VideoFrame.
        Returns:
            uint8 [image_size, image_size, 3] array.
        """
        return frame.reformat(
            width=image_size, height=image_size, format="rgb24", interpolation="BILINEAR"
        ).to_ndarray()

    def take(frame, until):
        """Give `frame` to every sample time before `until`; yield completed segments.

        Args:
            frame: the av.VideoFrame on screen until `until` (converted once, when first needed).
            until: seconds from the first video frame; math.inf: every sample time left.
        Yields:
            uint8 [F, S, S, 3] frames of each segment this frame completes.
        """
        nonlocal next_index, segment
        image = None
        while next_index < len(flat) and flat[next_index] < until:
            if image is None:
                image = convert(frame)
            segment.append(image)
            next_index += 1
            if len(segment) == frames_per_second:
                yield np.stack(segment)
                segment = []

    try:
        video, _ = _streams(info.path, container)
        video.thread_type = "AUTO"
        origin = _video_origin(video)
        for frame in container.decode(video):
            if frame.time is None:
                continue
            time = frame.time - origin
            if previous is not None:
                yield from take(previous[1], time)
            elif time > 0:  # sample times before the first frame see the first frame
                yield from take(frame, time)
            previous = (time, frame)
            if next_index >= len(flat):
                break
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{info.path}: expected decodable video frames, found a decoding error at "
            f"{flat[min(next_index, len(flat) - 1)]:.2f} s ({error})"
        ) from None
    finally:
        container.close()
    if previous is None:
        raise VideoError(f"{info.path}: expected video frames, found none that decode")
    yield from take(previous[1], math.inf)  # the last frame stays on screen to the end


# ---------------------------------------------------------------------------------------------
# The AVE authors' sampling: frame indices over all decoded frames, OpenCV-style resize.


def ave_frame_indices(num_frames, num_segments, frames_per_second):
    """The frames the AVE authors' script takes, by decoding order.

    Args:
      num_frames: N, the frames decoded in the T whole seconds (all of a 10-s clip's).
      num_segments: T, the whole seconds (AVE: 10).
      frames_per_second: F, frames per second averaged (AVE: 16).

    Returns:
      int64 [T, F]: index int(l * interval + i / F * interval) for second l and i = 0..F-1, with
      interval = int(N / T).
    """
    interval = int(num_frames / num_segments)
    if interval < 1:
        raise argument_error(
            "num_frames", f"at least one frame per second ({num_segments})", num_frames
        )
    return np.array(
        [
            [
                int(second * interval + i / frames_per_second * interval)
                for i in range(frames_per_second)
            ]
            for second in range(num_segments)
        ],
        np.int64,
    )


def resize_bilinear(image, image_size):
    """An RGB frame resized as OpenCV's cv2.resize(image, (S, S)) does by default (INTER_LINEAR).

    Bilinear interpolation with half-pixel centres (source x = (x' + 0.5) * scale - 0.5, clamped
    to the edge pixels) and no antialiasing when shrinking, rounded to the nearest integer.

    Args:
      image: uint8 [H, W, 3].
      image_size: S, the side of the square result.

    Returns:
      uint8 [S, S, 3].
    """
    import tensorflow as tf

    resized = tf.image.resize(
        tf.convert_to_tensor(image, tf.float32)[None],
        [image_size, image_size],
        method="bilinear",
        antialias=False,
    )[0]
    return np.clip(np.rint(resized.numpy()), 0, 255).astype(np.uint8)


def _decoded_frames(info, container):
    """(time from the first frame in s, frame) of every decoded video frame with a timestamp."""
    video, _ = _streams(info.path, container)
    video.thread_type = "AUTO"
    origin = _video_origin(video)
    for frame in container.decode(video):
        if frame.time is not None:
            yield frame.time - origin, frame


def count_frames(info):
    """N: the video frames that start within the T whole seconds (a whole decode)."""
    av = _av()
    container = _open(info.path)
    try:
        limit = info.num_segments - _END_TOLERANCE
        return sum(1 for time, _ in _decoded_frames(info, container) if time < limit)
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{info.path}: expected decodable video frames, found a decoding error ({error})"
        ) from None
    finally:
        container.close()


def iter_ave_segment_frames(info, frames_per_second, image_size):
    """Yield, for l = 0..T-1, the uint8 frames [F, image_size, image_size, 3] of segment l, taken
    as the AVE authors' script takes them (`ave_frame_indices`, `resize_bilinear`).

    The video is decoded twice (once to count its frames, once to take them), so memory holds one
    segment at a time whatever the video's length.
    """
    av = _av()
    num_frames = count_frames(info)
    if num_frames < info.num_segments:
        raise VideoError(
            f"{info.path}: expected at least one video frame per second "
            f"({info.num_segments}), found {num_frames} frames"
        )
    indices = ave_frame_indices(num_frames, info.num_segments, frames_per_second)
    flat = indices.reshape(-1)
    container = _open(info.path)
    segment, next_index = [], 0
    try:
        for index, (_, frame) in enumerate(_decoded_frames(info, container)):
            if next_index >= len(flat):
                break
            image = None
            while next_index < len(flat) and flat[next_index] == index:
                if image is None:
                    image = resize_bilinear(frame.to_ndarray(format="rgb24"), image_size)
                segment.append(image)
                next_index += 1
                if len(segment) == frames_per_second:
                    yield np.stack(segment)
                    segment = []
    except av.error.FFmpegError as error:
        raise VideoError(
            f"{info.path}: expected decodable video frames, found a decoding error ({error})"
        ) from None
    finally:
        container.close()
    if next_index < len(flat):
        raise VideoError(
            f"{info.path}: expected frame {flat[next_index]} of the {len(flat)} "
            "sampled, found fewer frames on the second decode"
        )


def iter_frames(info, frames_per_second, image_size, sampling=SAMPLING_CENTRE):
    """The segments' frames [F, S, S, 3] uint8, one array per second, by `sampling`."""
    if sampling == SAMPLING_CENTRE:
        return iter_segment_frames(info, frames_per_second, image_size)
    if sampling == SAMPLING_AVE:
        return iter_ave_segment_frames(info, frames_per_second, image_size)
    raise argument_error("frame_sampling", f"one of {FRAME_SAMPLINGS}", repr(sampling))
