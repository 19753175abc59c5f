"""One kind of error for user mistakes, and the wrapper that turns it into one clear message."""

import sys
import traceback


class UserError(Exception):
    """A mistake in the user's input: a message naming the file or field, expected and found."""


def input_error(source, expected, found):
    """A UserError worded the same way everywhere: where, what was expected, what was found."""
    return UserError(f"{source}: expected {expected}, found {found}")


def _use_flag_filesystems():
    """Make the filesystem of every storage URL given as a flag available (remote.py)."""
    from absl import flags

    from avsdn_tf import remote

    for name, value in sorted(flags.FLAGS.flag_values_dict().items()):
        values = value if isinstance(value, list | tuple) else [value]
        for path in remote.storage_paths(values):
            remote.use_filesystem(path, f"--{name}")


def run_main(main):
    """Wrap an absl main: a UserError prints one line on stderr and exits with status 2.

    Storage URLs among the flags get their filesystem first (s3:// needs tensorflow-io), and the
    process ends through remote.exit_process, which keeps the exit status once tensorflow-io's S3
    client was used (it would otherwise abort at exit with status 134).
    """

    def wrapped(argv):
        from avsdn_tf import remote

        user_error = False
        try:
            _use_flag_filesystems()
            status = main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            status, user_error = 2, True
        except SystemExit as stop:
            status = stop.code
        except BaseException as error:
            if not remote.tensorflow_io_loaded():
                raise
            traceback.print_exc()  # what the interpreter prints for an uncaught exception
            status = 130 if isinstance(error, KeyboardInterrupt) else 1
        if user_error or remote.tensorflow_io_loaded():
            remote.exit_process(status)  # sys.exit(status) unless tensorflow-io is loaded
        return status  # app.run exits with it

    return wrapped
