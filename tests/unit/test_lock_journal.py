"""The lock every mutating command takes, the journal of an interrupted
switch, and the leftovers a killed run can leave (offline mode).

A killed run is reproduced by writing the state it leaves on disk: the
journal ``var/lib/ops/journal/NAME.json`` plus half-switched units, or
``.ops-tmp-*`` files and directories, or downloads in ``var/lib/ops/tmp``.
"""

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import (REPO, current_link, diff, dropin_env, snapshot, state, stored_versions,
                      unit_dir, unit_text, wants)

HOLDER = r"""
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.ftruncate(fd, 0)
os.write(fd, b"%d\n" % os.getpid())
sys.stdout.write("locked\n")
sys.stdout.flush()
time.sleep(120)
"""


@pytest.fixture
def lock_holder(root):
    """Start a process that holds the flock on ROOT/var/lib/ops/lock."""
    procs = []

    def _start():
        path = root / "var/lib/ops/lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)],
                             stdout=subprocess.PIPE, universal_newlines=True)
        procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], 20)
        assert ready, "the lock holder did not start"
        assert p.stdout.readline().strip() == "locked"
        return p
    yield _start
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.stdout.close()


def web(bundle, version, units=None):
    if units is None:
        units = [{"file": "web-api.service", "start": True,
                  "text": unit_text("web-api.service", body="v%d" % version)},
                 {"file": "web-v%d.service" % version, "start": True},
                 {"file": "web-w@.service", "start": True, "instances": version + 1}]
    return bundle(name="web", version=version, units=units,
                  volumes={"data": {"v.txt": "%d\n" % version}})


def is_on(root, b):
    """The host runs exactly version ``b`` of web: units, drop-ins, wants, current."""
    v = b.version
    assert current_link(root, "web") == "../pods/web/%d" % v
    ud = unit_dir(root)
    installed = sorted(n for n in os.listdir(str(ud)) if n.startswith("web-")
                       and not n.endswith(".d"))
    assert installed == sorted(["web-api.service", "web-v%d.service" % v, "web-w@.service"])
    for n in installed:
        assert (ud / n).read_bytes() == (b.dir / "units" / n).read_bytes(), n
        assert dropin_env(root, n)["POD_VERSION"] == str(v), n
    dropins = sorted(n[:-2] for n in os.listdir(str(ud)) if n.endswith(".d"))
    assert dropins == installed
    assert wants(root) == sorted(["web-api.service", "web-v%d.service" % v] +
                                 ["web-w@%d.service" % i for i in range(v + 1)])


def write_journal(root, name, frm, to, command="deploy", steps=()):
    d = root / "var/lib/ops/journal"
    d.mkdir(parents=True, exist_ok=True)
    p = d / ("%s.json" % name)
    p.write_text(json.dumps({"pod": name, "from": frm, "to": to, "command": command,
                             "pid": 999999, "steps": list(steps)}))
    return p


# -- the lock ------------------------------------------------------------------

def test_a_held_lock_makes_deploy_exit_3_naming_the_holder(ops, root, bundle, lock_holder):
    holder = lock_holder()
    b = web(bundle, 1)
    before = snapshot(root)
    t0 = time.monotonic()
    r = ops("--lock-timeout", "0.5", "deploy", b)
    elapsed = time.monotonic() - t0
    assert r.code == 3, r
    assert len(r.error_lines) == 1
    assert "PID %d" % holder.pid in r.error_lines[0]
    assert elapsed >= 0.5
    assert elapsed < 10
    assert diff(before, snapshot(root)) == []
    # once the holder is killed, the kernel drops its flock: no stale lock
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    r = ops("--lock-timeout", "0.5", "deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"


@pytest.mark.parametrize("args", [("redeploy", "web:1"), ("undeploy", "web"),
                                  ("undeploy", "nosuchpod"), ("cleanup",)])
def test_every_mutating_command_takes_the_lock(ops, root, bundle, lock_holder, args):
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", web(bundle, 2)).code == 0
    holder = lock_holder()
    before = snapshot(root)
    r = ops("--lock-timeout", "0.2", *args)
    assert r.code == 3, r
    assert "PID %d" % holder.pid in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_lock_timeout_json(ops, root, bundle, lock_holder):
    holder = lock_holder()
    r = ops("--json", "--lock-timeout", "0", "deploy", web(bundle, 1))
    assert r.code == 3, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is False and doc["changed"] is False
    assert str(holder.pid) in doc["error"]


def test_read_only_commands_take_no_lock(ops, root, bundle, lock_holder):
    b = web(bundle, 1)
    assert ops("deploy", b).code == 0
    lock_holder()
    before = snapshot(root, ignore_lock=False)
    assert ops("--lock-timeout", "0", "list").code == 0
    assert ops("--lock-timeout", "0", "check", b).code == 0
    r = ops("--lock-timeout", "0", "--dry-run", "deploy", web(bundle, 2))
    assert r.code == 0, r
    assert "install-unit web-v2.service" in r.out
    r = ops("--lock-timeout", "0", "--dry-run", "undeploy", "web", "--remove")
    assert r.code == 0, r
    assert diff(before, snapshot(root, ignore_lock=False)) == []


def test_the_lock_is_released_after_each_run(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    path = root / "var/lib/ops/lock"
    assert path.is_file()
    fd = os.open(str(path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)    # raises when still held
    finally:
        os.close(fd)
    # a failed run releases it too
    r = ops("redeploy", "web:9")
    assert r.code == 2
    assert ops("--lock-timeout", "0", "undeploy", "web").code == 0


def test_a_pid_that_cannot_be_written_into_the_lock_is_one_line_and_lets_it_go(
        ops, root, bundle, monkeypatch):
    """flock granted, then the PID record fails (a full disk): exit 2 naming
    the lock file, nothing changed, and the lock is not kept by the failed run."""
    import errno
    b = web(bundle, 1)

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "pwrite", full)
    r = ops("deploy", b)
    monkeypatch.undo()
    path = root / "var/lib/ops/lock"
    assert r.code == 2, r
    assert r.error_lines == ["ops: error: %s: cannot write this run's PID into the lock file: "
                             "No space left on device" % path], r
    assert current_link(root, "web") is None
    fd = os.open(str(path), os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)    # raises when still held
    finally:
        os.close(fd)


def test_a_lock_file_hard_linked_to_another_file_is_refused_and_left_alone(ops, root, bundle):
    """var/lib/ops/lock made a second name of another file (a hard link, as
    an image's tarball can hold): ops would write its PID over that file and
    cut it to 21 bytes.  Refused (exit 2) naming the lock; nothing written."""
    precious = root / "etc" / "shadow"
    precious.parent.mkdir(parents=True, exist_ok=True)
    precious.write_text("root:*:19000:0:99999:7:::\n" * 3)
    lock = root / "var/lib/ops/lock"
    lock.parent.mkdir(parents=True)
    os.link(str(precious), str(lock))
    r = ops("deploy", web(bundle, 1))
    assert r.code == 2, r
    assert r.error_lines == ["ops: error: %s: cannot open the lock file: a file with 2 hard "
                             "links (another name may be any file), which ops does not write "
                             "in place" % lock], r
    assert precious.read_text() == "root:*:19000:0:99999:7:::\n" * 3
    assert current_link(root, "web") is None


def test_the_lock_file_names_the_last_holder_after_release(ops_proc, root, bundle):
    """Never empty once taken: a run that gives up while the lock changes
    hands reads a PID, not nothing (the holder's, or the one before)."""
    r = ops_proc("deploy", web(bundle, 1))
    assert r.code == 0, r
    text = (root / "var/lib/ops/lock").read_text()
    assert text.strip().isdigit() and int(text) > 1, repr(text)
    assert text == "%20d\n" % int(text)         # one fixed-width record


def test_a_killed_deploy_leaves_no_stale_lock(ops_proc, root, bundle):
    """A real ops process killed while it waits for the lock."""
    b = web(bundle, 1)
    path = root / "var/lib/ops/lock"
    path.parent.mkdir(parents=True)
    fd = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        env = dict(os.environ, PYTHONPATH=str(REPO))
        p = subprocess.Popen([sys.executable, "-m", "ops", "--root", str(root),
                              "--lock-timeout", "30", "deploy", str(b.dir)],
                             cwd=str(REPO), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        time.sleep(0.5)
        assert p.poll() is None, "ops should be waiting for the lock"
        p.kill()
        p.communicate(timeout=10)
    finally:
        os.close(fd)
    r = ops_proc("--lock-timeout", "5", "deploy", str(b.dir))
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"


# -- the journal of an interrupted switch --------------------------------------------

def half_switched(root, b1, b2):
    """The state a deploy of v2 killed mid-switch leaves: v1's units stopped,
    disabled and partly removed, some of v2's installed, current still on v1,
    the journal from 1 to 2."""
    ud = unit_dir(root)
    for n in os.listdir(str(ud / "multi-user.target.wants")):
        os.unlink(str(ud / "multi-user.target.wants" / n))
    os.unlink(str(ud / "web-v1.service"))
    shutil.rmtree(str(ud / "web-v1.service.d"))
    # v2's web-api.service (with its drop-in) is in; web-v2.service is too
    shutil.copy(str(b2.dir / "units/web-api.service"), str(ud / "web-api.service"))
    (ud / "web-api.service.d/50-ops.conf").write_text(
        (ud / "web-api.service.d/50-ops.conf").read_text().replace("/1", "/2")
        .replace("POD_VERSION=1", "POD_VERSION=2").replace("version 1;", "version 2;"))
    shutil.copy(str(b2.dir / "units/web-v2.service"), str(ud / "web-v2.service"))
    os.symlink("/etc/systemd/system/web-v2.service",
               str(ud / "multi-user.target.wants/web-v2.service"))
    return write_journal(root, "web", 1, 2, steps=[
        "stop web-api.service web-v1.service web-w@0.service web-w@1.service",
        "disable web-api.service web-v1.service web-w@0.service web-w@1.service",
        "remove-unit web-v1.service", "install-unit web-api.service"])


def make_interrupted(ops, root, bundle):
    b1, b2 = web(bundle, 1), web(bundle, 2)
    assert ops("deploy", b1).code == 0
    assert ops("deploy", b2).code == 0
    assert ops("redeploy", "web:1").code == 0     # v2 stays stored
    is_on(root, b1)
    journal = half_switched(root, b1, b2)
    return b1, b2, journal


@pytest.fixture
def interrupted(ops, root, bundle):
    """web v1 deployed, v2 stored, and a v2 switch interrupted half-way."""
    return make_interrupted(ops, root, bundle)


def test_list_shows_an_interrupted_pod_and_changes_nothing(ops, root, bundle):
    assert ops("deploy", bundle(name="db", version=1, units=[])).code == 0
    make_interrupted(ops, root, bundle)
    before = snapshot(root, ignore_lock=False)
    r = ops("--json", "list")
    assert r.code == 0, r
    flags = {(p["name"], p["version"]): p["interrupted"] for p in r.json()["pods"]}
    assert flags == {("db", 1): False, ("web", 1): True, ("web", 2): True}
    r = ops("list")
    assert r.code == 0
    web_rows = [l for l in r.lines if l.startswith("web ")]
    assert web_rows and all("interrupted" in l for l in web_rows)
    assert not any("interrupted" in l for l in r.lines if l.startswith("db "))
    assert diff(before, snapshot(root, ignore_lock=False)) == []


def test_dry_run_says_a_journal_is_left_and_recovers_nothing(ops, root, bundle, interrupted):
    journal = interrupted[2]
    before = snapshot(root, ignore_lock=False)
    r = ops("--dry-run", "deploy", web(bundle, 3))
    assert r.code == 0, r
    assert "web.json" in r.err
    assert "interrupted" in r.err
    assert diff(before, snapshot(root, ignore_lock=False)) == []
    assert journal.exists()


@pytest.mark.parametrize("command", [("undeploy", "other-pod"), ("cleanup", "other-pod"),
                                     ("deploy", "V1")])
def test_the_next_mutating_command_rolls_back_to_from(ops, root, interrupted, command):
    b1, b2, journal = interrupted
    r = ops(*[str(b1.dir) if a == "V1" else a for a in command])
    assert r.code == 0, r
    assert not journal.exists()
    is_on(root, b1)
    assert not os.path.lexists(str(unit_dir(root) / "web-v2.service"))
    assert not os.path.lexists(str(unit_dir(root) / "web-v2.service.d"))
    assert state(root, "web", 2)["outcome"] == "failed"
    assert state(root, "web", 1)["outcome"] == "ok"
    assert stored_versions(root, "web") == [1, 2]
    if command[0] == "deploy":
        # recovery already put v1 back whole: the deploy itself has nothing to do
        assert r.last == "deploy web 1: unchanged"
    # and the pod is whole: the same bundle is now unchanged
    assert ops("deploy", b1).last == "deploy web 1: unchanged"


def test_interrupted_with_current_already_moved(ops, root, interrupted):
    b1, b2, journal = interrupted
    os.unlink(str(root / "etc/ops/current/web"))
    os.symlink("../pods/web/2", str(root / "etc/ops/current/web"))
    assert ops("list").code == 0
    assert current_link(root, "web") == "../pods/web/2"     # list recovers nothing
    r = ops("undeploy", "other-pod")
    assert r.code == 0, r
    is_on(root, b1)
    assert not journal.exists()
    assert state(root, "web", 2)["outcome"] == "failed"


def test_interrupted_after_the_switch_completed(ops, root, bundle):
    """Killed between the last switch step and the journal's removal: still rolled back."""
    b1, b2 = web(bundle, 1), web(bundle, 2)
    assert ops("deploy", b1).code == 0
    assert ops("deploy", b2).code == 0
    is_on(root, b2)
    journal = write_journal(root, "web", 1, 2)
    r = ops("cleanup", "nothing")
    assert r.code == 0, r
    is_on(root, b1)
    assert not journal.exists()


def test_an_interrupted_first_deploy_rolls_back_to_nothing(ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    journal = write_journal(root, "web", None, 1)
    r = ops("undeploy", "other-pod")
    assert r.code == 0, r
    assert not journal.exists()
    assert current_link(root, "web") is None
    assert [n for n in os.listdir(str(unit_dir(root))) if n.startswith("web-")] == []
    assert wants(root) == []
    assert state(root, "web", 1)["outcome"] == "failed"
    assert stored_versions(root, "web") == [1]


def test_an_interrupted_undeploy_is_rolled_back_to_from(ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    ud = unit_dir(root)
    # undeploy killed after removing one unit
    os.unlink(str(ud / "web-v1.service"))
    shutil.rmtree(str(ud / "web-v1.service.d"))
    os.unlink(str(ud / "multi-user.target.wants/web-v1.service"))
    journal = write_journal(root, "web", 1, None, command="undeploy")
    r = ops("list")
    assert [p["interrupted"] for p in ops("--json", "list").json()["pods"]] == [True]
    r = ops("cleanup")
    assert r.code == 0, r
    assert not journal.exists()
    is_on(root, b1)
    assert state(root, "web", 1)["outcome"] == "ok"


def test_recovery_happens_whatever_pod_the_command_names(ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    db = bundle(name="db", version=1, units=[{"file": "db.service", "start": True}])
    assert ops("deploy", db).code == 0
    journal = write_journal(root, "db", None, 1)
    r = ops("deploy", web(bundle, 2))
    assert r.code == 0, r
    assert not journal.exists()
    assert current_link(root, "db") is None
    assert not os.path.lexists(str(unit_dir(root) / "db.service"))
    assert current_link(root, "web") == "../pods/web/2"


# -- leftovers of a killed run ------------------------------------------------------

def make_leftovers(root):
    ud = unit_dir(root)
    made = {
        "unit tmp": ud / ".ops-tmp-4242-web-api.service",
        "half stored version": root / "etc/ops/pods/web/.ops-tmp-4242-3",
        "current tmp": root / "etc/ops/current/.ops-tmp-4242-web",
        "journal tmp": root / "var/lib/ops/journal/.ops-tmp-4242-web.json",
        "half-unpacked volume of a stored version": root / "var/lib/ops/volumes/web/1/.ops-tmp-4242-data",
        "volumes of a version not stored": root / "var/lib/ops/volumes/web/3",
        "volumes of a pod not stored": root / "var/lib/ops/volumes/ghost/7",
        "download": root / "var/lib/ops/tmp/download-1",
        "download tmp": root / "var/lib/ops/tmp/.ops-tmp-4242-image.aci",
        "download dir": root / "var/lib/ops/tmp/partial",
        "history trimmed, not renamed": root / "etc/ops/history/.ops-tmp-4242-web.jsonl",
    }
    made["history trimmed, not renamed"].parent.mkdir(parents=True, exist_ok=True)
    made["history trimmed, not renamed"].write_text('{"command": "deploy"}\n')
    made["unit tmp"].write_text("[Service]\n")
    (made["half stored version"] / "units").mkdir(parents=True)
    (made["half stored version"] / "pod.json").write_text("{}")
    (root / "etc/ops/current").mkdir(parents=True, exist_ok=True)
    os.symlink("../pods/web/3", str(made["current tmp"]))
    made["journal tmp"].parent.mkdir(parents=True, exist_ok=True)
    made["journal tmp"].write_text("{")
    (made["half-unpacked volume of a stored version"] / "sub").mkdir(parents=True)
    (made["half-unpacked volume of a stored version"] / "sub/f").write_text("x")
    (made["volumes of a version not stored"] / ".ops-tmp-4242-data").mkdir(parents=True)
    (made["volumes of a version not stored"] / ".ops-tmp-4242-data/f").write_text("x")
    (made["volumes of a pod not stored"] / "data").mkdir(parents=True)
    (made["volumes of a pod not stored"] / "data/f").write_text("x")
    made["download"].parent.mkdir(parents=True, exist_ok=True)
    made["download"].write_bytes(b"half a download")
    made["download tmp"].write_bytes(b"x")
    (made["download dir"] / "x").parent.mkdir(parents=True, exist_ok=True)
    (made["download dir"] / "x").write_text("x")
    return made


def test_leftovers_are_removed_by_the_next_mutating_command_only(ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    made = make_leftovers(root)
    before = snapshot(root, ignore_lock=False)
    assert ops("list").code == 0
    assert ops("--json", "list").code == 0
    assert ops("--dry-run", "deploy", web(bundle, 2)).code == 0
    assert ops("--dry-run", "cleanup").code == 0
    assert diff(before, snapshot(root, ignore_lock=False)) == []
    r = ops("undeploy", "nothing-here")
    assert r.code == 0, r
    for what, p in made.items():
        assert not os.path.lexists(str(p)), what
    # what belongs to the stored version is kept
    is_on(root, b1)
    assert (root / "var/lib/ops/volumes/web/1/data/v.txt").read_text() == "1\n"
    assert stored_versions(root, "web") == [1]
    assert ops("deploy", b1).last == "deploy web 1: unchanged"


def test_leftovers_do_not_block_a_deploy(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    make_leftovers(root)
    b3 = web(bundle, 3)
    r = ops("deploy", b3)
    assert r.code == 0, r
    assert (root / "var/lib/ops/volumes/web/3/data/v.txt").read_text() == "3\n"
    assert sorted(os.listdir(str(root / "var/lib/ops/volumes/web/3"))) == ["data"]
    is_on(root, b3)


def test_temporary_files_of_a_killed_switch_are_removed(ops, root, bundle):
    """A run killed while writing a drop-in or a version's state.json leaves a
    ``.ops-tmp-*`` file beside it (every file is written to a temporary name
    in the same directory); the next mutating command removes it too."""
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    made = [unit_dir(root) / "web-api.service.d" / ".ops-tmp-4242-50-ops.conf",
            root / "etc/ops/pods/web/1/.ops-tmp-4242-state.json"]
    for p in made:
        p.write_text("[Service]\n")
    write_journal(root, "web", 1, 1)
    r = ops("undeploy", "nothing-here")
    assert r.code == 0, r
    is_on(root, b1)
    left = [str(p.relative_to(root)) for p in made if os.path.lexists(str(p))]
    assert left == []



def test_the_directory_of_a_pod_whose_removal_was_killed_at_its_end_goes(ops, root, bundle):
    """`undeploy web --remove` killed after its last version was renamed
    aside, before the pod's index and directory went: the next mutating
    command removes them, so `status` no longer reports a pod with nothing."""
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("undeploy", "web", "--remove").code == 0
    pod = root / "etc/ops/pods/web"
    (pod / ".ops-tmp-4242-del-1/units").mkdir(parents=True)
    (pod / "index").write_text("# ops\n")
    assert [p["name"] for p in ops("--json", "status").json()["pods"]] == ["web"]
    r = ops("undeploy", "other-pod")
    assert r.code == 0, r
    assert not os.path.lexists(str(pod))
    assert ops("--json", "status").json()["pods"] == []
