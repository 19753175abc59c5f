"""The run loader: a run directory alone evaluates, predicts and exports; bad runs are named."""

import json
import os
import shutil

import keras
import numpy as np
import pytest

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.data import pipeline
from avsdn_tf.dataset_info import DataDir
from avsdn_tf.errors import UserError
from avsdn_tf.inference import predictors
from avsdn_tf.models import backbones
from avsdn_tf.models.registry import load_run
from avsdn_tf.runs import RUN_FORMAT, RunDir
from avsdn_tf.training import evaluation, trainer

from testlib import small_hparams


@pytest.fixture(scope="module")
def moved_run(tiny_vector_data, tmp_path_factory):
    """A run trained on a copy of the tiny data, whose data directory is then deleted."""
    root = tmp_path_factory.mktemp("moved")
    data_dir, run_dir = str(root / "data"), str(root / "run")
    shutil.copytree(tiny_vector_data, data_dir)
    result = trainer.train(data_dir, run_dir, small_hparams(epochs=1), max_videos=16, verbose=0)
    shutil.rmtree(data_dir)
    return run_dir, result


def test_a_run_directory_alone_evaluates_on_another_data_directory(
    moved_run, tiny_vector_data, tmp_path
):
    run_dir, _ = moved_run
    config = json.loads(open(RunDir(run_dir).config).read())
    assert config["run_format"] == RUN_FORMAT and config["class_names"] == constants.class_names()
    assert not os.path.exists(config["data_dir"])
    summary = evaluation.evaluate_run(run_dir, tiny_vector_data, "test", output_dir=str(tmp_path))
    assert summary["segments"] == 32 * constants.NUM_SEGMENTS
    # The same numbers as the trained Keras file itself (not load_run) on the 32 test videos,
    # whose normalisation is the run's own statistics.
    statistics = load_run(run_dir).statistics()
    batch = next(iter(pipeline.make_dataset(DataDir.open(tiny_vector_data), "test", 32)))
    trained = keras.models.load_model(RunDir(run_dir).best_checkpoint, compile=False)
    through_model = np.asarray(
        backbones.segment_model(trained)(records.model_inputs(batch), training=False)
    )
    audio_layer = trained.get_layer(constants.AUDIO_NORMALIZATION)
    np.testing.assert_allclose(
        np.asarray(audio_layer(batch["audio"])),
        (batch["audio"].numpy() - statistics["audio_mean"]) / statistics["audio_std"],
        rtol=1e-5,
        atol=1e-6,
    )
    predicted = through_model.argmax(-1)
    labels = batch["label"].numpy()
    assert summary["accuracy"] == pytest.approx((predicted == labels).mean(), abs=1e-6)


def test_a_run_directory_alone_predicts(moved_run, tiny_vector_data):
    run_dir, _ = moved_run
    predictor = predictors.RunPredictor(run_dir)
    batch = next(iter(pipeline.make_dataset(DataDir.open(tiny_vector_data), "val", 2)))
    # Expected: the trained Keras file itself (its normalisation layers inside), not load_run.
    trained = keras.models.load_model(RunDir(run_dir).best_checkpoint, compile=False)
    segments = backbones.segment_model(trained)
    expected = np.asarray(segments(records.model_inputs(batch), training=False))[0]
    np.testing.assert_allclose(
        predictor(batch["audio"].numpy()[0], batch["visual"].numpy()[0]), expected, atol=1e-5
    )
    assert predictor.class_names == constants.class_names()


@pytest.mark.slow
def test_a_run_directory_alone_exports(moved_run, tmp_path):
    from export import export_model

    run_dir, _ = moved_run
    version = export_model.export(run_dir, str(tmp_path / "serving" / "avsdn"), verbose=False)
    assert os.path.basename(version) == "1"
    info = json.loads(open(os.path.join(version, "assets.extra", "avsdn_export.json")).read())
    assert info["verification"]["max_difference"] <= 1e-5


def _copy_run(run_dir, tmp_path, name):
    copy = str(tmp_path / name)
    shutil.copytree(run_dir, copy)
    return copy, RunDir(copy)


def test_broken_and_old_runs_are_one_clear_error(moved_run, tiny_vector_data, tmp_path):
    run_dir, _ = moved_run
    with pytest.raises(UserError, match="run directory not found"):
        load_run(str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="checkpoint: expected one of"):
        load_run(run_dir, checkpoint="first")
    old, run = _copy_run(run_dir, tmp_path, "old")
    config = json.loads(open(run.config).read())
    del config["run_format"]
    open(run.config, "w").write(json.dumps(config))
    with pytest.raises(UserError, match=r"written by avsdn-tf before 0\.2\.0.*Train it again"):
        load_run(old)
    with pytest.raises(UserError, match="run_format: expected 2 to resume this run"):
        trainer.train(tiny_vector_data, old, small_hparams(epochs=1), verbose=0)
    truncated, run = _copy_run(run_dir, tmp_path, "truncated")
    with open(run.best_checkpoint, "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(
        UserError,
        match=r"best\.keras: expected a complete \.keras zip archive saved by "
        r"train, found a truncated or corrupt file of 100 bytes",
    ):
        load_run(truncated)
    missing, run = _copy_run(run_dir, tmp_path, "missing")
    os.remove(run.best_checkpoint)
    with pytest.raises(UserError, match=r"expected a trained run with checkpoints/best\.keras"):
        load_run(missing)
    bare, run = _copy_run(run_dir, tmp_path, "bare")
    os.remove(run.config)
    with pytest.raises(UserError, match="no config.json"):
        load_run(bare)


def test_a_checkpoint_keras_refuses_is_refused_with_keras_whole_message(moved_run, tmp_path):
    """A checkpoint Keras will not load in safe mode: its whole reason is quoted (it was cut at
    200 characters, mid-sentence: "If you trust the )")."""
    unsafe, run = _copy_run(moved_run[0], tmp_path, "unsafe")
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(run.best_checkpoint)
    with pytest.raises(UserError) as refused:
        load_run(unsafe)
    message = str(refused.value)
    assert message.startswith(f"{run.best_checkpoint}: expected a Keras model saved by train")
    assert "\n" not in message and len(message) > 300
    assert message.endswith(
        "If you trust the source of the artifact, you can override this error by passing "
        "`safe_mode=False` to the loading function, or calling "
        "`keras.config.enable_unsafe_deserialization().)"
    )


def test_data_of_other_dims_is_refused(moved_run, tiny_map_data):
    run_dir, _ = moved_run
    with pytest.raises(
        UserError, match=r"dataset_info\.json: expected the feature dims the run .* found"
    ):
        load_run(run_dir).check_data(dataset_info.read(tiny_map_data), tiny_map_data)
