"""The commands, each a short list of steps: validate, lock, recover, plan,
then stage, switch and commit (or only report the plan with --dry-run)."""

import os

from ops import journal, log, store
from ops.errors import about
from ops.result import Result

__all__ = ["check", "deploy", "redeploy", "undeploy", "pin", "list_versions", "cleanup", "status"]


# The modules a command needs are imported inside it, so that `list` (run on
# every Ansible play) loads only the store.

def _deploy():
    from ops import deploy
    return deploy


def check(host, bundle_arg):
    from ops import bundle as bundle_mod
    from ops.verify import verify_units
    b = bundle_mod.load(bundle_arg, insecure_images=host.insecure_images)
    verify_units(b)
    return b


class _Locked:
    """Take the lock and recover interrupted runs; --dry-run does neither."""

    def __init__(self, host, timeout, own=()):
        self.host = host
        self.own = own
        from ops.lock import Lock
        self.lock = None if host.dry_run else Lock(host.layout.lock_path, timeout)

    def __enter__(self):
        self.left = set()       # pods whose interrupted runs are still not settled
        if self.lock is None:
            for j in journal.pending(self.host.layout):
                if j.get("unreadable"):
                    log.info("note: %s is left by an interrupted run and cannot be trusted (%s)"
                             % (j["path"], j["unreadable"]))
                    continue
                log.info("note: %s is left by an interrupted run; the next mutating command "
                         "rolls %s back to %s (dry run: nothing recovered)"
                         % (j["path"], j["pod"], j.get("from")))
            return self
        self.lock.acquire()
        try:
            from ops.recovery import recover
            self.left = recover(self.host, self.own)
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, *exc):
        if self.lock is not None:
            self.lock.release()


def _about(host, name, version):
    """Errors of the command are about pod ``name``; ``previous``: its
    current version as the command starts."""
    return about(name, version, store.current_number(host.layout, name))


def _result(plan):
    return Result(plan.command, plan.name, plan.version, plan.previous,
                  plan.changed, list(plan.actions))


def deploy(host, bundle_arg, lock_timeout):
    from ops import bundle as bundle_mod
    from ops.plan import plan_deploy
    if not os.path.lexists(bundle_arg):
        _hint_redeploy(host, bundle_arg)
    b = bundle_mod.load(bundle_arg, insecure_images=host.insecure_images)
    with _about(host, b.name, b.version):
        if b.images:
            host.rkt   # refuse (exit 2) when rkt is missing, before even the lock
    with _about(host, b.name, b.version), _Locked(host, lock_timeout, {b.name}):
        plan = plan_deploy(host, b)
        if not host.dry_run and plan.changed:
            current = store.current_version(host.layout, b.name)
            sv = _deploy().Stager(host, b, plan).run()
            _deploy().transact(host, plan, sv, current)
        return _result(plan)


def _hint_redeploy(host, arg):
    """`deploy NAME:VERSION` where no such path exists but that pod (or
    version) is stored: say that `redeploy` is the command."""
    from ops.errors import BundleError, Refused
    try:
        name, version = store.parse_ref(arg)
    except Refused:
        return
    if version is not None and store.get(host.layout, name, version) is not None:
        raise BundleError(arg, "no such bundle; to run stored version %d of %s again: "
                          "ops redeploy %s" % (version, name, arg))
    if version is None and store.versions(host.layout, name):
        raise BundleError(arg, "no such bundle; pod %s is stored: ops redeploy %s:VERSION "
                          "(or ops redeploy %s: the last good version before the current)"
                          % (name, name, name))


def redeploy(host, ref, lock_timeout):
    from ops.plan import plan_redeploy
    name, version = store.parse_ref(ref)
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        plan = plan_redeploy(host, name, version)
        if not host.dry_run and plan.changed:
            current = store.current_version(host.layout, name)
            _deploy().transact(host, plan, store.get(host.layout, name, plan.version), current)
        return _result(plan)


def undeploy(host, ref, remove, lock_timeout):
    from ops.plan import plan_undeploy
    name, version = store.parse_ref(ref)
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        if remove:
            from ops.retention import refuse_pinned
            refuse_pinned(host.layout, name, [v for v in store.versions(host.layout, name)
                                              if version in (None, v.version)])
        if remove and any(v.image_ids() for v in store.versions(host.layout, name)):
            host.rkt    # refuse before changing anything when rkt is missing
        plan = plan_undeploy(host, name, version, remove)
        if not host.dry_run and plan.changed:
            if plan.switch:
                _deploy().transact(host, plan, None, store.current_version(host.layout, name))
            _deploy().run_removals(host, plan.removals)
        return _result(plan)


def pin(host, ref, on, lock_timeout):
    """``ops pin NAME:VERSION`` (``on``) or ``ops unpin NAME:VERSION``."""
    from ops.errors import UsageError
    from ops.plan import Action
    from ops.retention import set_pin
    name, version = store.parse_ref(ref)
    verb = "pin" if on else "unpin"
    if version is None:
        raise UsageError(ref, "%s takes NAME:VERSION (see `ops list %s`)" % (verb, name))
    with _about(host, name, version), _Locked(host, lock_timeout, {name}):
        changed = set_pin(host, name, version, on)
        return Result(verb, name, version, changed=changed,
                      actions=[Action(verb, "%s %d" % (name, version))] if changed else [])


def cleanup(host, names, keep, lock_timeout):
    from ops.plan import plan_removal
    from ops.retention import cleanup_choice
    for n in names:
        if store.parse_ref(n)[1] is not None:
            from ops.errors import UsageError
            raise UsageError(n, "cleanup takes pod names, not NAME:VERSION (to delete one "
                             "version: ops undeploy NAME:VERSION --remove)")
    with _Locked(host, lock_timeout) as locked:
        pods = names or store.pods(host.layout)
        result = Result("cleanup", names[0] if len(names) == 1 else None, None)
        doomed = {}
        for name in pods:
            if name in locked.left:
                # its journal is pending: the version to put back must stay
                log.warn("%s is left alone: an interrupted run of it is not settled" % name)
                doomed[name], result.extra["kept"][name] = [], []
                continue
            doomed[name], kept = cleanup_choice(host.layout, name, keep)
            result.extra["kept"][name] = [{"version": v, "why": why} for v, why in kept]
        every = {(n, v.version) for n, vs in doomed.items() for v in vs}
        scheduled, stored_images = set(), {}
        plans = [(name, [v.version for v in vs],
                  plan_removal(host, name, vs, every, scheduled, stored_images))
                 for name, vs in doomed.items()]
        if any(a.verb == "remove-images" for _, _, acts in plans for a in acts):
            host.rkt    # refuse before removing anything when rkt is missing
        verb = "would remove" if host.dry_run else "removed"
        for name, versions, acts in plans:
            result.actions.extend(acts)
            result.extra["removed"][name] = versions
            if versions:
                result.changed = True
                if not host.dry_run:
                    _deploy().run_removals(host, acts)
            result.lines.append("cleanup %s: %s%s" % (
                name, "%s %s" % (verb, " ".join(map(str, versions))) if versions else "unchanged",
                "; kept " + ", ".join("%(version)d (%(why)s)" % k for k in result.extra["kept"][name])
                if result.extra["kept"][name] else ""))
        return result


def list_versions(layout, name=None, reasons=False):
    """Every stored version, from files only (through each pod's index).
    Online, the current rows say whether the pod runs (one ``systemctl show``);
    with ``reasons``, failed rows carry the reason kept in their state.json."""
    from ops import index
    if name is not None:
        store.parse_ref(name)
    interrupted = {j["pod"] for j in journal.pending(layout)}
    rows = []
    for pod in ([name] if name else store.pods(layout)):
        cur = store.current_number(layout, pod)
        for version, outcome, deployed_at, pinned in index.read(layout.pod_dir(pod)):
            rows.append({"name": pod, "version": version, "current": cur == version,
                         "outcome": outcome, "deployed_at": deployed_at,
                         "interrupted": pod in interrupted, "pinned": pinned,
                         "running": None})
    if not layout.offline and any(r["current"] for r in rows):
        from ops.status import mark_running
        mark_running(layout, rows)
    if reasons:
        from ops.status import failure_reasons
        failure_reasons(layout, rows)
    return rows


def status(host, name=None):
    from ops.status import status as pod_status
    return pod_status(host, name)
