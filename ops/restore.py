"""The one path back: make a pod run a stored version (or nothing) again.

Used by a failed switch's rollback and by the recovery of a killed run
(:mod:`ops.transaction`), from whatever mix of two versions' units the host
has.  It mirrors the switch (:mod:`ops.switch`): first what changes no
running process (the bad version's units disabled, the good one's files and
drop-ins put back, its start units enabled, one ``daemon-reload``), then
only stops and starts: the bad version's other units stopped, the good
start units it shares restarted, the rest started; the bad-only unit files
are removed last (a second reload).  A ``.socket`` unit the good version
starts, whose installed file is already the good one's, is kept: not
disabled nor stopped (one it does not start is disabled and stopped as the
bad version's); when it is down (a service failing behind it trips its start or
trigger limit, and systemd fails the socket), it is reset and restarted
with the services.
"""

import os

from ops import actions as step, log, store
from ops.errors import Failed
from ops.ownership import Owner
from ops.systemd import waiting
from ops.switch import held_back
from ops.units import (all_units, install_unit, installed, read_bytes, remove_unit,
                       socket_services, start_units)

__all__ = ["restore"]


def _kept(layout, good, good_units):
    """The good version's start socket unit files already installed as it has them."""
    out = set()
    for u in good_units:
        if u.start and u.name.endswith(".socket"):
            data = read_bytes(layout.unit_path(u.name))
            if data is not None and data == read_bytes(os.path.join(good.units_dir, u.name)):
                out.add(u.name)
    return out


def _remove_bad(layout, name, good_units, bad_units, foreign):
    """Remove the files of the bad versions' units the good one has not
    (those that are the pod's); the names of those removed."""
    keep = {u.name for u in good_units}
    removed = []
    for u in bad_units:
        if u.name in keep:
            continue
        if foreign[u.name] is None:
            remove_unit(layout, u.name)
            removed.append(u.name)
        else:
            log.warn("%s is not what ops installed for %s: left in place" % (foreign[u.name], name))
    return removed


def _noted_removals(ctx, removed):
    step.did(ctx, *(step.RemoveUnit(n) for n in removed), rollback=True)
    return removed


def restore(ctx, name, good, bad):
    """Make pod ``name`` run ``good`` (a stored version, or nothing) again,
    whatever mix of units the versions in ``bad`` left installed."""
    layout, sd = ctx.layout, ctx.systemd
    good_units = good.bundle().units if good else ()
    bad_units = [u for b in bad if b is not None for u in b.bundle().units]
    owner = Owner(layout, name)
    foreign = {u.name: owner.foreign(u.name) for u in bad_units}
    timeout = getattr(ctx, "stop_timeout", None)
    kept = _kept(layout, good, good_units)
    kept_names = set(all_units([u for u in good_units if u.name in kept]))
    # a unit whose file is not the pod's (an administrator's, put there since) is left alone
    ours = [n for n in installed(layout, all_units(
        [u for u in bad_units if foreign[u.name] is None])) if n not in kept_names]
    starts = start_units(good_units)
    wrong = [(u.name, owner.foreign(u.name)) for u in good_units]
    wrong = [w for _, w in wrong if w is not None]
    if wrong:
        if ours:
            step.did(ctx, step.Stop(ours), step.Disable(ours), rollback=True)
        late = sd.stop_quietly(ours, timeout, waiting(timeout))
        sd.disable_quietly(ours)
        if late:
            step.stopped_late(ctx, late)
        _noted_removals(ctx, _remove_bad(layout, name, good_units, bad_units, foreign))
        raise Failed(wrong[0], "is not what ops installed for %s, and ops does not overwrite "
                     "it; move it away" % name)
    # while what runs still runs: files, links, one reload
    if ours:
        step.did(ctx, step.Disable(ours), rollback=True)
    sd.disable_quietly(ours)
    for u in good_units:
        if u.name not in kept:
            step.did(ctx, step.InstallUnit(u.name), rollback=True)
            install_unit(layout, good, u.name)
    step.did(ctx, *([step.Enable(starts)] if starts else []), step.DaemonReload(), rollback=True)
    sd.enable(starts)
    sd.daemon_reload()
    # the outage: stops and starts only
    sd.reset_failed(set(ours) | set(all_units(good_units)))
    states = sd.unit_states(sorted(kept_names))
    up = {n for n in kept_names if sd.up(states.get(n, {}))}
    stops = [n for n in ours if n not in starts]
    # a kept socket that is down (its service's start or trigger limit failed
    # it) is started again with the services
    restarts = [n for n in starts if n in ours or (n in kept_names and n not in up)]
    begins = [n for n in starts if n not in restarts and n not in up]
    services = socket_services(good_units, lambda u: read_bytes(os.path.join(good.units_dir,
                                                                             u.name)))
    # a socket is not started while its service runs (systemd refuses it):
    # the two are stopped with the bad units and started together
    stops, restarts, begins = held_back(services, starts, stops, restarts, begins, up)
    step.did(ctx, *([step.Stop(stops)] if stops else []),
             *([step.Restart(restarts)] if restarts else []),
             *([step.Start(begins)] if begins else []), rollback=True)
    late = sd.stop_quietly(stops, timeout, waiting(timeout))
    if restarts:
        late += sd.restart(restarts, timeout, waiting(timeout))
    sd.start(begins)
    lost = sd.down(sorted(up))
    if lost:        # failed meanwhile: once more, after the services behind them stop
        behind = [n for n in starts if n in {services.get(s) for s in lost}]
        step.did(ctx, *([step.Stop(behind)] if behind else []), step.Start(tuple(lost + behind)),
                 rollback=True)
        late += sd.stop_quietly(behind, timeout, waiting(timeout))
        sd.reset_failed(lost)
        sd.start(lost + behind)
    if late:
        step.stopped_late(ctx, late)
    if _noted_removals(ctx, _remove_bad(layout, name, good_units, bad_units, foreign)):
        step.did(ctx, step.DaemonReload(), rollback=True)
        sd.daemon_reload()
    if starts:
        step.did(ctx, step.Settle(starts), rollback=True)
        down = sd.settle(starts, ctx.settle)
        if down:
            raise Failed(down[0], "is not active after the rollback")
    step.did(ctx, step.SetCurrent(good.name, good.version) if good else step.ClearCurrent(name),
             rollback=True)
    if good is not None:
        store.set_current(layout, good)
    else:
        store.clear_current(layout, name)
