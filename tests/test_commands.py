"""One command line everywhere: the console script `avsdn-tf VERB` beside `python -m`, --help
banners naming the invocation and listing the flags each command needs, the flag vocabulary of
docs/commands.md with the old spellings still accepted once, and exit status 2 with one line for
every mistake on the command line."""

import subprocess
import sys
from pathlib import Path

import pytest
from absl import flags

from avsdn_tf import cli, errors, invocation

from testlib import ROOT, command_env

# The console script pip installs beside the interpreter (setup.py's entry_points).
CONSOLE = Path(sys.executable).parent / "avsdn-tf"

FEATURE_FLAGS = [
    "--preset",
    "--vggish_checkpoint",
    "--visual_backbone",
    "--visual_weights",
    "--frames_per_second",
]
# What a user of each command needs to find in its --help (docs/commands.md's vocabulary).
NEEDED = {
    "prepare": ["--ave_dir", "--output_dir", "--visual_file", "--label_source"],
    "synthesize": ["--output_dir", "--train_videos", "--visual_layout", "--seed"],
    "extract": ["--videos", "--output_dir", "--labels", "--split", "--runner", *FEATURE_FLAGS],
    "train": ["--data_dir", "--model", "--model_dir", "--epochs", "--hparams_file", "--strategy"],
    "evaluate": ["--model_dir", "--data_dir", "--split", "--checkpoint", "--output_dir"],
    "experiments": ["--data_dir", "--table", "--rows", "--seeds", "--epochs", "--output_dir"],
    "tune": ["--data_dir", "--model", "--tuner", "--max_trials", "--epochs", "--output_dir"],
    "export": ["--model_dir", "--output_dir", "--version", "--checkpoint", "--data_dir"],
    "client": ["--server", "--model_name", "--data", "--grpc", "--version", "--output"],
    "predict": ["--saved_model", "--model_dir", "--labels", "--output_dir", *FEATURE_FLAGS],
}
OLD_SPELLINGS = {  # command -> flags it no longer shows in --help
    "predict": ["--model "],
    "client": ["--model ", "--output_json"],
    "export": ["--export_base"],
    "tune": ["--directory"],
}


def user_env():
    """The environment of a user outside the checkout: no PYTHONPATH, TensorFlow's logging as the
    commands set it."""
    env = command_env(PYTHONPATH="")
    del env["TF_CPP_MIN_LOG_LEVEL"]
    return env


def console(*args, cwd=None):
    """`avsdn-tf ARGS` as a user runs it, outside the checkout unless cwd is given."""
    assert CONSOLE.exists(), f"{CONSOLE}: run `pip install -e .` to install the console script"
    return subprocess.run(
        [str(CONSOLE), *map(str, args)],
        cwd=cwd or Path.home(),
        capture_output=True,
        text=True,
        timeout=600,
        env=user_env(),
    )


def flag_names(help_text):
    """The flags a --help lists, as `--name` (booleans without their [no])."""
    return {
        "--" + line.split(":")[0].strip().lstrip("-").replace("[no]", "")
        for line in help_text.splitlines()
        if line.startswith("  --")
    }


@pytest.mark.parametrize("verb", sorted(NEEDED))
def test_every_command_runs_installed_and_its_help_names_it_and_its_flags(verb):
    done = console(verb, "--help")
    banner, _, flag_help = done.stdout.partition("\nflags:\n")
    assert f"avsdn-tf {verb}" in banner and "python -m" not in banner, banner
    listed = flag_names(flag_help)
    assert set(NEEDED[verb]) <= listed, sorted(set(NEEDED[verb]) - listed)
    for old in OLD_SPELLINGS.get(verb, []):
        assert old.strip() not in listed
    assert "Traceback" not in done.stderr, done.stderr


def test_the_dispatcher_lists_its_verbs_and_refuses_an_unknown_one_in_one_line():
    listing = console("--help")
    assert listing.returncode == 0
    verbs = sorted(line.split()[0] for line in listing.stdout.splitlines()[2:])
    assert verbs == sorted(NEEDED)
    wrong = console("trian", "--help")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().splitlines() == [
        "error: avsdn-tf: expected a verb, one of prepare, synthesize, extract, train, evaluate, "
        "experiments, tune, export, client, predict; found 'trian' (did you mean train?)"
    ]


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ("train", "--modle_dir", "{tmp}/run"),
            "error: unknown flag --modle_dir (did you mean --model_dir?)",
        ),
        (
            ("train", "--epochs", "three", "--model_dir", "{tmp}/run"),
            "error: flag --epochs=three: invalid literal for int() with base 10: 'three'",
        ),
        (("prepare", "--output_dir", "{tmp}/o"), "error: --ave_dir: expected a value, found none"),
        (
            ("prepare", "--ave_dir", "{tmp}", "--output_dir", "{tmp}/o", "more"),
            "error: unexpected arguments: more",
        ),
    ],
    ids=["typo", "bad_value", "missing", "extra_argument"],
)
def test_a_flag_typo_or_bad_value_is_one_line_and_exit_2(tmp_path, args, line):
    done = console(*(arg.format(tmp=tmp_path) for arg in args))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "o").exists() and not (tmp_path / "run").exists()


def test_an_old_flag_spelling_still_works_for_one_release_with_one_line(tmp_path):
    """export --export_base (now --output_dir): the deprecation line, then the command's own
    message naming the flag of now."""
    done = console("export", "--model_dir", tmp_path / "no_run", "--export_base", tmp_path / "s")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"warning: --export_base is deprecated, use --output_dir (the old name is accepted until "
        f"avsdn-tf {cli.RENAMED_UNTIL})",
        f"error: {tmp_path / 'no_run'}: run directory not found",
    ]


def test_old_spellings_are_rewritten_in_every_form_and_warned_once(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_RENAMED", {"export_base": "output_dir", "quiet": "silent"})
    argv = ["prog", "--export_base", "a", "-export_base=b", "--noquiet", "--noisy_videos=3"]
    argv += ["--", "--export_base"]
    assert cli._renamed_argv(argv) == [
        "prog",
        "--output_dir",
        "a",
        "-output_dir=b",
        "--nosilent",
        "--noisy_videos=3",
        "--",
        "--export_base",
    ]
    warnings = capsys.readouterr().err.splitlines()
    assert [line.split(" is deprecated")[0] for line in warnings] == [
        "warning: --export_base",
        "warning: --quiet",
    ]
    with_flag = flags.FlagValues()
    flags.DEFINE_string("output_dir", None, "", flag_values=with_flag)
    error = errors.UserError("`export_base` /s: expected no other process writing it")
    assert cli.message_for_command(error, with_flag) == (
        "--output_dir /s: expected no other process writing it"
    )


def test_banners_name_the_way_the_command_was_run():
    doc = "`python -m export.export_model --output_dir S`; then python -m avsdn_tf.predict."
    assert invocation.banner(doc, "avsdn-tf export") == (
        "`avsdn-tf export --output_dir S`; then avsdn-tf predict."
    )
    assert invocation.banner(doc, "python -m avsdn_tf export") == (
        "`python -m avsdn_tf export --output_dir S`; then python -m avsdn_tf predict."
    )
    assert invocation.banner(doc, "python -m avsdn_tf.export.export_model") == (
        "`python -m avsdn_tf.export.export_model --output_dir S`; then python -m avsdn_tf.predict."
    )
    assert invocation.banner(doc, "python -m export.export_model") == doc


def test_installed_module_names_run_outside_the_checkout(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "avsdn_tf.export.export_model", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=user_env(),
    )
    banner = done.stdout.partition("\nflags:\n")[0]
    assert banner.startswith("`python -m avsdn_tf.export.export_model --model_dir RUN"), banner
    assert "python -m export." not in banner
    assert str(ROOT) not in banner


def test_a_tensorflow_warning_in_a_command_is_printed_once(tmp_path):
    """TensorFlow's logger got a handler of its own before absl's, so each warning (a retracing
    warning, ...) was printed twice; --verbosity still decides which levels show."""
    script = tmp_path / "command.py"
    script.write_text(
        "import tensorflow as tf\n"
        "from avsdn_tf import cli\n"
        "def main(argv):\n"
        "    tf.get_logger().warning('probe warning')\n"
        "    tf.get_logger().info('probe info')\n"
        "cli.run(main)\n"
    )

    def lines(*args):
        done = subprocess.run(
            [sys.executable, str(script), *args],
            capture_output=True,
            text=True,
            timeout=600,
            env=user_env(),
        )
        assert done.returncode == 0, done.stderr
        return [line for line in done.stderr.splitlines() if "probe" in line]

    assert lines() == ["WARNING:tensorflow:probe warning", "INFO:tensorflow:probe info"]
    assert lines("--verbosity=-1") == ["WARNING:tensorflow:probe warning"]
