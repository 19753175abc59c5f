"""`train --model avdln` (AVEL's cross-modality localization) end to end: training on the match
splits, selection on val_match or the last epoch, importing the AVE authors' released weights
(checked against a NumPy forward pass of the same h5), evaluate on test_match, bad input."""

import json
import os
import shutil
import warnings

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import constants, records
from avsdn_tf.data import ave_release
from avsdn_tf.errors import UserError
from avsdn_tf.models import avdln, backbones, metrics, registry
from avsdn_tf.models.avdln import task as avdln_task
from avsdn_tf.models.registry import load_run
from avsdn_tf.runs import RunDir
from avsdn_tf.training import trainer

from ave_testlib import write_ave_dir, write_match_files
from testlib import (
    REAL_AVE,
    avel_accuracy,
    avel_distance,
    needs_real_ave,
    read_records,
    run_command,
)

AUTHORS_WEIGHTS = REAL_AVE / "cmm_model_weights.h5"
needs_weights = needs_real_ave(AUTHORS_WEIGHTS.name)


def _prepare(directory, vector_shape, match=True):
    write_ave_dir(directory / "ave", layout="vector", noisy=False, vector_shape=vector_shape)
    if match:
        write_match_files(directory / "ave")
    ave_release.prepare(str(directory / "ave"), str(directory / "data"), verbose=0)
    return str(directory / "data")


@pytest.fixture(scope="module")
def match_data(tmp_path_factory):
    """A tiny prepared release with 512-d visual vectors (the authors' network's input) and the
    train_match / val_match / test_match splits."""
    return _prepare(tmp_path_factory.mktemp("match"), (512,))


def _hp(**changes):
    return registry.default_hparams("avdln").replace(**{"batch_size": 2, "epochs": 3, **changes})


def _split_arrays(data_dir, split):
    """(audio [N, T, A], visual [N, T, V], labels [N, T]) of a split, read from its records."""
    videos = read_records(data_dir, split)
    return tuple(np.stack([video[key] for video in videos]) for key in ("audio", "visual", "label"))


def _numpy_embeddings(weights, audio, visual):
    """The authors' network in NumPy: (audio [N, T, 64], visual [N, T, 64]) embeddings."""

    def branch(x, first, second):
        hidden = x @ weights[first][0] + weights[first][1]
        hidden = np.where(hidden > 0, hidden, constants.AVDLN_LEAKY_SLOPE * hidden)
        return hidden @ weights[second][0] + weights[second][1]

    return branch(audio, "dense_3", "dense_4"), branch(visual, "dense_1", "dense_2")


def _evaluable(labels):
    events = np.asarray(avdln.event_targets(labels)) > 0.5
    return int(sum(event.any() and not event.all() for event in events))


@pytest.fixture(scope="module")
def trained(match_data, tmp_path_factory):
    run = str(tmp_path_factory.mktemp("runs") / "avdln")
    return run, trainer.train(match_data, run, _hp(), verbose=0)


def test_train_fits_the_contrastive_loss_on_the_match_splits_and_selects_on_val_match(
    match_data, trained
):
    run, result = trained
    config = RunDir(run).read_config()
    assert config["splits"] == {"train": "train_match", "val": "val_match", "test": "test_match"}
    assert config["hparams"]["batch_size"] == 2 and config["hparams"]["selection"] == "val"
    history = result["history"]
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]  # the contrastive loss is being minimised
    scores = [entry["val_cross_modal_accuracy"] for entry in history]
    assert result["best_epoch"] == 1 + int(np.argmax(scores))  # first best, as selection keeps
    assert result["model"] == "avdln" and result["selection"] == "val"

    # metrics.json's scores are those of best.keras's embeddings on the match splits.
    model = registry.load_model(RunDir(run).best_checkpoint)
    assert not backbones.normalization_layers(model)  # raw features, as the authors' code
    for key in ("val", "test"):
        audio, visual, labels = _split_arrays(match_data, f"{key}_match")
        embeddings = avdln.embedding_model(model)({"audio": audio, "visual": visual})
        expected = avel_accuracy(
            *(np.asarray(e) for e in embeddings), labels != constants.BACKGROUND
        )
        assert result[key] == expected
        # val_match: two events inside the video; test_match: two, and one video with no event.
        assert result[key]["evaluated"] == _evaluable(labels) == 2
    with open(RunDir(run).metrics) as file:
        assert json.load(file) == result


def test_selection_last_keeps_the_last_epoch(match_data, tmp_path):
    run = str(tmp_path / "last")
    result = trainer.train(match_data, run, _hp(epochs=2, selection="last"), verbose=0)
    assert result["best_epoch"] == 2 and result["selection"] == "last"
    best = registry.load_model(RunDir(run).best_checkpoint).get_weights()
    last = registry.load_model(RunDir(run).last_checkpoint).get_weights()
    for a, b in zip(best, last, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="hparams.selection: the run's 'last', given 'val'"):
        trainer.train(match_data, run, _hp(epochs=3, selection="val"), verbose=0)


@needs_weights
def test_import_of_the_authors_weights_with_epochs_0_then_evaluate_on_test_match(
    match_data, tmp_path
):
    run = tmp_path / "imported"
    trained = run_command(
        "avsdn_tf.train",
        f"--data_dir={match_data}",
        "--model=avdln",
        f"--init_weights={AUTHORS_WEIGHTS}",
        "--epochs=0",
        f"--model_dir={run}",
    )
    assert trained.returncode == 0, trained.stderr
    assert "raw features (no normalisation" in trained.stdout
    assert "visual vectors of 512 used as they are" in trained.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["hparams"]["batch_size"] == 8  # avdln's own default (the authors' batch)
    result = json.loads((run / "metrics.json").read_text())
    assert result["best_epoch"] == 0 and result["history"] == []
    assert result["init_weights"] == str(AUTHORS_WEIGHTS)

    # The imported model's distances are a NumPy forward pass of the same h5 file.
    weights = avdln.read_keras2_weights(str(AUTHORS_WEIGHTS))
    model = load_run(str(run)).model
    audio, visual, labels = _split_arrays(match_data, "test_match")
    out = model({"audio": audio, "visual": visual})
    a, v = _numpy_embeddings(weights, audio, visual)
    np.testing.assert_allclose(np.asarray(out["distance"]), avel_distance(v, a), atol=1e-3)
    assert result["test"] == avel_accuracy(a, v, labels != constants.BACKGROUND)

    evaluated = run_command("avsdn_tf.evaluate", f"--model_dir={run}")  # default: test_match
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"A2V accuracy   {result['test']['a2v_accuracy']:.4f}  (2 videos)" in evaluated.stdout
    assert f"V2A accuracy   {result['test']['v2a_accuracy']:.4f}  (2 videos)" in evaluated.stdout
    written = json.loads((run / "eval_test_match.json").read_text())
    assert {key: written[key] for key in result["test"]} == result["test"]
    assert written["split"] == "test_match"
    assert not list(run.glob("confusion_*"))

    # A run that labels no segments is refused in one message by what needs segment_probs.
    with pytest.raises(UserError, match="hparams.model: expected a model that labels segments"):
        _ = load_run(str(run)).segment_model

    # More epochs on the imported run (its own settings: avdln's batch of 8) fine-tune it; the
    # run still records where it started, and the raised epochs.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. Keras skipping the saved optimizer's variables
        tuned = trainer.train(match_data, str(run), _hp(epochs=1, batch_size=8), verbose=0)
    assert tuned["best_epoch"] == 1 and len(tuned["history"]) == 1
    assert tuned["init_weights"] == str(AUTHORS_WEIGHTS)
    extended = json.loads((run / "config.json").read_text())["epochs_extended"]
    assert extended == [{"epochs": 0, "raised_to": 1, "after_epoch": 0}]


@needs_weights
def test_init_weights_start_fine_tuning(match_data, tmp_path):
    # A learning rate too small to move the weights: the trained model is the imported one.
    hp = _hp(epochs=1, learning_rate=1e-12)
    result = trainer.train(
        match_data, str(tmp_path / "tuned"), hp, verbose=0, init_weights=str(AUTHORS_WEIGHTS)
    )
    assert result["best_epoch"] == 1 and len(result["history"]) == 1
    model = registry.load_model(RunDir(str(tmp_path / "tuned")).last_checkpoint)
    weights = avdln.read_keras2_weights(str(AUTHORS_WEIGHTS))
    for ours, theirs in avdln.H5_LAYERS.items():
        for got, want in zip(model.get_layer(ours).get_weights(), weights[theirs], strict=True):
            np.testing.assert_allclose(got, want, atol=1e-6)


def test_map_features_are_averaged_over_space_inside_the_model():
    task = registry.task_for(_hp())
    assert isinstance(task, avdln_task.CrossModalTask) and not task.normalized
    maps = task.build(16, [2, 3, 8])
    vectors = task.build(16, [8])
    vectors.set_weights(maps.get_weights())
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(2, 10, 16)).astype("float32")
    visual = rng.normal(size=(2, 10, 2, 3, 8)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(maps({"audio": audio, "visual": visual})["distance"]),
        np.asarray(vectors({"audio": audio, "visual": visual.mean(axis=(2, 3))})["distance"]),
        rtol=1e-5,
    )
    labels = np.array([[constants.BACKGROUND, 4, 0, constants.PAD_LABEL]])
    targets = task.targets({records.LABEL: tf.constant(labels, tf.int32)})
    np.testing.assert_array_equal(targets[avdln.DISTANCE_OUTPUT], [[0, 1, 1, 0]])


def test_the_authors_defaults_and_model_help():
    hp = registry.default_hparams("avdln")
    assert (hp.batch_size, hp.epochs, hp.learning_rate) == (8, 20, 1e-3)
    assert "avdln" in registry.names() and "avdln  " in registry.describe()


def test_bad_input_is_one_clear_error_and_writes_nothing(match_data, tiny_vector_data, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(
        UserError,
        match=r"dataset_info.json: expected the splits train_match, val_match, test_match for "
        r"`model=avdln` \(the cross-modality splits prepare writes when the release folder has "
        r"train_order_match.h5, .*found splits \['noisy', 'test', 'train', 'val'\]",
    ):
        trainer.train(tiny_vector_data, str(run), _hp(), verbose=0)

    empty = tmp_path / "empty"
    shutil.copytree(match_data, empty)
    info = json.loads((empty / constants.DATASET_INFO_FILE).read_text())
    info["splits"]["val_match"] = {"videos": 0, "shards": []}
    (empty / constants.DATASET_INFO_FILE).write_text(json.dumps(info))
    with pytest.raises(
        UserError, match="expected a non-empty 'val_match' split, found 'val_match' with no videos"
    ):
        trainer.train(str(empty), str(run), _hp(), verbose=0)

    with pytest.raises(
        UserError, match=r"nothere.h5: expected a Keras 2 weights h5 file, found no"
    ):
        trainer.train(
            match_data, str(run), _hp(), verbose=0, init_weights=str(tmp_path / "nothere.h5")
        )
    with pytest.raises(UserError, match=r"init_weights: expected a run of `model=avdln`"):
        trainer.train(
            match_data,
            str(run),
            _hp(model="avsdn", batch_size=2),
            verbose=0,
            init_weights=str(AUTHORS_WEIGHTS),
        )
    with pytest.raises(
        UserError, match=r"epochs: expected at least 1 \(0 only with `init_weights`"
    ):
        trainer.train(match_data, str(run), _hp(epochs=0), verbose=0)
    with pytest.raises(UserError, match=r"supervision: expected 'full' for `model=avdln`"):
        trainer.train(match_data, str(run), _hp(supervision="weak"), verbose=0)
    assert not run.exists()


@needs_weights
def test_weights_whose_shapes_do_not_fit_are_one_line_exit_2(tmp_path):
    data = _prepare(tmp_path, (6,))  # 6-d visual vectors: the authors' dense_1 takes 512
    run = tmp_path / "run"
    finished = run_command(
        "avsdn_tf.train",
        f"--data_dir={data}",
        "--model=avdln",
        f"--init_weights={AUTHORS_WEIGHTS}",
        "--epochs=0",
        f"--model_dir={run}",
    )
    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    lines = [line for line in finished.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: {AUTHORS_WEIGHTS} layer dense_1: expected kernel and bias shapes "
        "[(6, 128), (128,)], found [(512, 128), (128,)]"
    ], finished.stderr
    assert not os.path.exists(run / "config.json")


def test_export_model_exports_an_avdln_run_as_the_cross_modal_signature(
    trained, match_data, tmp_path
):
    run, _ = trained
    base = tmp_path / "serving" / "avdln"
    done = run_command(
        "export.export_model", "--model_dir", run, "--output_dir", base, "--verify_videos", 2
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    loaded = tf.saved_model.load(str(base / "1"))
    assert {"cross_modal", "serving_default"} <= set(loaded.signatures)
    audio, visual, labels = _split_arrays(match_data, "test_match")
    events = np.asarray(avdln.event_targets(labels)) > 0.5
    rows = [i for i, event in enumerate(events) if event.any() and not event.all()][:3]
    outputs = loaded.signatures["cross_modal"](
        audio=tf.constant(audio[rows], tf.float32),
        visual=tf.constant(visual[rows], tf.float32),
        query_mask=tf.constant(events[rows].astype(np.int32)),
        direction=tf.constant(["a2v", "v2a", "a2v"][: len(rows)]),
    )
    model = load_run(run).model
    embeddings = model.predict({"audio": audio[rows], "visual": visual[rows]}, verbose=0)
    for index, row in enumerate(rows):
        a2v = index != 1
        query, candidates = (
            (embeddings[avdln.AUDIO_EMBEDDING], embeddings[avdln.VISUAL_EMBEDDING])
            if a2v
            else (embeddings[avdln.VISUAL_EMBEDDING], embeddings[avdln.AUDIO_EMBEDDING])
        )
        start, _ = metrics.localize(query[index], candidates[index], events[row])
        assert int(outputs["start"][index]) == start
