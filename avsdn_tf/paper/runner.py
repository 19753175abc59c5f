"""Running the paper's tables: every row trained once per seed, results.json and results.md.

Every row (paper/rows.py) is trained once per seed by `trainer.train` in its own run directory,
EXP/runs/<table>/<model>/seed<k>, which makes the whole experiment resumable: a finished run is
read back, never retrained; an interrupted one resumes from its last epoch. A finished run of
the same hyperparameters elsewhere in the experiment is reused rather than trained again.
"""

import dataclasses
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from avsdn_tf import dataset_info, fileio, hparams, progress
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import registry
from avsdn_tf.paper import rendering
from avsdn_tf.paper.rows import ALL, FIELD_TABLES, METRIC_COLUMNS, Row, Table, row_remarks, select
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RUNS = "runs"


@dataclasses.dataclass
class Job:
    """One training run: a row of a table with one seed."""

    table: Table
    row: Row
    seed: int
    hp: hparams.HParams
    run_dir: str

    @property
    def name(self):
        return f"{self.table.key}/{self.row.model}/seed{self.seed}"


def plan(selection, seeds, base, output_dir, given=None):
    """Every run, in order: table by table, row by row, seed by seed (seed k -> HParams(seed=k)).

    Args:
        selection: select()'s [(Table, [Row])].
        seeds: seeds per row, an int >= 1 (seeds 0..seeds-1).
        base: the HParams every run starts from (model, supervision and seed are set per job).
        output_dir: the experiment directory; runs go to output_dir/runs/<table>/<model>/seed<k>.
        given: the hyperparameter names the command set (row_hparams); None: base's changes.
    Returns:
        list of Job.
    Raises:
        errors.UserError: when seeds < 1 or a job's HParams do not validate.
    """
    if int(seeds) < 1:
        raise argument_error("seeds", "a positive number of seeds", seeds)
    jobs = []
    for table, rows in selection:
        for row in rows:
            start = row_hparams(base, row.model, table.supervision, given)
            for seed in range(seeds):
                hp = start.replace(seed=seed).validate()
                jobs.append(
                    Job(
                        table,
                        row,
                        seed,
                        hp,
                        os.path.join(output_dir, RUNS, table.key, row.model, f"seed{seed}"),
                    )
                )
    return jobs


def row_hparams(base, model, supervision, given=None):
    """A row's hyperparameters: the model's own defaults (its authors' recipe, where it has one),
    under what the command line and --hparams_file set.

    Args:
        base: the experiment's HParams (the common defaults with the given changes).
        model: the row's model. supervision: its table's.
        given: the names of the hyperparameters the command line and --hparams_file set (so
            `--epochs 12`, the common default, still cuts a 200-epoch recipe to 12); None: the
            fields where base differs from the common defaults.
    Returns:
        HParams with model and supervision set.
    """
    if not registry.has_defaults(model):
        return base.replace(model=model, supervision=supervision)
    common = hparams.HParams()
    if given is None:
        given = [n for n, v in base.to_dict().items() if v != getattr(common, n)]
    changed = {
        name: getattr(base, name) for name in given if name not in ("model", "supervision", "seed")
    }
    return registry.default_hparams(model, supervision).replace(**changed)


def _local_path(path):
    return path if "://" in path else os.path.abspath(path)


def _hparams_key(hp):
    return json.dumps(hp.to_dict(), sort_keys=True)


def _differences(config, hp, data_dir, max_videos):
    """[(field, wanted, found)] between a run directory's config.json and the run asked for."""
    # A field a run's config.json lacks predates that field: the run had its default behaviour
    # (e.g. `selection` "val"), so it is compared as the default.
    saved = {**hparams.HParams().to_dict(), **config.get("hparams", {})}
    wanted = hp.to_dict()
    found = [
        (f"hparams.{name}", wanted.get(name, "absent"), saved.get(name, "absent"))
        for name in sorted(set(saved) | set(wanted))
        if saved.get(name, "absent") != wanted.get(name, "absent")
    ]
    if _local_path(str(config.get("data_dir"))) != data_dir:
        found.append(("data_dir", data_dir, config.get("data_dir")))
    if config.get("max_videos") != max_videos:
        found.append(("max_videos", max_videos, config.get("max_videos")))
    return found


def saved_result(run_dir, hp, data_dir, max_videos, strict=True):
    """The metrics of a finished run made with exactly these settings, else None.

    strict: a run directory that was started with other settings is an error (resuming it would
    mix two experiments); otherwise it is just not reusable.

    Args:
        run_dir: a run directory (may not exist yet).
        hp: the HParams the run should have been trained with.
        data_dir: the data directory it should have used (absolute, or a storage URL).
        max_videos: the max_videos it should have used (None: all).
        strict: raise, rather than return None, when the run's config.json differs.
    Returns:
        the run's metrics dict (metrics.json: val and test accuracy, best_epoch, ...) when it
        finished with these settings; None when it has not started or finished, or differs
        and strict is False.
    Raises:
        errors.UserError: with strict, naming the first config.json field that differs; for a
            finished run whose config.json does not describe its checkpoint
            (registry.check_describes), naming the command that repairs it.
    """
    run = RunDir(run_dir)
    config = run.read_config()
    if config is None:
        return None
    differences = _differences(config, hp, data_dir, max_videos)
    if differences:
        if not strict:
            return None
        field, wanted, found = differences[0]
        more = f" (and {len(differences) - 1} more differences)" if len(differences) > 1 else ""
        raise input_error(
            f"{run.config} field {field}",
            f"{wanted!r}, the setting of this experiment",
            f"{found!r}{more}; the run was started with other settings: rerun with those, "
            "or use a new `output_dir`",
        )
    state = run.read_state() or {}
    if state.get("finished") and tf.io.gfile.exists(run.metrics):
        if tf.io.gfile.exists(run.best_checkpoint):
            # A run the old code left with a config.json that does not describe its checkpoint
            # is refused with the command that repairs it, as every command refuses it.
            registry.load_run(run_dir)
        return fileio.read_json(run.metrics)
    return None


def _mean_std(values):
    """Mean and sample standard deviation (None for a single value)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _summary(values):
    mean, std = _mean_std(values)
    return {"mean": mean, "std": std, "values": values}


def _measured_fields(table):
    """The measured fields of a table's records and rows, metric by metric, val before test.

    Args:
        table: a Table.
    Returns:
        list of (field, split, metric): field "<split>_<metric>" (val_accuracy, test_accuracy
        for the paper's tables), split "val" or "test", metric a key of table.metrics.
    """
    return [
        (f"{split}_{metric}", split, metric)
        for metric in table.metrics
        for split in ("val", "test")
    ]


def _measured(table, result):
    """{"val_<metric>", "test_<metric>"} of a run's metrics.json, for each metric of its table.

    Args:
        table: the run's Table. result: the run's metrics dict (val and test entries).
    Returns:
        dict, in the table's metric order, val before test.
    """
    return {field: result[split][metric] for field, split, metric in _measured_fields(table)}


def _scores_line(table, result):
    """The measured scores of a run, for the progress lines ("val 0.7000, test 0.6900"; "val
    A2V 0.5000 V2A 0.2500, test A2V ...").

    Args:
        table: the run's Table. result: the run's metrics dict.
    Returns:
        str.
    """
    return ", ".join(
        " ".join(
            [split]
            + [
                f"{METRIC_COLUMNS[metric][2]} {result[split][metric]:.4f}".lstrip()
                for metric in table.metrics
            ]
        )
        for split in ("val", "test")
    )


def _record(job, result, run_dir, trained):
    return {
        "table": job.table.key,
        "row": job.row.model,
        "method": job.row.method,
        "model": job.hp.model,
        "supervision": job.hp.supervision,
        "seed": job.seed,
        "hparams": job.hp.to_dict(),
        **_measured(job.table, result),
        "best_epoch": result.get("best_epoch"),
        "epochs_done": result.get("epochs_done"),
        "run_dir": run_dir,
        "shared_run": run_dir != job.run_dir,
        "trained_now": trained,
    }


def summarize_rows(selection, jobs, records, info, output_dir):
    """Per row: mean and std of val and test of each metric over the seeds done, and the paper's.

    Args:
        selection: select()'s [(Table, [Row])].
        jobs: plan()'s Jobs for that selection.
        records: the run records done so far (dicts with table, row, seed, val_<metric> and
            test_<metric> for each metric of the table, run_dir, shared_run).
        info: the data set's DatasetInfo (its visual layout changes some remarks).
        output_dir: the experiment directory (shared runs are named relative to its runs/).
    Returns:
        list of dicts, one per row: table, row, method, model, supervision, remarks, extra,
        seeds, seeds_done, complete, val_<metric> and test_<metric> ({mean, std, values}; std
        None below two seeds) for each metric of the table (val_accuracy and test_accuracy for
        the paper's tables), same_runs_as, paper (Row.paper_json).
    """
    done = {(r["table"], r["row"], r["seed"]): r for r in records}
    rows = []
    for table, table_rows in selection:
        for row in table_rows:
            seeds = [job.seed for job in jobs if job.table is table and job.row is row]
            runs = [
                done[(table.key, row.model, seed)]
                for seed in seeds
                if (table.key, row.model, seed) in done
            ]
            runs_root = os.path.join(output_dir, RUNS)
            shared = sorted(
                {
                    os.path.relpath(os.path.dirname(r["run_dir"]), runs_root)
                    for r in runs
                    if r["shared_run"]
                }
            )
            rows.append(
                {
                    "table": table.key,
                    "row": row.model,
                    "method": row.method,
                    "model": row.model,
                    "supervision": table.supervision,
                    "remarks": row_remarks(row, info),
                    "extra": row.extra,
                    "seeds": seeds,
                    "seeds_done": [r["seed"] for r in runs],
                    "complete": len(runs) == len(seeds),
                    **{
                        field: _summary([r[field] for r in runs])
                        for field, _, _ in _measured_fields(table)
                    },
                    "same_runs_as": shared,
                    "paper": row.paper_json(),
                }
            )
    return rows


def _data_label(info, max_videos):
    test = info.splits.get("test", {}).get("videos", 0)
    if max_videos:
        test = min(test, max_videos)
    kind = "synthetic data" if info.generator.startswith("synthesize") else "data"
    visual = "x".join(map(str, info.visual_shape))
    return f"{kind}, {test} test videos, audio {info.audio_dim}-d, visual {visual}-d"


def _check_before_training(jobs, data, max_videos):
    """Refuse now, before anything trains: data without a split some run reads, or a run
    directory started with other settings.

    Args:
        jobs: plan()'s Jobs. data: the DataDir. max_videos: the experiment's max_videos.
    Raises:
        errors.UserError: from trainer.check_splits or saved_result (strict).
    """
    for hp in {_hparams_key(job.hp): job.hp for job in jobs}.values():
        # Data without the splits a run reads (the match splits of avdln): one message, now.
        trainer.check_splits(data, registry.task_for(hp))
    for job in jobs:
        saved_result(job.run_dir, job.hp, data.path, max_videos)


def _description(selection):
    """results.json's description of what was measured (and of the cross_modal table's metrics).

    Args:
        selection: select()'s [(Table, [Row])].
    Returns:
        str.
    """
    return (
        "The AVSDN paper's tables trained on the data below. Measured accuracies are frame-wise"
        " accuracies of the epoch best on val; the 'paper' entries are what the papers report"
        " on the real AVE features and were not measured here."
        + (
            " The cross_modal table's are the A2V and V2A accuracies on test_match (and"
            " val_match) of the epoch best on val_match."
            if any(t.key == "cross_modal" for t, _ in selection)
            else ""
        )
        + (
            " The field tables' published numbers were selected on the test split by their"
            " authors' code (PSP, CMBS, AVEL); these runs select on val."
            if any(t.key in FIELD_TABLES for t, _ in selection)
            else ""
        )
    )


def _summary_head(selection, data, base, seeds, max_videos, output_dir, command):
    """The settings part of results.json: what ran, on which data, with which versions.

    Args:
        selection: select()'s [(Table, [Row])]. data: the DataDir. base: the base HParams.
        seeds: runs per row. max_videos: videos per split or None. output_dir: the experiment
        directory. command: the command line (or None).
    Returns:
        dict (run() adds runs, rows, complete, failures and the wall time).
    """
    info = data.info
    return {
        "description": _description(selection),
        "command": command,
        "data_dir": data.path,
        "data_label": _data_label(info, max_videos),
        "dataset": {
            "audio_dim": info.audio_dim,
            "visual_shape": list(info.visual_shape),
            "splits": {split: value["videos"] for split, value in info.splits.items()},
            "generator": info.generator,
        },
        "max_videos": max_videos,
        "tables": [t.key for t, _ in selection],
        "seeds": list(range(seeds)),
        "base_hparams": base.to_dict(),
        "output_dir": output_dir,
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": sys.version.split()[0],
        },
    }


class _Experiment:
    """One run() of the tables: its jobs, the records and failures so far, and results files.

    Attributes:
        summary: the results.json dict, rewritten after every job (write()).
        records: one _record per finished job. failures: one dict per diverged job.
        trained, reused: jobs trained now, and jobs read back from a finished run.
    """

    def __init__(self, selection, jobs, data, max_videos, output_dir, summary):
        self.selection, self.jobs, self.data = selection, jobs, data
        self.max_videos, self.output_dir, self.summary = max_videos, output_dir, summary
        self.records, self.failures = [], []
        self.trained = self.reused = 0
        self.started = time.time()
        self.by_hparams = {}
        for job in jobs:
            self.by_hparams.setdefault(_hparams_key(job.hp), []).append(job.run_dir)

    def write(self):
        """Write results.json and results.md with the records so far."""
        self.summary.update(
            {
                "runs": self.records,
                "rows": summarize_rows(
                    self.selection, self.jobs, self.records, self.data.info, self.output_dir
                ),
                "complete": len(self.records) == len(self.jobs),
                "failures": self.failures,
                "wall_seconds_this_process": round(time.time() - self.started, 1),
            }
        )
        tf.io.gfile.makedirs(self.output_dir)
        fileio.write_json(os.path.join(self.output_dir, RESULTS_JSON), self.summary)
        fileio.write_text(
            os.path.join(self.output_dir, RESULTS_MD), rendering.render_markdown(self.summary)
        )

    def finished_run(self, job):
        """A finished run this job can reuse: its own directory first, then any other job's of
        the same hyperparameters.

        Args:
            job: a Job.
        Returns:
            (run_dir, metrics dict), or None.
        Raises:
            errors.UserError: when the job's own directory was started with other settings.
        """
        candidates = [job.run_dir] + [
            d for d in self.by_hparams[_hparams_key(job.hp)] if d != job.run_dir
        ]
        for run_dir in candidates:
            strict = run_dir == job.run_dir
            result = saved_result(run_dir, job.hp, self.data.path, self.max_videos, strict=strict)
            if result:
                return run_dir, result
        return None

    def do(self, index, job, strategy_name, verbose, log):
        """Reuse or train one job, record it and rewrite the results files.

        Args:
            index: the job's number (from 1). job: the Job. strategy_name, verbose: as run().
            log: where progress lines go.
        """
        prefix = progress.step(index, len(self.jobs), job.name)
        found = self.finished_run(job)
        if found:
            run_dir, result = found
            self.reused += 1
            log(
                f"{prefix}: reused the finished run in {run_dir} (not retrained): "
                + _scores_line(job.table, result)
            )
            self.records.append(_record(job, result, run_dir, trained=False))
        else:
            log(f"{prefix}: training {job.hp.epochs} epochs in {job.run_dir}")
            try:
                result = trainer.train(
                    self.data,
                    job.run_dir,
                    job.hp,
                    strategy_name=strategy_name,
                    max_videos=self.max_videos,
                    verbose=verbose,
                    log=log,
                )
            except trainer.TrainingDiverged as error:
                log(f"{prefix}: FAILED: {error}")
                self.failures.append({"run": job.name, "run_dir": job.run_dir, "error": str(error)})
                return
            self.trained += 1
            self.records.append(_record(job, result, job.run_dir, trained=True))
        self.write()

    def do_all(self, strategy_name, verbose, log):
        """Every job in order; the results files are written last whatever happens.

        Args:
            strategy_name, verbose: as run(). log: where progress lines go.
        """
        try:
            for index, job in enumerate(self.jobs, 1):
                self.do(index, job, strategy_name, verbose, log)
        except KeyboardInterrupt:
            log(
                f"interrupted: {len(self.records)} of {len(self.jobs)} runs done; rerun the same"
                " command to resume"
            )
            raise
        finally:
            self.write()

    def report(self, log):
        """Log the tables and the counts; raise when any run diverged.

        Args:
            log: where the lines go.
        Raises:
            errors.UserError: naming the diverged runs and results.json's failures field.
        """
        summary, results = self.summary, os.path.join(self.output_dir, RESULTS_JSON)
        log("")
        for key in summary["tables"]:
            log(rendering.render_text(summary, key))
            log("")
        log(
            f"{self.trained} run{'s' * (self.trained != 1)} trained, {self.reused} reused; "
            f"results in {results} and {os.path.join(self.output_dir, RESULTS_MD)}"
            f" ({summary['wall_seconds_this_process']:.0f}s)"
        )
        if self.failures:
            raise UserError(
                f"{len(self.failures)} of {len(self.jobs)} runs diverged"
                f" ({', '.join(f['run'] for f in self.failures)}); details in"
                f" {results} field failures"
            )


def run(
    data,
    output_dir,
    table=ALL,
    seeds=3,
    base=None,
    rows=None,
    extras=True,
    max_videos=None,
    strategy_name="auto",
    verbose=0,
    command=None,
    log=print,
    given=None,
):
    """Train every selected row once per seed (or read it back), write results.json and results.md.

    Returns the summary written to results.json. Raises UserError for bad settings; a run whose
    loss diverges is reported and the others go on (then UserError once all were tried).

    Args:
        data: the dataset_info.DataDir (local or a storage URL); a path is opened here.
        output_dir: the experiment directory: runs/, results.json and results.md.
        table: a key of TABLES or "all". rows: row model names, or None: all. extras: keep
            the rows not in the paper's table (select()).
        seeds: runs per row, seeds 0..seeds-1.
        base: the HParams every run starts from; default HParams().
        max_videos: at most this many videos per split (None: all).
        strategy_name: the distribution strategy for trainer.train ("auto" picks one).
        verbose: Keras fit verbosity.
        command: the command line, recorded in results.json.
        log: called with each progress line, the trainer's included (default print).
        given: the hyperparameter names the command line and --hparams_file set, which override
            a model's own recipe (row_hparams); None: base's differences from the defaults.
    Returns:
        dict, the summary written to results.json: the data set, base_hparams, runs (one
        record per finished run), rows (summarize_rows), complete, failures, versions.
    Raises:
        errors.UserError: for bad settings, a run directory started with other settings,
            or when any run diverged (after results.json is written).
    """
    base = (base or hparams.HParams()).validate()
    selection = select(table, rows, extras)
    jobs = plan(selection, seeds, base, output_dir, given)
    data = dataset_info.DataDir.of(data)
    data = dataset_info.DataDir(_local_path(data.path), data.info)
    _check_before_training(jobs, data, max_videos)
    summary = _summary_head(selection, data, base, seeds, max_videos, output_dir, command)
    experiment = _Experiment(selection, jobs, data, max_videos, output_dir, summary)
    experiment.do_all(strategy_name, verbose, log)
    experiment.report(log)
    return summary
