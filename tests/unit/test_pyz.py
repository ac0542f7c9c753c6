"""ops.pyz, built by tools/build_pyz.py: one file that behaves exactly like ``python3 -m ops``.

The archive is built once per module into a temporary directory with the running Python, then run as a user
would (``python3 ops.pyz ...``, from a directory that holds no ``ops`` package and without PYTHONPATH) and
compared with ``python3 -m ops`` from the source tree.
"""

import importlib.util
import io
import json
import os
import re
import stat
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(REPO, "tools", "build_pyz.py")
TIMEOUT = 120

sys.path.insert(0, REPO)
import ops  # noqa: E402  (the source tree's version, to compare with the archive's)


def _env(source_tree):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "OPS_DEBUG")}
    env["LANG"] = "C.UTF-8"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if source_tree:
        env["PYTHONPATH"] = REPO
    return env


def run_pyz(pyz, *args, cwd):
    return subprocess.run([sys.executable, pyz] + [str(a) for a in args], cwd=cwd, env=_env(False),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=TIMEOUT)


def run_module(*args, cwd):
    return subprocess.run([sys.executable, "-m", "ops"] + [str(a) for a in args], cwd=cwd, env=_env(True),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=TIMEOUT)


def describe(r):
    return "$ %s\nexit %d\n--- stdout ---\n%s--- stderr ---\n%s" % (" ".join(r.args), r.returncode, r.stdout,
                                                                   r.stderr)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pyz"))


@pytest.fixture(scope="module")
def pyz(workdir):
    out = os.path.join(workdir, "dist", "ops.pyz")
    r = subprocess.run([sys.executable, BUILD, out], cwd=workdir, env=_env(False), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=TIMEOUT)
    assert r.returncode == 0, describe(r)
    assert os.path.isfile(out), describe(r)
    return out


def write_bundle(directory, name="pyzdemo", version=3, extra_unit_keys=None):
    """A bundle with a plain service, a template with two instances and a volume (a plain tar)."""
    import tarfile
    os.makedirs(directory)
    with open(os.path.join(directory, "pyzdemo.service"), "w") as f:
        f.write("[Unit]\nDescription=pyz demo\n\n[Service]\nExecStart=/bin/sleep infinity\n\n"
                "[Install]\nWantedBy=multi-user.target\n")
    with open(os.path.join(directory, "pyzdemo-worker@.service"), "w") as f:
        f.write("[Unit]\nDescription=pyz worker %i\n\n[Service]\nExecStart=/bin/sleep infinity\n\n"
                "[Install]\nWantedBy=multi-user.target\n")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in (("index.html", b"<h1>hello</h1>\n"), ("conf/app.ini", b"[app]\nport=8080\n")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    with open(os.path.join(directory, "www.tar"), "wb") as f:
        f.write(buf.getvalue())
    unit = {"unit-file": "pyzdemo.service", "start": True}
    unit.update(extra_unit_keys or {})
    annotation = {"name": name, "version": version,
                  "systemd-units": [unit, {"unit-file": "pyzdemo-worker@.service", "start": True,
                                           "instances": 2}],
                  "volumes": [{"volume": "www", "data": "www.tar"}]}
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11",
                "annotations": [{"name": "ops", "value": json.dumps(annotation)}]}
    with open(os.path.join(directory, "pod.json"), "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    return directory


TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def snapshot(root):
    """Every path under ``root``: its kind and mode, a file's bytes (times in state.json masked), a link's target."""
    tree = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                tree[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                tree[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                with open(path, "rb") as f:
                    data = f.read()
                if name == "state.json":
                    data = TIMESTAMP.sub("<time>", data.decode()).encode()
                if rel == os.path.join("var", "lib", "ops", "lock"):
                    data = b"<lock>"      # may hold the PID of the last holder
                tree[rel] = ("file", stat.S_IMODE(st.st_mode), data)
    return tree


# -- the archive ------------------------------------------------------------------------------------------

def test_archive_is_an_executable_zipapp_with_sources_and_bytecode(pyz):
    with open(pyz, "rb") as f:
        assert f.readline() == b"#!/usr/bin/env python3\n"
    assert os.stat(pyz).st_mode & 0o111 == 0o111
    with zipfile.ZipFile(pyz) as z:
        names = set(z.namelist())
        main = z.read("__main__.py").decode()
        assert "import ops.cli\nops.cli.console()" in main
        sources = sorted(os.path.relpath(os.path.join(d, n), REPO).replace(os.sep, "/")
                         for d, dirs, files in os.walk(os.path.join(REPO, "ops"))
                         if "__pycache__" not in d for n in files if n.endswith(".py"))
        assert sources and "ops/cli.py" in sources
        for rel in sources + ["__main__.py"]:
            assert rel in names, rel
            if rel != "__main__.py":
                with open(os.path.join(REPO, rel), "rb") as f:
                    assert z.read(rel) == f.read(), rel
            pyc = z.read(rel + "c")
            assert pyc[:4] == importlib.util.MAGIC_NUMBER, rel + "c was not compiled by this Python"
        assert not [n for n in names if "__pycache__" in n]


def test_modules_load_from_the_archived_bytecode(pyz, workdir):
    code = ("import importlib, pkgutil, sys\nsys.path.insert(0, sys.argv[1])\nimport ops\n"
            "for m in pkgutil.iter_modules(ops.__path__, 'ops.'):\n"
            "    if m.name != 'ops.__main__':\n        print(importlib.import_module(m.name).__file__)\n")
    r = subprocess.run([sys.executable, "-c", code, pyz], cwd=workdir, env=_env(False), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=TIMEOUT)
    assert r.returncode == 0, describe(r)
    files = r.stdout.split()
    assert len(files) >= 10 and os.path.join(pyz, "ops", "cli.pyc") in files, describe(r)
    assert all(f.startswith(pyz + os.sep) and f.endswith(".pyc") for f in files), describe(r)


def test_bytecode_of_another_python_falls_back_to_the_source(pyz, workdir):
    """What another Python version sees: a .pyc with a foreign magic number is skipped, the .py is used."""
    other = os.path.join(workdir, "foreign-magic.pyz")
    with open(pyz, "rb") as f:
        shebang = f.readline()
    buf = io.BytesIO()
    with zipfile.ZipFile(pyz) as src, zipfile.ZipFile(buf, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith(".pyc"):
                data = b"\x00\x00\r\n" + data[4:]
            dst.writestr(info, data)
    with open(other, "wb") as f:
        f.write(shebang + buf.getvalue())
    r = run_pyz(other, "--version", cwd=workdir)
    assert r.returncode == 0 and r.stdout.strip() == "ops " + ops.__version__, describe(r)
    code = "import sys\nsys.path.insert(0, sys.argv[1])\nimport ops.cli\nprint(ops.cli.__file__)\n"
    r = subprocess.run([sys.executable, "-c", code, other], cwd=workdir, env=_env(False), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.strip() == os.path.join(other, "ops", "cli.py"), describe(r)


# -- the same behaviour as python3 -m ops -----------------------------------------------------------------

def test_version(pyz, workdir):
    a = run_pyz(pyz, "--version", cwd=workdir)
    b = run_module("--version", cwd=workdir)
    assert a.returncode == 0, describe(a)
    assert a.stdout.strip() == "ops " + ops.__version__, describe(a)
    assert (a.stdout, a.returncode) == (b.stdout, b.returncode)


def test_check_of_a_valid_bundle(pyz, workdir):
    bundle = write_bundle(os.path.join(workdir, "check-bundle"))
    a = run_pyz(pyz, "check", bundle, cwd=workdir)
    b = run_module("check", bundle, cwd=workdir)
    assert a.returncode == 0, describe(a)
    assert a.stdout.startswith("pyzdemo 3: valid: 2 units, 0 images, 1 volume"), describe(a)
    assert (a.stdout, a.stderr, a.returncode) == (b.stdout, b.stderr, b.returncode), describe(b)
    a = run_pyz(pyz, "--json", "check", bundle, cwd=workdir)
    b = run_module("--json", "check", bundle, cwd=workdir)
    assert a.returncode == 0 and json.loads(a.stdout)["ok"] is True, describe(a)
    assert json.loads(a.stdout) == json.loads(b.stdout)


def test_offline_deploy_gives_the_same_tree_as_the_module(pyz, workdir):
    bundle = write_bundle(os.path.join(workdir, "deploy-bundle"))
    root_pyz = os.path.join(workdir, "root-pyz")
    root_mod = os.path.join(workdir, "root-module")
    os.mkdir(root_pyz)
    os.mkdir(root_mod)
    a = run_pyz(pyz, "--root", root_pyz, "deploy", bundle, cwd=workdir)
    b = run_module("--root", root_mod, "deploy", bundle, cwd=workdir)
    assert a.returncode == 0, describe(a)
    assert b.returncode == 0, describe(b)
    assert a.stdout.splitlines()[-1] == "deploy pyzdemo 3: changed", describe(a)
    assert a.stdout == b.stdout
    assert a.stderr.replace(root_pyz, "ROOT") == b.stderr.replace(root_mod, "ROOT")
    tree, tree_mod = snapshot(root_pyz), snapshot(root_mod)
    index = os.path.join("etc", "ops", "pods", "pyzdemo", "index")   # inode numbers and times
    history = os.path.join("etc", "ops", "history", "pyzdemo.jsonl")  # times
    for timed in (index, history):
        assert tree[timed][0] == tree_mod[timed][0] == "file"
    assert {k: v for k, v in tree.items() if k not in (index, history)} == \
        {k: v for k, v in tree_mod.items() if k not in (index, history)}
    # what a user checks: the stored version, the current link, the units enabled offline, the volume
    assert tree[os.path.join("etc", "ops", "current", "pyzdemo")] == ("link", "../pods/pyzdemo/3")
    assert tree[os.path.join("etc", "systemd", "system", "multi-user.target.wants", "pyzdemo-worker@1.service")][0] \
        == "link"
    assert tree[os.path.join("var", "lib", "ops", "volumes", "pyzdemo", "3", "www", "conf", "app.ini")][2] \
        == b"[app]\nport=8080\n"
    with open(os.path.join(bundle, "pod.json"), "rb") as f:
        assert tree[os.path.join("etc", "ops", "pods", "pyzdemo", "3", "pod.json")][2] == f.read()

    # the same deploy again: unchanged, with one JSON object on stdout, and the tree as it was
    a = run_pyz(pyz, "--json", "--root", root_pyz, "deploy", bundle, cwd=workdir)
    b = run_module("--json", "--root", root_mod, "deploy", bundle, cwd=workdir)
    assert a.returncode == 0, describe(a)
    out = json.loads(a.stdout)
    assert out["ok"] is True and out["changed"] is False and out["pod"] == {"name": "pyzdemo", "version": 3}
    assert out == json.loads(b.stdout)
    assert snapshot(root_pyz) == tree

    a = run_pyz(pyz, "--json", "--root", root_pyz, "list", cwd=workdir)
    b = run_module("--json", "--root", root_mod, "list", cwd=workdir)
    assert a.returncode == 0, describe(a)
    rows = json.loads(a.stdout)["pods"]
    assert [(p["name"], p["version"], p["current"], p["outcome"]) for p in rows] == [("pyzdemo", 3, True, "ok")]
    mask = lambda rows: [dict(p, deployed_at=TIMESTAMP.sub("<time>", p["deployed_at"] or "")) for p in rows]
    assert mask(rows) == mask(json.loads(b.stdout)["pods"])


def test_invalid_bundle_exits_2_with_the_same_error_line(pyz, workdir):
    bundle = write_bundle(os.path.join(workdir, "invalid-bundle"), extra_unit_keys={"strat": True})
    root = os.path.join(workdir, "root-invalid")
    os.mkdir(root)
    for args in (("check", bundle), ("--root", root, "deploy", bundle)):
        a = run_pyz(pyz, *args, cwd=workdir)
        b = run_module(*args, cwd=workdir)
        assert a.returncode == 2, describe(a)
        lines = a.stderr.splitlines()
        errors = [l for l in lines if l.startswith("ops: error: ")]
        assert len(errors) == 1, describe(a)
        assert errors[0].startswith("ops: error: %s/pod.json: ops.systemd-units[0].strat" % bundle), describe(a)
        assert "Traceback" not in a.stderr
        assert (a.stdout, a.stderr, a.returncode) == (b.stdout, b.stderr, b.returncode), describe(b)
    assert os.listdir(root) == [] or not os.path.exists(os.path.join(root, "etc", "ops", "pods", "pyzdemo"))
    a = run_pyz(pyz, "--json", "check", bundle, cwd=workdir)
    assert a.returncode == 2, describe(a)
    out = json.loads(a.stdout)
    assert out["ok"] is False and "ops: error: " + out["error"] in a.stderr.splitlines()


def test_the_installed_command_script_runs_ops(tmp_path):
    """bin/ops is what `pip install .` puts on PATH (setup.py scripts=)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    script = os.path.join(REPO, "bin", "ops")
    r = subprocess.run([sys.executable, script, "--version"], env=env, capture_output=True,
                       text=True)
    assert (r.returncode, r.stdout) == (0, "ops %s\n" % ops.__version__)
    r = subprocess.run([sys.executable, script, "--root", str(tmp_path), "--json", "list"],
                       env=env, capture_output=True, text=True)
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["ok"] is True and doc["pods"] == [] and doc["command"] == "list"
    r = subprocess.run([sys.executable, script, "--root", str(tmp_path), "nosuch"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("ops: error: ops: argument COMMAND")


@pytest.mark.parametrize("entry", ["script", "module"])
def test_the_program_freezes_the_collector_before_it_exits_with_the_commands_status(tmp_path, entry):
    """bin/ops and `python3 -m ops` end through ops.cli.console: what the run
    built is out of the collector's reach when the interpreter exits (its last
    collection would only walk memory the process gives back), and the exit
    status and output are the command's."""
    env = dict(os.environ, PYTHONPATH=REPO)
    hook = ("import atexit, gc, sys\n"
            "atexit.register(lambda: sys.stderr.write('frozen=%d\\n' % gc.get_freeze_count()))\n")
    run = ("import runpy; runpy.run_path(%r, run_name='__main__')" % os.path.join(REPO, "bin", "ops")
           if entry == "script" else "import runpy; runpy.run_module('ops', run_name='__main__')")
    for args, code in ((["--root", str(tmp_path), "list"], 0), (["--root", str(tmp_path / "no"), "list"], 2)):
        r = subprocess.run([sys.executable, "-c", hook + run] + args, env=env, capture_output=True, text=True)
        assert r.returncode == code, r
        frozen = [l for l in r.stderr.splitlines() if l.startswith("frozen=")]
        assert len(frozen) == 1 and int(frozen[0][7:]) > 1000, r.stderr
        assert (r.stdout == "no pod is stored\n") if code == 0 else ("no such directory" in r.stderr)
