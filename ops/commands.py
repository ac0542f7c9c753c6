"""The commands, each the same short sequence: validate, lock, recover,
plan, execute, report.  With ``--dry-run`` the lock, the recovery and the
execution are left out, and the plan is the report.

The planning is :mod:`ops.plan`'s, the execution :mod:`ops.stage`'s and
:mod:`ops.execute`'s; each command returns a :class:`~ops.result.Result`
for :mod:`ops.cli` to print.
"""

import os

from ops import log, store, transaction
from ops.errors import BundleError, Refused, about
from ops.result import Result

__all__ = ["check", "deploy", "redeploy", "undeploy", "pin", "list_versions", "cleanup", "status",
           "history", "diff"]


# The modules a command needs are imported inside it, so that `list` (run on
# every Ansible play) loads only the store.

def check(host, bundle_arg):
    from ops import bundle as bundle_mod
    from ops.verify import verify_units
    b = bundle_mod.load(bundle_arg, insecure_images=host.insecure_images)
    verify_units(b)
    return b


class _Locked:
    """Take the lock and recover interrupted runs (``unsettled``: the pods
    whose interrupted run could not be settled); --dry-run does neither,
    and says what the next mutating command would recover."""

    def __init__(self, host, timeout, own=()):
        self.host = host
        self.own = own
        from ops.lock import Lock
        self.lock = None if host.dry_run else Lock(host.layout.lock_path, timeout)
        self.unsettled = set()

    def __enter__(self):
        if self.lock is None:
            for j in transaction.journals(self.host.layout):
                if j.get("unreadable"):
                    log.info("note: %s is left by an interrupted run and cannot be trusted (%s)"
                             % (j["path"], j["unreadable"]))
                    continue
                if j["in_progress"]:
                    log.info("note: %s is %s, run by PID %d now (it holds the lock)"
                             % (j["pod"], j["command"] + "ing", j["in_progress"]))
                    continue
                log.info("note: %s is left by an interrupted run; the next mutating command "
                         "rolls %s back to %s (dry run: nothing recovered)"
                         % (j["path"], j["pod"], j.get("from")))
            return self
        self.lock.acquire()
        try:
            self.unsettled = transaction.recover(self.host, self.own)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, kind, err, tb):
        if isinstance(err, Exception):
            # what the command did before it failed (and its rollback's steps):
            # the actions of its failure result
            err.actions = list(self.host.done)
        if self.lock is not None:
            self.lock.release()


def _about(host, name, version):
    """Errors of the command are about pod ``name``; ``previous``: its
    current version as the command starts."""
    return about(name, version, store.current_number(host.layout, name))


def _result(plan):
    return Result(plan.command, plan.name, plan.version, plan.previous, plan.changed,
                  plan.actions)


def deploy(host, bundle_arg, lock_timeout):
    from ops import bundle as bundle_mod
    from ops.plan import plan_deploy
    if not os.path.lexists(bundle_arg):
        _hint_redeploy(host, bundle_arg)
    b = bundle_mod.load(bundle_arg, insecure_images=host.insecure_images)
    with _about(host, b.name, b.version):
        if b.images:
            host.rkt   # refuse (exit 2) when rkt is missing, before even the lock
        with _Locked(host, lock_timeout, {b.name}):
            plan = plan_deploy(host, b)
            if not host.dry_run and plan.changed:
                from ops.execute import apply
                from ops.stage import Stager
                current = store.current_version(host.layout, b.name)
                apply(host, plan, Stager(host, b, plan).run(), current)
            return _result(plan)


def _hint_redeploy(host, arg):
    """`deploy NAME:VERSION` where no such path exists but that pod (or
    version) is stored: say that `redeploy` is the command."""
    try:
        name, version = store.parse_ref(arg)
    except Refused:
        return
    if version is not None and store.get(host.layout, name, version) is not None:
        raise BundleError(arg, "no such bundle; to run stored version %d of %s again: "
                          "ops redeploy %s" % (version, name, arg))
    stored = [v.version for v in store.versions(host.layout, name)]
    if version is not None and stored:
        raise BundleError(arg, "no such bundle, and version %d of %s is not stored (stored: %s); "
                          "deploy its bundle, or ops redeploy %s:VERSION" % (
                              version, name, " ".join(map(str, stored)), name))
    if version is None and stored:
        raise BundleError(arg, "no such bundle; pod %s is stored: ops redeploy %s:VERSION "
                          "(or ops redeploy %s: the last good version before the current)"
                          % (name, name, name))


def redeploy(host, ref, lock_timeout):
    from ops.plan import plan_redeploy
    name, version = store.parse_ref(ref)
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        plan = plan_redeploy(host, name, version)
        if not host.dry_run and plan.changed:
            from ops.execute import apply
            apply(host, plan, store.get(host.layout, name, plan.version),
                  store.current_version(host.layout, name))
        return _result(plan)


def undeploy(host, ref, remove, lock_timeout):
    from ops.plan import plan_undeploy
    name, version = store.parse_ref(ref)
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        plan = plan_undeploy(host, name, version, remove)
        if not host.dry_run and plan.changed:
            from ops.execute import apply
            apply(host, plan, None, store.current_version(host.layout, name))
            if remove and version is None:
                log.info("the history of %s is kept: ops history %s" % (name, name))
        return _result(plan)


def pin(host, ref, on, lock_timeout):
    """``ops pin NAME:VERSION`` (``on``) or ``ops unpin NAME:VERSION``."""
    from ops.plan import plan_pin
    name, version = store.parse_ref(ref)
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        plan = plan_pin(host, name, version, on)
        if not host.dry_run and plan.changed:
            from ops.execute import apply
            apply(host, plan)
        return _result(plan)


def cleanup(host, names, keep, lock_timeout):
    from ops.plan import Plan, check_cleanup_names, plan_cleanup
    check_cleanup_names(names)
    with _Locked(host, lock_timeout) as locked:
        plan = plan_cleanup(host, names, keep, locked.unsettled)
        result = Result("cleanup", names[0] if len(names) == 1 else None, None,
                        changed=plan.changed, actions=plan.actions)
        verb = "would remove" if host.dry_run else "removed"
        for name, versions, kept, acts in plan.pods:
            result.extra["removed"][name] = versions
            result.extra["kept"][name] = [{"version": v, "why": why} for v, why in kept]
            if versions and not host.dry_run:
                from ops.execute import apply
                with about(name):
                    apply(host, Plan("cleanup", name, None, None, removals=acts))
            result.lines.append("cleanup %s: %s%s" % (
                name, "%s %s" % (verb, " ".join(map(str, versions))) if versions else "unchanged",
                "; kept " + ", ".join("%d (%s)" % k for k in kept) if kept else ""))
        return result


def list_versions(layout, name=None, reasons=False):
    """Every stored version, from files only (through each pod's index).
    Online, the current rows say whether the pod runs (one ``systemctl show``);
    with ``reasons``, failed rows carry the reason kept in their state.json."""
    from ops import index
    if name is not None:
        from ops.errors import UsageError
        if store.parse_ref(name)[1] is not None:
            raise UsageError(name, "list takes a pod name, not NAME:VERSION: ops list %s "
                             "lists every stored version of %s"
                             % ((name.partition(":")[0],) * 2))
    journals = transaction.journals(layout)
    interrupted = {j["pod"] for j in journals if not j["in_progress"]}
    going = {}
    if journals:          # only then: `list` runs on every Ansible play
        from ops.transaction import running
        going = running(layout)
    rows = []
    for pod in ([name] if name else store.pods(layout)):
        try:
            cur = store.current_number(layout, pod)
            versions = index.read(layout.pod_dir(pod))
        except Refused as e:
            if name:
                raise
            # one pod's link is that pod's problem: the others are listed
            log.warn("%s; the versions of pod %s are not listed" % (e, pod))
            continue
        for version, outcome, deployed_at, pinned in versions:
            rows.append({"name": pod, "version": version, "current": cur == version,
                         "outcome": outcome, "deployed_at": deployed_at,
                         "interrupted": pod in interrupted, "pinned": pinned,
                         "running": None, "in_progress": going.get(pod)})
    if not layout.offline and any(r["current"] for r in rows):
        from ops.status import mark_running
        mark_running(layout, rows)
    if reasons:
        from ops.status import failure_reasons
        failure_reasons(layout, rows)
    return rows


def history(layout, name):
    """The events of pod ``name``, oldest first (:mod:`ops.history`)."""
    from ops import history as hist
    from ops.errors import UsageError
    if store.parse_ref(name)[1] is not None:
        raise UsageError(name, "history takes a pod name, not NAME:VERSION")
    events = hist.read(layout, name)
    if not events and not hist.exists(layout, name) and not store.versions(layout, name):
        raise Refused(name, "no such pod: nothing stored and no history (see `ops list`)")
    return events


def status(host, name=None, health=False):
    from ops.status import status as pod_status
    return pod_status(host, name, health)


def diff(layout, ref, target, insecure_images=False):
    """What changes from stored version ``ref`` to ``target`` (:mod:`ops.diff`)."""
    from ops import diff as diff_mod
    return diff_mod.diff(layout, ref, target, insecure_images)
