"""The paper's tables with one command: every row of every table, results files, resumption, errors;
the cross_modal table (AVEL's A2V / V2A localization, trained for real on a tiny release).

Most tests replace the fit (trainer.train) by a stand-in that writes a finished run directory the
way training does, so all 15 rows x 2 seeds run in a second; the command tests train for real on a
tiny data set and check that a rerun trains nothing.
"""

import json
import os
from pathlib import Path

import pytest
from absl import flags

from avsdn_tf import cli, dataset_info, fileio, hparams
from avsdn_tf.data import ave_release, synthetic
from avsdn_tf.errors import UserError
from avsdn_tf.models import registry
from avsdn_tf.paper import rows as paper_rows
from avsdn_tf.paper import runner
from avsdn_tf.runs import RunDir
from avsdn_tf.training import evaluation, trainer

from ave_testlib import write_ave_dir, write_match_files
from testlib import SMALL_UNITS, run_command

SMALL = dict(SMALL_UNITS, batch_size=16)
ROWS = {
    "supervised": ["audio", "visual", "av", "av_att", "avsdn", "dmrn"],
    "weak": ["audio", "visual", "av", "av_att", "avsdn"],
    "ablation": ["avsdn_init_visual", "avsdn_init_audio", "avsdn_label_guided", "avsdn"],
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("experiments") / "data")
    synthetic.write_dataset(
        path,
        synthetic.SyntheticConfig(
            videos_per_split={"train": 32, "val": 16, "test": 16, "noisy": 8},
            audio_dim=16,
            visual_dim=24,
        ),
        verbose=False,
    )
    return path


def _accuracy(hp, split):
    """A made-up accuracy that differs by model, supervision, seed and split."""
    return round(
        0.2
        + 0.05 * registry.names(tunable=True).index(hp.model)
        + 0.1 * (hp.supervision == "weak")
        + 0.02 * hp.seed
        + 0.001 * (split == "test"),
        6,
    )


@pytest.fixture
def fake_fit(monkeypatch):
    """Replace trainer.train by a stand-in that writes what a finished run leaves; records calls."""
    calls = []

    def train(data, model_dir, hp, strategy_name="auto", max_videos=None, verbose=1, log=None):
        calls.append(model_dir)
        run = RunDir(model_dir)
        os.makedirs(model_dir, exist_ok=True)
        fileio.write_json(
            run.config, {"hparams": hp.to_dict(), "data_dir": data.path, "max_videos": max_videos}
        )
        result = {
            "model": hp.model,
            "supervision": hp.supervision,
            "best_epoch": 1,
            "epochs_done": hp.epochs,
            "history": [],
            "val": {"accuracy": _accuracy(hp, "val")},
            "test": {"accuracy": _accuracy(hp, "test")},
        }
        fileio.write_json(run.metrics, result)
        fileio.write_json(run.state, {"epochs_done": hp.epochs, "best_epoch": 1, "finished": True})
        return result

    monkeypatch.setattr(trainer, "train", train)
    return calls


def _run(tiny_data, output_dir, lines=None, **kwargs):
    options = dict(table="all", seeds=2, base=hparams.HParams(**SMALL, epochs=1))
    options.update(kwargs)
    return runner.run(
        tiny_data, str(output_dir), log=(lines if lines is not None else []).append, **options
    )


def test_tables_name_registered_models_and_hold_only_checked_paper_numbers():
    assert {t: [r.model for r in table.rows] for t, table in paper_rows.TABLES.items()} == ROWS
    for table in paper_rows.TABLES.values():
        for row in table.rows:
            assert row.model in registry.names(tunable=True)
            for number in row.reported:
                assert 0 < number.accuracy < 100 and "1902.07473" in number.source
    reported = {
        (t, r.model): [n.accuracy for n in r.reported]
        for t, table in paper_rows.TABLES.items()
        for r in table.rows
    }
    assert reported[("supervised", "avsdn")] == [75.4]
    assert reported[("supervised", "av_att")] == [72.7, 74.7]
    # Every row of the paper's three tables has its number, both feature columns where it has two.
    assert reported[("weak", "visual")] == [52.9, 63.4]
    assert reported[("weak", "av_att")] == [66.7, 73.3]
    assert reported[("weak", "avsdn")] == [74.2] and reported[("ablation", "avsdn")] == [74.2]
    assert [reported[("ablation", m)] for m in ROWS["ablation"]] == [[70.2], [70.9], [72.6], [74.2]]
    assert all(
        reported[(t, r.model)]
        for t, table in paper_rows.TABLES.items()
        for r in table.rows
        if not r.extra
    )
    assert reported[("supervised", "dmrn")] == []  # the extra row: not in the paper
    notes = {r.model: r.paper_json()[0].get("note") for r in paper_rows.TABLES["ablation"].rows}
    assert set(notes.values()) == {"paper: supervision not stated, most likely weak"}


def test_every_table_writes_every_row_with_its_config_seed_val_and_test(
    tiny_data, tmp_path, fake_fit
):
    out = tmp_path / "exp"
    lines = []
    summary = _run(tiny_data, out, lines)
    written = json.loads((out / "results.json").read_text())
    assert written == json.loads(json.dumps(summary))
    assert written["complete"] and written["tables"] == ["supervised", "weak", "ablation"]
    assert written["seeds"] == [0, 1]

    runs = written["runs"]
    assert [(r["table"], r["row"], r["seed"]) for r in runs] == [
        (t, m, s) for t, rows in ROWS.items() for m in rows for s in (0, 1)
    ]
    for record in runs:
        supervision = "weak" if record["table"] == "weak" else "full"
        expected = hparams.HParams(
            **SMALL, epochs=1, model=record["row"], supervision=supervision, seed=record["seed"]
        )
        assert (
            record["hparams"] == expected.to_dict()
        )  # the full config of each run, seed k -> seed=k
        assert record["supervision"] == supervision and record["model"] == record["row"]
        assert record["val_accuracy"] == _accuracy(expected, "val")
        assert record["test_accuracy"] == _accuracy(expected, "test")
        assert Path(record["run_dir"], "metrics.json").exists()
    # The ablation's full-fusion row is the supervised AVSDN row: its runs are shared, not repeated.
    assert len(fake_fit) == len(runs) - 2
    shared = [r for r in runs if r["shared_run"]]
    assert [(r["table"], r["row"]) for r in shared] == [("ablation", "avsdn")] * 2
    assert all(
        r["run_dir"] == str(out / "runs" / "supervised" / "avsdn" / f"seed{r['seed']}")
        for r in shared
    )
    own = [r for r in runs if not r["shared_run"]]
    assert all(
        r["run_dir"] == str(out / "runs" / r["table"] / r["row"] / f"seed{r['seed']}") for r in own
    )

    rows = {(r["table"], r["row"]): r for r in written["rows"]}
    assert list(rows) == [(t, m) for t, models_ in ROWS.items() for m in models_]
    avsdn = rows[("supervised", "avsdn")]
    values = [r["test_accuracy"] for r in runs if (r["table"], r["row"]) == ("supervised", "avsdn")]
    assert avsdn["test_accuracy"]["values"] == values
    assert avsdn["test_accuracy"]["mean"] == pytest.approx(sum(values) / 2)
    assert avsdn["test_accuracy"]["std"] == pytest.approx(
        abs(values[0] - values[1]) / 2**0.5
    )  # sample std
    assert avsdn["paper"] == [
        {
            "accuracy": 75.4,
            "features": "VGGish audio, ResNet-152 visual",
            "source": paper_rows.SUPERVISED_SOURCE,
            "verified": True,
        }
    ]
    assert rows[("weak", "avsdn")]["paper"] == [
        {
            "accuracy": 74.2,
            "features": paper_rows.RESNET,
            "source": paper_rows.WEAK_SOURCE,
            "verified": True,
        }
    ]
    assert rows[("ablation", "avsdn_init_audio")]["paper"][0]["note"] == paper_rows.ABLATION_NOTE
    assert rows[("supervised", "dmrn")]["paper"][0]["accuracy"] is None
    assert rows[("supervised", "dmrn")]["paper"][0] == {  # the reference says it has none
        "accuracy": None,
        "verified": True,
        "reported": False,
        "note": paper_rows.DMRN_ABSENT,
    }
    assert (
        rows[("supervised", "dmrn")]["extra"]
        and "extra row" in rows[("supervised", "dmrn")]["remarks"]
    )
    assert (
        "no regions to attend" in rows[("supervised", "av_att")]["remarks"]
    )  # tiny data has no visual maps

    markdown = (out / "results.md").read_text()
    for table in paper_rows.TABLES.values():
        assert f"## {table.title}" in markdown
    assert markdown.count(paper_rows.PAPER_COLUMN) == 3
    assert "| AVSDN | 21.1 ± 1.4 | 21.0 ± 1.4 | audio+visual, seq2seq | 75.4 |" in markdown
    assert (
        "full fusion of both encoder states (DMRN-style) (same runs as supervised/avsdn) | "
        "74.2 (paper: supervision not stated, most likely weak) |" in markdown
    )
    assert "72.7 (VGG-16 visual) / 74.7 (ResNet-152 visual)" in markdown
    assert "n/a (not verified)" not in markdown and "NOT measured here" in markdown
    assert "| not reported in the AVSDN paper |" in markdown  # the DMRN row
    printed = "\n".join(lines)
    assert "28 runs trained, 2 reused" in printed and paper_rows.PAPER_COLUMN in printed


def test_rerun_trains_nothing_and_an_interrupted_run_is_picked_up(tiny_data, tmp_path, fake_fit):
    out = tmp_path / "exp"
    _run(tiny_data, out, table="weak")
    assert len(fake_fit) == 10
    fake_fit.clear()
    lines = []
    again = _run(tiny_data, out, lines, table="weak")
    assert fake_fit == [] and again["complete"]
    assert sum("reused the finished run" in line for line in lines) == 10
    first = hparams.HParams(**SMALL, epochs=1, model="audio", supervision="weak", seed=0)
    assert lines[0].endswith(
        f"(not retrained): val {_accuracy(first, 'val'):.4f}, test {_accuracy(first, 'test'):.4f}"
    )
    assert not any(r["trained_now"] for r in again["runs"])

    # Interrupted mid-run: the state has no "finished" and there is no metrics.json yet.
    interrupted = out / "runs" / "weak" / "av" / "seed1"
    (interrupted / "metrics.json").unlink()
    fileio.write_json(str(interrupted / "state.json"), {"epochs_done": 0})
    resumed = _run(tiny_data, out, table="weak")
    assert fake_fit == [str(interrupted)]
    assert [r["trained_now"] for r in resumed["runs"]].count(True) == 1


def test_changed_settings_on_an_existing_experiment_are_one_clear_error(
    tiny_data, tmp_path, fake_fit
):
    out = tmp_path / "exp"
    _run(tiny_data, out, table="ablation", seeds=1)
    fake_fit.clear()
    with pytest.raises(
        UserError, match=r"seed0/config.json field hparams.epochs: expected 3, .* found 1"
    ) as error:
        _run(tiny_data, out, table="ablation", seeds=1, base=hparams.HParams(**SMALL, epochs=3))
    assert "`output_dir`" in str(error.value) and fake_fit == []
    with pytest.raises(UserError, match="field max_videos: expected 8"):
        _run(tiny_data, out, table="ablation", seeds=1, max_videos=8)


def test_bad_table_rows_and_seeds_are_named():
    with pytest.raises(
        UserError,
        match=r"table: expected one of \['supervised', 'weak', 'ablation', 'cross_modal', "
        r"'field_full', 'field_weak', 'all', 'field'\], found 'table1'",
    ):
        paper_rows.select("table1")
    with pytest.raises(
        UserError, match=r"rows: expected row names of `table` ablation .* found \['av'\]"
    ):
        paper_rows.select("ablation", rows=["av"])
    with pytest.raises(UserError, match="expected at least one row"):
        paper_rows.select("supervised", rows=["dmrn"], extras=False)
    with pytest.raises(UserError, match="seeds: expected a positive number of seeds, found 0"):
        runner.plan(paper_rows.select("weak"), 0, hparams.HParams(), "out")


def test_the_label_guided_ablation_is_scored_on_its_segment_output(tiny_data):
    """Its training model has two extra video-label heads; evaluation must use segment_probs
    alone."""
    info = dataset_info.read(tiny_data)
    hp = hparams.HParams(**SMALL, model="avsdn_label_guided")
    model = registry.task_for(hp).build(info.audio_dim, info.visual_shape, info.num_segments)
    assert len(model.outputs) == 3
    ids, labels, predictions, probs = evaluation.predict_split(model, tiny_data, "test")
    assert (
        len(ids) == 16
        and labels.shape == predictions.shape == (16, 10)
        and probs.shape == (16, 10, 29)
    )


def _command(*args):
    return run_command("avsdn_tf.experiments", *args)


@pytest.mark.slow  # trains every row for real (~60 s)
def test_command_trains_for_real_then_a_rerun_trains_nothing(tiny_data, tmp_path):
    hparams_file = tmp_path / "small.json"
    hparams_file.write_text(json.dumps(SMALL))
    out = tmp_path / "exp"
    args = [
        "--data_dir",
        tiny_data,
        "--table",
        "all",
        "--rows",
        "avsdn",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--hparams_file",
        str(hparams_file),
        "--output_dir",
        str(out),
        "--intra_op_threads",
        "1",
        "--inter_op_threads",
        "2",
    ]
    first = _command(*args)
    assert first.returncode == 0, first.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] and results["tables"] == ["supervised", "weak", "ablation"]
    assert [(r["table"], r["supervision"], r["trained_now"]) for r in results["runs"]] == [
        ("supervised", "full", True),
        ("weak", "weak", True),
        ("ablation", "full", False),
    ]
    for record in results["runs"]:
        assert 0.0 <= record["val_accuracy"] <= 1.0 and 0.0 <= record["test_accuracy"] <= 1.0
        assert record["hparams"]["encoder_units"] == 16 and record["hparams"]["seed"] == 0
        metrics = json.loads(Path(record["run_dir"], "metrics.json").read_text())
        assert metrics["test"]["accuracy"] == record["test_accuracy"]
        assert metrics["val"]["accuracy"] == record["val_accuracy"]  # selected on val
    assert "2 runs trained, 1 reused" in first.stdout
    assert "Paper, real AVE features" in first.stdout and "75.4" in first.stdout

    before = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").rglob("*") if p.is_file()
    }
    second = _command(*args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 runs trained, 3 reused" in second.stdout and "epoch 1/1" not in second.stdout
    after = {
        p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "runs").rglob("*") if p.is_file()
    }
    assert after == before  # no checkpoint, state or metrics file was touched
    assert json.loads((out / "results.json").read_text())["rows"] == results["rows"]


@pytest.mark.slow  # every row of Tables 1-3 trained for one epoch: about a minute
def test_command_training_every_row_logs_no_retracing_of_the_projects_functions(
    tiny_data, tmp_path
):
    """14 models in one process: each one's inference function is traced once, and no trace of
    one counts as a retrace of another's (TensorFlow warned for InferenceFunction's shared
    lambda). Keras's own train function, one per model, shares one code object across models in
    the same way; its warning is Keras's, not the project's."""
    hparams_file = tmp_path / "small.json"
    hparams_file.write_text(json.dumps({**SMALL, "unroll": False}))
    args = ["--data_dir", tiny_data, "--table", "all", "--seeds", "1", "--epochs", "1"]
    args += ["--hparams_file", hparams_file, "--output_dir", tmp_path / "exp"]
    done = _command(*args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "14 runs trained, 1 reused" in done.stdout  # the ablation reuses supervised avsdn
    retraced = [line for line in done.stderr.splitlines() if "retracing" in line]
    assert [line for line in retraced if "TensorFlowTrainer._make_function" not in line] == []


def test_command_unknown_table_is_one_clear_error(tmp_path):
    result = _command("--table", "table1", "--output_dir", str(tmp_path / "exp"))
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()[-1]
        == "error: --table: expected one of ['supervised', 'weak', 'ablation', 'cross_modal',"
        " 'field_full', 'field_weak', 'all', 'field'], found 'table1'"
    )
    assert "Traceback" not in result.stderr and not (tmp_path / "exp").exists()


@pytest.fixture(scope="module")
def match_data(tmp_path_factory):
    """A tiny prepared AVE release with 512-d visual vectors and the three match splits."""
    directory = tmp_path_factory.mktemp("match")
    write_ave_dir(directory / "ave", layout="vector", noisy=False, vector_shape=(512,))
    write_match_files(directory / "ave")
    ave_release.prepare(str(directory / "ave"), str(directory / "data"), verbose=0)
    return str(directory / "data")


CROSS_MODAL_FIELDS = [
    "val_a2v_accuracy",
    "test_a2v_accuracy",
    "val_v2a_accuracy",
    "test_v2a_accuracy",
]


def _pct(values):
    """The table cell of a list of two seeds' scores: mean ± sample std in percent."""
    mean = sum(values) / len(values)
    std = abs(values[0] - values[1]) / 2**0.5
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def test_cross_modal_table_trains_avdln_per_seed_and_reports_a2v_and_v2a(
    match_data, tmp_path, monkeypatch
):
    out = tmp_path / "exp"
    base = registry.default_hparams("avdln").replace(batch_size=2, epochs=2)
    lines = []
    summary = runner.run(
        match_data, str(out), table="cross_modal", seeds=2, base=base, log=lines.append
    )
    written = json.loads((out / "results.json").read_text())
    assert written == json.loads(json.dumps(summary)) and written["complete"]
    assert written["tables"] == ["cross_modal"] and "A2V and V2A" in written["description"]

    runs = written["runs"]
    assert [(r["table"], r["row"], r["seed"], r["trained_now"]) for r in runs] == [
        ("cross_modal", "avdln", 0, True),
        ("cross_modal", "avdln", 1, True),
    ]
    metrics = []
    for record in runs:
        assert record["run_dir"] == str(
            out / "runs" / "cross_modal" / "avdln" / f"seed{record['seed']}"
        )
        assert record["hparams"] == base.replace(seed=record["seed"]).to_dict()
        assert record["supervision"] == "full" and "val_accuracy" not in record
        result = json.loads(Path(record["run_dir"], "metrics.json").read_text())
        metrics.append(result)
        for field in CROSS_MODAL_FIELDS:
            split, metric = field.split("_", 1)
            assert record[field] == result[split][metric]  # metrics.json's val and test entries

    (row,) = written["rows"]
    assert row["method"] == "AVEL AVDLN" and row["seeds_done"] == [0, 1]
    assert "val_accuracy" not in row and "test_accuracy" not in row
    for field in CROSS_MODAL_FIELDS:
        split, metric = field.split("_", 1)
        values = [result[split][metric] for result in metrics]
        assert row[field]["values"] == values
        assert row[field]["mean"] == pytest.approx(sum(values) / 2)
        assert row[field]["std"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    assert row["paper"] == [
        {
            "accuracy": None,
            "verified": True,
            "reported": False,
            "note": paper_rows.CROSS_MODAL_ABSENT,
        }
    ]

    markdown = (out / "results.md").read_text()
    assert f"## {paper_rows.EXTRA_TABLES['cross_modal'].title}" in markdown
    assert "A2V and V2A accuracy on test_match of the epoch best on val_match" in markdown
    test_match = written["dataset"]["splits"]["test_match"]
    assert f"(the mean of the two) ({test_match} test_match videos), mean ± sample std" in markdown
    header = (
        "| Method | A2V (%), test | A2V val (%) | V2A (%), test | V2A val (%) | Remarks | "
        f"{paper_rows.PAPER_COLUMN} |"
    )
    assert header in markdown
    cells = [
        _pct([result[split][metric] for result in metrics])
        for metric in ("a2v_accuracy", "v2a_accuracy")
        for split in ("test", "val")
    ]
    assert (
        f"| AVEL AVDLN | {' | '.join(cells)} | the AVE authors' audio-visual distance learning "
        "network, trained as their code does | not reported in the AVSDN paper |" in markdown
    )
    assert "n/a (not verified)" not in markdown
    printed = "\n".join(lines)
    assert "A2V (%), test" in printed and "2 runs trained, 0 reused" in printed

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(trainer, "train", no_training)
    lines.clear()
    again = runner.run(
        match_data, str(out), table="cross_modal", seeds=2, base=base, log=lines.append
    )
    assert again["rows"] == written["rows"] and not any(r["trained_now"] for r in again["runs"])
    reused = [line for line in lines if "reused the finished run" in line]
    a2v = metrics[0]["val"]["a2v_accuracy"]
    v2a = metrics[0]["val"]["v2a_accuracy"]
    assert len(reused) == 2 and f"val A2V {a2v:.4f} V2A {v2a:.4f}, test A2V" in reused[0]


def test_cross_modal_table_on_data_without_match_splits_is_one_message_before_training(
    tiny_data, tmp_path, fake_fit
):
    out = tmp_path / "exp"
    with pytest.raises(
        UserError,
        match=r"dataset_info.json: expected the splits train_match, val_match, test_match for "
        r"`model=avdln` .*found splits \['noisy', 'test', 'train', 'val'\]",
    ):
        _run(tiny_data, out, table="cross_modal")
    assert fake_fit == [] and not out.exists()


def test_only_the_cross_modal_table_starts_from_its_models_own_defaults():
    assert paper_rows.own_defaults_model(paper_rows.select("cross_modal")) == "avdln"
    assert paper_rows.own_defaults_model(paper_rows.select("supervised", rows=["avsdn"])) is None
    assert paper_rows.own_defaults_model(paper_rows.select("all")) is None
    assert [t.key for t, _ in paper_rows.select("all")] == ["supervised", "weak", "ablation"]


@pytest.mark.slow  # over 15 s in the fast tier under load (issue 28)
def test_command_cross_modal_uses_avdln_defaults_and_refuses_data_without_match_splits(
    match_data, tiny_data, tmp_path
):
    out = tmp_path / "exp"
    common = ["--table", "cross_modal", "--seeds", "1", "--epochs", "1", "--intra_op_threads", "1"]
    ran = _command("--data_dir", match_data, "--output_dir", str(out), *common)
    assert ran.returncode == 0, ran.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    (record,) = results["runs"]
    assert record["hparams"]["batch_size"] == 8  # avdln's own default, under --epochs
    assert record["hparams"]["epochs"] == 1 and results["base_hparams"]["batch_size"] == 8
    assert "V2A (%), test" in ran.stdout and "not reported in the AVSDN paper" in ran.stdout

    refused = _command("--data_dir", tiny_data, "--output_dir", str(tmp_path / "no"), *common)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {tiny_data}/dataset_info.json: expected the splits train_match")
    assert not (tmp_path / "no").exists()


def test_a_finished_run_from_before_a_new_hparams_field_is_still_reused(tmp_path):
    """config.json written before `selection` existed: the run kept the best-on-val epoch, which
    is that field's default, so the experiment reuses it instead of refusing it."""
    run = tmp_path / "seed0"
    run.mkdir()
    hp = hparams.HParams(**SMALL, epochs=1, model="audio", seed=0)
    old = {name: value for name, value in hp.to_dict().items() if name != "selection"}
    data_dir = str(tmp_path / "data")
    config = {"hparams": old, "data_dir": data_dir, "max_videos": None}
    (run / "config.json").write_text(json.dumps(config))
    (run / "state.json").write_text(json.dumps({"finished": True, "epochs_done": 1}))
    (run / "metrics.json").write_text(json.dumps({"val": {"accuracy": 0.5}}))
    assert runner.saved_result(str(run), hp, data_dir, None) == {"val": {"accuracy": 0.5}}
    with pytest.raises(UserError, match="field hparams.selection: expected 'last'"):
        runner.saved_result(str(run), hp.replace(selection="last"), data_dir, None)


def test_the_field_table_runs_each_model_with_its_own_recipe_under_the_given_changes():
    selection = paper_rows.select("field")
    assert [table.key for table, _ in selection] == ["field_full", "field_weak"]
    assert [row.model for row in selection[0][1]] == ["av_att", "avsdn", "psp", "cmbs"]
    jobs = {
        (job.table.key, job.row.model): job.hp
        for job in runner.plan(selection, 1, hparams.HParams(epochs=2), "out")
    }
    psp_full, cmbs_weak = jobs["field_full", "psp"], jobs["field_weak", "cmbs"]
    assert (psp_full.epochs, psp_full.batch_size, psp_full.lr_milestones) == (2, 128, "60,120")
    assert (cmbs_weak.supervision, cmbs_weak.learning_rate, cmbs_weak.clip_norm) == (
        "weak",
        6e-4,
        0.5,
    )
    av_att = jobs["field_full", "av_att"]
    assert (av_att.epochs, av_att.batch_size, av_att.lr_schedule) == (2, 64, "constant")
    published = {row.model: row.paper_json() for row in selection[0][1]}
    assert [entry["accuracy"] for entry in published["cmbs"]] == [79.3, 79.25, 78.18]
    assert "selected on test" in published["psp"][0]["note"]


def test_a_given_epochs_equal_to_the_common_default_still_cuts_the_authors_recipes(tmp_path):
    """`experiments --table field --epochs 12` trained CMBS for its recipe's 200 epochs: 12 is
    the common default, and the rows compared values, not what was given."""
    assert hparams.HParams().epochs == 12
    selection = paper_rows.select("field", rows=["cmbs", "psp"])
    base = hparams.HParams(epochs=12)
    epochs = {
        (job.table.key, job.row.model): job.hp.epochs
        for job in runner.plan(selection, 1, base, "out", given={"epochs"})
    }
    assert set(epochs.values()) == {12}, epochs
    recipes = {job.row.model: job.hp.epochs for job in runner.plan(selection, 1, base, "out")}
    assert recipes == {"cmbs": 200, "psp": 300}  # nothing given: the authors' recipes
    # what the command passes: the flags given and every field its --hparams_file names
    hp_file = tmp_path / "hp.json"
    hp_file.write_text(json.dumps({"hparams": {"epochs": 12, "dropout": 0.1}}))
    flag_values = flags.FlagValues()
    flags.DEFINE_integer("epochs", None, "", flag_values=flag_values)
    flags.DEFINE_string("hparams_file", None, "", flag_values=flag_values)
    flag_values(["prog", f"--hparams_file={hp_file}"])
    assert cli.given_hparams(["epochs"], flag_values) == {"epochs", "dropout"}
    flag_values(["prog", "--epochs=12"])
    assert cli.given_hparams(["epochs"], flag_values) == {"epochs", "dropout"}
    flag_values["hparams_file"].value = None
    assert cli.given_hparams(["epochs"], flag_values) == {"epochs"}
    hp_file.write_text(json.dumps({"hparams": "epochs"}))  # not an object: named, not spelled
    with pytest.raises(UserError, match="hp.json: hparams: expected a JSON object .* found str"):
        hparams.file_fields(str(hp_file))
