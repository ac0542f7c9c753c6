"""An operator's worst day, offline: `ops` SIGKILLed at every step it takes.

For each command below, a complete run is first traced with
tests/support/killer.py (every host-mutating event: a rename, a write, a
mkdir, a removal, a systemctl call...).  The events fall into steps, each
ending with the event through which it shows on the host (a rename, a
symlink, a removal, a systemctl call...): writing a file is mkdir, open,
chmod, rename.  Then, for the first and the last event of every step (so
every step of the switch keeps its kill points: the state before it, and
the state with all of it prepared but its visible event), a copy of the
same starting tree gets the same command killed just before that event,
and:

* the killed run ended by SIGKILL;
* `ops --json list` changes nothing, and marks the pod interrupted exactly
  when a journal is left over;
* the next mutating command (the same command again, or, on every other
  kill point, `undeploy other-pod`, a pod that does not exist) recovers:
  it exits 0, says it rolls back when a journal was left, and afterwards the
  tree is whole (see :func:`whole_problems`): the lock is free, no journal,
  no `.ops-tmp-*`, nothing in var/lib/ops/tmp, `current` names one complete
  stored version (or none), the installed units, drop-ins and `.wants`
  links are exactly that version's, every stored version and its volume is
  complete and byte-identical to its bundle, and volume directories exist
  for stored versions only.

Kill points run in parallel, each on its own copy under /dev/shm when it
exists (a SIGKILL does not lose what the kernel already has, so the file
system does not change what is tested, only how fast fsync returns).
"""

import concurrent.futures
import fcntl
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from conftest import REPO, diff, dropin_env, snapshot, unit_text
from tests.support.killsteps import kill_points, steps

KILLER = str(REPO / "tests" / "support" / "killer.py")
NAME = "hello"
OTHER = "other-pod"

# version -> units: (file, start, instances or None, text)
UNITS = {
    1: [("hello-web.service", True, None, unit_text("hello-web.service", body="web v1")),
        ("hello-worker@.service", True, [1, 2], unit_text("hello-worker@.service", body="worker v1")),
        ("hello-once.service", False, None, unit_text("hello-once.service", body="once v1")),
        # the same bytes in both versions: kept listening across the switch
        ("hello-web.socket", True, None, unit_text("hello-web.socket")),
        # the same bytes too, but started by version 2 only: never kept, on the way back either
        ("hello-admin.socket", False, None, unit_text("hello-admin.socket"))],
    2: [("hello-web.service", True, None, unit_text("hello-web.service", body="web v2")),
        ("hello-worker@.service", True, 3, unit_text("hello-worker@.service", body="worker v2")),
        ("hello-tick.timer", True, None, unit_text("hello-tick.timer")),
        ("hello-tick.service", False, None, unit_text("hello-tick.service", body="tick v2")),
        ("hello-web.socket", True, None, unit_text("hello-web.socket")),
        ("hello-admin.socket", True, None, unit_text("hello-admin.socket"))],
}
VOLUMES = {
    1: {"www": {"index.html": b"<h1>hello, version 1</h1>\n", "data/notes.txt": b"one\n" * 50}},
    2: {"www": {"index.html": b"<h1>hello, version 2</h1>\n", "data/notes.txt": b"two\n" * 80,
                "data/more.txt": b"more\n"}},
}


# -- bundles -------------------------------------------------------------------------------------

def plain_tar(path, files):
    with tarfile.open(str(path), "w", format=tarfile.USTAR_FORMAT) as tf:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))


class Spec:
    """One version of the pod as its bundle holds it: what the host must hold for it."""

    def __init__(self, directory, name, version, units, volumes):
        self.dir = Path(directory)
        self.name = name
        self.version = version
        self.units = units          # [(file, start, instances, text)]
        self.volumes = volumes      # {volume: {member: bytes}}

    def __str__(self):
        return str(self.dir)

    @property
    def pod_json(self):
        return (self.dir / "pod.json").read_bytes()

    def unit_bytes(self):
        return {f: text.encode() for f, _, _, text in self.units}

    def start_units(self):
        out = []
        for f, start, instances, _ in self.units:
            if not start:
                continue
            if instances is None:
                out.append(f)
            else:
                names = range(instances) if isinstance(instances, int) else instances
                stem, suffix = f.split("@", 1)
                out += ["%s@%s%s" % (stem, i, suffix) for i in names]
        return out


def write_bundle(directory, name, version, units, volumes, extra_ops=None):
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    entries = []
    for fname, start, instances, text in units:
        (d / fname).write_text(text)
        e = {"unit-file": fname, "start": start}
        if instances is not None:
            e["instances"] = instances
        entries.append(e)
    doc = {"name": name, "version": version, "systemd-units": entries}
    if volumes:
        doc["volumes"] = []
        for vname, files in sorted(volumes.items()):
            plain_tar(d / (vname + ".tar"), files)
            doc["volumes"].append({"volume": vname, "data": vname + ".tar"})
    doc.update(extra_ops or {})
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11",
                "annotations": [{"name": "ops", "value": json.dumps(doc)}]}
    (d / "pod.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Spec(d, name, version, units, volumes)


# -- running ops ---------------------------------------------------------------------------------

def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO)
    e["PYTHONDONTWRITEBYTECODE"] = "1"
    e.pop("OPS_DEBUG", None)
    return e


def run_ops(root, *args, timeout=60):
    argv = [sys.executable, "-m", "ops", "--root", str(root)] + [str(a) for a in args]
    return subprocess.run(argv, cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def run_killer(root, n, *args, after=False, trace=None, timeout=60):
    """killer.py N -- --root ROOT ARGS (n None: --count)."""
    argv = [sys.executable, KILLER]
    argv += ["--count"] if n is None else (["--after"] if after else []) + [str(n)]
    if trace:
        argv += ["--trace", str(trace)]
    argv += ["--", "--root", str(root)] + [str(a) for a in args]
    return subprocess.run(argv, cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)


def count_events(root, *args, trace=None):
    """Events of a complete run of ``ops --root ROOT ARGS`` (which changes ROOT)."""
    r = run_killer(root, None, *args, trace=trace)
    m = re.search(r"^killer: events=(\d+) exit=(\d+)$", r.stderr, re.M)
    assert m, "killer --count printed no total:\n%s" % r.stderr
    assert m.group(2) == "0", "the complete run failed:\n%s%s" % (r.stdout, r.stderr)
    return int(m.group(1))


def show(r):
    return "$ %s\nexit %s\n--- stdout ---\n%s--- stderr ---\n%s" % (
        " ".join(r.args), r.returncode, r.stdout, r.stderr)


# -- the invariants ------------------------------------------------------------------------------

def lock_is_free(root):
    p = os.path.join(str(root), "var/lib/ops/lock")
    if not os.path.exists(p):
        return True
    fd = os.open(p, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def tmp_leftovers(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for n in dirnames + filenames:
            if n.startswith(".ops-tmp-"):
                out.append(os.path.relpath(os.path.join(dirpath, n), str(root)))
    return sorted(out)


def read_tree(d):
    """{relative path: bytes or ('link', target)} of the files and symlinks under ``d``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(d):
        for n in filenames + [x for x in dirnames if os.path.islink(os.path.join(dirpath, x))]:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, d)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as f:
                    out[rel] = f.read()
    return out


def current_of(root, name=NAME):
    p = os.path.join(str(root), "etc/ops/current", name)
    if not os.path.lexists(p):
        return None
    if not os.path.islink(p):
        return "not a symlink"
    target = os.readlink(p)
    m = re.fullmatch(r"\.\./pods/%s/(\d+)" % re.escape(name), target)
    return int(m.group(1)) if m else "bad target %r" % target


def stored_of(root, name=NAME):
    """The entries of the pod's directory but its index."""
    d = os.path.join(str(root), "etc/ops/pods", name)
    return sorted(n for n in os.listdir(d) if n != "index") if os.path.isdir(d) else []


def expected_units(spec):
    """What etc/systemd/system must hold for ``spec`` as the current version:
    {path: bytes} for unit files, {path: None} for drop-ins (checked apart),
    {path: template file} for the enable symlinks."""
    files, links = {}, {}
    for f, _, _, text in spec.units:
        files[f] = text.encode()
        if f.endswith(".service"):
            files[f + ".d/50-ops.conf"] = None
    for n in spec.start_units():
        target = "timers.target" if n.endswith(".timer") else "multi-user.target"
        links["%s.wants/%s" % (target, n)] = re.sub(r"@[^.]*\.", "@.", n)
    return files, links


def index_problems(pod_dir):
    """The pod's index must never make `list` show other than state.json says."""
    from ops import index
    want = []
    for entry in sorted(os.listdir(pod_dir)):
        if entry.isdigit() and os.path.isfile(os.path.join(pod_dir, entry, "pod.json")):
            try:
                with open(os.path.join(pod_dir, entry, "state.json")) as f:
                    st = json.load(f)
            except (OSError, ValueError):
                st = {}
            st = st if isinstance(st, dict) else {}
            want.append((int(entry), st.get("outcome"), st.get("deployed_at")))
    got = [row[:3] for row in index.read(pod_dir)]
    return [] if got == sorted(want) else ["the index shows %r, state.json %r" % (got, want)]


def whole_problems(root, specs, name=NAME):
    """Everything that is not whole about pod ``name`` under ``root`` (empty: whole).

    ``specs``: {version: Spec} of every version that may be stored."""
    root = str(root)
    problems = []
    if not lock_is_free(root):
        problems.append("the lock is held")
    jdir = os.path.join(root, "var/lib/ops/journal")
    if os.path.isdir(jdir) and os.listdir(jdir):
        problems.append("journal left: %s" % sorted(os.listdir(jdir)))
    left = tmp_leftovers(root)
    if left:
        problems.append("temporary leftovers: %s" % left)
    tdir = os.path.join(root, "var/lib/ops/tmp")
    if os.path.isdir(tdir) and os.listdir(tdir):
        problems.append("var/lib/ops/tmp not empty: %s" % sorted(os.listdir(tdir)))

    # stored versions: complete, byte-identical to their bundles
    stored = []
    pod_dir = os.path.join(root, "etc/ops/pods", name)
    if os.path.isfile(os.path.join(pod_dir, "index")):
        problems += index_problems(pod_dir)
    for entry in stored_of(root, name):
        vdir = os.path.join(pod_dir, entry)
        if not entry.isdigit() or int(entry) not in specs:
            problems.append("unexpected entry etc/ops/pods/%s/%s" % (name, entry))
            continue
        v, spec = int(entry), specs[int(entry)]
        stored.append(v)
        have = sorted(os.listdir(vdir))
        if have != ["manifest.json", "pod.json", "state.json", "units"]:
            problems.append("stored version %d is incomplete: %s" % (v, have))
            continue
        with open(os.path.join(vdir, "pod.json"), "rb") as f:
            if f.read() != spec.pod_json:
                problems.append("stored version %d: pod.json differs from the bundle's" % v)
        if read_tree(os.path.join(vdir, "units")) != spec.unit_bytes():
            problems.append("stored version %d: units/ differs from the bundle's units" % v)
        try:
            with open(os.path.join(vdir, "manifest.json")) as f:
                manifest = json.load(f)
            vols = {x["name"]: x for x in manifest.get("volumes", [])}
            for vol in spec.volumes:
                want = {"name": vol, "kind": "host", "readOnly": False,
                        "source": "/var/lib/ops/volumes/%s/%d/%s" % (name, v, vol)}
                if vols.get(vol) != want:
                    problems.append("stored version %d: manifest.json volume %s is %r"
                                    % (v, vol, vols.get(vol)))
        except (ValueError, KeyError, TypeError) as e:
            problems.append("stored version %d: manifest.json unreadable: %s" % (v, e))
        try:
            with open(os.path.join(vdir, "state.json")) as f:
                st = json.load(f)
            if not isinstance(st, dict) or st.get("version") != v or st.get("name") != name:
                problems.append("stored version %d: state.json is %r" % (v, st))
        except ValueError as e:
            problems.append("stored version %d: state.json unreadable: %s" % (v, e))

    # volumes: for stored versions only, and complete
    vroot = os.path.join(root, "var/lib/ops/volumes", name)
    vol_versions = sorted(os.listdir(vroot)) if os.path.isdir(vroot) else []
    for entry in vol_versions:
        if not entry.isdigit() or int(entry) not in stored:
            problems.append("volume directory var/lib/ops/volumes/%s/%s of no stored version"
                            % (name, entry))
    for v in stored:
        vdir = os.path.join(vroot, str(v))
        want = {"%s/%s" % (vol, m): data for vol, members in specs[v].volumes.items()
                for m, data in members.items()}
        if specs[v].volumes and not os.path.isdir(vdir):
            problems.append("stored version %d has no volume directory" % v)
        elif specs[v].volumes and read_tree(vdir) != want:
            problems.append("volume of version %d differs from its archive: %s"
                            % (v, sorted(read_tree(vdir))))

    # current, and exactly its units installed and enabled
    cur = current_of(root, name)
    if cur is not None and cur not in stored:
        problems.append("current is %r, not a complete stored version (stored: %s)" % (cur, stored))
    units = read_tree(os.path.join(root, "etc/systemd/system"))
    if isinstance(cur, int) and cur in stored:
        files, links = expected_units(specs[cur])
    else:
        files, links = {}, {}
    want_paths = set(files) | set(links)
    extra, missing = sorted(set(units) - want_paths), sorted(want_paths - set(units))
    if extra:
        problems.append("units installed beyond version %s's: %s" % (cur, extra))
    if missing:
        problems.append("units of version %s missing: %s" % (cur, missing))
    for p, data in files.items():
        if p not in units:
            continue
        if data is not None and units[p] != data:
            problems.append("installed %s differs from version %s's unit" % (p, cur))
        if data is None:
            unit = p[:-len(".d/50-ops.conf")]
            got = dropin_env(root, unit)
            want = {"POD_NAME": name, "POD_VERSION": str(cur),
                    "POD_MANIFEST": "/etc/ops/pods/%s/%s/manifest.json" % (name, cur),
                    "POD_VOLUMES": "/var/lib/ops/volumes/%s/%s" % (name, cur)}
            if got != want:
                problems.append("drop-in of %s: %r, want %r" % (unit, got, want))
    for p, template in links.items():
        if p in units and (not isinstance(units[p], tuple)
                           or os.path.basename(units[p][1]) != template):
            problems.append("%s is %r, not a link to %s" % (p, units[p], template))
    return problems


def list_rows(root):
    r = run_ops(root, "--json", "list")
    assert r.returncode == 0, show(r)
    return {(p["name"], p["version"]): p for p in json.loads(r.stdout)["pods"]}, r


# -- the sweeps ----------------------------------------------------------------------------------

def scratch_dir():
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    return tempfile.mkdtemp(prefix="ops-crash-", dir=base)


@pytest.fixture(scope="module")
def world():
    """Bundles v1 and v2, and two starting trees: A (v1 current) and B (v1, then v2 current)."""
    base = scratch_dir()
    try:
        b = os.path.join(base, "bundles")
        specs = {v: write_bundle(os.path.join(b, "v%d" % v), NAME, v, UNITS[v], VOLUMES[v])
                 for v in (1, 2)}
        start_a = os.path.join(base, "start-a")
        os.makedirs(start_a)
        r = run_ops(start_a, "deploy", specs[1])
        assert r.returncode == 0, show(r)
        start_b = os.path.join(base, "start-b")
        shutil.copytree(start_a, start_b, symlinks=True)
        r = run_ops(start_b, "deploy", specs[2])
        assert r.returncode == 0, show(r)
        # back on 1 with 2 stored: cleanup removes 2 (1 is current; with 2
        # current, 1 would be kept as the version to go back to)
        start_c = os.path.join(base, "start-c")
        shutil.copytree(start_b, start_c, symlinks=True)
        r = run_ops(start_c, "redeploy", NAME + ":1")
        assert r.returncode == 0, show(r)
        for start, cur in ((start_a, 1), (start_b, 2), (start_c, 1)):
            assert current_of(start) == cur
            assert whole_problems(start, specs) == [], whole_problems(start, specs)
        yield {"base": base, "specs": specs, "A": start_a, "B": start_b, "C": start_c}
    finally:
        shutil.rmtree(base, ignore_errors=True)


# name: (starting tree, command, {current after the command}, allowed current after a kill
#        and `undeploy other-pod`, stored versions after the command completes)
SWEEPS = {
    "deploy v2": ("A", ["deploy", "@2"], 2, {1, 2}, ["1", "2"]),
    "undeploy hello": ("B", ["undeploy", NAME], None, {2, None}, ["1", "2"]),
    "redeploy hello:1": ("B", ["redeploy", NAME + ":1"], 1, {2, 1}, ["1", "2"]),
    "undeploy hello --remove": ("B", ["undeploy", NAME, "--remove"], None, {2, None}, []),
    "cleanup --keep 0": ("C", ["cleanup", "--keep", "0"], 1, {1}, ["1"]),
}

def one_kill_point(world, sweep, n, after=False):
    """Kill ``sweep``'s command at event ``n`` on a fresh copy; return problems (empty: survived)."""
    start, command, final, allowed, final_stored = SWEEPS[sweep]
    specs = world["specs"]
    args = [str(specs[int(a[1:])]) if a.startswith("@") else a for a in command]
    root = os.path.join(world["base"], "k-%s-%d%s" % (re.sub(r"\W+", "_", sweep), n,
                                                      "a" if after else ""))
    trace = root + ".trace"
    shutil.copytree(world[start], root, symlinks=True)
    problems = []
    try:
        r = run_killer(root, n, *args, after=after, trace=trace)
        with open(trace) as f:
            killed_at = [l.rstrip("\n").split("\t", 1)[1] for l in f if l.startswith("KILL\t")]
        where = killed_at[0] if killed_at else "(no kill: the run completed)"
        if r.returncode != -signal.SIGKILL:
            problems.append("the run was not killed: %s" % show(r))
        # list reads only; it flags the pod as interrupted when a journal is left
        journal = os.path.exists(os.path.join(root, "var/lib/ops/journal", NAME + ".json"))
        before = snapshot(root)
        rows, lr = list_rows(root)
        changes = diff(before, snapshot(root))
        if changes:
            problems.append("`ops list` changed the tree: %s" % changes)
        flagged = sorted(k[1] for k, p in rows.items() if k[0] == NAME and p["interrupted"])
        if journal and not flagged and rows:
            problems.append("a journal is left but `list` marks nothing interrupted: %s" % lr.stdout)
        if not journal and flagged:
            problems.append("no journal, yet `list` marks versions %s interrupted" % flagged)
        # the next mutating command recovers
        if n % 2:
            rec = run_ops(root, *args)
            want_cur, want_stored = {final}, final_stored
        else:
            rec = run_ops(root, "undeploy", OTHER)
            want_cur, want_stored = allowed, None
        if rec.returncode != 0:
            problems.append("the recovering command failed: %s" % show(rec))
        if journal and "recovering the interrupted" not in rec.stderr:
            problems.append("a journal was left but the next command did not say it recovers: %s"
                            % show(rec))
        problems += whole_problems(root, specs)
        cur = current_of(root)
        if cur not in want_cur:
            problems.append("current is %r after recovery, expected one of %s" % (cur, want_cur))
        if want_stored is not None and stored_of(root) != want_stored:
            problems.append("stored versions %s after the command ran again, expected %s"
                            % (stored_of(root), want_stored))
        if problems:
            problems.insert(0, "kill point %d%s of `%s` (killed %s), recovered with `%s`"
                            % (n, " --after" if after else "", sweep, where,
                               " ".join(rec.args[3:]) if rec else "?"))
        return problems
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if os.path.exists(trace):
            os.unlink(trace)


def sweep_total(world, sweep):
    return len(sweep_events(world, sweep))


def sweep_events(world, sweep):
    """[(N, event, what)] of a complete run of ``sweep``'s command."""
    start, command, *_ = SWEEPS[sweep]
    args = [str(world["specs"][int(a[1:])]) if a.startswith("@") else a for a in command]
    root = os.path.join(world["base"], "count-" + re.sub(r"\W+", "_", sweep))
    trace = root + ".trace"
    shutil.copytree(world[start], root, symlinks=True)
    try:
        total = count_events(root, *args, trace=trace)
        events = read_trace(trace)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if os.path.exists(trace):
            os.unlink(trace)
    assert [n for n, _, _ in events] == list(range(1, total + 1)), events
    return events


def read_trace(path):
    with open(path) as f:
        return [(int(n), ev, what) for n, ev, what in
                (l.rstrip("\n").split("\t", 2) for l in f if not l.startswith(("KILL", "FILL")))]


def test_every_step_keeps_a_kill_point():
    events = [(1, "os.mkdir", "/a"), (2, "open", "/a/.t"), (3, "os.chmod", "/a/.t"), (4, "os.rename", "/a/.t /a/f"),
              (5, "subprocess.Popen", "systemctl enable"), (6, "os.remove", "/j"), (7, "os.mkdir", "/b"),
              (8, "os.mkdir", "/b/c"), (9, "open", "/b/c/x"), (10, "os.rename", "/b /.del"),
              (11, "shutil.rmtree", "/.del"), (12, "os.remove", "x 5"), (13, "os.rmdir", "c 4"),
              (14, "os.rmdir", "/.del"), (15, "shutil.rmtree", "/gone"), (16, "os.remove", "/j")]
    assert [[e[0] for e in s] for s in steps(events)] == [
        [1, 2, 3, 4], [5], [6], [7, 8, 9, 10], [11, 12, 13, 14], [15], [16]]
    assert kill_points(events) == [1, 4, 5, 6, 7, 10, 11, 14, 15, 16]


WORKERS = max(4, min(12, 3 * (os.cpu_count() or 2)))


def run_sweep(world, sweep, points):
    failures = []
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(one_kill_point, world, sweep, n, after) for n, after in points]
        for fut in futures:
            problems = fut.result()
            if problems:
                failures.append("\n  ".join(problems))
    return failures


@pytest.mark.parametrize("sweep", list(SWEEPS))
def test_killed_at_every_step_then_recovered(world, sweep):
    events = sweep_events(world, sweep)
    total = len(events)
    assert total >= 10, "a complete `%s` counted only %d events" % (sweep, total)
    points = [(n, False) for n in kill_points(events)]
    # --after the last event: everything done, the process killed before it exits
    points.append((total, True))
    failures = run_sweep(world, sweep, points)
    sys.stderr.write("\ncrash sweep `%s`: %d kill points (of %d events) tried, %d survived\n"
                     % (sweep, len(points), total, len(points) - len(failures)))
    assert not failures, "%d of %d kill points of `%s` left the host in between:\n%s" % (
        len(failures), len(points), sweep, "\n".join(failures))


def test_killed_after_each_systemctl_and_rename_of_deploy(world):
    """--after: the child systemctl has exited, the file is created (still
    empty): the states just after each such step of `deploy v2` (after any
    other step is the same state as before the next one, already swept)."""
    base = world["base"]
    root = os.path.join(base, "count-after")
    trace = root + ".trace"
    shutil.copytree(world["A"], root, symlinks=True)
    try:
        total = count_events(root, "deploy", world["specs"][2], trace=trace)
        with open(trace) as f:
            events = [l.rstrip("\n").split("\t") for l in f]
    finally:
        shutil.rmtree(root, ignore_errors=True)
        os.unlink(trace)
    assert len(events) == total
    points = [(int(n), True) for n, ev, *_ in events
              if ev in ("subprocess.Popen", "open")]
    assert any(ev == "subprocess.Popen" for _, ev, *_ in events), events
    failures = run_sweep(world, "deploy v2", points)
    sys.stderr.write("\ncrash sweep `deploy v2` --after: %d kill points tried, %d survived\n"
                     % (len(points), len(points) - len(failures)))
    assert not failures, "%d of %d kill points left the host in between:\n%s" % (
        len(failures), len(points), "\n".join(failures))


def test_killer_counts_the_same_run_the_same_way(world):
    """The sweep is only complete if a run's events are the same every time."""
    a = sweep_total(world, "deploy v2")
    b = sweep_total(world, "deploy v2")
    assert a == b


def test_killed_recovery_is_recovered_too(world):
    """Kill `deploy v2` in the middle of its switch, then kill the recovering
    command at each of its own steps: the one after that still recovers."""
    specs = world["specs"]
    base = world["base"]
    # the kill point: just before `systemctl enable` of v2 (units of v2 installed, v1's gone)
    probe = os.path.join(base, "probe")
    trace = probe + ".trace"
    shutil.copytree(world["A"], probe, symlinks=True)
    try:
        count_events(probe, "deploy", specs[2], trace=trace)
        with open(trace) as f:
            events = [l.rstrip("\n").split("\t") for l in f]
    finally:
        shutil.rmtree(probe, ignore_errors=True)
        os.unlink(trace)
    enable = [int(n) for n, ev, what in events if ev == "subprocess.Popen" and " enable " in what]
    assert enable, events
    killed = os.path.join(base, "killed-once")
    shutil.copytree(world["A"], killed, symlinks=True)
    try:
        r = run_killer(killed, enable[0], "deploy", specs[2])
        assert r.returncode == -signal.SIGKILL, show(r)
        assert os.path.exists(os.path.join(killed, "var/lib/ops/journal/hello.json"))
        counted = os.path.join(base, "killed-count")
        shutil.copytree(killed, counted, symlinks=True)
        try:
            total = count_events(counted, "undeploy", OTHER)
        finally:
            shutil.rmtree(counted, ignore_errors=True)
        assert total > 5, total

        def twice(n):
            root = os.path.join(base, "killed-twice-%d" % n)
            shutil.copytree(killed, root, symlinks=True)
            try:
                r = run_killer(root, n, "undeploy", OTHER, trace=root + ".trace")
                with open(root + ".trace") as f:
                    where = [l.strip() for l in f if l.startswith("KILL")]
                if r.returncode != -signal.SIGKILL:
                    return "recovery kill point %d: not killed: %s" % (n, show(r))
                rec = run_ops(root, "undeploy", OTHER)
                problems = whole_problems(root, specs)
                if rec.returncode != 0 or problems or current_of(root) != 1:
                    return ("recovery kill point %d (%s): exit %d, current %r, %s\n%s"
                            % (n, where, rec.returncode, current_of(root), problems, show(rec)))
                return None
            finally:
                shutil.rmtree(root, ignore_errors=True)
                os.unlink(root + ".trace")
        with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
            failures = [f for f in pool.map(twice, range(1, total + 1)) if f]
        sys.stderr.write("\ncrash sweep of the recovery itself: %d kill points, %d survived\n"
                         % (total, total - len(failures)))
        assert not failures, "\n".join(failures)
    finally:
        shutil.rmtree(killed, ignore_errors=True)


def test_the_checks_see_a_tree_in_between(world):
    """whole_problems is the judge of every sweep: each way of being half-way
    (or dirty) below must be reported."""
    specs = world["specs"]

    def broken(name, how):
        root = os.path.join(world["base"], "broken-" + name)
        shutil.copytree(world["B"], root, symlinks=True)
        try:
            held = how(root)
            found = whole_problems(root, specs)
            if isinstance(held, int):
                os.close(held)
            return found
        finally:
            shutil.rmtree(root, ignore_errors=True)

    def write(path, data=b"x"):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    def hold_lock(r):
        fd = os.open(os.path.join(r, "var/lib/ops/lock"), os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    sysd = "etc/systemd/system/"
    cases = {
        "lock held": hold_lock,
        "journal": lambda r: write(os.path.join(r, "var/lib/ops/journal/hello.json"), b"{}"),
        "tmp file": lambda r: write(os.path.join(r, sysd, "hello-web.service.d/.ops-tmp-1-50-ops.conf")),
        "download": lambda r: write(os.path.join(r, "var/lib/ops/tmp/x.tar")),
        "wants link gone": lambda r: os.unlink(os.path.join(r, sysd, "timers.target.wants/hello-tick.timer")),
        "v1 unit installed": lambda r: write(os.path.join(r, sysd, "hello-once.service"),
                                             UNITS[1][2][3].encode()),
        "unit of v1 content": lambda r: write(os.path.join(r, sysd, "hello-web.service"),
                                              UNITS[1][0][3].encode()),
        "drop-in of v1": lambda r: write(os.path.join(r, sysd, "hello-web.service.d/50-ops.conf"),
                                         b'[Service]\nEnvironment="POD_NAME=hello" "POD_VERSION=1" '
                                         b'"POD_MANIFEST=/etc/ops/pods/hello/1/manifest.json" '
                                         b'"POD_VOLUMES=/var/lib/ops/volumes/hello/1"\n'),
        "current dangling": lambda r: (os.unlink(os.path.join(r, "etc/ops/current/hello")),
                                       os.symlink("../pods/hello/3", os.path.join(r, "etc/ops/current/hello"))),
        "stored unit cut": lambda r: write(os.path.join(r, "etc/ops/pods/hello/1/units/hello-web.service"),
                                           b"[Unit]\n"),
        "state.json gone": lambda r: os.unlink(os.path.join(r, "etc/ops/pods/hello/1/state.json")),
        "volume cut": lambda r: os.unlink(os.path.join(r, "var/lib/ops/volumes/hello/2/www/data/more.txt")),
        "volume of nothing": lambda r: os.makedirs(os.path.join(r, "var/lib/ops/volumes/hello/7/www")),
    }
    missed = [name for name, how in cases.items() if not broken(name.replace(" ", "-"), how)]
    assert not missed, "whole_problems did not see: %s" % missed
    assert whole_problems(world["B"], specs) == []


def test_sigterm_at_every_step_leaves_a_whole_version_without_recovery(world):
    """SIGTERM (an Ansible timeout, a shutdown) at each step of `deploy v2`
    (the first and the last event of every step, as the kill points): ops
    undoes its staging or rolls the switch back itself, exits 1 (or 0 when the
    signal came after the commit), and leaves no journal behind — the very
    next look at the host finds one whole version, with no recovery run."""
    specs = world["specs"]
    points = kill_points(sweep_events(world, "deploy v2"))

    def one(n):
        root = _copy(world, "term-%d" % n)
        try:
            argv = [sys.executable, KILLER, "--term", str(n), "--", "--root", root,
                    "deploy", str(specs[2])]
            r = subprocess.run(argv, cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
            want = {0: 2, 1: 1}.get(r.returncode)
            problems = whole_problems(root, specs)
            if want is None:
                problems.append("exit %d (want 0 or 1)" % r.returncode)
            elif current_of(root) != want:
                problems.append("exit %d but current is %r" % (r.returncode, current_of(root)))
            if "Traceback" in r.stderr:
                problems.append("a traceback")
            if problems:
                return "SIGTERM before event %d: %s\n%s" % (n, problems, show(r))
            return None
        finally:
            shutil.rmtree(root, ignore_errors=True)
    with concurrent.futures.ThreadPoolExecutor(WORKERS) as pool:
        bad = [b for b in pool.map(one, points) if b]
    tried = len(points)
    sys.stderr.write("\nSIGTERM sweep `deploy v2`: %d points tried, %d whole\n"
                     % (tried, tried - len(bad)))
    assert not bad, "\n".join(bad[:5])


def _copy(world, label):
    root = os.path.join(world["base"], label)
    shutil.copytree(world["A"], root, symlinks=True)
    return root
