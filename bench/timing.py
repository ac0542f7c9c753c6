"""Running commands for the benchmark and summarising their times.

Every measured command is a child process: :func:`spawn` starts it, reaps it
with ``os.wait4`` and keeps its wall time (``time.perf_counter`` around the
whole start-to-exit), its CPU time (user + system, of the child and of the
children it waited for) and its peak RSS.  :func:`interleave` runs ops and its
baseline in turn (A B A B ...), so that both see the same machine load.
"""

import os
import statistics
import subprocess
import tempfile
import threading
import time

__all__ = ["BenchError", "Run", "spawn", "interleave", "Summary", "fmt_time"]


class BenchError(Exception):
    """A measured command failed or produced the wrong result."""


class Run(object):
    """One measured run: wall seconds, CPU seconds, peak RSS (KiB), exit code, output."""

    __slots__ = ("seconds", "cpu", "maxrss_kib", "rc", "stdout", "stderr")

    def __init__(self, seconds, cpu=None, maxrss_kib=None, rc=0, stdout="", stderr=""):
        self.seconds = seconds
        self.cpu = cpu
        self.maxrss_kib = maxrss_kib
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr


def _exit_code(status):
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return 255


def _kill(p):
    p.ops_bench_killed = True
    try:
        p.kill()
    except OSError:
        pass


def spawn(argv, env=None, cwd=None, check=True, timeout=300.0):
    """Run ``argv`` to its end and return a :class:`Run`.

    stdout and stderr go to temporary files (created before the clock starts),
    so that the child never blocks on a pipe and the parent does no work while
    the child runs.  With ``check`` a non-zero exit raises :class:`BenchError`.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=env, cwd=cwd)
        killer = threading.Timer(timeout, _kill, (p,))    # sleeps: no CPU taken from the child
        killer.start()
        try:
            _, status, ru = os.wait4(p.pid, 0)
        finally:
            killer.cancel()
        t1 = time.perf_counter()
        p.returncode = _exit_code(status)
        if killer.finished.is_set() and getattr(p, "ops_bench_killed", False):
            raise BenchError("%s: no result after %g s (killed)" % (" ".join(argv[:4]), timeout))
        out.seek(0)
        err.seek(0)
        run = Run(t1 - t0, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, p.returncode,
                  out.read().decode("utf-8", "replace"), err.read().decode("utf-8", "replace"))
    if check and run.rc != 0:
        raise BenchError("%s exited %d: %s" % (" ".join(str(a) for a in argv[:6]), run.rc,
                                               run.stderr.strip()[-600:] or run.stdout.strip()[-600:]))
    return run


def interleave(fns, reps, warmup=1, progress=None):
    """Call each of ``fns`` in turn, ``warmup`` untimed rounds then ``reps``
    rounds (A B A B ... for two); return one list of results per function."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    results = [[] for _ in fns]
    for r in range(reps):
        for i, fn in enumerate(fns):
            results[i].append(fn())
        if progress:
            progress(r + 1, reps)
    return results


class Summary(object):
    """Median, minimum, maximum and quartiles of a list of numbers."""

    def __init__(self, values):
        values = sorted(values)
        if not values:
            raise ValueError("no values")
        self.values = values
        self.n = len(values)
        self.median = statistics.median(values)
        self.min = values[0]
        self.max = values[-1]
        if len(values) >= 2:
            q = statistics.quantiles(values, n=4, method="inclusive")
            self.q1, self.q3 = q[0], q[2]
        else:
            self.q1 = self.q3 = values[0]


def fmt_time(seconds):
    if seconds < 0.0995:
        return "%.1f ms" % (seconds * 1000)
    if seconds < 0.995:
        return "%.0f ms" % (seconds * 1000)
    return "%.2f s" % seconds


def fmt_range(lo, hi):
    """``lo–hi`` in one unit (the unit of ``hi``)."""
    if hi < 0.995:
        digits = 1 if hi < 0.0995 else 0
        return "%.*f–%.*f ms" % (digits, lo * 1000, digits, hi * 1000)
    return "%.2f–%.2f s" % (lo, hi)
