"""Live tests: ops against a real systemd, booted in a throwaway container (tests/live/container.py).

One container per test module (``container`` fixture); the tests of a module run in file order as one story.
A container that cannot boot fails the tests with the reason; only ``OPS_LIVE=0``, set by hand, skips them.
"""

import json
import os
import shutil
import time

import pytest

from .container import REPO, Container, ContainerError

EXAMPLES = os.path.join(REPO, "examples")

OPS_ENV = {
    "PYTHONPATH": "/src",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPS_RKT": "/src/tests/rkt/rkt",
    "LANG": "C.UTF-8",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
}


@pytest.fixture(scope="module")
def container():
    if os.environ.get("OPS_LIVE") == "0":
        pytest.skip("OPS_LIVE=0: live tests against a systemd container switched off by hand")
    if os.geteuid() != 0:
        pytest.fail("live tests boot a systemd container and must run as root (set OPS_LIVE=0 to skip them)")
    c = Container()
    try:
        c.boot()
    except ContainerError as e:
        pytest.fail("cannot boot the test container: %s" % e, pytrace=False)
    try:
        yield c
    finally:
        c.poweroff()


@pytest.fixture(scope="module")
def real_rkt():
    """(rkt, stage1) of a real rkt on this machine ($OPS_TEST_RKT); without one the module fails saying why.
    Only ``OPS_TEST_RKT=0``, set by hand, skips the tests that need it (as ``OPS_LIVE=0`` does the container).

    List it before ``container`` so that a module without a real rkt ends before booting one."""
    from tests.support import realrkt
    if os.environ.get("OPS_TEST_RKT") == "0":
        pytest.skip("OPS_TEST_RKT=0: tests on the real rkt switched off by hand")
    try:
        return realrkt.find()
    except realrkt.Missing as e:
        why = str(e)
    pytest.fail("%s; OPS_TEST_RKT=0 skips these tests" % why, pytrace=False)   # one line, no chained context


# -- running ops and systemctl inside ---------------------------------------------------------------------

# The settle time of the ops runs here, unless a test gives one: the units of these tests start at once and
# stay up, so half a second of polling tells as much as the default 2 s.  A test about settling (a unit that
# exits a moment after it starts) passes settle=None and gets ops's default.
SETTLE = "0.5"


def ops(container, *args, check=None, timeout=180, settle=SETTLE):
    """``/usr/bin/python3 -m ops ARGS`` inside the container; with ``check``, assert that exit code.

    ``--settle SETTLE`` goes first unless ARGS has a ``--settle`` (or settle is None: ops's default).
    ops uses the rkt stand-in, or the real rkt once tests/support/realrkt.install put one in the container."""
    env = dict(OPS_ENV, OPS_RKT=getattr(container, "ops_rkt", None) or OPS_ENV["OPS_RKT"])
    args = [str(a) for a in args]
    if settle is not None and not any(a == "--settle" or a.startswith("--settle=") for a in args):
        args = ["--settle", str(settle)] + args
    r = container.run(["/usr/bin/python3", "-m", "ops"] + args, env=env, timeout=timeout)
    if check is not None:
        assert r.returncode == check, describe(r, "expected exit %d" % check)
    return r


def describe(r, why=""):
    return "%s\n$ %s\nexit %d\n--- stdout ---\n%s--- stderr ---\n%s" % (
        why, " ".join(r.args), r.returncode, r.stdout, r.stderr)


def last_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""


def ops_json(container, *args, check=None):
    """``ops --json ARGS``: the one JSON object on stdout, and the CompletedProcess."""
    r = ops(container, "--json", *args, check=check)
    try:
        obj = json.loads(r.stdout)
    except ValueError:
        raise AssertionError(describe(r, "stdout is not exactly one JSON object"))
    assert isinstance(obj, dict), describe(r, "stdout JSON is not an object")
    return obj, r


def list_pods(container, name=None):
    """``ops --json list [NAME]`` -> {(name, version): entry}."""
    obj, r = ops_json(container, "list", *([name] if name else []), check=0)
    assert obj.get("ok") is True, describe(r)
    return {(p["name"], p["version"]): p for p in obj["pods"]}


def systemctl(container, *args):
    return container.run(["systemctl"] + list(args))


def is_active(container, unit):
    return systemctl(container, "is-active", unit).stdout.strip()


def is_enabled(container, unit):
    return systemctl(container, "is-enabled", unit).stdout.strip()


def show(container, unit, prop):
    return systemctl(container, "show", "-p", prop, "--value", unit).stdout.rstrip("\n")


def exists(container, path):
    """Is there anything (even a dangling symlink) at ``path`` inside the container?"""
    return container.exists(path)


def readlink(container, path):
    return os.readlink(container.path(path))


def unit_files(container, prefix):
    """Names under /etc/systemd/system (top level) that start with ``prefix``."""
    d = container.path("/etc/systemd/system")
    return sorted(n for n in os.listdir(d) if n.startswith(prefix))


def wait_for(predicate, timeout=10.0, interval=0.1):
    """Poll ``predicate`` until it returns something true or ``timeout`` passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


HTTP_GET = r"""
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            sys.stdout.write(r.read().decode())
            break
    except OSError as e:
        if time.monotonic() >= deadline:
            sys.exit("GET %s: %s" % (sys.argv[1], e))
        time.sleep(0.1)
"""


def http_get(container, url, wait=10.0):
    """GET ``url`` from inside the container (retrying up to ``wait`` seconds while nothing listens)."""
    return container.run(["/usr/bin/python3", "-c", HTTP_GET, url, str(wait)], timeout=wait + 15)


# -- bundles ----------------------------------------------------------------------------------------------

def copy_bundle(container, host_dir, dest):
    """Copy the bundle directory ``host_dir`` into the container at ``dest`` (replacing it); return ``dest``."""
    if container.exists(dest):
        container.remove(dest)
    container.copytree(host_dir, dest)
    return dest


def make_bundle(directory, name, version, units=(), volumes=(), extra_ops=None):
    """Write a bundle into ``directory``: ``units`` is a list of (file name, text, start, instances or None);
    ``volumes`` a list of (volume name, {member: bytes}) packed as plain tar archives."""
    import io
    import tarfile
    os.makedirs(directory, exist_ok=True)
    entries = []
    for fname, text, start, instances in units:
        with open(os.path.join(directory, fname), "w") as f:
            f.write(text)
        e = {"unit-file": fname, "start": start}
        if instances is not None:
            e["instances"] = instances
        entries.append(e)
    vols = []
    for vname, members in volumes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
            for mname, data in sorted(members.items()):
                info = tarfile.TarInfo(mname)
                info.size = len(data)
                info.mode = 0o644
                info.mtime = 1700000000
                tar.addfile(info, io.BytesIO(data))
        with open(os.path.join(directory, vname + ".tar"), "wb") as f:
            f.write(buf.getvalue())
        vols.append({"volume": vname, "data": vname + ".tar"})
    annotation = {"name": name, "version": version, "systemd-units": entries}
    if vols:
        annotation["volumes"] = vols
    annotation.update(extra_ops or {})
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11",
                "annotations": [{"name": "ops", "value": json.dumps(annotation)}]}
    with open(os.path.join(directory, "pod.json"), "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    return directory


def copy_example(src, directory):
    shutil.copytree(src, directory)
    return directory


def service(description, exec_start, kind="simple", extra=""):
    """A small unit file text for a service wanted by multi-user.target."""
    return ("[Unit]\nDescription=%s\n\n[Service]\nType=%s\nExecStart=%s\n%s\n[Install]\nWantedBy=multi-user.target\n"
            % (description, kind, exec_start, extra))
