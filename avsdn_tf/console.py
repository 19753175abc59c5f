"""`avsdn-tf VERB [FLAGS]`: the console script, one name for every command (setup.py).

`avsdn-tf train ...` runs exactly what `python -m avsdn_tf.train ...` runs: the command's module
is executed as `__main__` (runpy), so its flags, its main and its messages are the same; only the
name its --help banner shows differs (invocation.name). The verbs and their modules are
invocation.VERBS; `avsdn-tf` alone or `avsdn-tf --help` lists them.
"""

import difflib
import importlib.util
import os
import runpy
import sys

from avsdn_tf import invocation

# One line per verb in `avsdn-tf --help`.
SUMMARIES = {
    "prepare": "the AVE feature release -> a data directory of TFRecords",
    "synthesize": "the built-in synthetic data set -> a data directory",
    "extract": "features of your own videos -> a data directory",
    "train": "train a registered model (--model) into a run directory (--model_dir)",
    "evaluate": "score a run again on a split",
    "experiments": "the AVSDN paper's tables, every row trained and evaluated",
    "tune": "search a model's hyperparameters with KerasTuner",
    "export": "a run -> a verified SavedModel version for TF Serving",
    "client": "send features to a running TF Serving and print the labels",
    "predict": "event labels per second for your own videos",
}


def usage(program):
    """The list of verbs `avsdn-tf` prints without one.

    Args:
        program: the console script's name.
    Returns:
        str: one line per verb with its module (`python -m` runs the same command).
    """
    lines = [f"usage: {program} VERB [FLAGS]   ({program} VERB --help: the verb's flags)", ""]
    width = max(map(len, invocation.VERBS))
    for verb, modules in invocation.VERBS.items():
        lines.append(f"  {verb:{width}s}  {SUMMARIES[verb]} (python -m {modules[0]})")
    return "\n".join(lines)


def module_of(verb):
    """The importable module of a verb: its installed name, else its checkout name.

    Args:
        verb: a key of invocation.VERBS.
    Returns:
        str: a module name importlib finds.
    """
    for name in invocation.VERBS[verb]:
        try:
            if importlib.util.find_spec(name):
                return name
        except ModuleNotFoundError:  # its parent package (e.g. avsdn_tf.export) is not there
            continue
    return invocation.VERBS[verb][0]


def main(argv=None):
    """Run `avsdn-tf VERB ...`: the verb's module as `python -m` runs it.

    Args:
        argv: the command line (default sys.argv), program name first.
    Returns:
        the exit status when no command ran (usage: 0 for --help, 2 for a missing or unknown
        verb); a command ends the process itself.
    """
    argv = list(sys.argv if argv is None else argv)
    program = os.path.basename(argv[0]) or "avsdn-tf"
    verb = argv[1] if len(argv) > 1 else None
    if verb in ("-h", "--help", "help"):
        print(usage(program))
        return 0
    if verb not in invocation.VERBS:
        found = f"{verb!r}" if verb else "none"
        close = difflib.get_close_matches(verb or "", list(invocation.VERBS), n=1)
        found += f" (did you mean {close[0]}?)" if close else ""
        verbs = ", ".join(invocation.VERBS)
        print(f"error: {program}: expected a verb, one of {verbs}; found {found}", file=sys.stderr)
        return 2
    invocation.set_program(f"{program} {verb}")
    sys.argv = [f"{program} {verb}", *argv[2:]]
    runpy.run_module(module_of(verb), run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
