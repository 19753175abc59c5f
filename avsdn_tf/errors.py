"""One kind of error for user mistakes, and the wrapper that turns it into one clear message."""

import sys


class UserError(Exception):
    """A mistake in the user's input: a message naming the file or field, expected and found."""


def input_error(source, expected, found):
    """A UserError worded the same way everywhere: where, what was expected, what was found."""
    return UserError(f"{source}: expected {expected}, found {found}")


def run_main(main):
    """Wrap an absl main so a UserError prints one line on stderr and exits with status 2."""

    def wrapped(argv):
        try:
            return main(argv)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapped
