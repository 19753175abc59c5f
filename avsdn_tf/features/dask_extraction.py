"""Extraction on an existing dask.distributed cluster through Beam's DaskRunner:
extract --runner DaskRunner --dask_client_address tcp://HOST:PORT [--dask_npartitions N]
[--dask_connection_timeout S] (pip install 'avsdn-tf[beam]').

The driver (this process) checks that the scheduler answers within --dask_connection_timeout
seconds (default DEFAULT_CONNECTION_TIMEOUT) and has workers, cuts the videos into partitions
(default: one per video up to MAX_PARTITIONS, so every worker gets videos and a lost worker
costs only the videos it held), and runs dask_pipeline's one step: each worker writes
features/<video_id>.npz and a marker per video. Dask reruns the tasks of a worker that dies
(its `allowed-failures` times); rerun videos rewrite the same files. Once the job has
succeeded and every video's marker is there, the driver writes skipped.json and assembles the
records, shards, statistics and dataset_info.json from features/ with the single process's code
(assembly.assemble), so the data directory is the single process's. A failed job publishes
nothing (features/ keeps the finished videos: a rerun resumes from them).

Inputs and output must be paths every worker and the driver can read and write: the same
shared file system, or gs:// / s3:// URLs.
"""

import os
import time

import tensorflow as tf

from avsdn_tf import fileio
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.features import assembly, beam_progress, video

RUNNER_CLASS = "apache_beam.runners.dask.dask_runner.DaskRunner"
DEFAULT_CONNECTION_TIMEOUT = 30  # seconds, as dask's own default connect timeout
MAX_PARTITIONS = 1000  # default partitions: one per video up to this many


def dask_runner():
    """Beam's (DaskOptions, DaskRunner) classes, or one UserError about --runner saying how to
    install them (Beam imports dask.distributed only when it is there)."""
    try:
        import distributed  # noqa: F401
        from apache_beam.runners.dask import dask_runner
    except ImportError as error:
        raise argument_error(
            "runner",
            "Apache Beam and dask[distributed] installed for DaskRunner (pip install "
            "'avsdn-tf[beam]')",
            f"ImportError: {error}",
        ) from None
    return dask_runner.DaskOptions, dask_runner.DaskRunner


def connect(address, scheduler_file, timeout):
    """A distributed.Client of the cluster and its worker threads {worker address: threads}.

    Raises:
        UserError naming --dask_client_address (or the scheduler file) when no scheduler answers
        within `timeout` seconds, or when it has no worker.
    """
    from distributed import Client

    where = address or f"the scheduler of {scheduler_file}"
    try:
        client = Client(
            address=address, scheduler_file=scheduler_file, timeout=timeout, set_as_default=False
        )
    except (OSError, TimeoutError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise input_error(  # Beam's options, not extract's flags: named as typed
            "--dask_client_address" if address else "--dask_scheduler_file",
            f"a Dask scheduler answering within --dask_connection_timeout={timeout} s",
            f"no answer from {where} ({reason})",
        ) from None
    threads = client.nthreads()
    if not threads:
        client.close()
        raise input_error(
            "--dask_client_address", f"a Dask scheduler with workers at {where}", "no worker"
        )
    return client, threads


def _cluster_options(options, todo):
    """Complete the DaskOptions in `options`: timeout, partitions; returns (address, file,
    timeout), refusing a run without a scheduler (Beam would start a local cluster) and a
    timeout that is not whole seconds (Beam would drop it)."""
    dask_options, _ = dask_runner()
    view = options.view_as(dask_options)
    if not view.address and not view.scheduler_file:
        raise input_error(
            "--dask_client_address",
            "the address of a running Dask scheduler (tcp://HOST:PORT) for --runner DaskRunner",
            "none (nor --dask_scheduler_file)",
        )
    if view.timeout is None:
        view.timeout = DEFAULT_CONNECTION_TIMEOUT
    elif not isinstance(view.timeout, int) or view.timeout <= 0:  # Beam: not int -> no_default
        raise input_error(
            "--dask_connection_timeout",
            "a whole number of seconds above 0",
            view.timeout if isinstance(view.timeout, int) else "something else",
        )
    if not view.npartitions and not view.partition_size:
        view.npartitions = max(1, min(len(todo), MAX_PARTITIONS))
    return view.address, view.scheduler_file, view.timeout


def _run(options, videos, output_dir, staging, settings, where, verbose, log):
    """Run the job and wait for it; one UserError when it fails."""
    import apache_beam as beam

    from avsdn_tf.features import dask_pipeline

    _, runner_class = dask_runner()
    pipeline = beam.Pipeline(runner=runner_class(), options=options)
    dask_pipeline.build(pipeline, videos, output_dir, staging, settings)
    with beam_progress.watch(staging, len(videos), "DaskRunner", verbose):
        result = pipeline.run()
        try:
            result.wait_until_finish()
        except BaseException as error:
            result.client.cancel(result.futures)
            if not isinstance(error, Exception):
                raise
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            raise UserError(
                f"the Beam job on DaskRunner at {where} failed: "
                f"{lines[-1] if lines else type(error).__name__}; nothing was published into "
                f"{output_dir} (its features/ keeps the videos finished: rerun to resume)"
                + (f"; the runner's log: {log}" if log else "")
            ) from None
        finally:
            result.client.close()


def _outcomes(staging, videos, output_dir, where):
    """Every video's marker, by index; a UserError when one is missing (nothing published)."""
    found = {}
    for index, path in videos:
        marker = beam_progress.marker_path(staging, index)
        if not tf.io.gfile.exists(marker):
            raise UserError(
                f"the Beam job on DaskRunner at {where} ended without the outcome of {path} "
                f"(no {marker}); nothing was published into {output_dir}"
            )
        found[index] = fileio.read_json(marker)
    return found


def _remove_worker_temporaries(output_dir):
    """features/*.tmp-* that a killed worker left (the job is over; this process holds the
    lock)."""
    for path in tf.io.gfile.glob(os.path.join(output_dir, assembly.FEATURES_DIR, "*.tmp-*")):
        tf.io.gfile.remove(path)


def extract_videos(
    paths,
    output_dir,
    settings,
    labels,
    split,
    videos_per_shard,
    options,
    staging,
    verbose=True,
    log=None,
    other_files=None,
):
    """extraction.extract_videos on a Dask cluster: the same data directory; the summary dict.

    Args:
        paths: video paths. output_dir: the data directory (local path every worker shares, or a
            storage URL). settings: feature_settings.FeatureSettings. labels: video id -> label
            rows, or None. split: the split of records whose row names none. videos_per_shard: the
            target records per shard. options: Beam PipelineOptions with the DaskOptions
            (--dask_client_address, ...). staging: the job's staging directory to make inside
            output_dir (removed at the end). verbose: print the progress line. log: the runner's
            log file (beam_progress.runner_log), named when the job fails. other_files:
            {path: reason} of the video directory's files that are not videos, or None.
    Returns:
        extract_summary.json's content (with "runner", "dask_workers", "dask_partitions").
    """
    skipped = {}
    if labels is not None:
        skipped = {
            path: assembly.no_labels_reason(video.video_id(path))
            for path in paths
            if video.video_id(path) not in labels
        }
    videos = [(index, path) for index, path in enumerate(paths) if path not in skipped]
    address, scheduler_file, timeout = _cluster_options(options, videos)
    where = address or scheduler_file
    client, threads = connect(address, scheduler_file, timeout)  # before anything is written
    client.close()
    assembly.start_output(paths, output_dir, settings, split)
    before = {
        path
        for _, path in videos
        if tf.io.gfile.exists(assembly.features_path(output_dir, video.video_id(path)))
    }
    beam_progress.make_staging(staging)
    started = time.time()
    try:
        if verbose:
            print(f"extract: {len(paths)} videos on DaskRunner at {where} ({len(threads)} workers)")
        _run(options, videos, output_dir, staging, settings, where, verbose, log)
        outcomes = _outcomes(staging, videos, output_dir, where)
    finally:
        fileio.remove_tree(staging)
    extract_seconds = time.time() - started
    _remove_worker_temporaries(output_dir)
    skipped.update({o["path"]: o["skipped"] for o in outcomes.values() if "skipped" in o})
    new = [o for o in outcomes.values() if "segments" in o and o["path"] not in before]
    done = assembly.write_skipped(output_dir, paths, skipped, other_files)
    info, lengths = assembly.assemble(output_dir, done, settings, labels, split, videos_per_shard)
    report = assembly.write_input_report(output_dir, labels, paths, lengths, other_files)
    return assembly.write_summary(
        output_dir,
        info,
        settings,
        labels,
        len(paths),
        len(new),
        len(before),
        len(skipped),
        sum(o["segments"] for o in new),
        extract_seconds,
        **report,
        runner="DaskRunner",
        dask_workers=len(threads),
        dask_partitions=options.view_as(dask_runner()[0]).npartitions,
    )
