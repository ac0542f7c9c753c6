"""ops.transaction on its own: the Transaction context manager (journal,
commit, rollback through restore()), recover() of a journal a killed run
left, remove_leftovers(), and the read-only journals()/interrupted().

Versions are deployed with ops in-process first (offline ROOT); the
transaction is then driven directly, with the plan's own steps run by the
Executor inside the block, or an error raised there.
"""

import errno
import json
import os

import pytest

from conftest import current_link, snapshot, state, stored_versions, unit_dir, wants
from ops import signals, store
from ops.errors import Failed, Refused, RollbackFailed
from ops.execute import Executor
from ops.host import Host
from ops.plan import plan_redeploy
from ops.transaction import (Transaction, interrupted, journals, recover, remove_leftovers)

V1 = [{"file": "web-a.service", "start": True}, {"file": "web-old.service", "start": True}]
V2 = [{"file": "web-a.service", "start": True}, {"file": "web-new.service", "start": True}]


@pytest.fixture
def trapped():
    """Run as ops runs: inside signals.trap(), whose exit gives the test
    process its signal handlers back (a commit holds signals off)."""
    with signals.trap():
        yield


@pytest.fixture
def two(ops, root, bundle):
    """web 1 then web 2 deployed: 2 is current, 1 its rollback target."""
    for n, units in ((1, V1), (2, V2)):
        r = ops("deploy", bundle(name="web", version=n, units=units))
        assert r.code == 0, r
    h = Host(str(root), settle=0)
    return h, store.get(h.layout, "web", 1), store.get(h.layout, "web", 2)


def journal_path(root, name="web"):
    return root / "var/lib/ops/journal" / ("%s.json" % name)


def on_version(root, n, units):
    assert current_link(root, "web") == "../pods/web/%d" % n
    assert sorted(p.name for p in unit_dir(root).glob("web-*.service")) == sorted(
        u["file"] for u in units)
    assert wants(root) == sorted(u["file"] for u in units)


# -- Transaction -------------------------------------------------------------------

def test_the_journal_is_written_before_the_block_and_removed_at_the_commit(
        root, two, trapped):
    h, v1, v2 = two
    plan = plan_redeploy(h, "web", 1)
    seen = {}
    with Transaction(h, "redeploy", "web", v2, v1):
        seen.update(json.loads(journal_path(root).read_text()))
        ex = Executor(h, "web", v1)
        for a in plan.switch:
            ex.run(a)
    assert {k: seen[k] for k in ("pod", "from", "to", "command", "pid")} == {
        "pod": "web", "from": 2, "to": 1, "command": "redeploy", "pid": os.getpid()}
    assert seen["started_at"].endswith("Z")
    assert not journal_path(root).exists()
    assert os.listdir(str(root / "var/lib/ops/journal")) == []
    on_version(root, 1, V1)
    assert state(root, "web", 1)["outcome"] == "ok"
    assert state(root, "web", 1)["history"][-1]["outcome"] == "ok"


def test_an_error_inside_rolls_back_to_the_previous_version(root, two, trapped):
    h, v1, v2 = two
    plan = plan_redeploy(h, "web", 1)
    with pytest.raises(Failed) as e:
        with Transaction(h, "redeploy", "web", v2, v1):
            ex = Executor(h, "web", v1)
            for a in plan.switch[:4]:          # stop, disable, remove-unit, install-unit
                ex.run(a)
            raise OSError(errno.EIO, "Input/output error", "/dev/broken")
    assert e.value.rolled_back is True
    assert e.value.exit_code == 1
    assert e.value.where == "/dev/broken"
    assert e.value.what == "Input/output error; rolled back to 2"
    on_version(root, 2, V2)
    assert not journal_path(root).exists()
    st = state(root, "web", 1)
    assert st["outcome"] == "failed"
    assert st["reason"]["message"] == "/dev/broken: Input/output error"
    assert state(root, "web", 2)["outcome"] == "ok"


def test_an_interrupt_inside_rolls_back_and_says_which_signal(root, two, trapped):
    h, v1, v2 = two
    with pytest.raises(Failed) as e:
        with Transaction(h, "redeploy", "web", v2, v1):
            raise signals.Interrupted(15)
    assert e.value.rolled_back
    assert "interrupted by SIGTERM during the switch" in e.value.what
    on_version(root, 2, V2)
    assert state(root, "web", 1)["outcome"] == "failed"


def test_a_second_signal_as_the_rollback_begins_does_not_stop_it(
        root, two, trapped, monkeypatch):
    """Ctrl-C twice: the second arrives while ops says it rolls back (a
    write to a slow terminal); the rollback still runs to its end."""
    import signal
    from ops import log
    h, v1, v2 = two
    plan = plan_redeploy(h, "web", 1)
    real = log.info

    def info(msg):
        if "rolling back" in msg:
            os.kill(os.getpid(), signal.SIGINT)
        real(msg)
    monkeypatch.setattr(log, "info", info)
    with pytest.raises(Failed) as e:
        with Transaction(h, "redeploy", "web", v2, v1):
            ex = Executor(h, "web", v1)
            for a in plan.switch[:4]:          # stop, disable, remove-unit, install-unit
                ex.run(a)
            raise signals.Interrupted(2)
    assert e.value.rolled_back
    assert "interrupted by SIGINT during the switch" in e.value.what
    assert not journal_path(root).exists()
    on_version(root, 2, V2)


def test_a_first_deploy_that_fails_rolls_back_to_nothing(root, two, trapped):
    h, v1, v2 = two
    # previous None: whatever v2 installed goes, and nothing is current
    with pytest.raises(Failed) as e:
        with Transaction(h, "deploy", "web", None, v2):
            raise Failed("web-new.service", "is not active")
    assert e.value.what.startswith("is not active; rolled back to nothing")
    assert current_link(root, "web") is None
    assert sorted(p.name for p in unit_dir(root).glob("web-*")) == []
    assert wants(root) == []
    assert stored_versions(root, "web") == [1, 2]


def test_a_journal_that_cannot_be_written_switches_nothing(root, two, trapped):
    h, v1, v2 = two
    jdir = root / "var/lib/ops/journal"
    if jdir.exists():
        jdir.rmdir()
    jdir.write_text("not a directory")
    mine = ("etc/ops/pods/web/1/state.json", "etc/ops/pods/web/index")
    before = {k: v for k, v in snapshot(root).items() if k not in mine}
    ran = []
    with pytest.raises(Failed) as e:
        with Transaction(h, "redeploy", "web", v2, v1):
            ran.append(True)
    assert ran == []
    assert "cannot write the journal" in e.value.what and "nothing was switched" in e.value.what
    assert not e.value.rolled_back
    after = {k: v for k, v in snapshot(root).items() if k not in mine}
    assert after == before           # only v1's outcome (state.json, index) changed
    assert state(root, "web", 1)["outcome"] == "failed"
    on_version(root, 2, V2)


def test_an_interrupt_just_after_the_journal_is_written_leaves_no_journal(
        root, two, trapped, monkeypatch):
    """A signal once the journal is renamed into place (while its directory
    is fsynced), before the block begins: nothing was switched, so the
    journal goes with the failure; no later command rolls anything back."""
    h, v1, v2 = two
    from ops import atomic
    real = atomic.write_text

    def then_signal(path, text, *a, **kw):
        real(path, text, *a, **kw)
        raise signals.Interrupted(15)
    monkeypatch.setattr(atomic, "write_text", then_signal)
    ran = []
    with pytest.raises(KeyboardInterrupt):
        with Transaction(h, "redeploy", "web", v2, v1):
            ran.append(True)
    monkeypatch.undo()
    assert ran == []
    assert not journal_path(root).exists()
    assert journals(h.layout) == []
    on_version(root, 2, V2)


# -- recover -----------------------------------------------------------------------

def write_journal(root, name, frm, to, command="deploy", text=None):
    p = journal_path(root, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text if text is not None else json.dumps(
        {"pod": name, "from": frm, "to": to, "command": command, "pid": 1}))
    return p


def test_recover_rolls_a_left_journal_back_to_from_and_removes_it(root, two, trapped):
    h, v1, v2 = two
    j = write_journal(root, "web", 1, 2)          # killed during the switch from 1 to 2
    assert recover(h) == set()
    on_version(root, 1, V1)
    assert not j.exists()
    st = state(root, "web", 2)
    assert st["outcome"] == "failed"
    assert "interrupted" in st["reason"]["message"]
    assert stored_versions(root, "web") == [1, 2]


def test_a_signal_during_the_recovery_says_the_rollback_is_unfinished(
        root, two, trapped, monkeypatch):
    """SIGTERM while an interrupted run is rolled back: exit 4, naming the
    journal, which is kept; the next recovery finishes the rollback."""
    import ops.restore
    h, v1, v2 = two
    j = write_journal(root, "web", 1, 2)
    real = ops.restore.restore

    def cut(ctx, name, good, bad):
        raise signals.Interrupted(15)
    monkeypatch.setattr(ops.restore, "restore", cut)
    with pytest.raises(RollbackFailed) as e:
        recover(h)
    assert e.value.exit_code == 4
    assert e.value.where == str(j)
    assert e.value.what.startswith("interrupted by SIGTERM while rolling web back to version 1 "
                                   "after an interrupted deploy; the journal is kept")
    assert j.exists()
    monkeypatch.setattr(ops.restore, "restore", real)
    assert recover(h) == set()
    on_version(root, 1, V1)
    assert not j.exists()


def test_recover_with_nothing_left_changes_nothing(root, two, trapped):
    h, _, _ = two
    before = snapshot(root)
    assert recover(h) == set()
    assert snapshot(root) == before


@pytest.mark.parametrize("text, why", [
    ("{not json", "not a JSON object"),
    (json.dumps({"pod": "db", "from": 1, "to": 2, "command": "deploy"}), "names pod 'db'"),
    (json.dumps({"pod": "web", "from": 7, "to": 2, "command": "deploy"}),
     "version 7, which it names to roll back to, is not stored"),
    (json.dumps({"pod": "web", "from": 1, "to": 2, "command": "rm -rf"}), "\"command\""),
])
def test_an_untrusted_journal_is_refused_for_its_pod_and_left_alone_otherwise(
        root, two, trapped, text, why):
    h, _, _ = two
    j = write_journal(root, "web", None, None, text=text)
    before = snapshot(root)
    with pytest.raises(Refused) as e:
        recover(h, own={"web"})
    assert e.value.where == str(j)
    assert why in e.value.what and "nothing was changed" in e.value.what
    assert snapshot(root) == before
    # another pod's command: web is left alone, reported as unsettled
    assert recover(h, own={"db"}) == {"web"}
    assert snapshot(root) == before
    on_version(root, 2, V2)


def test_journals_and_interrupted_only_read(root, two):
    h, _, _ = two
    assert journals(h.layout) == [] and interrupted(h.layout) == set()
    write_journal(root, "web", 1, 2)
    write_journal(root, "db", None, None, text="")
    (root / "var/lib/ops/journal/.ops-tmp-1-web.json").write_text("{")
    before = snapshot(root)
    js = journals(h.layout)
    assert [j["pod"] for j in js] == ["db", "web"]
    assert js[0]["unreadable"] == "the file is empty"
    assert js[1]["from"] == 1 and js[1]["to"] == 2 and "unreadable" not in js[1]
    assert js[1]["path"] == str(journal_path(root))
    assert interrupted(h.layout) == {"db", "web"}
    assert snapshot(root) == before


# -- remove_leftovers --------------------------------------------------------------

def test_remove_leftovers_removes_temporary_files_and_directories(root, two):
    h, _, _ = two
    made = [root / "var/lib/ops/tmp/download-1",
            root / "var/lib/ops/tmp/partial/x",
            unit_dir(root) / ".ops-tmp-42-web-a.service",
            root / "etc/ops/pods/web/.ops-tmp-42-3/pod.json",
            root / "etc/ops/pods/web/1/.ops-tmp-42-state.json",
            root / "var/lib/ops/volumes/web/9/data/f"]       # volumes of no version
    for p in made:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    remove_leftovers(h.layout, [])
    assert [str(p) for p in made if os.path.lexists(str(p))] == []
    assert os.listdir(str(root / "var/lib/ops/tmp")) == []
    assert not (root / "etc/ops/pods/web/.ops-tmp-42-3").exists()
    assert not (root / "var/lib/ops/volumes/web/9").exists()
    assert stored_versions(root, "web") == [1, 2]
    on_version(root, 2, V2)


def test_remove_leftovers_deletes_a_version_staged_that_never_ran(root, two):
    h, v1, v2 = two
    v1.write_state(outcome="staged")        # as a run killed after staging it leaves it
    # while a journal names it, it stays
    remove_leftovers(h.layout, [{"pod": "web", "from": 2, "to": 1}])
    assert stored_versions(root, "web") == [1, 2]
    # a pod left alone is not looked at
    remove_leftovers(h.layout, [], left={"web"})
    assert stored_versions(root, "web") == [1, 2]
    remove_leftovers(h.layout, [])
    assert stored_versions(root, "web") == [2]
    assert sorted(os.listdir(str(root / "etc/ops/pods/web"))) == ["2", "index"]
    on_version(root, 2, V2)


def test_remove_leftovers_keeps_a_staged_version_that_is_current(root, two):
    h, v1, v2 = two
    v2.write_state(outcome="staged")
    remove_leftovers(h.layout, [])
    assert stored_versions(root, "web") == [1, 2]
