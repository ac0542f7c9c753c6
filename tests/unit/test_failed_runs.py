"""What a failed run reports: the steps it did (its rollback's too) as
``actions``, ``changed`` true when it restarted or rolled back anything, and
a failed repair of the current version recorded where `status` and `history`
show it.  The failure is injected into one step of the switch."""

from conftest import unit_text
from ops.errors import Failed
from ops.execute import Executor


def web(bundle, version):
    return bundle(name="web", version=version, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body="v%d" % version)}])


def _deploy_failing(ops, bundle, monkeypatch, *args):
    def fail(self, a):
        raise Failed("web-api.service", "injected failure", unit="web-api.service")
    with monkeypatch.context() as m:
        m.setattr(Executor, "set_current", fail)
        return ops("--json", *args)


def test_rolled_back_deploy_reports_what_it_did(ops, root, bundle, monkeypatch):
    assert ops("deploy", web(bundle, 1)).code == 0
    r = _deploy_failing(ops, bundle, monkeypatch, "deploy", web(bundle, 2))
    assert r.code == 1, r
    j = r.json()
    assert (j["rolled_back"], j["changed"]) == (True, True)
    done = [(a["action"], a.get("rollback", False)) for a in j["actions"]]
    # the plan's steps up to the failed one, then the rollback's
    assert done[0] == ("store", False)
    assert ("stop", False) in done and ("install-unit", False) in done
    assert done.index(("set-current", False)) < done.index(("install-unit", True))
    assert {"action": "set-current", "target": "web 1", "rollback": True} in j["actions"]
    assert (root / "etc/ops/current/web").resolve().name == "1"


def test_retrying_a_stored_broken_version_is_changed_with_its_actions(ops, root, bundle,
                                                                      monkeypatch):
    assert ops("deploy", web(bundle, 1)).code == 0
    b2 = web(bundle, 2)
    assert _deploy_failing(ops, bundle, monkeypatch, "deploy", b2).code == 1
    for args in (("deploy", b2), ("redeploy", "web:2")):
        r = _deploy_failing(ops, bundle, monkeypatch, *args)
        assert r.code == 1, r
        j = r.json()
        assert j["changed"] is True, args
        assert any(a.get("rollback") and a["action"] == "install-unit" for a in j["actions"])
        assert not any(a["action"] == "store" for a in j["actions"])   # stored already


def test_a_refused_run_did_nothing_and_says_so(ops, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    j = ops("--json", "redeploy", "web:7").json()
    assert (j["exit_code"], j["changed"], j["actions"]) == (2, False, [])


def test_a_failed_repair_of_the_current_version_is_recorded_and_shown(ops, root, bundle,
                                                                     monkeypatch):
    b = web(bundle, 1)
    assert ops("deploy", b).code == 0
    (root / "etc/systemd/system/web-api.service").unlink()      # drift: a deploy repairs it
    r = _deploy_failing(ops, bundle, monkeypatch, "deploy", b)
    assert r.code == 1, r
    assert r.json()["rolled_back"] is True and r.json()["changed"] is True
    st = ops("--json", "status", "web").json()["pods"][0]
    assert st["last_failure"]["version"] == 1
    assert "injected failure" in st["last_failure"]["reason"]["message"]
    assert "last failed deploy: version 1" in ops("status", "web").out
    events = ops("--json", "history", "web").json()["history"]
    assert (events[-1]["command"], events[-1]["from"], events[-1]["to"],
            events[-1]["outcome"]) == ("deploy", 1, 1, "rolled back")
    assert "injected failure" in events[-1]["reason"]
    # the units are back as the version has them
    assert (root / "etc/systemd/system/web-api.service").exists()
