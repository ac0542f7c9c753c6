"""The switch from one version's units to another's, as a list of steps.

Everything that can be done while the previous version still runs comes
first: disable its units, install the new files and drop-ins, enable the new
start units, one ``daemon-reload``.  Then only what stops the old and starts
the new: ``stop`` of the old units the new version does not start,
``restart`` of those it starts again (systemd stops the old process by the
newly loaded unit, then starts the new one), ``start`` of the new ones.
Settle, health check, and only then the old-only unit files are removed
(with a second reload, outside the outage).

A ``.socket`` unit that the new version starts, whose file is byte-identical
in both versions and on disk, and that is up, is *kept*: neither disabled,
reinstalled, stopped, restarted nor started, so that it keeps listening while
the service behind it is swapped.  One the new version does not start is
disabled and stopped like any other unit of the old version.
"""

import os

from ops.actions import (DaemonReload, Disable, Enable, HealthCheck, InstallUnit, RemoveUnit,
                         Restart, SetCurrent, Settle, Start, Stop)
from ops.layout import template_file
from ops.units import all_units, dropin_text, read_bytes, same_file, start_units

__all__ = ["switch_actions", "kept_sockets", "held_back"]


def kept_sockets(sd, layout, target_units, prev_units, target_text, prev_text):
    """The ``.socket`` unit files the switch keeps listening: started by the
    target version, in both versions, with the same bytes in both (``target_text(u)``,
    ``prev_text(u)``: a unit's bytes, None when unknown) and on disk, and
    up (every instance), as systemd ``sd`` says.  A socket that is down is
    restarted with its service instead (systemd refuses to start a socket
    while its service runs: a restart of both in one job orders them)."""
    prev = {u.name: u for u in prev_units or ()}
    same = []
    for u in target_units:
        if not (u.start and u.name.endswith(".socket")) or u.name not in prev:
            continue
        data = target_text(u)
        if data is not None and data == prev_text(prev[u.name]) \
                and data == read_bytes(layout.unit_path(u.name)):
            same.append(u)
    states = sd.unit_states(all_units(same))
    return frozenset(u.name for u in same
                     if all(sd.up(states.get(n, {})) for n in u.unit_names))


def held_back(services, starts, stops, restarts, fresh, running=frozenset()):
    """(stops, restarts, fresh) again, with each socket to start or restart
    whose service (``services[socket]``) runs (``running``) or is restarted
    moved, with that service, from ``restarts`` to ``stops`` and ``fresh``:
    systemd refuses to start a socket while its service runs, and one
    ``systemctl restart`` of both starts the socket first.  Stopped before,
    they are started together (the socket first: systemd orders it).  A
    socket already up is not started.  Tuples, in ``starts``' order."""
    busy = set(restarts) | set(running)
    held = set()
    for s in tuple(restarts) + tuple(fresh):
        service = services.get(s)
        if service is not None and service in busy and s not in running:
            held.update((s, service))
    if not held:
        return tuple(stops), tuple(restarts), tuple(fresh)
    return (tuple(stops) + tuple(n for n in starts if n in held and n in busy),
            tuple(n for n in restarts if n not in held),
            tuple(n for n in starts if n in held or n in fresh))


def _installed_same(layout, target, unit, stored_path, read):
    """Whether ``unit`` is installed as the target version installs it: its
    file the stored copy's bytes, and for a service the drop-in the very text
    ops writes for that version (``status`` checks the same)."""
    path = layout.unit_path(unit.name)
    if not (os.path.isfile(path) and not os.path.islink(path)
            and same_file(stored_path, path, read)):
        return False
    text = dropin_text(layout, target[0], target[1], unit.name)
    return text is None or read[layout.dropin_path(unit.name)] == text.encode()


def switch_actions(layout, target, target_units, prev_units, converge_paths=None,
                   health=None, kept=frozenset(), services=None, running=frozenset()):
    """The switch from the previous version's units to the target's.

    ``converge_paths`` (unit -> stored file) means target == previous: only
    missing or changed files are installed, nothing is stopped (but what
    :func:`held_back` says), and a unit in ``running`` whose file or drop-in
    is installed again is restarted.  ``health``: the target's health check, run after
    the settle (not offline: nothing runs).  ``kept``: socket unit files left
    listening (:func:`kept_sockets`).  ``services``: {socket: the service it
    starts} of the target (:func:`ops.units.socket_services`); ``running``:
    the target's start units that are up, when converging."""
    acts = []
    new_names = {u.name for u in target_units}
    kept_names = set(all_units([u for u in target_units if u.name in kept]))
    prev_all = [n for n in all_units(prev_units or ()) if n not in kept_names]
    starts = start_units(target_units)
    if prev_all:
        acts.append(Disable(tuple(prev_all)))
    read = {}
    if converge_paths is not None:     # each directory walked once for all its files
        from ops.confine import read_files
        read = read_files([p for u in target_units for p in (
            converge_paths[u.name], layout.unit_path(u.name))
            + ((layout.dropin_path(u.name),) if u.name.endswith(".service") else ())])
    installs = [u for u in target_units if u.name not in kept and (
        converge_paths is None
        or not _installed_same(layout, target, u, converge_paths[u.name], read))]
    for u in installs:
        acts.append(InstallUnit(u.name))
    if starts:
        acts.append(Enable(starts))
    # enable and disable do not reload (--no-reload): one reload, after every
    # file and link is in place, while the previous version still runs
    if installs or prev_units or starts:
        acts.append(DaemonReload())
    # the outage: nothing but stops and starts
    stops = tuple(n for n in prev_all if n not in starts)
    restarts = tuple(n for n in starts if n in prev_all)
    if converge_paths is not None:     # what runs from a file or drop-in rewritten: again
        rewritten = {u.name for u in installs}
        restarts = tuple(n for n in starts if n in running and template_file(n) in rewritten)
    fresh = tuple(n for n in starts if n not in restarts and n not in kept_names)
    stops, restarts, fresh = held_back(services or {}, starts, stops, restarts, fresh, running)
    if stops:
        acts.append(Stop(stops))
    if restarts:
        acts.append(Restart(restarts))
    if fresh:
        acts.append(Start(fresh))
    if starts:
        acts.append(Settle(starts))
    if health is not None and not layout.offline:
        acts.append(HealthCheck(health))
    removed = [u.name for u in prev_units or () if u.name not in new_names]
    for name in removed:
        acts.append(RemoveUnit(name))
    if removed:
        acts.append(DaemonReload())
    acts.append(SetCurrent(*target))
    return tuple(acts)
