"""`ops deploy` SIGKILLed at every step of its switch, on a real systemd.

v1 of pod ``hello`` runs.  A complete `deploy v2` is counted with
tests/support/killer.py inside the container; then, for every step from the
journal's first write to the end (every disable, enable, daemon-reload, stop,
restart, start and show call, every unit file, drop-in, journal and
`current` write), v2's deploy is killed just before the first and just
before the last event of that step (tests/support/killsteps.py: a file is
written with mkdir, open, chmod, rename), and just after each systemctl
call returned, and the next
mutating command -- `deploy v2` again, or, on every other kill point,
`undeploy other-pod` -- must leave systemd running exactly one version:

* `current` names that version, and its stored copy is complete;
* each of its start units is active, enabled and runs with its
  ``POD_VERSION`` (each service writes it to /run when it starts), and
  systemd's loaded configuration is the one on disk (NeedDaemonReload=no);
* no unit of the other version is installed, active or enabled;
* the lock is free, no journal, no ``.ops-tmp-*`` left.

Between kill points the container goes back to "v1 running, v2 not stored"
with `redeploy hello:1` and `undeploy hello:2 --remove` (checked each time),
cheaper than undeploying and deploying v1 again.  The killed runs use
``--settle 0`` so that their steps are the same every time (a longer settle
polls `show` a number of times that depends on timing).
"""

import fcntl
import json
import os
import re
import sys

import pytest

from tests.support.killsteps import kill_points

from .conftest import OPS_ENV, copy_bundle, describe, is_active, is_enabled, make_bundle, ops, show

NAME = "hello"
B = "/root/bundles/crash"
KILLER = "/src/tests/support/killer.py"
TRACE = "/run/killer.trace"


def sh_service(description, text):
    return ("[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/sh -c '%s'\n\n"
            "[Install]\nWantedBy=multi-user.target\n" % (description, text))


UNITS = {
    1: [("hello-web.service",
         sh_service("hello web v1", 'echo "$$POD_VERSION" > /run/hello-web.version && exec sleep infinity'),
         True, None),
        ("hello-worker@.service",
         sh_service("hello worker %i v1",
                    'echo "$$POD_VERSION" > /run/hello-worker-%i.version && exec sleep infinity'),
         True, [1, 2]),
        ("hello-once.service", "[Unit]\nDescription=hello once v1\n\n[Service]\nType=oneshot\n"
                               "ExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n", False, None)],
    2: [("hello-web.service",
         sh_service("hello web v2", 'echo "$$POD_VERSION" > /run/hello-web.version && exec sleep infinity'),
         True, None),
        ("hello-worker@.service",
         sh_service("hello worker %i v2",
                    'echo "$$POD_VERSION" > /run/hello-worker-%i.version && exec sleep infinity'),
         True, 3),
        ("hello-tick.timer", "[Unit]\nDescription=hello tick v2\n\n[Timer]\nOnActiveSec=1h\n\n"
                             "[Install]\nWantedBy=timers.target\n", True, None),
        ("hello-tick.service", "[Unit]\nDescription=hello tick v2\n\n[Service]\nType=oneshot\n"
                               "ExecStart=/bin/true\n", False, None)],
}
VOLUMES = {v: [("www", {"index.html": b"<h1>hello, version %d</h1>\n" % v})] for v in (1, 2)}


def start_units(v):
    out = []
    for f, _, start, instances in UNITS[v]:
        if start:
            if instances is None:
                out.append(f)
            else:
                stem, suffix = f.split("@", 1)
                names = range(instances) if isinstance(instances, int) else instances
                out += ["%s@%s%s" % (stem, i, suffix) for i in names]
    return out


def unit_names(v):
    """Every name of version v's units (files, and instances of its templates)."""
    return sorted(set([f for f, _, _, _ in UNITS[v]] + start_units(v)))


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    local = {}
    for v in (1, 2):
        d = make_bundle(str(base / ("v%d" % v)), NAME, v, units=UNITS[v], volumes=VOLUMES[v])
        copy_bundle(container, d, "%s/v%d" % (B, v))
        local[v] = d
    return local


# -- looking at the container --------------------------------------------------------------------

def current(c):
    p = "/etc/ops/current/" + NAME
    if not c.exists(p):
        return None
    m = re.fullmatch(r"\.\./pods/%s/(\d+)" % NAME, os.readlink(c.path(p)))
    return int(m.group(1)) if m else "bad link"


def stored(c):
    """The entries of the pod's directory but its index."""
    d = c.path("/etc/ops/pods/" + NAME)
    return sorted(n for n in os.listdir(d) if n != "index") if os.path.isdir(d) else []


def index_problems(c):
    """`list` reads the pod's index: it must show what state.json says."""
    from ops import index
    d = c.path("/etc/ops/pods/" + NAME)
    if not os.path.isfile(os.path.join(d, "index")):
        return []
    want = []
    for e in stored(c):
        if not e.isdigit() or not c.exists("/etc/ops/pods/%s/%s/pod.json" % (NAME, e)):
            continue
        try:
            st = json.loads(c.read_file("/etc/ops/pods/%s/%s/state.json" % (NAME, e)))
        except (OSError, ValueError):
            st = {}
        want.append((int(e), st.get("outcome"), st.get("deployed_at")))
    got = [row[:3] for row in index.read(d)]
    return [] if got == sorted(want) else ["the index shows %r, state.json %r" % (got, want)]


def journal_left(c):
    return c.exists("/var/lib/ops/journal/%s.json" % NAME)


def problems_on(c, bundles):
    """What is not whole: one version running under systemd, everything else clean."""
    out = []
    lock = c.path("/var/lib/ops/lock")
    if os.path.exists(lock):
        fd = os.open(lock, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            out.append("the lock is held")
        finally:
            os.close(fd)
    jdir = c.path("/var/lib/ops/journal")
    if os.path.isdir(jdir) and os.listdir(jdir):
        out.append("journal left: %s" % os.listdir(jdir))
    for top in ("/etc/ops", "/var/lib/ops", "/etc/systemd/system"):
        for dirpath, dirnames, filenames in os.walk(c.path(top)):
            for n in dirnames + filenames:
                if n.startswith(".ops-tmp-"):
                    out.append("leftover %s" % os.path.join(dirpath, n))
    vers = stored(c)
    out += index_problems(c)
    for e in vers:
        if e not in ("1", "2"):
            out.append("unexpected etc/ops/pods/hello/%s" % e)
            continue
        d = "/etc/ops/pods/%s/%s" % (NAME, e)
        have = sorted(os.listdir(c.path(d)))
        if have != ["manifest.json", "pod.json", "state.json", "units"]:
            out.append("stored version %s is incomplete: %s" % (e, have))
            continue
        with open(os.path.join(bundles[int(e)], "pod.json"), "rb") as f:
            if c.read_file(d + "/pod.json", binary=True) != f.read():
                out.append("stored version %s: pod.json differs from its bundle" % e)
        for f, text, _, _ in UNITS[int(e)]:
            if not c.exists("%s/units/%s" % (d, f)) or c.read_file("%s/units/%s" % (d, f)) != text:
                out.append("stored version %s: units/%s differs from its bundle" % (e, f))
        for name in ("manifest.json", "state.json"):
            try:
                json.loads(c.read_file("%s/%s" % (d, name)))
            except ValueError as err:
                out.append("stored version %s: %s unreadable: %s" % (e, name, err))
        if not c.exists("/var/lib/ops/volumes/%s/%s/www/index.html" % (NAME, e)):
            out.append("stored version %s has no volume" % e)
    vroot = c.path("/var/lib/ops/volumes/" + NAME)
    for e in (sorted(os.listdir(vroot)) if os.path.isdir(vroot) else []):
        if e not in vers:
            out.append("volume directory of no stored version: %s" % e)

    cur = current(c)
    if cur not in (1, 2) or str(cur) not in vers:
        out.append("current is %r, stored %s" % (cur, vers))
        return out
    other = 3 - cur
    # the installed unit files are exactly cur's
    files = {f: text for f, text, _, _ in UNITS[cur]}
    sysdir = c.path("/etc/systemd/system")
    installed = sorted(n for n in os.listdir(sysdir) if n.startswith("hello-"))
    want = sorted(list(files) + ["%s.d" % f for f in files if f.endswith(".service")])
    if installed != want:
        out.append("installed under /etc/systemd/system: %s, want version %d's %s" % (installed, cur, want))
    for f, text in files.items():
        if c.exists("/etc/systemd/system/" + f) and c.read_file("/etc/systemd/system/" + f) != text:
            out.append("installed %s is not version %d's" % (f, cur))
    for u in start_units(cur):
        state, enabled = is_active(c, u), is_enabled(c, u)
        if state != "active" or enabled != "enabled":
            out.append("%s of version %d is %s and %s" % (u, cur, state, enabled))
        if show(c, u, "NeedDaemonReload") != "no":
            out.append("%s: systemd has not loaded the unit file on disk (NeedDaemonReload)" % u)
        env = dict(i.split("=", 1) for i in show(c, u, "Environment").split() if "=" in i)
        if u.endswith(".service") and env.get("POD_VERSION") != str(cur):
            out.append("%s runs with POD_VERSION %r, not %d" % (u, env.get("POD_VERSION"), cur))
    for u in start_units(cur):
        m = re.fullmatch(r"hello-(web|worker)(?:@(\d+))?\.service", u)
        if m:
            run = "/run/hello-%s.version" % (m.group(1) if not m.group(2) else "worker-" + m.group(2))
            got = c.read_file(run).strip() if c.exists(run) else None
            if got != str(cur):
                out.append("%s's process wrote version %r to %s, not %d" % (u, got, run, cur))
    for u in sorted(set(unit_names(other)) - set(unit_names(cur))):
        state, enabled = is_active(c, u), is_enabled(c, u)
        if state in ("active", "activating", "reloading") or enabled == "enabled":
            out.append("%s of version %d is %s and %s while %d is current" % (u, other, state, enabled,
                                                                              cur))
    wants = []
    for t in ("multi-user.target.wants", "timers.target.wants"):
        d = os.path.join(sysdir, t)
        wants += sorted(n for n in os.listdir(d) if n.startswith("hello-")) if os.path.isdir(d) else []
    if sorted(wants) != sorted(start_units(cur)):
        out.append("enabled (.wants links): %s, want %s" % (sorted(wants), sorted(start_units(cur))))
    return out


# recovering and resetting commands settle for half a second: the units here are trivially stable
SETTLE = ("--settle", "0.5")


def reset(c, bundles):
    """Back to: v1 current and running, v2 not stored, the tree whole."""
    if current(c) != 1:
        ops(c, *SETTLE, "redeploy", NAME + ":1", check=0)
    if "2" in stored(c):
        ops(c, "undeploy", NAME + ":2", "--remove", check=0)
    assert current(c) == 1 and stored(c) == ["1"], (current(c), stored(c))
    assert not journal_left(c)
    found = problems_on(c, bundles)
    assert found == [], found


def killer(c, n, *args, after=False):
    argv = ["/usr/bin/python3", KILLER] + (["--after"] if after else []) + [str(n), "--trace", TRACE, "--"]
    c.run(["rm", "-f", TRACE])
    r = c.run(argv + [str(a) for a in args], env=OPS_ENV, timeout=180)
    where = [l for l in c.read_file(TRACE).splitlines() if l.startswith("KILL")] if c.exists(TRACE) else []
    return r, (where[0] if where else "(not killed)")


# -- the sweep -----------------------------------------------------------------------------------

def test_deploy_v1(container, bundles):
    c = container
    ops(c, "deploy", B + "/v1", check=0)
    assert current(c) == 1
    assert problems_on(c, bundles) == []


def test_the_checks_see_a_host_in_between(container, bundles):
    """problems_on is what the sweep relies on: it must see a stopped unit, a
    unit of the other version, a left-over journal."""
    c = container
    assert current(c) == 1
    c.run(["systemctl", "stop", "hello-worker@2.service"], check=True)
    assert any("hello-worker@2.service" in p for p in problems_on(c, bundles))
    c.run(["systemctl", "start", "hello-worker@2.service"], check=True)
    c.write_file("/etc/systemd/system/hello-tick.timer", UNITS[2][2][1])
    assert any("hello-tick.timer" in p for p in problems_on(c, bundles))
    c.remove("/etc/systemd/system/hello-tick.timer")
    c.write_file("/var/lib/ops/journal/hello.json", b"{}")
    assert any("journal" in p for p in problems_on(c, bundles))
    c.remove("/var/lib/ops/journal/hello.json")
    assert problems_on(c, bundles) == []


def test_killed_at_every_step_of_the_switch(container, bundles):
    c = container
    reset(c, bundles)
    # count a complete `deploy v2`, then put v1 back
    c.run(["rm", "-f", TRACE])
    r = c.run(["/usr/bin/python3", KILLER, "--count", "--trace", TRACE, "--", "--settle", "0", "deploy",
               B + "/v2"], env=OPS_ENV, timeout=180)
    m = re.search(r"^killer: events=(\d+) exit=0$", r.stderr, re.M)
    assert m, describe(r, "the counted run of deploy v2 failed")
    events = [l.split("\t") for l in c.read_file(TRACE).splitlines()]
    total = int(m.group(1))
    assert len(events) == total
    assert current(c) == 2 and problems_on(c, bundles) == []
    first = min(int(n) for n, ev, what in events if "/var/lib/ops/journal/" in what)
    calls = {int(n): what for n, ev, what in events if ev == "subprocess.Popen"}
    verbs = sorted(set(re.sub(r"^systemctl (\S+).*", r"\1", w) for n, w in calls.items() if n >= first))
    for verb in ("stop", "disable", "daemon-reload", "enable", "restart", "start", "show"):
        assert verb in verbs, (verb, verbs)
    switch = [(int(n), ev, what) for n, ev, what in events if int(n) >= first]
    points = [(n, False) for n in kill_points(switch)]
    points += [(n, True) for n in sorted(calls) if n >= first]
    points.append((total, True))

    failures = []
    outcomes = {"killed": 0, "completed": 0}
    for i, (n, after) in enumerate(points):
        reset(c, bundles)
        r, where = killer(c, n, "--settle", "0", "deploy", B + "/v2", after=after)
        label = "kill point %d%s (%s)" % (n, " --after" if after else "", where)
        if r.returncode == -9:
            outcomes["killed"] += 1
        elif r.returncode == 0:
            outcomes["completed"] += 1
        else:
            failures.append("%s: the run neither died by SIGKILL nor completed: %s" % (label, describe(r)))
            continue
        journal = journal_left(c)
        lst = ops(c, "--json", "list", check=0)
        flagged = any(p["interrupted"] for p in json.loads(lst.stdout)["pods"] if p["name"] == NAME)
        if flagged != journal:
            failures.append("%s: journal left %s, but list says interrupted %s" % (label, journal, flagged))
        if i % 2 == 0:
            rec = ops(c, *SETTLE, "deploy", B + "/v2")
            want = {2}
        else:
            rec = ops(c, *SETTLE, "undeploy", "other-pod")
            want = {1, 2}
        found = problems_on(c, bundles)
        if rec.returncode != 0 or found or current(c) not in want:
            failures.append("%s, then `%s`: exit %d, current %r (expected %s): %s\n%s"
                            % (label, " ".join(rec.args[3:]), rec.returncode, current(c), sorted(want), found,
                               describe(rec)))
            # leave the container whole for the next kill point, whatever this one left
            ops(c, "undeploy", NAME, "--remove")
            ops(c, *SETTLE, "deploy", B + "/v1")
        elif journal and "recovering the interrupted" not in rec.stderr:
            failures.append("%s: a journal was left, but the next command did not say it recovers: %s"
                            % (label, describe(rec)))
    sys.stderr.write("\nlive crash sweep of the switch of `deploy v2` (events %d..%d of %d): %d kill points, "
                     "%d killed, %d completed, %d survived\n"
                     % (first, total, total, len(points), outcomes["killed"], outcomes["completed"],
                        len(points) - len(failures)))
    assert not failures, "%d of %d kill points left systemd in between:\n%s" % (
        len(failures), len(points), "\n".join(failures))


def test_cleanup(container, bundles):
    c = container
    ops(c, "undeploy", NAME, "--remove", check=0)
    assert current(c) is None and stored(c) == []
    for u in unit_names(1) + unit_names(2):
        assert is_active(c, u) not in ("active", "activating"), u
