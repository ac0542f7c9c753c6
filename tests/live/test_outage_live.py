"""How long clients are refused while ops switches a pod, on a real systemd.

A probe client inside the container connects every 10 ms (each attempt in
its own thread, so a client waiting in a backlog does not delay the next)
while ops switches versions, and records each attempt: answered (with the
version that answered and the latency), refused, or another error.

* A pod that ships a ``.socket`` unit, byte-identical in every version, and a
  service taking its socket from systemd (``LISTEN_FDS``): ops keeps the
  socket listening, so over 20 switches and 5 rollbacks of a version that
  fails its health check no connection is refused; after each rollback the
  socket listens and the old version answers.  A version that crashes at
  once, re-triggered by the kept socket until systemd's start limit fails
  the socket itself, is rolled back too: the socket listens again and the
  old version answers.
* A plain service (no socket) binding its port itself: between the stop of
  the old version and the start of the new one there is nothing but the
  restart (``-v`` shows the ``daemon-reload`` before it), and the refused
  window of the switch is measured against ``systemctl restart`` of the
  same unit.

The figures are printed (run with ``-s`` to see them).
"""

import json
import statistics
import threading
import time

import pytest

from .conftest import copy_bundle, describe, is_active, make_bundle, ops, wait_for

B = "/root/bundles/outage"
SERVER = "/root/outage-server.py"
PROBE = "/root/outage-probe.py"
SOCK_PORT, PLAIN_PORT = 8093, 8094
OFF_SOCK_PORT, OFF_PLAIN_PORT = 8096, 8097      # pod "off": its socket started by version 1 only
INTERVAL = 0.01

SERVER_PY = r"""
import os, select, signal, socket, sys
mode, how = sys.argv[1], (sys.argv[2] if len(sys.argv) > 2 else "good")
if how == "crash":
    sys.exit("crashing at once, as asked")
answer = ("broken\n" if how == "broken" else os.environ.get("POD_VERSION", "?") + "\n").encode()
if mode == "socket":
    assert os.environ.get("LISTEN_FDS") == "1", "no socket from systemd"
    s = socket.socket(fileno=3)
else:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(mode)))
    s.listen(256)
# SIGTERM only asks to stop: a connection once accepted is always answered
if how == "die":          # serves, and dies half a second after it starts
    import threading
    threading.Timer(0.5, os._exit, (1,)).start()
state = {"stopping": False}
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
signal.signal(signal.SIGTERM, lambda *_: state.update(stopping=True))
s.setblocking(False)
while not state["stopping"]:
    if s not in select.select([s, r], [], [])[0]:
        continue
    try:
        c, _ = s.accept()
    except BlockingIOError:
        continue
    c.setblocking(True)
    try:
        c.recv(64)
        c.sendall(answer)
    except OSError:
        pass
    c.close()
"""

PROBE_PY = r"""
import json, os, socket, sys, threading, time
port, stop, interval = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
out, lock, threads = [], threading.Lock(), []
t0 = time.monotonic()
def one(t):
    try:
        c = socket.create_connection(("127.0.0.1", port), timeout=20)
    except ConnectionRefusedError:
        rec = [t - t0, "refused", None, None]
    except OSError as e:
        rec = [t - t0, "error", None, str(e)]
    else:
        try:
            c.sendall(b"?\n")
            data = c.recv(64).decode().strip()
            rec = [t - t0, "ok" if data else "error", time.monotonic() - t, data or "empty"]
        except OSError as e:
            rec = [t - t0, "error", None, str(e)]
        c.close()
    with lock:
        out.append(rec)
n = 0
while not os.path.exists(stop):
    t = time.monotonic()
    th = threading.Thread(target=one, args=(t,))
    th.start()
    threads.append(th)
    n += 1
    time.sleep(max(0.0, t0 + n * interval - time.monotonic()))
for th in threads:
    th.join()
print(json.dumps(sorted(out)))
"""


def socket_unit(port=SOCK_PORT):
    return ("[Unit]\nDescription=outage test socket\n\n[Socket]\nListenStream=127.0.0.1:%d\n"
            "Backlog=512\n\n[Install]\nWantedBy=sockets.target\n" % port)


def server_unit(mode, how, extra=""):
    return ("[Unit]\nDescription=outage test server (%s)\n\n[Service]\n"
            "ExecStart=/usr/bin/python3 %s %s %s\n%s\n[Install]\nWantedBy=multi-user.target\n"
            % (how, SERVER, mode, how, extra))


CHECK = ["/usr/bin/python3", "-c", "import os, socket, sys; c = socket.create_connection("
         "('127.0.0.1', int(sys.argv[1])), timeout=3); c.sendall(b'?'); "
         "got = c.recv(64).decode().strip(); "
         "sys.exit(0 if got == os.environ['POD_VERSION'] else 'answered %r' % got)"]


def health(port):
    return {"health": {"exec": CHECK + [str(port)], "timeout": 5, "retries": 3, "interval": 0.3}}


# socket pod: 1, 2 good; 3..7 answer wrongly (health check fails); 8 crashes at once
SOCKET_VERSIONS = dict([(1, "good"), (2, "good")] + [(v, "broken") for v in range(3, 8)]
                       + [(8, "crash")])
PLAIN_VERSIONS = {1: "good", 2: "good", 3: "die"}


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    container.write_file(SERVER, SERVER_PY)
    container.write_file(PROBE, PROBE_PY)
    base = tmp_path_factory.mktemp("outage")
    for v, how in SOCKET_VERSIONS.items():
        units = [("sock-web.socket", socket_unit(), True, None),
                 ("sock-web.service", server_unit("socket", how), True, None)]
        copy_bundle(container, make_bundle(str(base / ("sock%d" % v)), "sock", v, units=units,
                                           extra_ops=health(SOCK_PORT)),
                    "%s/sock/%d" % (B, v))
    # the same socket file in both versions; version 2 does not start it (its service binds a port itself)
    for v, units in ((1, [("off-web.socket", socket_unit(OFF_SOCK_PORT), True, None),
                          ("off-web.service", server_unit("socket", "good"), True, None)]),
                     (2, [("off-web.socket", socket_unit(OFF_SOCK_PORT), False, None),
                          ("off-web.service", server_unit(str(OFF_PLAIN_PORT), "good"), True, None)]),
                     # a changed socket file: switched with its service
                     (3, [("off-web.socket", socket_unit(OFF_SOCK_PORT).replace("=512", "=128"), True,
                           None),
                          ("off-web.service", server_unit("socket", "good"), True, None)])):
        copy_bundle(container, make_bundle(str(base / ("off%d" % v)), "off", v, units=units),
                    "%s/off/%d" % (B, v))
    for v, how in PLAIN_VERSIONS.items():
        units = [("plain-web.service", server_unit(str(PLAIN_PORT), how), True, None)]
        copy_bundle(container, make_bundle(str(base / ("plain%d" % v)), "plain", v,
                                           units=units, extra_ops=health(PLAIN_PORT)),
                    "%s/plain/%d" % (B, v))
    return B


class Probe:
    """``with Probe(container, port) as p:`` probes while the block runs;
    afterwards ``p.records``: [t, outcome, latency, answer], by time."""

    def __init__(self, container, port):
        self.c, self.port = container, port
        self.stop = "/run/outage-probe.stop"

    def __enter__(self):
        if self.c.exists(self.stop):
            self.c.remove(self.stop)
        self.result = {}
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        time.sleep(0.3)
        return self

    def _run(self):
        self.result["r"] = self.c.run(["/usr/bin/python3", PROBE, str(self.port), self.stop,
                                       str(INTERVAL)], timeout=300)

    def __exit__(self, *exc):
        time.sleep(0.3)
        self.c.write_file(self.stop, "")
        self.thread.join()
        r = self.result["r"]
        assert r.returncode == 0, describe(r, "the probe failed")
        self.records = json.loads(r.stdout)
        return False

    def count(self, outcome):
        return sum(1 for rec in self.records if rec[1] == outcome)

    def refused_window(self):
        """ms from the first refused attempt to the first answer after the
        last one (0 when none was refused)."""
        refused = [rec[0] for rec in self.records if rec[1] == "refused"]
        if not refused:
            return 0.0
        after = [rec[0] for rec in self.records if rec[1] == "ok" and rec[0] > refused[-1]]
        end = after[0] if after else refused[-1] + INTERVAL
        return (end - refused[0]) * 1000

    def latencies(self):
        return [rec[2] * 1000 for rec in self.records if rec[1] == "ok"]


def answer(container, port):
    r = container.run(["/usr/bin/python3", "-c", "import socket, sys; c = socket.create_connection("
                       "('127.0.0.1', int(sys.argv[1])), timeout=5); c.sendall(b'?'); "
                       "print(c.recv(64).decode().strip())", str(port)])
    return r.stdout.strip() if r.returncode == 0 else "no answer: " + r.stderr.strip()


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))] if values else 0


def test_sockets_stay_listening_over_20_switches(container, bundles):
    ops(container, "deploy", "%s/sock/1" % B, check=0)
    assert is_active(container, "sock-web.socket") == "active"
    assert answer(container, SOCK_PORT) == "1"
    lat, refused, errors, problems = [], 0, 0, []
    pid = container.run(["systemctl", "show", "-p", "InvocationID", "--value",
                         "sock-web.socket"]).stdout.strip()
    for i in range(20):
        v = 2 if i % 2 == 0 else 1
        with Probe(container, SOCK_PORT) as p:
            if i == 0:
                r = ops(container, "-v", "deploy", "%s/sock/2" % B, check=0)
            else:
                r = ops(container, "-v", "redeploy", "sock:%d" % v, check=0)
        assert not any(l.startswith("+ systemctl") and "sock-web.socket" in l
                       and any(w in l.split() for w in ("stop", "restart", "disable"))
                       for l in r.stderr.splitlines()), describe(r, "the socket was touched")
        refused += p.count("refused")
        errors += p.count("error")
        lat += p.latencies()
        problems += [rec for rec in p.records if rec[1] != "ok"]
        answers = {rec[3] for rec in p.records if rec[1] == "ok"}
        assert answers <= {"1", "2"}, answers
        assert answer(container, SOCK_PORT) == str(v)
    # the same socket unit invocation listened all along
    assert container.run(["systemctl", "show", "-p", "InvocationID", "--value",
                          "sock-web.socket"]).stdout.strip() == pid
    print("\nsocket pod, 20 switches: %d connections, %d refused, %d other errors; latency "
          "p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(lat) + refused + errors, refused, errors, pct(lat, 50), pct(lat, 99),
             max(lat)))
    assert refused == 0 and errors == 0, problems


def test_sockets_stay_listening_over_5_rollbacks(container, bundles):
    ops(container, "redeploy", "sock:1", check=None)
    assert answer(container, SOCK_PORT) == "1"
    lat, refused, errors = [], 0, 0
    for v in range(3, 8):
        with Probe(container, SOCK_PORT) as p:
            r = ops(container, "-v", "deploy", "%s/sock/%d" % (B, v), check=1)
        assert "rolled back to 1" in r.stderr, describe(r)
        # the rollback: files and one reload first, then the restart; the socket untouched
        back = r.stderr[r.stderr.index("rolling back to version 1"):].splitlines()
        calls = [l[2:].split() for l in back if l.startswith("+ systemctl")]
        verbs = [next(w for w in c[1:] if not w.startswith("-")) for c in calls]
        assert "daemon-reload" in verbs and "restart" in verbs, describe(r)
        assert verbs.index("daemon-reload") < verbs.index("restart"), verbs
        assert not any("sock-web.socket" in c and any(w in c for w in ("stop", "restart", "disable"))
                       for c in calls), describe(r, "the rollback touched the socket")
        refused += p.count("refused")
        errors += p.count("error")
        lat += p.latencies()
        assert is_active(container, "sock-web.socket") == "active"
        assert is_active(container, "sock-web.service") == "active"
        assert answer(container, SOCK_PORT) == "1"
    print("\nsocket pod, 5 rollbacks of a version failing its health check: %d connections, "
          "%d refused, %d other errors; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (len(lat) + refused + errors, refused, errors, pct(lat, 50), pct(lat, 99),
             max(lat)))
    assert refused == 0 and errors == 0


def test_a_crashing_version_behind_a_kept_socket_is_rolled_back_and_the_socket_listens(
        container, bundles):
    with Probe(container, SOCK_PORT) as p:
        r = ops(container, "deploy", "%s/sock/8" % B, check=1)
    assert "rolled back to 1" in r.stderr, describe(r)
    assert is_active(container, "sock-web.socket") == "active"
    assert answer(container, SOCK_PORT) == "1"
    print("\nsocket pod, rollback of a version that crashes at once: %d connections, %d refused "
          "(window %.0f ms), %d other errors" % (len(p.records), p.count("refused"),
                                                  p.refused_window(), p.count("error")))
    # and again, now that the service's start limit was hit once
    r = ops(container, "deploy", "%s/sock/8" % B, check=1)
    assert is_active(container, "sock-web.socket") == "active"
    assert answer(container, SOCK_PORT) == "1"


def test_a_plain_switch_has_nothing_but_the_restart_between_stop_and_start(container, bundles):
    ops(container, "deploy", "%s/plain/1" % B, check=0)
    r = ops(container, "-v", "deploy", "%s/plain/2" % B, check=0)
    calls = [l[2:].split() for l in r.stderr.splitlines() if l.startswith("+ systemctl")]
    verbs = [next(w for w in c[1:] if not w.startswith("-")) for c in calls]
    assert "restart" in verbs and "stop" not in verbs, verbs
    at = verbs.index("restart")
    assert "daemon-reload" in verbs[:at] and "daemon-reload" not in verbs[at:], verbs
    assert all(v in ("show", "is-enabled") for v in verbs[at + 1:]), verbs
    assert answer(container, PLAIN_PORT) == "2"


def test_a_plain_switch_refuses_about_as_long_as_systemctl_restart(container, bundles):
    rounds = 9
    switch, restart = [], []

    def by_ops(v):
        with Probe(container, PLAIN_PORT) as p:
            ops(container, "redeploy", "plain:%d" % v, check=0)
        switch.append(p.refused_window())

    def by_systemctl():
        with Probe(container, PLAIN_PORT) as p:
            r = container.run(["systemctl", "restart", "plain-web.service"])
            assert r.returncode == 0, r.stderr
        restart.append(p.refused_window())

    for i in range(rounds):
        v = 1 if i % 2 == 0 else 2
        if i % 2 == 0:          # each goes first in turn: a drift of the load hits both alike
            by_ops(v)
            by_systemctl()
        else:
            by_systemctl()
            by_ops(v)
        assert answer(container, PLAIN_PORT) == str(v)
    ms, mr = statistics.median(switch), statistics.median(restart)
    print("\nplain service, refused window (ms, %d rounds, probe every %d ms): ops switch %s "
          "median %.0f; systemctl restart %s median %.0f; ratio %.2f"
          % (rounds, INTERVAL * 1000, [round(x) for x in switch], ms,
             [round(x) for x in restart], mr, ms / mr if mr else float("nan")))
    assert all(x > 0 for x in restart), "the probe did not see systemctl restart's outage"
    # generous, so as not to be flaky on a loaded machine; the figures are printed
    assert ms <= 2 * mr + 100


def test_the_rollback_of_a_plain_version_that_dies_half_a_second_after_it_starts(
        container, bundles):
    current = answer(container, PLAIN_PORT)
    with Probe(container, PLAIN_PORT) as p:
        r = ops(container, "deploy", "%s/plain/3" % B, check=1, settle=None)
    assert "rolled back to %s" % current in r.stderr, describe(r)
    assert answer(container, PLAIN_PORT) == current
    print("\nplain service, rollback of a version that dies 0.5 s after it starts (settle 2 s): "
          "refused %d of %d attempts (%.0f ms of refusals at one attempt per %d ms), from the "
          "first refusal to the last answer after %.0f ms"
          % (p.count("refused"), len(p.records), p.count("refused") * INTERVAL * 1000,
             INTERVAL * 1000, p.refused_window()))


def test_a_socket_stopped_by_hand_while_its_service_runs_is_repaired_by_a_deploy(container, bundles):
    """systemd refuses to start a socket whose service runs: the repair
    restarts the two together, as a switch does for a socket that is down."""
    ops(container, "deploy", "%s/sock/1" % B, check=0)
    assert answer(container, SOCK_PORT) == "1"
    r = container.run(["systemctl", "stop", "sock-web.socket"])
    assert r.returncode == 0, r.stderr
    assert is_active(container, "sock-web.socket") != "active"
    assert is_active(container, "sock-web.service") == "active"
    ops(container, "status", "sock", check=5)
    r = ops(container, "deploy", "%s/sock/1" % B, check=0)
    assert is_active(container, "sock-web.socket") == "active", describe(r)
    assert is_active(container, "sock-web.service") == "active", describe(r)
    assert answer(container, SOCK_PORT) == "1"
    ops(container, "status", "sock", check=0)


def test_a_socket_the_new_version_does_not_start_stops_listening(container, bundles):
    ops(container, "deploy", "%s/off/1" % B, check=0)
    assert answer(container, OFF_SOCK_PORT) == "1"
    ops(container, "deploy", "%s/off/2" % B, check=0)
    assert is_active(container, "off-web.socket") != "active"
    enabled = container.run(["systemctl", "is-enabled", "off-web.socket"]).stdout.strip()
    assert enabled == "disabled", enabled
    assert answer(container, OFF_SOCK_PORT).startswith("no answer")
    assert wait_for(lambda: answer(container, OFF_PLAIN_PORT) == "2"), answer(container, OFF_PLAIN_PORT)
    ops(container, "status", "off", check=0)
    ops(container, "redeploy", "off:1", check=0)
    assert is_active(container, "off-web.socket") == "active"
    assert answer(container, OFF_SOCK_PORT) == "1"


def test_a_changed_socket_is_switched_with_the_service_behind_it(container, bundles):
    """One `systemctl restart` of a socket and its running service fails
    (systemd starts the socket first and refuses it while the service runs):
    the two are stopped, then started."""
    ops(container, "deploy", "%s/off/1" % B, check=0)
    assert answer(container, OFF_SOCK_PORT) == "1"
    r = ops(container, "-v", "deploy", "%s/off/3" % B, check=0)
    calls = [l[2:].split() for l in r.stderr.splitlines() if l.startswith("+ systemctl")]
    verbs = [next(w for w in c[1:] if not w.startswith("-")) for c in calls]
    assert "stop" in verbs and "start" in verbs[verbs.index("stop"):], verbs
    assert is_active(container, "off-web.socket") == "active", describe(r)
    assert answer(container, OFF_SOCK_PORT) == "3"
    shown = container.run(["systemctl", "show", "-p", "Backlog", "off-web.socket"]).stdout.strip()
    assert shown == "Backlog=128", shown
    # and back, by a rollback's path too: redeploy 1
    ops(container, "redeploy", "off:1", check=0)
    assert answer(container, OFF_SOCK_PORT) == "1"


def test_a_service_running_with_another_versions_drop_in_is_restarted_by_the_repair(container, bundles):
    """Versions 1 and 2 of the plain pod have the same unit file: only the
    drop-in tells them apart.  Version 1's drop-in put back while 2 is
    current, and the service restarted by hand, runs with version 1's
    environment; the repair rewrites the drop-in and restarts the service."""
    ops(container, "deploy", "%s/plain/1" % B, check=None)
    ops(container, "deploy", "%s/plain/2" % B, check=0)
    assert answer(container, PLAIN_PORT) == "2"
    path = "/etc/systemd/system/plain-web.service.d/50-ops.conf"
    text = container.read_file(path)
    old = text.replace("version 2", "version 1").replace("POD_VERSION=2", "POD_VERSION=1") \
        .replace("/plain/2", "/plain/1")
    assert old != text
    container.write_file(path, old)
    for argv in (["systemctl", "daemon-reload"], ["systemctl", "restart", "plain-web.service"]):
        r = container.run(argv)
        assert r.returncode == 0, r.stderr
    # the server binds its port a moment after systemd starts it
    assert wait_for(lambda: answer(container, PLAIN_PORT) == "1"), answer(container, PLAIN_PORT)
    ops(container, "status", "plain", check=5)
    ops(container, "deploy", "%s/plain/2" % B, check=0)
    assert container.read_file(path) == text
    assert answer(container, PLAIN_PORT) == "2"
    ops(container, "status", "plain", check=0)
