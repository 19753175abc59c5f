"""The cross-modality localization SavedModel (avsdn_tf/models/avdln/serving.py): its outputs
against the Python-side scoring at 10 and 13 segments after a reload, its one-message errors for
bad inputs, the fresh-process verification and export_model.export_serving of it."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import hparams
from avsdn_tf.errors import UserError
from avsdn_tf.models import avdln, metrics
from avsdn_tf.models.avdln import serving as cross_modal
from export import export_model, verify, warmup

AVDLN = hparams.HParams(model="avdln")


def _export(model, base, **options):
    """export_model's one path, for an AVDLN model built here (no run directory)."""
    return export_model.export_serving(
        cross_modal.CrossModalServing(model), base, AVDLN, verbose=False, **options
    )


def _write_reference(model, directory, cases):
    export_model.write_reference(cross_modal.CrossModalServing(model), directory, cases, AVDLN)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return avdln.build_avdln()  # fixed at 10 segments: the graph rebuilds it for any length


@pytest.fixture(scope="module")
def loaded(model, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("cross_modal") / "saved_model")
    cross_modal.CrossModalGraph(model).write(path)
    return tf.saved_model.load(path)


def _inputs(num_segments, count=6, seed=0):
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(count, num_segments, 128)).astype("float32")
    visual = rng.normal(size=(count, num_segments, 512)).astype("float32")
    query_mask, direction = cross_modal.random_query(rng, count, num_segments)
    return audio, visual, query_mask, direction.astype(str)


def _serve(loaded, audio, visual, query_mask, direction, name=cross_modal.CROSS_MODAL):
    outputs = loaded.signatures[name](
        audio=tf.constant(audio),
        visual=tf.constant(visual),
        query_mask=tf.constant(query_mask),
        direction=tf.constant(direction),
    )
    return outputs[cross_modal.START].numpy(), outputs[cross_modal.SCORES].numpy()


@pytest.mark.parametrize("num_segments", [10, 13])
@pytest.mark.parametrize("name", cross_modal.SIGNATURES)
def test_reloaded_signature_equals_the_python_scoring(model, loaded, num_segments, name):
    audio, visual, query_mask, direction = _inputs(num_segments, seed=num_segments)
    start, scores = _serve(loaded, audio, visual, query_mask, direction, name)
    assert start.dtype == np.int32 and start.shape == (6,)
    assert scores.dtype == np.float32 and scores.shape == (6, num_segments)
    want_start, want_scores = cross_modal.keras_localize(
        model, audio, visual, query_mask, direction
    )
    np.testing.assert_array_equal(start, want_start)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    # Per video, the NumPy API (float64) on the Keras model's embeddings.
    rebuilt = avdln.variable_length(model)
    embeddings = rebuilt({"audio": audio, "visual": visual})
    a, v = (np.asarray(embeddings[key]) for key in (avdln.AUDIO_EMBEDDING, avdln.VISUAL_EMBEDDING))
    for row in range(6):
        query, candidates = (a, v) if direction[row] == "a2v" else (v, a)
        one_start, one_scores = metrics.localize(
            query[row], candidates[row], query_mask[row].astype(bool)
        )
        fits = len(one_scores)
        assert fits == num_segments - query_mask[row].sum() + 1
        np.testing.assert_allclose(scores[row, :fits], one_scores, rtol=1e-5)
        assert np.isinf(scores[row, fits:]).all() and (scores[row, fits:] > 0).all()
        assert start[row] == one_start


def _mask_with(row, values, num_segments=10):
    audio, visual, query_mask, direction = _inputs(num_segments, count=3, seed=1)
    query_mask[row] = values
    return audio, visual, query_mask, direction


BAD_MASKS = {
    "no segment": (
        [0] * 10,
        r"query_mask: expected 0 < l < time segments of 1 in every video, found time\] \[10\] "
        r"\[and l per video\] \[\d+ 0 \d+\]",
    ),
    "every segment": ([1] * 10, r"found time\] \[10\] \[and l per video\] \[\d+ 10 \d+\]"),
    "two runs": (
        [0, 1, 1, 0, 0, 1, 0, 0, 0, 0],
        r"query_mask: expected the query segments to be one contiguous run of 1s in every video,"
        r" found runs per video\] \[1 2 1\]",
    ),
    "a 2": ([0, 2, 1, 0, 0, 0, 0, 0, 0, 0], r"query_mask: expected only 0 and 1, found the values"),
}


@pytest.mark.parametrize("case", sorted(BAD_MASKS))
def test_a_bad_query_mask_is_one_clear_error(loaded, case):
    values, needle = BAD_MASKS[case]
    with pytest.raises(tf.errors.InvalidArgumentError, match=needle):
        _serve(loaded, *_mask_with(1, values))


def test_bad_direction_and_shapes_are_one_clear_error_each(loaded):
    audio, visual, query_mask, direction = _inputs(10, count=3, seed=2)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"direction: expected a2v or v2a for every video, found\] \[A2V\]",
    ):
        _serve(loaded, audio, visual, query_mask, np.array(["a2v", "A2V", "v2a"]))
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"expected the same batch \(and the same time but for direction\), found audio\] "
        r"\[3 10\] \[visual\] \[3 10\] \[query_mask\] \[3 9\]",
    ):
        _serve(loaded, audio, visual, query_mask[:, :9], direction)
    with pytest.raises(tf.errors.InvalidArgumentError, match="direction.*\\[2\\]"):
        _serve(loaded, audio, visual, query_mask, direction[:2])
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match=r"visual: expected float32 of shape \[batch, time, 512",
    ):
        _serve(loaded, audio, visual[..., :100], query_mask, direction)
    audio[0, 0, 0] = np.nan
    with pytest.raises(tf.errors.InvalidArgumentError, match="audio: expected finite values"):
        _serve(loaded, audio, visual, query_mask, direction)


def test_a_model_that_is_not_an_avdln_is_one_clear_error():
    audio = keras.Input((10, 128), name="audio")
    other = keras.Model({"audio": audio}, {"x": keras.layers.Dense(2)(audio)}, name="other")
    with pytest.raises(UserError, match="model 'other': expected an AVDLN model"):
        cross_modal.CrossModalGraph(other)


def test_export_cross_modal_publishes_a_version_verified_in_a_fresh_process(model, tmp_path):
    base = str(tmp_path / "avdln")
    final = _export(model, base, verify_videos=3)
    assert final == os.path.join(base, "1") and export_model.existing_versions(base) == [1]
    assert not [n for n in os.listdir(base) if n.startswith(export_model.TEMPORARY_PREFIX)]
    with open(os.path.join(final, "assets.extra", export_model.EXPORT_INFO_FILE)) as handle:
        info = json.load(handle)
    assert info["verification"]["checked"] == [
        "cross_modal@10",
        "serving_default@10",
        "cross_modal@7",
        "serving_default@7",
        "2 warmup requests",
    ]
    assert info["verification"]["max_difference"] <= cross_modal.SCORE_TOLERANCE
    audio, visual, query_mask, direction = _inputs(10, count=2, seed=4)
    start, scores = _serve(tf.saved_model.load(final), audio, visual, query_mask, direction)
    want_start, want_scores = cross_modal.keras_localize(
        model, audio, visual, query_mask, direction
    )
    np.testing.assert_array_equal(start, want_start)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)


def test_verification_reports_a_difference_and_the_export_leaves_nothing(
    model, tmp_path, monkeypatch
):
    written = cross_modal.CrossModalServing.write_reference

    def wrong_scores(self, directory, cases):
        first = next(iter(cases.values()))
        first["scores"] = np.where(np.isinf(first["scores"]), np.inf, first["scores"] + 0.5)
        return written(self, directory, cases)

    monkeypatch.setattr(cross_modal.CrossModalServing, "write_reference", wrong_scores)
    base = str(tmp_path / "avdln")
    os.makedirs(os.path.join(base, "1"))  # an existing version, left alone
    with pytest.raises(
        UserError,
        match=r"verification of the SavedModel in a fresh process failed: cross_modal at 10 "
        r"segments: scores differ from the Keras model's by 5.00e-01",
    ):
        _export(model, base, verify_videos=2)
    assert [name for name in os.listdir(base) if not name.startswith(".")] == ["1"]
    assert os.listdir(os.path.join(base, "1")) == []


def test_verify_cross_modal_finds_a_wrong_start_and_missing_warmup(model, tmp_path):
    saved = str(tmp_path / "saved_model")
    reference = str(tmp_path / "reference")
    os.makedirs(reference)
    cross_modal.CrossModalGraph(model).write(saved)
    cases = cross_modal.reference_cases(model, count=3, lengths=(6,))
    _write_reference(model, reference, cases)
    warmup.write(warmup.warmup_path(saved), [])
    with pytest.raises(verify.Mismatch, match="tf_serving_warmup_requests: no warmup records"):
        verify.verify(saved, reference)
    requests = cross_modal.CrossModalServing(model).warmup(cases)
    warmup.write(warmup.warmup_path(saved), warmup.predict_requests("avdln", requests))
    report = verify.verify(saved, reference)
    assert report["checked"] == ["cross_modal@6", "serving_default@6", "2 warmup requests"]
    assert report["max_difference"] <= cross_modal.SCORE_TOLERANCE
    cases["t6"]["start"] = (cases["t6"]["start"] + 1) % 6
    _write_reference(model, reference, cases)
    with pytest.raises(verify.Mismatch, match=r"cross_modal at 6 segments: start \["):
        verify.verify(saved, reference)
