"""Extraction as an Apache Beam pipeline: extract --runner DirectRunner|DataflowRunner|...

The same output as the single process (extraction.extract_videos): features/<video_id>.npz,
extract_config.json, skipped.json, the TFRecord shards, dataset_info.json, normalization.json
(the train split's statistics, summed over the workers) and extract_summary.json. The videos are
spread over the runner's workers (beam_pipeline.py holds the transforms); the shards and the
pipeline's result go to a staging directory inside output_dir (STAGING_PREFIX + a random
suffix), and only when the job has finished does this process publish them (dataset_info.json
last, as assembly.finish_dataset does for the single process). A failed or killed job
therefore leaves no new dataset_info.json: at most features/*.npz of the videos it finished
(kept, so a rerun resumes from them) and a staging directory (removed when this process sees
the failure).

Apache Beam is optional (pip install 'avsdn-tf[beam]'); this module imports it only when a
runner is asked for.
"""

import difflib
import logging
import os
import time
import uuid

import tensorflow as tf

from avsdn_tf import fileio
from avsdn_tf.data import normalization
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.features import assembly, beam_progress, video

RUNNERS = (
    "DirectRunner",
    "DaskRunner",
    "DataflowRunner",
    "FlinkRunner",
    "SparkRunner",
    "PortableRunner",
)
STAGING_PREFIX = ".beam-"
INSTALL_HINT = "pip install 'avsdn-tf[beam]'"


def import_beam():
    """The apache_beam module, or one UserError (about --runner) saying how to install it."""
    try:
        # Its import notes (optional GCP clients missing, some on the root logger) are no
        # user's concern.
        with beam_progress.quiet_logs(level=logging.ERROR, names=("apache_beam", "")):
            import apache_beam
    except ImportError as error:
        raise argument_error(
            "runner", f"Apache Beam installed ({INSTALL_HINT})", f"ImportError: {error}"
        ) from None
    return apache_beam


def pipeline_options(runner, pipeline_args):
    """Beam PipelineOptions of `runner` and `pipeline_args`; arguments Beam does not know are
    refused (Beam itself would only log that it drops them).

    Args:
        runner: one of RUNNERS. pipeline_args: command-line words such as
            ["--project", "p", "--temp_location=gs://b/tmp"].
    Returns:
        apache_beam.options.pipeline_options.PipelineOptions.
    """
    import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    if runner == "DaskRunner":  # its options (--dask_client_address, ...) join Beam's parser
        from avsdn_tf.features import dask_extraction

        dask_extraction.dask_runner()

    words = [f"--runner={runner}", *pipeline_args]
    options = PipelineOptions(words)
    parsers = []  # the parser Beam builds from every PipelineOptions class it knows
    options.get_all_options(add_extra_args_fn=parsers.append)
    known = [option for action in parsers[0]._actions for option in action.option_strings]
    _, unknown = parsers[0].parse_known_args(words)
    if unknown:
        hints = [
            (
                f"{word} (did you mean {close[0]}?)"
                if (close := difflib.get_close_matches(word.split("=", 1)[0], known, n=1))
                else word
            )
            for word in unknown
        ]
        raise input_error(
            f"the arguments for --runner {runner}",
            "extract's flags or Beam pipeline options (--project, --region, --temp_location, "
            "--direct_num_workers, --flink_master, ...)",
            " ".join(hints),
        )
    return options


def _staging_path(output_dir):
    """A fresh name for a job's staging directory inside output_dir (STAGING_PREFIX + 8 hex)."""
    return os.path.join(output_dir, f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}")


def _runner(runner):
    """The runner object for beam.Pipeline, or None to let Beam make it from --runner.

    DirectRunner: Beam's FnApiRunner, which is what the DirectRunner runs a batch pipeline on
    and what --direct_num_workers / --direct_running_mode configure. Beam 2.77's DirectRunner
    would first try the Prism runner, a binary it downloads from GitHub on first use.
    """
    if runner != "DirectRunner":
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    return FnApiRunner()


def extract_videos(
    paths,
    output_dir,
    settings,
    labels=None,
    split="train",
    videos_per_shard=256,
    runner="DirectRunner",
    pipeline_args=(),
    verbose=True,
    verbose_logs=False,
    other_files=None,
):
    """extraction.extract_videos on a Beam runner: the same data directory; the summary dict.

    Args:
        paths: video paths. output_dir: the data directory (local, gs://, s3://).
        settings: feature_settings.FeatureSettings. labels: video id -> label rows, or None.
        split: the split of records whose label row names none. videos_per_shard: the target
            records per shard. runner: one of RUNNERS. pipeline_args: Beam pipeline options.
        verbose: print the job's first line and its progress line. verbose_logs: let the
            runners' INFO log lines through (beam_progress.quiet_logs). other_files:
            {path: reason} of the video directory's files that are not videos, or None.
    Returns:
        extract_summary.json's content (with "runner").
    """
    with beam_progress.quiet_logs(verbose_logs), beam_progress.runner_log(verbose_logs) as log:
        beam = import_beam()
        options = pipeline_options(runner, list(pipeline_args))
        if runner == "DaskRunner":
            from avsdn_tf.features import dask_extraction

            return dask_extraction.extract_videos(
                paths,
                output_dir,
                settings,
                labels,
                split,
                videos_per_shard,
                options,
                _staging_path(output_dir),
                verbose,
                log,
                other_files,
            )
        return _extract_on_beam(
            beam,
            options,
            paths,
            output_dir,
            settings,
            labels,
            split,
            videos_per_shard,
            runner,
            verbose,
            log,
            other_files,
        )


def _splits_and_moments(result):
    """The job's shards by split and its feature moments.

    Args:
        result: the job's result file (beam_pipeline.RESULT_FILE) as a dict.
    Returns:
        ({split: {"videos": int, "shards": [name]}}, {name: normalization.Moments}).
    """
    splits = {}
    for name, shard, count in result["shards"]:
        entry = splits.setdefault(name, {"videos": 0, "shards": []})
        entry["videos"] += count
        entry["shards"].append(shard)
    moments = {
        name: normalization.Moments.from_json(value) for name, value in result["moments"].items()
    }
    return splits, moments


def _extract_on_beam(
    beam,
    options,
    paths,
    output_dir,
    settings,
    labels,
    split,
    videos_per_shard,
    runner,
    verbose,
    log=None,
    other_files=None,
):
    """extract_videos on a runner other than the DaskRunner (beam_pipeline's graph); `log`:
    the runner's log file (beam_progress.runner_log), named when the job fails; other_files:
    the video directory's files that are not videos, for skipped.json."""
    assembly.start_output(paths, output_dir, settings, split)
    from avsdn_tf.features import beam_pipeline

    staging = _staging_path(output_dir)
    beam_progress.make_staging(staging)
    started = time.time()
    try:
        if verbose:
            print(f"extract: {len(paths)} videos on {runner}; staging in {staging}", flush=True)
        pipeline = beam.Pipeline(runner=_runner(runner), options=options)
        beam_pipeline.build(
            pipeline, paths, output_dir, staging, settings, labels, split, videos_per_shard
        )
        try:
            with beam_progress.watch(staging, len(paths), runner, verbose):
                state = pipeline.run().wait_until_finish()
        except Exception as error:  # the workers' tracebacks are in the runner's log
            lines = [line for line in str(error).strip().splitlines() if line.strip()]
            raise UserError(
                f"the Beam job on {runner} failed: {lines[-1] if lines else type(error).__name__}"
                f"; nothing was published into {output_dir} (its features/ keeps the videos "
                "finished: rerun to resume)" + (f"; the runner's log: {log}" if log else "")
            ) from error
        result_path = os.path.join(staging, beam_pipeline.RESULT_FILE)
        if state != "DONE" or not tf.io.gfile.exists(result_path):
            raise UserError(
                f"the Beam job on {runner} ended in state {state} without its result "
                f"({result_path}); nothing was published into {output_dir}"
            )
        result = fileio.read_json(result_path)
        extract_seconds = time.time() - started
        tally = result["tally"]
        skipped = {path: reason for _, path, reason in tally["skipped"]}
        done = assembly.write_skipped(output_dir, paths, skipped, other_files)
        splits, moments = _splits_and_moments(result)
        info = assembly.finish_dataset(
            staging, output_dir, settings, splits, set(tally["lengths"]), len(done), labels, moments
        )
    finally:
        fileio.remove_tree(staging)
    lengths = {video.video_id(path): length for path, length in tally["segments"].items()}
    report = assembly.write_input_report(output_dir, labels, paths, lengths, other_files)
    return assembly.write_summary(
        output_dir,
        info,
        settings,
        labels,
        len(paths),
        tally["extracted"],
        tally["resumed"],
        len(skipped),
        tally["seconds_extracted"],
        extract_seconds,
        **report,
        runner=runner,
    )
