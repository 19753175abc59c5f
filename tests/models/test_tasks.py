"""Tasks: heads, targets, losses and metrics per supervision; the normalisation inside the model."""

import keras
import numpy as np
import pytest

from avsdn_tf import constants, hparams, records
from avsdn_tf.data import normalization, pipeline
from avsdn_tf.dataset_info import DataDir
from avsdn_tf.errors import UserError
from avsdn_tf.models import backbones, layers, registry

from testlib import TINY_SPLITS, TINY_UNITS, read_records

SMALL = TINY_UNITS


def _task(model="avsdn", supervision=constants.FULL):
    return registry.task_for(hparams.HParams(model=model, supervision=supervision, **SMALL))


def test_full_task_targets_segment_labels(tiny_vector_data):
    task = _task()
    data = pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 10).dataset
    # Each video's targets are its record's segment labels (videos found by their audio).
    label_of = {
        video["audio"].tobytes(): video["label"].tolist()
        for video in read_records(tiny_vector_data, "train")
    }
    seen = 0
    for inputs, labels in task.batches(data):
        assert sorted(inputs) == ["audio", "visual"]
        assert labels.shape[1:] == (constants.NUM_SEGMENTS,) and labels.dtype == "int32"
        for audio, row in zip(inputs["audio"].numpy(), labels.numpy()):
            assert row.tolist() == label_of[audio.tobytes()]
            seen += 1
    assert seen == TINY_SPLITS["train"]
    assert not task.include_noisy(pipeline.dataset_info.read(tiny_vector_data))


def test_weak_task_targets_one_hot_video_labels_and_reads_the_noisy_split(tiny_vector_data):
    task = _task(supervision=constants.WEAK)
    info = pipeline.dataset_info.read(tiny_vector_data)
    assert task.include_noisy(info)
    data = task.batches(
        pipeline.make_dataset(
            DataDir.open(tiny_vector_data), "train", 8, include_noisy=True
        ).dataset
    )
    targets = np.concatenate([t.numpy() for _, t in data])
    assert targets.shape == (TINY_SPLITS["train"] + TINY_SPLITS["noisy"], constants.NUM_CLASSES)
    np.testing.assert_array_equal(targets.sum(1), 1.0)
    assert (
        targets[:, constants.BACKGROUND].sum() == TINY_SPLITS["noisy"]
    )  # AVE videos all hold an event


@pytest.mark.parametrize(
    "supervision,main_output",
    [(constants.FULL, constants.SEGMENT_OUTPUT), (constants.WEAK, constants.VIDEO_OUTPUT)],
)
def test_each_task_owns_its_heads_and_evaluation_reads_segment_probs(supervision, main_output):
    plain = _task(supervision=supervision).build(16, [12])
    assert list(plain.output_names) == [main_output]
    guided_task = _task("avsdn_label_guided", supervision)
    guided = guided_task.build(16, [12])
    assert list(guided.output_names) == [main_output, *constants.GUIDE_OUTPUTS]
    parsed = {
        records.LABEL: np.zeros((2, 10), np.int32),
        records.VIDEO_LABEL: np.array([3, 28], np.int32),
    }
    main, audio_guide, visual_guide = guided_task.targets(parsed)
    np.testing.assert_array_equal(np.asarray(audio_guide).argmax(-1), [3, 28])
    np.testing.assert_array_equal(audio_guide, visual_guide)
    assert np.asarray(main).shape == (
        (2, 10) if supervision == constants.FULL else (2, constants.NUM_CLASSES)
    )
    segment = guided_task.segment_model(guided)
    assert list(segment.output_names) == [constants.SEGMENT_OUTPUT]
    guided_task.compile(guided, keras.optimizers.Adam())
    assert len(guided.loss) == 3


def test_the_model_normalises_with_the_train_statistics_and_keeps_them_when_saved(
    tiny_vector_data, tmp_path
):
    statistics, source = normalization.read_statistics(tiny_vector_data)
    model = _task().build(16, [24], statistics=statistics, source=source)
    audio_layer = backbones.normalization_layers(model)["audio"]
    raw = next(
        iter(pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", TINY_SPLITS["train"]))
    )
    normed = np.asarray(audio_layer(raw["audio"])).reshape(-1, 16)
    np.testing.assert_allclose(normed.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normed.std(0), 1.0, rtol=1e-3)
    path = str(tmp_path / "model.keras")
    model.save(path)
    restored = backbones.normalization_layers(registry.load_model(path, compile=False))
    restored_audio, restored_visual = restored["audio"], restored["visual"]
    np.testing.assert_array_equal(
        restored_audio.statistics()[0], np.float32(statistics["audio_mean"])
    )
    np.testing.assert_array_equal(
        restored_visual.statistics()[1], np.float32(statistics["visual_std"])
    )


def test_single_modality_models_carry_the_normalisation_they_use():
    assert sorted(backbones.normalization_layers(_task("audio").build(16, [12]))) == ["audio"]
    assert sorted(backbones.normalization_layers(_task("visual").build(16, [12]))) == ["visual"]
    assert sorted(backbones.normalization_layers(_task("av").build(16, [12]))) == [
        "audio",
        "visual",
    ]


def test_statistics_that_do_not_fit_the_model_are_one_clear_error(tiny_vector_data):
    statistics, _ = normalization.read_statistics(tiny_vector_data)
    with pytest.raises(UserError, match=r"stats.json visual mean: expected shape \[12\]"):
        _task().build(16, [12], statistics=statistics, source="stats.json")
    with pytest.raises(UserError, match="stats.json: expected the field 'audio_mean'"):
        _task().build(16, [24], statistics={"audio_std": [1.0] * 16}, source="stats.json")
    bad = layers.FeatureNormalization()
    bad.build((None, 3))
    with pytest.raises(ValueError, match="positive deviations"):
        bad.set_statistics([0, 0, 0], [1, 0, 1])


@pytest.mark.parametrize("device,unrolled", [("cpu", True), ("gpu", False)])
def test_lstms_unroll_on_cpu_and_take_the_cudnn_path_on_gpu(device, unrolled):
    hp = hparams.HParams()
    options = backbones.lstm_options(hp, constants.NUM_SEGMENTS, device=device)
    assert options["unroll"] is unrolled
    # Keras runs the fused cuDNN kernel only with these settings and no unrolling.
    assert (
        options["activation"],
        options["recurrent_activation"],
        options["recurrent_dropout"],
        options["use_bias"],
        options["use_cudnn"],
    ) == ("tanh", "sigmoid", 0.0, True, "auto")
    assert backbones.lstm_options(hp, None, device="cpu")["unroll"] is False  # any length: a loop
    assert backbones.lstm_options(hp.replace(unroll=False), 10, device="cpu")["unroll"] is False
    lstm = keras.layers.LSTM(4, **options)
    assert lstm.unroll is unrolled and lstm.use_cudnn == "auto"


@pytest.mark.parametrize("model_name", ["psp", "cmbs"])
def test_the_authors_models_name_the_layout_they_were_given(model_name):
    """train's first line about the features says maps only for maps (a vector set is refused
    next, and the line before that error must not call it maps)."""
    task = registry.task_for(registry.default_hparams(model_name))
    assert task.describe_inputs([7, 7, 512]).endswith("maps [7, 7, 512]")
    assert task.describe_inputs([512]).endswith("visual vectors [512]")
