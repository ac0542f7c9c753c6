"""Which versions a pod keeps: `redeploy NAME` goes to the newest older ok
version, `cleanup` keeps it, `pin`/`unpin` protect versions (offline ROOT)."""

import fcntl
import json
import os

import pytest

from conftest import current_link, diff, snapshot, stored_versions


@pytest.fixture
def deployed(ops, bundle):
    """``deployed(*versions)``: deploy pod "web" at each version in turn."""
    def _deployed(*versions):
        for v in versions:
            r = ops("deploy", bundle(name="web", version=v,
                                     volumes={"data": {"v.txt": "%d\n" % v}}))
            assert r.code == 0, r
    return _deployed


def mark_failed(root, version):
    """Record version's last outcome as failed, as a rolled-back deploy does."""
    p = root / "etc/ops/pods/web" / str(version) / "state.json"
    st = json.loads(p.read_text())
    st["outcome"] = "failed"
    p.write_text(json.dumps(st))


def pin_file(root, version):
    return root / "etc/ops/pods/web" / ("%d.pinned" % version)


# -- redeploy NAME ---------------------------------------------------------------

def test_redeploy_without_version_skips_a_failed_version(ops, root, deployed):
    deployed(1, 2, 3)
    mark_failed(root, 2)
    r = ops("redeploy", "web")
    assert r.code == 0, r
    assert r.last == "redeploy web 1: changed"
    assert current_link(root, "web") == "../pods/web/1"


def test_redeploy_without_version_and_no_older_ok_version_is_refused(ops, root, deployed):
    deployed(1, 2)
    mark_failed(root, 1)
    before = snapshot(root)
    r = ops("redeploy", "web")
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "whose last outcome is ok" in r.error_lines[0]
    assert "ops redeploy web:VERSION" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []
    assert ops("redeploy", "web:1").code == 0     # a version named goes, ok or not


def test_redeploy_with_nothing_current_takes_the_newest_ok(ops, root, deployed):
    deployed(1, 2, 3)
    assert ops("undeploy", "web").code == 0
    mark_failed(root, 3)
    r = ops("redeploy", "web")
    assert r.last == "redeploy web 2: changed", r


# -- cleanup keeps the rollback target -----------------------------------------------

def test_cleanup_keeps_the_newest_ok_version_before_the_current(ops, root, deployed):
    deployed(1, 2, 3, 4)
    mark_failed(root, 3)
    r = ops("--json", "cleanup", "--keep", "0")
    assert r.code == 0, r
    doc = r.json()
    assert doc["removed"] == {"web": [1, 3]}
    assert doc["kept"] == {"web": [{"version": 2, "why": "rollback target"}]}
    assert stored_versions(root, "web") == [2, 4]
    assert sorted(os.listdir(str(root / "var/lib/ops/volumes/web"))) == ["2", "4"]
    assert ops("redeploy", "web").last == "redeploy web 2: changed"


def test_cleanup_does_not_report_what_keep_n_keeps_anyway(ops, root, deployed):
    deployed(1, 2, 3)
    r = ops("cleanup", "--keep", "1")
    assert r.lines == ["cleanup web: removed 1"]


# -- pin and unpin --------------------------------------------------------------------

def test_pin_protects_a_version_from_cleanup(ops, root, deployed):
    deployed(1, 2, 3, 4)
    r = ops("pin", "web:1")
    assert r.code == 0, r
    assert r.last == "pin web 1: changed"
    assert pin_file(root, 1).is_file()
    r = ops("cleanup", "--keep", "0")
    assert r.lines == ["cleanup web: removed 2; kept 1 (pinned), 3 (rollback target)"], r
    assert stored_versions(root, "web") == [1, 3, 4]


def test_pin_twice_is_unchanged_and_unpin_lets_cleanup_remove_it(ops, root, deployed):
    deployed(1, 2, 3)
    assert ops("pin", "web:1").code == 0
    before = snapshot(root)
    r = ops("pin", "web:1")
    assert (r.code, r.last) == (0, "pin web 1: unchanged")
    assert diff(before, snapshot(root)) == []
    r = ops("--json", "unpin", "web:1")
    assert r.code == 0, r
    doc = r.json()
    assert doc["changed"] is True and doc["command"] == "unpin"
    assert doc["pod"] == {"name": "web", "version": 1}
    assert not pin_file(root, 1).exists()
    assert ops("unpin", "web:1").last == "unpin web 1: unchanged"
    assert ops("cleanup", "--keep", "0").lines == ["cleanup web: removed 1; kept 2 (rollback target)"]
    assert stored_versions(root, "web") == [2, 3]


def test_list_shows_pinned_versions(ops, root, deployed):
    deployed(1, 2)
    assert ops("pin", "web:1").code == 0
    pods = ops("--json", "list").json()["pods"]
    assert [(p["version"], p["pinned"]) for p in pods] == [(1, True), (2, False)]
    rows = {l.split()[1]: l for l in ops("list").lines[1:]}
    assert "ok (pinned)" in rows["1"] and "pinned" not in rows["2"]


@pytest.mark.parametrize("args", [("undeploy", "web:1", "--remove"), ("undeploy", "web", "--remove")])
def test_removing_a_pinned_version_is_refused(ops, root, deployed, args):
    deployed(1, 2)
    assert ops("pin", "web:1").code == 0
    before = snapshot(root)
    r = ops(*args)
    assert r.code == 2, r
    assert r.error_lines == ["ops: error: web:1: pinned: run `ops unpin web:1` first to delete it"]
    assert diff(before, snapshot(root)) == []
    assert ops("undeploy", "web:2", "--remove").code == 0     # an unpinned one goes


def test_pin_of_a_version_that_is_not_stored_is_refused(ops, root, deployed):
    deployed(1)
    before = snapshot(root)
    r = ops("pin", "web:7")
    assert r.code == 2 and "web:7: not stored" in r.error_lines[0], r
    r = ops("pin", "web")
    assert r.code == 2 and "NAME:VERSION" in r.error_lines[0], r
    assert diff(before, snapshot(root)) == []


def test_pin_dry_run_changes_nothing(ops, root, deployed):
    deployed(1, 2)
    before = snapshot(root, ignore_lock=False)
    r = ops("--dry-run", "pin", "web:1")
    assert r.code == 0, r
    assert r.lines == ["  pin web 1", "pin web 1: would change"]
    assert diff(before, snapshot(root, ignore_lock=False)) == []


def test_pin_waits_for_the_lock(ops, root, deployed):
    deployed(1)
    fd = os.open(str(root / "var/lib/ops/lock"), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        r = ops("--lock-timeout", "0.2", "pin", "web:1")
    finally:
        os.close(fd)
    assert r.code == 3, r
    assert not pin_file(root, 1).exists()


# -- deploy NAME:VERSION ---------------------------------------------------------------

def test_deploy_of_a_stored_version_hints_redeploy(ops, root, deployed, tmp_path, monkeypatch):
    deployed(1, 2)
    monkeypatch.chdir(tmp_path)
    before = snapshot(root)
    r = ops("deploy", "web:1")
    assert r.code == 2, r
    assert len(r.error_lines) == 1 and "ops redeploy web:1" in r.error_lines[0]
    r = ops("deploy", "web")
    assert r.code == 2 and "ops redeploy web:VERSION" in r.error_lines[0], r
    r = ops("deploy", "web:9")
    assert r.code == 2 and "version 9 of web is not stored (stored: 1 2)" in r.err, r
    assert diff(before, snapshot(root)) == []
