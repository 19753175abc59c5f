"""Extracting features from people's own videos into a data directory (the extract command's work).

FeatureSettings (the settings that decide the features, and their flags, which extract and
predict share), FeatureExtractor (one video -> audio [T, 128] and visual [T, ...] features), and
extract_videos (every video, resumable, then the data set assembled and published last). The
command and its output layout: avsdn_tf/extract.py.
"""

import dataclasses
import io
import os
import re
import sys
import time
import uuid

import numpy as np
import tensorflow as tf
from absl import flags

from avsdn_tf import constants, dataset_info, fileio, records
from avsdn_tf.data import normalization, shards
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.features import vggish, video, visual_features

FEATURES_DIR = "features"
CONFIG_FILE = "extract_config.json"
SKIPPED_FILE = "skipped.json"
SUMMARY_FILE = "extract_summary.json"
ASSEMBLY_PREFIX = ".assemble-"  # the staging directory of the data set, inside output_dir
# What a killed extract leaves in output_dir under temporary names (fileio.write_json's
# *.json.tmp-*, _save_features' features/*.npz.tmp-*.npz, the assembly directory): swept by
# the command once it holds the lock of output_dir.
STALE_TEMPORARIES = ("*.tmp-*", f"{FEATURES_DIR}/*.tmp-*", f"{ASSEMBLY_PREFIX}*")
DEFAULT_FRAMES_PER_SECOND = 16  # the AVE release averaged 16 frames per second

# --preset NAME: feature flags set together; a flag given on the command line wins over its
# preset value (the run prints which ones it kept).
PRESETS = {
    # The README's "the AVE release" row: what AVSDN and AVEL were trained on (10-s clips).
    "ave_release": {
        "visual_backbone": "vgg19",
        "frames_per_second": 16,
        "image_size": 224,
        "vggish_output": "relu",
        "audio_framing": "vggish",
        "frame_sampling": video.SAMPLING_AVE,
        "visual_layout": constants.LAYOUT_MAP,
    },
}


# ---------------------------------------------------------------------------------------------
# The flags that decide the features.


def define_feature_flags(flag_values=flags.FLAGS):
    """The flags that decide the features; extract and predict share them.

    Args:
        flag_values: the absl FlagValues to define them in (default: the global flags.FLAGS).
    Returns:
        None; defines preset, vggish_checkpoint, vggish_output, vggish_pca_params,
        audio_framing, visual_backbone, visual_weights, frame_sampling, visual_layout,
        frames_per_second, image_size and batch_size.
    """
    flags.DEFINE_enum(
        "preset",
        None,
        sorted(PRESETS),
        "Set the feature flags of a published feature set: ave_release = "
        + " ".join(f"--{k}={v}" for k, v in PRESETS["ave_release"].items())
        + ". Feature flags given on the command line win over the preset's.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "vggish_checkpoint",
        None,
        "The official VGGish checkpoint, vggish_model.ckpt "
        "(TF1 checkpoint, V1 format; V2 works too). Default: downloaded once from "
        f"{vggish.official_url(vggish.CHECKPOINT_FILE)} into Keras' cache "
        f"($KERAS_HOME or ~/.keras, under {vggish.CACHE_SUBDIR}/).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "vggish_output",
        "relu",
        list(vggish.OUTPUTS),
        "relu: the embedding with ReLU, as the 2017 VGGish that made the AVE release's audio "
        "features; linear: today's vggish_slim.py (no activation); postprocessed: PCA + 8-bit "
        "quantisation as the AudioSet release (needs --vggish_pca_params).",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "vggish_pca_params",
        None,
        "vggish_pca_params.npz (for --vggish_output="
        "postprocessed). Default: downloaded once from "
        f"{vggish.official_url(vggish.PCA_PARAMS_FILE)} into Keras' cache.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "audio_framing",
        "second",
        list(vggish.FRAMINGS),
        "second: the VGGish example of second t starts at t s; vggish: examples every 0.96 s "
        "as waveform_to_examples frames a clip (identical layout for 10-s AVE clips).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "visual_backbone",
        "vgg19",
        sorted(visual_features.BACKBONES),
        "vgg19: pool5 maps (7x7x512 at 224 px), as the AVE release; resnet152: 2048-d pooled, "
        "as the AVSDN paper.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "visual_weights",
        visual_features.IMAGENET,
        "'imagenet' (downloaded by Keras) or the path of a weights file of the "
        "include_top=False backbone (*.weights.h5 from save_weights, or Keras' *_notop.h5).",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "frame_sampling",
        video.SAMPLING_CENTRE,
        list(video.FRAME_SAMPLINGS),
        "centre: frames at the centres of equal slices of each second, resized by "
        "swscale; ave: as the AVE authors' script, frames int(l * interval + i / F * "
        "interval) with interval = int(frames / seconds), resized as cv2.resize.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "visual_layout",
        None,
        [constants.LAYOUT_MAP, constants.LAYOUT_VECTOR],
        "Default: the backbone's own (vgg19 maps, resnet152 vectors). vector: the "
        "spatial mean of the averaged maps, as the AVE release's "
        "visual_feature_vec.h5 (predict picks the layout its model was trained on).",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "frames_per_second",
        DEFAULT_FRAMES_PER_SECOND,
        "Frames per 1-s segment through the visual backbone, averaged (AVE: 16).",
        lower_bound=1,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "image_size",
        visual_features.DEFAULT_IMAGE_SIZE,
        "Frames are resized to this many pixels square (224: 7x7 VGG-19 maps).",
        lower_bound=32,
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "batch_size",
        32,
        "Frames per forward pass of the visual backbone.",
        lower_bound=1,
        flag_values=flag_values,
    )


# ---------------------------------------------------------------------------------------------
# Feature settings and the extractor.


def _file_identity(path):
    """What a rerun compares for a weights file: its name and size (cheap, survives moving it)."""
    if not path or path == visual_features.IMAGENET:
        return path
    size = tf.io.gfile.stat(path).length if tf.io.gfile.exists(path) else None
    return {"file": os.path.basename(path.rstrip("/")), "bytes": size}


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    vggish_checkpoint: str
    visual_backbone: str = "vgg19"
    visual_weights: str = visual_features.IMAGENET
    vggish_output: str = "relu"
    vggish_pca_params: str | None = None
    audio_framing: str = "second"
    frames_per_second: int = DEFAULT_FRAMES_PER_SECOND
    image_size: int = visual_features.DEFAULT_IMAGE_SIZE
    batch_size: int = 32
    frame_sampling: str = video.SAMPLING_CENTRE
    visual_layout: str | None = None  # None: the backbone's own

    @classmethod
    def from_flags(cls, flag_values, verbose=True):
        """The settings the flags give.

        --preset's values fill the feature flags not given on the command line, and the official
        VGGish files (downloaded once into Keras' cache) are used where no path is given.

        Args:
            flag_values: parsed absl FlagValues holding a flag for every field (and --preset).
            verbose: print which given flags were kept over the preset, and downloads.
        Returns:
            FeatureSettings.
        """
        values = {field.name: getattr(flag_values, field.name) for field in dataclasses.fields(cls)}
        preset = getattr(flag_values, "preset", None)
        if preset:
            kept = []
            for name, value in PRESETS[preset].items():
                if flag_values[name].present:
                    if values[name] != value:
                        kept.append(f"--{name}={values[name]}")
                else:
                    values[name] = value
            if verbose and kept:
                print(
                    f"--preset={preset}: kept the flags given on the command line: "
                    f"{' '.join(kept)}",
                    flush=True,
                )
        if not values["vggish_checkpoint"]:
            values["vggish_checkpoint"] = vggish.fetch_official(
                vggish.CHECKPOINT_FILE, "vggish_checkpoint", verbose
            )
        if values["vggish_output"] == "postprocessed" and not values["vggish_pca_params"]:
            values["vggish_pca_params"] = vggish.fetch_official(
                vggish.PCA_PARAMS_FILE, "vggish_pca_params", verbose
            )
        return cls(**values)

    @property
    def audio_dim(self):
        return vggish.EMBEDDING_SIZE

    @property
    def backbone_shape(self):
        """The backbone's own feature shape: [S, S, C] maps or [C]."""
        return visual_features.get_backbone(self.visual_backbone).feature_shape(self.image_size)

    @property
    def visual_shape(self):
        """The stored feature shape: the backbone's, or [C] for --visual_layout vector."""
        shape = self.backbone_shape
        return shape[-1:] if self.visual_layout == constants.LAYOUT_VECTOR else shape

    def for_visual_shape(self, visual_shape):
        """These settings with the layout a model's input needs: maps pooled to vectors when the
        model takes [C] and the backbone gives [S, S, C]; otherwise unchanged.

        Args:
          visual_shape: the model's visual input shape per segment, [C] or [S, S, C].
        """
        shape = [int(d) for d in visual_shape]
        if (
            len(shape) == 1
            and len(self.backbone_shape) == 3
            and self.visual_layout is None
            and shape == self.backbone_shape[-1:]
        ):
            return dataclasses.replace(self, visual_layout=constants.LAYOUT_VECTOR)
        return self

    def identity(self):
        """What determines the features (paths reduced to file name and size; not batch_size)."""
        return {
            "vggish_checkpoint": _file_identity(self.vggish_checkpoint),
            "vggish_output": self.vggish_output,
            "vggish_pca_params": (
                _file_identity(self.vggish_pca_params)
                if self.vggish_output == "postprocessed"
                else None
            ),
            "audio_framing": self.audio_framing,
            "visual_backbone": self.visual_backbone,
            "visual_weights": _file_identity(self.visual_weights),
            "frames_per_second": self.frames_per_second,
            "image_size": self.image_size,
            "audio_dim": self.audio_dim,
            "visual_shape": self.visual_shape,
            # Only when not the defaults, so directories written before them still resume.
            **(
                {"frame_sampling": self.frame_sampling}
                if self.frame_sampling != video.SAMPLING_CENTRE
                else {}
            ),
            **({"visual_layout": self.visual_layout} if self.visual_layout else {}),
        }

    def check(self):
        if not self.vggish_checkpoint:
            raise UserError(
                "vggish_checkpoint: expected the path of the official vggish_model.ckpt, found"
                " none",
                argument="vggish_checkpoint",
            )
        visual_features.get_backbone(self.visual_backbone)
        if self.frame_sampling not in video.FRAME_SAMPLINGS:
            raise argument_error(
                "frame_sampling", f"one of {video.FRAME_SAMPLINGS}", repr(self.frame_sampling)
            )
        layouts = (None, constants.LAYOUT_VECTOR, constants.LAYOUT_MAP)
        if self.visual_layout not in layouts:
            raise argument_error("visual_layout", f"one of {layouts[1:]}", repr(self.visual_layout))
        if self.visual_layout == constants.LAYOUT_MAP and len(self.backbone_shape) != 3:
            raise argument_error(
                "visual_layout",
                "vector for --visual_backbone="
                f"{self.visual_backbone} (it pools to {self.backbone_shape})",
                repr(self.visual_layout),
            )


@dataclasses.dataclass
class VideoFeatures:
    info: video.VideoInfo
    audio: np.ndarray  # [T, 128]
    visual: np.ndarray  # [T, *visual_shape]
    thumbnails: list | None = None  # one frame per segment (the middle one) when asked for

    @property
    def video_id(self):
        return self.info.video_id


class FeatureExtractor:
    """Both networks, loaded once; `extract(path)` gives one video's per-second features."""

    def __init__(self, settings):
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


# ---------------------------------------------------------------------------------------------
# The batch run: per-video features, then the data set.


def _features_path(output_dir, video_id):
    return os.path.join(output_dir, FEATURES_DIR, f"{video_id}.npz")


def _save_features(path, features):
    buffer = io.BytesIO()  # zipfile seeks while writing; GFiles (s3://, gs://) only append
    np.savez(
        buffer,
        audio=features.audio,
        visual=features.visual,
        seconds=np.float64(features.info.duration),
        source=np.str_(features.info.path),
    )
    # All or nothing; a full disk or a read-only output is one message naming the file.
    with fileio.atomic_file(path, ".npz") as temporary, tf.io.gfile.GFile(temporary, "wb") as out:
        out.write(buffer.getvalue())


def _check_config(output_dir, settings):
    path = os.path.join(output_dir, CONFIG_FILE)
    identity = settings.identity()
    if tf.io.gfile.exists(path):
        saved = fileio.read_json(path)
        if saved != identity:
            changed = sorted(key for key in identity if saved.get(key) != identity.get(key))
            raise input_error(
                path,
                f"the feature settings of this run to add to {output_dir}",
                f"other settings for {changed}: {[saved.get(k) for k in changed]} (now "
                f"{[identity[k] for k in changed]}); use a new `output_dir`",
            )
    elif tf.io.gfile.exists(os.path.join(output_dir, constants.DATASET_INFO_FILE)):
        raise input_error(
            output_dir,
            "a new directory or one written by extract (with extract_config.json)",
            "a data set written by another command; use a new `output_dir`",
        )
    else:
        fileio.write_json(path, identity)


def no_labels_reason(video_id):
    """Why a labelled run skips a video (skipped.json)."""
    return f"no row for video id {video_id!r} in --labels"


def _check_unique_ids(paths):
    seen = {}
    for path in paths:
        key = video.video_id(path)
        if key in seen:
            raise argument_error(
                "videos",
                "video files with distinct names (the name is the video id)",
                f"{seen[key]} and {path}",
            )
        seen[key] = path


class _Progress:
    """One status line per video: count, done / skipped, speed and time left (no bar widget, so
    it reads the same in a terminal and in a log file)."""

    def __init__(self, total, verbose):
        self.total, self.verbose, self.count, self.started = total, verbose, 0, time.time()
        self.terminal = sys.stdout.isatty()

    def update(self, done, skipped, video_seconds):
        """Count one more video and, when verbose, print the status line.

        Args:
            done: videos with features so far (extracted now or already on disk).
            skipped: videos skipped so far.
            video_seconds: seconds of video extracted in this run so far (for the speed), or 0.
        Returns:
            None.
        """
        self.count += 1
        if not self.verbose:
            return
        elapsed = time.time() - self.started
        left = elapsed / self.count * (self.total - self.count)
        speed = (
            f", {video_seconds / elapsed:.2f} s of video/s" if video_seconds and elapsed > 0 else ""
        )
        line = (
            f"[{self.count}/{self.total}] {100 * self.count / self.total:5.1f}%  done {done},"
            f" skipped {skipped}{speed}, {elapsed:.0f} s elapsed, about {left:.0f} s left"
        )
        print(
            ("\r" + line.ljust(100)) if self.terminal else line,
            end="" if self.terminal else "\n",
            flush=True,
        )
        if self.terminal and self.count == self.total:
            print()

    def message(self, text):
        """Print `text` on a line of its own when verbose (below the status line in a terminal).

        Args:
            text: the message, e.g. "skipped: <path>: <reason>".
        Returns:
            None.
        """
        if self.verbose:
            print(("\n" if self.terminal else "") + text, flush=True)


def start_output(paths, output_dir, settings, split):
    """Check the arguments of a run and make output_dir (refusing one of other settings)."""
    if not re.match(constants.SPLIT_NAME_PATTERN, split or ""):
        raise argument_error("split", "a split name of letters, digits and _", repr(split))
    settings.check()
    _check_unique_ids(paths)
    tf.io.gfile.makedirs(output_dir)
    _check_config(output_dir, settings)
    tf.io.gfile.makedirs(os.path.join(output_dir, FEATURES_DIR))


def extract_videos(
    paths, output_dir, settings, labels=None, split="train", videos_per_shard=256, verbose=True
):
    """Extract every video not done yet, then assemble the data set. Returns the summary dict.

    Resumable: a video whose features/<video_id>.npz exists is not extracted again. A video that
    cannot be used, or has no row in `labels`, is skipped and listed in skipped.json.

    Args:
        paths: video file paths; their file names (the video ids) must be distinct.
        output_dir: the data directory to write (local or a storage URL).
        settings: FeatureSettings; must equal those of an earlier run into output_dir.
        labels: {video_id: [LabelRow]} (labels.read_labels): one record per row; or None: one
            unlabelled record per video (category -1, every segment background 28).
        split: the split of records whose label row names none (letters, digits and _).
        videos_per_shard: records per TFRecord shard wanted (shards.shard_count).
        verbose: print a status line per video and each skipped video.
    Returns:
        dict, also written as extract_summary.json: videos given, extracted now, already done and
        skipped, records per split, timings, audio_dim, visual_shape, num_segments (None when
        the videos differ in length), labelled, and the settings' identity.
    Raises:
        errors.UserError: for a bad split name, duplicate video ids, output_dir holding other
            settings or another command's data set, networks that cannot be loaded, or no usable
            video at all.
    """
    start_output(paths, output_dir, settings, split)
    started = time.time()
    extractor = None  # loaded on first need: a rerun with everything done loads no network
    skipped, extracted, resumed, seconds_extracted = {}, 0, 0, 0.0
    progress = _Progress(len(paths), verbose)
    for path in paths:
        key = video.video_id(path)
        if labels is not None and key not in labels:
            skipped[path] = no_labels_reason(key)
            progress.message(f"skipped: {path}: {skipped[path]}")
        elif tf.io.gfile.exists(_features_path(output_dir, key)):
            resumed += 1
        else:
            try:
                if extractor is None:
                    video.probe(
                        path
                    )  # an unusable first video is reported before the networks load
                    extractor = FeatureExtractor(settings)
                features = extractor.extract(path)
                _save_features(_features_path(output_dir, key), features)
                extracted += 1
                seconds_extracted += features.info.num_segments
            except video.VideoError as error:
                skipped[path] = str(error)
                progress.message(f"skipped: {error}")
        progress.update(extracted + resumed, len(skipped), seconds_extracted)
    extract_seconds = time.time() - started
    done = write_skipped(output_dir, paths, skipped)
    info = assemble(output_dir, done, settings, labels, split, videos_per_shard)
    return write_summary(
        output_dir,
        info,
        settings,
        labels,
        len(paths),
        extracted,
        resumed,
        len(skipped),
        seconds_extracted,
        extract_seconds,
    )


def write_skipped(output_dir, paths, skipped):
    """skipped.json ({"videos": count, "skipped": {path: reason}}); the usable paths, in order.

    Raises a UserError naming --videos when no video is usable.
    """
    fileio.write_json(
        os.path.join(output_dir, SKIPPED_FILE), {"videos": len(skipped), "skipped": skipped}
    )
    done = [path for path in paths if path not in skipped]
    if not done:
        raise argument_error(
            "videos",
            "at least one usable video",
            f"none of {len(paths)} (reasons in {os.path.join(output_dir, SKIPPED_FILE)})",
        )
    return done


def write_summary(
    output_dir,
    info,
    settings,
    labels,
    videos_given,
    extracted,
    resumed,
    skipped,
    seconds_extracted,
    extract_seconds,
    **more,
):
    """extract_summary.json (counts, seconds of video, speed, dims; `more` adds keys); returned."""
    summary = {
        "output_dir": output_dir,
        "videos_given": videos_given,
        "videos_extracted_now": extracted,
        "videos_already_done": resumed,
        "videos_skipped": skipped,
        "records": {name: value["videos"] for name, value in info.splits.items()},
        "seconds_of_video_extracted_now": seconds_extracted,
        "extract_seconds": round(extract_seconds, 2),
        "video_seconds_per_second": (
            round(seconds_extracted / extract_seconds, 3) if extracted else None
        ),
        "audio_dim": info.audio_dim,
        "visual_shape": info.visual_shape,
        "num_segments": info.num_segments,
        "labelled": labels is not None,
        "settings": settings.identity(),
        **more,
    }
    fileio.write_json(os.path.join(output_dir, SUMMARY_FILE), summary)
    return summary


def load_features(output_dir, video_id):
    """A video's features/<video_id>.npz: audio [T, 128], visual [T, *visual_shape]."""
    with tf.io.gfile.GFile(_features_path(output_dir, video_id), "rb") as handle:
        stored_bytes = io.BytesIO(handle.read())  # one read, not a range request per zip entry
    with np.load(stored_bytes) as stored:
        return stored["audio"], stored["visual"]


def _records_of(path, output_dir, labels, split):
    """(split, num_segments, serialized record) for each record of one extracted video."""
    key = video.video_id(path)
    audio, visual = load_features(output_dir, key)
    yield from video_records(key, audio, visual, labels, split)


def video_records(key, audio, visual, labels, split):
    """(split, num_segments, serialized record) for each record of one video (a row of labels
    each; without labels one record of background placeholders).

    Args:
        key: the video id. audio: [T, 128]. visual: [T, *visual_shape].
        labels: video id -> label rows, or None. split: the split of rows that name none.
    """
    num_segments = len(audio)
    rows = labels[key] if labels is not None else [None]
    for row in rows:
        if row is None:  # unlabelled: background placeholders
            yield (
                split,
                num_segments,
                records.encode_video(
                    key,
                    constants.NO_CATEGORY,
                    0,
                    0,
                    constants.BACKGROUND,
                    audio,
                    visual,
                    np.full(num_segments, constants.BACKGROUND, np.int64),
                ),
            )
        else:
            yield (
                row.split or split,
                num_segments,
                records.encode_video(
                    key,
                    row.category,
                    min(row.start, num_segments),
                    min(row.end, num_segments),
                    row.video_label,
                    audio,
                    visual,
                    row.segment_labels(num_segments),
                ),
            )


def assemble(output_dir, paths, settings, labels=None, split="train", videos_per_shard=256):
    """Write the records of every extracted video, dataset_info.json and normalization.json.

    Built in a staging directory inside output_dir and moved in file by file, with
    dataset_info.json removed first and written last.

    Args:
        output_dir: the data directory holding features/<video_id>.npz of every path.
        paths: the videos to write (extracted already), in record order.
        settings: the FeatureSettings they were extracted with (gives audio_dim, visual_shape).
        labels: {video_id: [LabelRow]}: one record per row, in the row's split or `split`; or
            None: one unlabelled record per video in `split` (every segment background 28).
        split: the split of records whose label row names none.
        videos_per_shard: records per TFRecord shard wanted (shards.shard_count: at most 16
            shards, at least 2 once a split has 2 records).
    Returns:
        the DatasetInfo written (num_segments None when the videos differ in length).
    """
    counts = {}
    for path in paths:
        rows = labels[video.video_id(path)] if labels is not None else [None]
        for row in rows:
            name = (row.split if row is not None else None) or split
            counts[name] = counts.get(name, 0) + 1
    staging = os.path.join(output_dir, f"{ASSEMBLY_PREFIX}{uuid.uuid4().hex[:8]}")
    # A full disk or a read-only output: one message naming output_dir (writing); the staging
    # directory is removed whatever happens.
    with fileio.writing(output_dir):
        tf.io.gfile.makedirs(staging)
        try:
            writers = {
                name: shards.ShardWriter(staging, name, shards.shard_count(count, videos_per_shard))
                for name, count in counts.items()
            }
            lengths = set()
            try:
                for path in paths:
                    for name, num_segments, serialized in _records_of(
                        path, output_dir, labels, split
                    ):
                        writers[name].write(serialized)
                        lengths.add(num_segments)
            finally:
                for writer in writers.values():
                    writer.close()
            splits = {
                name: {"videos": writer.written, "shards": writer.names}
                for name, writer in writers.items()
            }
            return finish_dataset(
                staging, output_dir, settings, splits, lengths, len(paths), labels
            )
        finally:
            fileio.remove_tree(staging)


def finish_dataset(
    staging, output_dir, settings, splits, lengths, num_videos, labels, moments=None
):
    """dataset_info.json and normalization.json beside the shards in `staging`, then all of
    them published into output_dir (dataset_info.json last). Returns the DatasetInfo.

    Args:
        staging: a directory inside output_dir holding the shards (removed by the caller).
        output_dir: the data directory. settings: the FeatureSettings of the features.
        splits: name -> {"videos", "shards"} of the shards in staging.
        lengths: the set of the records' numbers of segments.
        num_videos: the videos the records came from. labels: the labels given, or None.
        moments: split name -> normalization.Moments of its records (Beam's workers summed
            them), or None to compute the statistics from the shards.
    """
    sources = [{"file": f"{num_videos} videos, features/*.npz", "md5": None}]
    if labels is not None:
        sources.append({"file": "labels (--labels)", "md5": None})
    info = dataset_info.DatasetInfo(
        audio_dim=settings.audio_dim,
        visual_shape=list(settings.visual_shape),
        num_segments=next(iter(lengths)) if len(lengths) == 1 else None,
        class_names=constants.class_names(),
        splits=splits,
        sources=sources,
        generator=(
            f"extract {settings.visual_backbone} fps={settings.frames_per_second} "
            + (
                f"sampling={settings.frame_sampling} "
                if settings.frame_sampling != video.SAMPLING_CENTRE
                else ""
            )
            + (f"layout={settings.visual_layout} " if settings.visual_layout else "")
            + f"size={settings.image_size} vggish={settings.vggish_output}/{settings.audio_framing}"
            + ("" if labels is not None else "; no labels: segment labels are placeholders (28)")
        ),
    )
    dataset_info.write(staging, info)
    statistics_split = "train" if "train" in splits else sorted(splits)[0]
    if moments is None:
        normalization.write_statistics(staging, statistics_split)
    else:
        fileio.write_json(
            os.path.join(staging, constants.NORMALIZATION_FILE),
            moments[statistics_split].statistics(statistics_split),
        )
    _publish(staging, output_dir, info)
    return info


def _publish(staging, output_dir, info):
    info_path = os.path.join(output_dir, constants.DATASET_INFO_FILE)
    old_shards = []
    if tf.io.gfile.exists(info_path):
        old = dataset_info.read(output_dir)
        old_shards = [name for value in old.splits.values() for name in value["shards"]]
        tf.io.gfile.remove(info_path)
    new_shards = [name for value in info.splits.values() for name in value["shards"]]
    for name in old_shards:
        if name not in new_shards and tf.io.gfile.exists(os.path.join(output_dir, name)):
            tf.io.gfile.remove(os.path.join(output_dir, name))
    for name in [*new_shards, constants.NORMALIZATION_FILE, constants.DATASET_INFO_FILE]:
        tf.io.gfile.rename(
            os.path.join(staging, name), os.path.join(output_dir, name), overwrite=True
        )
