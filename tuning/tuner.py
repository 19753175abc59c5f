"""The Tuner whose trials are avsdn_tf.training.train runs, the oracles, and the distributed chief.

Each trial trains in its own run directory, TUNE/search/trial_<id>/run, through the same
`trainer.train` as `python -m avsdn_tf.train` (strategy, best-on-val selection, resumable
checkpoints), and reports the val frame-wise accuracy of its best epoch. So:

- a search killed mid-trial resumes that trial from its last finished epoch (KerasTuner's oracle
  re-queues the trial it had running; train() finds the trial's checkpoints), and finished trials
  are never rerun (the oracle reloads them from TUNE/search);
- Hyperband's later rounds ("tuner/trial_id", "tuner/initial_epoch") continue the earlier round's
  run: its checkpoints and state are copied into the new trial's run directory and train()
  resumes there, which gives the same model as training the trial's epochs from scratch. With the
  cosine schedule (its decay spans the run's epochs) a continued run would differ, so such trials
  train from scratch.
"""

import gc
import os
import time
from concurrent import futures

import keras
import keras_tuner
import tensorflow as tf

from avsdn_tf import constants, fileio, progress
from avsdn_tf.errors import UserError, argument_error
from avsdn_tf.models.registry import load_run
from avsdn_tf.runs import CHECKPOINTS, RunDir
from avsdn_tf.training import trainer

from .hypermodel import TUNER_KEYS_PREFIX

OBJECTIVE = "val_frame_accuracy"
TUNERS = ("hyperband", "bayesian", "random")
STRATEGIES = constants.SINGLE_PROCESS_STRATEGIES
PROJECT = "search"  # KerasTuner's project directory inside --output_dir
RUN = "run"  # a trial's avsdn_tf run directory inside its trial directory
RESULT = "result.json"  # what the tuner that ran a trial wrote about it, beside the run directory

ORACLE_IP = "KERASTUNER_ORACLE_IP"
ORACLE_PORT = "KERASTUNER_ORACLE_PORT"
TUNER_ID = "KERASTUNER_TUNER_ID"


class SearchError(UserError, keras_tuner.errors.FatalError):
    """A user mistake found inside a trial: it stops the search (KerasTuner re-raises
    FatalError)."""


def role():
    """'single', 'chief' or 'worker', from the KERASTUNER_* environment variables."""
    if ORACLE_IP not in os.environ:
        return "single"
    missing = [name for name in (ORACLE_PORT, TUNER_ID) if not os.environ.get(name)]
    if missing:
        raise UserError(
            f"distributed search: {ORACLE_IP} is set, so expected {' and '.join(missing)} "
            "as well, found them unset"
        )
    return "chief" if "chief" in os.environ[TUNER_ID] else "worker"


def make_oracle(name, max_trials, epochs, seed, hyperband_factor=3):
    """The KerasTuner oracle for --tuner; its sampling is seeded from --seed.

    Args:
        name: "hyperband", "bayesian" or "random".
        max_trials: the most trials the oracle creates.
        epochs: Hyperband's max_epochs (the most any trial trains).
        seed: the run's seed; the oracle's is 10007 + seed.
        hyperband_factor: Hyperband keeps 1 in this many trials per round.
    Returns:
        keras_tuner Oracle maximising val_frame_accuracy.
    Raises:
        errors.UserError: for another name, or bayesian without scikit-learn and scipy.
    """
    objective = keras_tuner.Objective(OBJECTIVE, direction="max")
    oracle_seed = 10_007 + seed  # KerasTuner treats a seed of 0 as "pick one at random"
    if name == "random":
        return keras_tuner.oracles.RandomSearchOracle(
            objective=objective, max_trials=max_trials, seed=oracle_seed
        )
    if name == "bayesian":
        try:
            return keras_tuner.oracles.BayesianOptimizationOracle(
                objective=objective, max_trials=max_trials, seed=oracle_seed
            )
        except ImportError as error:
            raise UserError(
                "tuner bayesian: expected scikit-learn and scipy to be installed, found them "
                f"missing ({error}); pip install 'keras-tuner[bayesian]'",
                argument="tuner",
            ) from None
    if name == "hyperband":
        oracle = keras_tuner.oracles.HyperbandOracle(
            objective=objective, max_epochs=epochs, factor=hyperband_factor, seed=oracle_seed
        )
        oracle.max_trials = max_trials  # the base Oracle stops creating trials at this count
        return oracle
    raise argument_error("tuner", f"one of {TUNERS}", repr(name))


class TrainingTuner(keras_tuner.engine.base_tuner.BaseTuner):
    """A KerasTuner tuner whose trial is one `avsdn_tf.training.train` run of the sampled
    HParams."""

    def __init__(self, oracle, hypermodel, data, strategy_name="auto", max_videos=None, **kwargs):
        """Args:
        oracle, hypermodel, kwargs: as keras_tuner's BaseTuner.
        data: the dataset_info.DataDir every trial trains on (read once, by the command).
        strategy_name: the tf.distribute strategy of every trial. max_videos: videos per split.
        """
        super().__init__(oracle, hypermodel, **kwargs)
        self.data, self.strategy_name, self.max_videos = data, strategy_name, max_videos

    def trial_run_dir(self, trial_id):
        """The avsdn_tf run directory of a trial.

        Args:
            trial_id: the KerasTuner trial id (str).
        Returns:
            str, <project_dir>/trial_<id>/run.
        """
        return os.path.join(self.project_dir, f"trial_{trial_id}", RUN)

    def run_trial(self, trial, verbose=1):
        """Train one trial with trainer.train (continuing its Hyperband parent when it can).

        Args:
            trial: the keras_tuner Trial to run (its hyperparameters are one sample).
            verbose: Keras fit verbosity.
        Returns:
            dict of metrics for the oracle: val_frame_accuracy (of the best epoch) and best_epoch
            (float, 0 when unknown); result.json is written beside the run directory.
        Raises:
            SearchError (an errors.UserError): for values outside this tuner's search space, or
                a user mistake train() reports; stops the search.
            keras_tuner.errors.FailedTrialError: when training diverges (the trial fails, the
                search goes on).
        """
        values = trial.hyperparameters.values
        unknown = sorted(
            name
            for name in values
            if not name.startswith(TUNER_KEYS_PREFIX) and name not in self.hypermodel.searched_names
        )
        if unknown:
            raise SearchError(
                f"trial {trial.trial_id}: expected hyperparameters from this tuner's search space "
                f"{self.hypermodel.searched_names}, found {unknown} (start the chief and every "
                "worker with the same --model, --space_file and data)"
            )
        sample = self.hypermodel.hparams(trial.hyperparameters)
        run_dir = self.trial_run_dir(trial.trial_id)
        continued = self._continue_parent(trial, sample, run_dir)
        progress.print_line(
            f"[{self.tuner_id}] trial {trial.trial_id}: training {sample.model} for {sample.epochs}"
            " epochs" + (f", continuing trial {continued}" if continued else "") + f" in {run_dir}"
        )
        keras.backend.clear_session()
        gc.collect()
        started = time.time()
        try:
            result = trainer.train(
                self.data,
                run_dir,
                sample,
                strategy_name=self.strategy_name,
                max_videos=self.max_videos,
                verbose=verbose,
                log=progress.print_line,  # a trial's epochs are the search's progress
            )
        except trainer.TrainingDiverged as error:
            raise keras_tuner.errors.FailedTrialError(str(error)) from None
        except UserError as error:
            raise SearchError(str(error)) from None
        accuracy = float(result["val"]["accuracy"])
        best_epoch = best_epoch_of(result)
        fileio.write_json(
            os.path.join(os.path.dirname(run_dir), RESULT),
            {
                "trial_id": trial.trial_id,
                "tuner_id": self.tuner_id,
                OBJECTIVE: accuracy,
                "best_epoch": best_epoch,
                "epochs_done": result["epochs_done"],
                "continued_from": continued,
                "seconds": round(time.time() - started, 2),
                "hparams": sample.to_dict(),
            },
        )
        return {OBJECTIVE: accuracy, "best_epoch": float(best_epoch or 0)}

    def _continue_parent(self, trial, sample, run_dir):
        """Seed a Hyperband continuation's run directory from its parent trial; the parent's id or
        None."""
        values = trial.hyperparameters.values
        parent_id = values.get(f"{TUNER_KEYS_PREFIX}trial_id")
        initial_epoch = int(values.get(f"{TUNER_KEYS_PREFIX}initial_epoch") or 0)
        if not parent_id or not initial_epoch:
            return None
        run = RunDir(run_dir)
        if run.read_state() is not None:
            return parent_id  # seeded before this trial was interrupted: train() resumes it
        if sample.lr_schedule == "cosine":
            return None
        parent = RunDir(self.trial_run_dir(parent_id))
        state = parent.read_state() or {}
        if (
            state.get("epochs_done") != initial_epoch
            or not tf.io.gfile.exists(parent.last_checkpoint)
            or not tf.io.gfile.exists(parent.best_checkpoint)
        ):
            # Not reachable from here (no shared directory), or stopped early: from scratch.
            return None
        state.pop("finished", None)
        with fileio.staged_directory(run_dir, marker=os.path.basename(parent.state)) as staging:
            tf.io.gfile.makedirs(os.path.join(staging, CHECKPOINTS))
            for path in (parent.last_checkpoint, parent.best_checkpoint):
                tf.io.gfile.copy(path, os.path.join(staging, CHECKPOINTS, os.path.basename(path)))
            fileio.write_json(os.path.join(staging, os.path.basename(parent.state)), state)
        return parent_id

    def load_model(self, trial):
        """The best-on-val model of a trial, as its run saved it.

        Args:
            trial: a keras_tuner Trial that has run.
        Returns:
            the Keras training model of its best checkpoint (load_run(...).model, not compiled).
        Raises:
            errors.UserError: when the trial's run directory cannot be loaded.
        """
        return load_run(self.trial_run_dir(trial.trial_id)).model

    def save_model(self, trial_id, model, step=0):
        """Nothing: trainer.train saves each trial's checkpoints itself.

        Args:
            trial_id: the trial's id. model: its Keras model. step: the epoch (unused).
        Returns:
            None.
        """
        pass  # train() saves each trial's checkpoints itself

    def search(self, *args, **kwargs):
        if role() == "chief":
            self.oracle.verbose = kwargs.get("verbose", 1)
            self.save()
            serve_oracle(self.oracle)
            return
        super().search(*args, **kwargs)


def best_epoch_of(result):
    """The 1-based epoch whose val accuracy train() kept: the first best in its history.

    Read from the history rather than result["best_epoch"] (which is the fallback for a result
    without history). That field was off by one in runs that resumed after an epoch that was not
    the best while trainer.SelectOnValidation read state.json's 1-based best_epoch as 0-based;
    it now converts it (best_epoch - 1), so both agree.

    Args:
        result: trainer.train's result dict (history: [{"epoch" (1-based),
            "val_frame_accuracy", ...}], best_epoch).
    Returns:
        int, the 1-based best epoch; result["best_epoch"] (possibly None) without history.
    """
    history = result.get("history") or []
    if not history:
        return result.get("best_epoch")
    best = max(entry["val_frame_accuracy"] for entry in history)
    return next(entry["epoch"] for entry in history if entry["val_frame_accuracy"] == best)


def serve_oracle(oracle, poll_seconds=1.0):
    """The chief: serve the oracle to the workers until every worker has been told to stop.

    KerasTuner's own loop (oracle_chief.start_server) does the same but polls every 20 s once the
    first worker is done; this one polls every second and shuts the server down cleanly.

    Args:
        oracle: the search's keras_tuner Oracle.
        poll_seconds: seconds between checks whether every worker is done.
    Returns:
        None, once the workers are done and the server has stopped.
    Raises:
        errors.UserError: when the chief cannot listen on KERASTUNER_ORACLE_IP:PORT.
    """
    import grpc
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    address = f"{os.environ[ORACLE_IP]}:{os.environ[ORACLE_PORT]}"
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    servicer = oracle_chief.OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as error:
        bound, reason = 0, str(error)
    else:
        reason = "the address is in use or not on this machine"
    if not bound:
        raise UserError(
            f"{ORACLE_IP}:{ORACLE_PORT}: expected an address the chief can listen on, found "
            f"{address} ({reason})"
        )
    server.start()
    progress.print_line(f"chief: serving the oracle on {address}")
    try:
        while not (servicer.stop_triggered and oracle_chief.exit_chief(oracle)):
            time.sleep(poll_seconds)
    finally:
        server.stop(grace=2).wait()
