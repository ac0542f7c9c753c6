"""`ops logs`: the journal of every unit of a pod's version, as journalctl shows it.

One ``journalctl --no-pager -n N -u UNIT ...`` for every unit and instance of
the current version (or of ``--version V``).  Text output is journalctl's own:
ops execs it, so ``-f`` follows until Ctrl-C and the exit status is
journalctl's.  ``--json`` reads ``journalctl -o json`` (at most ``MAX_LINES``
entries) into a list of objects.  Offline (``--root``) there is no journal of
the image's to read: refused.
"""

import os

from ops import store
from ops.errors import Refused, UsageError

__all__ = ["units", "argv", "run", "entries", "MAX_LINES"]

MAX_LINES = 10000


def units(layout, name, version=None):
    """The stored version (current, or ``version``) and every unit name of it."""
    if store.parse_ref(name)[1] is not None:
        raise UsageError(name, "logs takes a pod name; a stored version is --version V: ops logs "
                         "%s --version %s" % tuple(name.split(":", 1)))
    if layout.offline:
        raise UsageError(name, "logs reads this host's journal, and --root %s is an image with no "
                         "running systemd (journalctl --directory=DIR reads a copied journal)"
                         % layout.root)
    if version is None:
        sv = store.current_version(layout, name)
        if sv is None:
            raise Refused(name, "no current version (ops list %s; ops logs %s --version V reads "
                          "a stored one's units)" % (name, name))
    else:
        sv = store.get(layout, name, version)
        if sv is None:
            raise Refused("%s:%d" % (name, version), "no such stored version (see ops list %s)"
                          % name)
    from ops.units import all_units
    return sv, all_units(sv.bundle().units)


def argv(names, lines, follow=False, json=False):
    out = ["journalctl", "--no-pager", "-n", str(min(lines, MAX_LINES) if json else lines)]
    if json:
        out += ["-o", "json"]
    for n in names:
        out += ["-u", n]
    if follow:
        out.append("-f")
    return out


def run(names, lines, follow):
    """Exec journalctl (text output): does not return."""
    import sys
    from ops import log
    args = argv(names, lines, follow)
    log.command(args)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvp(args[0], args)
    except FileNotFoundError:
        raise UsageError("journalctl", "command not found (ops logs needs systemd's journal)")


def entries(names, lines):
    """The newest ``lines`` (at most MAX_LINES) entries of the units, as dicts."""
    import json
    from ops.runner import run as run_command
    out = []
    for line in run_command(argv(names, lines, json=True)).stdout.splitlines():
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if isinstance(e, dict):
            out.append(e)
    return out[-MAX_LINES:]
