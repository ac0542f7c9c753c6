"""What ops reports agrees with what it did, on a real systemd, as one story (in file order, one container):

`ops diff` of stored versions and of a bundle -> a deploy held in its health check is shown as in progress by
`status` and `list` (neither waits for the lock), and as interrupted once it is killed -> a failed deploy lists
what it did and its rollback's steps, `changed` -> retrying that stored broken version restarts the running one:
`changed` with its actions -> a failed health check during a repair of the current version is recorded and shown
-> a refusal over a hand-edited unit names the stored copy to put back.
"""

import json
import threading

import pytest

from .conftest import (OPS_ENV, copy_bundle, describe, is_active, list_pods, make_bundle, ops, ops_json,
                       readlink, service, systemctl, wait_for)

B = "/root/bundles/truth"
HELD = ["/bin/sh", "-c", "touch /run/truth-held; while [ ! -e /run/truth-release ]; do sleep 0.1; done"]
SICK = ["/bin/sh", "-c", "test ! -e /run/truth-sick"]


def truth_bundle(directory, version, web_exec="/bin/sleep infinity", health=None, instances=(1, 2),
                 data=b"one\n"):
    return make_bundle(directory, "truth", version, units=[
        ("truth-web.service", service("truth web", web_exec), True, None),
        ("truth-w@.service", service("truth worker %i", "/bin/sleep infinity"), True, list(instances)),
    ], volumes=[("data", {"file": data})], extra_ops={"health": {"exec": health, "timeout": 120}}
        if health else None)


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("truth")
    made = {
        1: truth_bundle(str(base / "1"), 1),
        2: truth_bundle(str(base / "2"), 2, web_exec="/bin/sleep 1000", instances=(2, 3), data=b"two\n",
                        health=SICK),
        3: truth_bundle(str(base / "3"), 3, health=HELD),
        4: truth_bundle(str(base / "4"), 4, web_exec="/bin/sh -c 'echo truth-web is broken; exit 3'"),
        5: truth_bundle(str(base / "5"), 5, health=SICK),
    }
    for v, d in made.items():
        copy_bundle(container, d, "%s/%d" % (B, v))
    return B


def test_diff_of_stored_versions_and_a_bundle(container, bundles):
    c = container
    ops(c, "deploy", B + "/1", check=0)
    r = ops(c, "diff", "truth", B + "/2", check=0)
    out = r.stdout
    assert "--- truth:1/truth-web.service\n+++ %s/2/truth-web.service\n" % B in out, describe(r)
    assert "-ExecStart=/bin/sleep infinity\n+ExecStart=/bin/sleep 1000\n" in out, describe(r)
    assert "instances truth-w@.service: added 3; removed 1\n" in out, describe(r)
    assert "health: none -> exec /bin/sh -c test ! -e /run/truth-sick (timeout 120, retries 0, interval 1)\n" \
        in out, describe(r)
    assert "volume data: content sha256:" in out, describe(r)
    ops(c, "deploy", B + "/2", check=0)
    obj, r2 = ops_json(c, "diff", "truth:1", "truth:2", check=0)
    assert obj["differs"] is True and obj["pod"] == {"name": "truth", "version": 1}, describe(r2)
    assert obj["diff"] == out.replace("+++ %s/2/" % B, "+++ truth:2/"), describe(r2)
    assert {ch["kind"] for ch in obj["changes"]} == {"unit", "instances", "health", "volume"}, obj["changes"]
    r = ops(c, "diff", "truth:2", "truth", check=0)
    assert r.stdout == "", describe(r)
    ops(c, "diff", "truth:7", "truth", check=2)
    ops(c, "redeploy", "truth:1", check=0)


def test_a_deploy_in_progress_is_not_an_interrupted_run(container, bundles):
    c = container
    c.run(["rm", "-f", "/run/truth-held", "/run/truth-release"])
    done = {}
    t = threading.Thread(target=lambda: done.update(r=ops(c, "--json", "deploy", B + "/3", timeout=300)))
    t.start()
    try:
        assert wait_for(lambda: c.exists("/run/truth-held"), timeout=120), "the health check never began"
        pid = int(c.read_file("/var/lib/ops/lock").strip())
        obj, r = ops_json(c, "--lock-timeout", "1", "status", "truth", check=0)
        pod = obj["pods"][0]
        assert pod["in_progress"]["pid"] == pid and pod["in_progress"]["to"] == 3, describe(r)
        assert pod["interrupted"] is False and pod["drift"] == [], describe(r)
        r = ops(c, "status", "truth", check=0)
        assert r.stdout.splitlines()[0].startswith("truth 1: deploying 3 (pid %d, since " % pid), describe(r)
        rows = list_pods(c, "truth")
        assert not any(p["interrupted"] for p in rows.values()), rows
        assert rows[("truth", 1)]["in_progress"]["pid"] == pid, rows
        r = ops(c, "list", "truth", check=0)
        assert "(deploying 3 (pid %d" % pid in r.stdout and "interrupted" not in r.stdout, describe(r)
        # the deploy is still holding: a mutating command would wait for it
        ops(c, "--lock-timeout", "0.5", "pin", "truth:1", check=3)
    finally:
        c.run(["touch", "/run/truth-release"])
        t.join(300)
    r = done["r"]
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is True, describe(r)
    # a deploy killed in its health check left its journal: interrupted, not in progress
    c.run(["rm", "-f", "/run/truth-held", "/run/truth-release"])
    ops(c, "redeploy", "truth:1", check=0)
    t = threading.Thread(target=lambda: done.update(r=ops(c, "deploy", B + "/3", timeout=300)))
    t.start()
    try:
        assert wait_for(lambda: c.exists("/run/truth-held"), timeout=120)
        pid = int(c.read_file("/var/lib/ops/lock").strip())
        c.run(["kill", "-KILL", str(pid)])
        t.join(60)
        obj, r = ops_json(c, "status", "truth", check=5)
        assert obj["pods"][0]["interrupted"] is True and obj["pods"][0]["in_progress"] is None, describe(r)
        assert "(interrupted)" in ops(c, "list", "truth", check=0).stdout
    finally:
        c.run(["touch", "/run/truth-release"])
        t.join(60)
    ops(c, "redeploy", "truth:1", check=0)        # recovers, then runs 1
    assert readlink(c, "/etc/ops/current/truth") == "../pods/truth/1"


def test_a_rolled_back_deploy_reports_its_steps_and_the_rollback(container, bundles):
    c = container
    obj, r = ops_json(c, "deploy", B + "/4", check=1)
    assert obj["rolled_back"] is True and obj["changed"] is True, describe(r)
    steps = [(a["action"], bool(a.get("rollback"))) for a in obj["actions"]]
    # the units both versions have are restarted (the switch at the restart floor), by the switch and by the rollback
    assert ("restart", False) in steps and ("restart", True) in steps, steps
    assert steps.index(("daemon-reload", False)) < steps.index(("restart", False)), steps
    assert ("set-current", True) in steps, steps
    assert {"action": "set-current", "target": "truth 1", "rollback": True} in obj["actions"], steps
    assert is_active(c, "truth-web.service") == "active"


def test_retrying_a_stored_broken_version_is_changed(container, bundles):
    c = container
    before = systemctl(c, "show", "-p", "MainPID", "--value", "truth-web.service").stdout.strip()
    obj, r = ops_json(c, "redeploy", "truth:4", check=1)
    after = systemctl(c, "show", "-p", "MainPID", "--value", "truth-web.service").stdout.strip()
    assert before != after and is_active(c, "truth-web.service") == "active"     # restarted
    assert obj["changed"] is True and obj["rolled_back"] is True, describe(r)
    assert any(a.get("rollback") and a["action"] == "restart" and "truth-web.service" in a["units"]
               for a in obj["actions"]), obj["actions"]


def test_a_failed_health_check_while_repairing_the_current_version(container, bundles):
    c = container
    ops(c, "deploy", B + "/5", check=0)
    systemctl(c, "stop", "truth-w@1.service")
    ops(c, "status", "truth", check=5)                      # drift: a deploy of 5 repairs it
    c.run(["touch", "/run/truth-sick"])
    try:
        obj, r = ops_json(c, "deploy", B + "/5", check=1)
        assert obj["rolled_back"] is True and obj["changed"] is True, describe(r)
        assert "health check of truth 5" in obj["error"], describe(r)
        assert any(a["action"] == "health-check" for a in obj["actions"]), obj["actions"]
    finally:
        c.run(["rm", "-f", "/run/truth-sick"])
    obj, r = ops_json(c, "status", "truth", check=0)
    pod = obj["pods"][0]
    assert pod["last_failure"]["version"] == 5, describe(r)
    assert "health check of truth 5" in pod["last_failure"]["reason"]["message"], describe(r)
    r = ops(c, "status", "truth", check=0)
    assert "last failed deploy: version 5" in r.stdout, describe(r)
    hist, r = ops_json(c, "history", "truth", check=0)
    last = hist["history"][-1]
    assert (last["command"], last["from"], last["to"], last["outcome"]) == ("deploy", 5, 5, "rolled back"), last
    assert is_active(c, "truth-w@1.service") == "active"


def test_a_hand_edited_unit_names_the_stored_copy(container, bundles):
    c = container
    path = "/etc/systemd/system/truth-web.service"
    c.write_file(path, c.read_file(path) + "# edited by hand\n")
    r = ops(c, "deploy", B + "/1", check=2)
    stored = "/etc/ops/pods/truth/5/units/truth-web.service"
    assert "put back the copy ops installed: cp %s %s)" % (stored, path) in r.stderr, describe(r)
    c.run(["cp", stored, path], env=OPS_ENV)
    ops(c, "deploy", B + "/1", check=0)
    ops(c, "undeploy", "truth", "--remove", check=0)
