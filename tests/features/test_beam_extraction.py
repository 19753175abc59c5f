"""extract --runner: the Beam pipeline writes the data directory the single process writes.

The videos, the VGGish checkpoint and the random VGG-19 weights are made as in
test_extract_predict.py (media_testlib's helpers); the DirectRunner runs with two worker processes
(--direct_num_workers 2 --direct_running_mode multi_processing), each loading the networks once.
"""

import json
import os
import sys

import numpy as np
import pytest
from absl import flags

from avsdn_tf import dataset_info, extract
from avsdn_tf.errors import UserError
from avsdn_tf.features import assembly, beam_extraction, feature_extractor

from media_testlib import RUNNER_CLIPS, extract_inputs
from media_testlib import feature_args as _feature_args
from media_testlib import records_by_id as _records
from s3_testlib import local_files, objects
from testlib import read_records, run_command, run_in_process

pytest.importorskip("av")
pytest.importorskip("apache_beam")

MULTI_PROCESS = ["--direct_num_workers", "2", "--direct_running_mode", "multi_processing"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    clips = RUNNER_CLIPS
    # clip_a: two events, two records; clip_d: no row, skipped; clip_c (3 s): its event clipped
    # to 0-3 s; clip_z: no such video.
    labels = (
        "video_id,category,start,end,split\nclip_a,Bark,1,2,\nclip_a,Banjo,0,1,\n"
        "clip_b,,0,0,val\nclip_c,Cat,0,5,\nsilent,Bark,0,2,\nbroken,Bark,0,1,\nclip_z,Bark,0,1,\n"
    )
    return extract_inputs(
        tmp_path_factory,
        "beam_videos",
        clips,
        labels,
        {"broken.mp4": b"not an mp4 at all", ".DS_Store": b"\0\0\0\1"},
    )


def _extract(args):
    """extract as the command line runs it: absl parses what it knows, the rest goes to main."""
    flag_values = flags.FlagValues()
    extract.define_flags(flag_values)
    argv = extract.parse_flags(["extract", *args], flag_values)
    return extract.main(argv, flag_values)


def _shard_records(data_dir, shard):
    """{(video_id, category): decoded record} of one shard file."""
    return {
        (record["video_id"].decode(), int(record["category"])): record
        for record in read_records(data_dir, shard=shard)
    }


def _json(directory, name):
    with open(os.path.join(directory, name)) as handle:
        return json.load(handle)


def _common_args(inputs, output):
    return [
        f"--videos={inputs['videos']}",
        f"--output_dir={output}",
        f"--labels={inputs['labels']}",
        "--videos_per_shard=1",
        *_feature_args(inputs),
    ]


@pytest.mark.slow  # two Beam worker processes (~40 s)
def test_direct_runner_on_two_processes_writes_what_the_single_process_writes(inputs):
    single, distributed = str(inputs["root"] / "single"), str(inputs["root"] / "beam")
    assert _extract(_common_args(inputs, single)) == 0
    assert (
        _extract([*_common_args(inputs, distributed), "--runner", "DirectRunner", *MULTI_PROCESS])
        == 0
    )

    expected, found = dataset_info.read(single), dataset_info.read(distributed)
    assert found == expected  # splits, shard names and counts, dims, lengths, generator
    assert expected.splits["train"] == {
        "videos": 3,
        "shards": [
            "train-00000-of-00003.tfrecord",
            "train-00001-of-00003.tfrecord",
            "train-00002-of-00003.tfrecord",
        ],
    }
    for shard in [name for split in expected.splits.values() for name in split["shards"]]:
        want, got = _shard_records(single, shard), _shard_records(distributed, shard)
        assert sorted(got) == sorted(want)  # the same records in each shard (maybe reordered)
        for key, record in want.items():
            for name, value in record.items():
                if np.asarray(value).dtype.kind == "f":
                    np.testing.assert_allclose(got[key][name], value, rtol=1e-6, atol=1e-6)
                else:
                    np.testing.assert_array_equal(got[key][name], value)
    assert sorted(_records(distributed, "train")) == ["clip_a", "clip_c"]
    assert _shard_records(distributed, "val-00000-of-00001.tfrecord").keys() == {("clip_b", -1)}

    want, got = _json(single, "normalization.json"), _json(distributed, "normalization.json")
    assert got.pop("split") == want.pop("split") == "train"
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-12)

    skipped = _json(distributed, assembly.SKIPPED_FILE)
    assert skipped == _json(single, assembly.SKIPPED_FILE)
    assert [os.path.basename(path) for path in skipped["skipped"]] == [
        "broken.mp4",
        "clip_d.mp4",
        "silent.mp4",
    ]
    assert (
        "no row for video id 'clip_d'"
        in skipped["skipped"][os.path.join(inputs["videos"], "clip_d.mp4")]
    )
    assert list(skipped["other_files"]) == [os.path.join(inputs["videos"], ".DS_Store")]
    warnings = _json(distributed, assembly.LABEL_WARNINGS_FILE)
    assert warnings == _json(single, assembly.LABEL_WARNINGS_FILE)
    assert [(w["line"], w["video_id"]) for w in warnings["rows_matching_no_video"]] == [
        (8, "clip_z")
    ]
    assert [(w["line"], w["video_id"]) for w in warnings["events_clipped"]] == [(5, "clip_c")]

    summary = _json(distributed, assembly.SUMMARY_FILE)
    assert summary["runner"] == "DirectRunner"
    assert (
        summary["videos_given"],
        summary["videos_extracted_now"],
        summary["videos_skipped"],
    ) == (6, 3, 3)
    assert summary["records"] == {"train": 3, "val": 1}
    assert (summary["label_rows_matching_no_video"], summary["events_clipped"]) == (1, 1)
    assert summary["other_files_skipped"] == 1
    assert summary["seconds_of_video_extracted_now"] == 3 + 2 + 3
    assert sorted(os.listdir(os.path.join(distributed, assembly.FEATURES_DIR))) == [
        "clip_a.npz",
        "clip_b.npz",
        "clip_c.npz",
    ]
    assert not [name for name in os.listdir(distributed) if name.startswith(".")]


def test_a_failed_job_publishes_nothing_and_a_rerun_resumes(inputs, monkeypatch, tmp_path):
    output = str(tmp_path / "out")
    real = feature_extractor.FeatureExtractor

    class FailsOnClipC(real):
        def extract(self, path, thumbnails=False):
            if "clip_c" in path:
                raise RuntimeError("the worker ran out of memory")
            return super().extract(path, thumbnails)

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", FailsOnClipC)
    with pytest.raises(
        UserError, match="DirectRunner failed: .*ran out of memory.*nothing was"
    ) as caught:
        _extract([*_common_args(inputs, output), "--runner=DirectRunner"])
    os.remove(str(caught.value).rsplit("the runner's log: ", 1)[1])  # kept for the user: named
    left = sorted(os.listdir(output))
    assert left == [assembly.CONFIG_FILE, assembly.FEATURES_DIR]  # no data set, no staging
    assert "clip_c.npz" not in os.listdir(os.path.join(output, assembly.FEATURES_DIR))

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", real)
    assert _extract([*_common_args(inputs, output), "--runner=DirectRunner"]) == 0
    summary = _json(output, assembly.SUMMARY_FILE)
    assert summary["videos_extracted_now"] + summary["videos_already_done"] == 3
    assert summary["videos_extracted_now"] >= 1  # clip_c at least
    assert dataset_info.read(output).splits["train"]["videos"] == 3


def test_runner_arguments_are_checked(inputs, tmp_path, monkeypatch, capsys):
    output = str(tmp_path / "out")
    with pytest.raises(
        UserError,
        match=r"--runner DirectRunner: expected .*--direct_num_wokers=2 "
        r"\(did you mean --direct_num_workers\?\)",
    ):
        _extract([*_common_args(inputs, output), "--runner=DirectRunner", "--direct_num_wokers=2"])
    with pytest.raises(
        Exception,
        match=r"unknown flag --project .*; Beam pipeline options are taken with --runner only",
    ):
        _extract([*_common_args(inputs, output), "--project", "p"])
    assert not os.path.exists(output)  # refused before anything was written

    monkeypatch.setitem(sys.modules, "apache_beam", None)  # as if not installed
    status, _, message = run_in_process(
        extract, *_common_args(inputs, output), "--runner=FlinkRunner", capsys=capsys
    )
    assert status == 2
    assert "--runner: expected Apache Beam installed (pip install 'avsdn-tf[beam]')" in message
    assert beam_extraction.INSTALL_HINT in message and "Traceback" not in message


@pytest.mark.slow
def test_videos_and_output_on_s3(inputs, s3, tmp_path):
    """--videos s3://... and --output_dir s3://... with --runner: the files the single process
    writes locally from the same videos (a command in a subprocess, as test_remote runs them)."""
    env, client = s3
    client.create_bucket(Bucket="beam")
    names = ["clip_a.mp4", "clip_b.mp4", "silent.mp4"]
    for name in names:
        client.upload_file(os.path.join(inputs["videos"], name), "beam", f"videos/{name}")
    local_videos = tmp_path / "videos"
    local_videos.mkdir()
    for name in names:
        (local_videos / name).write_bytes((open(os.path.join(inputs["videos"], name), "rb")).read())
    features = _feature_args(inputs)
    local = str(tmp_path / "local")
    result = run_command(
        "avsdn_tf.extract", f"--videos={local_videos}", f"--output_dir={local}", *features, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    result = run_command(
        "avsdn_tf.extract",
        "--videos=s3://beam/videos",
        "--output_dir=s3://beam/out",
        *features,
        "--runner",
        "DirectRunner",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    on_s3, here = objects(client, "beam", "out"), local_files(local)
    assert sorted(on_s3) == sorted(here)
    info = json.loads(on_s3["dataset_info.json"])
    assert info == json.loads(here["dataset_info.json"])
    skipped = json.loads(on_s3[assembly.SKIPPED_FILE])["skipped"]
    assert list(skipped) == ["s3://beam/videos/silent.mp4"]
    assert skipped["s3://beam/videos/silent.mp4"].startswith(
        "s3://beam/videos/silent.mp4: expected an audio track"
    )
    for name in info["splits"]["train"]["shards"]:
        assert len(on_s3[name]) == len(here[name])
