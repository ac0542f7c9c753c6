"""--json deploy outcomes and `cleanup --keep N` on a real systemd, with a pod of four versions."""

import pytest

from .conftest import (copy_bundle, describe, exists, is_active, last_line, list_pods, make_bundle, ops, ops_json,
                       readlink, service, show)


def keep_bundle(directory, version):
    return make_bundle(directory, "keep", version, units=[
        ("keep.service", service("keep", "/bin/sh -c 'echo $$POD_VERSION > /run/keep.txt && exec sleep infinity'"),
         True, None),
    ], volumes=[("data", {"version.txt": b"%d\n" % version})])


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("keep")
    for v in (1, 2, 3, 4):
        copy_bundle(container, keep_bundle(str(base / str(v)), v), "/root/bundles/keep/%d" % v)
    return "/root/bundles/keep"


def test_json_deploy_reports_changed(container, bundles):
    c = container
    for v in (1, 2, 3, 4):
        obj, r = ops_json(c, "deploy", "%s/%d" % (bundles, v), check=0)
        assert obj["ok"] is True and obj["changed"] is True, describe(r)
        assert obj["command"] == "deploy"
        assert obj["pod"] == {"name": "keep", "version": v}
        assert obj["previous"] == (v - 1 if v > 1 else None)
        assert obj["rolled_back"] is False
        assert isinstance(obj["actions"], list) and obj["actions"], describe(r)
        assert c.read_file("/run/keep.txt") == "%d\n" % v
    pid = show(c, "keep.service", "MainPID")
    obj, r = ops_json(c, "deploy", "%s/4" % bundles, check=0)
    assert obj["ok"] is True and obj["changed"] is False, describe(r)
    assert show(c, "keep.service", "MainPID") == pid


def test_json_error_is_one_object(container, bundles):
    obj, r = ops_json(container, "deploy", "/root/bundles/keep/nonexistent", check=2)
    assert obj["ok"] is False
    assert obj["error"] and obj["error"] in r.stderr, describe(r)


def test_cleanup_keeps_current_and_newest_other(container, bundles):
    c = container
    r = ops(c, "redeploy", "keep:2", check=0)
    assert last_line(r.stdout) == "redeploy keep 2: changed", describe(r)

    r = ops(c, "cleanup", "--keep", "1", "keep", check=0)
    # 1 is the newest ok version older than the current (2): `redeploy keep` goes there
    assert "cleanup keep: removed 3; kept 1 (rollback target)" in r.stdout.splitlines(), describe(r)
    assert sorted(v for (n, v) in list_pods(c, "keep")) == [1, 2, 4]
    for v in (3,):
        assert not exists(c, "/etc/ops/pods/keep/%d" % v)
        assert not exists(c, "/var/lib/ops/volumes/keep/%d" % v)
    for v in (1, 2, 4):
        assert exists(c, "/etc/ops/pods/keep/%d/pod.json" % v)
        assert c.read_file("/var/lib/ops/volumes/keep/%d/data/version.txt" % v) == "%d\n" % v
    assert readlink(c, "/etc/ops/current/keep") == "../pods/keep/2"
    assert is_active(c, "keep.service") == "active"
    assert c.read_file("/run/keep.txt") == "2\n"


def test_cleanup_keep_0_keeps_current_and_the_rollback_target(container, bundles):
    c = container
    r = ops(c, "cleanup", "--keep", "0", check=0)
    assert "cleanup keep: removed 4; kept 1 (rollback target)" in r.stdout.splitlines(), describe(r)
    assert sorted(v for (n, v) in list_pods(c, "keep")) == [1, 2]
    assert not exists(c, "/var/lib/ops/volumes/keep/4")
    assert readlink(c, "/etc/ops/current/keep") == "../pods/keep/2"
    assert is_active(c, "keep.service") == "active"

    r = ops(c, "cleanup", "--keep", "0", "keep", check=0)
    assert sorted(v for (n, v) in list_pods(c, "keep")) == [1, 2]
    assert "removed" not in r.stdout, describe(r)


def test_undeploy_of_a_version_that_is_not_current_does_nothing(container, bundles):
    c = container
    pid = show(c, "keep.service", "MainPID")
    r = ops(c, "undeploy", "keep:4", check=0)
    assert last_line(r.stdout).endswith(": unchanged"), describe(r)
    assert readlink(c, "/etc/ops/current/keep") == "../pods/keep/2"
    assert show(c, "keep.service", "MainPID") == pid


def test_undeploy_current_version_with_remove(container, bundles):
    c = container
    r = ops(c, "undeploy", "keep:2", "--remove", check=0)
    assert last_line(r.stdout) == "undeploy keep 2: changed", describe(r)
    assert is_active(c, "keep.service") == "inactive"
    assert not exists(c, "/etc/systemd/system/keep.service")
    assert not exists(c, "/etc/ops/current/keep")
    assert not exists(c, "/etc/ops/pods/keep/2")
    assert not exists(c, "/var/lib/ops/volumes/keep/2")
    assert [k for k in list_pods(c) if k[0] == "keep"] == [("keep", 1)]
    ops(c, "undeploy", "keep", "--remove", check=0)
    assert not [k for k in list_pods(c) if k[0] == "keep"]
