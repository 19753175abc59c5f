"""Training: strategy, data, model, best-on-val selection, resumable checkpoints, final metrics.

One function, `train`, used by the train command, the experiments runner and the tuner, so there
is a single copy of how a model is fitted and selected.
"""

import contextlib
import dataclasses
import gc
import math
import os
import time

import keras
import tensorflow as tf

from avsdn_tf import constants, dataset_info, errors, fileio, hparams, progress
from avsdn_tf.data import normalization, pipeline
from avsdn_tf.errors import UserError, argument_error, input_error
from avsdn_tf.models import registry, tasks
from avsdn_tf.runs import RUN_FORMAT, RunDir, read_run
from avsdn_tf.training import evaluation, strategies


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def data_signature(info):
    """The data's dims, which a resumed search must match (the tuner's search.json); a run
    records more of its data (DatasetInfo.signature, these dims included).

    Args:
        info: a dataset_info.DatasetInfo.
    Returns:
        {"audio_dim": A, "visual_shape": [V] or [H, W, C], "num_segments": T or None}.
    """
    return {
        "audio_dim": info.audio_dim,
        "visual_shape": list(info.visual_shape),
        "num_segments": info.num_segments,
    }


def learning_rate_schedule(hp, steps_per_epoch):
    """The learning rate of hp's schedule, per optimizer step, as the authors' per-epoch
    schedulers give it: a decay after epoch e applies from the first step of epoch e + 1.

    Keras evaluates the schedule at the step's index k (0-based) before the update, so "decayed
    after e epochs" is k >= e * steps_per_epoch: ExponentialDecay's staircase floor(k / decay)
    does that; PiecewiseConstantDecay keeps its value while k <= boundary, so its boundaries
    are one step before each milestone's first step.

    Args:
        hp: HParams (learning_rate, lr_schedule and its fields, epochs).
        steps_per_epoch: optimizer steps per epoch.
    Returns:
        a float, or a keras LearningRateSchedule of the step index.
    """
    if hp.lr_schedule == "step":
        return keras.optimizers.schedules.ExponentialDecay(
            hp.learning_rate,
            decay_steps=hp.lr_decay_epochs * steps_per_epoch,
            decay_rate=hp.lr_decay_rate,
            staircase=True,
        )
    if hp.lr_schedule == "multistep":  # PyTorch's MultiStepLR, counted in steps
        epochs = hp.milestones()
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            [epoch * steps_per_epoch - 1 for epoch in epochs],
            [hp.learning_rate * hp.lr_decay_rate**k for k in range(len(epochs) + 1)],
        )
    if hp.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            hp.learning_rate, decay_steps=hp.epochs * steps_per_epoch
        )
    return hp.learning_rate


def compile_model(model, hp, steps_per_epoch):
    """Compile with the task's Adam (Keras', or PyTorch's form for the models whose authors use
    torch.optim.Adam: models/optimizers.PyTorchAdam), hp's learning-rate schedule and gradient
    clipping (hp.clip_norm, the global norm as PyTorch's clip_grad_norm_); the losses and
    metrics are hp's task's.

    Args:
        model: the model registry.task_for(hp).build made.
        hp: HParams (learning rate, schedule, jit_compile, steps_per_execution, supervision).
        steps_per_epoch: batches per epoch (the step schedule counts in steps).
    """
    task = registry.task_for(hp)
    schedule = learning_rate_schedule(hp, steps_per_epoch)
    task.compile(
        model,
        task.adam(schedule, global_clipnorm=hp.clip_norm or None),
        jit_compile=hp.jit_compile,
        steps_per_execution=hp.steps_per_execution,
    )


def _save_keras(model, path, chief):
    """Save atomically, on the chief only (a .keras save reads local variable copies, no
    collectives); a full disk or a read-only directory ends in one UserError naming `path`, the
    temporary removed (fileio.atomic_file)."""
    if not chief:
        return
    with fileio.atomic_file(path, suffix=".keras") as temporary:
        model.save(temporary)


def resume_state(run, model, steps_per_epoch):
    """The state of the epoch `model` (loaded from run.last_checkpoint) was saved after.

    state.json is written before the checkpoints of its epoch, so it is either that epoch's or,
    after a kill between the two, one epoch ahead; it keeps the epoch before as "previous".

    Args:
        run: the RunDir being resumed.
        model: the compiled model loaded from run.last_checkpoint.
        steps_per_epoch: training steps per epoch of this run.
    Returns:
        the state dict whose "epochs_done" is the checkpoint's epoch.
    """
    state = run.read_state() or {}
    epochs = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) // steps_per_epoch
    for candidate in (state, state.get("previous") or {}):
        if candidate.get("epochs_done", 0) == epochs:
            return candidate
    raise input_error(
        run.state,
        f"the state of epoch {epochs} (the epoch {run.last_checkpoint} was saved "
        "after) or of the epoch before it",
        f"epochs_done {state.get('epochs_done')}; use a new --model_dir",
    )


class SelectOnValidation(keras.callbacks.Callback):
    """After every epoch: the task's score on its val split (frame-wise accuracy on val; A2V / V2A
    on val_match), the selected checkpoint, resumable state.

    hp.selection "val" keeps the best-on-val epoch as best.keras; "last" (the AVE authors' way
    for the cross-modal network) keeps every epoch, so best.keras is the last one.

    Crash consistency: state.json is written first and holds both the new epoch's state and the
    previous epoch's ("previous"); then best.keras (if val improved), then last.keras. The epoch
    last.keras belongs to is recorded inside it (its optimizer's step count), so a run killed at
    any moment resumes with the state of exactly the epoch its weights are from
    (`resume_state`); a re-trained epoch rewrites best.keras with the same weights.
    """

    def __init__(self, run, val_data, hp, chief, state, task=None, log=progress.print_line):
        super().__init__()
        self.run, self.val_data, self.hp, self.chief = run, val_data, hp, chief
        self.log = log
        self.task = task or registry.task_for(hp)
        self.best = state.get("best_val_accuracy", -1.0)
        self.best_epoch = state.get("best_epoch", 0) - 1  # state.json counts epochs from 1
        self.history = state.get("history", [])
        self.stale_epochs = state.get("stale_epochs", 0)
        self.state = {key: value for key, value in state.items() if key != "previous"}
        # The epoch last.keras holds: what an interruption keeps (interrupted_keeps).
        self.saved_epochs = state.get("epochs_done", 0)

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            raise TrainingDiverged(
                f"training loss: expected a finite value, found {loss} at step {batch + 1} of epoch"
                f" {len(self.history) + 1}; the last good checkpoint is kept in"
                f" {self.run.last_checkpoint} (try a lower `learning_rate`)"
            )

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        name = self.task.validation_name
        val_accuracy = self.task.validation_score(self.model, self.val_data)
        logs[name] = val_accuracy
        improved = val_accuracy > self.best or self.hp.selection == "last"
        if improved:
            self.best, self.best_epoch, self.stale_epochs = val_accuracy, epoch, 0
        else:
            self.stale_epochs += 1
        self.history.append(
            {
                "epoch": epoch + 1,
                name: val_accuracy,
                **{k: float(v) for k, v in logs.items() if k != name},
            }
        )
        patience = self.hp.early_stopping_patience
        stopping = bool(patience) and self.stale_epochs >= patience
        previous, self.state = (
            self.state,
            {
                "epochs_done": epoch + 1,
                "best_epoch": self.best_epoch + 1,
                "best_val_accuracy": self.best,
                "history": list(self.history),
                "stale_epochs": self.stale_epochs,
                "stopped_early": stopping,
            },
        )
        if self.chief:
            fileio.write_json(self.run.state, {**self.state, "previous": previous})
        if improved:
            _save_keras(self.model, self.run.best_checkpoint, self.chief)
        _save_keras(self.model, self.run.last_checkpoint, self.chief)
        self.saved_epochs = epoch + 1
        self.log(
            f"epoch {epoch + 1}/{self.hp.epochs}: loss {logs.get('loss', float('nan')):.4f}, "
            f"{name.replace('_', ' ')} {val_accuracy:.4f}"
            f"{' (best so far)' if improved and self.hp.selection == 'val' else ''}"
        )
        if stopping:
            self.log(f"early stopping: no val improvement for {patience} epochs")
            self.model.stop_training = True


# Hyperparameters a resumed run may be given other values of: `epochs` (more of them trains the
# run further, recorded in config.json's "epochs_extended"), and `cache_gb`, which only decides
# whether the data is kept in memory (config.json's data_in_memory, compared on its own).
RESUME_MAY_CHANGE = ("epochs", "cache_gb")


def resume_differences(saved, config):
    """[(field, the run's value, the given value)] that refuse resuming the run of `saved`.

    Every hyperparameter but RESUME_MAY_CHANGE is compared (a field an older config.json lacks
    as its default), `epochs` only when fewer are given than the run's, max_videos and the
    global batch size, and every field of the data signature the run recorded (an older run
    recorded only the dims).

    Args:
        saved: the run's config.json. config: the config.json of the run asked for.
    Returns:
        list of (str field, run's value, given value), in config.json's order.
    """
    run_hp = {**hparams.HParams().to_dict(), **saved["hparams"]}
    given = config["hparams"]
    found = [
        (f"hparams.{name}", run_hp[name], given[name])
        for name in given
        if name not in RESUME_MAY_CHANGE and run_hp[name] != given[name]
    ]
    if given["epochs"] < run_hp["epochs"]:
        found.append(("hparams.epochs", run_hp["epochs"], given["epochs"]))
    found += [
        (name, saved[name], config[name])
        for name in ("max_videos", "global_batch_size")
        if name in saved and saved[name] != config[name]
    ]
    found += [
        (f"data.{name}", value, config["data"].get(name))
        for name, value in saved["data"].items()
        if config["data"].get(name) != value
    ]
    return found


def _resume_refusal(run, saved, differences):
    """The one UserError listing every difference of a refused resume and how to go on."""
    fields = "; ".join(
        f"{field}: the run's {ran!r}, given {given!r}" for field, ran, given in differences
    )
    data_note = (
        f" (the dims of the run being resumed and its data's signature: it was trained on "
        f"{saved.get('data_dir')})"
        if any(field.startswith("data.") for field, _, _ in differences)
        else ""
    )
    return input_error(
        run.config,
        "the settings of the run being resumed",
        f"{len(differences)} difference(s): {fields}{data_note}; nothing was changed. Train a "
        "new run with a new `model_dir`, or resume this one with the settings its config.json "
        "records (its hyperparameters are taken when only `model_dir` is given, or with "
        f"`hparams_file`={run.config}), with `epochs` alone raised to train it further",
    )


def _check_resumable(run, config):
    """A run directory is resumed only with its own settings (`epochs` raised is allowed).

    Args:
        run: the RunDir. config: the config.json of the run asked for (_run_config).
    Returns:
        the run's config.json, or None for a new run.
    Raises:
        errors.UserError: for a run of an older format, any difference (resume_differences),
            or another way of reading the data (data_in_memory).
    """
    saved = run.read_config()
    if saved is None:
        return None
    if saved.get("run_format", 1) < RUN_FORMAT:
        raise input_error(
            f"{run.config} field run_format",
            f"{RUN_FORMAT} to resume this run (the model "
            "carries its normalisation since avsdn-tf 0.2.0)",
            f"{saved.get('run_format', 'none')}: a run of an older version; use a new run"
            " directory",
        )
    differences = resume_differences(saved, config)
    if differences:
        raise _resume_refusal(run, saved, differences)
    # Data in memory and data read every epoch come in different orders: a resumed run must keep its
    # way.
    if "data_in_memory" in saved and saved["data_in_memory"] != config["data_in_memory"]:
        raise input_error(
            f"{run.config} field data_in_memory",
            f"{saved['data_in_memory']} (how the run being resumed read its data; its cache_gb was "
            f"{saved['hparams'].get('cache_gb')})",
            f"{config['data_in_memory']} with cache_gb {config['hparams']['cache_gb']}",
        )
    return saved


def _check_described(run):
    """Refuse, before anything is written, a run whose config.json does not describe its last
    checkpoint (one an older train left so; registry.check_describes names the repair)."""
    info = read_run(run.path, "last")
    registry.check_describes(info, registry.load_model(info.checkpoint, compile=False))


def decide_cache(info, hp, include_noisy, max_videos, splits=None):
    """Whether to keep the decoded train and val splits in memory, and their size.

    Decided from the data and hp.cache_gb, never from the machine's free memory, so the batches a
    run sees (which depend on it) are the same wherever it runs.

    Args:
        info: the data's DatasetInfo.
        hp: HParams (reads cache_gb).
        include_noisy: the train split includes the noisy split.
        max_videos: at most this many videos per split (None: all).
        splits: the task's split names (Task.splits; default train and val).
    Returns:
        (keep in memory: bool, decoded gigabytes of train + val, or None for variable lengths).
    """
    splits = splits or tasks.Task.splits
    sizes = [
        pipeline.decoded_gigabytes(info, splits["train"], include_noisy, max_videos),
        pipeline.decoded_gigabytes(info, splits["val"], max_videos=max_videos),
    ]
    if None in sizes:  # videos of different lengths: size unknown until read
        return False, None
    return sum(sizes) <= hp.cache_gb, round(sum(sizes), 3)


def _with_nan_from(data, first_bad_batch):
    """Fault injection: batches from `first_bad_batch` (0-based) on get NaN audio.

    Args:
        data: (inputs, targets) batches, inputs holding "audio" [B, T, A].
        first_bad_batch: index of the first batch poisoned.
    Returns:
        the same batches, audio replaced by NaN from that batch on.
    """

    def poison(index, batch):
        inputs, targets = batch
        audio = inputs["audio"]
        bad = tf.fill(tf.shape(audio), tf.constant(float("nan"), audio.dtype))
        return {**inputs, "audio": tf.where(index >= first_bad_batch, bad, audio)}, targets

    return data.enumerate().map(poison)


def _training_data(plan, first_epoch, inject_nan_at_epoch=None):
    """One tf.data pipeline over the remaining epochs, each shuffled by its own seed.

    Seeding per epoch (not per iterator) is what makes a resumed run see the same batches as an
    uninterrupted one. With inject_nan_at_epoch (1-based), the batches of that epoch and later
    carry NaN audio (train's fault-injection flag).

    Args:
        plan: the run's _Plan. first_epoch: the epochs already done (0-based first epoch).
        inject_nan_at_epoch: see train().
    Returns:
        pipeline.Batches of the task's (inputs, targets), over the train split's shards.
    """
    task, hp = plan.task, plan.task.hp
    parsed = pipeline.make_dataset(
        plan.data,
        task.splits["train"],
        plan.global_batch,
        training=True,
        include_noisy=plan.include_noisy,
        cache=plan.cache,
        epoch_seeds=[hp.seed * 100_003 + epoch for epoch in range(first_epoch, hp.epochs)],
        max_videos=plan.max_videos,
        deterministic=True,
        drop_remainder=plan.multi_worker,
    )
    data = task.batches(parsed.dataset)
    if inject_nan_at_epoch is not None:
        first_bad = max(inject_nan_at_epoch - 1 - first_epoch, 0) * plan.steps_per_epoch
        data = _with_nan_from(data, first_bad)
    if plan.multi_worker:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        data = data.with_options(options)
    return pipeline.Batches(data, parsed.files)


def check_splits(data, task):
    """Every split the task reads is in the data and holds videos, or one message.

    Args:
        data: the dataset_info.DataDir. task: the run's task.
    Raises:
        UserError naming dataset_info.json, the split(s) expected and the splits found.
    """
    info = data.info
    where = f"{data.path}/{constants.DATASET_INFO_FILE}"
    names = list(task.splits.values())
    missing = [name for name in names if name not in info.splits]
    if missing and task.splits_origin:
        raise input_error(
            where,
            f"the splits {', '.join(names)} for `model={task.hp.model}` ({task.splits_origin})",
            f"splits {sorted(info.splits)}",
        )
    for split in names:
        if pipeline.split_size(info, split) == 0:
            found = (
                f"{split!r} with no videos" if split in info.splits else "no such split"
            ) + f" (splits {sorted(info.splits)})"
            raise input_error(where, f"a non-empty {split!r} split", found)


def _dims(info):
    """(audio_dim, visual_shape, num_segments) of a DatasetInfo: what Task.build takes."""
    return info.audio_dim, info.visual_shape, info.num_segments


def _save_imported(run, model, chief):
    """Epochs 0 with imported weights: they are the run's only (best and last) checkpoint.

    state.json comes first and says epoch 0, which the checkpoint's optimizer step count (0)
    agrees with (resume_state), so a later run with more epochs fine-tunes from them.
    """
    # The optimizer's slots exist before the save, so a resumed run loads them without warning.
    model.optimizer.build(model.trainable_variables)
    if chief:
        state = {"epochs_done": 0, "best_epoch": 0, "history": [], "imported": True}
        fileio.write_json(run.state, {**state, "previous": None})
    _save_keras(model, run.best_checkpoint, chief)
    _save_keras(model, run.last_checkpoint, chief)


@dataclasses.dataclass
class _Plan:
    """What one train() call settles before it fits: the task, data, run directory, strategy,
    batch and how the data is read. Every step of train() takes it."""

    task: tasks.Task
    data: dataset_info.DataDir
    run: RunDir
    strategy_name: str
    strategy: tf.distribute.Strategy
    max_videos: int | None
    log: object  # progress lines (progress.log_for)
    include_noisy: bool = False
    cache: bool = False
    decoded_gb: float | None = None
    steps_per_epoch: int = 0

    @property
    def hp(self):
        return self.task.hp

    @property
    def chief(self):
        return strategies.is_chief(self.strategy)

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def global_batch(self):
        return self.hp.batch_size * self.replicas

    @property
    def multi_worker(self):
        return self.strategy_name == "multi_worker"


def _checked_task(hp, init_weights):
    """The task of valid hyperparameters, or one message about the flag that is wrong.

    Args:
        hp: the run's HParams. init_weights: released weights to start from, or None.
    Returns:
        the registry's task for hp.
    Raises:
        errors.UserError: for invalid hp, an unknown model, or 0 epochs without init_weights.
    """
    hp.validate()
    if hp.model not in registry.names():
        raise argument_error("model", f"one of {registry.names()}", repr(hp.model))
    if hp.epochs == 0 and not init_weights:
        raise argument_error(
            "epochs", "at least 1 (0 only with `init_weights`: import and evaluate them)", 0
        )
    return registry.task_for(hp)


def _run_config(plan, init_weights):
    """The config.json of a run: its settings, data dims and versions.

    Args:
        plan: the run's _Plan. init_weights: the weights it starts from, or None.
    Returns:
        dict.
    """
    path = plan.data.path
    info = plan.data.info
    return {
        "hparams": plan.hp.to_dict(),
        # Recorded absolute, so evaluate and export find the data from any working directory.
        "data_dir": path if "://" in path else os.path.abspath(path),
        "data": info.signature(),
        "strategy": plan.strategy_name,
        "replicas": plan.replicas,
        "global_batch_size": plan.global_batch,
        "max_videos": plan.max_videos,
        "include_noisy": plan.include_noisy,
        "data_in_memory": plan.cache,
        "decoded_train_val_gb": plan.decoded_gb,
        "class_names": list(info.class_names),
        "splits": dict(plan.task.splits),
        "init_weights": init_weights,
        "run_format": RUN_FORMAT,
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }


def _steps_per_epoch(plan):
    """Training steps per epoch (whole global batches only under multi_worker).

    Args:
        plan: the run's _Plan.
    Returns:
        int >= 1.
    Raises:
        errors.UserError: naming batch_size when one batch needs more videos than there are.
    """
    videos = pipeline.split_size(plan.data.info, plan.task.splits["train"], plan.include_noisy)
    if plan.max_videos:
        videos = min(videos, plan.max_videos)
    steps = (
        videos // plan.global_batch if plan.multi_worker else math.ceil(videos / plan.global_batch)
    )
    if steps == 0:
        raise argument_error(
            "batch_size",
            f"at most {videos // plan.replicas} per replica for {videos} training videos",
            plan.hp.batch_size,
        )
    return steps


def _new_model(plan, init_weights):
    """The task's model, its normalisation set from the train split, compiled; with hp.epochs 0,
    imported weights saved as the run's checkpoint.

    Args:
        plan: the run's _Plan. init_weights: released weights to import, or None.
    Returns:
        the compiled Keras model.
    """
    task, info = plan.task, plan.data.info
    statistics, source = None, None
    if task.normalized:
        statistics, source = normalization.read_statistics(plan.data)
        plan.log(f"feature normalisation (inside the model) from {source}")
    else:
        plan.log(task.describe_inputs(info.visual_shape))
    keras.utils.set_random_seed(plan.hp.seed)
    with plan.strategy.scope():
        model = task.build(*_dims(info), statistics=statistics, source=source)
        if init_weights:
            task.import_weights(model, init_weights)
            plan.log(f"weights imported from {init_weights}")
        compile_model(model, plan.hp, plan.steps_per_epoch)
        if plan.hp.epochs == 0:
            _save_imported(plan.run, model, plan.chief)
    return model


def _model_and_state(plan, init_weights):
    """The model to fit and the state of its last epoch: resumed from the run's last checkpoint,
    or new.

    Args:
        plan: the run's _Plan. init_weights: released weights for a new model, or None.
    Returns:
        (model, state dict: {} for a new model, first epoch to train: 0-based).
    """
    if not tf.io.gfile.exists(plan.run.last_checkpoint):
        return _new_model(plan, init_weights), {}, 0
    keras.utils.set_random_seed(plan.hp.seed)
    with plan.strategy.scope():
        model = registry.load_model(plan.run.last_checkpoint)
        state = resume_state(plan.run, model, plan.steps_per_epoch)
    first_epoch = state.get("epochs_done", 0)
    plan.log(f"resuming {plan.run.path} after epoch {first_epoch}")
    return model, state, first_epoch


def _fit(plan, model, state, first_epoch, verbose, inject_nan_at_epoch):
    """Fit the remaining epochs, selecting on val after each; the seconds it took.

    Args:
        plan: the run's _Plan. model: the compiled model. state: its last epoch's state.
        first_epoch: 0-based epoch to start from. verbose: Keras' fit verbosity.
        inject_nan_at_epoch: see train().
    Returns:
        float seconds.
    Raises:
        errors.UserError: a shard damaged or vanishing during the run (naming it), or
            TrainingDiverged.
    """
    hp = plan.hp
    if plan.decoded_gb is not None:
        plan.log(
            f"train + val decoded: {plan.decoded_gb:.2f} GB; "
            + (
                "kept in memory after the first epoch"
                if plan.cache
                else f"read from the records every epoch (cache_gb is {hp.cache_gb})"
            )
        )
    val_data = pipeline.make_dataset(
        plan.data,
        plan.task.splits["val"],
        plan.global_batch,
        max_videos=plan.max_videos,
        cache=plan.cache,
    )
    started = time.time()
    if first_epoch >= hp.epochs or state.get("stopped_early"):
        return time.time() - started
    train_data = _training_data(plan, first_epoch, inject_nan_at_epoch)
    select = SelectOnValidation(plan.run, val_data, hp, plan.chief, state, plan.task, plan.log)
    callbacks = [select]
    if plan.chief:
        callbacks.append(keras.callbacks.TensorBoard(plan.run.logs, write_graph=False))
    # fit runs the iterator inside its tf.function: a read error comes out of fit itself.
    interrupted = errors.on_interrupt(lambda: interrupted_keeps(plan.run, hp, select.saved_epochs))
    with _freeing_an_early_end(), train_data.reading(), interrupted:
        model.fit(
            train_data.dataset,
            epochs=hp.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=plan.steps_per_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    return time.time() - started


@contextlib.contextmanager
def _freeing_an_early_end():
    """Free the training pipeline's tf.data iterator when a UserError leaves Keras' fit mid-epoch.

    Left mid-epoch (the NaN stop raises at a batch's end), fit's epoch iterator and its
    suspended generator refer to each other: the iterator would outlive fit until a later
    garbage collection, whose teardown of it can stall whatever runs then (errors.drop_tracebacks
    says why). naming_bad_shard has already dropped the error's traceback, so one collection here
    frees it (0.2-0.3 s, benchmarks/bench_early_fit_end.py). Stops at an epoch's end (early
    stopping, a failed checkpoint save) leave no cycle; any other error keeps fit's frames in its
    traceback, for debugging, and the iterator with them until the error is dropped.

    Yields:
        None.
    """
    try:
        yield
    except UserError:
        gc.collect()
        raise


def interrupted_keeps(run, hp, epochs):
    """What an interrupted training run keeps and how to resume it (errors.on_interrupt).

    Args:
        run: the RunDir. hp: its HParams. epochs: the epoch its last.keras holds (0: none).
    Returns:
        str, one clause of the runner's "interrupted by SIGINT: ..." line.
    """
    if not epochs:
        return f"{run.path} has no complete epoch yet; rerun the same command to start it again"
    return (
        f"{run.path} keeps epoch {epochs} of {hp.epochs} ({run.last_checkpoint}); rerun the "
        f"same command to resume after epoch {epochs}"
    )


def _final_metrics(plan, init_weights, seconds, model):
    """Score the selected checkpoint on val and test, write metrics.json, mark the run finished.

    Args:
        plan: the run's _Plan. init_weights: recorded in the result. seconds: the fit's time.
        model: the model trained in this process; the selected checkpoint's weights are loaded
            into it, so its inference function, traced once for validation, scores val and test
            too (a model loaded anew would be traced again, TensorFlow's retracing warning in
            a process training many runs: experiments, tune).
    Returns:
        the metrics dict written to metrics.json.
    """
    hp, splits, run = plan.hp, plan.task.splits, plan.run
    model.load_weights(run.best_checkpoint)
    best_model = model
    state = run.read_state() or {}
    result = {
        "model": hp.model,
        "supervision": hp.supervision,
        "selection": hp.selection,
        "splits": dict(splits),
        "init_weights": init_weights,
        "best_epoch": state.get("best_epoch"),
        "epochs_done": state.get("epochs_done"),
        "train_seconds_this_process": round(seconds, 2),
        "history": state.get("history", []),
    }
    for key in ("val", "test"):
        result[key] = evaluation.evaluate_split(
            plan.task,
            best_model,
            plan.data,
            splits[key],
            plan.data.info.class_names,
            max_videos=plan.max_videos,
        )
    fileio.write_json(run.metrics, result)
    fileio.write_json(run.state, {**state, "finished": True})
    chosen = "last epoch" if hp.selection == "last" else "best epoch"
    plan.log(
        f"{chosen} {result['best_epoch']}: {splits['val']} {plan.task.headline(result['val'])}; "
        f"{splits['test']} {plan.task.headline(result['test'])}"
    )
    return result


def _plan(task, data, model_dir, strategy_name, max_videos, log):
    """Settle the run: its directory, strategy, whether the noisy split joins and whether the
    decoded data is kept in memory.

    Args:
        task: the run's task. data: the DataDir. model_dir: the run directory.
        strategy_name: a constants.STRATEGIES name. max_videos: videos per split, or None.
        log: where progress lines go.
    Returns:
        _Plan (steps_per_epoch still 0).
    """
    plan = _Plan(
        task,
        data,
        RunDir(model_dir),
        strategy_name,
        strategies.make_strategy(strategy_name),
        max_videos,
        log,
    )
    plan.include_noisy = task.include_noisy(data.info)
    plan.cache, plan.decoded_gb = decide_cache(
        data.info, task.hp, plan.include_noisy, max_videos, task.splits
    )
    return plan


def _record_extension(plan, config, saved):
    """Carry a resumed run's earlier extensions into its new config.json, and add this one when
    `epochs` was raised: config.json then says how many epochs the checkpoints were trained for.

    Args:
        plan: the run's _Plan. config: the new config.json (changed in place). saved: the run's
            config.json ({} for a new run).
    """
    extended = list(saved.get("epochs_extended", []))
    ran = saved.get("hparams", {}).get("epochs")
    if ran is not None and plan.hp.epochs > ran:
        done = (plan.run.read_state() or {}).get("epochs_done", 0)
        extended.append({"epochs": ran, "raised_to": plan.hp.epochs, "after_epoch": done})
        plan.log(f"{plan.run.path}: training it further, epochs {ran} -> {plan.hp.epochs}")
    if extended:
        config["epochs_extended"] = extended


def _finished(run, hp):
    """The metrics of a run directory that already finished these epochs, else None.

    Args:
        run: the RunDir. hp: the run's HParams.
    Returns:
        metrics.json's dict, or None.
    """
    state = run.read_state() or {}
    done = state.get("epochs_done", 0) >= hp.epochs or state.get("stopped_early")
    if state.get("finished") and done and tf.io.gfile.exists(run.metrics):
        return fileio.read_json(run.metrics)
    return None


def train(
    data,
    model_dir,
    hp,
    strategy_name="auto",
    max_videos=None,
    verbose=1,
    inject_nan_at_epoch=None,
    init_weights=None,
    log=None,
):
    """Fit `hp.model` on the data's train split, keep the best epoch on val, write metrics.json.

    The splits, model, targets, loss and scores are the task's (tasks.for_hparams): train / val /
    test for the classifiers, train_match / val_match / test_match for avdln. A run directory
    that already holds an unfinished run of the same settings is resumed.

    Args:
        data: a dataset_info.DataDir (prepare, extract or synthesize output; local or a URL);
            a path is opened here.
        model_dir: the run directory (created; config.json, state.json, checkpoints, metrics.json).
        hp: HParams of the run.
        strategy_name: one of constants.STRATEGIES ("auto", "mirrored", "multi_worker", ...).
        max_videos: train and select on at most this many videos per split (None: all).
        verbose: Keras' fit verbosity (0 silent); without `log`, also whether progress lines
            (epochs, resuming, the final scores) are printed.
        inject_nan_at_epoch: fault injection: from this epoch (1-based) on, training batches
            carry NaN audio, so the NaN stop (TrainingDiverged) can be seen working.
        init_weights: released weights to start from (avdln: the authors' Keras 2 h5); with
            hp.epochs 0 they are only imported into the run directory and evaluated.
        log: where progress lines go (one line per call), whatever `verbose` is; default
            progress.log_for(verbose).
    Returns:
        the metrics dict written to metrics.json (val and test scores of the best epoch).
    Raises:
        errors.UserError: bad hyperparameters, empty splits, a run directory of other settings,
            or a shard that is damaged or vanishes during the run (naming it).
    """
    task = _checked_task(hp, init_weights)
    data = dataset_info.DataDir.of(data)
    check_splits(data, task)
    task.check_inputs(data.info.visual_shape)
    if init_weights:  # checked on a throwaway model before anything is written
        task.import_weights(task.build(*_dims(data.info)), init_weights)
    plan = _plan(task, data, model_dir, strategy_name, max_videos, progress.log_for(verbose, log))
    config = _run_config(plan, init_weights)
    saved_config = _check_resumable(plan.run, config) or {}
    if saved_config and tf.io.gfile.exists(plan.run.last_checkpoint):
        _check_described(plan.run)
    if saved_config.get("init_weights") and tf.io.gfile.exists(plan.run.last_checkpoint):
        # A resumed run started from imported weights; its checkpoint holds them (or their
        # fine-tuned successors), so they are recorded, not imported again.
        init_weights = config["init_weights"] = saved_config["init_weights"]
    finished = _finished(plan.run, hp)
    if finished is not None:
        plan.log(f"{model_dir} already finished; metrics in {plan.run.metrics}")
        return finished
    _record_extension(plan, config, saved_config)
    if plan.chief:
        fileio.make_directories(os.path.join(model_dir, "checkpoints"))
        fileio.write_json(plan.run.config, config)
    plan.steps_per_epoch = _steps_per_epoch(plan)
    # Outside fit (loading, the final scores): the epochs state.json says are done.
    done = lambda: (plan.run.read_state() or {}).get("epochs_done", 0)  # noqa: E731
    with errors.on_interrupt(lambda: interrupted_keeps(plan.run, hp, done())):
        model, state, first_epoch = _model_and_state(plan, init_weights)
        seconds = _fit(plan, model, state, first_epoch, verbose, inject_nan_at_epoch)
        if not plan.chief:
            return {}  # the chief evaluates and writes metrics.json
        return _final_metrics(plan, init_weights, seconds, model)
