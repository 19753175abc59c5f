"""The tf.data input: parsed records, shapes, dtypes, batching, statistics, shuffling and
sharding."""

import math
import re
import shutil
import weakref

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import constants, dataset_info, records
from avsdn_tf.data import normalization, pipeline
from avsdn_tf.dataset_info import DataDir
from avsdn_tf.errors import UserError

from testlib import TINY_SPLITS, copy_with_damaged_shard


def test_batches_are_parsed_records_of_raw_features(tiny_vector_data):
    data = pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", batch_size=10)
    batch = next(iter(data))
    assert (
        batch["audio"].shape == (10, constants.NUM_SEGMENTS, 16)
        and batch["audio"].dtype == tf.float32
    )
    assert (
        batch["visual"].shape == (10, constants.NUM_SEGMENTS, 24)
        and batch["visual"].dtype == tf.float32
    )
    assert batch["label"].shape == (10, constants.NUM_SEGMENTS) and batch["label"].dtype == tf.int32
    spec = data.dataset.element_spec
    assert spec["audio"].shape[1] == constants.NUM_SEGMENTS  # static: LSTMs can unroll
    sizes = [int(batch["label"].shape[0]) for batch in data]
    assert sum(sizes) == TINY_SPLITS["train"] and sizes[-1] == TINY_SPLITS["train"] % 10


def test_noisy_videos_join_and_segment_labels_agree_with_video_labels(tiny_vector_data):
    with_noisy = pipeline.make_dataset(
        DataDir.open(tiny_vector_data), "train", 8, include_noisy=True
    )
    video_labels = np.concatenate([batch[records.VIDEO_LABEL].numpy() for batch in with_noisy])
    assert video_labels.shape == (TINY_SPLITS["train"] + TINY_SPLITS["noisy"],)
    assert (video_labels == constants.BACKGROUND).sum() == TINY_SPLITS[
        "noisy"
    ]  # AVE videos all hold an event
    for batch in pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 8):
        video = batch[records.VIDEO_LABEL].numpy()
        labels = batch[records.LABEL].numpy()
        for v, row in zip(video, labels, strict=True):
            assert set(row) <= {v, constants.BACKGROUND}


def test_maps_keep_their_layout(tiny_map_data):
    batch = next(iter(pipeline.make_dataset(DataDir.open(tiny_map_data), "val", 4)))
    assert batch["visual"].shape == (4, constants.NUM_SEGMENTS, 3, 3, 8)


def test_statistics_are_the_train_split_moments_and_reading_them_writes_nothing(
    tiny_vector_data, tmp_path
):
    stats, source = normalization.read_statistics(tiny_vector_data)
    assert source.endswith(constants.NORMALIZATION_FILE)
    raw = np.concatenate(
        [
            batch["audio"].numpy()
            for batch in pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 32)
        ]
    ).reshape(-1, 16)
    np.testing.assert_allclose(stats["audio_mean"], raw.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["audio_std"], raw.std(0), rtol=1e-4)
    # A data directory without normalization.json: computed from its train split, nothing written.
    copy = tmp_path / "copy"
    shutil.copytree(tiny_vector_data, copy)
    (copy / constants.NORMALIZATION_FILE).unlink()
    computed, source = normalization.read_statistics(str(copy))
    assert "train split" in source and not (copy / constants.NORMALIZATION_FILE).exists()
    np.testing.assert_allclose(computed["audio_mean"], stats["audio_mean"], atol=1e-6)


def _video_ids(data):
    return [i.decode() for batch in data for i in batch[records.VIDEO_ID].numpy()]


def test_training_order_is_shuffled_deterministically_by_seed(tiny_vector_data):
    def order(seed):
        return _video_ids(
            pipeline.make_dataset(
                DataDir.open(tiny_vector_data),
                "train",
                8,
                training=True,
                seed=seed,
                deterministic=True,
            )
        )

    plain = _video_ids(pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 8))
    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == sorted(plain)


def test_input_context_shards_by_file(tiny_vector_data):
    info = dataset_info.read(tiny_vector_data)
    assert len(info.splits["train"]["shards"]) == 2
    seen = []
    for worker in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=worker)
        seen.append(
            set(
                _video_ids(
                    pipeline.make_dataset(
                        DataDir.open(tiny_vector_data), "train", 8, input_context=context
                    )
                )
            )
        )
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == len(
        set(_video_ids(pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 8)))
    )
    with pytest.raises(UserError, match="at least 3 shards"):
        context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=0)
        pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 8, input_context=context)


def test_variable_length_videos_are_padded_with_label_minus_one(tmp_path):
    rng = np.random.default_rng(0)
    lengths = [3, 5, 4]
    from avsdn_tf.data import shards

    with shards.ShardWriter(str(tmp_path), "train", 1) as writer:
        for i, length in enumerate(lengths):
            writer.write(
                records.encode_video(
                    f"v{i}",
                    2,
                    0,
                    length,
                    2,
                    rng.normal(size=(length, 4)),
                    rng.normal(size=(length, 6)),
                    [2] * length,
                )
            )
    info = dataset_info.DatasetInfo(
        audio_dim=4,
        visual_shape=[6],
        num_segments=None,
        class_names=constants.class_names(),
        splits={"train": {"videos": 3, "shards": writer.names}},
    )
    dataset_info.write(str(tmp_path), info)
    assert pipeline.decoded_gigabytes(info, "train") is None  # unknown until read
    for cache in (False, True):
        batch = next(
            iter(pipeline.make_dataset(DataDir.open(str(tmp_path)), "train", 3, cache=cache))
        )
        labels = batch["label"].numpy()
        assert batch["audio"].shape == (3, 5, 4)
        np.testing.assert_array_equal((labels != constants.PAD_LABEL).sum(1), lengths)
        assert labels[0, 3] == constants.PAD_LABEL


def test_bad_requests_name_the_problem(tiny_vector_data, tmp_path):
    with pytest.raises(UserError, match="split named 'dev'"):
        pipeline.make_dataset(DataDir.open(tiny_vector_data), "dev", 8)
    with pytest.raises(UserError, match="not found"):
        pipeline.make_dataset(DataDir.open(str(tmp_path / "nowhere")), "train", 8)


def test_max_videos_is_one_fixed_subset_whatever_the_shuffle(tiny_vector_data):
    def subset(seed):
        return sorted(
            _video_ids(
                pipeline.make_dataset(
                    DataDir.open(tiny_vector_data),
                    "train",
                    8,
                    training=True,
                    seed=seed,
                    max_videos=20,
                )
            )
        )

    assert len(subset(1)) == 20
    assert subset(1) == subset(2) == subset(3)


def _epochs_of_ids(data, epochs, videos):
    ids = _video_ids(data)
    assert len(ids) == epochs * videos
    return [ids[i * videos : (i + 1) * videos] for i in range(epochs)]


def test_cached_epochs_read_the_records_once_and_shuffle_the_whole_split_each_epoch(
    tiny_vector_data, tmp_path
):
    data_dir = str(tmp_path / "data")
    shutil.copytree(tiny_vector_data, data_dir)
    videos = TINY_SPLITS["train"]

    def cached(seeds):
        return pipeline.make_dataset(
            DataDir.open(data_dir), "train", 8, training=True, cache=True, epoch_seeds=seeds
        )

    iterator = iter(cached([5, 6, 7]))
    first = [
        i.decode()
        for _ in range(math.ceil(videos / 8))
        for i in next(iterator)[records.VIDEO_ID].numpy()
    ]
    for shard in tf.io.gfile.glob(f"{data_dir}/train-*"):
        tf.io.gfile.remove(shard)  # later epochs must come from memory
    rest = [i.decode() for batch in iterator for i in batch[records.VIDEO_ID].numpy()]
    epochs = [first, rest[:videos], rest[videos:]]
    assert [len(epoch) for epoch in epochs] == [videos] * 3
    assert all(sorted(epoch) == sorted(first) for epoch in epochs)
    assert len({tuple(epoch) for epoch in epochs}) == 3  # each epoch has its own order


def test_epochs_are_repeatable_and_cached_ones_hold_the_same_values_as_the_records(
    tiny_vector_data,
):
    def run(seeds, cache):
        return pipeline.make_dataset(
            DataDir.open(tiny_vector_data),
            "train",
            8,
            training=True,
            cache=cache,
            epoch_seeds=seeds,
            deterministic=True,
        )

    videos = TINY_SPLITS["train"]
    for cache in (True, False):
        once = _epochs_of_ids(run([1, 2], cache), 2, videos)
        assert once == _epochs_of_ids(run([1, 2], cache), 2, videos) and once[0] != once[1]
        # A resumed run asks for the later epochs only, and sees what an uninterrupted one saw.
        assert _epochs_of_ids(run([2], cache), 1, videos) == once[1:]

    def audio_by_id(data):
        return {
            i.decode(): a
            for batch in data
            for i, a in zip(
                batch[records.VIDEO_ID].numpy(), batch[records.AUDIO].numpy(), strict=True
            )
        }

    from_memory, from_records = audio_by_id(run([1], True)), audio_by_id(run([1], False))
    assert from_memory.keys() == from_records.keys()
    for video_id, audio in from_records.items():
        np.testing.assert_allclose(from_memory[video_id], audio, rtol=1e-6)


def test_decoded_size_counts_every_float(tiny_vector_data, tiny_map_data):
    info = dataset_info.read(tiny_vector_data)
    per_video = constants.NUM_SEGMENTS * (16 + 24) * 4 / 1e9
    assert pipeline.decoded_gigabytes(info, "train") == pytest.approx(
        TINY_SPLITS["train"] * per_video
    )
    assert pipeline.decoded_gigabytes(info, "train", include_noisy=True) == pytest.approx(
        (TINY_SPLITS["train"] + TINY_SPLITS["noisy"]) * per_video
    )
    assert pipeline.decoded_gigabytes(info, "train", max_videos=5) == pytest.approx(5 * per_video)
    maps = dataset_info.read(tiny_map_data)
    assert pipeline.decoded_gigabytes(maps, "val") == pytest.approx(
        TINY_SPLITS["val"] * constants.NUM_SEGMENTS * (16 + 3 * 3 * 8) * 4 / 1e9
    )


def _read_all(data_dir, split, **options):
    """Iterate every batch of make_dataset(split), as the readers do (the batches name a bad
    shard themselves)."""
    data = pipeline.make_dataset(DataDir.open(data_dir), split, 8, **options)
    return sum(int(batch[records.LABEL].shape[0]) for batch in data)


@pytest.mark.parametrize(
    "damage, found",
    [
        ("overwrite", r"found a corrupted record at offset \d+ of 15840 bytes; make the data"),
        ("truncate", r"found a truncated record at offset \d+ of 8020 bytes, the file cut short"),
    ],
)
def test_a_damaged_shard_is_named_with_its_offset(tiny_vector_data, tmp_path, damage, found):
    shard = "noisy-00001-of-00002.tfrecord"  # the last shard read: the scan must pass the others
    data_dir, path = copy_with_damaged_shard(tiny_vector_data, tmp_path / "data", shard, damage)
    for options in ({}, {"cache": True}, {"training": True, "seed": 1}):
        with pytest.raises(UserError) as caught:
            _read_all(data_dir, "train", include_noisy=True, **options)
        message = str(caught.value)
        assert message.startswith(f"{path}: expected a readable TFRecord shard, ")
        assert re.search(found, message), message
        assert "prepare, synthesize or extract" in message
    assert _read_all(data_dir, "val") == TINY_SPLITS["val"]  # the other splits still read


def test_a_shard_cut_at_a_record_boundary_is_counted_against_dataset_info(
    tiny_vector_data, tmp_path
):
    shard = "train-00000-of-00002.tfrecord"
    data_dir, _ = copy_with_damaged_shard(
        tiny_vector_data, tmp_path / "data", shard, "half_records"
    )
    whole = [
        sum(
            1
            for _ in tf.data.TFRecordDataset(f"{tiny_vector_data}/train-0000{i}-of-00002.tfrecord")
        )
        for i in (0, 1)
    ]
    assert sum(whole) == TINY_SPLITS["train"]
    expected = (
        f"{data_dir}/dataset_info.json split 'train': expected {TINY_SPLITS['train']} records, its"
        f" count of videos, found {whole[0] // 2 + whole[1]} in its shards {shard}"
        f" ({whole[0] // 2}), train-00001-of-00002.tfrecord ({whole[1]}); make the data directory"
        " again with prepare, synthesize or extract"
    )
    # Every reader: the input pipeline (train, evaluate, experiments), the statistics the model
    # is normalised by, and the shard list the client and export's verification read.
    for read in (
        lambda: _read_all(data_dir, "train", cache=True),
        lambda: _read_all(data_dir, "train", training=True, seed=1),
        lambda: normalization.compute_statistics(data_dir),
        lambda: dataset_info.read(data_dir).shard_paths(data_dir, "train"),
    ):
        with pytest.raises(UserError) as caught:
            read()
        assert str(caught.value) == expected
    assert _read_all(data_dir, "val") == TINY_SPLITS["val"]  # the other splits still read


def test_records_are_counted_from_their_headers(tmp_path):
    path = str(tmp_path / "a.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for size in (0, 1, 300, 70_000):
            writer.write(b"x" * size)
    assert dataset_info.count_records(path) == 4
    with open(path, "r+b") as handle:  # a flipped bit in the second record's length
        handle.seek(16 + 2)
        handle.write(b"\x7f")
    with pytest.raises(
        UserError, match=r"a\.tfrecord: expected a readable TFRecord shard, found a"
    ):
        dataset_info.count_records(path)


def test_a_shard_deleted_after_the_split_was_listed_is_named(tiny_vector_data, tmp_path):
    shutil.copytree(tiny_vector_data, tmp_path / "data")
    data_dir = str(tmp_path / "data")
    data = pipeline.make_dataset(DataDir.open(data_dir), "val", 8)  # lists and checks the shards
    vanished = tmp_path / "data" / "val-00001-of-00002.tfrecord"
    vanished.unlink()
    expected = (
        f"{vanished}: expected a readable TFRecord shard, found no such file (it was removed "
        "during the run); make the data directory again with prepare, synthesize or extract"
    )
    with pytest.raises(UserError) as caught:
        for _ in data:
            pass
    assert str(caught.value) == expected
    # What Keras' fit iterates (inside its tf.function) is .dataset, in the batches' reading().
    with pytest.raises(UserError) as caught, data.reading():
        for _ in data.dataset:
            pass
    assert str(caught.value) == expected


def test_a_kept_shard_error_does_not_keep_the_failed_iterator(tiny_vector_data, tmp_path):
    """The UserError, kept (pytest.raises, a notebook's last error), must not hold the tf.data
    iterator in a reference cycle: freed only by a later garbage collection, its teardown can
    wait up to a minute on tf.data's autotuning thread, a pause in whatever runs then."""
    shutil.copytree(tiny_vector_data, tmp_path / "data")
    data = pipeline.make_dataset(DataDir.open(str(tmp_path / "data")), "val", 8)
    (tmp_path / "data" / "val-00001-of-00002.tfrecord").unlink()
    iterator = iter(data.dataset)
    alive = weakref.ref(iterator)
    with pytest.raises(UserError) as caught, data.reading():
        for _ in iterator:
            pass
    del iterator
    assert alive() is None, "the kept error holds the failed iterator"  # freed without gc
    assert "val-00001-of-00002.tfrecord" in str(caught.value)


@pytest.mark.parametrize("kind", [tf.errors.NotFoundError, tf.errors.PermissionDeniedError])
def test_errors_about_other_files_pass_through_unchanged(tiny_vector_data, kind):
    with pytest.raises(kind, match="another file"):
        with pipeline.make_dataset(DataDir.open(tiny_vector_data), "train", 8).reading():
            raise kind(None, None, "another file")


def test_statistics_of_a_damaged_train_split_name_the_shard(tiny_vector_data, tmp_path):
    data_dir, path = copy_with_damaged_shard(
        tiny_vector_data, tmp_path / "data", "train-00000-of-00002.tfrecord", "truncate"
    )
    with pytest.raises(UserError, match=f"^{re.escape(path)}: expected a readable TFRecord"):
        normalization.compute_statistics(data_dir)
