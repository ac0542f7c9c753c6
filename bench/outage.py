"""Figures 7 and 8 of the benchmark: how long a switch leaves a service unreachable, on a real systemd.

Both run in a throwaway container booted with the machine's systemd (tests/live/container.py), with a probe client
(bench/probe.py) connecting every 10 ms from inside it.

  7 refused window of ``ops deploy`` switching a pod between two versions, against ``systemctl restart`` of the
    same unit, alternately, each round with a probe of its own: a plain service (python3's http.server) and a
    real-rkt pod (examples/hello, rkt from $OPS_TEST_RKT)
  8 a socket-activated real-rkt pod (examples/socket-hello): connections refused over 20 switches and 5 rollbacks
    under one probe, and the latency of the answers during them against the latency while nothing changes

    .venv/bin/python bench/run.py --only 7,8           (or OPS_BENCH_ONLY=7,8)
"""

import json
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import fixtures  # noqa: E402
from timing import BenchError, Run, fmt_range, fmt_time  # noqa: E402

SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
INTERVAL = 0.01                     # seconds between the probe's attempts
WINDOW_ROUNDS = 21                  # rounds of each side in figure 7 ($OPS_BENCH_WINDOW_ROUNDS)

PLAIN_UNIT = ("[Unit]\nDescription=ops bench: python3's http.server, version %d\n\n[Service]\n"
              "ExecStart=/usr/bin/python3 -m http.server 8090 --bind 127.0.0.1 --directory /root/www\n"
              "[Install]\nWantedBy=multi-user.target\n")

HOW = [
    "- **Refused window of a switch**: in a container booted with the machine's systemd, a probe client "
    "(`bench/probe.py`, inside the container) connects and sends `GET /` every 10 ms, each attempt in a thread "
    "of its own; the refused window of a round is the time from the first refused attempt to the last. Each "
    "round has its own probe, started 0.3 s before the action and stopped 0.3 s after the service answers "
    "again. ops switches the pod to the other version (`ops --settle 0.5 deploy`, 1 → 2, 2 → 1, …); the baseline is `systemctl "
    "restart` of the same unit. Rounds alternate (ops, restart, ops, …), 21 of each after one warm-up round of "
    "each (a round's window varies by ±50 ms on the rkt pod: with 7 rounds the median moved by about 10 % from run "
    "to run); ratio = median window of ops ÷ median window of the restarts. Plain service: one unit running `python3 -m http.server` (the two versions differ in "
    "their Description). rkt pod: examples/hello, whose web unit runs `rkt run` with the fly stage1 "
    "($OPS_TEST_RKT); `systemctl reset-failed` after each round clears systemd's start rate limit.",
    "- **Socket pod**: examples/socket-hello on the real rkt (systemd listens, the pod's app serves the socket it "
    "inherits at descriptor 3); one probe over 20 switches between versions 1 and 2 (`--settle 0.5`) and 5 "
    "deploys of the broken version 3 (default settle), each rolled back to 2; each next step once the version "
    "switched to answers. Refused counts attempts refused "
    "(target 0); latency is that of the answered attempts during the switches, against 5 s of the same probe "
    "while nothing changes.",
]


def _modules():
    from tests.live import container, probing
    from tests.support import realrkt
    return container, probing, realrkt


class Outage(object):
    """Figures 7 and 8 for a :class:`run.Bench` (its rows, sections, package copy and round counts)."""

    def __init__(self, bench, Row, Skip):
        self.b, self.Row, self.Skip = bench, Row, Skip
        self.raw = {}              # figure -> probe summaries, for the section of raw figures

    # -- the container ------------------------------------------------------------------------------

    def _boot(self):
        if os.geteuid() != 0:
            raise self.Skip("needs root (it boots a systemd container)")
        container, probing, realrkt = _modules()
        c = container.Container(src=REPO)
        c.boot()
        try:
            c.copytree(self.b.pkg, "/root/ops-pkg")
            c.run(["/usr/bin/python3", "-m", "compileall", "-q", "/root/ops-pkg/ops"], check=True)
        except BaseException:
            c.poweroff()
            raise
        return c

    def _env(self, rkt):
        return {"PATH": SYS_PATH, "LANG": "C.UTF-8", "PYTHONPATH": "/root/ops-pkg", "PYTHONDONTWRITEBYTECODE": "1",
                "OPS_RKT": rkt or "/src/tests/rkt/rkt"}

    def _ops(self, c, rkt, *args, expect=0):
        t0 = time.monotonic()
        r = c.run(["/usr/bin/python3", "-m", "ops"] + [str(a) for a in args], env=self._env(rkt), timeout=300)
        took = time.monotonic() - t0
        if expect is not None and r.returncode != expect:
            raise BenchError("ops %s exited %d (expected %d): %s" % (" ".join(map(str, args)), r.returncode,
                                                                     expect, r.stderr.strip()[-400:]))
        return r, took

    def _real_rkt(self, c):
        _, _, realrkt = _modules()
        try:
            rkt, stage1 = realrkt.find()
        except realrkt.Missing as e:
            return None, str(e)
        return realrkt.install(c, rkt, stage1), None

    # -- 7. refused window: ops switch against systemctl restart ------------------------------------

    def fig_window(self):
        c = self._boot()
        try:
            rkt, why = self._real_rkt(c)
            self._plain(c, rkt)
            if rkt is None:
                self.b.rows.append(self.Row("switch on a real-rkt pod (examples/hello)", "skip", note=why))
            else:
                self._hello(c, rkt)
        finally:
            c.poweroff()

    def _plain(self, c, rkt):
        work = tempfile.mkdtemp(prefix="bench-plain-", dir=self.b.work)
        for v in (1, 2):
            fixtures.write_bundle(os.path.join(work, "v%d" % v), "bench-plain", v,
                                  [("bench-plain.service", PLAIN_UNIT % v, True, None)])
        c.copytree(work, "/root/bench-plain")
        c.write_file("/root/www/index.html", "plain\n")
        self._ops(c, rkt, "--settle", "0.5", "deploy", "/root/bench-plain/v1")
        self._window_rounds(c, rkt, "plain service (`python3 -m http.server`)", "/root/bench-plain/v%d",
                            "bench-plain.service", "127.0.0.1:8090")

    def _hello(self, c, rkt):
        _, _, realrkt = _modules()
        realrkt.prepare_hello(c, tempfile.mkdtemp(prefix="bench-hello-", dir=self.b.work), "/root/hello")
        self._ops(c, rkt, "--settle", "0.5", "deploy", "/root/hello/v1")
        self._window_rounds(c, rkt, "real-rkt pod (examples/hello, fly)", "/root/hello/v%d",
                            "hello-web.service", "127.0.0.1:8080")
        self._ops(c, rkt, "undeploy", "hello", "--remove")
        realrkt.gc(c)

    def _window_rounds(self, c, rkt, what, bundle, unit, address):
        _, probing, _ = _modules()
        text = os.environ.get("OPS_BENCH_WINDOW_ROUNDS", "")
        if text and not (text.isdigit() and text.isascii() and 0 < int(text) <= 1000):
            raise BenchError("OPS_BENCH_WINDOW_ROUNDS=%r: give a number of rounds from 1 to 1000" % text)
        n = int(text) if text else self.b.reps(WINDOW_ROUNDS, 3)
        current = [1]
        took = {"ops": [], "restart": []}

        def one(kind, k):
            name = "bench-probe-%s-%d" % (kind, k)
            probing.start(c, name, address, interval=INTERVAL, timeout=10.0)
            time.sleep(0.3)
            if kind == "ops":
                target = 3 - current[0]
                r, t = self._ops(c, rkt, "--settle", "0.5", "deploy", bundle % target)
                current[0] = target
            else:
                t0 = time.monotonic()
                c.run(["systemctl", "restart", unit], check=True)
                t = time.monotonic() - t0
            took[kind].append(t)
            probing.wait_answer(c, address, timeout=60.0)
            time.sleep(0.3)
            s = probing.stop(c, name)
            c.run(["systemctl", "reset-failed", unit])
            if not s["counts"]["ok"] or s["counts"]["timeout"]:
                raise BenchError("%s, %s round %d: %s" % (what, kind, k, probing.brief(s)))
            return s

        one("ops", 0)                  # warm-up rounds, not counted
        one("restart", 0)
        for v in took.values():
            del v[:]
        runs = {"ops": [], "restart": []}
        for k in range(1, n + 1):
            for kind in ("ops", "restart"):
                runs[kind].append(one(kind, k))
        windows = {k: [s["refused_window_ms"] / 1000.0 for s in v] for k, v in runs.items()}
        label = "switch on a %s: refused window, probe every %d ms" % (what, INTERVAL * 1000)
        base = [Run(x) for x in windows["restart"]]
        if statistics.median(windows["restart"]) <= 0:
            self.b.rows.append(self.Row(label, "info", [Run(x) for x in windows["ops"]], base,
                                        target="≤ 1.10× `systemctl restart` (the restarts refused nothing)"))
        else:
            self.b.rows.append(self.Row(label, "time", [Run(x) for x in windows["ops"]], base, 1.10,
                                        "≤ 1.10× `systemctl restart`"))
        counts = {k: [s["refused"] for s in v] for k, v in runs.items()}
        errors = {k: [s["counts"]["error"] for s in v] for k, v in runs.items()}
        self.raw.setdefault("7", []).append((what, windows, counts, errors, took))

    # -- 8. socket pod: nothing refused over switches and rollbacks ---------------------------------

    def fig_socket(self):
        c = self._boot()
        try:
            rkt, why = self._real_rkt(c)
            if rkt is None:
                raise self.Skip(why)
            self._socket(c, rkt)
        finally:
            c.poweroff()

    def _socket(self, c, rkt):
        _, probing, realrkt = _modules()
        b = "/root/socket-hello"
        realrkt.prepare_example(c, tempfile.mkdtemp(prefix="bench-sh-", dir=self.b.work), "socket-hello", b,
                                "/root/socket-hello.pub")
        self._ops(c, rkt, "--settle", "0.5", "deploy", b + "/v1")
        self._ops(c, rkt, "--settle", "0.5", "deploy", b + "/v2")
        address = "127.0.0.1:8081"
        probing.start(c, "bench-probe-steady", address, interval=INTERVAL)
        time.sleep(5)
        steady = probing.stop(c, "bench-probe-steady")
        switches, rollbacks = 20, 5
        probing.start(c, "bench-probe-switches", address, interval=INTERVAL, timeout=30.0)
        t0 = time.monotonic()
        missed = 0              # deploys of the broken version 3 that ops did not roll back
        try:
            for i in range(1, switches + 1):
                version = 1 if i % 2 else 2
                self._ops(c, rkt, "--settle", "0.5", "deploy", "%s/v%d" % (b, version))
                probing.wait_answer(c, address, "socket-hello, version %d" % version)
                if i % (switches // rollbacks) == 0:
                    r, _ = self._ops(c, rkt, "deploy", b + "/v3", expect=None)
                    if r.returncode == 0:
                        # a connection waiting on the socket starts the failed service again at once, so that
                        # the settle polls may only ever see it active: counted, and 2 deployed again
                        missed += 1
                        self._ops(c, rkt, "--settle", "0.5", "deploy", b + "/v2")
                    elif "rolled back to 2" not in r.stderr:
                        raise BenchError("deploy of socket-hello 3: %s" % r.stderr[-400:])
                    probing.wait_answer(c, address, "socket-hello, version 2")
        finally:
            s = probing.stop(c, "bench-probe-switches")
        took = time.monotonic() - t0
        label = "socket pod (examples/socket-hello, real rkt): refused over %d switches + %d rollbacks" % (
            switches, rollbacks)
        self.b.rows.append(self.Row(label, "info", ops_text="%d refused of %d" % (s["refused"], s["attempts"]),
                                    base_text="—", target="0 refused", met=s["refused"] == 0,
                                    spread="reset or cut short %d, timed out %d; refused window %s; "
                                    "rolled back %d of %d deploys of the broken version"
                                    % (s["counts"]["error"], s["counts"]["timeout"], ms(s["refused_window_ms"]),
                                       rollbacks - missed, rollbacks)))
        lat, st = s["latency_ms"], steady["latency_ms"]
        self.b.rows.append(self.Row("socket pod: latency of the answers during the switches (p50 / p99)", "info",
                                    ops_text="%s / %s" % (ms(lat["p50"]), ms(lat["p99"])),
                                    base_text="%s / %s (no switch)" % (ms(st["p50"]), ms(st["p99"])),
                                    target="— (reported)", met=None,
                                    spread="max %s; %d answered" % (ms(lat["max"]), s["counts"]["ok"])))
        self.raw["8"] = (s, steady, took)

    # -- the raw figures ----------------------------------------------------------------------------

    def sections(self):
        out = []
        if self.raw.get("7"):
            rows = []
            for what, windows, counts, errors, took in self.raw["7"]:
                for kind in ("ops", "restart"):
                    w = windows[kind]
                    rows.append((what, "ops switch" if kind == "ops" else "`systemctl restart`",
                                 " ".join("%.0f" % (x * 1000) for x in w),
                                 "%.0f ms" % (statistics.median(w) * 1000),
                                 "%.0f ms" % (statistics.mean(w) * 1000),
                                 " ".join(map(str, counts[kind])), " ".join(map(str, errors[kind])),
                                 fmt_range(min(took[kind]), max(took[kind])) if took[kind] else "—"))
            out.append(("Refused window of a switch: raw figures",
                        "Per round (in order): the refused window in ms, the refused attempts, the attempts reset or "
                        "cut short, and how long the command took.\n\n" + _md(
                            ["service", "action", "refused window per round (ms)", "median", "mean", "refused per round",
                             "reset per round", "command took"], rows)))
        if self.raw.get("8"):
            s, steady, took = self.raw["8"]
            brief = {k: v for k, v in s.items() if k != "raw"}
            out.append(("Socket pod: raw figures",
                        "Probe summary over the 20 switches and 5 rollbacks (%.0f s):\n\n    %s\n\n"
                        "The same probe for 5 s while nothing changed:\n\n    %s\n"
                        % (took, json.dumps(brief, sort_keys=True), json.dumps(steady, sort_keys=True))))
        return out


def ms(x):
    """A figure of the probe's summary (milliseconds, or None) as the bench writes times."""
    return "—" if x is None else fmt_time(x / 1000.0)


def _md(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |")
    return "\n".join(lines)
