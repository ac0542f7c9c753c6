"""Every command's ``--json`` object has its documented keys when it fails
too (README, "Output and exit codes"): the common keys, ``reason`` with its
own, and the command's own keys, empty."""

import pytest

from conftest import unit_text
from ops.errors import Failed
from ops.execute import Executor

COMMON = {"ok", "changed", "command", "dry_run", "exit_code", "pod", "previous", "rolled_back",
          "actions", "error", "reason", "stop_timed_out"}
REASON = {"pod", "version", "unit", "what", "rolled_back"}
OWN = {"cleanup": {"removed": {}, "kept": {}}, "list": {"pods": []}, "status": {"pods": []},
       "history": {"history": []}, "logs": {"entries": []},
       "check": {"units": [], "images": [], "volumes": [], "health": None},
       "diff": {"differs": False, "diff": "", "changes": []}}

FAILURES = [
    ("check", ("check", "./no-such-bundle"), 2),
    ("deploy", ("deploy", "./no-such-bundle"), 2),
    ("redeploy", ("redeploy", "nopod:3"), 2),
    ("undeploy", ("undeploy", "web:x", "--remove"), 2),
    ("list", ("list", "web:1"), 2),
    ("status", ("status", "nopod"), 2),
    ("status", ("status", "web", "--health"), 2),     # refused offline
    ("cleanup", ("cleanup", "not a name"), 2),
    ("pin", ("pin", "nopod:1"), 2),
    ("unpin", ("unpin", "web"), 2),
    ("history", ("history", "nopod"), 2),
    ("logs", ("logs", "web"), 2),                      # refused offline
    ("diff", ("diff", "web:9", "web:1"), 2),
    ("diff", ("diff", "web"), 2),                      # a usage error of the command
    ("list", ("list", "--keep", "1"), 2),              # an option the command does not take
]


@pytest.fixture
def web1(ops, bundle):
    assert ops("deploy", bundle(name="web", version=1)).code == 0


@pytest.mark.parametrize("command, args, code", FAILURES,
                         ids=["-".join(a) for _, a, _ in FAILURES])
def test_a_failure_has_every_documented_key(ops, web1, command, args, code):
    r = ops("--json", *args)
    assert r.code == code, r
    assert len(r.error_lines) == 1, r
    obj = r.json()
    assert set(obj) == COMMON | set(OWN.get(command, {})), sorted(obj)
    assert obj["command"] == command and obj["ok"] is False and obj["exit_code"] == code
    assert set(obj["reason"]) == REASON and obj["error"] == r.error_lines[0][len("ops: error: "):]
    assert {k: obj[k] for k in OWN.get(command, {})} == OWN.get(command, {})


def test_a_rolled_back_deploy_has_every_documented_key_and_its_reason(ops, bundle, web1,
                                                                      monkeypatch):
    def fail(self, a):
        raise Failed("web-main.service", "injected failure", unit="web-main.service")
    monkeypatch.setattr(Executor, "set_current", fail)
    r = ops("--json", "deploy", bundle(name="web", version=2, units=[
        {"file": "web-main.service", "start": True, "text": unit_text("web-main.service")}]))
    assert r.code == 1, r
    obj = r.json()
    assert set(obj) == COMMON and set(obj["reason"]) == REASON
    assert obj["reason"] == {"pod": "web", "version": 2, "unit": "web-main.service",
                             "what": obj["reason"]["what"], "rolled_back": True}
    assert obj["reason"]["what"].startswith("injected failure; rolled back to 1")


@pytest.mark.parametrize("argv", [["list", "a" * 20000], ["history", "a" * 20000],
                                  ["deploy", "/nonexistent/" + "b" * 20000],
                                  ["--settle", "c" * 20000, "list"]])
def test_an_error_quoting_a_huge_argument_is_one_bounded_line(ops, argv):
    r = ops(*argv)
    assert r.code == 2, r
    assert len(r.error_lines) == 1 and len(r.err) < 4200, len(r.err)
    assert "characters cut]" in r.err
    j = ops("--json", *argv)
    assert j.code == 2 and len(j.out) < 9000 and len(j.json()["reason"]["what"]) < 4100, len(j.out)
