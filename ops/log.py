"""Progress output on stderr: ``-q`` silences it, ``-v`` adds every external
command.  stdout is reserved for the result line or the ``--json`` object."""

import sys

__all__ = ["set_verbosity", "verbosity", "info", "command", "warn"]

_verbosity = 1   # 0 quiet, 1 normal, 2 verbose


def set_verbosity(level):
    global _verbosity
    _verbosity = level


def verbosity():
    return _verbosity


def _emit(line):
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def info(msg):
    if _verbosity >= 1:
        _emit("ops: " + msg)


def warn(msg):
    if _verbosity >= 1:
        _emit("ops: warning: " + msg)


def command(argv):
    if _verbosity >= 2:
        _emit("+ " + " ".join(argv))
