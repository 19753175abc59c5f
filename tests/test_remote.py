"""s3:// against a local S3-compatible endpoint (moto's server on 127.0.0.1, started here).

Everything that touches S3 through TensorFlow runs as a subprocess (a command, as a user runs it):
a process that has used tensorflow-io's S3 client aborts at exit unless it ends through
remote.exit_process, and pytest's own process must not be one of them. The test process talks to
the endpoint only through boto3 (moto's dependency), to create buckets and read objects back.

gs:// is not tested: TensorFlow 2.17's GCS client has googleapis.com compiled in and no setting
that points it at a local emulator.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from avsdn_tf import fileio, remote
from avsdn_tf.data import ave_release
from avsdn_tf.errors import UserError

from s3_testlib import local_files, objects
from testlib import free_ports, one_error_line, run_command

TINY = [
    "--train_videos",
    "48",
    "--val_videos",
    "16",
    "--test_videos",
    "16",
    "--noisy_videos",
    "8",
    "--audio_dim",
    "16",
    "--visual_dim",
    "24",
    "--seed",
    "5",
]
boto3 = pytest.importorskip("boto3")


def error_line(result):
    """The one line of a command's user error (the commands quiet TensorFlow's C++ lines)."""
    return one_error_line(result.returncode, result.stderr, allow_tf_log=False)


# --------------------------------------------------------------------------------------------
# In process: no S3 client is made here.


def test_schemes_and_storage_paths():
    assert remote.scheme("s3://b/k") == "s3" and remote.bucket("s3://b/k/x") == "b"
    assert remote.scheme("/tmp/x") == "" and not remote.is_remote("file:///tmp/x")
    assert remote.is_remote("gs://b/x") and not remote.atomic_directory_rename("s3://b/x")
    assert remote.atomic_directory_rename("/tmp/x")
    # A TF Serving address given as a flag is not storage: it must not load tensorflow-io.
    assert remote.storage_paths(["s3://b/x", "http://localhost:8501", "data/ave", 3, None]) == [
        "s3://b/x"
    ]
    with pytest.raises(UserError, match=r"--output_dir foo://b/x: expected a local path or a gs"):
        remote.use_filesystem("foo://b/x", "--output_dir")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("http://127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("127.0.0.1:9000", ("127.0.0.1", 9000)),
        ("minio.local", ("minio.local", 80)),
    ],
)
def test_s3_endpoint_is_parsed_like_tensorflow_io(monkeypatch, text, expected):
    monkeypatch.setenv("S3_ENDPOINT", text)
    monkeypatch.setenv("S3_USE_HTTPS", "0")
    assert remote.s3_endpoint()[:2] == expected


def test_object_store_publishing_moves_the_marker_last(tmp_path, monkeypatch):
    """The object-store path of publish_directory, run on local files with its renames recorded."""
    monkeypatch.setattr(remote, "atomic_directory_rename", lambda path: False)
    final = tmp_path / "out"
    final.mkdir()
    (final / "dataset_info.json").write_text("old")
    (final / "train-00000-of-00002.tfrecord").write_text("old shard")
    steps = []
    rename, remove, rmtree = tf.io.gfile.rename, tf.io.gfile.remove, tf.io.gfile.rmtree
    monkeypatch.setattr(
        tf.io.gfile,
        "rename",
        lambda a, b, overwrite=False: (
            steps.append(("rename", os.path.relpath(b, final))),
            rename(a, b, overwrite),
        )[1],
    )
    monkeypatch.setattr(
        tf.io.gfile,
        "remove",
        lambda p: (steps.append(("remove", os.path.relpath(p, final))), remove(p))[1],
    )
    monkeypatch.setattr(
        tf.io.gfile,
        "rmtree",
        lambda p: (steps.append(("rmtree", os.path.relpath(p, final))), rmtree(p))[1],
    )
    with fileio.staged_directory(str(final), marker="dataset_info.json") as staging:
        tf.io.gfile.makedirs(os.path.join(staging, "sub"))
        for name in ("dataset_info.json", "val-00000-of-00001.tfrecord", "z.json", "sub/a.bin"):
            fileio.write_text(os.path.join(staging, name), f"new {name}")
    # Only what happens inside out/ (the writes into the staging directory are beside it).
    published = [step for step in steps if not step[1].startswith("..")]
    moves = [name for kind, name in published if kind == "rename"]
    # The old marker goes first, the old output next, the new marker last.
    assert published[:2] == [("remove", "dataset_info.json"), ("rmtree", ".")]
    assert moves[-1] == "dataset_info.json"
    assert sorted(moves) == [
        "dataset_info.json",
        "sub/a.bin",
        "val-00000-of-00001.tfrecord",
        "z.json",
    ]
    assert local_files(final) == {name: f"new {name}".encode() for name in moves}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging left behind


def test_object_store_publishing_refuses_an_existing_version(tmp_path, monkeypatch):
    monkeypatch.setattr(remote, "atomic_directory_rename", lambda path: False)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_text("old")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "saved_model.pb").write_text("new")
    with pytest.raises(tf.errors.AlreadyExistsError):
        fileio.publish_directory(
            str(tmp_path / "staging"), str(tmp_path / "1"), marker="saved_model.pb", replace=False
        )
    assert (tmp_path / "1" / "saved_model.pb").read_text() == "old"


def test_local_copy_of_a_local_path_is_the_path(tmp_path):
    with remote.local_copy(str(tmp_path / "x.h5")) as local:
        assert local == str(tmp_path / "x.h5")


def test_local_copy_streams_a_remote_file_in_chunks_and_removes_it():
    """ram:// (TensorFlow's in-memory filesystem) stands in for a remote store here."""
    data = np.random.default_rng(0).bytes(5 * 2**20 + 123)
    path = "ram://copies/visual_feature.h5"
    with tf.io.gfile.GFile(path, "wb") as handle:
        handle.write(data)
    with remote.local_copy(path, chunk_bytes=2**20) as local:
        assert local != path and remote.local_path(path) == local
        assert Path(local).read_bytes() == data
    assert not Path(local).exists() and remote.local_path(path) == path
    with pytest.raises(UserError, match=r"ram://copies/missing.h5: expected a file, found no such"):
        with remote.local_copy("ram://copies/missing.h5"):
            pass


# --------------------------------------------------------------------------------------------
# Commands against the endpoint.


def test_the_exit_abort_is_real_and_commands_avoid_it(s3):
    """Reproduce tensorflow-io's exit-time abort with plain TensorFlow, then the same work as a
    command: it ends with status 0."""
    env, client = s3
    client.create_bucket(Bucket="exit-status")
    script = (
        "import tensorflow as tf, tensorflow_io\n"
        "tf.io.gfile.GFile('s3://exit-status/x.txt', 'w').write('x')\n"
        "print('work done', flush=True)\n"
    )
    raw = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert "work done" in raw.stdout
    assert raw.returncode == -6 or raw.returncode == 134, (raw.returncode, raw.stderr[-500:])
    assert "pure virtual method called" in raw.stderr

    result = run_command(
        "avsdn_tf.synthesize", "--output_dir", "s3://exit-status/synth", *TINY, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "pure virtual method called" not in result.stderr
    written = objects(client, "exit-status", "synth")
    info = json.loads(written["dataset_info.json"])
    assert sorted(written) == sorted(
        ["dataset_info.json", "normalization.json"]
        + [name for split in info["splits"].values() for name in split["shards"]]
    )


def test_missing_bucket_and_unreachable_endpoint_are_one_line(s3):
    env, _ = s3
    result = run_command(
        "avsdn_tf.synthesize", "--output_dir", "s3://no-such-bucket/synth", *TINY, env=env
    )
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(
        "error: --output_dir s3://no-such-bucket/synth: expected an existing S3 "
        "bucket 'no-such-bucket' at http://127.0.0.1:"
    )
    assert "no such bucket" in line

    closed = f"http://127.0.0.1:{free_ports()[0]}"
    result = run_command(
        "avsdn_tf.train",
        "--data_dir",
        "s3://any/data",
        "--model_dir",
        "s3://any/run",
        env={**env, "S3_ENDPOINT": closed},
    )
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(
        "error: --data_dir s3://any/data: expected an S3 endpoint accepting "
        f"connections at {closed} (S3_ENDPOINT), found ConnectionRefusedError"
    )


def test_prepare_reads_the_release_from_s3(s3, tmp_path):
    """prepare --ave_dir s3://... --output_dir s3://...: the same records as a local run."""
    from ave_testlib import write_ave_dir

    env, client = s3
    client.create_bucket(Bucket="release")
    written = write_ave_dir(tmp_path / "ave", layout="map", noisy=True)
    for path in (tmp_path / "ave").iterdir():
        client.upload_file(str(path), "release", f"AVE/{path.name}")
    ave_release.prepare(str(tmp_path / "ave"), str(tmp_path / "local"), verbose=0)
    # Two rows of the h5 files per read: many chunks even on this small release.
    result = run_command(
        "avsdn_tf.prepare",
        "--ave_dir",
        "s3://release/AVE",
        "--output_dir",
        "s3://release/out",
        "--chunk_videos",
        "2",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    remote_files, local = objects(client, "release", "out"), local_files(tmp_path / "local")
    assert sorted(remote_files) == sorted(local)
    for name in local:
        if name.endswith(".tfrecord") or name in ("normalization.json", "label_disagreements.json"):
            assert remote_files[name] == local[name], name
    # Same sources and MD5s (of the bytes read, through the local copies), same dims and counts.
    assert json.loads(remote_files["dataset_info.json"]) == json.loads(local["dataset_info.json"])
    assert (
        json.loads(remote_files["prepare_summary.json"])["videos"]
        == json.loads(local["prepare_summary.json"])["videos"]
    )
    assert written["audio"].shape[0] == sum(
        json.loads(local["prepare_summary.json"])["videos"][s] for s in ("train", "val", "test")
    )

    # A corrupt value in a remote file is named by its s3:// path, not by the local copy.
    bad = tmp_path / "bad.h5"
    import h5py

    visual = written["visual"].copy()
    visual[4, 1, 0, 0, 0] = np.inf
    with h5py.File(bad, "w") as handle:
        handle.create_dataset("avadataset", data=visual)
    client.upload_file(str(bad), "release", "AVE/visual_feature.h5")
    result = run_command(
        "avsdn_tf.prepare",
        "--ave_dir",
        "s3://release/AVE",
        "--output_dir",
        "s3://release/out",
        env=env,
    )
    assert result.returncode == 2
    assert error_line(result).startswith(
        "error: s3://release/AVE/visual_feature.h5 row 4 (video uke) segment 1: expected finite"
    )
    # The earlier output is untouched.
    after = objects(client, "release", "out")
    assert after["dataset_info.json"] == remote_files["dataset_info.json"]


@pytest.mark.slow
def test_synthesize_train_evaluate_export_on_s3_equal_local(s3, tmp_path):
    """Every path on s3://: the same data, metrics, evaluation and exported model as on disk."""
    env, client = s3
    client.create_bucket(Bucket="avsdn")
    local, bucket = tmp_path / "local", "s3://avsdn"
    for base in (str(local), bucket):
        steps = [
            ("avsdn_tf.synthesize", "--output_dir", f"{base}/data", *TINY),
            (
                "avsdn_tf.train",
                "--data_dir",
                f"{base}/data",
                "--model_dir",
                f"{base}/run",
                "--epochs",
                "2",
                "--batch_size",
                "16",
            ),
            ("avsdn_tf.evaluate", "--model_dir", f"{base}/run", "--split", "test"),
            (
                "export.export_model",
                "--model_dir",
                f"{base}/run",
                "--output_dir",
                f"{base}/serving/avsdn",
                "--verify_videos",
                "4",
            ),
        ]
        for step in steps:
            result = run_command(*step, env=env)
            assert result.returncode == 0, (step, result.stderr[-3000:])

    on_s3 = {
        "data": objects(client, "avsdn", "data"),
        "run": objects(client, "avsdn", "run"),
        "serving": objects(client, "avsdn", "serving/avsdn"),
    }
    assert on_s3["data"] == local_files(local / "data")  # synthesize is byte-identical by seed
    metrics = {name: json.loads(on_s3["run"][name]) for name in ("metrics.json", "eval_test.json")}
    for name, value in metrics.items():
        expected = json.loads((local / "run" / name).read_text())
        for split in ("val", "test") if name == "metrics.json" else (None,):
            got, want = (value[split], expected[split]) if split else (value, expected)
            assert got["accuracy"] == want["accuracy"], (name, split)
            assert got["confusion_matrix"] == want["confusion_matrix"], (name, split)
    assert on_s3["run"]["eval_test.html"] == (local / "run" / "eval_test.html").read_bytes()
    local_history = json.loads((local / "run" / "metrics.json").read_text())["history"]
    assert [round(h["loss"], 5) for h in metrics["metrics.json"]["history"]] == [
        round(h["loss"], 5) for h in local_history
    ]

    # The export: version 1 on both, and the two SavedModels give the same outputs.
    assert {name.split("/")[0] for name in on_s3["serving"]} == {"1"}
    copy = tmp_path / "from_s3"
    for name, data in on_s3["serving"].items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_bytes(data)
    served = [
        tf.saved_model.load(str(path)).signatures["serving_default"]
        for path in (copy / "1", local / "serving" / "avsdn" / "1")
    ]
    rng = np.random.default_rng(0)
    audio = tf.constant(rng.normal(size=(3, 10, 16)), tf.float32)
    visual = tf.constant(rng.normal(size=(3, 10, 24)), tf.float32)
    outputs = [signature(audio=audio, visual=visual) for signature in served]
    assert sorted(outputs[0]) == sorted(outputs[1])
    for key in outputs[0]:
        got, want = outputs[0][key].numpy(), outputs[1][key].numpy()
        if got.dtype.kind in "OSU":  # predicted class names
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, atol=1e-6)


@pytest.mark.slow
def test_extract_and_predict_write_to_s3(s3, tmp_path, tmp_path_factory):
    """extract and predict with --output_dir s3://...: the same files as locally."""

    from media_testlib import (
        make_video,
        official_checkpoint,
        random_vgg19_weights,
        tiny_own_video_run,
    )

    pytest.importorskip("av")
    env, client = s3
    client.create_bucket(Bucket="own")
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "clip_a.mp4", seconds=3.5, tone_seconds=(1,), levels=(40, 200))
    make_video(videos / "clip_b.mp4", seconds=2.2, tone_seconds=(0,), levels=(120,))
    weights = random_vgg19_weights(tmp_path)
    features = [
        f"--vggish_checkpoint={official_checkpoint(tmp_path_factory)}",
        "--visual_backbone=vgg19",
        f"--visual_weights={weights}",
        "--frames_per_second=2",
        "--image_size=64",
        "--batch_size=8",
    ]
    for output in (str(tmp_path / "features"), "s3://own/features"):
        result = run_command(
            "avsdn_tf.extract", f"--videos={videos}", f"--output_dir={output}", *features, env=env
        )
        assert result.returncode == 0, result.stderr[-3000:]
    on_s3, local = objects(client, "own", "features"), local_files(tmp_path / "features")
    assert sorted(on_s3) == sorted(local)
    for name in local:
        if not name.endswith("summary.json"):  # the summary holds timings
            assert on_s3[name] == local[name], name

    run = tiny_own_video_run(tmp_path)
    for output in (str(tmp_path / "predictions"), "s3://own/predictions"):
        result = run_command(
            "avsdn_tf.predict",
            str(videos / "clip_a.mp4"),
            f"--model_dir={run}",
            f"--output_dir={output}",
            *features,
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    on_s3, local = objects(client, "own", "predictions"), local_files(tmp_path / "predictions")
    pages = ["clip_a.html", "clip_a.json", "clip_a.png", "index.html"]
    assert sorted(local) == pages
    # On S3 no relative path reaches the local input: the page plays a copy beside it.
    assert sorted(on_s3) == sorted([*pages, "clip_a.mp4"])
    assert on_s3["clip_a.mp4"] == (videos / "clip_a.mp4").read_bytes()
    assert b'<video controls preload="auto" src="clip_a.mp4">' in on_s3["clip_a.html"]
    assert b'<video controls preload="auto" src="../videos/clip_a.mp4">' in local["clip_a.html"]
    assert on_s3["index.html"] == local["index.html"]
    got, want = json.loads(on_s3["clip_a.json"]), json.loads(local["clip_a.json"])
    assert got["json"] == "s3://own/predictions/clip_a.json"
    for key in ("json", "png"):
        got.pop(key), want.pop(key)
    assert got == want
    assert on_s3["clip_a.png"][:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_hyperband_search_on_s3_equals_local(s3, tmp_path):
    """tuning.tune --output_dir s3://...: Hyperband's later round continues an earlier trial from a
    directory seeded on S3 (published with state.json last), and the search ends as locally."""
    env, client = s3
    client.create_bucket(Bucket="tune")
    data = str(tmp_path / "data")
    result = run_command("avsdn_tf.synthesize", "--output_dir", data, *TINY, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    for directory in (str(tmp_path / "search"), "s3://tune/search"):
        result = run_command(
            "tuning.tune",
            f"--data_dir={data}",
            "--tuner=hyperband",
            "--hyperband_factor=2",
            "--max_trials=3",
            "--epochs=2",
            "--seed=2",
            f"--output_dir={directory}",
            env=env,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "continuing trial" in result.stdout
    on_s3 = objects(client, "tune", "search")
    local = local_files(tmp_path / "search")
    # TensorBoard event files are named by time and process id: compare their directories.
    names = [
        sorted(os.path.dirname(n) if "/logs/" in n else n for n in files)
        for files in (on_s3, local)
    ]
    assert names[0] == names[1]
    assert "search/trial_2/run/checkpoints/last.keras" in on_s3  # the continued trial's

    def outcome(trials_json):
        trials = json.loads(trials_json)
        return trials["best_trial_id"], [
            {
                key: trial[key]
                for key in (
                    "trial_id",
                    "status",
                    "val_frame_accuracy",
                    "best_epoch",
                    "values",
                    "hyperband",
                )
            }
            for trial in trials["trials"]
        ]

    assert outcome(on_s3["trials.json"]) == outcome(local["trials.json"])
    best = [json.loads(files["best_hparams.json"]) for files in (on_s3, local)]
    assert best[0]["hparams"] == best[1]["hparams"]
