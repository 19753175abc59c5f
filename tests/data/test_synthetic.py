"""The built-in data set: real AVE event structure, deterministic, and needing both senses."""

import numpy as np
import pytest

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.data import annotations, pipeline, synthetic
from avsdn_tf.dataset_info import DataDir
from avsdn_tf.errors import UserError

from testlib import TINY_SPLITS, tiny_config


def test_events_come_from_the_real_annotations(tiny_vector_data):
    real = {
        (row.video_id, row.start, row.end, row.category)
        for split in constants.SPLITS
        for row in annotations.packaged_annotations(f"{split}Set.txt")
    }
    names = constants.category_names()
    data = pipeline.make_dataset(DataDir.open(tiny_vector_data), "test", 16)
    for batch in data:
        for i, video_id in enumerate(batch[records.VIDEO_ID].numpy()):
            category = int(batch[records.CATEGORY][i])
            start, end = int(batch[records.EVENT_START][i]), int(batch[records.EVENT_END][i])
            assert (video_id.decode(), start, end, names[category]) in real
            expected = annotations.segment_labels(
                annotations.Annotation(names[category], "", "", start, end), category
            )
            np.testing.assert_array_equal(batch[records.LABEL][i].numpy(), expected)


def test_same_seed_same_bytes_other_seed_other_features(tmp_path):
    config = tiny_config(videos_per_split={"train": 6, "val": 2, "test": 2, "noisy": 2})
    first, second, other = (str(tmp_path / name) for name in ("a", "b", "c"))
    synthetic.write_dataset(first, config, verbose=False)
    synthetic.write_dataset(second, config, verbose=False)
    synthetic.write_dataset(
        other, tiny_config(videos_per_split=config.videos_per_split, seed=99), verbose=False
    )
    info = dataset_info.read(first)
    assert info.splits["noisy"]["videos"] == 2 and info.audio_dim == 16
    for name in info.splits["train"]["shards"]:
        a, b, c = ((tmp_path / d / name).read_bytes() for d in "abc")
        assert a == b and a != c


def test_presence_rule_event_needs_both_senses():
    rng = np.random.default_rng(0)
    labels = np.array([28, 28, 28, 5, 5, 5, 28, 28, 28, 28])
    for _ in range(20):
        audible, visible = synthetic.modality_presence(rng, labels, 5)
        inside = labels != constants.BACKGROUND
        assert audible[inside].all() and visible[inside].all()
        assert not (audible & visible)[
            ~inside
        ].any()  # outside: at most one sense carries the class


def test_confusable_pairs_differ_by_sense():
    for c in range(constants.NUM_EVENT_CLASSES):
        assert synthetic.audio_partner(synthetic.audio_partner(c)) == c
        assert synthetic.visual_partner(synthetic.visual_partner(c)) == c
        assert synthetic.audio_partner(c) != synthetic.visual_partner(c)
    features = synthetic.SyntheticFeatures(tiny_config(audio_dim=64, visual_dim=64))
    audio = features.audio_prototypes
    distance = np.linalg.norm(audio[:, None] - audio[None], axis=-1)
    assert distance[0, synthetic.audio_partner(0)] < 0.5 * distance[0, synthetic.visual_partner(0)]


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(UserError, match="audio_dim"):
        synthetic.write_dataset(str(tmp_path / "x"), tiny_config(audio_dim=1), verbose=False)
    with pytest.raises(UserError, match="train_videos"):
        synthetic.write_dataset(
            str(tmp_path / "x"),
            tiny_config(videos_per_split={**TINY_SPLITS, "train": 0}),
            verbose=False,
        )
    assert not (tmp_path / "x").exists()


def test_map_layout(tiny_map_data):
    info = dataset_info.read(tiny_map_data)
    assert info.visual_shape == [3, 3, 8] and info.visual_layout == constants.LAYOUT_MAP


def test_noise_spreads_the_observations_and_keeps_the_classes(tmp_path):
    """--noise makes each segment harder to read alone: same classes, a wider spread around them."""
    labels = np.array([28, 28, 3, 3, 3, 3, 3, 28, 28, 28])
    draws = {}
    for noise in (0.5, 1.0, 1.5):
        features = synthetic.SyntheticFeatures(tiny_config(audio_dim=32, noise=noise))
        draws[noise] = features.video(np.random.default_rng(4), labels, 3)
        np.testing.assert_array_equal(
            features.audio_prototypes,
            synthetic.SyntheticFeatures(tiny_config(audio_dim=32)).audio_prototypes,
        )
    for modality in (0, 1):  # the same draws, scaled: each step of 0.5 adds the same deviation
        low, mid, high = (draws[n][modality].astype(np.float64) for n in (0.5, 1.0, 1.5))
        np.testing.assert_allclose(high - mid, mid - low, atol=1e-5)
        assert np.abs(mid - low).max() > 0.01
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(UserError, match="noise: expected a finite number > 0"):
            synthetic.write_dataset(str(tmp_path / "x"), tiny_config(noise=bad), verbose=False)
    assert not (tmp_path / "x").exists()
    synthetic.write_dataset(
        str(tmp_path / "n"), tiny_config(videos_per_split=TINY_SPLITS, noise=1.1), verbose=False
    )
    assert dataset_info.read(str(tmp_path / "n")).generator.endswith("noise=1.1")


def test_progress_written_to_a_log_is_one_line_per_split(tmp_path, capsys):
    """Keras redraws its bar in place even into a file: a log got one line per video."""
    config = tiny_config()
    synthetic.write_dataset(str(tmp_path / "x"), config, verbose=True)
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    lines = out.strip().splitlines()
    splits = [s for s, count in config.videos_per_split.items() if count]
    assert len(lines) == len(splits) + 1  # a line per split, then the summary
    for line, split in zip(lines, splits):
        assert line.startswith(f"{config.videos_per_split[split]}/{config.videos_per_split[split]}")
    assert lines[-1].startswith(f"wrote {tmp_path / 'x'}")
