"""How a command was invoked: the verbs of `avsdn-tf VERB` and the name shown in --help.

The same command runs as `python -m MODULE` and, through the console script (avsdn_tf/console.py),
as `avsdn-tf VERB`; `name()` is the one it was run by and `banner` writes a module docstring's
`python -m MODULE` mentions that way. No TensorFlow here: `avsdn-tf --help` stays instant.
"""

import re
import sys

# The commands: the verb of `avsdn-tf VERB` -> the module `python -m` runs, with its checkout
# name where the repository's top-level export/ and tuning/ folders hold it (docs/commands.md).
VERBS = {
    "prepare": ("avsdn_tf.prepare",),
    "synthesize": ("avsdn_tf.synthesize",),
    "extract": ("avsdn_tf.extract",),
    "train": ("avsdn_tf.train",),
    "evaluate": ("avsdn_tf.evaluate",),
    "experiments": ("avsdn_tf.experiments",),
    "tune": ("avsdn_tf.tuning.tune", "tuning.tune"),
    "export": ("avsdn_tf.export.export_model", "export.export_model"),
    "client": ("avsdn_tf.export.client", "export.client"),
    "predict": ("avsdn_tf.predict",),
}
# The name the command was run by, when a dispatcher ran it (console.py); else `python -m ...`.
_PROGRAM = []


def set_program(name):
    """Record the name a dispatcher runs the command by (`avsdn-tf train`), for --help's banner.

    Args:
        name: the command as a user types it, without its arguments.
    """
    _PROGRAM[:] = [name]


def name():
    """The name the running command was invoked by.

    Returns:
        str: `avsdn-tf VERB` through the console script (set_program), else `python -m MODULE`
        (the module's name as imported: `export.export_model` in a checkout,
        `avsdn_tf.export.export_model` installed), else the script's path.
    """
    if _PROGRAM:
        return _PROGRAM[0]
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return f"python -m {spec.name}" if spec else sys.argv[0]


def banner(doc, program):
    """A command's docstring as its --help shows it: each command named the way it was run.

    Args:
        doc: the module docstring (it names commands `python -m MODULE`).
        program: name(): `avsdn-tf VERB` or `python -m MODULE`.
    Returns:
        str: the docstring with every `python -m MODULE` of VERBS written `avsdn-tf VERB` when
        run by the console script, or by its installed module name when run by that.
    """
    prefix, _, last = program.rpartition(" ")
    console = bool(prefix) and last in VERBS  # run as `DISPATCHER VERB`
    installed = program.startswith("python -m avsdn_tf.")
    for verb, modules in VERBS.items():
        for module in sorted(modules, key=len, reverse=True):
            pattern = re.compile(rf"python -m {re.escape(module)}(?!\w|\.\w)")
            if console:
                doc = pattern.sub(f"{prefix} {verb}", doc)
            elif installed and module != modules[0]:
                doc = pattern.sub(f"python -m {modules[0]}", doc)
    return doc
