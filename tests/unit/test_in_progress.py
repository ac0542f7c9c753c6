"""A run going on (it holds the lock, and its journal exists) is shown as in
progress by `status` and `list`, read without taking or waiting for the lock;
a journal whose writer is dead, or whose PID now names another process, is
an interrupted run."""

import json
import subprocess
import sys
import time

import pytest

from conftest import unit_text

HOLDER = r'''
import fcntl, json, os, sys, time
lock, journal, started_at = sys.argv[1:4]
fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.pwrite(fd, b"%20d\n" % os.getpid(), 0)
os.makedirs(os.path.dirname(journal), exist_ok=True)
with open(journal, "w") as f:
    json.dump({"pod": "web", "from": 1, "to": 2, "command": "deploy", "pid": os.getpid(),
               "started_at": started_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f)
print("ready", flush=True)
sys.stdin.read()
'''


@pytest.fixture
def deployed(ops, bundle):
    for v in (1, 2):
        assert ops("deploy", bundle(name="web", version=v, units=[
            {"file": "web-api.service", "start": True,
             "text": unit_text("web-api.service", body="v%d" % v)}])).code == 0
    assert ops("redeploy", "web:1").code == 0


@pytest.fixture
def holder(root):
    procs = []

    def start(started_at=""):
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(root / "var/lib/ops/lock"),
                              str(root / "var/lib/ops/journal/web.json"), started_at],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             universal_newlines=True)
        procs.append(p)
        assert p.stdout.readline() == "ready\n"
        return p
    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_a_run_holding_the_lock_is_in_progress_not_interrupted(ops, deployed, holder):
    p = holder()
    t = time.monotonic()
    st = ops("--json", "--lock-timeout", "600", "status", "web")
    assert time.monotonic() - t < 60          # did not wait for the lock (held until killed)
    report = st.json()["pods"][0]
    assert report["interrupted"] is False and report["drift"] == []
    assert report["in_progress"]["pid"] == p.pid
    assert (report["in_progress"]["command"], report["in_progress"]["to"]) == ("deploy", 2)
    assert st.code == 0
    text = ops("status", "web")
    assert text.lines[0].startswith("web 1: deploying 2 (pid %d, since " % p.pid), text
    rows = ops("--json", "list", "web").json()["pods"]
    assert all(not r["interrupted"] for r in rows)
    assert [r["in_progress"]["pid"] for r in rows if r["current"]] == [p.pid]
    assert "(deploying 2 (pid %d" % p.pid in ops("list").out
    assert "interrupted" not in ops("list").out
    # once its writer is dead, the same journal is an interrupted run
    p.kill()
    p.wait()
    report = ops("--json", "status", "web").json()["pods"][0]
    assert report["interrupted"] is True and report["in_progress"] is None
    assert ops("status", "web").code == 5
    assert "(interrupted)" in ops("list").out


def test_a_pid_started_after_the_journal_was_written_is_not_its_writer(ops, deployed, holder):
    holder(started_at="2001-01-01T00:00:00Z")
    report = ops("--json", "status", "web").json()["pods"][0]
    assert report["interrupted"] is True and report["in_progress"] is None
