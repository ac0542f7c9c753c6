"""Whether a journal belongs to a run that is still going on, asked without
taking or waiting for the lock (`status`, `list`, ``--dry-run``).

A journal is in progress when the lock file names its writer as the holder
(:mod:`ops.lock` writes the PID there once it holds the lock), that process
is alive, and it started before the journal was written (so a PID reused
by another process since does not count).  Any other journal was left by a
run that died: it is interrupted, and the next mutating command rolls it
back.
"""

import os
import time

__all__ = ["writer_alive", "describe"]


def describe(p):
    """``deploying 2 (pid 123, since 2026-12-01T09:30:00Z)``."""
    return "%sing%s (pid %d, since %s)" % (p["command"], "" if p["to"] is None
                                           else " %s" % p["to"], p["pid"], p["started_at"])


def writer_alive(layout, journal):
    """The journal's writer's PID when that run still holds the lock, else None."""
    pid = journal.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return None
    from ops import confine
    try:
        holder = confine.read_file(layout.lock_path, 32).decode("ascii", "replace").strip()
    except OSError:
        return None
    if holder != str(pid):
        return None
    started = _started(pid)
    written = journal.get("started_at")
    if started is None or not isinstance(written, str) or len(written) != 20:
        return None
    # both as ops writes times (ISO 8601, UTC, whole seconds), which sort as text
    return pid if time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started - 1)) <= written \
        else None


def _started(pid):
    """When process ``pid`` started (seconds since the epoch), or None when
    there is no such process."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("ascii", "replace")
        with open("/proc/stat", "rb") as f:
            boot = next(int(line.split()[1]) for line in f.read().decode().splitlines()
                        if line.startswith("btime "))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    fields = stat[stat.rfind(")") + 2:].split()
    try:
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (IndexError, ValueError):
        return None
