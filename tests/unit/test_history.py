"""`ops history`: one event per change, from execute.apply and recovery,
kept outside the versions, bounded, never written by --dry-run."""

import json
import os

import pytest

from conftest import unit_text
from ops import history
from ops.layout import Layout

pytestmark = pytest.mark.compat

KEYS = {"ok", "changed", "command", "dry_run", "exit_code", "pod", "previous", "rolled_back", "stop_timed_out",
        "actions", "error", "reason", "history"}


def web(bundle, version):
    return bundle(name="web", version=version, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body="v%d" % version)}])


def events(ops):
    r = ops("--json", "history", "web")
    assert r.code == 0, r
    assert set(r.json()) == KEYS
    return r.json()["history"]


def test_every_change_is_an_event_oldest_first_and_outlives_the_pod(ops, root, bundle,
                                                                   monkeypatch):
    monkeypatch.setenv("SUDO_USER", "alice")
    for v in (1, 2):
        assert ops("deploy", web(bundle, v)).code == 0
    assert ops("redeploy", "web:1").code == 0
    assert ops("pin", "web:1").code == 0
    assert ops("unpin", "web:1").code == 0
    assert ops("cleanup", "--keep", "0").code == 0
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert "history of web is kept" in r.err
    assert not (root / "etc/ops/pods/web").exists()
    got = [(e["command"], e["from"], e["to"], e["outcome"], e["removed"]) for e in events(ops)]
    assert got == [("deploy", None, 1, "ok", []), ("deploy", 1, 2, "ok", []),
                   ("redeploy", 2, 1, "ok", []), ("pin", None, 1, "ok", []),
                   ("unpin", None, 1, "ok", []), ("cleanup", None, None, "removed", [2]),
                   ("undeploy", 1, None, "removed", [1])]
    assert all(e["by"] == "alice" and e["at"].endswith("Z") for e in events(ops))
    text = ops("history", "web")
    assert text.code == 0
    assert text.lines[0].split() == ["AT", "COMMAND", "FROM", "TO", "OUTCOME", "BY", "REASON"]
    assert text.lines[2].split()[1:6] == ["deploy", "1", "2", "ok", "alice"]
    assert text.lines[-1].split()[1:6] == ["undeploy", "1", "-", "removed", "1"]


def test_dry_run_and_unchanged_record_nothing(ops, root, bundle):
    b = web(bundle, 1)
    assert ops("--dry-run", "deploy", b).code == 0
    assert ops("history", "web").code == 2          # no such pod
    assert ops("deploy", b).code == 0
    assert ops("deploy", b).code == 0               # unchanged: no plan to apply
    assert ops("--dry-run", "undeploy", "web", "--remove").code == 0
    assert [e["command"] for e in events(ops)] == ["deploy"]


def test_a_rolled_back_deploy_keeps_its_reason(ops, bundle, monkeypatch):
    assert ops("deploy", web(bundle, 1)).code == 0
    from ops.execute import Executor

    def broken(self, a):
        raise OSError(28, "No space left on device", "/etc/systemd/system/web-api.service")
    monkeypatch.setattr(Executor, "install_unit", broken)
    r = ops("deploy", web(bundle, 2))
    assert r.code == 1, r
    last = events(ops)[-1]
    assert (last["command"], last["from"], last["to"], last["outcome"]) == \
        ("deploy", 1, 2, "rolled back")
    assert "No space left on device" in last["reason"] and "rolled back to 1" in last["reason"]


def test_recovery_of_an_interrupted_run_is_an_event(ops, root, bundle):
    for v in (1, 2):
        assert ops("deploy", web(bundle, v)).code == 0
    j = root / "var/lib/ops/journal/web.json"
    j.parent.mkdir(parents=True, exist_ok=True)
    j.write_text(json.dumps({"pod": "web", "from": 1, "to": 2, "command": "deploy"}))
    assert ops("pin", "web:1").code == 0
    rec, pin = events(ops)[-2:]
    assert (rec["command"], rec["from"], rec["to"], rec["outcome"]) == \
        ("recover", 2, 1, "rolled back")
    assert "interrupted deploy" in rec["reason"]
    assert pin["command"] == "pin"


def test_history_is_bounded_and_rewritten_whole(root, monkeypatch):
    monkeypatch.setattr(history, "MAX_ENTRIES", 5)
    layout = Layout(str(root))
    for n in range(400):       # past 5 * 64 bytes the lines are counted
        history.record(layout, "web", "deploy", "ok", n, n + 1)
    got = history.read(layout, "web")
    assert [e["to"] for e in got] == [396, 397, 398, 399, 400]
    monkeypatch.setattr(history, "MAX_ENTRIES", 1000)
    monkeypatch.setattr(history, "MAX_BYTES", 1000)
    history.record(layout, "web", "deploy", "ok", 400, 401, reason="x" * 600)
    assert os.path.getsize(history.path(layout, "web")) <= 1000
    assert history.read(layout, "web")[-1]["to"] == 401


def test_a_torn_line_is_skipped(root):
    layout = Layout(str(root))
    history.record(layout, "web", "deploy", "ok", None, 1)
    with open(history.path(layout, "web"), "a") as f:
        f.write('{"at": "2026-')
    assert len(history.read(layout, "web")) == 1


def test_who_ran_it(monkeypatch):
    monkeypatch.setenv("SUDO_USER", "bob")
    assert history.who() == "bob"
    monkeypatch.delenv("SUDO_USER")
    import pwd
    assert history.who() == pwd.getpwuid(os.geteuid()).pw_name


def test_unknown_pod_and_a_version_are_refused(ops):
    r = ops("--json", "history", "nope")
    assert r.code == 2 and r.json()["history"] == [] and set(r.json()) == KEYS
    assert ops("history", "web:1").code == 2


def test_text_edited_into_the_history_file_is_shown_escaped(ops, root):
    layout = Layout(str(root))
    history.record(layout, "web", "deploy", "ok", None, 1)
    with open(history.path(layout, "web"), "a") as f:
        f.write(json.dumps({"at": "\x1b[2J2026", "command": "deploy\x07", "from": 1, "to": 2,
                            "outcome": "ok\x1b]0;owned\x07", "by": "eve\r", "reason": "r\x1b"}) + "\n")
    r = ops("history", "web")
    assert r.code == 0, r
    assert not any(c in r.out for c in "\x1b\x07\r"), repr(r.out)
    assert "\\x1b[2J2026" in r.out and "deploy\\x07" in r.out and "eve\\r" in r.out


@pytest.mark.parametrize("removed", [5, "12", [1, {"a": 2}], {"x": 1}, True])
def test_an_edited_list_of_removed_versions_is_no_traceback(ops, root, removed):
    layout = Layout(str(root))
    history.record(layout, "web", "cleanup", "removed", None, None, None, [1, 2])
    with open(history.path(layout, "web"), "a") as f:
        f.write(json.dumps({"at": 3, "command": "cleanup", "from": "x", "removed": removed}) + "\n")
    r = ops("history", "web")
    assert r.code == 0, r
    assert "removed 1,2" in r.out
    r = ops("--json", "history", "web")
    assert r.code == 0, r
    assert [e["removed"] for e in r.json()["history"]] == [[1, 2], []]


def test_a_history_file_hard_linked_to_another_file_is_not_appended_to(ops, root, bundle):
    """etc/ops/history/web.jsonl made a second name of another file (a hard
    link, as an image's tarball can hold): the deploy goes on with a
    warning naming the file, and the other file is left as it was."""
    precious = root / "etc" / "passwd"
    precious.parent.mkdir(parents=True, exist_ok=True)
    precious.write_text("root:x:0:0:root:/root:/bin/sh\n")
    hist = root / "etc/ops/history/web.jsonl"
    hist.parent.mkdir(parents=True)
    os.link(str(precious), str(hist))
    r = ops("deploy", web(bundle, 1))
    assert r.code == 0, r
    assert precious.read_text() == "root:x:0:0:root:/root:/bin/sh\n"
    assert "the history of web was not written: %s: a file with 2 hard links" % hist in r.err
