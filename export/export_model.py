"""`python -m export.export_model --model_dir RUN --export_base SERVING/avsdn [--version N]`.

Writes SERVING/avsdn/N/, a SavedModel that TF Serving picks up (N: one more than the highest
existing version when --version is not given). The export validates itself before it becomes
visible:

1. the trained model is rebuilt for any time length (num_segments=None, LSTMs not unrolled), its
   weights copied, and its outputs compared with the trained model's on a batch of real videos;
2. the SavedModel (signatures in export/signatures.py; the model normalises inside), the TF
   Serving warmup records and batching_params.pbtxt are written under a temporary, non-numeric
   name inside --export_base (TF Serving only loads numeric directories);
3. a fresh Python process loads it with tf.saved_model.load and compares both signatures with the
   Keras model, at the training length and at another length, and replays the warmup records;
4. only then is the directory renamed to its version number. Any failure removes the temporary
   directory; existing versions are never touched.

export_cross_modal(model, export_base, ...) does the same for an AVDLN model's cross-modality
localization signature (export/cross_modal.py); the command calls it for a run of --model
avdln, verifying on the run's val_match videos.

The whole export holds the lock EXPORT_BASE/.lock (avsdn_tf/locks.py): a second export into the
same base is refused (--wait waits for it), and the temporary directories of killed exports are
removed once the lock is held.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

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
import numpy as np
import tensorflow as tf
from absl import flags

from avsdn_tf import cli, constants, dataset_info, fileio, locks, records
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import layers
from avsdn_tf.models.avdln import task as avdln_task
from avsdn_tf.models.registry import load_run
from avsdn_tf.runs import RunDir

from . import cross_modal, signatures, warmup

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
REFERENCE_SPLITS = ("val", "test", "train")


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


class Run:
    """What an export needs from a training run: the loaded run, its features, and its data.

    The run directory alone is enough: the model carries its normalisation. The data directory
    (--data_dir, default the run's) only supplies real records to verify the export on; without
    it, videos drawn from the model's own normalisation statistics are used.
    """

    def __init__(self, model_dir, checkpoint="best", data_dir=None):
        self.loaded = load_run(model_dir, checkpoint)
        self.model_dir, self.hp, self.model = model_dir, self.loaded.hp, self.loaded.model
        self.checkpoint = self.loaded.checkpoint
        self.audio_dim, self.visual_shape = self.loaded.audio_dim, self.loaded.visual_shape
        self.num_segments = self.loaded.num_segments
        self.spec = signatures.FeatureSpec.of(
            self.audio_dim,
            self.visual_shape,
            self.loaded.class_names,
            source=f"{RunDir(model_dir).config} field class_names",
        )
        self.data_dir = data_dir or self.loaded.data_dir
        has_records = bool(self.data_dir) and tf.io.gfile.exists(
            os.path.join(self.data_dir, constants.DATASET_INFO_FILE)
        )
        if data_dir and not has_records:
            raise input_error(
                data_dir, f"a data directory with {constants.DATASET_INFO_FILE}", "none"
            )
        self.info = (
            self.loaded.check_data(dataset_info.read(self.data_dir), self.data_dir)
            if has_records
            else None
        )


def _real_videos(info, data_dir, audio_dim, visual_shape, count, splits=REFERENCE_SPLITS):
    """Up to `count` records of one length from a run's data, with their features.

    Args:
        info: the data directory's DatasetInfo, or None (no records).
        data_dir: the data directory. audio_dim, visual_shape: the run's features.
        count: videos wanted.
        splits: the splits tried, in order (the first with videos is read).
    Returns:
        [(serialized record, decoded video dict)] of one length, or None without records.
    """
    if info is None:
        return None
    for split in splits:
        if split not in info.splits or not info.splits[split]["videos"]:
            continue
        by_length = {}
        files = info.shard_paths(data_dir, split)
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


def _random_videos(run, count, rng):
    """Videos drawn from the model's normalisation statistics, when the run's records are not at
    hand."""
    statistics = run.loaded.statistics()
    length = run.num_segments or constants.NUM_SEGMENTS
    videos = []
    for i in range(count):
        audio = statistics["audio_mean"] + statistics["audio_std"] * rng.standard_normal(
            (length, run.audio_dim)
        )
        visual = statistics["visual_mean"] + statistics["visual_std"] * rng.standard_normal(
            (length, *run.visual_shape)
        )
        labels = np.full(length, constants.BACKGROUND)
        serialized = records.encode_video(
            f"random_{i}", constants.NO_CATEGORY, 0, 0, constants.BACKGROUND, audio, visual, labels
        )
        videos.append(
            (serialized, records.decode_video(serialized, run.audio_dim, run.visual_shape))
        )
    return videos


def _other_length(length):
    return length - 3 if length > 3 else length + 2


def _resize_time(array, length):
    """Crop, or tile and crop, the time axis (axis 1) to `length`."""
    repeats = -(-length // array.shape[1])
    return np.concatenate([array] * repeats, axis=1)[:, :length]


def reference_cases(run, serving_model, count, seed=0):
    """Batches with the outputs the SavedModel must reproduce, and the video ids they carry.

    "trained_length": real records at the length the model was trained on, expected outputs from
    the trained Keras model itself; "other_length": the same videos cut (or tiled) to another
    length, expected outputs from the variable-length Keras model (checked against the trained
    one on the first case).

    Args:
        run: the Run being exported (its records, or without them videos drawn from its
            normalisation statistics).
        serving_model: the variable-length rebuild of run's per-segment model.
        count: B, videos per batch (fewer when the data has fewer of one length).
        seed: the seed of the drawn videos, when there are no records.
    Returns:
        (cases, difference): cases {"trained_length", "other_length"} -> dict with audio float32
        [B, T, A], visual float32 [B, T, *visual_shape], examples (B serialized records), ids
        (B video ids) and expected float32 [B, T, K] segment_probs (T = the trained length, then
        T - 3, or T + 2 when T <= 3); difference the largest |rebuild - trained| probability.
    Raises:
        errors.UserError: when the records' length differs from the model's fixed input length,
            or the rebuild differs from the trained model by more than MATCH_TOLERANCE.
    """
    videos = _real_videos(
        run.info, run.data_dir, run.audio_dim, run.visual_shape, count
    ) or _random_videos(run, count, np.random.default_rng(seed))
    ids = [video[records.VIDEO_ID].decode("utf-8", "replace") for _, video in videos]
    audio = np.stack([video[records.AUDIO] for _, video in videos]).astype(np.float32)
    visual = np.stack([video[records.VISUAL] for _, video in videos]).astype(np.float32)
    trained_input_length = run.model.inputs[0].shape[1]
    if trained_input_length not in (None, audio.shape[1]):
        raise input_error(
            f"{run.data_dir} records",
            f"videos of {trained_input_length} segments like the model's input",
            f"{audio.shape[1]} segments",
        )
    expected = signatures.keras_predict(run.loaded.segment_model, audio, visual)
    rebuilt = signatures.keras_predict(serving_model, audio, visual)
    difference = float(np.abs(expected - rebuilt).max())
    if difference > signatures.MATCH_TOLERANCE:
        raise UserError(
            f"the variable-length rebuild of {run.checkpoint} differs from it by {difference:.2e} "
            f"(tolerance {signatures.MATCH_TOLERANCE:.0e}); not exporting"
        )
    length = _other_length(audio.shape[1])
    short_audio, short_visual = _resize_time(audio, length), _resize_time(visual, length)
    short_examples = [
        records.encode_video(
            video_id,
            constants.NO_CATEGORY,
            0,
            0,
            constants.BACKGROUND,
            a,
            v,
            np.full(length, constants.BACKGROUND),
        )
        for video_id, a, v in zip(ids, short_audio, short_visual)
    ]
    cases = {
        "trained_length": dict(
            audio=audio, visual=visual, examples=[s for s, _ in videos], ids=ids, expected=expected
        ),
        "other_length": dict(
            audio=short_audio,
            visual=short_visual,
            examples=short_examples,
            ids=ids,
            expected=signatures.keras_predict(serving_model, short_audio, short_visual),
        ),
    }
    return cases, difference


def write_reference(directory, cases, class_names):
    """The cases as files a fresh process reads: one .npz and one TFRecord of examples per case.

    Args:
        directory: an existing local directory.
        cases: reference_cases()'s cases.
        class_names: the K class names the SavedModel serves.
    Returns:
        None; writes <case>.npz (audio, visual, expected), <case>.tfrecord and reference.json
        (ids per case, class_names, tolerance).
    """
    for name, case in cases.items():
        np.savez(
            os.path.join(directory, f"{name}.npz"),
            audio=case["audio"],
            visual=case["visual"],
            expected=case["expected"],
        )
        with tf.io.TFRecordWriter(os.path.join(directory, f"{name}.tfrecord")) as writer:
            for serialized in case["examples"]:
                writer.write(serialized)
    fileio.write_json(
        os.path.join(directory, "reference.json"),
        {
            "cases": {name: {"ids": case["ids"]} for name, case in cases.items()},
            "class_names": class_names,
            "tolerance": signatures.MATCH_TOLERANCE,
        },
    )


def warmup_requests(model_name, cases):
    """Real requests for TF Serving to replay at load: batch 1 and a few videos, both signatures.

    Args:
        model_name: the model name TF Serving serves the export under.
        cases: reference_cases()'s cases (the "trained_length" one is used).
    Returns:
        list of 3 PredictRequests: serving_default with audio [1, T, A] and visual
        [1, T, *visual_shape], the same with min(4, B) videos, predict_examples with one record.
    """
    case = cases["trained_length"]
    several = min(4, len(case["ids"]))
    return [
        warmup.predict_request(
            model_name,
            signatures.SERVING_DEFAULT,
            {signatures.AUDIO: case["audio"][:1], signatures.VISUAL: case["visual"][:1]},
        ),
        warmup.predict_request(
            model_name,
            signatures.SERVING_DEFAULT,
            {
                signatures.AUDIO: case["audio"][:several],
                signatures.VISUAL: case["visual"][:several],
            },
        ),
        warmup.predict_request(
            model_name,
            signatures.PREDICT_EXAMPLES,
            {signatures.EXAMPLES: np.array(case["examples"][:1], dtype=object)},
        ),
    ]


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
    """Export, verify and publish one version; returns the version directory.

    The whole export holds the lock of `export_base` (locks.directory_lock: EXPORT_BASE/.lock,
    which TF Serving ignores like every non-numeric name; none on gs:// or s3://), so two
    exports never pick the same version; once it is held, the TEMPORARY_PREFIX directories of
    killed exports are removed.

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
    config = RunDir(model_dir).read_config() or {}
    if config.get("hparams", {}).get("model") == avdln_task.NAME:
        loaded = load_run(model_dir, checkpoint)
        return export_cross_modal(
            loaded.model,
            export_base,
            version,
            features=_cross_modal_features(loaded, data_dir, verify_videos, verbose),
            verify_videos=verify_videos,
            verbose=verbose,
            wait=wait,
        )
    started = time.time()
    say = print if verbose else (lambda *args, **kwargs: None)
    _check_counts(version, verify_videos)
    export_base = export_base.rstrip("/")
    stale = (f"{TEMPORARY_PREFIX}*",)
    with locks.directory_lock(export_base, "`export_base`", wait=wait, stale=stale):
        final, version, report = _export_locked(
            Run(model_dir, checkpoint, data_dir), export_base, version, verify_videos, say
        )
    say(f"verified {', '.join(report['checked'])}; max |difference| {report['max_difference']:.1e}")
    say(f"exported version {version} to {final} in {time.time() - started:.1f}s")
    return final


def _cross_modal_features(loaded, data_dir, count, verbose):
    """Real features of an avdln run's data to verify its export on, as the signature takes them.

    Args:
        loaded: the run (runs.load_run) of a cross-modality model.
        data_dir: the data directory given, or None for the run's.
        count: videos wanted.
        verbose: say where the features come from.
    Returns:
        (audio [N, T, A], visual [N, T, V]) float32 from the run's val split (then test, train),
        visual maps averaged over space as the model does; None when the run's data directory is
        gone (random features are used then).
    Raises:
        errors.UserError: when `data_dir` is given but holds no data set, or its dims differ.
    """
    source = data_dir or loaded.data_dir
    if not source or not tf.io.gfile.exists(os.path.join(source, constants.DATASET_INFO_FILE)):
        if data_dir:
            raise input_error(
                data_dir, f"a data directory with {constants.DATASET_INFO_FILE}", "none"
            )
        if verbose:
            print(f"no data directory at {source}: verifying on random features")
        return None
    splits = [loaded.task.splits[name] for name in ("val", "test", "train")]
    videos = _real_videos(
        loaded.check_data(dataset_info.read(source), source),
        source,
        loaded.audio_dim,
        loaded.visual_shape,
        count,
        splits,
    )
    if not videos:
        return None
    audio = np.stack([video[records.AUDIO] for _, video in videos]).astype(np.float32)
    visual = np.stack([video[records.VISUAL] for _, video in videos]).astype(np.float32)
    if visual.ndim == 5:  # maps: the signature takes the vectors the model pools them into
        visual = np.asarray(layers.SpatialAveragePooling()(visual))
    return audio, visual


def _check_counts(version, verify_videos):
    """Refuse a version below 1 and verify_videos below 1 (export's and export_cross_modal's).

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


def _export_locked(run, export_base, version, verify_videos, say):
    """export()'s work once the lock of `export_base` is held.

    Args:
        run: the Run being exported.
        export_base, version, verify_videos: export()'s.
        say: print, or a function that prints nothing.
    Returns:
        (final, version, report): the version directory, its number and the verification report.
    """
    _refuse_taken_version(export_base, version)
    serving_model = run.loaded.variable_length_model
    cases, rebuild_difference = reference_cases(run, serving_model, verify_videos)
    say(
        f"rebuilt {run.hp.model} for any number of segments; max |difference| from"
        f" {run.checkpoint}: {rebuild_difference:.1e}"
    )

    model_name = os.path.basename(export_base) or "avsdn"

    def write_version(staging):
        signatures.ServingGraph(serving_model, run.spec).write(staging)
        warmup.write(warmup.warmup_path(staging), warmup_requests(model_name, cases))

    info = {
        "model": run.hp.model,
        "supervision": run.hp.supervision,
        "run": run.model_dir,
        "checkpoint": run.checkpoint,
        "data_dir": run.data_dir,
        "audio_dim": run.audio_dim,
        "visual_shape": run.visual_shape,
        "trained_num_segments": run.num_segments,
        "class_names": run.spec.class_names,
        "signatures": {
            signatures.SERVING_DEFAULT: list(signatures.OUTPUTS),
            signatures.PREDICT_EXAMPLES: list(signatures.EXAMPLE_OUTPUTS),
        },
        "rebuild_max_difference": rebuild_difference,
    }
    return _write_verify_publish(
        export_base,
        version,
        write_version,
        lambda directory: write_reference(directory, cases, run.spec.class_names),
        info,
        say,
    )


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
        with fileio.writing(final):
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


def export_cross_modal(
    model,
    export_base,
    version=None,
    features=None,
    verify_videos=8,
    verbose=True,
    wait=False,
):
    """Export, verify and publish one version of an AVDLN model's cross-modality signature.

    The SavedModel (export/cross_modal.py: `cross_modal`, also as `serving_default`: audio,
    visual, query_mask, direction -> start, scores, for any number of segments) is written and
    checked like export(): under the lock of `export_base`, in a temporary directory, verified in
    a fresh process against the Keras model on reference cases at 10 and 7 segments
    (export.verify.verify_cross_modal), then renamed to its version.

    Args:
        model: an AVDLN Keras model (avsdn_tf.models.avdln.build_avdln; a fixed-length one is
            rebuilt for any length).
        export_base: the model base path TF Serving watches, e.g. SERVING/avdln.
        version: the version number, >= 1 and not taken yet; None: next_version.
        features: optional (audio [N, T, A], visual [N, T, V]) real features to verify on;
            None: random features.
        verify_videos: videos per verification case, >= 1.
        verbose: print progress.
        wait: wait for another process holding the lock of `export_base` instead of refusing.
    Returns:
        str, export_base/version.
    Raises:
        errors.UserError: for a bad or existing version, verify_videos < 1, a model that is not
            an AVDLN, an export base another live process holds, a write that fails, an export
            that fails verification, or a publish that fails.
    """
    started = time.time()
    say = print if verbose else (lambda *args, **kwargs: None)
    _check_counts(version, verify_videos)
    graph = cross_modal.CrossModalGraph(model)
    export_base = export_base.rstrip("/")
    stale = (f"{TEMPORARY_PREFIX}*",)
    with locks.directory_lock(export_base, "`export_base`", wait=wait, stale=stale):
        _refuse_taken_version(export_base, version)
        cases = cross_modal.reference_cases(graph.model, verify_videos, features=features)
        model_name = os.path.basename(export_base) or "avdln"

        def write_version(staging):
            graph.write(staging)
            requests = cross_modal.warmup_requests(model_name, cases)
            warmup.write(warmup.warmup_path(staging), requests)

        info = {
            "model": "avdln",
            "task": "cross-modality localization (A2V / V2A)",
            "audio_dim": graph.audio_dim,
            "visual_dim": graph.visual_dim,
            "signatures": {name: list(cross_modal.OUTPUTS) for name in cross_modal.SIGNATURES},
        }
        final, version, report = _write_verify_publish(
            export_base,
            version,
            write_version,
            lambda directory: cross_modal.write_reference(directory, cases),
            info,
            say,
        )
    say(f"verified {', '.join(report['checked'])}; max |difference| {report['max_difference']:.1e}")
    say(f"exported version {version} to {final} in {time.time() - started:.1f}s")
    return final


def define_flags():
    """The command's flags; defined when run as a command, so importing the module from other
    code (tests, other commands with flags of the same names) does not register them."""
    cli.define("model_dir", "checkpoint")
    flags.DEFINE_string(
        "export_base",
        None,
        "Model base path TF Serving watches, e.g. SERVING/avsdn; "
        "the export goes to EXPORT_BASE/VERSION.",
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
            "If another process exports into --export_base, wait for it to end instead of "
            "refusing (the lock is --export_base/.lock; none on gs:// or s3://)."
        )
    )


def main(argv):
    """The command: export() with the flags (define_flags).

    Args:
        argv: the command line left after absl's flags (unused).
    Returns:
        None.
    Raises:
        errors.UserError: when --model_dir or --export_base is missing, or export() raises one.
    """
    del argv
    tf.get_logger().setLevel(
        "ERROR"
    )  # SavedModel writing logs every asset and renamed input at INFO
    export(
        FLAGS.model_dir,
        FLAGS.export_base,
        FLAGS.version,
        FLAGS.checkpoint,
        FLAGS.data_dir,
        FLAGS.verify_videos,
        wait=FLAGS.wait,
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main, required=("model_dir", "export_base"))
