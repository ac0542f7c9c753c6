#!/usr/bin/env python3
"""A probe client: how long a TCP service refuses connections, and how slow it answers, while it is switched.

    python3 bench/probe.py 127.0.0.1:8080 [--interval 0.01] [--timeout 10] (--duration S | --until FILE)
                           [--out FILE] [--raw]

Every INTERVAL seconds (10 ms by default) it starts one attempt, in a thread of its own so that a slow answer
does not delay the next attempt: connect, send ``GET / HTTP/1.0``, read the answer to its end.  Each attempt is
recorded as (start, outcome, latency, answer's last line), ``start`` in seconds from the probe's start and
``outcome`` one of

    ok        a complete answer whose status line is 200
    refused   the connection was refused (ECONNREFUSED: nothing listened)
    timeout   no complete answer within TIMEOUT seconds
    error     anything else (a reset connection, an answer cut short or not 200)

The summary (JSON, on stdout or to FILE) gives the counts, the refused window (start of the first refused
attempt to start of the last, in ms; with one refused attempt, 0), the refused runs (consecutive refused
attempts, no ok between them), p50/p99/max latency of the ok attempts, which answers came how often, and
which errors.
With ``--raw`` it also holds every attempt.  It stops after ``--duration`` seconds, or once FILE exists
(``--until``), waiting for the attempts under way.  Standard library only (Python 3.8 and later); importable
(:func:`probe`, :func:`summarize`) for in-process use.
"""

import argparse
import errno
import json
import os
import socket
import sys
import threading
import time

__all__ = ["Attempt", "probe", "summarize", "percentile", "main"]

REQUEST = b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n"


class Attempt(object):
    __slots__ = ("start", "outcome", "latency", "answer")

    def __init__(self, start, outcome="pending", latency=None, answer=""):
        self.start, self.outcome, self.latency, self.answer = start, outcome, latency, answer

    def as_list(self):
        return [round(self.start, 6), self.outcome,
                None if self.latency is None else round(self.latency, 6), self.answer]


def attempt_once(host, port, timeout, request=REQUEST):
    """One attempt: (outcome, latency in seconds, the answer's last non-empty line)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except socket.timeout:
        return "timeout", None, ""
    except OSError as e:
        if e.errno == errno.ECONNREFUSED:
            return "refused", None, ""
        return "error", None, str(e)[:80]
    try:
        s.sendall(request)
        chunks = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout", None, ""
            s.settimeout(left)
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
    except socket.timeout:
        return "timeout", None, ""
    except OSError as e:
        return "error", None, str(e)[:80]
    finally:
        s.close()
    latency = time.monotonic() - t0
    text = b"".join(chunks).decode("utf-8", "replace")
    lines = [l for l in text.splitlines() if l.strip()]
    answer = lines[-1].strip() if lines else ""
    status = text.split("\r\n", 1)[0].split()
    if len(status) < 2 or status[1] != "200":
        return "error", latency, (text.split("\r\n", 1)[0] or "empty answer")[:80]
    return "ok", latency, answer[:80]


def probe(host, port, interval=0.01, timeout=10.0, stop=None, duration=None, request=REQUEST):
    """Probe ``host``:``port`` every ``interval`` seconds until ``stop()`` is true or ``duration`` has passed;
    return the attempts (in order of start), once every attempt has ended."""
    attempts, threads = [], []
    t0 = time.monotonic()

    def run(a):
        a.outcome, a.latency, a.answer = attempt_once(host, port, timeout, request)

    k = 0
    while True:
        now = time.monotonic()
        if (duration is not None and now - t0 >= duration) or (stop is not None and stop()):
            break
        a = Attempt(now - t0)
        attempts.append(a)
        t = threading.Thread(target=run, args=(a,))
        t.daemon = True
        t.start()
        threads.append(t)
        threads = [x for x in threads if x.is_alive()] if len(threads) > 256 else threads
        k += 1
        pause = t0 + k * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:                        # behind: the next tick from now, do not burst
            k = int((time.monotonic() - t0) / interval) + 1
    for t in threads:
        t.join()
    return attempts


def percentile(values, p):
    """The ``p``-th percentile (0-100) of ``values``, nearest rank; None for none."""
    if not values:
        return None
    v = sorted(values)
    rank = max(1, -(-len(v) * p // 100))
    return v[int(rank) - 1]


def summarize(attempts, interval=None, raw=False):
    """The figures of a list of attempts (see the module's doc)."""
    counts = {"ok": 0, "refused": 0, "timeout": 0, "error": 0}
    answers, errors = {}, {}
    for a in attempts:
        counts[a.outcome] = counts.get(a.outcome, 0) + 1
        if a.outcome == "ok":
            answers[a.answer] = answers.get(a.answer, 0) + 1
        elif a.outcome == "error":
            errors[a.answer] = errors.get(a.answer, 0) + 1
    refused = [a.start for a in attempts if a.outcome == "refused"]
    runs, current = [], None
    for a in attempts:
        if a.outcome == "refused":
            if current is None:
                current = [a.start, a.start, 0]
            current[1] = a.start
            current[2] += 1
        elif a.outcome == "ok" and current is not None:
            runs.append(current)
            current = None
    if current is not None:
        runs.append(current)
    lat = [a.latency for a in attempts if a.outcome == "ok"]
    span = attempts[-1].start - attempts[0].start if attempts else 0.0

    def ms(x):
        return None if x is None else round(x * 1000.0, 3)
    out = {
        "attempts": len(attempts),
        "interval_ms": ms(interval) if interval is not None else None,
        "achieved_interval_ms": ms(span / (len(attempts) - 1)) if len(attempts) > 1 else None,
        "counts": counts,
        "refused": counts["refused"],
        "refused_window_ms": ms(refused[-1] - refused[0]) if refused else 0.0,
        "refused_runs": [{"from_ms": ms(s), "to_ms": ms(e), "count": n} for s, e, n in runs],
        "latency_ms": {"p50": ms(percentile(lat, 50)), "p99": ms(percentile(lat, 99)),
                       "max": ms(max(lat)) if lat else None},
        "answers": answers,
        "errors": errors,
        "duration_ms": ms(span),
    }
    if raw:
        out["raw"] = [a.as_list() for a in attempts]
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("address", metavar="HOST:PORT")
    p.add_argument("--interval", type=float, default=0.01, help="seconds between attempts (default 0.01)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds an attempt may take (default 10)")
    p.add_argument("--duration", type=float, help="probe for this many seconds")
    p.add_argument("--until", metavar="FILE", help="probe until FILE exists")
    p.add_argument("--out", metavar="FILE", help="write the summary here (atomically) instead of stdout")
    p.add_argument("--raw", action="store_true", help="include every attempt: [start s, outcome, latency s, answer]")
    args = p.parse_args(argv)
    host, _, port = args.address.rpartition(":")
    if not host or not port.isdigit():
        p.error("HOST:PORT expected, got %r" % args.address)
    if (args.duration is None) == (args.until is None):
        p.error("give one of --duration and --until")
    if not args.interval > 0:
        p.error("--interval must be positive")
    stop = (lambda: os.path.exists(args.until)) if args.until else None
    attempts = probe(host, int(port), args.interval, args.timeout, stop=stop, duration=args.duration)
    text = json.dumps(summarize(attempts, args.interval, raw=args.raw), sort_keys=True) + "\n"
    if args.out:
        with open(args.out + ".tmp", "w") as f:
            f.write(text)
        os.replace(args.out + ".tmp", args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
