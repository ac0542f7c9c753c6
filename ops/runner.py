"""The one place ops runs external commands: never through a shell, logged
with ``-v``, stderr captured for the error message."""

import subprocess

from ops import log
from ops.errors import CommandError, UsageError

__all__ = ["run"]


def run(argv, *, check=True, input=None, env=None):
    """Run ``argv``; return the CompletedProcess (text, stdout and stderr captured).

    A missing program is a UsageError (exit 2: a missing tool); a non-zero
    exit with ``check`` raises CommandError naming the command and its stderr.
    """
    argv = [str(a) for a in argv]
    log.command(argv)
    try:
        proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env,
                              universal_newlines=True, errors="replace")
    except FileNotFoundError:
        raise UsageError(argv[0], "command not found (install it or put it on PATH)")
    except PermissionError:
        raise UsageError(argv[0], "cannot execute (permission denied)")
    except OSError as e:          # E2BIG and the like: the command did not run
        raise CommandError(_name(argv), "cannot run: %s" % (e.strerror or e))
    if check and proc.returncode != 0:
        lines = [l for l in proc.stderr.strip().splitlines() if l.strip()]
        detail = " / ".join(lines[-3:]) if lines else "no error output"
        raise CommandError(_name(argv),
                           "exited %d: %s" % (proc.returncode, detail),
                           proc.returncode, proc.stderr)
    return proc


def _name(argv):
    """`rkt image rm`, `systemctl enable`: the program and the words that name
    what it was asked to do (options and operands left out)."""
    import os
    words = [os.path.basename(argv[0])]
    for a in argv[1:]:
        if a == "--" or len(words) == 3:
            break
        if not a.startswith("-"):
            words.append(a)
    return " ".join(words)
