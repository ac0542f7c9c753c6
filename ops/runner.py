"""The one place ops runs external commands: never through a shell, logged
with ``-v``, stderr captured for the error message.

subprocess is imported by the functions that run a command, not by this
module: it costs a third of Python's own start-up, and the commands that
find nothing to do (``list``, an unchanged deploy offline) run nothing."""

from ops import log
from ops.errors import CommandError, UsageError, clip

__all__ = ["run", "run_waiting"]


def run(argv, *, check=True, input=None, env=None, timeout=None):
    """Run ``argv``; return the CompletedProcess (text, stdout and stderr captured).

    A missing program is a UsageError (exit 2: a missing tool); a non-zero
    exit with ``check`` raises CommandError naming the command and its stderr.
    After ``timeout`` seconds the command and everything it started are
    killed, and that is a CommandError too.
    """
    import subprocess
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


def run_waiting(argv, tick, every=1.0, check=True, env=None):
    """Run ``argv`` as :func:`run` does, calling ``tick(seconds)`` every
    ``every`` seconds while it runs; when ``tick`` returns False the command
    is killed (what it asked for may go on: a systemd job does) and that is
    a CommandError.  Returns the CompletedProcess."""
    import subprocess
    import time
    argv = [str(a) for a in argv]
    log.command(argv)
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, universal_newlines=True, errors="replace",
                             env=env)
    except FileNotFoundError:
        raise UsageError(argv[0], "command not found (install it or put it on PATH)")
    except OSError as e:
        raise CommandError(_name(argv), "cannot run: %s" % (e.strerror or e))
    start = time.monotonic()
    abandoned = False
    try:
        while True:
            try:
                out, err = p.communicate(timeout=every)
                break
            except subprocess.TimeoutExpired:
                if tick(time.monotonic() - start) is False:
                    p.kill()
                    out, err = p.communicate()
                    abandoned = True
                    break
    except BaseException:
        p.kill()
        p.wait()
        raise
    if abandoned:
        raise CommandError(_name(argv), "abandoned after %d s" % (time.monotonic() - start))
    proc = subprocess.CompletedProcess(argv, p.returncode, out, err)
    if check and proc.returncode != 0:
        lines = [l for l in err.strip().splitlines() if l.strip()]
        raise CommandError(_name(argv), "exited %d: %s" % (
            proc.returncode, clip(" / ".join(lines[-3:])) if lines else "no error output"),
            proc.returncode, err)
    return proc


def _run_bounded(argv, env, timeout):
    """Run ``argv`` for at most ``timeout`` seconds, keeping only the tail of
    its output (TAIL bytes of each stream).  Everything it started is killed
    when it ends or times out: its process group, and every process whose
    environment carries this run's mark (a child that left the group with
    setsid, a double-forked daemon), found by scanning /proc."""
    import os
    import secrets
    import selectors
    import subprocess
    import time
    from ops.environment import CHECK_MARK
    mark = "%s=%s" % (CHECK_MARK, secrets.token_hex(16))
    env = dict(os.environ if env is None else env)
    env[CHECK_MARK] = mark.split("=", 1)[1]
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, start_new_session=True)
    tails = {p.stdout: bytearray(), p.stderr: bytearray()}
    deadline = time.monotonic() + timeout
    exited_at = None
    try:
        with selectors.DefaultSelector() as sel:
            for f in tails:
                sel.register(f, selectors.EVENT_READ)
            while sel.get_map():
                now = time.monotonic()
                if now >= deadline:
                    break
                if exited_at is None and p.poll() is not None:
                    exited_at = now
                if exited_at is not None and now - exited_at > 0.2:
                    break         # it exited; what holds its pipes is a leftover
                for key, _ in sel.select(min(0.1, deadline - now)):
                    data = os.read(key.fileobj.fileno(), 1 << 16)
                    if not data:
                        sel.unregister(key.fileobj)
                        continue
                    t = tails[key.fileobj]
                    t += data
                    del t[:-TAIL]
        try:         # its pipes are closed: it is exiting, or the deadline is reached
            p.wait(timeout=max(0, deadline - time.monotonic()))
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
    except BaseException:
        _kill(p, mark)
        raise
    _kill(p, mark)
    if timed_out:
        raise CommandError(_name(argv), "timed out after %g s" % timeout)
    out, err = (tails[f].decode("utf-8", "replace") for f in (p.stdout, p.stderr))
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


TAIL = 64 << 10


def _kill(p, mark=None):
    """Kill the command's process group (what it started too) and every
    process whose environment holds ``mark``; wait for the command, without
    waiting for a pipe something that escaped may hold."""
    import os
    import signal
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass
    if mark:
        _kill_marked(mark.encode())
    p.wait()
    p.stdout.close()
    p.stderr.close()


def _kill_marked(mark):
    """SIGKILL every process whose initial environment holds ``mark``
    (NAME=TOKEN); scanned again while one is found, as one may fork meanwhile."""
    import os
    import signal
    me = os.getpid()
    for _ in range(10):
        found = False
        try:
            pids = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        except OSError:
            return
        for pid in pids:
            if pid == me:
                continue
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    environ = f.read()
            except OSError:
                continue
            if (b"\0" + mark + b"\0") in (b"\0" + environ + b"\0"):
                try:
                    os.kill(pid, signal.SIGKILL)
                    found = True
                except OSError:
                    pass
        if not found:
            return


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
