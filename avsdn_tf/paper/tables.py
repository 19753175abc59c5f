"""The paper's tables: their rows, the accuracies the papers report, running them, rendering them.

Three tables, as in the AVSDN paper (Lin, Li, Wang, ICASSP 2019): supervised and weakly-supervised
event localization (the AVEL baselines of Tian et al. 2018 and AVSDN), and the ablation of how the
decoder is initialised (TABLES, what `all` runs). One more, run on its own (EXTRA_TABLES): AVEL's
cross-modality localization (A2V and V2A accuracy of the AVE authors' AVDLN on the match splits),
which the AVSDN paper does not report. A table names the metrics of metrics.json it shows
(Table.metrics); records, summaries and renderings carry each of them.

Every row is trained once per seed by `trainer.train` in its own run directory,
EXP/runs/<table>/<model>/seed<k>, which makes the whole experiment resumable: a finished run is
read back, never retrained; an interrupted one resumes from its last epoch.

The papers' numbers were measured on the real AVE features. They are kept apart from what is
measured here (their own field in results.json, their own labelled column in the tables), and a
number that could not be checked against the paper is left empty and marked "not verified".
"""

import dataclasses
import json
import math
import os
import sys
import time

import keras
import tensorflow as tf

from avsdn_tf import constants, dataset_info, fileio, hparams
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import registry
from avsdn_tf.models.avdln import task as avdln_task
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
RUNS = "runs"
ALL = "all"

# Where each reported number was read. The AVSDN paper's tables were checked against the
# transcription of arXiv:1902.07473 at this address; only the numbers visible there are filled in.
AVSDN_PAPER = (
    "Lin, Li, Wang: Dual-modality seq2seq network for audio-visual event localization, ICASSP 2019"
    " (arXiv:1902.07473)"
)
TRANSCRIPTION = "https://tomesphere.com/paper/1902.07473"
SUPERVISED_SOURCE = f"{AVSDN_PAPER}, Table 1 (supervised), read at {TRANSCRIPTION}"
WEAK_SOURCE = f"{AVSDN_PAPER}, weakly-supervised results table, read at {TRANSCRIPTION}"
# The paper does not say which supervision its Table 3 uses; its full model's 74.2 equals the
# weakly-supervised AVSDN of Table 2, so the paper's numbers are most likely weak supervision,
# while this project runs the ablation with segment labels (full): the cell says so.
ABLATION_SOURCE = (
    f"{AVSDN_PAPER}, Table 3 (ablation; supervision not stated, most likely weak: "
    "its 74.2 equals Table 2's weakly-supervised AVSDN)"
)
VGG = "VGGish audio, VGG-16 visual"
RESNET = "VGGish audio, ResNet-152 visual"
ABLATION_NOTE = "paper: supervision not stated, most likely weak"
PAPER_COLUMN = "Paper, real AVE features (%) - NOT measured here"
NOT_IN_AVSDN_PAPER = "not reported in the AVSDN paper"
DMRN_ABSENT = f"{NOT_IN_AVSDN_PAPER}: it gives no numbers for AVEL's DMRN"
CROSS_MODAL_ABSENT = (
    f"{NOT_IN_AVSDN_PAPER}: its three tables (supervised, weakly-supervised, ablation) hold no "
    "cross-modality localization results"
)
# The metrics a table can show: metrics.json's key -> (test column, val column, name in the
# progress lines; none for the paper's one accuracy).
METRIC_COLUMNS = {
    "accuracy": ("Accuracy (%), test", "Val (%)", ""),
    "a2v_accuracy": ("A2V (%), test", "A2V val (%)", "A2V"),
    "v2a_accuracy": ("V2A (%), test", "V2A val (%)", "V2A"),
}
FRAME_ACCURACY = "frame-wise test accuracy of the epoch best on val"


@dataclasses.dataclass(frozen=True)
class Reported:
    """One accuracy a paper reports on the real AVE features (percent), and where it was read."""

    accuracy: float
    features: str
    source: str
    note: str = ""  # shown beside the number (e.g. the ablation's unstated supervision)

    def to_json(self):
        number = {
            "accuracy": self.accuracy,
            "features": self.features,
            "source": self.source,
            "verified": True,
        }
        return {**number, "note": self.note} if self.note else number


@dataclasses.dataclass(frozen=True)
class Row:
    model: str  # a registry.names() name; also the row's key and directory name
    method: str
    remarks: str
    reported: tuple = ()  # Reported numbers; empty: not verified (unless `absent` says why)
    extra: bool = False  # not a row of the paper's table
    absent: str = ""  # why the paper has no number for this row (checked), shown in its cell

    def paper_json(self):
        """The row's paper entries for results.json.

        Returns:
            list of dicts: one per Reported number; else one entry with accuracy None, verified
            True and reported False when the paper was checked to have none (`absent`), or
            verified False when the number could not be checked.
        """
        if self.absent:
            return [{"accuracy": None, "verified": True, "reported": False, "note": self.absent}]
        if not self.reported:
            return [
                {
                    "accuracy": None,
                    "verified": False,
                    "note": (
                        "not verified: the paper's number could not be checked, so none is given"
                    ),
                }
            ]
        return [number.to_json() for number in self.reported]


@dataclasses.dataclass(frozen=True)
class Table:
    key: str
    title: str
    supervision: str
    rows: tuple
    metrics: tuple = ("accuracy",)  # metrics.json keys of its val and test entries, shown
    measured: str = FRAME_ACCURACY  # what its measured columns are, for the caption
    test_split: str = "test"  # the split its test columns score


def _avel(model, method, remarks, *reported, extra=False, absent=""):
    return Row(model, method, remarks, tuple(reported), extra, absent=absent)


TABLES = {
    "supervised": Table(
        "supervised",
        "Table 1: supervised audio-visual event localization",
        "full",
        (
            _avel("audio", "AVEL", "audio only", Reported(59.5, "VGGish audio", SUPERVISED_SOURCE)),
            _avel(
                "visual",
                "AVEL",
                "visual only",
                Reported(55.3, VGG, SUPERVISED_SOURCE),
                Reported(65.0, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "av",
                "AVEL",
                "audio+visual",
                Reported(71.4, VGG, SUPERVISED_SOURCE),
                Reported(74.0, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "av_att",
                "AVEL",
                "audio+visual w/ att",
                Reported(72.7, VGG, SUPERVISED_SOURCE),
                Reported(74.7, RESNET, SUPERVISED_SOURCE),
            ),
            _avel(
                "avsdn", "AVSDN", "audio+visual, seq2seq", Reported(75.4, RESNET, SUPERVISED_SOURCE)
            ),
            _avel(
                "dmrn",
                "AVEL DMRN",
                "audio+visual, dual multimodal residual fusion (extra row, "
                "not in the AVSDN paper's table)",
                extra=True,
                absent=DMRN_ABSENT,
            ),
        ),
    ),
    "weak": Table(
        "weak",
        "Table 2: weakly-supervised audio-visual event localization",
        "weak",
        (
            _avel("audio", "AVEL", "audio only", Reported(53.4, "VGGish audio", WEAK_SOURCE)),
            _avel(
                "visual",
                "AVEL",
                "visual only",
                Reported(52.9, VGG, WEAK_SOURCE),
                Reported(63.4, RESNET, WEAK_SOURCE),
            ),
            _avel(
                "av",
                "AVEL",
                "audio+visual",
                Reported(63.7, VGG, WEAK_SOURCE),
                Reported(71.6, RESNET, WEAK_SOURCE),
            ),
            _avel(
                "av_att",
                "AVEL",
                "audio+visual w/ att",
                Reported(66.7, VGG, WEAK_SOURCE),
                Reported(73.3, RESNET, WEAK_SOURCE),
            ),
            _avel("avsdn", "AVSDN", "audio+visual, seq2seq", Reported(74.2, RESNET, WEAK_SOURCE)),
        ),
    ),
    "ablation": Table(
        "ablation",
        "Table 3: ablation, how the AVSDN decoder is initialised",
        "full",
        (
            _avel(
                "avsdn_init_visual",
                "AVSDN (visual init)",
                "decoder initialised by the visual encoder state only",
                Reported(70.2, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn_init_audio",
                "AVSDN (audio init)",
                "decoder initialised by the audio encoder state only",
                Reported(70.9, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn_label_guided",
                "AVSDN (label-guided)",
                "label-guided: each encoder state also trained on the video label",
                Reported(72.6, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
            _avel(
                "avsdn",
                "AVSDN (full fusion)",
                "full fusion of both encoder states (DMRN-style)",
                Reported(74.2, RESNET, ABLATION_SOURCE, ABLATION_NOTE),
            ),
        ),
    ),
}
# Tables run on their own, not by `all` (which is the AVSDN paper's three).
EXTRA_TABLES = {
    "cross_modal": Table(
        "cross_modal",
        "Cross-modality localization (AVEL, Tian et al. 2018): A2V and V2A accuracy",
        "full",
        (
            Row(
                avdln_task.NAME,
                "AVEL AVDLN",
                "the AVE authors' audio-visual distance learning network, trained as their "
                "code does",
                absent=CROSS_MODAL_ABSENT,
            ),
        ),
        metrics=("a2v_accuracy", "v2a_accuracy"),
        test_split=avdln_task.CrossModalTask.splits["test"],
        measured=(
            "A2V and V2A accuracy on test_match of the epoch best on val_match (the mean of "
            "the two)"
        ),
    ),
}
KNOWN_TABLES = {**TABLES, **EXTRA_TABLES}
TABLE_CHOICES = (*KNOWN_TABLES, ALL)


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


def select(table=ALL, rows=None, extras=True):
    """[(Table, [Row])] for --table, --rows (model names; None: all) and --extras.

    Args:
        table: a key of KNOWN_TABLES ("supervised", "weak", "ablation", "cross_modal") or
            "all" (the paper's three, TABLES).
        rows: row model names to keep (from the selected tables), or None / []: every row.
        extras: keep the rows that are not in the paper's table (e.g. dmrn).
    Returns:
        list of (Table, [Row]) in TABLES order, tables left without rows dropped.
    Raises:
        errors.UserError: for an unknown table or row name, or when nothing is left to run.
    """
    if table not in TABLE_CHOICES:
        raise argument_error("table", f"one of {list(TABLE_CHOICES)}", repr(table))
    tables = list(TABLES.values()) if table == ALL else [KNOWN_TABLES[table]]
    known = {row.model for t in tables for row in t.rows}
    wanted = None
    if rows:
        wanted = set(rows)
        unknown = sorted(wanted - known)
        if unknown:
            raise argument_error(
                "rows", f"row names of `table` {table} from {sorted(known)}", unknown
            )
    selection = []
    for t in tables:
        chosen = [
            row
            for row in t.rows
            if (wanted is None or row.model in wanted) and (extras or not row.extra)
        ]
        if chosen:
            selection.append((t, chosen))
    if not selection:
        raise UserError(
            f"`rows` {','.join(rows or [])} `extras={extras}`: expected at least one row to run, "
            "found none"
        )
    return selection


def own_defaults_model(selection):
    """The model whose own defaults (registry.default_hparams) a selection's runs start from.

    Args:
        selection: select()'s [(Table, [Row])].
    Returns:
        the model name when every selected row is that one model and it has defaults of its
        own (the cross_modal table's avdln), else None (the common defaults).
    """
    models = {row.model for _, rows in selection for row in rows}
    if len(models) == 1 and registry.has_defaults(next(iter(models))):
        return models.pop()
    return None


def plan(selection, seeds, base, output_dir):
    """Every run, in order: table by table, row by row, seed by seed (seed k -> HParams(seed=k)).

    Args:
        selection: select()'s [(Table, [Row])].
        seeds: seeds per row, an int >= 1 (seeds 0..seeds-1).
        base: the HParams every run starts from (model, supervision and seed are set per job).
        output_dir: the experiment directory; runs go to output_dir/runs/<table>/<model>/seed<k>.
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
            for seed in range(seeds):
                hp = base.replace(
                    model=row.model, supervision=table.supervision, seed=seed
                ).validate()
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
        errors.UserError: with strict, naming the first config.json field that differs.
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


def _remarks(row, info):
    remarks = row.remarks
    if info.visual_layout == constants.LAYOUT_VECTOR:
        if row.model == "av_att":
            remarks += "; vector visual features have no regions to attend, so this equals A+V here"
        elif row.model == "dmrn":
            remarks += (
                "; vector visual features have no regions to attend, so it fuses them unattended"
                " here"
            )
    elif row.model == avdln_task.NAME:
        remarks += "; visual maps averaged over space inside the model, one vector per segment"
    return remarks


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
                    "remarks": _remarks(row, info),
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


def _percent(summary):
    mean, std = summary["mean"], summary["std"]
    if mean is None:
        return "pending"
    return f"{100 * mean:.1f}" + ("" if std is None else f" ± {100 * std:.1f}")


def _paper_cell(paper):
    if paper[0].get("reported") is False:
        return NOT_IN_AVSDN_PAPER
    if paper[0]["accuracy"] is None:
        return "n/a (not verified)"
    if len(paper) == 1:
        note = paper[0].get("note")
        return f"{paper[0]['accuracy']:.1f}" + (f" ({note})" if note else "")
    return " / ".join(f"{p['accuracy']:.1f} ({p['features'].split(', ')[-1]})" for p in paper)


def _table_cells(table, rows):
    header = [
        "Method",
        *(column for metric in table.metrics for column in METRIC_COLUMNS[metric][:2]),
        "Remarks",
        PAPER_COLUMN,
    ]
    body = []
    for row in rows:
        remarks = row["remarks"] + (
            f" (same runs as {', '.join(row['same_runs_as'])})" if row["same_runs_as"] else ""
        )
        if not row["complete"] and row["seeds_done"]:
            remarks += f" ({len(row['seeds_done'])} of {len(row['seeds'])} seeds done)"
        body.append(
            [
                row["method"],
                *(
                    _percent(row[f"{split}_{metric}"])
                    for metric in table.metrics
                    for split in ("test", "val")
                ),
                remarks,
                _paper_cell(row["paper"]),
            ]
        )
    return header, body


def _caption(table, seeds, summary):
    """The sentence under a table's title: the data, what was measured, over which seeds.

    Args:
        table: the Table. seeds: its rows' seeds.
        summary: the results.json dict (data_label, dataset.splits, max_videos).
    Returns:
        str.
    """
    measured = table.measured
    if table.test_split != "test":  # the data label counts the test split's videos
        videos = summary["dataset"]["splits"].get(table.test_split, 0)
        if summary["max_videos"]:
            videos = min(videos, summary["max_videos"])
        measured += f" ({videos} {table.test_split} videos)"
    spread = (
        f"mean ± sample std over seeds {', '.join(map(str, seeds))}"
        if len(seeds) > 1
        else f"seed {seeds[0]}"
    )
    return (
        f"Measured here on {summary['data_label']}: {measured},"
        f" {spread}. The last column is what the paper reports on the real AVE features; it was NOT"
        " measured here and is not comparable unless the data is the real AVE release."
    )


def _sources(rows):
    sources = sorted({p["source"] for row in rows for p in row["paper"] if p.get("source")})
    lines = [f"Paper numbers: {source}." for source in sources]
    if any(not row["paper"][0]["verified"] for row in rows):
        lines.append(
            "n/a (not verified): the paper's number for that row could not be checked against the "
            "paper, so none is given."
        )
    return lines


def render_markdown(summary):
    """results.md: every table of the summary as a Markdown table with caption and sources.

    Args:
        summary: the results.json dict (run() builds it; needs rows, tables, data_dir,
            data_label, base_hparams, max_videos, complete).
    Returns:
        str, the Markdown text.
    """
    lines = [
        "# Experiments: the AVSDN paper's tables",
        "",
        (
            f"Data: `{summary['data_dir']}` ({summary['data_label']}). Epochs per run: "
            f"{summary['base_hparams']['epochs']}; max videos per split:"
            f" {summary['max_videos'] or 'all'}. "
            "Status: "
            + (
                "complete."
                if summary["complete"]
                else "INCOMPLETE (rerun the same command to resume)."
            )
        ),
        "",
    ]
    for key in summary["tables"]:
        table = KNOWN_TABLES[key]
        rows = [row for row in summary["rows"] if row["table"] == key]
        header, body = _table_cells(table, rows)
        lines += [
            f"## {table.title}",
            "",
            _caption(table, rows[0]["seeds"], summary),
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        lines += [""] + _sources(rows) + [""]
    return "\n".join(lines)


def render_text(summary, key):
    """One table as aligned plain text, for the console.

    Args:
        summary: the results.json dict (run() builds it).
        key: the table's key in KNOWN_TABLES; summary must hold rows of it.
    Returns:
        str, several lines without a final newline.
    """
    table = KNOWN_TABLES[key]
    rows = [row for row in summary["rows"] if row["table"] == key]
    header, body = _table_cells(table, rows)
    widths = [max(len(cells[i]) for cells in [header, *body]) for i in range(len(header))]

    def line(cells):
        """One table line: the cells padded to their column widths, trailing spaces removed.

        Args:
            cells: one str per column.
        Returns:
            str.
        """
        return "  ".join(
            cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
        ).rstrip()

    text = [
        table.title,
        _caption(table, rows[0]["seeds"], summary),
        "",
        line(header),
        line(["-" * w for w in widths]),
        *map(line, body),
        *_sources(rows),
    ]
    return "\n".join(text)


def _data_label(info, max_videos):
    test = info.splits.get("test", {}).get("videos", 0)
    if max_videos:
        test = min(test, max_videos)
    kind = "synthetic data" if info.generator.startswith("synthesize") else "data"
    visual = "x".join(map(str, info.visual_shape))
    return f"{kind}, {test} test videos, audio {info.audio_dim}-d, visual {visual}-d"


def run(
    data_dir,
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
):
    """Train every selected row once per seed (or read it back), write results.json and results.md.

    Returns the summary written to results.json. Raises UserError for bad settings; a run whose
    loss diverges is reported and the others go on (then UserError once all were tried).

    Args:
        data_dir: the data directory (local or a storage URL).
        output_dir: the experiment directory: runs/, results.json and results.md.
        table: a key of TABLES or "all". rows: row model names, or None: all. extras: keep
            the rows not in the paper's table (select()).
        seeds: runs per row, seeds 0..seeds-1.
        base: the HParams every run starts from; default HParams().
        max_videos: at most this many videos per split (None: all).
        strategy_name: the distribution strategy for trainer.train ("auto" picks one).
        verbose: Keras fit verbosity.
        command: the command line, recorded in results.json.
        log: called with each progress line (default print).
    Returns:
        dict, the summary written to results.json: the data set, base_hparams, runs (one
        record per finished run), rows (summarize_rows), complete, failures, versions.
    Raises:
        errors.UserError: for bad settings, a run directory started with other settings,
            or when any run diverged (after results.json is written).
    """
    base = (base or hparams.HParams()).validate()
    selection = select(table, rows, extras)
    jobs = plan(selection, seeds, base, output_dir)
    data_dir = _local_path(data_dir)
    info = dataset_info.read(data_dir)
    by_hparams = {}
    for job in jobs:
        by_hparams.setdefault(_hparams_key(job.hp), []).append(job.run_dir)
    for hp in {_hparams_key(job.hp): job.hp for job in jobs}.values():
        # Data without the splits a run reads (the match splits of avdln): one message, now.
        trainer.check_splits(data_dir, info, registry.task_for(hp))
    for job in jobs:  # fail on mismatched settings before training anything
        saved_result(job.run_dir, job.hp, data_dir, max_videos)

    started = time.time()
    records, failures = [], []
    summary = {
        "description": (
            "The AVSDN paper's tables trained on the data below. Measured accuracies are frame-wise"
            " accuracies of the epoch best on val; the 'paper' entries are what the papers report"
            " on the real AVE features and were not measured here."
            + (
                " The cross_modal table's are the A2V and V2A accuracies on test_match (and"
                " val_match) of the epoch best on val_match."
                if any(t.key in EXTRA_TABLES for t, _ in selection)
                else ""
            )
        ),
        "command": command,
        "data_dir": data_dir,
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

    def write():
        summary.update(
            {
                "runs": records,
                "rows": summarize_rows(selection, jobs, records, info, output_dir),
                "complete": len(records) == len(jobs),
                "failures": failures,
                "wall_seconds_this_process": round(time.time() - started, 1),
            }
        )
        tf.io.gfile.makedirs(output_dir)
        fileio.write_json(os.path.join(output_dir, RESULTS_JSON), summary)
        fileio.write_text(os.path.join(output_dir, RESULTS_MD), render_markdown(summary))

    reused = trained = 0
    try:
        for index, job in enumerate(jobs, 1):
            prefix = f"[{index}/{len(jobs)}] {job.name}"
            candidates = [job.run_dir] + [
                d for d in by_hparams[_hparams_key(job.hp)] if d != job.run_dir
            ]
            found = next(
                (
                    (d, r)
                    for d in candidates
                    if (r := saved_result(d, job.hp, data_dir, max_videos, strict=d == job.run_dir))
                ),
                None,
            )
            if found:
                run_dir, result = found
                reused += 1
                log(
                    f"{prefix}: reused the finished run in {run_dir} (not retrained): "
                    + _scores_line(job.table, result)
                )
                records.append(_record(job, result, run_dir, trained=False))
            else:
                log(f"{prefix}: training {job.hp.epochs} epochs in {job.run_dir}")
                try:
                    result = trainer.train(
                        data_dir,
                        job.run_dir,
                        job.hp,
                        strategy_name=strategy_name,
                        max_videos=max_videos,
                        verbose=verbose,
                    )
                except trainer.TrainingDiverged as error:
                    log(f"{prefix}: FAILED: {error}")
                    failures.append({"run": job.name, "run_dir": job.run_dir, "error": str(error)})
                    continue
                trained += 1
                records.append(_record(job, result, job.run_dir, trained=True))
            write()
    except KeyboardInterrupt:
        log(
            f"interrupted: {len(records)} of {len(jobs)} runs done; rerun the same command to"
            " resume"
        )
        raise
    finally:
        write()
    log("")
    for key in summary["tables"]:
        log(render_text(summary, key))
        log("")
    log(
        f"{trained} run{'s' * (trained != 1)} trained, {reused} reused; results in"
        f" {os.path.join(output_dir, RESULTS_JSON)} and {os.path.join(output_dir, RESULTS_MD)}"
        f" ({summary['wall_seconds_this_process']:.0f}s)"
    )
    if failures:
        raise UserError(
            f"{len(failures)} of {len(jobs)} runs diverged"
            f" ({', '.join(f['run'] for f in failures)}); details in"
            f" {os.path.join(output_dir, RESULTS_JSON)} field failures"
        )
    return summary
