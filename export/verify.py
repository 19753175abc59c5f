"""`python -m export.verify SAVED_MODEL REFERENCE_DIR`: check an export in a fresh process.

export_model runs this in a new Python process before it publishes a version, so the check sees
only what is on disk: the SavedModel is loaded with tf.saved_model.load (nothing of the exporting
process is reused), its signatures are run on the reference cases export_model wrote and compared
with the Keras model's outputs by the served model's task (its serving class's `check`); then every
warmup record is replayed.

Prints one JSON line (what was checked, the largest difference) and exits 0, or prints the reason
on stderr and exits 1.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import json
import sys

import tensorflow as tf

from avsdn_tf import hparams, remote
from avsdn_tf.errors import UserError
from avsdn_tf.models import registry, serving

from . import warmup

# The one failure of a verification (a served output that differs from the Keras model's).
Mismatch = serving.Mismatch


def _replay_warmup(loaded, saved_model_dir, output):
    """Replay every warmup record; each must give `output` for as many videos as it sent.

    Args:
        loaded: the loaded SavedModel. saved_model_dir: its directory.
        output: the output whose first dim is the batch (segment_probs, start).
    Returns:
        str, what was checked ("N warmup requests").
    Raises:
        Mismatch: when there are no records or one gives another batch size.
    """
    path = warmup.warmup_path(saved_model_dir)
    logs = warmup.read(path)
    if not logs:
        raise Mismatch(f"{path}: no warmup records")
    for index, log in enumerate(logs):
        request = log.predict_log.request
        inputs = {key: tf.constant(value) for key, value in warmup.request_inputs(request).items()}
        outputs = loaded.signatures[request.model_spec.signature_name](**inputs)
        batch = next(iter(inputs.values())).shape[0]
        if outputs[output].shape[0] != batch:
            raise Mismatch(
                f"{path} record {index}: {batch} videos in, {outputs[output].shape[0]} out"
            )
    return f"{len(logs)} warmup requests"


def verify(saved_model_dir, reference_dir):
    """Check a SavedModel on disk against the reference cases export_model wrote.

    The reference names the served model's hyperparameters; its task's serving class checks the
    signatures against the Keras model's outputs (`check`), then every warmup record is replayed.

    Args:
        saved_model_dir: the SavedModel directory (local or a storage URL).
        reference_dir: a local directory export_model filled (reference.json and the cases).
    Returns:
        dict: checked (list of str, what was compared) and max_difference (float).
    Raises:
        Mismatch: when a signature is missing, an output differs, or there are no warmup
            records.
    """
    reference = serving.read_reference(reference_dir)
    hp = hparams.from_dict(reference["hparams"], source=f"{reference_dir} reference hparams")
    check = registry.task_for(hp).serving_class.check
    loaded = tf.saved_model.load(saved_model_dir)
    checked, largest = check(loaded, reference_dir, reference)
    checked.append(_replay_warmup(loaded, saved_model_dir, reference["batch_output"]))
    return {"checked": checked, "max_difference": largest}


def main(argv):
    """The command: verify(argv[1], argv[2]); the JSON report on stdout, or the reason on stderr.

    Args:
        argv: [program, SAVED_MODEL, REFERENCE_DIR].
    Returns:
        int exit status: 0 verified, 1 failed (one line on stderr), 2 bad usage.
    """
    if len(argv) != 3:
        print("usage: python -m export.verify SAVED_MODEL REFERENCE_DIR", file=sys.stderr)
        return 2
    try:
        remote.use_filesystem(argv[1])  # the staging directory may be on s3://
        report = verify(argv[1], argv[2])
    except (Mismatch, UserError, tf.errors.OpError, OSError, ValueError, KeyError) as error:
        message = error.message if isinstance(error, tf.errors.OpError) else str(error)
        print(" ".join(message.split()), file=sys.stderr)
        return 1
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    remote.exit_process(main(sys.argv))  # sys.exit, or os._exit after tensorflow-io's S3 client
