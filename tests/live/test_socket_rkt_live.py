"""examples/socket-hello on the real rkt: a socket-activated pod.  systemd listens on 127.0.0.1:8081
(socket-hello-web.socket, the same unit file in every version); the service runs ``rkt run`` with the fly stage1,
whose app, the host's python3 brought in by a read-only host volume, serves the socket it inherits at descriptor 3.
Without a real rkt ($OPS_TEST_RKT) the module fails, saying why (OPS_TEST_RKT=0 skips it).

The story (one container, in this order): v1 serves through systemd's socket -> v2 serves through it -> v3, whose
app exits at once, is rolled back to v2, and the socket still listens with v2 serving.  Then,
under a probe client connecting every 10 ms (bench/probe.py): 20 switches between 1 and 2 and 5 rollbacks from 3,
with no connection refused, none lost, and the same listening socket from the first switch to the last.
"""

import os

import pytest

from tests.support import realrkt

from . import probing
from .conftest import describe, http_get, is_active, last_line, list_pods, ops, show, wait_for

B = "/root/bundles/socket-hello"
KEY = "/root/socket-hello.pub"
SOCKET, SERVICE = "socket-hello-web.socket", "socket-hello-web.service"
ADDRESS = "127.0.0.1:8081"


@pytest.fixture(scope="module")
def example(real_rkt, container, tmp_path_factory):
    realrkt.install(container, *real_rkt)
    d, image_id = realrkt.prepare_example(container, tmp_path_factory.mktemp("sh"), "socket-hello", B, KEY)
    yield {"dir": d, "id": image_id}
    realrkt.gc(container)


def serves(c, version):
    r = http_get(c, "http://%s/" % ADDRESS)
    assert r.returncode == 0, describe(r)
    assert r.stdout == "socket-hello, version %d\n" % version, describe(r)


def main_pid(c, unit):
    return int(show(c, unit, "MainPID"))


def fd_link(c, pid, fd):
    return os.readlink(c.path("/proc/%d/fd/%d" % (pid, fd)))


def fd_links(c, pid):
    """What each open descriptor of ``pid`` leads to.  A descriptor closed between the listing and its reading is
    left out: PID 1 opens and closes its own all the time (after a rollback, for instance)."""
    d = c.path("/proc/%d/fd" % pid)
    out = set()
    for n in os.listdir(d):
        try:
            out.add(os.readlink(os.path.join(d, n)))
        except FileNotFoundError:
            continue
    return out


def listening_socket(c):
    """The socket systemd (PID 1) listens on for socket-hello-web.socket: ``socket:[INODE]``.  It is the one
    socket among PID 1's descriptors that the app holds at descriptor 3."""
    app = fd_link(c, main_pid(c, SERVICE), 3)
    assert app.startswith("socket:["), app
    assert app in fd_links(c, 1), "descriptor 3 of the app (%s) is not a socket systemd holds" % app
    return app


def up(c, version):
    """The pod of ``version`` serves through systemd's socket; return that socket."""
    assert is_active(c, SOCKET) == "active"
    assert wait_for(lambda: is_active(c, SERVICE) == "active", timeout=10)
    serves(c, version)
    pid = main_pid(c, SERVICE)
    assert c.read_file("/proc/%d/comm" % pid).strip().startswith("python3")
    # the app runs in the image's rootfs, chrooted by stage1-fly, with the host's /usr mounted in it
    assert os.readlink(c.path("/proc/%d/root" % pid)).endswith("/stage1/rootfs/opt/stage2/web/rootfs")
    return listening_socket(c)


def test_v1_serves_the_socket_systemd_listens_on(container, example):
    c = container
    r = ops(c, "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy socket-hello 1: changed", describe(r)
    up(c, 1)
    assert show(c, SOCKET, "Listen") == "127.0.0.1:8081 (Stream)"
    assert realrkt.rkt_mounts(c) == []


def test_v2_serves_the_same_port(container, example):
    c = container
    r = ops(c, "deploy", B + "/v2", check=0)
    assert last_line(r.stdout) == "deploy socket-hello 2: changed", describe(r)
    up(c, 2)


def test_v3_is_rolled_back_and_the_socket_still_listens_with_v2_serving(container, example):
    c = container
    r = ops(c, "deploy", B + "/v3", check=1, settle=None)
    assert "broken on purpose" in r.stderr and "rolled back to 2" in r.stderr, describe(r)
    up(c, 2)
    pods = list_pods(c, "socket-hello")
    assert pods[("socket-hello", 3)]["outcome"] == "failed" and pods[("socket-hello", 2)]["current"] is True
    assert realrkt.rkt_mounts(c) == []


def test_no_connection_refused_over_20_switches_and_5_rollbacks(container, example):
    c = container
    before = up(c, 2)
    probing.start(c, "probe-switches", ADDRESS, interval=0.01, raw=True)
    try:
        for i in range(1, 21):
            version = 1 if i % 2 else 2
            r = ops(c, "deploy", "%s/v%d" % (B, version))
            assert r.returncode == 0 and last_line(r.stdout) == "deploy socket-hello %d: changed" % version, \
                describe(r, "switch %d" % i)
            # the next switch once this version serves (on a loaded machine its pod may take a second to start)
            probing.wait_answer(c, ADDRESS, "socket-hello, version %d" % version)
            if i % 4 == 0:
                r = ops(c, "deploy", B + "/v3", settle=None)
                assert r.returncode == 1 and "rolled back to 2" in r.stderr, describe(r, "rollback %d" % (i // 4))
                probing.wait_answer(c, ADDRESS, "socket-hello, version 2")
    finally:
        summary = probing.stop(c, "probe-switches")
        print("probe over the switches and rollbacks: " + probing.brief(summary))
    assert summary["attempts"] >= 1000, probing.brief(summary)
    assert summary["counts"]["ok"] > 0, probing.brief(summary)
    # the socket kept listening: no attempt refused, none reset or cut short, none left unanswered
    assert summary["refused"] == 0, probing.brief(summary)
    assert summary["counts"]["error"] == 0 and summary["counts"]["timeout"] == 0, probing.brief(summary)
    assert set(summary["answers"]) == {"socket-hello, version 1", "socket-hello, version 2"}, probing.brief(summary)
    # one listening socket, kept from before the first switch to after the last rollback
    assert up(c, 2) == before
