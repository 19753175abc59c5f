"""User errors: library wording names the argument; a command shows it as its flag."""

from absl import flags

from avsdn_tf import cli, errors

from testlib import run_command


def test_an_argument_error_is_shown_as_the_flag_only_by_a_command_that_has_it():
    error = errors.argument_error("strategy", "one of ('auto',)", "'fast'")
    assert (
        str(error) == "strategy: expected one of ('auto',), found 'fast'"
        and error.argument == "strategy"
    )
    with_flag = flags.FlagValues()
    flags.DEFINE_string("strategy", "auto", "", flag_values=with_flag)
    assert (
        cli.message_for_command(error, with_flag)
        == "--strategy: expected one of ('auto',), found 'fast'"
    )
    assert cli.message_for_command(error, flags.FlagValues()) == str(error)
    detailed = errors.argument_error("version", "a new version", "it taken", detail="3")
    assert (
        cli.message_for_command(detailed, with_flag)
        == "version 3: expected a new version, found it taken"
    )
    plain = errors.input_error("data/x.json field y", "an int", "'a'")
    assert (
        cli.message_for_command(plain, with_flag)
        == "data/x.json field y: expected an int, found 'a'"
    )


def test_a_command_prints_one_line_naming_its_flag_and_exits_2(tmp_path):
    done = run_command(
        "avsdn_tf.train",
        "--data_dir",
        str(tmp_path),
        "--model",
        "nonesuch",
        "--model_dir",
        str(tmp_path / "run"),
        timeout=300,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: --model: expected one of [")
    assert "Traceback" not in done.stderr


def test_backticked_arguments_in_a_message_are_shown_as_the_commands_flags():
    with_flags = flags.FlagValues()
    flags.DEFINE_float("learning_rate", 1e-3, "", flag_values=with_flags)
    flags.DEFINE_bool("include_noisy", True, "", flag_values=with_flags)
    error = errors.UserError(
        "x: expected y, found z (try a lower `learning_rate`, `include_noisy=False`, "
        "`include_noisy=True`, `learning_rate=0.1` or `other`)"
    )
    assert (
        cli.message_for_command(error, with_flags)
        == "x: expected y, found z (try a lower --learning_rate, --noinclude_noisy,"
        " --include_noisy, "
        "--learning_rate=0.1 or `other`)"
    )
    assert cli.message_for_command(error, flags.FlagValues()) == str(error)
