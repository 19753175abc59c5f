"""SIGINT and SIGTERM in a command: one line saying what was kept and how to resume, the exit
status 128 + the signal, the command's cleanup run, the previous handlers back."""

import os
import signal

import pytest
from absl import flags

from avsdn_tf import cli, errors


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_is_one_line_and_128_plus_its_number(signum, capsys):
    cleaned = []

    def main(argv):
        try:
            os.kill(os.getpid(), signum)
        finally:
            cleaned.append(True)

    # Python's own handler, even under a runner that started the tests with SIGINT ignored.
    before = signal.signal(signum, signal.default_int_handler)
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.run_main(main, flag_values=flags.FlagValues())(["command"])
        assert signal.getsignal(signum) is signal.default_int_handler  # restored
    finally:
        signal.signal(signum, before)
    assert stopped.value.code == 128 + signum  # 130 for SIGINT, 143 for SIGTERM
    assert cleaned == [True]
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert capsys.readouterr().err.splitlines() == [
        f"interrupted by {name}: every output is written whole or not at all (nothing "
        "half-written is left); rerun the same command to go on from what was finished"
    ]


def test_the_innermost_block_that_knows_says_what_was_kept(capsys):
    def main(argv):
        with errors.on_interrupt(lambda: "outer"), errors.on_interrupt(lambda: "run/ keeps 3"):
            os.kill(os.getpid(), signal.SIGTERM)

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with pytest.raises(SystemExit) as stopped:
            cli.run_main(main, flag_values=flags.FlagValues())(["command"])
    finally:
        signal.signal(signal.SIGTERM, before)
    assert stopped.value.code == 143
    assert capsys.readouterr().err.splitlines() == ["interrupted by SIGTERM: run/ keeps 3"]


def test_a_signal_the_process_started_with_ignored_stays_ignored():
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)  # as nohup or a background job
    try:

        def main(argv):
            os.kill(os.getpid(), signal.SIGTERM)
            return 0

        assert cli.run_main(main, flag_values=flags.FlagValues())(["command"]) == 0
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)
