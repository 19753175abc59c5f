"""`python -m export.export_model --model_dir RUN --output_dir SERVING/avsdn [--version N]`.

Writes SERVING/avsdn/N/, a SavedModel that TF Serving picks up (N: one more than the highest
existing version when --version is not given). The export validates itself before it becomes
visible:

1. the run's task says what is served (`task.serving(run)`: for a segment classifier the trained
   model rebuilt for any time length and checked against the trained one, behind
   serving_default and predict_examples, avsdn_tf/models/serving.py; for avdln the
   cross-modality localization signature, avsdn_tf/models/avdln/serving.py), and the reference
   cases it must reproduce, from real videos of the run's data;
2. the SavedModel, the TF Serving warmup records and batching_params.pbtxt are written under a
   temporary, non-numeric name inside --output_dir (TF Serving only loads numeric directories);
3. a fresh Python process (export/verify.py) loads it with tf.saved_model.load and checks it
   against the reference cases with the task's own check, then replays the warmup records;
4. only then is the directory renamed to its version number. Any failure removes the temporary
   directory; existing versions are never touched.

There is one path for every model (export_serving); nothing here depends on a model's name.

The whole export holds the lock OUTPUT_DIR/.lock (avsdn_tf/locks.py): a second export into the
same base is refused (--wait waits for it), and the temporary directories of killed exports are
removed once the lock is held.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import contextlib
import datetime
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

import keras
import tensorflow as tf
from absl import flags
from absl import logging as absl_logging

from avsdn_tf import cli, constants, dataset_info, fileio, locks, records
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import registry
from avsdn_tf.models import serving as segment_serving

from . import warmup

FLAGS = flags.FLAGS

EXPORT_DIR = os.path.dirname(os.path.abspath(__file__))
# The directory that holds this package's top-level package (`export` in a checkout, `avsdn_tf`
# installed): the repository, or site-packages. The verification child imports from there.
PACKAGE_ROOT = os.path.dirname(
    os.path.dirname(os.path.abspath(importlib.import_module(__package__.split(".")[0]).__file__))
)
BATCHING_TEMPLATE = os.path.join(EXPORT_DIR, "batching_parameters.txt")
MODELS_CONFIG_TEMPLATE = os.path.join(EXPORT_DIR, "models.config")
# TF Serving reads this file from the version directory with --enable_per_model_batching_parameters.
PER_MODEL_BATCHING_FILE = "batching_params.pbtxt"
EXPORT_INFO_FILE = "avsdn_export.json"  # in assets.extra, which TF Serving leaves alone
TEMPORARY_PREFIX = "tmp-export-"


def existing_versions(export_base):
    """Numeric subdirectories of export_base, the versions TF Serving would see, ascending.

    Args:
        export_base: the model base path TF Serving watches (local or a storage URL).
    Returns:
        sorted list of ints; [] when export_base does not exist.
    """
    if not tf.io.gfile.isdir(export_base):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(export_base)]
    return sorted(int(name) for name in names if name.isdigit())


def next_version(export_base):
    """The version a new export gets: one more than the highest existing one, or 1.

    Args:
        export_base: the model base path TF Serving watches.
    Returns:
        int >= 1.
    """
    versions = existing_versions(export_base)
    return versions[-1] + 1 if versions else 1


def _real_videos(data, audio_dim, visual_shape, count, splits):
    """Up to `count` records of one length from a data directory, with their features.

    Args:
        data: the data directory (dataset_info.DataDir). audio_dim, visual_shape: the run's.
        count: videos wanted.
        splits: the splits tried, in order (the first with videos is read).
    Returns:
        [(serialized record, decoded video dict)] of one length, or None when no split has
        videos.
    """
    for split in splits:
        if split not in data.info.splits or not data.info.splits[split]["videos"]:
            continue
        by_length = {}
        files = data.shards(split)
        with dataset_info.naming_bad_shard(files):
            for serialized in tf.data.TFRecordDataset(files).take(8 * count):
                serialized = serialized.numpy()
                video = records.decode_video(serialized, audio_dim, visual_shape)
                group = by_length.setdefault(len(video[records.AUDIO]), [])
                group.append((serialized, video))
                if len(group) == count:
                    break
        if by_length:
            return max(by_length.values(), key=len)
    return None


def verification_videos(run, data_dir, count, say):
    """Real records of a run's data to verify its export on (its task's val, test, train split).

    Args:
        run: the loaded run (registry.LoadedRun).
        data_dir: the data directory given, or None for the run's.
        count: videos wanted.
        say: print, or a function that prints nothing.
    Returns:
        [(serialized record, decoded video)] of one length, or None when the run's data directory
        is gone (the task's serving then draws videos of its own).
    Raises:
        errors.UserError: when `data_dir` is given but holds no data set, or its dims differ.
    """
    source = data_dir or run.data_dir
    if not source or not tf.io.gfile.exists(os.path.join(source, constants.DATASET_INFO_FILE)):
        if data_dir:
            raise input_error(
                data_dir, f"a data directory with {constants.DATASET_INFO_FILE}", "none"
            )
        say(f"no data directory at {source}: verifying on videos the model's serving draws")
        return None
    data = dataset_info.DataDir.open(source)
    run.check_data(data.info, source)
    splits = [run.task.splits[name] for name in ("val", "test", "train")]
    return _real_videos(data, run.audio_dim, run.visual_shape, count, splits)


def write_reference(serving, directory, cases, hp):
    """What the fresh process verifying an export reads: the serving's cases and reference.json.

    Args:
        serving: a task's serving object. directory: an existing local directory.
        cases: serving.cases()'s. hp: the served model's HParams (export.verify finds the
            model's check by them).
    Returns:
        None.
    """
    reference = serving.write_reference(directory, cases)
    reference.update(hparams=hp.to_dict(), batch_output=serving.batch_output)
    segment_serving.write_reference_file(directory, reference)


def verify_in_fresh_process(saved_model_dir, reference_dir):
    """Run export.verify in a new Python process; its JSON report, or a UserError with its reason.

    Args:
        saved_model_dir: the SavedModel to check (local or a storage URL).
        reference_dir: the directory write_reference filled.
    Returns:
        dict: checked (list of what was compared) and max_difference (float).
    Raises:
        errors.UserError: when the child exits non-zero (the last line of its stderr as reason).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # The child runs from the project root, so local paths must not be relative to our cwd.
    paths = [
        path if "://" in path else os.path.abspath(path)
        for path in (saved_model_dir, reference_dir)
    ]
    command = [sys.executable, "-m", f"{__package__}.verify", *paths]
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=PACKAGE_ROOT)
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {result.returncode}"
        raise UserError(f"verification of the SavedModel in a fresh process failed: {reason}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _copy(source, destination):
    with tf.io.gfile.GFile(source, "rb") as handle:
        data = handle.read()
    with tf.io.gfile.GFile(destination, "wb") as handle:
        handle.write(data)


def export(
    model_dir,
    export_base,
    version=None,
    checkpoint="best",
    data_dir=None,
    verify_videos=8,
    verbose=True,
    wait=False,
):
    """Export, verify and publish one version of a trained run; returns the version directory.

    What is served, what it is verified against and the warmup requests are the run's task's
    (`task.serving(run)`); this function is the one path every model takes: export_serving.

    Args:
        model_dir: the train run directory.
        export_base: the model base path TF Serving watches, e.g. SERVING/avsdn (its base name
            is the model name in the warmup requests).
        version: the version number, >= 1 and not taken yet; None: next_version.
        checkpoint: "best" (the best-on-val epoch) or "last".
        data_dir: the data directory whose records the export is verified on; None: the run's.
        verify_videos: videos per verification batch, >= 1.
        verbose: print progress.
        wait: when another process holds the lock of `export_base`, wait for it instead of
            refusing.
    Returns:
        str, export_base/version.
    Raises:
        errors.UserError: for a bad or existing version, verify_videos < 1, an export base
            another live process holds, a run or data_dir that cannot be used, a write that
            fails (full disk, read-only, no permission: the staging directory removed), an
            export that fails verification, or a publish that fails.
    """
    started = time.time()
    say = print if verbose else (lambda *args, **kwargs: None)
    _check_counts(version, verify_videos)
    export_base = export_base.rstrip("/")
    with _export_lock(export_base, wait):
        run = registry.load_run(model_dir, checkpoint)
        serving = run.task.serving(run)
        videos = verification_videos(run, data_dir, verify_videos, say)
        info = {
            "model": run.hp.model,
            "supervision": run.hp.supervision,
            "run": model_dir,
            "checkpoint": run.checkpoint,
            "data_dir": data_dir or run.data_dir,
            "audio_dim": run.audio_dim,
            "visual_shape": run.visual_shape,
        }
        publish = (export_base, run.hp, version, videos, verify_videos, info, say)
        return _publish(serving, *publish, started=started)


def _export_lock(export_base, wait):
    """The lock of an export base, its killed exports' temporaries swept once it is held."""
    stale = (f"{TEMPORARY_PREFIX}*",)
    return locks.directory_lock(export_base, "`export_base`", wait=wait, stale=stale)


def export_serving(
    serving,
    export_base,
    hp,
    version=None,
    videos=None,
    verify_videos=8,
    info=None,
    verbose=True,
    wait=False,
):
    """Write, verify in a fresh process and publish what a task serves.

    The whole export holds the lock of `export_base` (locks.directory_lock: EXPORT_BASE/.lock,
    which TF Serving ignores like every non-numeric name; none on gs:// or s3://), so two
    exports never pick the same version; once it is held, the TEMPORARY_PREFIX directories of
    killed exports are removed.

    Args:
        serving: a task's serving object (task.serving(run)): write, cases, warmup,
            write_reference, describe, outputs, batch_output.
        export_base: the model base path TF Serving watches.
        hp: the served model's HParams (the fresh process finds its task's check by them).
        version: the version number, >= 1 and not taken yet; None: next_version.
        videos: [(serialized record, decoded video)] to verify on, or None (the serving draws).
        verify_videos: videos per verification batch, >= 1.
        info: what avsdn_export.json records about the run (model, checkpoint, ...).
        verbose: print progress. wait: wait for another holder of the lock instead of refusing.
    Returns:
        str, export_base/version.
    Raises:
        errors.UserError: as export().
    """
    started = time.time()
    say = print if verbose else (lambda *args, **kwargs: None)
    _check_counts(version, verify_videos)
    export_base = export_base.rstrip("/")
    with _export_lock(export_base, wait):
        publish = (export_base, hp, version, videos, verify_videos, info, say)
        return _publish(serving, *publish, started=started)


def _publish(serving, export_base, hp, version, videos, verify_videos, info, say, started):
    """export_serving's work once the lock of `export_base` is held; the version directory."""
    _refuse_taken_version(export_base, version)
    cases, notes = serving.cases(videos, verify_videos)
    if "rebuild_max_difference" in notes:
        say(
            f"rebuilt {hp.model} for any number of segments; max |difference| from the "
            f"trained model: {notes['rebuild_max_difference']:.1e}"
        )
    model_name = os.path.basename(export_base) or hp.model

    def write_version(staging):
        serving.write(staging)
        calls = serving.warmup(cases)
        warmup.write(warmup.warmup_path(staging), warmup.predict_requests(model_name, calls))

    info = {**(info or {"model": hp.model}), **serving.describe()}
    info.update(signatures=serving.outputs, **notes)
    final, version, report = _write_verify_publish(
        export_base,
        version,
        write_version,
        lambda directory: write_reference(serving, directory, cases, hp),
        info,
        say,
    )
    say(f"verified {', '.join(report['checked'])}; max |difference| {report['max_difference']:.1e}")
    say(f"exported version {version} to {final} in {time.time() - started:.1f}s")
    return final


def _check_counts(version, verify_videos):
    """Refuse a version below 1 and verify_videos below 1 (every export's).

    Raises:
        errors.UserError: naming the argument.
    """
    if version is not None and version < 1:
        raise argument_error("version", "a positive integer", version)
    if verify_videos < 1:
        raise argument_error("verify_videos", "a positive integer", verify_videos)


def _refuse_taken_version(export_base, version):
    """Refuse a version that exists already (versions are never overwritten).

    Args:
        export_base: the model base path. version: the requested version, or None.
    Returns:
        None.
    Raises:
        errors.UserError: naming the version when export_base/version exists.
    """
    if version is not None and tf.io.gfile.exists(os.path.join(export_base, str(version))):
        raise argument_error(
            "version",
            "a version not yet in the export base (versions are never overwritten)",
            f"{os.path.join(export_base, str(version))} already exists",
            detail=str(version),
        )


@contextlib.contextmanager
def _saved_model_writing_quiet():
    """Within the block, TensorFlow's INFO lines (absl's and its logger's) are not shown, unless
    absl's --verbosity asked for debugging lines (1 or more); warnings and errors still are.

    tf.saved_model.save logs at INFO, unconditionally, the renaming of captured-variable inputs
    inside tf.cond to legal names ("Function `serve` contains input name(s) ... which will be
    renamed to ..."; names TensorFlow makes, not ours: the served signature's inputs keep theirs),
    the duration of its sharding callback and the fingerprint it writes: five lines nothing of
    which a user acts on.
    """
    if absl_logging.get_verbosity() >= absl_logging.DEBUG:
        yield
        return
    saved = absl_logging.get_verbosity(), tf.get_logger().level
    absl_logging.set_verbosity(absl_logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    try:
        yield
    finally:
        absl_logging.set_verbosity(saved[0])
        tf.get_logger().setLevel(saved[1])


def _write_verify_publish(export_base, version, write_version, write_reference_files, info, say):
    """Write a version under a temporary name, verify it in a fresh process, publish it.

    The one staging sequence of every export (the lock of `export_base` is held by the caller):
    write_version fills the staging directory (TEMPORARY_PREFIX..., inside export_base), a copy
    of the batching parameters joins it, write_reference_files fills a local temporary
    directory, export.verify checks the staging directory against it in a fresh process, the
    export info (assets.extra/avsdn_export.json) is written with the verification report, and
    the directory is renamed to its version. Any failure removes the staging directory; the
    reference directory is always removed.

    Args:
        export_base: the model base path TF Serving watches.
        version: the version number not yet taken, or None: next_version.
        write_version: function(staging directory) writing the SavedModel and its warmup records.
        write_reference_files: function(local directory) writing what export.verify reads.
        info: dict for avsdn_export.json; "verification", "exported_at" and "versions" are added.
        say: print, or a function that prints nothing.
    Returns:
        (final, version, report): the version directory, its number and the verification report.
    Raises:
        errors.UserError: for a write that fails (naming the version), a failed verification or
            a publish that fails.
    """
    version = version or next_version(export_base)
    final = os.path.join(export_base, str(version))
    fileio.make_directories(export_base)
    staging = os.path.join(export_base, f"{TEMPORARY_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    reference_dir = tempfile.mkdtemp(prefix="avsdn-export-check-")
    try:
        # A full disk, a read-only file system, ...: one message naming the version being
        # written (the staging directory is removed below).
        with fileio.writing(final), _saved_model_writing_quiet():
            write_version(staging)
            _copy(BATCHING_TEMPLATE, os.path.join(staging, PER_MODEL_BATCHING_FILE))
        with fileio.writing(reference_dir):
            write_reference_files(reference_dir)
        say(f"wrote the SavedModel to {staging}; verifying it in a fresh process")
        report = verify_in_fresh_process(staging, reference_dir)
        fileio.write_json(
            os.path.join(staging, warmup.ASSETS_EXTRA, EXPORT_INFO_FILE),
            {
                **info,
                "verification": report,
                "exported_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
            },
        )
        try:
            # On object stores saved_model.pb is copied last (see fileio.publish_directory).
            fileio.publish_directory(
                staging, final, marker=tf.saved_model.SAVED_MODEL_FILENAME_PB, replace=False
            )
        except tf.errors.OpError as error:
            raise UserError(
                f"{final}: could not publish the verified export ({error.message}); "
                "did another export take this version?"
            ) from None
    except BaseException:
        fileio.remove_tree(staging)
        raise
    finally:
        shutil.rmtree(reference_dir, ignore_errors=True)
    return final, version, report


def define_flags():
    """The command's flags; defined when run as a command, so importing the module from other
    code (tests, other commands with flags of the same names) does not register them."""
    cli.define(
        "model_dir",
        "checkpoint",
        output_dir=(
            "The model base path TF Serving watches, e.g. SERVING/avsdn; "
            "the export goes to OUTPUT_DIR/VERSION."
        ),
    )
    flags.DEFINE_integer(
        "version", None, "Version number; default: one more than the highest existing version."
    )
    cli.define(
        data_dir=(
            "Data directory whose records the export is verified on (the model carries its"
            " normalisation; without records, videos drawn from its statistics are used); default:"
            " the one recorded in the run's config.json."
        )
    )
    flags.DEFINE_integer("verify_videos", 8, "Videos in the batch the export is verified on.")
    cli.define(
        wait=(
            "If another process exports into --output_dir, wait for it to end instead of "
            "refusing (the lock is --output_dir/.lock; none on gs:// or s3://)."
        )
    )
    cli.rename_flags(export_base="output_dir")


def main(argv):
    """The command: export() with the flags (define_flags).

    Args:
        argv: the command line left after absl's flags (unused).
    Returns:
        None.
    Raises:
        errors.UserError: when --model_dir or --output_dir is missing, or export() raises one.
    """
    del argv
    export(
        FLAGS.model_dir,
        FLAGS.output_dir,
        FLAGS.version,
        FLAGS.checkpoint,
        FLAGS.data_dir,
        FLAGS.verify_videos,
        wait=FLAGS.wait,
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("model_dir", "output_dir"))
