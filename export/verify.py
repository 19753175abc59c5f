"""`python -m export.verify SAVED_MODEL REFERENCE_DIR`: check an export in a fresh process.

export_model runs this in a new Python process before it publishes a version, so the check sees
only what is on disk: the SavedModel is loaded with tf.saved_model.load (nothing of the exporting
process is reused), both signatures are run on the reference batches export_model wrote, and their
outputs are compared with the Keras model's; then every warmup record is replayed. A reference of
the cross-modality localization export (export/cross_modal.py) is checked by verify_cross_modal.

Prints one JSON line (what was checked, the largest difference) and exits 0, or prints the reason
on stderr and exits 1.
"""

import avsdn_tf.command_logging  # noqa: F401  (first: TensorFlow's C++ log level, before it loads)

import json
import os
import sys

import numpy as np
import tensorflow as tf

from avsdn_tf import constants, remote
from avsdn_tf.errors import UserError

from . import cross_modal, signatures, warmup


class Mismatch(Exception):
    pass


def _check_outputs(where, outputs, expected, class_names, tolerance, ids=None):
    probs = outputs[signatures.SEGMENT_PROBS].numpy()
    if probs.shape != expected.shape:
        raise Mismatch(
            f"{where}: segment_probs has shape {list(probs.shape)}, the Keras model's"
            f" {list(expected.shape)}"
        )
    difference = float(np.abs(probs - expected).max())
    if not difference <= tolerance:
        raise Mismatch(
            f"{where}: segment_probs differ from the Keras model's by {difference:.2e} "
            f"(tolerance {tolerance:.0e})"
        )
    labels = outputs[signatures.SEGMENT_LABELS].numpy()
    top2 = np.sort(expected, axis=-1)[..., -2:]
    clear = (top2[..., 1] - top2[..., 0]) > 2 * tolerance  # ties may break either way
    if not np.array_equal(labels[clear], expected.argmax(-1)[clear]):
        raise Mismatch(
            f"{where}: segment_labels are not the arg-max of the Keras model's probabilities"
        )
    names = np.array(class_names, dtype=object)
    decoded = np.vectorize(lambda b: b.decode("utf-8"), otypes=[object])
    if not np.array_equal(decoded(outputs[signatures.SEGMENT_LABEL_NAMES].numpy()), names[labels]):
        raise Mismatch(f"{where}: segment_label_names do not name segment_labels")
    video_label = outputs[signatures.VIDEO_LABEL].numpy()
    if not np.array_equal(video_label, signatures.video_labels(probs)):
        raise Mismatch(f"{where}: video_label does not follow the documented rule")
    if not np.array_equal(
        decoded(outputs[signatures.VIDEO_LABEL_NAME].numpy()), names[video_label]
    ):
        raise Mismatch(f"{where}: video_label_name does not name video_label")
    if ids is not None:
        found = [b.decode("utf-8", "replace") for b in outputs[signatures.VIDEO_ID].numpy()]
        if found != ids:
            raise Mismatch(f"{where}: video_id {found} is not the records' {ids}")
    return difference


def _check_mixed_lengths(serve_examples, cases, class_names, tolerance):
    """One request holding records of two lengths: each video as if it had been sent alone."""
    (first_expected, first_examples), (second_expected, second_examples) = cases.values()
    if len(first_examples) < 2:
        return 0.0
    outputs = serve_examples(examples=tf.constant([first_examples[0], second_examples[1]]))
    lengths = [first_expected.shape[1], second_expected.shape[1]]
    found = outputs[signatures.NUM_SEGMENTS].numpy().tolist()
    if found != lengths:
        raise Mismatch(
            f"{signatures.PREDICT_EXAMPLES} with mixed lengths: num_segments {found}, expected"
            f" {lengths}"
        )
    labels = outputs[signatures.SEGMENT_LABELS].numpy()
    if labels.shape != (2, max(lengths)) or any(
        (labels[row, length:] != constants.PAD_LABEL).any() for row, length in enumerate(lengths)
    ):
        raise Mismatch(
            f"{signatures.PREDICT_EXAMPLES} with mixed lengths: segment_labels {labels.tolist()} "
            f"are not padded with {constants.PAD_LABEL}"
        )
    per_segment = (
        signatures.SEGMENT_PROBS,
        signatures.SEGMENT_LABELS,
        signatures.SEGMENT_LABEL_NAMES,
    )
    largest = 0.0
    for row, expected in ((0, first_expected[0]), (1, second_expected[1])):
        single = {
            key: (
                value[row : row + 1, : lengths[row]] if key in per_segment else value[row : row + 1]
            )
            for key, value in outputs.items()
        }
        largest = max(
            largest,
            _check_outputs(
                f"{signatures.PREDICT_EXAMPLES} with mixed lengths, video {row}",
                single,
                expected[None],
                class_names,
                tolerance,
            ),
        )
    return largest


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


def verify_cross_modal(saved_model_dir, reference_dir):
    """Check a cross-modality localization SavedModel (export/cross_modal.py) against the
    reference cases of cross_modal.write_reference: the Keras model's start and scores.

    Both signature names are run on every case; scores must be +inf exactly where the Keras
    model's are and differ by at most the tolerance (relative, at least 1) elsewhere; start must
    equal the Keras model's wherever its best score is ahead of the second by more than twice
    the tolerance (closer ones may break either way). Then every warmup record is replayed.

    Args:
        saved_model_dir: the SavedModel directory (local or a storage URL).
        reference_dir: a local directory from cross_modal.write_reference.
    Returns:
        dict: checked (list of str, what was compared) and max_difference (float, the largest
        |SavedModel - Keras| score).
    Raises:
        Mismatch: when a signature is missing or an output differs.
    """
    cases, tolerance = cross_modal.read_reference(reference_dir)
    loaded = tf.saved_model.load(saved_model_dir)
    missing = [name for name in cross_modal.SIGNATURES if name not in loaded.signatures]
    if missing:
        raise Mismatch(f"signatures {missing} missing; found {sorted(loaded.signatures)}")
    checked, largest = [], 0.0
    for case in cases.values():
        length = case["audio"].shape[1]
        for name in cross_modal.SIGNATURES:
            where = f"{name} at {length} segments"
            outputs = loaded.signatures[name](
                audio=tf.constant(case["audio"]),
                visual=tf.constant(case["visual"]),
                query_mask=tf.constant(case["query_mask"]),
                direction=tf.constant(case["direction"].astype(str)),
            )
            scores = outputs[cross_modal.SCORES].numpy()
            expected = case["scores"]
            if scores.shape != expected.shape:
                raise Mismatch(
                    f"{where}: scores have shape {list(scores.shape)}, the Keras model's"
                    f" {list(expected.shape)}"
                )
            if not np.array_equal(np.isinf(scores), np.isinf(expected)):
                raise Mismatch(f"{where}: scores are +inf at other starts than the Keras model's")
            fits = np.isfinite(expected)
            difference = float(np.abs(scores[fits] - expected[fits]).max())
            allowed = tolerance * np.maximum(1.0, np.abs(expected[fits]))
            if not (np.abs(scores[fits] - expected[fits]) <= allowed).all():
                raise Mismatch(
                    f"{where}: scores differ from the Keras model's by {difference:.2e} "
                    f"(tolerance {tolerance:.0e}, relative)"
                )
            best2 = np.sort(expected, axis=-1)[:, :2]
            clear = (best2[:, 1] - best2[:, 0]) > 2 * tolerance * np.maximum(1.0, best2[:, 0])
            start = outputs[cross_modal.START].numpy()
            if not np.array_equal(start[clear], case["start"][clear]):
                raise Mismatch(
                    f"{where}: start {start.tolist()} is not the Keras model's "
                    f"{case['start'].tolist()}"
                )
            largest = max(largest, difference)
            checked.append(f"{name}@{length}")
    checked.append(_replay_warmup(loaded, saved_model_dir, cross_modal.START))
    return {"checked": checked, "max_difference": largest}


def verify(saved_model_dir, reference_dir):
    """Check a SavedModel on disk against the reference cases export_model wrote.

    A reference of the cross-modality signature (reference.json "signature": "cross_modal") is
    checked by verify_cross_modal instead.

    Both signatures are run on each case and compared with the Keras model's segment_probs
    [B, T, K] (within the reference's tolerance), labels, names, video labels and ids; then a
    request mixing two lengths, then every warmup record is replayed.

    Args:
        saved_model_dir: the SavedModel directory (local or a storage URL).
        reference_dir: a local directory from export_model.write_reference.
    Returns:
        dict: checked (list of str, what was compared) and max_difference (float).
    Raises:
        Mismatch: when a signature is missing, an output differs, or there are no warmup
            records.
    """
    with open(os.path.join(reference_dir, "reference.json")) as handle:
        reference = json.load(handle)
    if reference.get("signature") == cross_modal.CROSS_MODAL:
        return verify_cross_modal(saved_model_dir, reference_dir)
    loaded = tf.saved_model.load(saved_model_dir)
    missing = [name for name in signatures.SIGNATURES if name not in loaded.signatures]
    if missing:
        raise Mismatch(f"signatures {missing} missing; found {sorted(loaded.signatures)}")
    serve = loaded.signatures[signatures.SERVING_DEFAULT]
    serve_examples = loaded.signatures[signatures.PREDICT_EXAMPLES]
    tolerance, class_names = reference["tolerance"], reference["class_names"]
    checked, largest, cases = [], 0.0, {}
    for name, case in reference["cases"].items():
        arrays = np.load(os.path.join(reference_dir, f"{name}.npz"))
        examples = [
            record.numpy()
            for record in tf.data.TFRecordDataset(os.path.join(reference_dir, f"{name}.tfrecord"))
        ]
        length = arrays["audio"].shape[1]
        outputs = serve(audio=tf.constant(arrays["audio"]), visual=tf.constant(arrays["visual"]))
        largest = max(
            largest,
            _check_outputs(
                f"{signatures.SERVING_DEFAULT} at {length} segments",
                outputs,
                arrays["expected"],
                class_names,
                tolerance,
            ),
        )
        outputs = serve_examples(examples=tf.constant(examples))
        largest = max(
            largest,
            _check_outputs(
                f"{signatures.PREDICT_EXAMPLES} at {length} segments",
                outputs,
                arrays["expected"],
                class_names,
                tolerance,
                ids=case["ids"],
            ),
        )
        if not np.array_equal(
            outputs[signatures.NUM_SEGMENTS].numpy(), np.full(len(examples), length)
        ):
            raise Mismatch(
                f"{signatures.PREDICT_EXAMPLES} at {length} segments: num_segments "
                f"{outputs[signatures.NUM_SEGMENTS].numpy().tolist()}"
            )
        checked += [
            f"{signatures.SERVING_DEFAULT}@{length}",
            f"{signatures.PREDICT_EXAMPLES}@{length}",
        ]
        cases[name] = (arrays["expected"], examples)
    largest = max(largest, _check_mixed_lengths(serve_examples, cases, class_names, tolerance))
    checked.append(f"{signatures.PREDICT_EXAMPLES}@mixed")
    checked.append(_replay_warmup(loaded, saved_model_dir, signatures.SEGMENT_PROBS))
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
