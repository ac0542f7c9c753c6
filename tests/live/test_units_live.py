"""Kinds of units on a real systemd: start: false, sockets, a first deploy that fails, a conflicting unit file,
--dry-run."""

import os

import pytest

from .conftest import (copy_bundle, describe, exists, is_active, is_enabled, last_line, list_pods, make_bundle, ops,
                       readlink, service, show, unit_files, wait_for)

ECHO = b"""\
import os, socket
# systemd passes the listening socket as fd 3 (Accept=no)
assert os.environ.get("LISTEN_FDS") == "1", os.environ.get("LISTEN_FDS")
server = socket.socket(fileno=3)
while True:
    conn, _ = server.accept()
    with conn:
        conn.sendall(("extras echo, version %s\\n" % os.environ["POD_VERSION"]).encode())
"""

ASK = r"""
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5) as s:
    s.settimeout(5)
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(100)
        if not chunk:
            break
        data += chunk
sys.stdout.write(data.decode())
"""


def extras_bundle(directory, version):
    return make_bundle(directory, "extras", version, units=[
        ("extras-idle.service", service("extras: installed, never started", "/bin/sleep infinity"), False, None),
        ("extras-echo.socket", "[Unit]\nDescription=extras echo socket\n\n[Socket]\nListenStream=127.0.0.1:8091\n\n"
                               "[Install]\nWantedBy=sockets.target\n", True, None),
        ("extras-echo.service", "[Unit]\nDescription=extras echo, started by its socket\n\n[Service]\n"
                                "ExecStart=/usr/bin/python3 ${POD_VOLUMES}/bin/echo.py\n", False, None),
        ("extras-pair@.service", service("extras pair %i", "/bin/sleep infinity"), True, ["left", "right"]),
    ], volumes=[("bin", {"echo.py": ECHO})])


# A fatal message of several lines from the main process, then 15 lines from its ExecStopPost (like `rkt gc`).
WORDY_MAIN = ('echo listening on 127.0.0.1:8093; sleep 0.3; echo "Traceback (most recent call last):"; '
              'echo "  File server.py, line 3"; echo "    open(db)"; '
              'echo "PermissionError: cannot open /var/lib/wordy/db"; exit 1')
# $$: systemd's own escape for a $ it must not expand
WORDY_STOP = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo gc: noise $$i; done"


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("units")
    copy_bundle(container, extras_bundle(str(base / "extras1"), 1), "/root/bundles/extras/1")
    copy_bundle(container, extras_bundle(str(base / "extras2"), 2), "/root/bundles/extras/2")
    copy_bundle(container, make_bundle(str(base / "doomed"), "doomed", 1, units=[
        ("doomed-ok.service", service("doomed: would run", "/bin/sleep infinity"), True, None),
        ("doomed-bad.service", service("doomed: exits at once", "/bin/sh -c 'echo doomed-bad gives up; exit 3'"),
         True, None),
        ("doomed-w@.service", service("doomed worker %i", "/bin/sleep infinity"), True, 2),
    ]), "/root/bundles/doomed/1")
    copy_bundle(container, make_bundle(str(base / "grabby"), "grabby", 1, units=[
        ("grabby.service", service("grabby", "/bin/sleep infinity"), True, None),
        ("admin-owned.service", service("grabby wants the administrator's unit", "/bin/sleep infinity"), True, None),
    ]), "/root/bundles/grabby/1")
    copy_bundle(container, make_bundle(str(base / "wordy"), "wordy", 1, units=[
        ("wordy.service", service("wordy: a server that gives up in its own words, then noise from its stop command",
                                  "/bin/sh -c '%s'" % WORDY_MAIN, extra="ExecStopPost=/bin/sh -c '%s'\n" % WORDY_STOP),
         True, None),
    ]), "/root/bundles/wordy/1")
    d = make_bundle(str(base / "torn"), "torn", 1, units=[
        ("torn.service", service("torn", "/bin/sleep infinity"), True, None),
    ], volumes=[("data", {"a.txt": b"a" * 100000})])
    with open(str(base / "torn" / "data.tar"), "r+b") as f:
        f.truncate(20000)                           # cut inside the member's data
    copy_bundle(container, d, "/root/bundles/torn/1")
    return "/root/bundles"


def test_socket_start_false_and_instance_list(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/extras/1", check=0)
    assert last_line(r.stdout) == "deploy extras 1: changed", describe(r)

    # start: false: installed, neither enabled nor started
    assert exists(c, "/etc/systemd/system/extras-idle.service")
    assert is_enabled(c, "extras-idle.service") == "disabled"
    assert is_active(c, "extras-idle.service") == "inactive"

    # a template with a list of instances
    for i in ("left", "right"):
        assert is_active(c, "extras-pair@%s.service" % i) == "active"
        assert is_enabled(c, "extras-pair@%s.service" % i) == "enabled"

    # the socket (start: true) listens; its service (start: false) is not running until someone connects
    assert is_active(c, "extras-echo.socket") == "active"
    assert is_enabled(c, "extras-echo.socket") == "enabled"
    assert show(c, "extras-echo.socket", "SubState") == "listening"
    assert is_active(c, "extras-echo.service") == "inactive"
    r = c.run(["/usr/bin/python3", "-c", ASK, "8091"], timeout=30)
    assert r.returncode == 0 and r.stdout == "extras echo, version 1\n", describe(r)
    assert wait_for(lambda: is_active(c, "extras-echo.service") == "active", timeout=5)


def test_dry_run_changes_nothing(container, bundles):
    c = container
    pid = show(c, "extras-pair@left.service", "MainPID")
    r = ops(c, "--dry-run", "deploy", "/root/bundles/extras/2", check=0)
    assert r.stdout.strip(), describe(r, "the planned actions are printed")
    assert not exists(c, "/etc/ops/pods/extras/2")
    assert not exists(c, "/var/lib/ops/volumes/extras/2")
    assert readlink(c, "/etc/ops/current/extras") == "../pods/extras/1"
    assert show(c, "extras-pair@left.service", "MainPID") == pid


def test_deploy_2_restarts_the_socket_service_with_the_new_version(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/extras/2", check=0)
    assert last_line(r.stdout) == "deploy extras 2: changed", describe(r)
    assert readlink(c, "/etc/ops/current/extras") == "../pods/extras/2"
    assert is_active(c, "extras-echo.socket") == "active"
    r = c.run(["/usr/bin/python3", "-c", ASK, "8091"], timeout=30)
    assert r.returncode == 0 and r.stdout == "extras echo, version 2\n", describe(r)
    assert is_enabled(c, "extras-idle.service") == "disabled"


def test_first_deploy_that_fails_leaves_no_unit_behind(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/doomed/1", check=1)
    assert "doomed-bad.service" in r.stderr, describe(r)
    assert unit_files(c, "doomed") == []
    wants = os.listdir(c.path("/etc/systemd/system/multi-user.target.wants"))
    assert not [w for w in wants if w.startswith("doomed")], wants
    for unit in ("doomed-ok.service", "doomed-bad.service", "doomed-w@0.service", "doomed-w@1.service"):
        assert is_active(c, unit) in ("inactive", "failed"), unit
        assert is_enabled(c, unit) != "enabled", unit
    assert not exists(c, "/etc/ops/current/doomed")
    assert not exists(c, "/var/lib/ops/journal/doomed.json")
    pods = list_pods(c, "doomed")
    assert pods[("doomed", 1)]["outcome"] == "failed" and pods[("doomed", 1)]["current"] is False
    # the other pod is untouched
    assert readlink(c, "/etc/ops/current/extras") == "../pods/extras/2"
    assert is_active(c, "extras-pair@left.service") == "active"


def test_unit_file_of_the_administrator_is_a_conflict(container, bundles):
    c = container
    mine = "[Unit]\nDescription=the administrator's own unit\n\n[Service]\nExecStart=/bin/sleep infinity\n"
    c.write_file("/etc/systemd/system/admin-owned.service", mine)
    r = ops(c, "deploy", "/root/bundles/grabby/1", check=2)
    assert "admin-owned.service" in r.stderr, describe(r)
    assert c.read_file("/etc/systemd/system/admin-owned.service") == mine
    assert not exists(c, "/etc/systemd/system/grabby.service")
    assert not exists(c, "/etc/ops/current/grabby")
    assert not exists(c, "/etc/ops/pods/grabby/1")
    assert is_active(c, "grabby.service") == "inactive"


def test_first_deploy_with_a_truncated_volume_leaves_nothing(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/torn/1", check=1)
    assert "data.tar" in r.stderr, describe(r)
    assert unit_files(c, "torn") == []
    assert not exists(c, "/etc/ops/pods/torn/1")
    assert not exists(c, "/var/lib/ops/volumes/torn/1")
    assert not exists(c, "/etc/ops/current/torn")
    assert not [k for k in list_pods(c) if k[0] == "torn"]
    # nothing of the pod is left for a later command to find
    r = ops(c, "cleanup", check=0)
    assert "torn" not in r.stdout, describe(r, "cleanup reports a pod that was never stored")
    assert not exists(c, "/etc/ops/pods/torn")
    assert not exists(c, "/var/lib/ops/volumes/torn")



def test_the_failure_reason_is_the_servers_own_words_not_its_stop_commands(container, bundles):
    c = container
    r = ops(c, "deploy", "/root/bundles/wordy/1", check=1, settle=None)
    err = r.stderr
    assert "wordy.service" in err and "rolled back to nothing" in err, describe(r)
    # the whole fatal message, first line to last, and nothing of the ExecStopPost
    assert "Traceback (most recent call last):" in err, describe(r)
    assert "PermissionError: cannot open /var/lib/wordy/db" in err, describe(r)
    assert "gc: noise" not in err, describe(r)
