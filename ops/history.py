"""`ops history`: every change made to a pod, oldest first.

One JSON object per line in etc/ops/history/NAME.jsonl, beside the store and
not in any version's directory, so it outlives the versions it mentions
(cleanup, ``undeploy --remove``).  Each event is appended (``O_APPEND``,
fsynced) by :func:`record`, which only :func:`ops.execute.apply` (every
change a command makes) and :func:`ops.transaction.recover` (the rollback of
an interrupted run) call; ``--dry-run`` never gets there.  Past
``MAX_ENTRIES`` lines or ``MAX_BYTES``, the file is rewritten atomically
with its newest entries only.
"""

import errno
import json
import os

from ops import atomic, store

__all__ = ["record", "read", "who", "warn_not_written", "MAX_ENTRIES", "MAX_BYTES"]

MAX_ENTRIES = 1000
MAX_BYTES = 1 << 20


def path(layout, name):
    return os.path.join(layout.history_dir, name + ".jsonl")


def who():
    """Who runs ops: $SUDO_USER, else the name of the effective uid, else the uid."""
    from ops import environment
    from ops.errors import UsageError, clip
    try:
        sudo = environment.get("SUDO_USER")
    except UsageError:        # spaces or NUL in it: not a user name sudo sets
        sudo = None
    if sudo:
        return clip(sudo, 64)
    uid = os.geteuid()
    try:
        import pwd
        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def record(layout, name, command, outcome, previous=None, target=None, reason=None,
           removed=()):
    """Append one event of pod ``name``: ``command`` took it from version
    ``previous`` to ``target`` (numbers or None) with ``outcome``."""
    from ops.errors import MESSAGE_MAX, clip
    event = {"at": store.now(), "command": command, "from": previous, "to": target,
             "outcome": outcome, "reason": clip(reason, MESSAGE_MAX, tail=False),
             "by": who(), "removed": sorted(removed)}
    line = (json.dumps(event, sort_keys=True) + "\n").encode("utf-8")
    p = path(layout, name)
    from ops import confine
    from ops.errors import Refused
    try:
        fd = confine.open_file(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644, create_dirs=True)
    except Refused as e:
        # the change is made already: like a full disk, a warning (nothing is written)
        raise OSError(errno.ELOOP, e.what, e.where)
    try:
        os.write(fd, line)
        os.fsync(fd)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    if size > MAX_BYTES or size > MAX_ENTRIES * 64:     # else it cannot hold too many lines
        _trim(p)


def warn_not_written(name, err):
    """Warn that :func:`record` failed with the OSError ``err`` (the change
    is made already: like a full disk, not an error), naming the file."""
    from ops import log
    where = "%s: " % err.filename if err.filename else ""
    log.warn("the history of %s was not written: %s%s" % (name, where, err.strerror or err))


def _trim(p):
    from ops import confine
    lines = confine.read_file(p).splitlines(keepends=True)
    kept, size = [], 0
    for line in reversed(lines):
        if len(kept) == MAX_ENTRIES or size + len(line) > MAX_BYTES:
            break
        kept.append(line)
        size += len(line)
    if len(kept) < len(lines):
        atomic.write_bytes(p, b"".join(reversed(kept)))


def read(layout, name):
    """The events of pod ``name``, oldest first ([] when none); a line that
    is not a JSON object (torn by a crash) is skipped."""
    from ops import confine, strict_json
    try:       # ops's own file: no link followed, no FIFO waited on, bounded
        raw = confine.read_file(path(layout, name), MAX_BYTES * 2)
    except FileNotFoundError:
        return []
    out = []
    for line in raw.splitlines():
        try:       # bounded too: a line nested a million deep is a torn line
            event = strict_json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            removed = event.get("removed")      # version numbers, unless the line was edited
            if not (isinstance(removed, list) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in removed)):
                event["removed"] = []
            out.append(event)
    return out


def exists(layout, name):
    return os.path.isfile(path(layout, name))
