"""Convert the official AVE feature release to sharded TFRecords: python -m avsdn_tf.prepare.

    python -m avsdn_tf.prepare --ave_dir DIR --output_dir OUT

Reads the release as published and writes the data directory; the reader, its checks and the output
layout: avsdn_tf/data/ave_release.py and docs/data_format.md. While it runs, prepare holds the
lock OUT.lock beside OUT (avsdn_tf/locks.py; OUT itself is replaced whole): a second prepare of
OUT is refused (--wait waits), and the OUT.partial-* of a killed run are removed once it is held.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import glob
import os

import tensorflow as tf
from absl import app, flags

from avsdn_tf import cli, constants, fileio, locks
from avsdn_tf.data import ave_release


def define_flags(flag_values=flags.FLAGS):
    """The command's flags. Defined on demand (not at import), so importing this module next to
    other commands that also have an --output_dir never clashes in one process.

    Args:
        flag_values: the absl FlagValues to define them in.
    """
    flags.DEFINE_string(
        "ave_dir",
        None,
        "Directory of the AVE feature release (Annotations.txt, *.h5).",
        flag_values=flag_values,
    )
    cli.define(
        flag_values=flag_values,
        output_dir="Directory to write the TFRecords to (replaced when complete).",
    )
    flags.DEFINE_string(
        "visual_file",
        ave_release.VISUAL_FILE,
        "Visual features inside --ave_dir (or a path): maps (N, T, H, W, C) or vectors "
        "(N, T, D), e.g. visual_feature_vec.h5. Stored in the layout given, never pooled.",
        flag_values=flag_values,
    )
    flags.DEFINE_string(
        "noisy_visual_file",
        ave_release.NOISY_VISUAL_FILE,
        "Visual features of the background-only videos; must match --visual_file's layout.",
        flag_values=flag_values,
    )
    flags.DEFINE_bool(
        "include_noisy",
        True,
        "Write the background-only videos as the 'noisy' split when all three "
        "weak-supervision files are present.",
        flag_values=flag_values,
    )
    flags.DEFINE_enum(
        "label_source",
        "h5",
        ave_release.LABEL_SOURCES,
        "Segment labels stored in the records: the release's labels.h5, or rebuilt from "
        "Annotations.txt. Either way the two are cross-checked and disagreements reported.",
        flag_values=flag_values,
    )
    flags.DEFINE_integer(
        "chunk_videos",
        64,
        "Videos read from the h5 files at a time (bounds memory).",
        lower_bound=1,
        flag_values=flag_values,
    )
    cli.define(
        flag_values=flag_values,
        videos_per_shard="Target videos per TFRecord shard (at most 16 shards).",
        wait=(
            "If another process prepares --output_dir, wait for it to end instead of refusing "
            "(the lock is OUTPUT_DIR.lock beside it, since the directory is replaced whole; "
            "none on gs:// or s3://)."
        ),
    )


def _print_summary(summary):
    print(
        f"prepare: wrote {summary['output_dir']} ({summary['visual_layout']} visual features "
        f"{summary['visual_shape']}, labels from {summary['label_source']})"
    )
    for split, count in summary["videos"].items():
        print(f"  {split:11s} {count:6d} videos in {summary['shards'][split]} shards")
    check = summary["label_disagreements"]
    if check["checked"]:
        print(
            f"  labels.h5 vs Annotations.txt: {check['videos']} videos disagree on"
            f" {check['segments']} segments (listed in {check['file']})"
        )
    else:
        print("  labels.h5 vs Annotations.txt: not checked (no labels.h5)")
    duplicates = summary["duplicate_video_ids"]
    print(
        f"  repeated video ids: {duplicates['ids']} on {duplicates['rows']} rows (kept as separate"
        f" records); zero-length events: {len(summary['zero_length_events'])}; rows in no split:"
        f" {summary['rows_in_no_split']}"
    )
    print(f"  noisy: {summary['noisy']}")
    print(f"  {summary['seconds']:.1f} s, {summary['videos_per_second']} videos/s")


def main(argv, flag_values=None):
    """Run `python -m avsdn_tf.prepare` with the parsed flags.

    Args:
        argv: the command's non-flag arguments (none are taken).
        flag_values: the parsed FlagValues (default: absl's global flags).
    Returns:
        0 on success; a user mistake raises errors.UserError, shown by cli.run_main.
    """
    flag_values = flag_values or flags.FLAGS
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    output_dir = flag_values.output_dir
    with locks.directory_lock(
        output_dir,
        "`output_dir`",
        wait=flag_values.wait,
        beside=True,
        stale=stale_temporaries(output_dir),
    ):
        summary = ave_release.prepare(
            flag_values.ave_dir,
            output_dir,
            visual_file=flag_values.visual_file,
            noisy_visual_file=flag_values.noisy_visual_file,
            include_noisy=flag_values.include_noisy,
            label_source=flag_values.label_source,
            chunk_videos=flag_values.chunk_videos,
            videos_per_shard=flag_values.videos_per_shard,
        )
    _print_summary(summary)
    note = cross_modal_note(summary, flag_values.ave_dir)
    if note:
        print(note)
    return 0


def cross_modal_note(summary, ave_dir):
    """What the cross-modality splits hold as visual features, when they were written as maps.

    Args:
        summary: ave_release.prepare's summary.
        ave_dir: the release folder.
    Returns:
        str to print, or None when there are no match splits or the visual features are
        vectors already.
    """
    if summary["visual_layout"] != constants.LAYOUT_MAP or not any(
        split in ave_release.MATCH_FILES for split in summary["videos"]
    ):
        return None
    note = (
        "  cross-modality splits: visual maps stored; `--model avdln` averages them over space "
        "into the 512-d vectors it reads"
    )
    vectors = os.path.join(ave_dir, ave_release.VISUAL_VECTOR_FILE)
    if tf.io.gfile.exists(vectors):
        note += (
            f"; {vectors} (the authors' pooled vectors) is here: `--visual_file "
            f"{ave_release.VISUAL_VECTOR_FILE}` stores those instead"
        )
    return note


def stale_temporaries(output_dir):
    """What killed runs of prepare leave beside OUT, as patterns for locks.directory_lock.

    fileio.staged_directory builds OUT.partial-*; fileio.publish_directory moves the old OUT to
    OUT.old-* and removes it once the new OUT is in place. An OUT.old-* is stale only while OUT
    exists: a kill between the two renames leaves the old output there alone, and it is kept.

    Args:
        output_dir: the --output_dir.
    Returns:
        tuple of glob patterns relative to the directory holding OUT.
    """
    name = glob.escape(os.path.basename(output_dir.rstrip("/")))
    patterns = (f"{name}{fileio.STAGING_SUFFIX}*",)
    if os.path.isdir(output_dir):
        patterns += (f"{name}{fileio.RETIRED_SUFFIX}*",)
    return patterns


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("ave_dir", "output_dir"))
