"""File helpers on tf.io.gfile (local, gs://, s3:// alike), with all-or-nothing outputs."""

import contextlib
import json
import os
import uuid

import tensorflow as tf

from avsdn_tf.errors import UserError, input_error


def write_json(path, value):
    """Write JSON under a temporary name and rename it, so readers never see half a file."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
    tf.io.gfile.rename(temporary, path, overwrite=True)


def read_json(path):
    with tf.io.gfile.GFile(path, "r") as handle:
        return json.load(handle)


def read_json_object(path, what, expected):
    """A user's JSON file that must hold an object; one clear UserError otherwise.

    `what` names the file in the not-found message ("hyperparameter file"); `expected` says what
    it should hold ("a JSON object of hyperparameters").
    """
    if not tf.io.gfile.exists(path):
        raise UserError(f"{path}: {what} not found")
    try:
        with tf.io.gfile.GFile(path) as handle:
            value = json.load(handle)
    except json.JSONDecodeError as error:
        raise input_error(path, expected, f"invalid JSON ({error})") from None
    if not isinstance(value, dict):
        raise input_error(path, expected, type(value).__name__)
    return value


def write_text(path, text):
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write(text)
    tf.io.gfile.rename(temporary, path, overwrite=True)


def remove_tree(path):
    if tf.io.gfile.exists(path):
        if tf.io.gfile.isdir(path):
            tf.io.gfile.rmtree(path)
        else:
            tf.io.gfile.remove(path)


@contextlib.contextmanager
def staged_directory(final_path):
    """Yield a fresh staging directory; on success it replaces `final_path`, on error it vanishes.

    The old output, if any, stays in place until the new one is complete.
    """
    final_path = final_path.rstrip("/")
    staging = f"{final_path}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    tf.io.gfile.makedirs(staging)
    try:
        yield staging
    except BaseException:
        remove_tree(staging)
        raise
    retired = f"{final_path}.old-{uuid.uuid4().hex[:6]}"
    if tf.io.gfile.exists(final_path):
        tf.io.gfile.rename(final_path, retired)
    tf.io.gfile.rename(staging, final_path)
    remove_tree(retired)
