"""The data directory, a contract every layer shares: dataset_info.json (what the directory
holds, so readers never guess dims or layouts), `DataDir` (a directory read once: its info and
shard lists), and `naming_bad_shard` (a read error names the shard behind it; TensorFlow's names
only an offset). Writing data directories is the data layer's (avsdn_tf/data/).
"""

import dataclasses
import hashlib
import json
import os
import re

import tensorflow as tf

from avsdn_tf import constants, fileio
from avsdn_tf.errors import UserError, drop_tracebacks, input_error

# What TensorFlow's TFRecord reader says about a damaged record: "corrupted record at 15688",
# "truncated record at 19610' failed with Read less bytes than requested".
_DAMAGED_RECORD = re.compile(r"(corrupted|truncated) record at (\d+)")
REMAKE = "make the data directory again with prepare, synthesize or extract"
# The errors of a tf.data read that naming_bad_shard explains.
READ_ERRORS = (tf.errors.DataLossError, tf.errors.NotFoundError, tf.errors.PermissionDeniedError)


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

    def __post_init__(self):
        self._counted = set()  # (data_dir, split) whose records check_record_count has counted

    def shard_paths(self, data_dir, split):
        """The shard files of a split, their records counted against the split's count the
        first time (check_record_count): every reader of a data directory asks here.

        Args:
            data_dir: the directory this info was read from.
            split: a split name.
        Returns:
            list of shard paths, in the order dataset_info.json lists them.
        Raises:
            errors.UserError: naming dataset_info.json when the data has no such split; naming
                the split, both counts and the shards when they hold another number of records;
                naming the shard when one is missing or ends inside a record.
        """
        if split not in self.splits:
            raise input_error(
                os.path.join(data_dir, constants.DATASET_INFO_FILE),
                f"a split named {split!r}",
                f"splits {sorted(self.splits)}",
            )
        paths = [os.path.join(data_dir, name) for name in self.splits[split]["shards"]]
        if (data_dir, split) not in self._counted:
            check_record_count(data_dir, split, self.splits[split]["videos"], paths)
            self._counted.add((data_dir, split))
        return paths

    def to_json(self):
        value = dataclasses.asdict(self)
        value["visual_layout"] = self.visual_layout
        return value

    def signature(self):
        """What identifies this data, wherever its directory is: what a run records of the data it
        was trained on, so a resumed run is refused other data.

        Returns:
            {"audio_dim": A, "visual_shape": [V] or [H, W, C], "num_segments": T or None,
            "videos": {split: count}, "info_md5": the MD5 of dataset_info.json's content (its
            splits, shards, class names, sources and generator), written canonically}.
        """
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return {
            "audio_dim": self.audio_dim,
            "visual_shape": list(self.visual_shape),
            "num_segments": self.num_segments,
            "videos": {name: split["videos"] for name, split in sorted(self.splits.items())},
            "info_md5": hashlib.md5(canonical.encode("utf-8")).hexdigest(),
        }


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


class DataDir:
    """A data directory read once: its path and DatasetInfo, and the shards of each split.

    Commands open the directory once (`DataDir.open`) and hand this value to everything that
    reads it, so dataset_info.json is read one time per command (one GET on object storage).

    Attributes:
        path: the directory (local or a storage URL).
        info: its DatasetInfo.
    """

    def __init__(self, path, info):
        self.path, self.info = path, info

    @classmethod
    def open(cls, path):
        """Read `path`'s dataset_info.json (read()).

        Args:
            path: a data directory.
        Returns:
            DataDir.
        Raises:
            errors.UserError: as read().
        """
        return cls(path, read(path))

    @classmethod
    def of(cls, data):
        """`data` itself when it is a DataDir, else the directory `data` names, opened.

        For library entry points that programs also call with a path; commands open the
        directory once and pass the DataDir down.

        Args:
            data: a DataDir, or a data directory's path (local or a URL).
        Returns:
            DataDir.
        Raises:
            errors.UserError: as read(), for a path.
        """
        return data if isinstance(data, cls) else cls.open(data)

    def shards(self, split):
        """The shard files of a split, in the order dataset_info.json lists them.

        Args:
            split: a split name.
        Returns:
            list of paths.
        Raises:
            errors.UserError: naming dataset_info.json when the data has no such split.
        """
        return self.info.shard_paths(self.path, split)

    @property
    def info_file(self):
        """The path of its dataset_info.json (what messages name)."""
        return os.path.join(self.path, constants.DATASET_INFO_FILE)


# A TFRecord: uint64 length, uint32 masked CRC-32C of the length, the data, uint32 masked CRC-32C
# of the data.
_RECORD_HEADER_BYTES, _RECORD_FRAME_BYTES = 12, 16


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def _masked_crc32c(data):
    """TFRecord's masked CRC-32C (Castagnoli) of a few bytes."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    crc ^= 0xFFFFFFFF
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _length_at(handle, offset, size):
    """The data length of the record at `offset`, or None when its header is damaged or the
    record runs past the end of the file."""
    handle.seek(offset)
    header = handle.read(_RECORD_HEADER_BYTES)
    if len(header) < _RECORD_HEADER_BYTES:
        return None
    if _masked_crc32c(header[:8]) != int.from_bytes(header[8:], "little"):
        return None
    length = int.from_bytes(header[:8], "little")
    return length if offset + _RECORD_FRAME_BYTES + length <= size else None


def count_records(path):
    """The records of a TFRecord file, counted from their length headers alone.

    12 bytes are read per record (its length, checked by its CRC) and the data skipped: a shard
    of 256 records of 1 MB counts in about 0.04 s, against 0.26 s to read it through tf.data, so
    every reader can afford it.

    Args:
        path: a TFRecord file (local path or storage URL).
    Returns:
        int, the number of records.
    Raises:
        errors.UserError: naming the file when it is missing, cut inside a record, or a record's
            header is damaged (the damage as read_error words it).
    """
    if not tf.io.gfile.exists(path):
        raise input_error(path, "a shard listed in dataset_info.json", "no such file")
    count, offset = 0, 0
    with tf.io.gfile.GFile(path, "rb") as handle:
        size = handle.size()
        while offset < size:
            length = _length_at(handle, offset, size)
            if length is None:
                damage = _damage_of(path) or f"a damaged record header at offset {offset}"
                raise input_error(path, "a readable TFRecord shard", f"{damage}; {REMAKE}")
            offset += _RECORD_FRAME_BYTES + length
            count += 1
    return count


def check_record_count(data_dir, split, expected, paths):
    """The records of a split's shards are as many as dataset_info.json says, or one message.

    Args:
        data_dir: the data directory. split: the split's name. expected: its "videos" count.
        paths: its shard files.
    Raises:
        errors.UserError: naming the split, both counts and the shards (each with its records)
            when they differ; or as count_records for a missing or cut shard.
    """
    counts = [count_records(path) for path in paths]
    if sum(counts) != expected:
        shards = ", ".join(
            f"{os.path.basename(path)} ({count})" for path, count in zip(paths, counts)
        )
        raise input_error(
            f"{os.path.join(data_dir, constants.DATASET_INFO_FILE)} split {split!r}",
            f"{expected} records, its count of videos",
            f"{sum(counts)} in its shards {shards}; {REMAKE}",
        )


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


def _damage_of(path):
    """What is wrong with one shard file, read again on its own; None when it reads whole.

    Args:
        path: a TFRecord file (local path or storage URL).
    Returns:
        None, or the "found" part of a message: a damaged record and its offset, no file, or
        TensorFlow's reason the file cannot be read.
    """
    try:
        tf.data.TFRecordDataset(path).reduce(0, lambda count, _: count + 1).numpy()
    except tf.errors.NotFoundError:
        return "no such file (it was removed during the run)"
    except tf.errors.DataLossError as error:
        damage = _DAMAGED_RECORD.search(error.message)
        if damage is None:
            return f"an unreadable file ({error.message.strip()})"
        size = tf.io.gfile.stat(path).length
        kind, offset = damage.groups()
        detail = ", the file cut short" if kind == "truncated" else ""
        return f"a {kind} record at offset {offset} of {size} bytes{detail}"
    except tf.errors.OpError as error:  # no permission to read it, an unreachable store, ...
        return f"an unreadable file ({error.message.strip()})"
    return None


def read_error(files, error):
    """The UserError for a TensorFlow read error met while reading `files`.

    TensorFlow's DataLossError names an offset but no file, so each shard is read again on its
    own, in order, until one fails; the file of a NotFoundError or PermissionDeniedError is
    looked for the same way.

    Args:
        files: the shard paths that were being read.
        error: one of READ_ERRORS.
    Returns:
        errors.UserError naming the bad shard, what was expected and what was found; or None
        for a NotFoundError or PermissionDeniedError about none of `files` (the error is
        someone else's).
    """
    for path in files:
        damage = _damage_of(path)
        if damage is not None:
            return input_error(path, "a readable TFRecord shard", f"{damage}; {REMAKE}")
    if not isinstance(error, tf.errors.DataLossError):
        return None
    where = os.path.dirname(files[0]) if files else "the data directory"
    return UserError(
        f"{where}: expected readable TFRecord shards, found a read error that no shard shows "
        f"when read again ({error.message.strip()}); check the storage, then {REMAKE}"
    )


class naming_bad_shard:  # noqa: N801  (used as a function: `with naming_bad_shard(files):`)
    """Turn a TFRecord read error inside the block into one UserError naming the shard.

    Wrap the loop (or model.fit) that iterates a tf.data pipeline over `files`: a shard
    corrupted, cut short or deleted while it runs ends in read_error's message.

    No UserError leaves the block with the frames inside it (errors.drop_tracebacks): they hold
    the block's tf.data iterator, which a kept error (pytest.raises, a notebook's last error)
    would keep alive until a garbage collection. That holds for the read error's UserError,
    which keeps the read error as its __context__, and for one raised inside the block by other
    code (a checkpoint save in one of fit's callbacks failing on a full disk).

    Args:
        files: the shard paths the block reads.
    Raises:
        errors.UserError: for a DataLossError, or a NotFoundError or PermissionDeniedError
            about one of `files`.
    """

    def __init__(self, files):
        self.files = list(files)

    def __enter__(self):
        return None

    def __exit__(self, kind, error, traceback):
        del kind, traceback  # this frame ends up in the UserError's traceback: hold nothing
        if isinstance(error, UserError):
            drop_tracebacks(error)
            return False
        if not isinstance(error, READ_ERRORS):
            return False
        user_error = read_error(self.files, error)
        if user_error is None:
            return False
        drop_tracebacks(error)  # TensorFlow's error chains the status error it came from
        raise user_error from None
