"""dataset_info.json: what a data directory holds, so readers never guess dims or layouts."""

import dataclasses
import hashlib
import os

import tensorflow as tf

from avsdn_tf import constants, fileio
from avsdn_tf.errors import UserError, input_error


@dataclasses.dataclass
class DatasetInfo:
    audio_dim: int
    visual_shape: list  # per segment: [D] for vectors, [H, W, C] for maps
    num_segments: int | None  # None when videos differ in length (own videos)
    class_names: list
    splits: dict  # name -> {"videos": int, "shards": [file names]}
    sources: list = dataclasses.field(default_factory=list)  # [{"file", "md5"}]
    generator: str = ""

    @property
    def visual_layout(self):
        return constants.LAYOUT_MAP if len(self.visual_shape) == 3 else constants.LAYOUT_VECTOR

    def shard_paths(self, data_dir, split):
        """The shard files of a split.

        Args:
            data_dir: the directory this info was read from.
            split: a split name.
        Returns:
            list of shard paths, in the order dataset_info.json lists them.
        Raises:
            errors.UserError: naming dataset_info.json when the data has no such split.
        """
        if split not in self.splits:
            raise input_error(
                os.path.join(data_dir, constants.DATASET_INFO_FILE),
                f"a split named {split!r}",
                f"splits {sorted(self.splits)}",
            )
        return [os.path.join(data_dir, name) for name in self.splits[split]["shards"]]

    def to_json(self):
        value = dataclasses.asdict(self)
        value["visual_layout"] = self.visual_layout
        return value


def write(data_dir, info):
    """Write `info` as dataset_info.json in `data_dir`, atomically.

    Args:
        data_dir: the data directory (local or a URL).
        info: a DatasetInfo.
    """
    fileio.write_json(os.path.join(data_dir, constants.DATASET_INFO_FILE), info.to_json())


def read(data_dir):
    """The DatasetInfo of a data directory.

    Args:
        data_dir: a data directory (local or a URL).
    Returns:
        DatasetInfo (dims, splits with their shards, class names, sources).
    Raises:
        errors.UserError: naming the directory or its dataset_info.json when absent or malformed.
    """
    path = os.path.join(data_dir, constants.DATASET_INFO_FILE)
    if not tf.io.gfile.exists(data_dir):
        raise UserError(f"{data_dir}: data directory not found")
    if not tf.io.gfile.exists(path):
        raise input_error(
            path, "the dataset_info.json that prepare, synthesize or extract write", "no such file"
        )
    try:
        value = fileio.read_json(path)
        value.pop("visual_layout", None)
        return DatasetInfo(**value)
    except (ValueError, TypeError) as error:
        raise input_error(
            path, "a dataset_info.json object", f"{type(error).__name__}: {error}"
        ) from None


def md5_of(path, chunk_bytes=1 << 24):
    """The MD5 of a file, read in chunks (for the sources recorded in dataset_info.json).

    Args:
        path: a file (local or a URL).
        chunk_bytes: bytes read at a time.
    Returns:
        str: the hex digest.
    """
    digest = hashlib.md5()
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
