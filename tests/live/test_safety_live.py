"""ops never damages what is not its own, on a real systemd: units of the system, an
administrator's unit files, a pod with many instances, a version whose pod.json was lost."""

import time

import pytest

from .conftest import (OPS_ENV, copy_bundle, describe, exists, is_active, make_bundle, ops,
                       service, systemctl, unit_files)

SLEEP = service("safe: steady", "/bin/sleep infinity")
ONESHOT = ("[Unit]\nDescription=safe worker %i\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
           "ExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n")
MANY = 400


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    d = tmp_path_factory.mktemp("safety")
    made = {
        "shadow/1": make_bundle(str(d / "shadow1"), "shadow", 1, units=[
            ("shadow-own.service", SLEEP, True, None),
            ("systemd-journald.service", SLEEP, True, None)]),
        "alias/1": make_bundle(str(d / "alias1"), "alias", 1, units=[
            ("alias-web.service", SLEEP + "Alias=systemd-journald.service\n", True, None)]),
        "getty/1": make_bundle(str(d / "getty1"), "getty", 1, units=[
            ("getty@.service", SLEEP, True, ["tty9"])]),
        "root/1": make_bundle(str(d / "root1"), "root", 1, units=[
            ("-.mount", "[Mount]\nWhat=tmpfs\nWhere=/\nType=tmpfs\n", False, None)]),
        "safe/1": make_bundle(str(d / "safe1"), "safe", 1, units=[
            ("safe-api.service", SLEEP, True, None),
            ("safe-tool.service", SLEEP, True, None)]),
        "many/1": make_bundle(str(d / "many1"), "many", 1, units=[
            ("many-w@.service", ONESHOT, True, MANY)]),
        "lost/1": make_bundle(str(d / "lost1"), "lost", 1, units=[
            ("lost-api.service", SLEEP, True, None),
            ("lost-w@.service", SLEEP, True, 2)]),
    }
    for key, path in made.items():
        copy_bundle(container, path, "/root/safety/" + key)
    return made


def refused(r, *words):
    assert r.returncode == 2, describe(r, "expected exit 2")
    errors = [l for l in r.stderr.splitlines() if l.startswith("ops: error: ")]
    assert len(errors) == 1, describe(r)
    for w in words:
        assert w in errors[0], describe(r)
    return errors[0]


def test_a_unit_of_the_system_is_not_shadowed(container, bundles):
    c = container
    assert is_active(c, "systemd-journald.service") == "active"
    before = unit_files(c, "")
    line = refused(ops(c, "deploy", "/root/safety/shadow/1"), "systemd-journald.service", "shadow")
    assert "/lib/systemd/system/systemd-journald.service" in line
    refused(ops(c, "deploy", "/root/safety/alias/1"), "Alias=systemd-journald.service")
    refused(ops(c, "deploy", "/root/safety/getty/1"), "getty@.service", "shadow")
    refused(ops(c, "deploy", "/root/safety/root/1"), "-.mount", "shadow")
    assert unit_files(c, "") == before
    assert is_active(c, "systemd-journald.service") == "active"
    assert not exists(c, "/etc/ops/pods/shadow")


def test_an_administrators_unit_is_neither_overwritten_nor_deleted(container, bundles):
    c = container
    ops(c, "deploy", "/root/safety/safe/1", check=0)
    ops(c, "undeploy", "safe", check=0)
    admins = service("the administrator's own", "/bin/sleep 1000")
    c.write_file("/etc/systemd/system/safe-api.service", admins)
    systemctl(c, "daemon-reload")
    systemctl(c, "start", "safe-api.service")
    refused(ops(c, "redeploy", "safe:1"), "/etc/systemd/system/safe-api.service",
            "belongs to no version of pod safe")
    assert c.read_file("/etc/systemd/system/safe-api.service") == admins
    assert is_active(c, "safe-api.service") == "active"
    assert not exists(c, "/etc/ops/current/safe")
    # the administrator's file moved away, the pod runs again; then they change one of its files
    systemctl(c, "stop", "safe-api.service")
    c.remove("/etc/systemd/system/safe-api.service")
    ops(c, "redeploy", "safe:1", check=0)
    changed = service("changed by hand", "/bin/sleep infinity")
    c.write_file("/etc/systemd/system/safe-tool.service", changed)
    refused(ops(c, "undeploy", "safe"), "/etc/systemd/system/safe-tool.service",
            "does not remove")
    assert c.read_file("/etc/systemd/system/safe-tool.service") == changed
    assert is_active(c, "safe-api.service") == "active"
    assert is_active(c, "safe-tool.service") == "active"
    c.remove("/etc/systemd/system/safe-tool.service")
    ops(c, "undeploy", "safe", "--remove", check=0)
    assert is_active(c, "safe-api.service") in ("inactive", "unknown")


def test_many_instances_deploy_and_undeploy_in_batches(container, bundles):
    """OPS_ARG_MAX lowered to force a batch of about 60 names a call (7 batches)."""
    c = container
    env = dict(OPS_ENV, OPS_ARG_MAX="6000")
    names = ["many-w@%d.service" % i for i in range(MANY)]
    started = time.monotonic()
    r = c.run(["/usr/bin/python3", "-m", "ops", "-v", "deploy", "/root/safety/many/1"],
              env=env, timeout=600)
    took = time.monotonic() - started
    assert r.returncode == 0, describe(r)
    starts = [l for l in r.stderr.splitlines() if l.startswith("+ systemctl start ")]
    assert len(starts) > 3, describe(r)
    assert all(len(l.encode()) < 6000 for l in r.stderr.splitlines() if l.startswith("+ "))
    active = c.run(["systemctl", "list-units", "--plain", "--no-legend", "--state=active",
                    "many-w@*"]).stdout.split("\n")
    assert sum(1 for l in active if l.startswith("many-w@")) == MANY, (took, active[:3])
    r = c.run(["/usr/bin/python3", "-m", "ops", "-v", "undeploy", "many", "--remove"],
              env=env, timeout=600)
    assert r.returncode == 0, describe(r)
    assert len([l for l in r.stderr.splitlines() if l.startswith("+ systemctl stop ")]) > 3
    left = c.run(["systemctl", "list-units", "--plain", "--no-legend", "--all", "many-w@*"])
    assert [l for l in left.stdout.splitlines() if "active" in l.split()[2:3]] == [], left.stdout
    assert systemctl(c, "is-active", names[0]).stdout.strip() == "inactive"
    assert unit_files(c, "many") == []
    assert not exists(c, "/etc/ops/pods/many")


def test_undeploy_remove_of_a_version_that_lost_its_pod_json(container, bundles):
    c = container
    ops(c, "deploy", "/root/safety/lost/1", check=0)
    assert is_active(c, "lost-w@1.service") == "active"
    c.remove("/etc/ops/pods/lost/1/pod.json")
    refused(ops(c, "deploy", "/root/safety/lost/1"), "pod.json", "ops undeploy lost")
    ops(c, "undeploy", "lost", "--remove", check=0)
    for u in ("lost-api.service", "lost-w@0.service", "lost-w@1.service"):
        assert is_active(c, u) in ("inactive", "unknown"), u
    assert unit_files(c, "lost") == []
    assert not exists(c, "/etc/ops/pods/lost")
    assert not exists(c, "/etc/ops/current/lost")
