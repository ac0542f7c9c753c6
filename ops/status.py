"""`ops status`: what runs and what drifted, per pod.  Reads only.

For the current version of each pod: every unit's live state from one
batched ``systemctl show`` (whatever the number of units), and the drift
from the stored version: unit files or drop-ins missing or different, start
units not enabled or not running.  Offline (``--root``) there is no manager
to ask: units are only checked for files and ``is-enabled``.  The reason of
the pod's last failed deploy, kept in that version's state.json, is shown
when it is newer than the current version's deploy.  With ``--health``, each
current version's health check runs now (:func:`ops.health.check`, as the
deploy ran it): a failure is drift.
"""

import os

from ops import index, store, transaction
from ops.errors import Refused
from ops.systemd import ENABLED
from ops.units import installed, same_file, start_units

__all__ = ["status", "mark_running", "failure_reasons"]

PROPS = ("MainPID", "StateChangeTimestamp")      # shown besides systemd.STATE


def status(host, name=None, health=False):
    """[pod report] for pod ``name``, or for every pod stored; with
    ``health``, each current version's health check runs now (online only)."""
    layout = host.layout
    if health and layout.offline:
        from ops.errors import UsageError
        raise UsageError("status --health", "runs each pod's health check on this host, and "
                         "--root %s is an image where nothing runs" % layout.root)
    if name is not None:
        if store.parse_ref(name)[1] is not None:
            from ops.errors import UsageError
            raise UsageError(name, "status takes a pod name, not NAME:VERSION")
        if not store.versions(layout, name) and store.current_number(layout, name) is None:
            raise Refused(name, "no stored version of this pod (see `ops list`)")
    interrupted = transaction.interrupted(layout)
    from ops.transaction import running
    going = running(layout)
    pods = [name] if name else store.pods(layout)
    currents, units, broken, lost = {}, {}, {}, {}
    for p in pods:
        try:
            number = store.current_number(layout, p)
            currents[p] = cur = None if number is None else store.get(layout, p, number)
            if cur is not None:
                units[p] = cur.bundle().units
            elif number is not None:      # the link names a version that lost its pod.json
                lost[p] = number
        except Refused as e:      # one pod's broken pod.json or link is that pod's problem only
            if name:
                raise
            currents.setdefault(p, None)
            broken[p] = e
    names = [n for us in units.values() for u in us for n in u.unit_names]
    states = host.systemd.unit_states(names, *PROPS)
    present = set(installed(layout, names))
    reports = []
    for pod in pods:
        cur = currents[pod]
        report = {"name": pod, "version": cur.version if cur else lost.get(pod), "outcome": None,
                  "deployed_at": None, "interrupted": pod in interrupted, "units": [],
                  "drift": [], "in_progress": going.get(pod)}
        if cur is not None:
            st = cur.state()
            report["outcome"] = st.get("outcome")
            report["deployed_at"] = st.get("deployed_at")
            for u in units.get(pod, ()):
                before = len(report["drift"])
                _check_files(layout, cur, u, report["drift"])
                files_drift = len(report["drift"]) > before     # a pending reload says no more
                for n in sorted({u.name} | set(u.unit_names)):
                    _check_overrides(layout, n, report["drift"])
                for n in u.unit_names:
                    report["units"].append(_unit(host.systemd, n, u.start, states.get(n, {}),
                                                 report["drift"] if n in present else None,
                                                 files_drift))
        if pod in broken:
            report["drift"].append({"unit": None, "problem": "cannot be used: %s" % broken[pod]})
        if pod in lost:
            report["drift"].append({"unit": None, "problem": (
                "the current version %d is not stored whole: %s is missing or not a regular "
                "file, so ops cannot tell what it installed; put it back from the bundle, or "
                "run `ops undeploy %s`" % (lost[pod], layout.host(layout.version_dir(pod, lost[pod])
                                                                  + "/pod.json"), pod))})
        if report["interrupted"]:
            report["drift"].append({"unit": None, "problem": "an interrupted run left its "
                                    "journal; the next mutating command rolls it back"})
        if report["in_progress"]:      # switching now: what differs is the run's, not drift
            report["drift"] = []
        report["health"] = _health(host, cur, report["drift"]) if health and cur \
            and not report["in_progress"] and pod not in broken else None
        report["last_failure"] = _last_failure(layout, pod, cur) if pod not in broken else None
        report["healthy"] = not report["drift"]
        reports.append(report)
    return reports


def _health(host, cur, drift):
    """Run the health check of stored version ``cur`` now, as the deploy does;
    a failure is drift.  {checked, ok, check, reason}."""
    spec = cur.bundle().health
    if spec is None:
        return {"checked": False, "ok": None, "check": None,
                "reason": "the pod has no health check"}
    from ops import health
    from ops.errors import Failed
    from ops.units import pod_env
    try:
        health.check(host, cur, spec, dict(pod_env(host.layout, cur.name, cur.version)))
    except Failed as e:
        drift.append({"unit": None, "problem": "health check failed: %s" % e})
        return {"checked": True, "ok": False, "check": spec.describe(), "reason": str(e)}
    return {"checked": True, "ok": True, "check": spec.describe(), "reason": None}


# Where `systemctl edit` and administrators put drop-ins that change a unit
# (besides ops's own 50-ops.conf in etc/systemd/system/UNIT.d).
OVERRIDE_DIRS = ("etc/systemd/system.control", "run/systemd/system.control",
                 "etc/systemd/system", "run/systemd/system")


def _check_overrides(layout, name, drift):
    """A drop-in of unit ``name`` that ops did not write is drift: the unit
    does not run as the stored version says."""
    for d in OVERRIDE_DIRS:
        ddir = layout.path(os.path.join(d, name + ".d"))
        try:
            names = sorted(os.listdir(ddir))
        except OSError:
            continue
        for n in names:
            p = os.path.join(ddir, n)
            if n.endswith(".conf") and p != layout.dropin_path(name):
                drift.append({"unit": name, "problem": "a drop-in ops did not write changes it: "
                              + layout.host(p)})


def _check_files(layout, cur, unit, drift):
    stored = os.path.join(cur.units_dir, unit.name)
    path = layout.unit_path(unit.name)
    if not os.path.lexists(path):
        drift.append({"unit": unit.name, "problem": "unit file missing: " + layout.host(path)})
    elif not (os.path.isfile(path) and same_file(stored, path)):
        drift.append({"unit": unit.name, "problem": "unit file differs from the stored version: "
                      + layout.host(path)})
    if not unit.name.endswith(".service"):
        return
    from ops.units import dropin_text
    dropin = layout.dropin_path(unit.name)
    from ops import confine
    try:
        same = confine.read_file(dropin).decode("utf-8", "replace") == \
            dropin_text(layout, cur.name, cur.version, unit.name)
    except FileNotFoundError:
        drift.append({"unit": unit.name, "problem": "drop-in missing: " + layout.host(dropin)})
        return
    except OSError:
        same = False
    if not same:
        drift.append({"unit": unit.name, "problem": "drop-in differs from what ops writes: "
                      + layout.host(dropin)})


def _unit(sd, name, start, props, drift, files_drift=False):
    """One unit's row; a start unit not enabled or not up is added to ``drift``
    (None when the unit's file is missing: that is the drift already)."""
    if not sd.offline:
        pid = props.get("MainPID")
        row = {"unit": name, "start": start, "active": props.get("ActiveState"),
               "sub": props.get("SubState"), "main_pid": int(pid) if pid and pid.isdigit()
               and pid != "0" else None, "since": props.get("StateChangeTimestamp") or None,
               "result": props.get("Result"), "enabled": props.get("UnitFileState") or None}
    else:
        row = {"unit": name, "start": start, "active": None, "sub": None, "main_pid": None,
               "since": None, "result": None,
               "enabled": props.get("UnitFileState") if drift is not None else None}
    if start and drift is not None:
        if row["enabled"] not in ENABLED:
            drift.append({"unit": name, "problem": "not enabled (%s)" % (row["enabled"] or
                                                                         "unknown")})
        if not sd.offline and not sd.up(props):
            drift.append({"unit": name, "problem": "not running (%s/%s, result %s)"
                          % (row["active"], row["sub"], row["result"])})
    if drift is not None and not files_drift and props.get("NeedDaemonReload") == "yes":
        drift.append({"unit": name, "problem": "its files changed since systemd loaded them "
                      "(systemctl daemon-reload, or ops deploy, loads them)"})
    return row


def _last_failure(layout, pod, cur):
    """The newest failed version's reason, when it failed after the current
    version was deployed (an older failure is history, not news)."""
    rows = index.read(layout.pod_dir(pod))
    cur_at = next((at for v, _, at, _ in rows if cur and v == cur.version), None) or ""
    failed = [(at or "", v) for v, outcome, at, _ in rows if outcome == "failed"
              and (at or "") >= cur_at]
    if not failed:
        return None
    at, version = max(failed)
    st = index.read_state(os.path.join(layout.version_dir(pod, version), "state.json"))
    return {"version": version, "at": at or None, "reason": _reason(st)}


def _reason(state):
    r = state.get("reason")
    if not isinstance(r, dict):
        return None
    from ops.errors import MESSAGE_MAX, clip      # the file may have been edited: bound it again
    return {k: clip(v, MESSAGE_MAX, tail=k != "message") if isinstance(v, str) else v
            for k, v in r.items()}


def failure_reasons(layout, rows):
    """Add ``reason`` to each failed row of `list --json` (reads only their state.json)."""
    for r in rows:
        r["reason"] = _reason(index.read_state(os.path.join(
            layout.version_dir(r["name"], r["version"]), "state.json"))) \
            if r["outcome"] == "failed" else None
    return rows


def mark_running(layout, rows):
    """Set ``running`` on the current rows of `list`: False when a start unit of
    the pod's current version is not up.  One ``systemctl show`` for every pod,
    online only (offline, and on other rows, ``running`` is None)."""
    from ops.systemd import Systemd
    units = {}
    for r in rows:
        r["running"] = None
        if r["current"]:
            names = _start_units(layout, r["name"], r["version"])
            if names is not None:
                units[r["name"]] = (r, names)
    sd = Systemd(layout)
    live = sd.unit_states([n for _, ns in units.values() for n in ns])
    for r, ns in units.values():
        r["running"] = all(sd.up(live.get(n, {})) for n in ns)
    return rows


def _start_units(layout, name, version):
    """The start units of a stored version: recorded in its state.json when it
    was staged (parsing pod.json again would cost `list` the bundle parser),
    else from pod.json; None when the version is not stored, or neither can be
    used (that pod's problem: `list` of the others goes on)."""
    sv = store.get(layout, name, version)
    if sv is None:
        return None
    names = sv.state().get("start_units")
    if isinstance(names, list):
        from ops.names import is_unit_name
        if all(is_unit_name(n, instance=True) for n in names):
            return names
    try:
        return start_units(sv.bundle().units)
    except Refused:
        return None
