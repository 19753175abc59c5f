"""extract and predict end to end on real mp4 files made here with PyAV.

The networks are real-sized VGGish (a full V1 checkpoint written by the test, shared with
test_vggish.py) and VGG-19 with random weights saved by save_weights, run at 64 px and 2 frames
per second so the whole module stays fast on a CPU. The videos alternate two grey levels second
by second and play a tone only in second 1, so features of seconds 0 and 2 must agree with each
other and differ from second 1's: a segment that drew on the wrong second would show.
"""

import json
import os
import re
import shutil

import keras
import numpy as np
import pytest
from PIL import Image

from avsdn_tf import constants, dataset_info, extract, predict
from avsdn_tf.data import pipeline
from avsdn_tf.dataset_info import DataDir
from avsdn_tf.errors import UserError
from avsdn_tf.features import assembly, extraction, feature_extractor, feature_settings, labels
from avsdn_tf.inference import predictors
from avsdn_tf.models import backbones, serving
from avsdn_tf.runs import RunDir

from media_testlib import IMAGE_SIZE, extract_inputs, make_video, tiny_own_video_run
from media_testlib import feature_args as _feature_args
from media_testlib import records_by_id as _records
from testlib import event_runs, one_error_line, read_records, run_in_process

pytest.importorskip("av")

VISUAL_SHAPE = [2, 2, 512]  # VGG-19 pool5 at 64 px


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    clips = {
        "clip_a.mp4": dict(seconds=3.5, tone_seconds=(1,), levels=(40, 200)),
        "clip_b.mp4": dict(seconds=2.2, tone_seconds=(0,), levels=(120,)),
        "silent.mp4": dict(seconds=2.0, audio=False),
    }
    labels = "video_id,category,start,end,split\nclip_a,Bark,1,2,\nclip_b,,0,0,val\n"
    return extract_inputs(
        tmp_path_factory,
        "own_videos",
        clips,
        labels,
        # macOS leaves .DS_Store and ._<name> files (not videos, though ._clip_a.mp4 looks one)
        {"notes.txt": b"not a video", ".DS_Store": b"\0\0\0\1", "._clip_a.mp4": b"\0\5\26\7"},
    )


@pytest.fixture(scope="module")
def extracted(inputs):
    output = str(inputs["root"] / "out")
    assert (
        run_in_process(
            extract,
            f"--videos={inputs['videos']}",
            f"--output_dir={output}",
            *_feature_args(inputs),
        )[0]
        == 0
    )
    return output


def test_extract_writes_one_record_per_video_with_a_segment_per_whole_second(extracted):
    info = dataset_info.read(extracted)
    assert (
        info.audio_dim == 128 and info.visual_shape == VISUAL_SHAPE and info.visual_layout == "map"
    )
    assert info.num_segments is None  # 3 and 2 seconds
    assert info.splits["train"]["videos"] == 2
    videos = _records(extracted, "train")
    assert sorted(videos) == ["clip_a", "clip_b"]
    assert videos["clip_a"]["audio"].shape == (3, 128) and videos["clip_a"]["visual"].shape == (
        3,
        *VISUAL_SHAPE,
    )
    assert videos["clip_b"]["audio"].shape == (2, 128)
    for video in videos.values():  # no labels: placeholders
        assert (
            (video["label"] == 28).all() and video["category"] == -1 and video["video_label"] == 28
        )
    skipped = json.load(open(os.path.join(extracted, assembly.SKIPPED_FILE)))
    assert list(skipped["skipped"]) == [
        os.path.join(os.path.dirname(extracted), "videos", "silent.mp4")
    ]
    assert "expected an audio track, found none" in next(iter(skipped["skipped"].values()))
    folder = os.path.join(os.path.dirname(extracted), "videos")
    assert skipped["other_files"] == {
        os.path.join(folder, ".DS_Store"): labels.not_a_video_reason(".DS_Store"),
        os.path.join(folder, "._clip_a.mp4"): labels.not_a_video_reason("._clip_a.mp4"),
        os.path.join(folder, "notes.txt"): labels.not_a_video_reason("notes.txt"),
    }
    assert "hidden file" in skipped["other_files"][os.path.join(folder, ".DS_Store")]
    assert "extension .txt" in skipped["other_files"][os.path.join(folder, "notes.txt")]
    summary = json.load(open(os.path.join(extracted, assembly.SUMMARY_FILE)))
    assert summary["videos_extracted_now"] == 2 and summary["seconds_of_video_extracted_now"] == 5
    assert summary["other_files_skipped"] == 3 and "events_clipped" not in summary
    assert not os.path.exists(os.path.join(extracted, assembly.LABEL_WARNINGS_FILE))
    assert os.path.exists(os.path.join(extracted, "normalization.json"))


def test_each_segment_holds_its_own_second(extracted):
    clip = _records(extracted, "train")["clip_a"]
    audio, visual = clip["audio"], clip["visual"]
    # Seconds 0 and 2: dark picture, silence; second 1: bright picture, the tone.
    scale = np.abs(audio).max()
    assert np.abs(audio[0] - audio[2]).max() < 0.05 * scale < np.abs(audio[0] - audio[1]).max()
    scale = np.abs(visual).max()
    assert np.abs(visual[0] - visual[2]).max() < 0.05 * scale < np.abs(visual[0] - visual[1]).max()
    assert (audio >= 0).all()  # --vggish_output=relu, as the AVE release


def test_rerun_resumes_and_labels_fill_the_records(extracted, inputs, monkeypatch, capsys):
    def no_networks(*args, **kwargs):
        raise AssertionError("every video was done: no network should be loaded")

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", no_networks)
    assert (
        run_in_process(
            extract,
            f"--videos={inputs['videos']}",
            f"--output_dir={extracted}",
            f"--labels={inputs['labels']}",
            *_feature_args(inputs),
        )[0]
        == 0
    )
    summary = json.load(open(os.path.join(extracted, assembly.SUMMARY_FILE)))
    assert summary["videos_already_done"] == 2 and summary["videos_extracted_now"] == 0
    info = dataset_info.read(extracted)
    assert {name: value["videos"] for name, value in info.splits.items()} == {"train": 1, "val": 1}
    clip_a = _records(extracted, "train")["clip_a"]
    assert clip_a["label"].tolist() == [28, 2, 28] and clip_a["category"] == 2  # Bark, second 1
    assert (clip_a["event_start"], clip_a["event_end"], clip_a["video_label"]) == (1, 2, 2)
    clip_b = _records(extracted, "val")["clip_b"]
    assert clip_b["label"].tolist() == [28, 28] and clip_b["category"] == -1
    # The result reads like any data directory, videos of different lengths padded per batch.
    batch = next(iter(pipeline.make_dataset(DataDir.open(extracted), "train", batch_size=4)))
    assert batch["visual"].shape == (1, 3, *VISUAL_SHAPE) and batch["label"].numpy().tolist() == [
        [28, 2, 28]
    ]
    # Other settings into the same directory are refused.
    status, _, err = run_in_process(
        extract,
        f"--videos={inputs['videos']}",
        f"--output_dir={extracted}",
        *_feature_args(inputs, frames_per_second=4),
        capsys=capsys,
    )
    assert re.search(
        r"extract_config\.json: expected the feature settings.*frames_per_second",
        one_error_line(status, err),
    )


def test_unmatched_rows_and_clipped_events_are_reported(
    extracted, inputs, tmp_path, monkeypatch, capsys
):
    """clip_a is 3 s, clip_b 2 s (test_extract_writes_...): the Bark 1-9 s event is clipped to
    1-3 s, Banjo 5-8 s of clip_b keeps nothing, and two rows name no video."""

    def no_networks(*args, **kwargs):
        raise AssertionError("every video was done: no network should be loaded")

    monkeypatch.setattr(feature_extractor, "FeatureExtractor", no_networks)
    output = str(tmp_path / "out")
    shutil.copytree(extracted, output)
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "video_id,category,start,end\n"
        "clip_a,Bark,1,9\n"  # line 2
        "clip_x,Bark,0,2\n"  # line 3
        "clip_b,Banjo,5,8\n"  # line 4
        "clip_b,Bark,0,2\n"  # line 5: within its 2 s
        "silent,Cat,0,1\n"  # line 6: a video given (skipped: no audio), not unmatched
        "clip_y,,0,0\n"  # line 7
    )
    argv = [f"--videos={inputs['videos']}", f"--output_dir={output}", f"--labels={csv}"]
    status, out, err = run_in_process(extract, *argv, *_feature_args(inputs), capsys=capsys)
    assert status == 0, err
    (first,) = [line for line in out.splitlines() if line.startswith("extract:")]
    assert first.endswith(
        "; labels: 2 rows matching no video, 2 events clipped (see label_warnings.json)"
    )
    assert ", 3 other files in the folder skipped (see skipped.json)" in first
    warnings = json.load(open(os.path.join(output, assembly.LABEL_WARNINGS_FILE)))
    assert warnings["labels"] == [str(csv)]
    place = [(w["file"], w["line"], w["video_id"]) for w in warnings["rows_matching_no_video"]]
    assert place == [(str(csv), 3, "clip_x"), (str(csv), 7, "clip_y")]
    assert "no video named 'clip_x'" in warnings["rows_matching_no_video"][0]["what"]
    clipped = warnings["events_clipped"]
    assert [(w["line"], w["video_id"]) for w in clipped] == [(2, "clip_a"), (4, "clip_b")]
    assert clipped[0]["what"] == "the event Bark 1-9 s ends after the video's 3 s; clipped to 1-3 s"
    assert clipped[1]["what"].endswith("after the video's 2 s; no second of it is kept")
    summary = json.load(open(os.path.join(output, assembly.SUMMARY_FILE)))
    assert (summary["label_rows_matching_no_video"], summary["events_clipped"]) == (2, 2)
    # the records hold the clipped events, as reported
    assert _records(output, "train")["clip_a"]["label"].tolist() == [28, 2, 2]


def test_scan_videos_lists_every_file_of_the_folder_it_does_not_read(tmp_path):
    for name in ("b.mp4", "a.MKV", ".hidden.mp4", "notes", "list.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "more").mkdir()
    paths, other_files = labels.scan_videos(str(tmp_path))
    assert paths == [str(tmp_path / "a.MKV"), str(tmp_path / "b.mp4")]
    assert sorted(other_files) == sorted(
        str(tmp_path / name) for name in (".hidden.mp4", "notes", "list.txt", "more")
    )
    assert other_files[str(tmp_path / "notes")].startswith("not a video file: extension none")
    assert other_files[str(tmp_path / ".hidden.mp4")].startswith("a hidden file")
    assert other_files[str(tmp_path / "more")].startswith("a directory, not read")
    assert labels.scan_videos(str(tmp_path / "b.mp4")) == ([str(tmp_path / "b.mp4")], {})


def test_label_warnings_name_the_line_of_an_annotation_file(tmp_path):
    ave = tmp_path / "Annotations.txt"
    ave.write_text(
        "Category&VideoID&Quality&StartTime&EndTime\n\nBark&vid1&good&2&6\nBanjo&vid2&good&0&10\n"
    )
    rows = labels.read_labels(str(ave))
    warnings = labels.label_warnings(rows, ["/v/vid1.mp4"], {"vid1": 5})
    assert warnings == {
        "rows_matching_no_video": [
            {
                "file": str(ave),
                "line": 4,
                "video_id": "vid2",
                "what": "no video named 'vid2' among the 1 videos given; row ignored",
            }
        ],
        "events_clipped": [
            {
                "file": str(ave),
                "line": 3,
                "video_id": "vid1",
                "what": "the event Bark 2-6 s ends after the video's 5 s; clipped to 2-5 s",
            }
        ],
    }


def test_label_files_are_checked(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("video_id,category,start,end\nclip,Barking dog,0,3\n")
    with pytest.raises(
        UserError, match=r"bad\.csv line 2: expected a category name.*'Barking dog'"
    ):
        labels.read_labels(str(bad))
    ave = tmp_path / "Annotations.txt"
    ave.write_text(
        "Category&VideoID&Quality&StartTime&EndTime\nBark&vid1&good&2&6\nBanjo&vid1&good&0&10\n"
    )
    rows = labels.read_labels(str(ave))["vid1"]
    assert [(row.category, row.start, row.end) for row in rows] == [(2, 2, 6), (17, 0, 10)]
    assert labels.ground_truth(rows, 8).tolist() == [17] * 8


def _event_runs(labels, names):
    """Predict's intervals as its JSON holds them, from testlib.event_runs."""
    return [
        {"label": label, "class_name": names[label], "start": start, "end": end}
        for label, start, end in event_runs(labels)
    ]


def test_event_runs_of_hand_worked_labels():
    names = constants.class_names()
    assert _event_runs([28, 2, 2, 28, 2, 5, 5], names) == [
        {"label": 2, "class_name": "Bark", "start": 1, "end": 3},
        {"label": 2, "class_name": "Bark", "start": 4, "end": 5},
        {"label": 5, "class_name": names[5], "start": 5, "end": 7},
    ]
    assert _event_runs([28, 28], names) == []


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny AVSDN trained on synthetic maps of the backbone's shape (2x2x512) and 128-d audio."""
    return tiny_own_video_run(tmp_path_factory.mktemp("tiny_run"))


def test_predict_prints_writes_json_and_draws_the_timeline(
    inputs, extracted, run_dir, tmp_path, capsys
):
    clip = os.path.join(inputs["videos"], "clip_a.mp4")
    output = str(tmp_path / "predictions")
    assert (
        run_in_process(
            predict,
            clip,
            f"--model_dir={run_dir}",
            f"--output_dir={output}",
            f"--labels={inputs['labels']}",
            *_feature_args(inputs),
        )[0]
        == 0
    )
    printed = capsys.readouterr().out
    result = json.load(open(os.path.join(output, "clip_a.json")))
    assert (
        result["seconds"] == 3 and len(result["segments"]) == 3 and result["window_seconds"] == 10
    )
    probabilities = np.asarray(result["probabilities"])
    assert probabilities.shape == (3, 29)
    assert (probabilities >= 0).all() and (probabilities <= 1).all()
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-4)
    labels = probabilities.argmax(-1)
    names = constants.class_names()
    assert result["segments"] == [
        {
            "start": t,
            "end": t + 1,
            "label": int(labels[t]),
            "class_name": names[labels[t]],
            "probability": pytest.approx(probabilities[t, labels[t]], abs=1e-4),
            "background_probability": pytest.approx(probabilities[t, 28], abs=1e-4),
        }
        for t in range(3)
    ]
    assert result["intervals"] == _event_runs(labels, names)
    assert result["ground_truth"]["labels"] == [28, 2, 28]
    assert result["ground_truth"]["intervals"] == [
        {"label": 2, "class_name": "Bark", "start": 1, "end": 2}
    ]
    assert result["ground_truth"]["accuracy"] == pytest.approx((labels == [28, 2, 28]).mean())
    # The timeline: a PNG 8 inches (its least width) at 100 dpi wide, drawn on.
    with Image.open(os.path.join(output, "clip_a.png")) as png:
        assert png.format == "PNG"
        picture = np.asarray(png.convert("RGB"))
    assert picture.shape[1] == 800 and 200 < picture.shape[0] < 800
    not_white = (picture < 250).any(-1)
    assert 0.05 < not_white.mean() < 0.95
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 20  # frames, colours, text
    # The page plays the input by its path relative to the page; index.html links the page.
    page = open(os.path.join(output, "clip_a.html")).read()
    source = os.path.relpath(clip, output)
    assert f'<video controls preload="auto" src="{source}">' in page
    assert os.path.exists(os.path.join(output, source))
    assert page.count('data-row="prediction"') == page.count('data-row="truth"') == 1
    index = open(os.path.join(output, "index.html")).read()
    assert '<a href="clip_a.html">clip_a</a>' in index
    assert f"pages: {os.path.join(output, 'index.html')}" in printed
    assert (
        "clip_a.mp4: 3 s" in printed
        and "events:" in printed
        and "ground truth events: Bark 1-2 s" in printed
    )
    # The same features as extract's, through the same model: the same probabilities.
    features = _records(extracted, "train")["clip_a"]
    predictor = predictors.RunPredictor(run_dir)
    np.testing.assert_allclose(
        predictor(features["audio"], features["visual"]), probabilities, atol=2e-4
    )


@pytest.mark.slow  # extracts a 12-s video and predicts it twice (~20 s)
def test_predict_on_a_video_longer_than_ten_seconds_judges_it_in_windows(
    inputs, run_dir, tmp_path, capsys
):
    """The README's windows: a 12-s video with a model trained on 10-s clips is judged in
    windows (0, 10) and (2, 12), the last one's outputs kept where they overlap;
    --window_seconds 4 gives (0, 4), (4, 8), (8, 12); 0 is the training length."""
    videos = tmp_path / "videos"
    videos.mkdir()
    make_video(videos / "long.mp4", seconds=12.4, tone_seconds=(1, 6, 11), levels=(40, 120, 200))
    features_dir = tmp_path / "features"
    status, _, err = run_in_process(
        extract,
        f"--videos={videos}",
        f"--output_dir={features_dir}",
        *_feature_args(inputs),
        capsys=capsys,
    )
    assert status == 0, err
    (long_video,) = read_records(features_dir, "train")
    audio, visual = long_video["audio"], long_video["visual"]
    assert len(audio) == 12
    # Expected: the trained Keras file itself on each 10-s window, the last window written last.
    trained = keras.models.load_model(RunDir(run_dir).best_checkpoint, compile=False)
    segments = backbones.segment_model(trained)
    expected = np.zeros((12, 29), np.float32)
    for start, end in [(0, 10), (2, 12)]:
        window = {"audio": audio[None, start:end], "visual": visual[None, start:end]}
        expected[start:end] = np.asarray(segments(window, training=False))[0]
    variable = predictors.RunPredictor(run_dir)  # any length: the 4-s windows
    four = np.concatenate(
        [variable(audio[start : start + 4], visual[start : start + 4]) for start in (0, 4, 8)]
    )
    # The default (--window_seconds 0, README: the training length) and 4-s windows.
    for window_flag, window, want in [([], 10, expected), (["--window_seconds=4"], 4, four)]:
        output = tmp_path / f"predictions{window}{len(window_flag)}"
        status, printed, err = run_in_process(
            predict,
            str(videos / "long.mp4"),
            f"--model_dir={run_dir}",
            f"--output_dir={output}",
            *window_flag,
            *_feature_args(inputs),
            capsys=capsys,
        )
        assert status == 0, err
        result = json.load(open(output / "long.json"))
        assert result["seconds"] == 12 and result["window_seconds"] == window
        np.testing.assert_allclose(result["probabilities"], want, atol=2e-4)
        assert [segment["label"] for segment in result["segments"]] == want.argmax(-1).tolist()
        assert "long.mp4: 12 s" in printed


def test_predict_on_an_exported_saved_model(inputs, extracted, run_dir, tmp_path):
    """--model: the export's serving graph (avsdn_tf/models/serving.py) written as a SavedModel."""
    predictor = predictors.RunPredictor(run_dir)
    spec = serving.FeatureSpec.of(128, VISUAL_SHAPE, predictor.class_names)
    path = str(tmp_path / "avsdn" / "1")
    serving.ServingGraph(predictor.model, spec).write(path)
    saved = predictors.load_predictor(saved_model=path)
    assert (
        saved.output_key == "segment_probs"
        and saved.audio_dim == 128
        and saved.visual_shape == VISUAL_SHAPE
    )
    features = _records(extracted, "train")["clip_a"]
    np.testing.assert_allclose(
        predictors.predict_probabilities(saved, features["audio"], features["visual"]),
        predictor(features["audio"], features["visual"]),
        atol=1e-5,
    )
    with pytest.raises(UserError, match="expected exactly one"):
        predictors.load_predictor(saved_model=path, model_dir=run_dir)
    with pytest.raises(UserError, match="no saved_model.pb"):
        predictors.load_predictor(saved_model=str(tmp_path))


def test_predict_windows_and_unusable_videos(inputs, run_dir, tmp_path, capsys):
    assert predictors.windows(25, 10) == [(0, 10), (10, 20), (15, 25)]
    assert predictors.windows(20, 10) == [(0, 10), (10, 20)]
    assert predictors.windows(7, 10) == [(0, 7)] and predictors.windows(7, None) == [(0, 7)]
    silent = os.path.join(inputs["videos"], "silent.mp4")
    status, _, err = run_in_process(
        predict,
        silent,
        f"--model_dir={run_dir}",
        f"--output_dir={tmp_path}",
        *_feature_args(inputs),
        capsys=capsys,
    )
    assert "silent.mp4" in one_error_line(status, err)


def test_extract_with_the_ave_release_preset(inputs, extracted, tmp_path):
    """--preset ave_release, with smaller frames and fewer of them given on the command line.

    25 fps: clip_a has 75 frames in its 3 s, interval 25, so second l takes frames 25 l and
    25 l + 12: seconds 0 and 2 see the same picture (same grey level, same square positions)."""
    output = str(tmp_path / "ave")
    args = _feature_args(inputs)
    assert (
        run_in_process(
            extract,
            f"--videos={inputs['videos']}",
            f"--output_dir={output}",
            "--preset=ave_release",
            *args,
        )[0]
        == 0
    )
    config = json.load(open(os.path.join(output, assembly.CONFIG_FILE)))
    assert config["frame_sampling"] == "ave" and config["audio_framing"] == "vggish"
    assert config["frames_per_second"] == 2 and config["image_size"] == IMAGE_SIZE  # given: kept
    visual = _records(output, "train")["clip_a"]["visual"]
    np.testing.assert_allclose(visual[0], visual[2], rtol=1e-5, atol=1e-5)
    assert np.abs(visual[0] - visual[1]).max() > 0.05 * np.abs(visual).max()
    # Other frames than the centre sampling's (1/4 and 3/4 of each second).
    assert np.abs(visual - _records(extracted, "train")["clip_a"]["visual"]).max() > 1e-3


def test_extract_vector_layout_is_the_spatial_mean_of_the_maps(inputs, extracted, tmp_path):
    """--visual_layout vector: [T, 512] per video, the mean over the 2x2 cells of the maps."""
    output = str(tmp_path / "vectors")
    assert (
        run_in_process(
            extract,
            f"--videos={inputs['videos']}",
            f"--output_dir={output}",
            "--visual_layout=vector",
            *_feature_args(inputs),
        )[0]
        == 0
    )
    info = dataset_info.read(output)
    assert info.visual_shape == [512] and info.visual_layout == "vector"
    vectors = _records(output, "train")
    assert sorted(vectors) == ["clip_a", "clip_b"]
    for key, record in vectors.items():  # the map run's per-video features (its labels may differ)
        with np.load(
            os.path.join(extracted, assembly.FEATURES_DIR, f"{key}.npz"), allow_pickle=False
        ) as maps:
            assert maps["visual"].shape[1:] == tuple(VISUAL_SHAPE)
            assert record["visual"].shape == (len(maps["audio"]), 512)
            np.testing.assert_allclose(
                record["visual"], maps["visual"].mean(axis=(1, 2)), rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(record["audio"], maps["audio"], atol=1e-6)
    assert json.load(open(os.path.join(output, assembly.CONFIG_FILE)))["visual_layout"] == "vector"
    with pytest.raises(
        UserError, match=r"visual_layout: expected vector for --visual_backbone=resnet152"
    ):
        feature_settings.FeatureSettings(
            vggish_checkpoint="x", visual_backbone="resnet152", visual_layout="map"
        ).check()


@pytest.mark.slow  # trains a run of its own (~30 s)
def test_predict_pools_the_maps_for_a_model_trained_on_vectors(inputs, extracted, tmp_path, capsys):
    """A run trained on 512-d visual vectors, predicting with VGG-19 (2x2x512 maps): predict
    averages the maps over space instead of stopping at the dims mismatch."""
    run = tiny_own_video_run(tmp_path / "vector", visual_layout="vector", seed=1)
    clip = os.path.join(inputs["videos"], "clip_a.mp4")
    output = str(tmp_path / "predictions")
    capsys.readouterr()
    assert (
        run_in_process(
            predict, clip, f"--model_dir={run}", f"--output_dir={output}", *_feature_args(inputs)
        )[0]
        == 0
    )
    assert "the model takes visual vectors [512]" in capsys.readouterr().out
    result = json.load(open(os.path.join(output, "clip_a.json")))
    assert result["features"]["visual_layout"] == "vector" and result["features"][
        "visual_shape"
    ] == [512]
    maps = _records(extracted, "train")["clip_a"]
    expected = predictors.RunPredictor(run)(maps["audio"], maps["visual"].mean(axis=(1, 2)))
    np.testing.assert_allclose(result["probabilities"], expected, atol=2e-4)
    # --visual_layout given on the command line is kept: the mismatch is reported as before.
    status, _, err = run_in_process(
        predict,
        clip,
        f"--model_dir={run}",
        f"--output_dir={output}",
        "--visual_layout=map",
        *_feature_args(inputs),
        capsys=capsys,
    )
    assert re.search(r"visual_shape': \[512\].*--visual_layout", one_error_line(status, err))


def test_extract_never_overwrites_a_data_set_it_did_not_write(tmp_path):
    (tmp_path / "dataset_info.json").write_text("{}")
    settings = feature_settings.FeatureSettings(vggish_checkpoint="vggish_model.ckpt")
    with pytest.raises(UserError, match="a data set written by another command"):
        extraction.extract_videos(["clip.mp4"], str(tmp_path), settings)
    assert sorted(os.listdir(tmp_path)) == ["dataset_info.json"]


def test_predict_reports_the_annotated_events_its_videos_clip(tmp_path, capsys):
    csv = tmp_path / "labels.csv"
    csv.write_text(
        "video_id,category,start,end\n"
        "clip_a,Bark,1,9\n"  # line 2: ends after clip_a's 3 s
        "clip_a,Banjo,0,2\n"  # line 3: within it
        "elsewhere,Cat,0,10\n"  # line 4: a video not predicted: not reported by predict
    )
    predict._report_clipped_events(
        str(tmp_path), labels.read_labels(str(csv)), ["v/clip_a.mp4"], {"clip_a": 3}
    )
    path = tmp_path / assembly.LABEL_WARNINGS_FILE
    assert capsys.readouterr().out.splitlines() == [
        "predict: labels: 1 event ending after the video clipped to it in the ground truth"
        f" (see {path})"
    ]
    written = json.loads(path.read_text())
    assert written["labels"] == [str(csv)]
    assert [(w["line"], w["video_id"]) for w in written["events_clipped"]] == [(2, "clip_a")]
    assert written["events_clipped"][0]["what"].endswith("clipped to 1-3 s")
    (tmp_path / "quiet").mkdir()
    predict._report_clipped_events(  # nothing clipped: nothing printed or written
        str(tmp_path / "quiet"), labels.read_labels(str(csv)), ["v/clip_a.mp4"], {"clip_a": 10}
    )
    assert capsys.readouterr().out == "" and os.listdir(tmp_path / "quiet") == []
