"""The client's reading of --data without a server: the split of a data directory it sends, and
the files it refuses (pickles are never loaded). Against the test server: test_serving.py."""

import os

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import fileio
from avsdn_tf.errors import UserError
from export import client

from testlib import TINY_SPLITS, run_command


def _ids_of_split(data_dir, split):
    """The video ids of a split's records, read from its shard files (not through the client)."""
    ids = []
    for path in sorted(tf.io.gfile.glob(os.path.join(data_dir, f"{split}-*.tfrecord"))):
        for record in tf.data.TFRecordDataset(path):
            example = tf.train.SequenceExample.FromString(record.numpy())
            ids.append(example.context.feature["video_id"].bytes_list.value[0].decode())
    return ids


def _sent_ids(data, split=None):
    return [i for request in client.requests_from(data, 8, split) for i in request.ids]


@pytest.mark.parametrize("split", [None, "val", "noisy"])
def test_a_data_directory_sends_the_split_given_default_test(tiny_vector_data, split):
    sent = _sent_ids(tiny_vector_data, split)
    expected = _ids_of_split(tiny_vector_data, split or "test")
    assert len(sent) == TINY_SPLITS[split or "test"]
    assert sorted(sent) == sorted(expected)


def test_a_split_the_data_directory_lacks_is_one_message(tiny_vector_data):
    info = os.path.join(tiny_vector_data, "dataset_info.json")
    with pytest.raises(UserError) as error:
        client.requests_from(tiny_vector_data, 8, "tset")
    assert str(error.value) == (
        f"{info}: expected a split named 'tset', found splits ['noisy', 'test', 'train', 'val']"
    )


def test_a_split_with_a_file_is_refused(tiny_vector_data, tmp_path):
    shard = sorted(tf.io.gfile.glob(os.path.join(tiny_vector_data, "val-*.tfrecord")))[0]
    np.savez(tmp_path / "f.npz", audio=np.zeros((2, 10, 16)), visual=np.zeros((2, 10, 24)))
    for data in (shard, str(tmp_path / "f.npz")):
        with pytest.raises(UserError, match=r"^split: expected a data directory in `data`") as e:
            client.requests_from(data, 8, "val")
        assert e.value.argument == "split" and data in str(e.value)


def test_a_pickled_npy_is_refused_naming_the_file_and_never_loaded(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, {"audio": np.zeros((10, 16)), "visual": np.zeros((10, 24))})
    with pytest.raises(UserError) as error:
        list(client.requests_from(str(path), 8))
    message = str(error.value)
    assert message.startswith(f"{path}: expected an .npz with arrays 'audio'")
    assert f"(plain numeric arrays), found {fileio.PICKLED}; it is not loaded" in message


def test_a_plain_npy_is_one_message_saying_to_use_an_npz(tmp_path):
    path = tmp_path / "audio.npy"
    np.save(path, np.zeros((10, 16), np.float32))
    with pytest.raises(UserError, match=r"audio.npy: expected an .npz .*np.savez.*found one array"):
        list(client.requests_from(str(path), 8))


def test_the_command_refuses_a_pickled_npy_in_one_line_exit_2(tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, {"audio": np.zeros((10, 16)), "visual": np.zeros((10, 24))})
    result = run_command("export.client", "--server", "127.0.0.1:1", "--data", path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr  # TensorFlow's own C++ log lines aside: one error
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line.startswith(f"error: {path}: expected an .npz") and fileio.PICKLED in line
