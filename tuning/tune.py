"""`python -m tuning.tune`: search a registered model's hyperparameters with KerasTuner.

    python -m tuning.tune --data_dir OUT --tuner hyperband|bayesian|random --max_trials N
    --output_dir TUNE
    python -m avsdn_tf.train --data_dir OUT --hparams_file TUNE/best_hparams.json

Every trial is an avsdn_tf.training.train run scored by its val frame-wise accuracy. Writes
TUNE/trials.json, TUNE/best_hparams.json and prints a summary table. Running the same command
again resumes the search in TUNE (a larger --max_trials extends it); finished trials are not
rerun. Distributed: the same command on a chief and on workers, told apart by
KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT (docs/tuning.md).
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import os
import sys

import tensorflow as tf
from absl import flags

from avsdn_tf import cli, dataset_info, fileio, progress
from avsdn_tf.data import synthetic
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import registry
from avsdn_tf.training import trainer

from . import results, space
from .hypermodel import AVSDNHyperModel
from .tuner import PROJECT, STRATEGIES, TUNER_ID, TUNERS, TrainingTuner, make_oracle, role

SEARCH_FILE = "search.json"  # the settings a resumed search must share with the one it resumes

FLAGS = flags.FLAGS


_HPARAM_FLAGS = ("model", "epochs", "seed", "supervision")


def define_flags():
    """The command's flags, defined when it runs (not at import, so modules with flags of the
    same names can be imported side by side)."""
    cli.define(
        "data_dir",
        "max_videos",
        hparams_file=(
            "JSON hyperparameters every trial starts from (the fields that are not searched); "
            "--model, --epochs, --seed, --supervision override it."
        ),
    )
    cli.define(
        strategy="tf.distribute strategy every trial trains under.",
        choices={"strategy": STRATEGIES},
    )
    cli.define_hparams(
        _HPARAM_FLAGS,
        helps={
            "model": "Registered model to tune, or 'help' to list them.",
            "epochs": "Epochs per trial (Hyperband: the most any trial gets).",
            "seed": "Seed of every trial's training and of the oracle's sampling.",
        },
    )
    flags.DEFINE_enum("tuner", "hyperband", list(TUNERS), "Search algorithm (KerasTuner oracle).")
    flags.DEFINE_integer(
        "max_trials",
        10,
        "Trials in the search (Hyperband: at most this many). Run again with "
        "a larger number in the same --output_dir to extend a search.",
    )
    cli.define(
        output_dir=(
            "runs/tune",
            "Search directory: KerasTuner state, one run per trial, trials.json, "
            "best_hparams.json.",
        )
    )
    flags.DEFINE_string(
        "space_file",
        None,
        "JSON object narrowing or widening the search space, e.g. "
        '{"encoder_units": [64, 128], "dropout": {"min": 0.0, "max": 0.3, "step": 0.1}, '
        '"batch_size": 32}: a list is a choice, one value fixes the field, min/max a range.',
    )
    flags.DEFINE_integer("hyperband_factor", 3, "Hyperband: keep 1 in this many trials per round.")
    flags.DEFINE_bool("overwrite", False, "Delete the search in --output_dir and start again.")
    cli.define(*cli.THREAD_FLAGS)
    cli.rename_flags(directory="output_dir")


# Search settings a resumed search must keep (max_trials may grow; strategy may change).
_MUST_MATCH = ("model", "tuner", "data", "base_hparams", "hyperband_factor", "max_videos", "space")


def resolve_base():
    """Defaults, then --hparams_file, then --model / --epochs / --seed / --supervision."""
    base = cli.hparams_from_flags(_HPARAM_FLAGS)
    if base.model not in registry.names(tunable=True):
        raise argument_error("model", f"one of {registry.names(tunable=True)}", repr(base.model))
    return base


def check_resumable(directory, config):
    """On a resumed search, every setting in _MUST_MATCH must equal the first run's.

    Args:
        directory: the search directory; nothing is checked without its search.json.
        config: this run's settings (make_tuner's config).
    Returns:
        None.
    Raises:
        errors.UserError: naming the first setting that differs from search.json's.
    """
    path = os.path.join(directory, SEARCH_FILE)
    if not tf.io.gfile.exists(path):
        return
    saved = fileio.read_json(path)
    hint = "(use a new --output_dir, or --overwrite to start again)"
    for key in _MUST_MATCH:
        want, found = config[key], saved.get(key)
        if want == found:
            continue
        if isinstance(want, dict) and isinstance(found, dict):  # name the first field that differs
            field = next(
                name for name in sorted(set(want) | set(found)) if want.get(name) != found.get(name)
            )
            key, want, found = f"{key}.{field}", want.get(field), found.get(field)
        elif key == "space":
            want = {param["name"]: param for param in want}
            found = {param["name"]: param for param in found or []}
            field = next(name for name in [*want, *found] if want.get(name) != found.get(name))
            key, want, found = f"space {field!r}", want.get(field), found.get(field)
        raise input_error(
            f"{path} field {key}",
            f"{want!r} to resume the search in {directory}",
            f"{found!r} {hint}",
        )


def make_tuner(
    data,
    directory,
    tuner_name,
    max_trials,
    base,
    overrides=None,
    strategy_name="auto",
    hyperband_factor=3,
    max_videos=None,
    overwrite=False,
    space_source="search space",
):
    """The hypermodel, oracle and tuner of a search, plus the search's settings (search.json).

    Args:
        data: the dataset_info.DataDir every trial trains on (a path is opened here).
        directory: the search directory (KerasTuner state, one run per trial).
        tuner_name: "hyperband", "bayesian" or "random".
        max_trials: trials in the search (Hyperband: at most this many).
        base: the HParams every trial starts from (model, epochs, seed, supervision).
        overrides: a space file's object (read_space_file), or None: the default space.
        strategy_name: the tf.distribute strategy every trial trains under.
        hyperband_factor: Hyperband keeps 1 in this many trials per round.
        max_videos: at most this many videos per split (None: all).
        overwrite: delete the search in directory first (not on a worker).
        space_source: the space file's name, for error messages.
    Returns:
        (tuner, config): the TrainingTuner, and the settings dict written to search.json (not by
        a worker).
    Raises:
        errors.UserError: for a bad data directory, space, tuner name or distributed setting,
            or a resumed search whose settings differ.
    """
    data = dataset_info.DataDir.of(data)
    info = data.info
    params = space.build(
        base.model, info.visual_layout, base.epochs, overrides, source=space_source
    )
    hypermodel = AVSDNHyperModel(base, params, info.audio_dim, info.visual_shape, info.num_segments)
    config = {
        "model": base.model,
        "tuner": tuner_name,
        "max_trials": max_trials,
        "data_dir": data.path,
        "data": trainer.data_signature(info),
        "space": [param.to_json() for param in params],
        "base_hparams": base.to_dict(),
        "hyperband_factor": hyperband_factor if tuner_name == "hyperband" else None,
        "max_videos": max_videos,
        "strategy": strategy_name,
    }
    current_role = role()
    if overwrite and current_role != "worker":
        fileio.remove_tree(directory)
    if current_role != "worker":
        check_resumable(directory, config)
    tf.io.gfile.makedirs(directory)
    oracle = make_oracle(tuner_name, max_trials, base.epochs, base.seed, hyperband_factor)
    tuner = TrainingTuner(
        oracle,
        hypermodel,
        data,
        strategy_name=strategy_name,
        max_videos=max_videos,
        directory=directory,
        project_name=PROJECT,
        overwrite=False,
    )
    if current_role != "worker":
        fileio.write_json(os.path.join(directory, SEARCH_FILE), config)
    return tuner, config


def _print_results(directory, tuner, records, tuner_name, base):
    """Print the trials' table and where they are written.

    Args:
        directory: the search directory. tuner: the finished TrainingTuner. records: its
        results.trial_records. tuner_name: the oracle's name. base: the base HParams.
    """
    print()
    print(
        f"{len(records)} trial(s) of {base.model} ({tuner_name}), objective {results.OBJECTIVE}"
        " (max):"
    )
    print(results.summary_table(records, tuner.hypermodel.searched_names))
    print()
    print(f"trials: {os.path.join(directory, results.TRIALS_FILE)}")


def _print_best(directory, best, config):
    """Print the best trial, the search's epochs and the command that trains the best
    hyperparameters into a new run; or refuse when no trial completed.

    Args:
        directory: the search directory. best: results.write's best record, or None.
        config: the search's settings (make_tuner's config: data_dir, tuner, base_hparams).
    Raises:
        errors.UserError: naming trials.json when no trial completed.
    """
    if best is None:
        raise UserError(
            f"{directory}: expected at least one completed trial, found none "
            f"(see the messages in {os.path.join(directory, results.TRIALS_FILE)})"
        )
    best_file = os.path.join(directory, results.BEST_FILE)
    command = results.train_command(directory, config, best["hparams"]["model"])
    epochs = config["base_hparams"]["epochs"]
    per_trial = (
        f"at most {epochs} epochs per trial (Hyperband's rounds give fewer)"
        if config["tuner"] == "hyperband"
        else f"{epochs} epochs per trial"
    )
    print(
        f"best: trial {best['trial_id']}, val frame accuracy {best[results.OBJECTIVE]:.4f};"
        f" hyperparameters in {best_file}\n"
        f"the search's --epochs was {epochs}: {per_trial}; the best trial trained"
        f" {best['hparams']['epochs']}, the epochs {results.BEST_FILE} holds (add --epochs N to"
        " train longer)\n"
        f"train it in a new run: {command}"
    )


def run_search(
    data,
    directory,
    tuner_name,
    max_trials,
    base,
    overrides=None,
    strategy_name="auto",
    hyperband_factor=3,
    max_videos=None,
    overwrite=False,
    verbose=1,
    space_source="search space",
):
    """Run (or resume, or serve as chief, or work on) a search; the best trial's record, or None
    on a worker.

    Args:
        data: the dataset_info.DataDir every trial trains on (a path is opened here).
        directory, tuner_name, max_trials, base, overrides, strategy_name,
        hyperband_factor, max_videos, overwrite, space_source: as make_tuner;
            max_trials >= 1 and hyperband_factor >= 2.
        verbose: Keras fit verbosity of each trial.
    Returns:
        the best trial's record (results.trial_records; also in best_hparams.json), or None on
        a worker.
    Raises:
        errors.UserError: for bad settings (make_tuner), a user mistake found inside a trial,
            or no completed trial at all.
    """
    if max_trials < 1:
        raise argument_error("max_trials", "a positive integer", max_trials)
    if hyperband_factor < 2:
        raise argument_error("hyperband_factor", "an integer of at least 2", hyperband_factor)
    data = dataset_info.DataDir.of(data)
    tuner, config = make_tuner(
        data,
        directory,
        tuner_name,
        max_trials,
        base,
        overrides,
        strategy_name,
        hyperband_factor,
        max_videos,
        overwrite,
        space_source,
    )
    current_role = role()
    done = len(tuner.oracle.trials) if current_role != "worker" else 0
    if done:
        progress.print_line(
            f"resuming the search in {directory}: {done} trial(s) recorded, at most {max_trials}"
            " in all"
        )
    tuner.search(verbose=verbose)
    if current_role == "worker":
        progress.print_line(
            f"worker {os.environ[TUNER_ID]}: no trials left; the chief writes the results"
        )
        return None
    records = results.trial_records(tuner)
    best = results.write(directory, records, config)
    _print_results(directory, tuner, records, tuner_name, base)
    _print_best(directory, best, config)
    return best


def main(argv):
    """The command: run_search() with the flags (define_flags); --model=help lists the models.

    Args:
        argv: the command line left after absl's flags (unused).
    Returns:
        None.
    Raises:
        errors.UserError: for bad flags or files, or when run_search() raises one.
    """
    del argv
    if FLAGS.model == "help":
        print(registry.describe())
        return
    cli.configure_threads()
    base = resolve_base()
    overrides = space.read_space_file(FLAGS.space_file) if FLAGS.space_file else None
    data = dataset_info.DataDir.open(FLAGS.data_dir or synthetic.ensure_default_dataset())
    run_search(
        data,
        FLAGS.output_dir,
        FLAGS.tuner,
        FLAGS.max_trials,
        base,
        overrides,
        strategy_name=FLAGS.strategy,
        hyperband_factor=FLAGS.hyperband_factor,
        max_videos=FLAGS.max_videos,
        overwrite=FLAGS.overwrite,
        verbose=2 if not sys.stdout.isatty() else 1,
        space_source=FLAGS.space_file or "search space",
    )


if __name__ == "__main__":
    define_flags()
    cli.run(main)
