"""`ops status` under --root (offline): unit files, drop-ins and enablement
against the stored version; exit 0 when all is as deployed, 5 on drift.
`list --json` gives failed versions' reasons; `check` refuses unit files
systemd cannot parse."""

import json
import os
import shutil

import pytest

from conftest import state, unit_dir

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

UNITS = [
    {"file": "web-api.service", "start": True},
    {"file": "web-worker@.service", "start": True, "instances": ["a", "b"]},
    {"file": "web-tool.service", "start": False},
    {"file": "web-clean.timer", "start": True},
]


@pytest.fixture
def deployed(ops, bundle):
    r = ops("deploy", bundle(name="web", version=1, units=UNITS))
    assert r.code == 0, r
    return r


def status_json(ops, *args):
    r = ops("--json", "status", *args)
    return r, json.loads(r.out)


def problems(report):
    return sorted((d["unit"], d["problem"].split(":")[0]) for d in report["drift"])


def test_healthy_pod_is_exit_0_with_every_unit_and_instance(ops, deployed):
    r, obj = status_json(ops)
    assert r.code == 0, r
    assert obj["ok"] is True and obj["command"] == "status"
    (pod,) = obj["pods"]
    assert (pod["name"], pod["version"], pod["outcome"], pod["healthy"]) == ("web", 1, "ok", True)
    assert pod["drift"] == []
    rows = {u["unit"]: u for u in pod["units"]}
    assert sorted(rows) == ["web-api.service", "web-clean.timer", "web-tool.service",
                            "web-worker@a.service", "web-worker@b.service"]
    assert rows["web-api.service"]["enabled"] == "enabled"
    assert rows["web-tool.service"]["start"] is False
    assert rows["web-tool.service"]["enabled"] == "disabled"
    # offline: no manager to ask about live state
    assert rows["web-api.service"]["active"] is None and rows["web-api.service"]["main_pid"] is None
    text = ops("status")
    assert text.code == 0
    assert text.out.splitlines()[0].startswith("web 1: ok, outcome ok, deployed ")
    assert "drift" not in text.out


def test_state_records_the_start_units_for_list(root, deployed):
    assert state(root, "web", 1)["start_units"] == [
        "web-api.service", "web-worker@a.service", "web-worker@b.service", "web-clean.timer"]


def test_edited_unit_file_is_drift_exit_5(ops, root, deployed):
    p = unit_dir(root) / "web-api.service"
    p.write_text(p.read_text() + "# edited by hand\n")
    r, obj = status_json(ops, "web")
    assert r.code == 5, r
    assert obj["ok"] is False
    assert problems(obj["pods"][0]) == [("web-api.service",
                                         "unit file differs from the stored version")]
    text = ops("status", "web")
    assert text.code == 5
    assert "web 1: DRIFT" in text.out
    assert ("drift: web-api.service: unit file differs from the stored version: "
            "/etc/systemd/system/web-api.service") in text.out


def test_missing_unit_file_and_removed_or_edited_dropin_are_drift(ops, root, deployed):
    os.unlink(str(unit_dir(root) / "web-tool.service"))
    shutil.rmtree(str(unit_dir(root) / "web-api.service.d"))
    dropin = unit_dir(root) / "web-worker@.service.d" / "50-ops.conf"
    dropin.write_text(dropin.read_text().replace("POD_VERSION=1", "POD_VERSION=7"))
    r, obj = status_json(ops)
    assert r.code == 5, r
    assert problems(obj["pods"][0]) == [
        ("web-api.service", "drop-in missing"),
        ("web-tool.service", "unit file missing"),
        ("web-worker@.service", "drop-in differs from what ops writes")]


def test_start_unit_disabled_is_drift(ops, root, deployed):
    import subprocess
    subprocess.run(["systemctl", "--root=%s" % root, "disable", "web-worker@b.service"],
                   check=True, stderr=subprocess.DEVNULL)
    r, obj = status_json(ops)
    assert r.code == 5, r
    assert problems(obj["pods"][0]) == [("web-worker@b.service", "not enabled (disabled)")]
    rows = {u["unit"]: u["enabled"] for u in obj["pods"][0]["units"]}
    assert rows["web-worker@a.service"] == "enabled"


def test_interrupted_run_is_reported(ops, root, deployed):
    j = root / "var/lib/ops/journal"
    j.mkdir(parents=True, exist_ok=True)
    (j / "web.json").write_text(json.dumps({"pod": "web", "from": 1, "to": 2,
                                            "command": "deploy"}))
    r, obj = status_json(ops)
    assert r.code == 5, r
    assert obj["pods"][0]["interrupted"] is True
    assert "interrupted" in obj["pods"][0]["drift"][0]["problem"]


def test_unknown_pod_is_refused_and_no_pod_is_fine(ops, deployed):
    r = ops("status", "nosuch")
    assert r.code == 2
    assert r.err.startswith("ops: error: nosuch: no stored version of this pod")
    r = ops("status", "Bad_Name")
    assert r.code == 2
    r = ops("status", "web:1")
    assert r.code == 2 and "status takes a pod name, not NAME:VERSION" in r.err


def test_status_on_an_empty_host(ops):
    r = ops("status")
    assert r.code == 0 and r.out.strip() == "no pod is stored"
    r, obj = status_json(ops)
    assert r.code == 0 and obj["pods"] == []


def test_status_changes_nothing(ops, root, deployed):
    from conftest import diff, snapshot
    p = unit_dir(root) / "web-api.service"
    p.write_text("edited\n")
    before = snapshot(root, ignore_lock=False)
    assert ops("status").code == 5
    assert diff(before, snapshot(root, ignore_lock=False)) == []


def test_undeployed_pod_is_not_drift(ops, deployed):
    assert ops("undeploy", "web").code == 0
    r, obj = status_json(ops)
    assert r.code == 0, r
    assert obj["pods"][0]["version"] is None and obj["pods"][0]["units"] == []
    assert "web -: not deployed" in ops("status").out


def test_failed_version_reason_shown_by_status_and_list_json(ops, root, bundle, deployed):
    # a failure as the switch records it (live tests cause a real one)
    from ops.layout import Layout
    from ops import store
    assert ops("deploy", bundle(name="web", version=2, units=UNITS)).code == 0
    assert ops("redeploy", "web:1").code == 0
    sv = store.get(Layout(str(root)), "web", 2)
    reason = {"unit": "web-api.service", "result": "exit-code", "journal": "boom",
              "message": "web-api.service: failed to start: boom; rolled back to 1"}
    sv.record("failed", reason=reason)
    r = ops("--json", "list")
    rows = {p["version"]: p for p in json.loads(r.out)["pods"]}
    assert rows[2]["outcome"] == "failed" and rows[2]["reason"] == reason
    assert rows[1]["reason"] is None
    assert rows[1]["running"] is None          # offline: nothing asked of systemd
    r, obj = status_json(ops)
    assert r.code == 0, r                      # the current version is fine
    assert obj["pods"][0]["last_failure"] == {"version": 2, "at": state(root, "web", 2)["deployed_at"],
                                              "reason": reason}
    assert ("last failed deploy: version 2 at %s: web-api.service: failed to start: boom; "
            "rolled back to 1 (result exit-code)" % state(root, "web", 2)["deployed_at"]
            ) in ops("status").out
    # a later successful deploy clears the reason
    assert ops("redeploy", "web:2").code == 0
    assert state(root, "web", 2)["reason"] is None
    assert status_json(ops)[1]["pods"][0]["last_failure"] is None


def test_interrupted_deploy_rolled_back_by_recovery_keeps_a_reason(ops, root, bundle, deployed):
    assert ops("deploy", bundle(name="web", version=2, units=UNITS)).code == 0
    j = root / "var/lib/ops/journal"
    (j / "web.json").write_text(json.dumps({"pod": "web", "from": 1, "to": 2,
                                            "command": "deploy"}))
    assert ops("cleanup", "--keep", "5").code == 0        # any mutating command recovers
    r, obj = status_json(ops)
    assert r.code == 0, r
    failure = obj["pods"][0]["last_failure"]
    assert obj["pods"][0]["version"] == 1 and failure["version"] == 2
    assert failure["reason"]["message"].startswith("the deploy was interrupted")


# -- check: unit files systemd cannot parse ------------------------------------------------------

def svc(body):
    return "[Unit]\nDescription=t\n\n[Service]\n%s\n[Install]\nWantedBy=multi-user.target\n" % body


@pytest.mark.parametrize("body, complaint", [
    ("ExecStart=/bin/sleep 1\nRestartt=always", "line 6: Unknown key 'Restartt' in section [Service]"),
    ("Type=bogus\nExecStart=/bin/sleep 1", "line 5: Failed to parse service type"),
    ("ExecStart=relative/bin", "line 5: Neither a valid executable name nor an absolute path"),
])
def test_check_refuses_a_unit_file_systemd_cannot_parse(ops, bundle, body, complaint):
    b = bundle(name="web", version=1, units=[{"file": "web-ok.service", "start": True},
                                             {"file": "web-bad.service", "start": True,
                                              "text": svc(body)}])
    r = ops("check", b)
    assert r.code == 2, r
    assert r.out == ""
    (line,) = r.err.splitlines()
    assert line.startswith("ops: error: %s/pod.json: ops.systemd-units[1].unit-file: "
                           "units/web-bad.service: systemd cannot parse it (systemd-analyze "
                           "verify): %s" % (b, complaint)), line


def test_check_refuses_an_unknown_section_in_a_template(ops, bundle):
    text = "[Unit]\nDescription=t %i\n[Servic]\nExecStart=/bin/sleep 1\n"
    b = bundle(name="web", version=1, units=[{"file": "web-w@.service", "start": True,
                                              "instances": 2, "text": text}])
    r = ops("check", b)
    assert r.code == 2, r
    assert "units/web-w@.service: systemd cannot parse it" in r.err
    assert "line 3: Unknown section 'Servic'" in r.err


def test_check_accepts_what_only_the_target_host_has(ops, bundle):
    # a binary and a dependency that exist only on the target, and the drop-in's variables
    text = svc("ExecStart=/opt/app/bin/server --data ${POD_VOLUMES}/www\nUser=app\n") \
        .replace("Description=t", "Description=t\nRequires=app-db.service\nAfter=app-db.service")
    b = bundle(name="web", version=1, units=[{"file": "web-app.service", "start": True,
                                              "text": text}])
    r = ops("check", b)
    assert r.code == 0, r
    assert r.out.startswith("web 1: valid: 1 unit")


def test_check_without_systemd_analyze_skips_the_unit_check(ops, bundle, tmp_path, monkeypatch):
    b = bundle(name="web", version=1, units=[{"file": "web-bad.service", "start": True,
                                              "text": svc("ExecStart=/bin/true\nFoo=1")}])
    assert ops("check", b).code == 2
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    r = ops("check", b)
    assert r.code == 0, r


@pytest.mark.parametrize("how", ["missing", "fifo", "directory"])
def test_a_current_version_that_lost_its_pod_json_is_drift_not_undeployed(ops, root, deployed, how):
    """The units stay installed: "not deployed" would disagree with the host."""
    p = root / "etc/ops/pods/web/1/pod.json"
    p.unlink()
    if how == "fifo":
        os.mkfifo(str(p))
    elif how == "directory":
        p.mkdir()
    for args in ((), ("web",)):
        r, j = status_json(ops, *args)
        assert r.code == 5, r
        (report,) = j["pods"]
        assert report["version"] == 1 and not report["healthy"]
        assert [d["problem"] for d in report["drift"]] == [
            "the current version 1 is not stored whole: /etc/ops/pods/web/1/pod.json is missing or "
            "not a regular file, so ops cannot tell what it installed; put it back from the bundle, "
            "or run `ops undeploy web`"]
    assert (unit_dir(root) / "web-api.service").exists()
