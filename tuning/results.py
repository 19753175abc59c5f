"""What a search leaves behind: trials.json, best_hparams.json, and the summary table it prints."""

import os

import tensorflow as tf

from avsdn_tf import fileio

from .hypermodel import TUNER_KEYS_PREFIX
from .tuner import OBJECTIVE, RESULT

TRIALS_FILE = "trials.json"
BEST_FILE = "best_hparams.json"
COMPLETED = "COMPLETED"  # keras_tuner's TrialStatus.COMPLETED


def _read_result(tuner, trial_id):
    path = os.path.join(tuner.project_dir, f"trial_{trial_id}", RESULT)
    try:
        return fileio.read_json(path) if tf.io.gfile.exists(path) else {}
    except ValueError:
        return {}


def trial_records(tuner):
    """One record per trial the oracle knows, in the order the trials were created.

    The full HParams are recomputed from the trial's values with this process's hypermodel, so
    they are right even when the trial ran on a worker whose files this machine cannot see.

    Args:
        tuner: the search's TrainingTuner (its oracle, hypermodel and project directory).
    Returns:
        list of dicts: trial_id, status, val_frame_accuracy (None unless COMPLETED), best_epoch,
        hparams (the full HParams as a dict), values (the searched ones), hyperband (the tuner/*
        values without the prefix, or None), tuner_id, seconds, run_dir, message.
    """
    trials = tuner.oracle.trials
    order = [trial_id for trial_id in tuner.oracle.start_order if trial_id in trials]
    order += sorted(set(trials) - set(order))
    records = []
    for trial_id in order:
        trial = trials[trial_id]
        values = dict(trial.hyperparameters.values)
        result = _read_result(tuner, trial_id)
        best_epoch = (
            trial.metrics.get_last_value("best_epoch")
            if trial.metrics.exists("best_epoch")
            else None
        )
        records.append(
            {
                "trial_id": trial_id,
                "status": trial.status,
                OBJECTIVE: trial.score if trial.status == COMPLETED else None,
                "best_epoch": int(best_epoch) if best_epoch else result.get("best_epoch"),
                "hparams": tuner.hypermodel.hparams(trial.hyperparameters).to_dict(),
                "values": {
                    name: value
                    for name, value in values.items()
                    if not name.startswith(TUNER_KEYS_PREFIX)
                },
                "hyperband": (
                    {
                        name[len(TUNER_KEYS_PREFIX) :]: value
                        for name, value in values.items()
                        if name.startswith(TUNER_KEYS_PREFIX)
                    }
                    or None
                ),
                "tuner_id": result.get("tuner_id"),
                "seconds": result.get("seconds"),
                "run_dir": tuner.trial_run_dir(trial_id),
                "message": trial.message,
            }
        )
    return records


def best_record(records):
    """The completed trial with the highest val_frame_accuracy (the earliest on a tie).

    Args:
        records: trial_records()'s list.
    Returns:
        one of the records, or None when no trial completed.
    """
    completed = [record for record in records if record["status"] == COMPLETED]
    # Ties go to the earlier trial, as KerasTuner's own ranking does.
    return max(completed, key=lambda record: record[OBJECTIVE]) if completed else None


def write(directory, records, search_config):
    """trials.json (every trial) and best_hparams.json (the winner's full HParams); the best record.

    Args:
        directory: the search directory (local or a storage URL).
        records: trial_records()'s list.
        search_config: the search's settings (make_tuner's config; needs data_dir and tuner).
    Returns:
        the best record (best_record), or None: then best_hparams.json is not written.
    """
    best = best_record(records)
    fileio.write_json(
        os.path.join(directory, TRIALS_FILE),
        {
            "objective": {"name": OBJECTIVE, "direction": "max"},
            "search": search_config,
            "best_trial_id": best and best["trial_id"],
            "trials": records,
        },
    )
    if best is not None:
        fileio.write_json(
            os.path.join(directory, BEST_FILE),
            {
                "hparams": best["hparams"],
                "trial_id": best["trial_id"],
                OBJECTIVE: best[OBJECTIVE],
                "best_epoch": best["best_epoch"],
                "data_dir": search_config["data_dir"],
                "tuner": search_config["tuner"],
                "usage": train_command(directory, search_config, best["hparams"]["model"]),
            },
        )
    return best


def train_command(directory, search_config, model):
    """The command that trains the best hyperparameters into a new run, beside the search
    (best_hparams.json's "usage" and the search's last line).

    Args:
        directory: the search directory. search_config: the search's settings (its data_dir).
        model: the best trial's model.
    Returns:
        str: `python -m avsdn_tf.train --data_dir D --hparams_file DIRECTORY/best_hparams.json
        --model_dir PARENT/MODEL-tuned`.
    """
    run_dir = os.path.join(os.path.dirname(directory.rstrip("/")), f"{model}-tuned")
    return (
        f"python -m avsdn_tf.train --data_dir {search_config['data_dir']} "
        f"--hparams_file {os.path.join(directory, BEST_FILE)} --model_dir {run_dir}"
    )


def _format(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(records, searched_names):
    """The trials, best first: id, status, val accuracy, epochs, best epoch and the searched values.

    Args:
        records: trial_records()'s list.
        searched_names: the searched fields, one column each.
    Returns:
        str: a header line, a rule and one line per trial (the best marked *), completed trials
        first by accuracy.
    """
    best = best_record(records)
    ordered = sorted(
        records, key=lambda r: (r["status"] != COMPLETED, -(r[OBJECTIVE] or 0.0))
    )  # stable
    header = ["trial", "status", "val_acc", "epochs", "best_ep", *searched_names]
    rows = []
    for record in ordered:
        marker = "*" if best is not None and record["trial_id"] == best["trial_id"] else " "
        accuracy = record[OBJECTIVE]
        rows.append(
            [
                f"{marker}{record['trial_id']}",
                record["status"],
                "-" if accuracy is None else f"{accuracy:.4f}",
                str(record["hparams"]["epochs"]),
                _format(record["best_epoch"]),
                *(_format(record["values"].get(name)) for name in searched_names),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
