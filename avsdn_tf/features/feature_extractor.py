"""One video to its per-second features: FeatureExtractor (VGGish and a visual backbone, loaded
once) and VideoFeatures (what it gives). The settings: feature_settings.FeatureSettings; writing
the features of many videos into a data directory: extraction.py and assembly.py.
"""

import dataclasses

import numpy as np

from avsdn_tf import constants
from avsdn_tf.features import vggish, video, visual_features


@dataclasses.dataclass
class VideoFeatures:
    """One video's features (FeatureExtractor.extract)."""

    info: video.VideoInfo
    audio: np.ndarray  # [T, 128]
    visual: np.ndarray  # [T, *visual_shape]
    thumbnails: list | None = None  # one frame per segment (the middle one) when asked for

    @property
    def video_id(self):
        """The video's id (its file name without the extension)."""
        return self.info.video_id


class FeatureExtractor:
    """Both networks, loaded once; `extract(path)` gives one video's per-second features."""

    def __init__(self, settings):
        """Load both networks.

        Args:
            settings: feature_settings.FeatureSettings (checked first).
        Raises:
            errors.UserError: for settings that cannot make features, or networks that cannot
                be loaded.
        """
        settings.check()
        self.settings = settings
        self.audio = vggish.AudioFeatureExtractor(
            settings.vggish_checkpoint,
            settings.vggish_output,
            settings.vggish_pca_params,
            settings.audio_framing,
        )
        self.visual = visual_features.VisualFeatureExtractor(
            settings.visual_backbone,
            settings.visual_weights,
            settings.image_size,
            settings.batch_size,
        )

    def extract(self, path, thumbnails=False):
        """One video's per-second features through both networks.

        Args:
            path: a local video file with a video and an audio track (PyAV/FFmpeg reads it).
            thumbnails: also keep the middle frame of each segment (for a timeline picture).
        Returns:
            VideoFeatures: info (VideoInfo), audio float32 [T, 128] (T = the video's whole
            seconds), visual float32 [T, *visual_shape] ([T, 7, 7, 512] for vgg19 at 224 px,
            [T, 2048] for resnet152), thumbnails a list of T uint8 [image_size, image_size, 3]
            frames with thumbnails, else None.
        Raises:
            video.VideoError (an errors.UserError): when the video cannot be used, or its audio
                and picture give other numbers of segments than T.
        """
        info = video.probe(path)
        waveform = video.read_audio(info)
        audio = self.audio(waveform, info.num_segments)
        kept = [] if thumbnails else None

        def segments():
            for frames in video.iter_frames(
                info,
                self.settings.frames_per_second,
                self.settings.image_size,
                self.settings.frame_sampling,
            ):
                if kept is not None:
                    kept.append(frames[len(frames) // 2])
                yield frames

        visual = self.visual(segments())
        if len(visual.shape) == 4 and self.settings.visual_layout == constants.LAYOUT_VECTOR:
            visual = visual.mean(axis=(1, 2))  # [T, S, S, C] -> [T, C], as visual_feature_vec.h5
        if len(visual) != info.num_segments or len(audio) != info.num_segments:
            raise video.VideoError(
                f"{path}: expected {info.num_segments} segments of audio and picture, found "
                f"{len(audio)} and {len(visual)}"
            )
        return VideoFeatures(info, audio, visual, kept)
