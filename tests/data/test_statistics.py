"""normalization.json's statistics: one accumulation (Moments), whether one process reads a split
or Beam workers each add their videos and the sums are merged."""

import json

import numpy as np

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.data import normalization, shards

AUDIO_DIM, VISUAL_SHAPE = 3, [2, 2, 4]


def _videos(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (
            rng.normal(2.0, 3.0, (t, AUDIO_DIM)).astype(np.float32),
            rng.uniform(0.0, 5.0, (t, *VISUAL_SHAPE)).astype(np.float32),
        )
        for t in lengths
    ]


def _write(data_dir, videos):
    data_dir.mkdir()
    with shards.ShardWriter(str(data_dir), "train", 1) as writer:
        for index, (audio, visual) in enumerate(videos):
            writer.write(
                records.encode_video(
                    f"v{index}", 0, 0, 1, 0, audio, visual, np.zeros(len(audio), np.int64)
                )
            )
    dataset_info.write(
        str(data_dir),
        dataset_info.DatasetInfo(
            audio_dim=AUDIO_DIM,
            visual_shape=VISUAL_SHAPE,
            num_segments=None,
            class_names=constants.class_names(),
            splits={"train": {"videos": len(videos), "shards": writer.names}},
        ),
    )


def test_videos_of_different_lengths_count_their_segments_not_the_padding(tmp_path):
    videos = _videos([5, 2, 7, 1])
    _write(tmp_path / "data", videos)
    statistics = normalization.compute_statistics(str(tmp_path / "data"), batch_size=3)
    audio = np.concatenate([a for a, _ in videos])
    visual = np.concatenate([v for _, v in videos]).reshape(-1, VISUAL_SHAPE[-1])
    np.testing.assert_allclose(statistics["audio_mean"], audio.mean(0), rtol=1e-6)
    np.testing.assert_allclose(statistics["audio_std"], audio.std(0), rtol=1e-5)
    np.testing.assert_allclose(statistics["visual_mean"], visual.mean(0), rtol=1e-6)
    np.testing.assert_allclose(statistics["visual_std"], visual.std(0), rtol=1e-5)


def test_merged_moments_of_parts_equal_the_moments_of_the_whole():
    videos = _videos([3, 4, 2, 6], seed=1)
    whole = normalization.Moments(AUDIO_DIM, VISUAL_SHAPE[-1])
    for audio, visual in videos:
        whole.add(audio, visual)
    parts = [normalization.Moments(AUDIO_DIM, VISUAL_SHAPE[-1]).add(*video) for video in videos]
    merged = normalization.Moments(AUDIO_DIM, VISUAL_SHAPE[-1])
    for part in reversed(parts):  # any order: workers finish when they finish
        merged.merge(part)
    assert merged.audio_count == whole.audio_count == 15
    assert merged.visual_count == 15 * 4  # a 2x2 map: 4 samples of each channel per segment
    merged = normalization.Moments.from_json(json.loads(json.dumps(merged.to_json())))
    expected, found = whole.statistics("train"), merged.statistics("train")
    assert found.pop("split") == expected.pop("split") == "train"
    for key, value in expected.items():
        np.testing.assert_allclose(found[key], value, rtol=1e-12)
