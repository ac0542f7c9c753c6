"""`ops status` and `ops list` against a real systemd: a healthy pod, then drift made by hand (a unit stopped, a unit
file edited, a drop-in removed, an instance disabled, a unit killed), and a failed deploy whose reason is kept."""

import json

import pytest

from .conftest import (copy_bundle, describe, is_active, is_enabled, list_pods, make_bundle, ops, ops_json, service,
                       show, systemctl)

LOOKER = "/usr/bin/python3 -c 'import time; print(\"looker up\", flush=True); time.sleep(100000)'"


def watch_bundle(directory, version, web_exec="/bin/sleep infinity"):
    return make_bundle(directory, "watch", version, units=[
        ("watch-web.service", service("watch web", web_exec), True, None),
        ("watch-w@.service", service("watch worker %i", LOOKER), True, [1, 2]),
        ("watch-idle.service", service("watch: installed only", "/bin/sleep infinity"), False, None),
    ])


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("status")
    copy_bundle(container, watch_bundle(str(base / "w1"), 1), "/root/bundles/watch/1")
    copy_bundle(container, watch_bundle(str(base / "w2"), 2,
                                        web_exec="/bin/sh -c 'echo watch-web cannot find its config; sleep 1; exit 3'"),
                "/root/bundles/watch/2")
    r = ops(container, "deploy", "/root/bundles/watch/1", check=0)
    return r


def status(c, *args, check=None):
    """``ops --json status``: (the one pod's report, the CompletedProcess)."""
    obj, r = ops_json(c, "status", *args)
    if check is not None:
        assert r.returncode == check, describe(r, "expected exit %d" % check)
    assert obj["command"] == "status" and obj["ok"] is (r.returncode == 0), describe(r)
    (pod,) = obj["pods"]
    return pod, r


def drift(pod):
    return sorted((d["unit"], d["problem"]) for d in pod["drift"])


def units(pod):
    return {u["unit"]: u for u in pod["units"]}


def test_healthy_pod(container, bundles):
    c = container
    pod, r = status(c, "watch", check=0)
    assert (pod["name"], pod["version"], pod["healthy"], pod["drift"]) == ("watch", 1, True, [])
    rows = units(pod)
    assert sorted(rows) == ["watch-idle.service", "watch-w@1.service", "watch-w@2.service", "watch-web.service"]
    for name in ("watch-web.service", "watch-w@1.service", "watch-w@2.service"):
        assert (rows[name]["active"], rows[name]["sub"], rows[name]["enabled"]) == ("active", "running", "enabled")
        assert rows[name]["main_pid"] == int(show(c, name, "MainPID"))
        assert rows[name]["since"] == show(c, name, "StateChangeTimestamp") != ""
    assert (rows["watch-idle.service"]["active"], rows["watch-idle.service"]["enabled"]) == ("inactive", "disabled")
    assert rows["watch-idle.service"]["main_pid"] is None
    text = ops(c, "status", check=0)
    assert text.stdout.splitlines()[0].startswith("watch 1: ok, outcome ok, deployed "), describe(text)
    assert "watch-w@2.service" in text.stdout and "drift" not in text.stdout
    assert list_pods(c)[("watch", 1)]["running"] is True


def test_status_asks_systemctl_once_whatever_the_number_of_units(container, bundles):
    r = ops(container, "-v", "status", "watch", check=0)
    calls = [l for l in r.stderr.splitlines() if "systemctl" in l]
    assert len(calls) == 1 and " show " in calls[0], describe(r)
    for name in ("watch-web.service", "watch-w@1.service", "watch-w@2.service", "watch-idle.service"):
        assert name in calls[0]


def test_unit_stopped_by_hand(container, bundles):
    c = container
    assert systemctl(c, "stop", "watch-web.service").returncode == 0
    pod, r = status(c, check=5)
    assert drift(pod) == [("watch-web.service", "not running (inactive/dead, result success)")]
    assert units(pod)["watch-web.service"]["main_pid"] is None
    text = ops(c, "status", check=5)
    assert "watch 1: DRIFT" in text.stdout
    assert "drift: watch-web.service: not running (inactive/dead, result success)" in text.stdout
    # list no longer says plain ok for the current version
    assert list_pods(c)[("watch", 1)]["running"] is False
    r = ops(c, "list", "watch", check=0)
    assert [l.split() for l in r.stdout.splitlines()][1][:5] == ["watch", "1", "*", "ok", "(down)"], describe(r)
    # a version staged before ops recorded its start units: read from pod.json
    path = "/etc/ops/pods/watch/1/state.json"
    saved = c.read_file(path)
    st = json.loads(saved)
    del st["start_units"]
    c.write_file(path, json.dumps(st))
    assert list_pods(c)[("watch", 1)]["running"] is False
    c.write_file(path, saved)
    assert systemctl(c, "start", "watch-web.service").returncode == 0
    status(c, check=0)
    assert "(down)" not in ops(c, "list", check=0).stdout
    assert list_pods(c)[("watch", 1)]["running"] is True


def test_unit_file_edited_by_hand(container, bundles):
    c = container
    path = "/etc/systemd/system/watch-web.service"
    original = c.read_file(path)
    c.write_file(path, original.replace("Description=watch web", "Description=watch web, edited"))
    pod, r = status(c, check=5)
    assert drift(pod) == [("watch-web.service",
                           "unit file differs from the stored version: /etc/systemd/system/watch-web.service")]
    c.write_file(path, original)
    assert systemctl(c, "daemon-reload").returncode == 0       # the file is new to systemd all the same
    status(c, check=0)


def test_dropin_removed_then_deploy_converges(container, bundles):
    c = container
    c.remove("/etc/systemd/system/watch-w@.service.d/50-ops.conf")
    pod, r = status(c, check=5)
    assert drift(pod) == [("watch-w@.service", "drop-in missing: /etc/systemd/system/watch-w@.service.d/50-ops.conf")]
    ops(c, "deploy", "/root/bundles/watch/1", check=0)
    status(c, check=0)


def test_instance_disabled(container, bundles):
    c = container
    assert systemctl(c, "disable", "watch-w@2.service").returncode == 0
    assert is_enabled(c, "watch-w@2.service") == "disabled"
    pod, r = status(c, check=5)
    assert drift(pod) == [("watch-w@2.service", "not enabled (disabled)")]
    assert units(pod)["watch-w@1.service"]["enabled"] == "enabled"
    assert systemctl(c, "enable", "watch-w@2.service").returncode == 0
    status(c, check=0)


def test_a_start_unit_disabled_while_it_runs_is_repaired_by_a_deploy(container, bundles):
    c = container
    assert systemctl(c, "disable", "watch-w@2.service").returncode == 0
    status(c, check=5)
    obj, r = ops_json(c, "deploy", "/root/bundles/watch/1")
    assert r.returncode == 0 and obj["changed"] is True, describe(r)
    assert is_enabled(c, "watch-w@2.service") == "enabled"
    pod, r = status(c, check=0)       # no stale "not enabled": the deploy reloaded systemd
    assert units(pod)["watch-w@2.service"]["enabled"] == "enabled", describe(r)
    obj, r = ops_json(c, "deploy", "/root/bundles/watch/1")
    assert r.returncode == 0 and obj["changed"] is False, describe(r)


def test_an_override_and_a_pending_reload_are_drift(container, bundles):
    c = container
    override = "/etc/systemd/system/watch-web.service.d/override.conf"
    c.write_file(override, b"[Service]\nEnvironment=SET_BY_HAND=1\n")
    pod, r = status(c, check=5)
    found = drift(pod)
    assert ("watch-web.service", "a drop-in ops did not write changes it: " + override) in found, found
    assert ("watch-web.service", "its files changed since systemd loaded them (systemctl "
            "daemon-reload, or ops deploy, loads them)") in found, found
    assert systemctl(c, "daemon-reload").returncode == 0
    pod, r = status(c, check=5)
    assert drift(pod) == [("watch-web.service", "a drop-in ops did not write changes it: "
                           + override)]
    c.remove(override)
    assert systemctl(c, "daemon-reload").returncode == 0
    status(c, check=0)


def test_unit_killed_shows_failed(container, bundles):
    c = container
    pid = show(c, "watch-w@1.service", "MainPID")
    assert systemctl(c, "kill", "-s", "KILL", "watch-w@1.service").returncode == 0
    assert is_active(c, "watch-w@1.service") in ("failed", "inactive")
    pod, r = status(c, check=5)
    row = units(pod)["watch-w@1.service"]
    assert (row["active"], row["result"], row["main_pid"]) == ("failed", "signal", None), row
    assert drift(pod) == [("watch-w@1.service", "not running (failed/failed, result signal)")]
    assert pid != "0"
    assert systemctl(c, "restart", "watch-w@1.service").returncode == 0
    status(c, check=0)


def test_failed_deploy_keeps_its_reason(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/watch/2", check=1, settle=None)   # its web unit exits after 1 s
    assert "rolled back to 1" in r.stderr, describe(r)
    st = json.loads(c.read_file("/etc/ops/pods/watch/2/state.json"))
    reason = st["reason"]
    assert reason["unit"] == "watch-web.service"
    assert reason["result"] == "exit-code"
    # the unit's own output (it waits a second before it exits, so that journald has it) and systemd's words
    assert "watch-web cannot find its config" in reason["journal"], reason
    assert "status=3/NOTIMPLEMENTED" in reason["journal"], reason
    assert reason["message"].startswith("watch-web.service: failed after start")
    # status: version 1 runs again, healthy, and tells why 2 failed
    pod, r = status(c, check=0)
    assert pod["version"] == 1
    assert pod["last_failure"] == {"version": 2, "at": st["deployed_at"], "reason": reason}
    text = ops(c, "status", "watch", check=0)
    assert "last failed deploy: version 2 at %s: watch-web.service" % st["deployed_at"] in text.stdout
    assert "watch-web cannot find its config" in text.stdout and "(result exit-code)" in text.stdout
    # list --json gives the reason with the failed version
    rows = list_pods(c, "watch")
    assert rows[("watch", 2)]["outcome"] == "failed" and rows[("watch", 2)]["reason"] == reason
    assert rows[("watch", 1)]["reason"] is None and rows[("watch", 1)]["running"] is True
    assert rows[("watch", 2)]["running"] is None


def test_drifted_host_report(container, bundles):
    """Several kinds of drift at once, as an operator would see them."""
    c = container
    path = "/etc/systemd/system/watch-web.service"
    c.write_file(path, c.read_file(path) + "# tuned by hand\n")
    c.remove("/etc/systemd/system/watch-w@.service.d/50-ops.conf")
    assert systemctl(c, "daemon-reload").returncode == 0
    assert systemctl(c, "stop", "watch-w@1.service").returncode == 0
    assert systemctl(c, "disable", "watch-w@2.service").returncode == 0
    r = ops(c, "status", check=5)
    print("\n$ ops status; echo $?\n%s%d" % (r.stdout, r.returncode))
    lines = r.stdout.splitlines()
    assert lines[0].startswith("watch 1: DRIFT"), describe(r)
    drifts = [l.strip() for l in lines if l.strip().startswith("drift:")]
    assert drifts == [
        "drift: watch-web.service: unit file differs from the stored version: /etc/systemd/system/watch-web.service",
        "drift: watch-w@.service: drop-in missing: /etc/systemd/system/watch-w@.service.d/50-ops.conf",
        "drift: watch-w@1.service: not running (inactive/dead, result success)",
        "drift: watch-w@2.service: not enabled (disabled)",
    ], describe(r)
    # the edited unit file is no longer what ops installed: a deploy leaves it alone (exit 2, nothing changed) ...
    edited = c.read_file(path)
    r = ops(c, "deploy", "/root/bundles/watch/1", check=2)
    assert "%s: already exists and belongs to no version of pod watch" % path in r.stderr, describe(r)
    assert c.read_file(path) == edited
    # ... until the operator puts back what ops installed; then a deploy of the same version repairs the rest
    c.write_file(path, c.read_file("/etc/ops/pods/watch/1/units/watch-web.service"))
    ops(c, "deploy", "/root/bundles/watch/1", check=0)
    r = ops(c, "status", check=0)
    assert "drift" not in r.stdout, describe(r)
