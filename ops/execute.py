"""Carrying out a plan: its switch under a transaction, then its removals.

:func:`apply` is the one way a plan changes the host after staging: the
``switch`` steps run inside a :class:`~ops.transaction.Transaction` (journal
first, rollback of the whole pod on any failure, commit at the end), then
the ``removals`` and ``marks``, which are not undone: once they begin, ops
finishes them.  Each step is dispatched on its class (:mod:`ops.actions`).
"""

import gc
import os

from ops import atomic, index, log, store
from ops.actions import (ClearCurrent, DaemonReload, Disable, Enable, HealthCheck, InstallUnit,
                         Pin, RemoveImages, RemoveUnit, RemoveVersion, RemoveVolumes, Restart,
                         SetCurrent, Settle, Start, Stop, Unpin)
from ops.errors import Failed, OpsError
from ops.systemd import waiting
from ops.actions import did, stopped_late
from ops.transaction import Transaction, irreversible
from ops.units import install_unit, installed, pod_env, remove_unit

__all__ = ["apply", "Executor"]


def apply(ctx, plan, target=None, previous=None):
    """Run ``plan``: its switch towards stored version ``target`` (None:
    nothing, as undeploy) from ``previous``, then its removals and marks.
    Whatever happens, the pod's history gets one event (:mod:`ops.history`)."""
    gc.enable()          # off while ops only looked (see cli.main)
    try:
        _apply(ctx, plan, target, previous)
    except BaseException as e:
        rolled_back = getattr(e, "rolled_back", False)
        _record(ctx, plan, target, previous, "rolled back" if rolled_back else "failed",
                str(e) if isinstance(e, Exception) else "interrupted")
        raise
    _record(ctx, plan, target, previous,
            "removed" if plan.removals and plan.command != "deploy" else "ok")


def _record(ctx, plan, target, previous, outcome, reason=None):
    from ops import history
    removed = [a.version for a in plan.removals if isinstance(a, RemoveVersion)]
    if plan.switch:
        frm, to = (previous.version if previous else None), (target.version if target else None)
    else:
        frm, to = None, plan.version if plan.marks else None
    command = plan.command
    if plan.marks:
        command = plan.marks[0].verb        # pin or unpin
    try:
        history.record(ctx.layout, plan.name, command, outcome, frm, to, reason, removed)
    except OSError as e:
        history.warn_not_written(plan.name, e)


def _apply(ctx, plan, target, previous):
    if plan.switch:
        ex = Executor(ctx, plan.name, target)
        with Transaction(ctx, plan.command, plan.name, previous, target):
            for a in plan.switch:
                ex.run(a)
    if plan.removals or plan.marks:
        ex = Executor(ctx, plan.name, None)
        with irreversible():
            for a in plan.removals + plan.marks:
                ex.run(a)


class Executor:
    """Runs steps for pod ``name`` towards stored version ``target``."""

    def __init__(self, ctx, name, target):
        self.ctx = ctx
        self.layout = ctx.layout
        self.sd = ctx.systemd
        self.name = name
        self.target = target
        self.started = []               # the units the switch started (a health check's suspects)
        self.steps = {
            Stop: self.stop, Disable: self.disable, RemoveUnit: self.remove_unit,
            InstallUnit: self.install_unit, DaemonReload: self.daemon_reload,
            Enable: self.enable, Restart: self.restart, Start: self.start, Settle: self.settle,
            HealthCheck: self.health_check, SetCurrent: self.set_current,
            ClearCurrent: self.clear_current, RemoveVersion: self.remove_version,
            RemoveVolumes: self.remove_volumes, RemoveImages: self.remove_images,
            Pin: self.pin, Unpin: self.unpin,
        }

    def run(self, a):
        log.info(a.describe())
        did(self.ctx, a)
        self.steps[type(a)](a)

    # -- the switch --------------------------------------------------------------

    def stop(self, a):
        timeout = self.ctx.stop_timeout
        late = self.sd.stop(installed(self.layout, a.units), timeout, waiting(timeout))
        if late:
            stopped_late(self.ctx, late)

    def disable(self, a):
        self.sd.disable(installed(self.layout, a.units))

    def remove_unit(self, a):
        remove_unit(self.layout, a.unit)

    def install_unit(self, a):
        install_unit(self.layout, self.target, a.unit)

    def daemon_reload(self, a):
        self.sd.daemon_reload()

    def enable(self, a):
        self.sd.enable(a.units)

    def restart(self, a):
        timeout = self.ctx.stop_timeout
        try:
            late = self.sd.restart(a.units, timeout, waiting(timeout))
        except Failed:
            raise
        except OpsError as e:
            self._started(a.units, e)
        else:
            if late:
                stopped_late(self.ctx, late)

    def start(self, a):
        self.started = list(a.units)
        try:
            self.sd.start(a.units)
        except OpsError as e:
            self._started(a.units, e)

    def _started(self, units, e):
        """A start (or restart) that systemctl failed: the first unit down, else ``e``."""
        down = self.sd.down(units)
        if down:
            raise self._unit_failure(down[0], lambda state: "failed to start")
        raise e

    def settle(self, a):
        down = self.sd.settle(a.units, self.ctx.settle)
        if down:
            raise self._unit_failure(down[0], lambda state: "%s after start (settle time %g s)"
                                     % (state, self.ctx.settle))

    def health_check(self, a):
        from ops import health
        try:
            health.check(self.ctx, self.target, a.check,
                         dict(pod_env(self.layout, self.target.name, self.target.version)))
        except Failed:
            # a server that went down after the settle fails its check too: then why it went
            # (its own lines) is the reason, not the check's refused connection
            down = self.sd.down(self.started) if self.started else []
            if down:
                raise self._unit_failure(down[0], lambda state: "%s after start, its health check failed" % state)
            raise

    def _unit_failure(self, unit, say):
        """The failure of ``unit``: ``say(its state)``, its last journal lines
        and its systemd Result, read now (the rollback resets and removes it)."""
        props = self.sd.unit_states([unit]).get(unit, {})
        why = self.sd.why(unit)
        what = say(props.get("ActiveState") or props.get("UnitFileState") or "inactive")
        return Failed(unit, what + (": " + why if why else ""), unit=unit,
                      result=props.get("Result") or None, journal=why or None)

    def set_current(self, a):
        store.set_current(self.layout, self.target)

    def clear_current(self, a):
        store.clear_current(self.layout, a.name)

    # -- removals and marks ----------------------------------------------------

    def remove_version(self, a):
        store.remove_tree(a.path)
        atomic.remove_quietly(a.path + index.PINNED)     # a stale pin (pins are refused)
        store.remove_if_empty(os.path.dirname(a.path))  # the pod's directory, once empty

    def remove_volumes(self, a):
        store.remove_tree(a.path)
        store.remove_if_empty(os.path.dirname(a.path))

    def remove_images(self, a):
        try:
            self.ctx.rkt.remove(a.ids)
        except OpsError as e:
            # the versions are gone already; images are rkt's cache, and
            # `rkt image gc` reclaims them: a warning, not a failure
            log.warn("images not removed from rkt's store (%s): %s" % (" ".join(a.ids), e))

    def pin(self, a):
        atomic.write_text(a.path, "pinned at %s\n" % store.now())

    def unpin(self, a):
        atomic.unlink(a.path)
