"""The one place ops runs external commands: never through a shell, logged
with ``-v``, stderr captured for the error message."""

import subprocess

from ops import log
from ops.errors import CommandError, UsageError, clip

__all__ = ["run"]


def run(argv, *, check=True, input=None, env=None, timeout=None):
    """Run ``argv``; return the CompletedProcess (text, stdout and stderr captured).

    A missing program is a UsageError (exit 2: a missing tool); a non-zero
    exit with ``check`` raises CommandError naming the command and its stderr.
    After ``timeout`` seconds the command and everything it started are
    killed, and that is a CommandError too.
    """
    argv = [str(a) for a in argv]
    log.command(argv)
    try:
        if timeout is None:
            proc = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env,
                                  universal_newlines=True, errors="replace")
        else:
            proc = _run_bounded(argv, env, timeout)
    except FileNotFoundError:
        raise UsageError(argv[0], "command not found (install it or put it on PATH)")
    except PermissionError:
        raise UsageError(argv[0], "cannot execute (permission denied)")
    except OSError as e:          # E2BIG and the like: the command did not run
        raise CommandError(_name(argv), "cannot run: %s" % (e.strerror or e))
    if check and proc.returncode != 0:
        # a bounded command (a health check) may say why on stdout
        text = proc.stderr + (proc.stdout if timeout is not None else "")
        lines = [l for l in text.strip().splitlines() if l.strip()]
        detail = clip(" / ".join(lines[-3:])) if lines else "no error output"
        raise CommandError(_name(argv),
                           "exited %d: %s" % (proc.returncode, detail),
                           proc.returncode, proc.stderr)
    return proc


def _run_bounded(argv, env, timeout):
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, universal_newlines=True,
                         errors="replace", start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(p)
        raise CommandError(_name(argv), "timed out after %g s" % timeout)
    except BaseException:
        _kill(p)
        raise
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def _kill(p):
    """Kill the command's process group (what it started too); wait for it,
    without waiting for a pipe something that escaped the group may hold."""
    import os
    import signal
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    p.wait()
    p.stdout.close()
    p.stderr.close()


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
