"""The journal of a switch: var/lib/ops/journal/NAME.json.

Written (and fsynced) *before* the first change to what runs, removed once the
pod is whole again on one version.  Its presence means a run was interrupted
between those points; the next mutating command rolls the pod back to the
journal's ``from`` version (or to nothing).  Like Mercurial's journal it is the
single source of truth about an interrupted run.

It records where the switch goes, not each step: recovery does not need the
steps (it puts the ``from`` version back whole, whatever was done), and one
fsynced write per switch keeps a deploy cheap.

What it survives: a killed ops at any point (SIGKILL, OOM, power loss after
the journal reached the disk).  What it does not: someone editing units or
``/etc/ops`` by hand while a journal is pending.
"""

import os
import time

from ops import atomic

__all__ = ["Journal", "pending"]


class Journal:
    def __init__(self, layout, name, from_version, to_version, command):
        self.path = layout.journal_path(name)
        self.data = {"pod": name, "from": from_version, "to": to_version,
                     "command": command, "pid": os.getpid(),
                     "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def open(self):
        self._write()
        return self

    def _write(self):
        import json
        atomic.write_text(self.path, json.dumps(self.data, indent=1) + "\n")

    def close(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        atomic.fsync_dir(os.path.dirname(self.path))


COMMANDS = ("deploy", "redeploy", "undeploy")


def pending(layout):
    """Journals left by interrupted runs: a list of their dicts (sorted by pod).

    ``pod`` is always the file's name; a journal that cannot be read, or that
    does not say plainly which pod it is about and where it goes, has
    ``unreadable`` set to why: recovery must not guess what to roll back
    (see :func:`ops.recovery.recover`)."""
    out = []
    try:
        names = sorted(os.listdir(layout.journal_dir))
    except OSError:
        return out
    names = [n for n in names if n.endswith(".json") and not n.startswith(atomic.TMP_PREFIX)]
    if names:
        import json        # only then: `list` of a host with no journal never needs it
    for n in names:
        p = os.path.join(layout.journal_dir, n)
        try:
            with open(p, "rb") as f:
                raw = f.read(1 << 20)
            data = json.loads(raw.decode("utf-8")) if raw.strip() else None
            why = _problem(data, n[:-5]) if raw.strip() else "the file is empty"
        except (OSError, ValueError) as e:
            data, why = {}, "not a JSON object (%s)" % (getattr(e, "strerror", None)
                                                       or str(e) or "empty")
        if why:
            data = {"pod": n[:-5], "from": None, "to": None, "command": "?",
                    "unreadable": why}
        data["path"] = p
        out.append(data)
    return out


def _problem(data, stem):
    """Why the journal ``data`` of file ``stem``.json cannot be trusted, or None."""
    from ops.bundle import NAME_RE
    if not isinstance(data, dict):
        return "not a JSON object"
    if not NAME_RE.fullmatch(stem) or len(stem) > 128:
        return "its file name is not a pod name"
    if data.get("pod") != stem:
        return "it names pod %r, not %r as its file name does" % (data.get("pod"), stem)
    for key in ("from", "to"):
        v = data.get(key, "missing")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not 0 <= v < 2 ** 63):
            return "%r is not a version number or null" % key
    if data.get("command") not in COMMANDS:
        return "\"command\" is not one of %s" % ", ".join(COMMANDS)
    return None
