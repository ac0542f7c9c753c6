"""A deploy killed half-way through its switch, and the next mutating command putting the pod back (SPEC §4.1)."""

import threading

import pytest

from .conftest import (OPS_ENV, copy_bundle, describe, exists, is_active, is_enabled, last_line, list_pods,
                       make_bundle, ops, readlink, service, show, unit_files, wait_for)

B = "/root/bundles/crash"


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("crash")
    copy_bundle(container, make_bundle(str(base / "1"), "crash", 1, units=[
        ("crash.service", service("crash v1", "/bin/sleep infinity"), True, None),
    ]), B + "/1")
    # v2's oneshot takes a minute to start, so `systemctl start` (and the deploy with it) is still running when killed.
    copy_bundle(container, make_bundle(str(base / "2"), "crash", 2, units=[
        ("crash.service", service("crash v2", "/bin/sleep infinity"), True, None),
        ("crash-slow.service", service("crash v2: slow to start", "/bin/sleep 60", kind="oneshot",
                                       extra="RemainAfterExit=yes\n"), True, None),
    ]), B + "/2")
    return B


def test_killed_deploy_is_rolled_back_by_the_next_mutating_command(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/1", check=0)
    assert last_line(r.stdout) == "deploy crash 1: changed", describe(r)

    # deploy 2 in the background; its shell's PID (kept by exec) is written where we can find it
    env = " ".join("%s=%s" % kv for kv in sorted(OPS_ENV.items()))
    script = 'echo $$ > /run/ops-crash.pid; exec env %s /usr/bin/python3 -m ops deploy %s/2' % (env, B)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", c.run(["/bin/sh", "-c", script], timeout=120)))
    t.start()
    try:
        assert wait_for(lambda: exists(c, "/var/lib/ops/journal/crash.json")
                        and is_active(c, "crash-slow.service") == "activating", timeout=30), \
            "the deploy of crash 2 did not reach its switch"
        pid = c.read_file("/run/ops-crash.pid").strip()
        c.run(["kill", "-KILL", pid], check=True)
    finally:
        t.join(60)
    assert not t.is_alive()
    killed = result["r"]
    assert killed.returncode != 0, describe(killed)
    assert exists(c, "/var/lib/ops/journal/crash.json")

    # list reads files only: it marks the pod as interrupted and changes nothing
    pods = list_pods(c, "crash")
    assert any(p["interrupted"] for p in pods.values()), pods
    assert exists(c, "/var/lib/ops/journal/crash.json")

    # --dry-run recovers nothing, but says a journal is left over
    r = ops(c, "--dry-run", "deploy", B + "/1", check=0)
    assert "interrupted" in (r.stdout + r.stderr), describe(r)
    assert exists(c, "/var/lib/ops/journal/crash.json")

    # any mutating command, whatever pod it names, first rolls the interrupted pod back to where it was
    r = ops(c, "undeploy", "someotherpod", check=0)
    assert last_line(r.stdout).endswith(": unchanged"), describe(r)
    assert not exists(c, "/var/lib/ops/journal/crash.json")
    assert readlink(c, "/etc/ops/current/crash") == "../pods/crash/1"
    assert unit_files(c, "crash") == ["crash.service", "crash.service.d"]
    assert "crash v1" in c.read_file("/etc/systemd/system/crash.service")
    assert is_active(c, "crash.service") == "active"
    assert is_enabled(c, "crash.service") == "enabled"
    assert "POD_VERSION=2" not in show(c, "crash.service", "Environment")
    assert "POD_VERSION=1" in show(c, "crash.service", "Environment").split()
    assert is_active(c, "crash-slow.service") in ("inactive", "failed")
    assert not any(p["interrupted"] for p in list_pods(c, "crash").values())
    assert list_pods(c, "crash")[("crash", 1)]["current"] is True
