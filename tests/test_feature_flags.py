"""extract --help and predict --help list every feature flag the command needs (issue 27): the
flags defined by avsdn_tf/feature_flags.py belong to the command, not only to --helpfull."""

import pytest

from avsdn_tf import feature_flags

from testlib import run_command

FEATURE_FLAGS = list(feature_flags.FEATURE_FLAGS)


def _help(command):
    """The text `python -m avsdn_tf.<command> --help` prints (absl prints it and exits 1)."""
    done = run_command(f"avsdn_tf.{command}", "--help", timeout=300)
    assert "flags:" in done.stdout, done.stderr
    return done.stdout


def test_the_feature_flags_are_the_settings_fields_and_preset():
    assert {"preset", "vggish_checkpoint", "visual_backbone", "visual_weights"} <= set(
        FEATURE_FLAGS
    )
    assert "frames_per_second" in FEATURE_FLAGS and "batch_size" in FEATURE_FLAGS


@pytest.mark.parametrize(
    "command, own", [("extract", ["runner", "videos"]), ("predict", ["window_seconds"])]
)
def test_help_lists_every_feature_flag(command, own):
    text = _help(command)
    missing = [name for name in [*FEATURE_FLAGS, *own] if f"  --{name}:" not in text]
    assert not missing, f"{command} --help lacks {missing}"
    assert "avsdn_tf.feature_flags" not in text and "feature_flags.py" not in text
