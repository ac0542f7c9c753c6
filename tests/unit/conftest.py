"""Shared fixtures for the offline tests: a bundle builder, ``ops`` run
in-process or as a real process, and a snapshot of a ROOT tree.

Every test gets its own ROOT (``root``) under ``tmp_path``; ``ops(...)``
puts ``--root ROOT`` in front of the arguments it is given, so a test reads
like the command an operator types: ``ops("deploy", bundle)``,
``ops("--json", "undeploy", "web", "--remove")``.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import pytest

from tests.support import gpg

REPO = Path(__file__).resolve().parents[2]
RKT_STANDIN = REPO / "tests" / "rkt" / "rkt"


def unit_text(name, body="", wanted_by="multi-user.target"):
    """A unit file that `systemctl enable` can act on (it has [Install])."""
    section = {"service": "Service", "socket": "Socket", "timer": "Timer",
               "path": "Path"}.get(name.rsplit(".", 1)[-1])
    text = "[Unit]\nDescription=%s of the test pod\n" % name
    if section == "Service":
        text += "\n[Service]\nExecStart=/bin/true %s\n" % body
    elif section == "Timer":
        text += "\n[Timer]\nOnCalendar=daily\n"
    elif section == "Socket":
        text += "\n[Socket]\nListenStream=127.0.0.1:9\n"
    elif section == "Path":
        text += "\n[Path]\nPathExists=/tmp\n"
    text += "\n[Install]\nWantedBy=%s\n" % (
        "timers.target" if section == "Timer" else wanted_by)
    return text


def make_tar(path, files, compression="gz"):
    """Write a tar archive holding ``files`` ({member name: bytes or str})."""
    mode = "w:%s" % compression if compression else "w"
    with tarfile.open(str(path), mode) as tf:
        for name, data in sorted(files.items()):
            if isinstance(data, str):
                data = data.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return path


class Bundle:
    """A bundle directory written by :func:`build_bundle`."""

    def __init__(self, directory, name, version, ops_doc, manifest):
        self.dir = Path(directory)
        self.name = name
        self.version = version
        self.ops_doc = ops_doc
        self.manifest = manifest

    @property
    def pod_json(self):
        return self.dir / "pod.json"

    def __fspath__(self):
        return str(self.dir)

    def __str__(self):
        return str(self.dir)


def build_bundle(directory, name="web", version=1, units=None, volumes=None, images=None,
                 manifest_extra=None, unit_dir="units"):
    """Write pod.json, unit files and volume tarballs into ``directory``.

    ``units``: list of dicts ``{"file": "a.service", "start": True,
    "instances": [...] or N, "text": "..."}`` (text defaults to
    :func:`unit_text`); ``volumes``: {volume name: {member: data}} written as
    ``volumes/NAME.tar.gz``; ``images``: ops image entries as they go into the
    annotation; ``manifest_extra``: top-level keys of the pod manifest.
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ops_doc = {"name": name, "version": version}
    if units is None:
        units = [{"file": "%s-main.service" % name, "start": True}]
    entries = []
    for u in units:
        rel = "%s/%s" % (unit_dir, u["file"])
        (d / unit_dir).mkdir(exist_ok=True)
        text = u.get("text")
        if text is None:
            text = unit_text(u["file"], body="%s %s" % (name, version))
        (d / rel).write_text(text)
        entry = {"unit-file": rel}
        if "start" in u:
            entry["start"] = u["start"]
        if "instances" in u:
            entry["instances"] = u["instances"]
        entries.append(entry)
    if entries:
        ops_doc["systemd-units"] = entries
    if volumes:
        (d / "volumes").mkdir(exist_ok=True)
        ops_doc["volumes"] = []
        for vname, files in volumes.items():
            make_tar(d / "volumes" / ("%s.tar.gz" % vname), files)
            ops_doc["volumes"].append({"volume": vname, "data": "volumes/%s.tar.gz" % vname})
    if images:
        ops_doc["images"] = images
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11"}
    manifest.update(manifest_extra or {})
    manifest["annotations"] = list(manifest.get("annotations", [])) + [
        {"name": "ops", "value": json.dumps(ops_doc)}]
    (d / "pod.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return Bundle(d, name, version, ops_doc, manifest)


class Run:
    """What one ops run left: exit status, stdout and stderr."""

    def __init__(self, code, out, err, argv):
        self.code = code
        self.out = out
        self.err = err
        self.argv = argv

    @property
    def lines(self):
        return self.out.splitlines()

    @property
    def last(self):
        lines = self.lines
        return lines[-1] if lines else ""

    @property
    def error_lines(self):
        return [l for l in self.err.splitlines() if l.startswith("ops: error:")]

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "Run(%r, code=%r, out=%r, err=%r)" % (self.argv, self.code, self.out, self.err)


def run_inprocess(argv):
    from ops import cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in argv])
    return Run(code, out.getvalue(), err.getvalue(), argv)


def run_process(argv, env=None, timeout=60, python=None, preexec=None, cwd=None):
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(REPO)
    full_env.update(env or {})
    cmd = list(preexec or []) + [python or sys.executable, "-m", "ops"] + [str(a) for a in argv]
    proc = subprocess.run(cmd, cwd=str(cwd or REPO), env=full_env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    return Run(proc.returncode, proc.stdout, proc.stderr, argv)


FAST_TMP = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None


@pytest.fixture
def root(tmp_path):
    """An empty ROOT, on tmpfs when there is one: ops fsyncs every file it
    writes, which only costs time here (a test never loses power)."""
    if FAST_TMP is None:
        r = tmp_path / "root"
        r.mkdir()
        yield r
        return
    base = tempfile.mkdtemp(prefix="ops-unit-", dir=FAST_TMP)
    r = Path(base) / "root"
    r.mkdir()
    try:
        yield r
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def ops(root, monkeypatch):
    """``ops(*args)``: run ops in-process with ``--root ROOT`` in front."""
    monkeypatch.delenv("OPS_DEBUG", raising=False)

    def _ops(*args):
        return run_inprocess(["--root", str(root)] + list(args))
    return _ops


@pytest.fixture
def ops_proc(root):
    """``ops_proc(*args, env=...)``: ``python3 -m ops --root ROOT ...`` as a process."""
    def _ops(*args, env=None, timeout=60):
        return run_process(["--root", str(root)] + list(args), env=env, timeout=timeout)
    return _ops


@pytest.fixture
def bundle(tmp_path):
    """``bundle(name=..., version=..., units=..., volumes=..., ...)`` builds a
    bundle in a fresh directory under tmp_path."""
    counter = [0]

    def _bundle(**kw):
        counter[0] += 1
        d = tmp_path / "bundles" / ("%s-%s-%d" % (kw.get("name", "web"), kw.get("version", 1),
                                                   counter[0]))
        return build_bundle(d, **kw)
    return _bundle


@pytest.fixture
def rkt(root, tmp_path, monkeypatch):
    """OPS_RKT is the rkt stand-in, its invocations logged to a file:
    ``rkt.calls()`` gives the argv of each run; ``rkt.run(...)`` runs it on
    ROOT's store (unlogged)."""
    log = tmp_path / "rkt.log"
    monkeypatch.setenv("OPS_RKT", str(RKT_STANDIN))
    monkeypatch.setenv("FAKE_RKT_LOG", str(log))
    monkeypatch.delenv("FAKE_RKT_FAIL", raising=False)

    class Rkt:
        dir_flag = "--dir=%s" % (root / "var/lib/rkt")
        config_flag = "--local-config=%s" % (root / "etc/rkt")

        @staticmethod
        def calls():
            if not log.exists():
                return []
            return [json.loads(l)["argv"] for l in log.read_text().splitlines() if l.strip()]

        @staticmethod
        def fetches():
            return [a for a in Rkt.calls() if "fetch" in a]

        @staticmethod
        def removals():
            return [a[a.index("rm") + 1:] for a in Rkt.calls() if "rm" in a]

        @staticmethod
        def clear():
            if log.exists():
                log.unlink()

        @staticmethod
        def run(*args):
            env = dict(os.environ)
            env.pop("FAKE_RKT_LOG", None)
            return subprocess.run([str(RKT_STANDIN), Rkt.dir_flag, Rkt.config_flag]
                                  + list(args), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, universal_newlines=True,
                                  env=env, timeout=60)

        @staticmethod
        def image_list():
            """What `rkt --dir=ROOT/var/lib/rkt image list --format=json` prints, parsed."""
            p = Rkt.run("image", "list", "--format=json")
            assert p.returncode == 0, p.stderr
            return json.loads(p.stdout)

        @staticmethod
        def store():
            """IDs (71 characters) in ROOT's rkt store."""
            return sorted(i["id"] for i in (Rkt.image_list() or []))

        @staticmethod
        def trust(key, prefix):
            p = Rkt.run("trust", "--prefix", prefix, "--skip-fingerprint-review", str(key))
            assert p.returncode == 0, p.stderr
    return Rkt



# -- signals ---------------------------------------------------------------------

TRAPPED = ("SIGINT", "SIGTERM", "SIGHUP")      # the signals ops turns into a clean failure


def default_signals():
    """``preexec_fn`` of an ops process that a test signals: SIGINT, SIGTERM and SIGHUP
    at their defaults, whatever the test run inherited (nohup ignores SIGHUP, a
    background job SIGINT, and ops rightly keeps an ignored signal ignored)."""
    import signal
    for name in TRAPPED:
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.fixture
def signal_handlers():
    """For a test that signals ops run in-process: SIGINT, SIGTERM and SIGHUP are
    handled in this process (not ignored, as under nohup), by a handler that
    fails the test if ops lets one through; the dispositions come back after."""
    import signal

    def let_through(signum, frame):
        raise AssertionError("signal %d reached the test run: ops did not handle it" % signum)
    saved = {}
    for name in TRAPPED:
        signum = getattr(signal, name)
        saved[signum] = signal.signal(signum, let_through)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def public_dir():
    """A temporary directory that an unprivileged user (``NOBODY``) can enter."""
    d = tempfile.mkdtemp(prefix="ops-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def no_proxy(monkeypatch):
    """A proxy from the environment must not stand between ops and 127.0.0.1."""
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    """A gpg home with a fresh key: (home, path of the armoured public key)."""
    home = tmp_path_factory.mktemp("gnupg")
    pub = gpg.make_key(home)
    key = home.parent / ("%s-key.asc" % home.name)
    key.write_text(pub)
    yield home, key
    gpg.stop_agent(home)

# -- looking at ROOT -----------------------------------------------------------

LOCK_PARTS = ("var", "var/lib", "var/lib/ops", "var/lib/ops/lock")


def snapshot(root, ignore_lock=True):
    """Every path under ``root``: kind, bytes (files), target (symlinks), mode.

    The lock file (and the directories that hold it) is left out: taking the
    lock is not a change to the host."""
    root = str(root)
    snap = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            if ignore_lock and rel in LOCK_PARTS:
                continue
            st = os.lstat(p)
            if os.path.islink(p):
                snap[rel] = ("link", os.readlink(p))
            elif os.path.isdir(p):
                snap[rel] = ("dir", st.st_mode)
            else:
                with open(p, "rb") as f:
                    snap[rel] = ("file", f.read(), st.st_mode)
    return snap


def diff(before, after):
    """A readable difference between two snapshots (empty when equal)."""
    out = []
    for k in sorted(set(before) | set(after)):
        if k not in after:
            out.append("removed " + k)
        elif k not in before:
            out.append("added " + k)
        elif before[k] != after[k]:
            out.append("changed " + k)
    return out


def unit_dir(root):
    return Path(root) / "etc/systemd/system"


def wants(root, target="multi-user.target"):
    """Names enabled into ``target`` (the symlinks systemctl enable made)."""
    d = unit_dir(root) / ("%s.wants" % target)
    return sorted(os.listdir(str(d))) if d.is_dir() else []


def current_link(root, name):
    p = Path(root) / "etc/ops/current" / name
    return os.readlink(str(p)) if os.path.islink(str(p)) else None


def state(root, name, version):
    with open(str(Path(root) / "etc/ops/pods" / name / str(version) / "state.json")) as f:
        return json.load(f)


def stored_versions(root, name):
    d = Path(root) / "etc/ops/pods" / name
    return sorted(int(n) for n in os.listdir(str(d)) if n.isdigit()) if d.is_dir() else []


def dropin(root, unit):
    return (unit_dir(root) / (unit + ".d") / "50-ops.conf").read_text()


def dropin_env(root, unit):
    """The Environment= assignments of the ops drop-in as a dict."""
    import shlex
    env = {}
    for line in dropin(root, unit).splitlines():
        if line.startswith("Environment="):
            for word in shlex.split(line[len("Environment="):]):
                k, _, v = word.partition("=")
                env[k] = v
    return env
