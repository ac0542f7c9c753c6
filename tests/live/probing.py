"""bench/probe.py run inside a live container, beside the commands of a test (or of the bench).

:func:`start` runs the probe as a transient unit (``systemd-run``), so that it probes from the container's own
network namespace while ops switches a pod; :func:`stop` asks it to end and returns its summary (see
bench/probe.py: counts of ok/refused/timeout/error attempts, the refused window, p50/p99 latency).
"""

import json
import time

PROBE = "/src/bench/probe.py"


def start(container, name, address, interval=0.01, timeout=30.0, raw=False, probe=PROBE):
    """Start probing ``address`` (HOST:PORT) every ``interval`` seconds; ``name`` names the unit and its files."""
    for path in ("/run/%s.stop" % name, "/run/%s.json" % name):
        if container.exists(path):
            container.remove(path)
    argv = ["systemd-run", "--quiet", "--collect", "--unit=%s" % name, "--property=KillMode=process",
            "/usr/bin/python3", probe, address, "--interval", repr(interval), "--timeout", repr(timeout),
            "--until", "/run/%s.stop" % name, "--out", "/run/%s.json" % name]
    if raw:
        argv.append("--raw")
    container.run(argv, check=True)
    # give the probe a moment to start and make its first attempts before the caller acts
    time.sleep(0.2)


def stop(container, name, wait=60.0):
    """End the probe ``name`` and return its summary (a dict)."""
    container.write_file("/run/%s.stop" % name, "")
    out = "/run/%s.json" % name
    deadline = time.monotonic() + wait
    while not container.exists(out):
        if time.monotonic() >= deadline:
            log = container.run(["journalctl", "--no-pager", "-n", "20", "-u", name]).stdout
            raise AssertionError("the probe %s wrote no summary in %g s:\n%s" % (name, wait, log))
        time.sleep(0.1)
    return json.loads(container.read_file(out))


WAIT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from probe import attempt_once
host, _, port = sys.argv[2].rpartition(":")
want, deadline = sys.argv[3], time.monotonic() + float(sys.argv[4])
while True:
    outcome, latency, answer = attempt_once(host, int(port), 5.0)
    if outcome == "ok" and (not want or answer == want):
        sys.exit(0)
    if time.monotonic() >= deadline:
        sys.exit("%s: %s %r after %s s" % (sys.argv[2], outcome, answer, sys.argv[4]))
    time.sleep(0.02)
"""


def wait_answer(container, address, answer="", timeout=60.0, probe=PROBE):
    """Wait until ``address`` answers ``answer`` (its last line; any answer when empty); raise AssertionError when
    it has not within ``timeout`` seconds."""
    r = container.run(["/usr/bin/python3", "-c", WAIT, probe.rsplit("/", 1)[0], address, answer, repr(timeout)],
                      timeout=timeout + 30)
    if r.returncode != 0:
        raise AssertionError("no answer %r from %s: %s" % (answer, address, r.stderr.strip()))


def brief(summary):
    """The summary without its raw attempts, as one line of JSON (for messages); with ``--raw``, the first 20
    attempts that were not ok ([start in s, outcome, latency, answer]) under ``not_ok``."""
    out = {k: v for k, v in summary.items() if k != "raw"}
    if "raw" in summary:
        out["not_ok"] = [a for a in summary["raw"] if a[1] != "ok"][:20]
    return json.dumps(out, sort_keys=True)
