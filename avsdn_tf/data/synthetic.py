"""A built-in data set in the project's record format, on the real AVE event structure.

Videos, categories, event intervals and splits come from the real annotation files shipped in
avsdn_tf/resources; only the features are made up, so that the label truly needs both senses:

- a segment is an event only where its class is both audible and visible;
- outside the event at most one modality carries the class (a sound from off screen, a silent
  object in view), so audio alone or vision alone cannot tell event from background;
- classes are confusable in pairs, and the pairs differ by modality: by ear class c sounds like
  c XOR 1, by eye it looks like (c + 14) mod 28. Only the two senses together name the class.
"""

import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, dataset_info, fileio, progress, records
from avsdn_tf.data import annotations, normalization, shards
from avsdn_tf.errors import argument_error

# Unrelated classes sit about one unit apart. Confusable partners differ only along one direction,
# by PAIR_OFFSET noise deviations, so even ten segments of one modality leave the pair hard to tell
# apart. NOISE is each observation's spread per dimension, times sqrt(dim). Chosen so that
# single-modality models plateau well below audio-visual ones (see the README's measured gap).
PAIR_OFFSET = 0.25
NOISE = 0.55
DISTRACTOR_SCALE = 1.0


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    videos_per_split: dict = dataclasses.field(
        default_factory=lambda: {"train": 600, "val": 150, "test": 150, "noisy": 60}
    )
    audio_dim: int = constants.AUDIO_DIM
    visual_layout: str = constants.LAYOUT_VECTOR
    visual_dim: int = 512  # vector size, or the channel count of a map
    map_size: int = 7  # maps are map_size x map_size x visual_dim
    seed: int = 0
    noise: float = NOISE  # each observation's spread per dimension (times sqrt(dim)); the classes'
    # prototypes do not change with it, so a larger value makes every segment harder to read alone

    @property
    def visual_shape(self):
        if self.visual_layout == constants.LAYOUT_MAP:
            return [self.map_size, self.map_size, self.visual_dim]
        return [self.visual_dim]


def audio_partner(class_index):
    """The class an event class sounds like: class_index XOR 1.

    Args:
        class_index: int event class in [0, 28).
    Returns:
        int, its confusable partner by ear.
    """
    return class_index ^ 1


def visual_partner(class_index):
    """The class an event class looks like: (class_index + 14) mod 28.

    Args:
        class_index: int event class in [0, 28).
    Returns:
        int, its confusable partner by eye.
    """
    return (class_index + constants.NUM_EVENT_CLASSES // 2) % constants.NUM_EVENT_CLASSES


def _prototypes(rng, dim, partner):
    """One unit-scale prototype per class, each close to its confusable partner."""
    shared = rng.normal(size=(constants.NUM_EVENT_CLASSES, dim)) / np.sqrt(dim)
    own = rng.normal(size=(constants.NUM_EVENT_CLASSES, dim))
    own /= np.linalg.norm(own, axis=1, keepdims=True)
    prototypes = np.empty_like(shared)
    for c in range(constants.NUM_EVENT_CLASSES):
        anchor = min(c, partner(c))  # both members of a pair share one anchor
        prototypes[c] = shared[anchor] + PAIR_OFFSET * NOISE / np.sqrt(dim) * own[c]
    return prototypes


def modality_presence(rng, labels, class_index):
    """Which segments carry the class by ear and by eye: both inside the event, one at most outside.

    Args:
        rng: a numpy Generator.
        labels: int [T] segment labels of the video.
        class_index: the video's class id (constants.NO_CATEGORY: no event).
    Returns:
        (audible, visible): bool arrays [T].
    """
    inside = labels != constants.BACKGROUND
    audible = inside.copy()
    visible = inside.copy()
    if class_index >= 0:
        outside = np.flatnonzero(~inside)
        choice = rng.integers(0, 3, size=len(outside))  # 0: neither, 1: heard only, 2: seen only
        audible[outside[choice == 1]] = True
        visible[outside[choice == 2]] = True
    return audible, visible


class SyntheticFeatures:
    """Draws audio and visual features for one video from its class and event segments."""

    def __init__(self, config):
        self.config = config
        rng = np.random.default_rng([config.seed, 1])
        self.audio_prototypes = _prototypes(rng, config.audio_dim, audio_partner)
        self.visual_prototypes = _prototypes(rng, config.visual_dim, visual_partner)

    def _observations(self, rng, present, prototype, dim):
        scale = 1.0 / np.sqrt(dim)
        distractor = DISTRACTOR_SCALE * rng.normal(size=dim) * scale  # this video's ambient scene
        values = distractor + self.config.noise * rng.normal(size=(len(present), dim)) * scale
        if prototype is not None:
            values[present] += prototype
        return values

    def video(self, rng, labels, class_index):
        """Features of one video whose segments follow `labels`.

        Args:
            rng: a numpy Generator.
            labels: int [T] segment labels.
            class_index: the video's class id (constants.NO_CATEGORY: no event).
        Returns:
            (audio float32 [T, A], visual float32 [T, V] or [T, S, S, V] for maps of side S).
        """
        audible, visible = modality_presence(rng, labels, class_index)
        audio_prototype = self.audio_prototypes[class_index] if class_index >= 0 else None
        visual_prototype = self.visual_prototypes[class_index] if class_index >= 0 else None
        audio = self._observations(rng, audible, audio_prototype, self.config.audio_dim)
        visual = self._observations(rng, visible, visual_prototype, self.config.visual_dim)
        if self.config.visual_layout == constants.LAYOUT_MAP:
            visual = self._to_maps(rng, visual, visible)
        return audio.astype(np.float32), visual.astype(np.float32)

    def _to_maps(self, rng, vectors, visible):
        """Spread each segment over a map: the object fills a 2x2 block, clutter fills the rest."""
        size, channels = self.config.map_size, self.config.visual_dim
        scale = 1.0 / np.sqrt(channels)
        maps = self.config.noise * rng.normal(size=(len(vectors), size, size, channels)) * scale
        row, col = rng.integers(0, size - 1, size=2)  # the object stays put within a video
        for t, vector in enumerate(vectors):
            weight = 1.0 if visible[t] else 0.25
            maps[t, row : row + 2, col : col + 2] += weight * vector
        return maps


def select_rows(split_rows, count, rng):
    """A deterministic subset of a split's rows, spread over categories as the split is.

    Args:
        split_rows: list of Annotation of one split.
        count: how many to keep.
        rng: a numpy Generator.
    Returns:
        list of `count` rows in split order (all rows when count >= len(split_rows)).
    """
    if count >= len(split_rows):
        return list(split_rows)
    chosen = np.sort(rng.choice(len(split_rows), size=count, replace=False))
    return [split_rows[i] for i in chosen]


def generate_split(config, split, features=None):
    """The videos of one split of the synthetic data set, in order.

    Args:
        config: a SyntheticConfig.
        split: a split name of config.videos_per_split (the noisy split: all background).
        features: the SyntheticFeatures to draw from (default: made from config).
    Yields:
        (video_id, category, start, end, video_label, audio [T, A], visual [T, ...], labels [T]),
        the arguments of records.encode_video.
    """
    features = features or SyntheticFeatures(config)
    categories = constants.category_names()
    count = config.videos_per_split.get(split, 0)
    rng = np.random.default_rng(
        [config.seed, 2, constants.SPLITS.index(split) if split in constants.SPLITS else 9]
    )
    if split == constants.NOISY_SPLIT:
        for i in range(count):
            labels = np.full(constants.NUM_SEGMENTS, constants.BACKGROUND, dtype=np.int64)
            audio, visual = features.video(rng, labels, constants.NO_CATEGORY)
            yield (
                f"synthetic_noisy_{i:04d}",
                constants.NO_CATEGORY,
                0,
                0,
                constants.BACKGROUND,
                audio,
                visual,
                labels,
            )
        return
    rows = select_rows(annotations.packaged_annotations(f"{split}Set.txt"), count, rng)
    for row in rows:
        class_index = annotations.category_index(row, categories)
        labels = annotations.segment_labels(row, class_index)
        audio, visual = features.video(rng, labels, class_index)
        yield row.video_id, class_index, row.start, row.end, class_index, audio, visual, labels


def write_dataset(output_dir, config, verbose=True):
    """Write the synthetic data set for `config` to `output_dir`, all or nothing.

    Args:
        output_dir: the data directory to write (replaced when it holds an earlier data set).
        config: a SyntheticConfig (sizes, layout, videos per split, seed).
        verbose: print progress.
    Returns:
        the DatasetInfo written (dataset_info.json; normalization.json is written too).
    Raises:
        errors.UserError: naming the config field, for sizes below 2 or empty splits.
    """
    if not (np.isfinite(config.noise) and config.noise > 0):
        raise argument_error("noise", "a finite number > 0", config.noise)
    for name, value in (
        ("audio_dim", config.audio_dim),
        ("visual_dim", config.visual_dim),
        ("map_size", config.map_size),
    ):
        if value < 2:
            raise argument_error(name, "an integer >= 2", value)
    for split, count in config.videos_per_split.items():
        if count < 0 or (split != constants.NOISY_SPLIT and count == 0):
            raise argument_error(f"{split}_videos", "a positive count", count)
    features = SyntheticFeatures(config)
    started = time.time()
    with fileio.staged_directory(output_dir, marker=constants.DATASET_INFO_FILE) as staging:
        splits = {}
        for split, count in config.videos_per_split.items():
            if count == 0:
                continue
            bar = progress.bar(count, 1 if verbose else 0, "video")
            with shards.ShardWriter(staging, split, shards.shard_count(count, 128)) as writer:
                for video in generate_split(config, split, features):
                    writer.write(records.encode_video(*video))
                    bar.add(1)
            splits[split] = {"videos": writer.written, "shards": writer.names}
        info = dataset_info.DatasetInfo(
            audio_dim=config.audio_dim,
            visual_shape=config.visual_shape,
            num_segments=constants.NUM_SEGMENTS,
            class_names=constants.class_names(),
            splits=splits,
            sources=[
                {
                    "file": "avsdn_tf/resources/Annotations.txt (real AVE event structure)",
                    "md5": None,
                }
            ],
            generator=f"synthesize seed={config.seed}"
            + (f" noise={config.noise:g}" if config.noise != NOISE else ""),
        )
        dataset_info.write(staging, info)
        normalization.write_statistics(staging)
    if verbose:
        counts = ", ".join(f"{s}: {v['videos']}" for s, v in splits.items())
        print(f"wrote {output_dir} ({counts}) in {time.time() - started:.1f}s")
    return info


def ensure_default_dataset(path=constants.DEFAULT_SYNTHETIC_DIR):
    """The built-in data set that `python -m avsdn_tf.train` uses with no --data_dir; made once.

    Args:
        path: where it lives (~ expanded).
    Returns:
        the path, after writing the data set there if it was absent.
    """
    path = os.path.expanduser(path)
    if not tf.io.gfile.exists(os.path.join(path, constants.DATASET_INFO_FILE)):
        print(f"making the built-in synthetic data set in {path} (first use only)")
        write_dataset(path, SyntheticConfig())
    return path
