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
        if split not in self.splits:
            raise input_error(os.path.join(data_dir, constants.DATASET_INFO_FILE),
                              f"a split named {split!r}", f"splits {sorted(self.splits)}")
        return [os.path.join(data_dir, name) for name in self.splits[split]["shards"]]

    def to_json(self):
        value = dataclasses.asdict(self)
        value["visual_layout"] = self.visual_layout
        return value


def write(data_dir, info):
    fileio.write_json(os.path.join(data_dir, constants.DATASET_INFO_FILE), info.to_json())


def read(data_dir):
    path = os.path.join(data_dir, constants.DATASET_INFO_FILE)
    if not tf.io.gfile.exists(data_dir):
        raise UserError(f"{data_dir}: data directory not found")
    if not tf.io.gfile.exists(path):
        raise input_error(path, "the dataset_info.json that prepare, synthesize or extract write",
                          "no such file")
    try:
        value = fileio.read_json(path)
        value.pop("visual_layout", None)
        return DatasetInfo(**value)
    except (ValueError, TypeError) as error:
        raise input_error(path, "a dataset_info.json object", f"{type(error).__name__}: {error}") from None


def md5_of(path, chunk_bytes=1 << 24):
    digest = hashlib.md5()
    with tf.io.gfile.GFile(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
