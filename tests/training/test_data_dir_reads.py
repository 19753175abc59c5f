"""Every command reads its data directory's dataset_info.json once (one GET on object storage):
train, evaluate and experiments run in this process, the reads counted through the one reader."""

import json

import pytest

from avsdn_tf import dataset_info, evaluate, experiments, train

from testlib import SMALL_UNITS, run_in_process, small_hparams

SMALL = [f"--{name}={value}" for name, value in SMALL_UNITS.items()]
TINY_RUN = [*SMALL, "--epochs=1", "--batch_size=16", "--unroll=false", "--max_videos=16"]


def _reads_of(module, args, monkeypatch):
    """The data directories dataset_info.read was called with in one run of the command."""
    reads = []
    real_read = dataset_info.read

    def counted(data_dir):
        reads.append(data_dir)
        return real_read(data_dir)

    monkeypatch.setattr(dataset_info, "read", counted)
    assert run_in_process(module, *args)[0] == 0
    return reads


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("reads") / "run")


def test_train_then_evaluate_read_dataset_info_once_each(tiny_vector_data, model_dir, monkeypatch):
    args = [f"--data_dir={tiny_vector_data}", f"--model_dir={model_dir}", *TINY_RUN]
    assert _reads_of(train, args, monkeypatch) == [tiny_vector_data]
    # evaluate on the run's own data (recorded in config.json) and on data named by the flag
    assert len(_reads_of(evaluate, [f"--model_dir={model_dir}"], monkeypatch)) == 1
    named = [f"--model_dir={model_dir}", f"--data_dir={tiny_vector_data}", "--split=val"]
    assert _reads_of(evaluate, named, monkeypatch) == [tiny_vector_data]


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_experiments_read_dataset_info_once(tiny_vector_data, tmp_path, monkeypatch):
    hparams_file = tmp_path / "small.json"
    hparams_file.write_text(json.dumps(small_hparams(epochs=1).to_dict()))
    args = [
        f"--hparams_file={hparams_file}",
        f"--data_dir={tiny_vector_data}",
        f"--output_dir={tmp_path / 'exp'}",
        "--table=supervised",
        "--rows=avsdn,av",
        "--seeds=1",
        "--epochs=1",
        "--max_videos=16",
    ]
    assert _reads_of(experiments, args, monkeypatch) == [tiny_vector_data]
    assert (tmp_path / "exp" / "results.json").exists()
