"""Progress output on stderr: ``-q`` silences it, ``-v`` adds every external
command.  stdout is reserved for the result line or the ``--json`` object."""

import sys

__all__ = ["set_verbosity", "verbosity", "info", "command", "warn", "write", "escape", "printable"]

_verbosity = 1   # 0 quiet, 1 normal, 2 verbose


def set_verbosity(level):
    global _verbosity
    _verbosity = level


def verbosity():
    return _verbosity


def write(stream, text):
    """Write and flush ``text``; when the reader is gone (a closed pipe), send
    the rest of that stream to /dev/null, so that Python's own flush at exit
    does not fail too (it would turn the exit status into 120)."""
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        import os
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
    except (OSError, ValueError):
        pass


def _emit(line):
    write(sys.stderr, printable(line) + "\n")


def escape(text, keep=""):
    """``text`` with every control character but those in ``keep`` escaped
    as Python writes it (``\\x1b``, ``\\r``, ``\\n``): what ops shows cannot
    draw on the terminal."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else
                   c.encode("unicode_escape", "backslashreplace").decode("ascii") for c in text)


def printable(text):
    """One line, no control characters: a message may quote the bundle
    or a file on the host (line ends and tabs become spaces)."""
    if text.isprintable():
        return text
    return escape(text.replace("\n", " ").replace("\t", " "))


def info(msg):
    if _verbosity >= 1:
        _emit("ops: " + msg)


def warn(msg):
    if _verbosity >= 1:
        _emit("ops: warning: " + msg)


def command(argv):
    if _verbosity >= 2:
        _emit("+ " + " ".join(argv))
