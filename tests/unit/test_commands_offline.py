"""redeploy, undeploy, cleanup, list, --json, --dry-run and the command line
itself, against a temporary ROOT (offline mode)."""

import json
import os
import re
import shutil

import pytest

from conftest import (NOBODY, current_link, diff, dropin_env, run_process, snapshot, state,
                      stored_versions, unit_dir, unit_text, wants)

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)


def web(bundle, version, units=None, volumes=True):
    """Version N of pod "web": web-api.service, plus web-vN.service only in N."""
    if units is None:
        units = [{"file": "web-api.service", "start": True,
                  "text": unit_text("web-api.service", body="v%d" % version)},
                 {"file": "web-v%d.service" % version, "start": True}]
    vols = {"data": {"version.txt": "%d\n" % version}} if volumes else None
    return bundle(name="web", version=version, units=units, volumes=vols)


@pytest.fixture
def deployed(ops, bundle):
    """``deployed(*versions)``: deploy web at each version in turn; return bundles."""
    def _deployed(*versions):
        out = {}
        for v in versions:
            b = web(bundle, v)
            r = ops("deploy", b)
            assert r.code == 0, r
            out[v] = b
        return out
    return _deployed


def on_version(root, version):
    """The host runs exactly web version ``version``."""
    assert current_link(root, "web") == "../pods/web/%d" % version
    names = sorted(n for n in os.listdir(str(unit_dir(root)))
                   if n.startswith("web-") and not n.endswith(".d"))
    assert names == ["web-api.service", "web-v%d.service" % version]
    assert wants(root) == names
    assert dropin_env(root, "web-api.service")["POD_VERSION"] == str(version)
    assert ("v%d" % version) in (unit_dir(root) / "web-api.service").read_text()


# -- redeploy -----------------------------------------------------------------

def test_redeploy_a_stored_version_without_the_bundle(ops, root, deployed):
    bundles = deployed(1, 2)
    for b in bundles.values():
        shutil.rmtree(str(b.dir))
    # the stored volume is used as it is, not unpacked again
    marker = root / "var/lib/ops/volumes/web/1/data/version.txt"
    marker.write_text("edited on the host\n")
    r = ops("redeploy", "web:1")
    assert r.code == 0, r
    assert r.last == "redeploy web 1: changed"
    on_version(root, 1)
    assert marker.read_text() == "edited on the host\n"
    assert stored_versions(root, "web") == [1, 2]


def test_redeploy_without_version_goes_one_back(ops, root, deployed):
    deployed(1, 2, 3)
    r = ops("redeploy", "web")
    assert r.code == 0, r
    assert r.last == "redeploy web 2: changed"
    on_version(root, 2)
    r = ops("redeploy", "web")
    assert r.last == "redeploy web 1: changed"
    on_version(root, 1)


def test_redeploy_without_version_and_nothing_current_takes_the_newest(ops, root, deployed):
    deployed(1, 2)
    assert ops("undeploy", "web").code == 0
    r = ops("redeploy", "web")
    assert r.code == 0, r
    assert r.last == "redeploy web 2: changed"
    on_version(root, 2)


def test_redeploy_with_no_older_version_is_refused(ops, root, deployed):
    deployed(1)
    before = snapshot(root)
    r = ops("redeploy", "web")
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "no stored version older" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_redeploy_of_an_unknown_pod_is_refused(ops, root):
    r = ops("redeploy", "nothing")
    assert r.code == 2, r
    assert len(r.error_lines) == 1


def test_redeploy_of_an_unknown_version_is_refused(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root)
    r = ops("redeploy", "web:9")
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "web:9" in r.error_lines[0] and "not stored" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_redeploy_of_a_version_whose_volumes_are_gone_is_refused(ops, root, deployed):
    deployed(1, 2)
    shutil.rmtree(str(root / "var/lib/ops/volumes/web/1/data"))
    before = snapshot(root)
    r = ops("redeploy", "web:1")
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "var/lib/ops/volumes/web/1/data" in r.error_lines[0]
    assert "missing" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []
    on_version(root, 2)


def test_redeploy_of_the_current_version_is_unchanged(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root)
    r = ops("redeploy", "web:2")
    assert r.code == 0, r
    assert r.last == "redeploy web 2: unchanged"
    assert diff(before, snapshot(root)) == []


def test_redeploy_json(ops, root, deployed):
    deployed(1, 2)
    r = ops("--json", "redeploy", "web:1")
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is True
    assert doc["command"] == "redeploy"
    assert doc["pod"] == {"name": "web", "version": 1}
    assert doc["previous"] == 2
    assert doc["rolled_back"] is False and doc["error"] is None
    assert {"action": "set-current", "target": "web 1"} in doc["actions"]


# -- undeploy -----------------------------------------------------------------

def test_undeploy_removes_units_and_current_keeps_versions(ops, root, deployed):
    deployed(1, 2)
    r = ops("undeploy", "web")
    assert r.code == 0, r
    assert r.last == "undeploy web 2: changed"
    assert current_link(root, "web") is None
    assert not os.path.lexists(str(root / "etc/ops/current/web"))
    assert [n for n in os.listdir(str(unit_dir(root))) if n.startswith("web-")] == []
    assert wants(root) == []
    assert stored_versions(root, "web") == [1, 2]
    assert (root / "var/lib/ops/volumes/web/2/data/version.txt").is_file()


def test_undeploy_twice_is_unchanged(ops, root, deployed):
    deployed(1)
    assert ops("undeploy", "web").code == 0
    before = snapshot(root)
    r = ops("undeploy", "web")
    assert r.code == 0, r
    assert r.last.startswith("undeploy web")
    assert r.last.endswith(": unchanged")
    assert diff(before, snapshot(root)) == []


def test_undeploy_of_an_unknown_pod_is_not_an_error(ops, root, deployed):
    deployed(1)
    before = snapshot(root)
    r = ops("undeploy", "nosuchpod")
    assert r.code == 0, r
    assert r.last == "undeploy nosuchpod: unchanged"
    assert r.error_lines == []
    assert diff(before, snapshot(root)) == []
    r = ops("--json", "undeploy", "nosuchpod", "--remove")
    assert r.code == 0
    assert r.json()["ok"] is True and r.json()["changed"] is False


def test_undeploy_of_a_version_that_is_not_current_does_nothing(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root)
    r = ops("undeploy", "web:1")
    assert r.code == 0, r
    assert r.last == "undeploy web 1: unchanged"
    assert diff(before, snapshot(root)) == []


def test_undeploy_of_the_current_version_by_number(ops, root, deployed):
    deployed(1, 2)
    r = ops("undeploy", "web:2")
    assert r.code == 0, r
    assert r.last == "undeploy web 2: changed"
    assert current_link(root, "web") is None
    assert wants(root) == []


def test_undeploy_one_version_remove(ops, root, deployed):
    deployed(1, 2, 3)
    r = ops("undeploy", "web:1", "--remove")
    assert r.code == 0, r
    assert r.last == "undeploy web 1: changed"
    assert stored_versions(root, "web") == [2, 3]
    assert not os.path.lexists(str(root / "var/lib/ops/volumes/web/1"))
    assert (root / "var/lib/ops/volumes/web/2/data/version.txt").is_file()
    on_version(root, 3)


def test_undeploy_current_version_remove(ops, root, deployed):
    deployed(1, 2)
    r = ops("undeploy", "web:2", "--remove")
    assert r.code == 0, r
    assert stored_versions(root, "web") == [1]
    assert current_link(root, "web") is None
    assert wants(root) == []
    assert not os.path.lexists(str(root / "var/lib/ops/volumes/web/2"))
    assert (root / "var/lib/ops/volumes/web/1").is_dir()
    # the freed version number can be deployed again, with other content
    assert ops("redeploy", "web:1").code == 0


def test_undeploy_pod_remove_deletes_everything_of_it(ops, root, deployed, bundle):
    deployed(1, 2)
    other = bundle(name="other", version=5, units=[{"file": "other.service", "start": True}],
                   volumes={"v": {"f": "x"}})
    assert ops("deploy", other).code == 0
    before = snapshot(root)
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert r.last == "undeploy web 2: changed"
    for p in ("etc/ops/pods/web", "var/lib/ops/volumes/web", "etc/ops/current/web"):
        assert not os.path.lexists(str(root / p)), p
    assert [n for n in os.listdir(str(unit_dir(root))) if n.startswith("web-")] == []
    # the other pod is untouched
    after = snapshot(root)
    for k, v in before.items():
        if "web" not in k.split("/")[-1] and "/web" not in "/" + k:
            assert after.get(k) == v, k
    assert wants(root) == ["other.service"]


def test_undeploy_remove_when_nothing_is_current(ops, root, deployed):
    deployed(1)
    assert ops("undeploy", "web").code == 0
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert r.last.endswith(": changed")
    assert not os.path.lexists(str(root / "etc/ops/pods/web"))


def test_undeploy_json(ops, root, deployed):
    deployed(1)
    r = ops("--json", "undeploy", "web", "--remove")
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is True
    assert doc["command"] == "undeploy"
    assert doc["pod"] == {"name": "web", "version": 1}
    assert doc["previous"] == 1
    verbs = [a["action"] for a in doc["actions"]]
    assert "clear-current" in verbs and "remove-version" in verbs


# -- cleanup ------------------------------------------------------------------

def test_cleanup_keeps_current_and_the_newest_other(ops, root, deployed):
    deployed(1, 2, 3, 4, 5)
    assert ops("redeploy", "web:4").code == 0
    r = ops("cleanup", "--keep", "1")
    assert r.code == 0, r
    # 3 is the newest ok version older than the current: redeploy's target
    assert r.lines == ["cleanup web: removed 1 2; kept 3 (rollback target)"]
    assert stored_versions(root, "web") == [3, 4, 5]
    assert sorted(os.listdir(str(root / "var/lib/ops/volumes/web"))) == ["3", "4", "5"]
    on_version(root, 4)


def test_cleanup_default_keep_is_one(ops, root, deployed):
    deployed(1, 2, 3)
    r = ops("cleanup")
    assert r.code == 0, r
    assert r.lines == ["cleanup web: removed 1"]
    assert stored_versions(root, "web") == [2, 3]


def test_cleanup_keep_zero(ops, root, deployed):
    deployed(1, 2, 3, 4, 5)
    assert ops("redeploy", "web:4").code == 0
    r = ops("cleanup", "--keep", "0")
    assert r.code == 0, r
    assert r.lines == ["cleanup web: removed 1 2 5; kept 3 (rollback target)"]
    assert stored_versions(root, "web") == [3, 4]
    on_version(root, 4)


def test_cleanup_with_nothing_to_remove(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root)
    r = ops("cleanup")
    assert r.code == 0, r
    assert r.lines == ["cleanup web: unchanged"]
    assert diff(before, snapshot(root)) == []


def test_cleanup_of_named_pods_only(ops, root, deployed, bundle):
    deployed(1, 2, 3)
    for v in (1, 2, 3):
        assert ops("deploy", bundle(name="db", version=v,
                                    units=[{"file": "db.service", "start": True}])).code == 0
    for v in (1, 2, 3):
        assert ops("deploy", bundle(name="cache", version=v, units=[])).code == 0
    r = ops("cleanup", "--keep", "0", "db", "cache")
    assert r.code == 0, r
    assert sorted(r.lines) == ["cleanup cache: removed 1; kept 2 (rollback target)",
                               "cleanup db: removed 1; kept 2 (rollback target)"]
    assert stored_versions(root, "db") == [2, 3]
    assert stored_versions(root, "cache") == [2, 3]
    assert stored_versions(root, "web") == [1, 2, 3]


def test_cleanup_of_a_pod_with_nothing_current(ops, root, deployed):
    deployed(1, 2, 3)
    assert ops("undeploy", "web").code == 0
    r = ops("cleanup", "--keep", "1", "web")
    assert r.code == 0, r
    assert r.lines == ["cleanup web: removed 1 2"]
    assert stored_versions(root, "web") == [3]


@pytest.mark.parametrize("keep", ["-1", "abc", "1.5", ""])
def test_cleanup_bad_keep_is_a_usage_error(ops, root, deployed, keep):
    deployed(1, 2, 3)
    before = snapshot(root)
    r = ops("cleanup", "--keep", keep)
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "--keep" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_cleanup_json(ops, root, deployed):
    deployed(1, 2, 3)
    r = ops("--json", "cleanup", "--keep", "0")
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is True
    assert doc["command"] == "cleanup"
    for key in ("pod", "previous", "rolled_back", "actions", "error"):
        assert key in doc
    assert [a["action"] for a in doc["actions"]].count("remove-version") == 1
    assert doc["removed"] == {"web": [1]}
    assert doc["kept"] == {"web": [{"version": 2, "why": "rollback target"}]}


# -- list ------------------------------------------------------------------------

def test_list_human(ops, root, deployed, bundle):
    deployed(1, 2)
    assert ops("deploy", bundle(name="db", version=7, units=[])).code == 0
    before = snapshot(root)
    r = ops("list")
    assert r.code == 0, r
    rows = [l.split() for l in r.lines]
    assert rows[0] == ["NAME", "VERSION", "CURRENT", "OUTCOME", "DEPLOYED", "AT"]
    body = rows[1:]
    assert [(x[0], x[1]) for x in body] == [("db", "7"), ("web", "1"), ("web", "2")]
    assert body[0][2] == "*" and body[2][2] == "*"
    assert body[1][2] == "ok"          # no mark in CURRENT for web 1
    for x in body:
        assert "ok" in x
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", x[-1]), x
    assert diff(before, snapshot(root)) == []


def test_list_json(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root)
    r = ops("--json", "list")
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True
    pods = doc["pods"]
    assert [(p["name"], p["version"], p["current"]) for p in pods] == \
        [("web", 1, False), ("web", 2, True)]
    for p in pods:
        assert set(p) >= {"name", "version", "current", "outcome", "deployed_at",
                          "interrupted"}
        assert p["outcome"] == "ok" and p["interrupted"] is False
        assert p["deployed_at"] == state(root, "web", p["version"])["deployed_at"]
    assert diff(before, snapshot(root)) == []


def test_list_of_one_pod_and_of_nothing(ops, root, deployed, bundle):
    deployed(1)
    assert ops("deploy", bundle(name="db", version=3, units=[])).code == 0
    doc = ops("--json", "list", "db").json()
    assert [(p["name"], p["version"]) for p in doc["pods"]] == [("db", 3)]
    doc = ops("--json", "list", "nothing").json()
    assert doc["ok"] is True and doc["pods"] == [] and doc["error"] is None


def test_list_on_an_empty_root_creates_nothing(ops, root):
    r = ops("list")
    assert r.code == 0, r
    assert os.listdir(str(root)) == []


def test_list_of_nothing_says_so_in_one_line(ops, root, deployed):
    r = ops("list")
    assert r.code == 0, r
    assert r.out == "no pod is stored\n"
    assert ops("--json", "list").json()["pods"] == []
    deployed(1)
    r = ops("list", "nothing")
    assert r.code == 0 and r.out == "no version of pod nothing is stored\n", r
    assert ops("--json", "list", "nothing").json()["pods"] == []


def test_list_shows_a_failed_outcome(ops, root, deployed):
    deployed(1, 2)
    p = root / "etc/ops/pods/web/1/state.json"
    st = json.loads(p.read_text())
    st["outcome"] = "failed"
    p.write_text(json.dumps(st))
    r = ops("list")
    row = [l.split() for l in r.lines if l.startswith("web") and l.split()[1] == "1"][0]
    assert "failed" in row


# -- --json on errors ------------------------------------------------------------

def test_json_error_exit_2(ops, root, bundle):
    b = bundle(name="web", version=1)
    assert ops("deploy", b).code == 0
    (b.dir / "units/web-main.service").write_text("changed\n")
    r = ops("--json", "deploy", b)
    assert r.code == 2
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is False and doc["changed"] is False
    assert doc["command"] == "deploy"
    assert doc["rolled_back"] is False
    for key in ("pod", "previous", "actions"):
        assert key in doc
    assert len(r.error_lines) == 1
    assert doc["error"] == r.error_lines[0][len("ops: error: "):]
    assert "bump the version" in doc["error"]


def test_json_usage_error(ops, root):
    r = ops("--json", "cleanup", "--keep", "x")
    assert r.code == 2
    doc = r.json()
    assert doc["ok"] is False and "--keep" in doc["error"]


# -- --dry-run ----------------------------------------------------------------

def test_dry_run_deploy_prints_the_plan_and_changes_nothing(ops, root, bundle):
    b = web(bundle, 1)
    r = ops("--dry-run", "deploy", b)
    assert r.code == 0, r
    text = r.out
    assert "install-unit web-api.service" in text
    assert "unpack-volume data" in text
    assert "enable web-api.service web-v1.service" in text
    assert r.last.startswith("deploy web 1: ")
    assert os.listdir(str(root)) == []          # not even the lock file


def test_dry_run_of_v2_changes_nothing(ops, root, deployed, bundle):
    deployed(1)
    before = snapshot(root, ignore_lock=False)
    r = ops("--dry-run", "deploy", web(bundle, 2))
    assert r.code == 0, r
    assert "remove-unit web-v1.service" in r.out
    assert "install-unit web-v2.service" in r.out
    assert diff(before, snapshot(root, ignore_lock=False)) == []
    on_version(root, 1)


def test_dry_run_json(ops, root, bundle):
    r = ops("--dry-run", "--json", "deploy", web(bundle, 1))
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is False
    assert any(a["action"] == "install-unit" for a in doc["actions"])
    assert os.listdir(str(root)) == []


def test_dry_run_of_other_commands_changes_nothing(ops, root, deployed):
    deployed(1, 2, 3)
    before = snapshot(root, ignore_lock=False)
    for args in (("redeploy", "web:1"), ("undeploy", "web", "--remove"),
                 ("cleanup", "--keep", "0")):
        r = ops("--dry-run", *args)
        assert r.code == 0, (args, r)
        assert diff(before, snapshot(root, ignore_lock=False)) == [], args
    r = ops("--dry-run", "cleanup", "--keep", "0")
    assert r.lines[-1] == "cleanup web: would remove 1; kept 2 (rollback target)"


# -- non-root -------------------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
@pytest.mark.parametrize("args", [("deploy", "{B}"), ("redeploy", "opsnonroottest:1"),
                                  ("undeploy", "opsnonroottest", "--remove"),
                                  ("cleanup", "opsnonroottest")])
def test_non_root_with_root_slash_is_refused(public_dir, args):
    from conftest import build_bundle
    b = build_bundle(os.path.join(public_dir, "bundle"), name="opsnonroottest", version=1)
    for dirpath, dirs, files in os.walk(public_dir):
        for n in dirs:
            os.chmod(os.path.join(dirpath, n), 0o755)
        for n in files:
            os.chmod(os.path.join(dirpath, n), 0o644)
    argv = [a.replace("{B}", str(b.dir)) for a in args]
    r = run_process(argv, python="/usr/bin/python3", preexec=NOBODY, cwd=public_dir,
                    env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert r.code == 2, r
    assert len(r.error_lines) == 1, r
    assert "must run as root" in r.error_lines[0]
    assert r.out == ""
    assert not os.path.lexists("/etc/ops/pods/opsnonroottest")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_non_root_may_prepare_an_image_it_owns(public_dir):
    from conftest import build_bundle
    b = build_bundle(os.path.join(public_dir, "bundle"), name="img", version=1)
    image = os.path.join(public_dir, "image")
    os.mkdir(image)
    for dirpath, dirs, files in os.walk(public_dir):
        for n in dirs + files:
            os.chown(os.path.join(dirpath, n), 65534, 65534)
    os.chown(public_dir, 65534, 65534)
    r = run_process(["--root", image, "deploy", str(b.dir)], python="/usr/bin/python3",
                    preexec=NOBODY, cwd=public_dir, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert r.code == 0, r
    assert r.last == "deploy img 1: changed"
    assert os.readlink(os.path.join(image, "etc/ops/current/img")) == "../pods/img/1"


# -- usage ---------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ("frobnicate",),
    (),
    ("deploy",),
    ("redeploy",),
    ("undeploy",),
    ("deploy", "a", "b"),
    ("--lock-timeout", "abc", "list"),
    ("--lock-timeout", "-1", "list"),
    ("--settle", "nan", "list"),
    ("--timeout", "x", "list"),
    ("-v", "-q", "list"),
    ("list", "--bogus"),
    ("redeploy", "Web"),
    ("redeploy", "web:x"),
    ("undeploy", "web:-1"),
    ("undeploy", "web/x"),
    ("cleanup", "BAD"),
    ("list", "a b"),
    ("--ca-file", "/nonexistent/ca.pem", "list"),
])
def test_usage_errors_exit_2_with_one_line(ops, root, args):
    r = ops(*args)
    assert r.code == 2, r
    assert len(r.error_lines) == 1, r
    assert r.err.splitlines() == r.error_lines, "nothing but the one error line"
    assert "Traceback" not in r.err
    assert r.out == ""
    assert os.listdir(str(root)) == []


def test_a_ca_file_that_is_a_fifo_is_refused_not_waited_on(ops_proc, root, tmp_path):
    fifo = tmp_path / "ca.pem"
    os.mkfifo(str(fifo))
    r = ops_proc("--ca-file", str(fifo), "list", timeout=30)
    assert r.code == 2 and r.error_lines == [
        "ops: error: ops: argument --ca-file: %r: cannot read: not a regular file" % str(fifo)], r


def test_version(ops):
    r = ops("--version")
    assert r.code == 0
    assert re.match(r"ops \d+\.\d+", r.out.strip()), r


def test_help_shows_examples(ops):
    r = ops("--help")
    assert r.code == 0
    assert "example" in r.out
    for c in ("check", "deploy", "redeploy", "undeploy", "list", "cleanup"):
        assert c in r.out


@pytest.mark.parametrize("command", ["check", "deploy", "redeploy", "undeploy", "list",
                                     "cleanup"])
def test_command_help_shows_an_example(ops, command):
    r = ops(command, "--help")
    assert r.code == 0, r
    assert "example" in r.out
    assert re.search(r"^\s+ops .*%s" % command, r.out, re.M), r.out


def test_runs_as_a_module(ops_proc, root, bundle):
    b = bundle(name="proc", version=2)
    r = ops_proc("deploy", str(b.dir), env={"HOME": "", "LANG": "C"})
    assert r.code == 0, r
    assert r.last == "deploy proc 2: changed"
    r = ops_proc("--version")
    assert r.code == 0 and r.out.startswith("ops ")


def test_progress_on_stderr_result_on_stdout(ops, root, bundle):
    r = ops("deploy", web(bundle, 1))
    assert r.code == 0, r
    assert r.lines == ["deploy web 1: changed"]
    assert "install-unit web-api.service" in r.err
    assert "+ systemctl" not in r.err
    r = ops("-q", "deploy", web(bundle, 2))
    assert r.code == 0, r
    assert r.lines == ["deploy web 2: changed"]
    assert r.err == ""
    r = ops("-v", "redeploy", "web:1")
    assert r.code == 0, r
    assert r.lines == ["redeploy web 1: changed"]
    assert "+ systemctl --root=%s enable --no-reload -- web-api.service web-v1.service" % root in r.err
    assert "+ systemctl --root=%s disable --no-reload -- web-api.service web-v2.service" % root in r.err
    for line in r.err.splitlines():
        if line.startswith("+ systemctl"):
            assert line.split()[3] in ("enable", "disable", "is-enabled"), line


def test_check_summarises_and_writes_nothing(ops, root, bundle):
    b = bundle(name="web", version=3, units=[
        {"file": "web-api.service", "start": True},
        {"file": "web-w@.service", "start": True, "instances": 2}],
        volumes={"data": {"f": "x"}})
    r = ops("check", b)
    assert r.code == 0, r
    assert r.lines[0] == "web 3: valid: 2 units, 0 images, 1 volume"
    assert any("web-w@.service" in l and "instances 0 1" in l for l in r.lines)
    assert os.listdir(str(root)) == []


@pytest.mark.parametrize("command", ["deploy", "list", "cleanup", "status", "check"])
def test_a_json_object_has_the_same_keys_whether_the_command_succeeds_or_fails(
        command, ops, root, bundle, tmp_path):
    good = str(bundle(name="web", version=1))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    args = {"deploy": ([good], [str(bad)]), "check": ([good], [str(bad)]),
            "list": ([], ["Not-A-Pod"]), "cleanup": ([], ["Not-A-Pod:x"]),
            "status": ([], ["nosuch"])}[command]
    ok, failed = (ops("--json", command, *a) for a in args)
    assert ok.code == 0 and failed.code != 0, (ok, failed)
    yes, no = ok.json(), failed.json()
    assert set(yes) == set(no)
    assert {"ok", "changed", "command", "dry_run", "exit_code", "error", "reason"} <= set(yes)
    assert (yes["ok"], yes["error"], yes["reason"], yes["exit_code"]) == (True, None, None, 0)
    assert no["ok"] is False and no["exit_code"] == failed.code
    assert no["error"] == failed.error_lines[0][len("ops: error: "):]
    assert set(no["reason"]) == {"pod", "version", "unit", "what", "rolled_back"}
    assert no["reason"]["what"] and no["reason"]["what"] in no["error"]


def test_the_reason_of_a_refused_redeploy_names_the_pod(ops, root, deployed):
    deployed(1)
    r = ops("--json", "redeploy", "web:7")
    assert r.code == 2
    doc = r.json()
    assert doc["pod"] == {"name": "web", "version": 7} and doc["previous"] == 1
    assert doc["reason"] == {"pod": "web", "version": 7, "unit": None,
                             "what": "not stored (see `ops list web`)", "rolled_back": False}


def test_deploy_of_a_stored_pods_version_that_is_not_stored_says_what_is(ops, root, deployed):
    deployed(1, 2)
    r = ops("deploy", "web:7")
    assert r.code == 2, r
    assert r.error_lines == ["ops: error: web:7: no such bundle, and version 7 of web is not "
                             "stored (stored: 1 2); deploy its bundle, or ops redeploy web:VERSION"]


def test_a_version_of_2_to_the_63_is_not_a_version(ops, root, deployed):
    deployed(1)
    r = ops("redeploy", "web:9223372036854775808")
    assert r.code == 2 and "web:9223372036854775808" in r.err, r
    assert "not stored" not in r.err, r
