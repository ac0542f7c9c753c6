"""Several `ops deploy` runs of one pod started at the same moment on one ROOT.

The lock (flock on var/lib/ops/lock) makes them run one after another: with
the default --lock-timeout every run exits 0, and each run's `previous` (the
version that was current when it took the lock) names a different version,
so the runs form one chain: nobody saw what another was half-way through.
With a tiny --lock-timeout the runs that do not get the lock exit 3 naming
the PID that holds it, and change nothing.  Either way the tree ends whole
(see test_crash_offline.whole_problems).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

from conftest import REPO, unit_text
from test_crash_offline import (count_events, current_of, env, run_killer, run_ops,
                                whole_problems, write_bundle)

NAME = "hello"
RUNS = 8


def units(v):
    return [("hello-web.service", True, None, unit_text("hello-web.service", body="web v%d" % v)),
            ("hello-worker@.service", True, [v, v + 1],
             unit_text("hello-worker@.service", body="worker v%d" % v)),
            ("hello-v%d.service" % v, False, None, unit_text("hello-v%d.service" % v))]


def start_all(root, bundles, *options):
    """Start one `ops --json [OPTIONS] deploy B` per bundle, all at once; wait for all."""
    procs = []
    for b in bundles:
        argv = [sys.executable, "-m", "ops", "--root", str(root), "--json"] + list(options) + \
            ["deploy", str(b)]
        procs.append(subprocess.Popen(argv, cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, universal_newlines=True))
    out = []
    for b, p in zip(bundles, procs):
        try:
            stdout, stderr = p.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
                q.communicate()
            raise AssertionError("a concurrent deploy did not finish within 240 s")
        out.append((b.version, p.pid, p.returncode, stdout, stderr))
    return out


def chain(results, first_previous=None):
    """The order the successful runs held the lock in, from their `previous`
    (the first run's is ``first_previous``)."""
    by_previous = {}
    for v, pid, code, stdout, stderr in results:
        if code == 0:
            prev = json.loads(stdout)["previous"]
            assert prev not in by_previous, (
                "two runs saw version %r as current when they took the lock: %s and %s"
                % (prev, by_previous[prev], v))
            by_previous[prev] = v
    order, prev = [], first_previous
    while prev in by_previous:
        prev = by_previous.pop(prev)
        order.append(prev)
    assert not by_previous, "runs outside the chain %s: %s" % (order, by_previous)
    return order


def show(results):
    return "\n".join("v%d pid %d exit %d\n  stdout: %s\n  stderr: %s"
                     % (v, pid, code, stdout.strip(), stderr.strip().replace("\n", "\n          "))
                     for v, pid, code, stdout, stderr in results)


def test_eight_deploys_at_once_run_one_after_another(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    specs = {}
    for v in range(1, RUNS + 1):
        specs[v] = write_bundle(tmp_path / ("v%d" % v), NAME, v, units(v),
                                {"www": {"index.html": b"<h1>version %d</h1>\n" % v,
                                         "data/blob": os.urandom(64 << 10)}})
    results = start_all(root, [specs[v] for v in range(1, RUNS + 1)])
    codes = [r[2] for r in results]
    assert codes == [0] * RUNS, show(results)
    for v, pid, code, stdout, stderr in results:
        obj = json.loads(stdout)
        assert obj["ok"] is True and obj["changed"] is True, stdout
        assert obj["pod"] == {"name": NAME, "version": v}, stdout
    order = chain(results)
    assert sorted(order) == list(range(1, RUNS + 1)), show(results)
    sys.stderr.write("\nconcurrent deploys: %d started, %d exit 0, lock order %s\n"
                     % (RUNS, codes.count(0), order))
    # the last to take the lock is current, and the tree is whole
    assert current_of(root) == order[-1]
    assert whole_problems(root, specs) == []
    for v in range(1, RUNS + 1):
        with open(os.path.join(str(root), "etc/ops/pods", NAME, str(v), "state.json")) as f:
            assert json.load(f)["outcome"] == "ok", v


def test_deploys_that_do_not_get_the_lock_exit_3_and_change_nothing(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    # a volume of many files keeps each deploy well past the 0.05 s lock timeout
    members = {"www/f%03d.bin" % i: os.urandom(96 << 10) for i in range(160)}
    specs = {}
    for v in range(1, RUNS + 1):
        files = dict(members)
        files["www/index.html"] = b"<h1>version %d</h1>\n" % v
        specs[v] = write_bundle(tmp_path / ("v%d" % v), NAME, v, units(v), {"data": files})
    results = start_all(root, [specs[v] for v in range(1, RUNS + 1)], "--lock-timeout", "0.05")
    codes = [r[2] for r in results]
    assert set(codes) <= {0, 3}, show(results)
    assert 3 in codes and 0 in codes, "expected some runs to time out on the lock:\n" + show(results)
    pids = {pid for _, pid, _, _, _ in results}
    for v, pid, code, stdout, stderr in results:
        obj = json.loads(stdout)
        if code == 3:
            errors = [l for l in stderr.splitlines() if l.startswith("ops: error:")]
            assert len(errors) == 1, stderr
            m = re.search(r"held by PID (\d+)", errors[0])
            assert m, errors[0]
            assert int(m.group(1)) in pids - {pid}, (
                "v%d: the PID named is not one of the other runs: %s" % (v, errors[0]))
            assert obj["ok"] is False and obj["changed"] is False and obj["exit_code"] == 3, stdout
            assert "PID" in obj["error"], stdout
        else:
            assert obj["ok"] is True and obj["changed"] is True, stdout
    order = chain(results)
    winners = sorted(v for v, _, code, _, _ in results if code == 0)
    assert sorted(order) == winners
    sys.stderr.write("\nconcurrent deploys with --lock-timeout 0.05: %d started, %d exit 0 "
                     "(lock order %s), %d exit 3\n" % (RUNS, len(winners), order, codes.count(3)))
    # a run that never had the lock stored nothing; the tree is whole on the last winner
    stored = sorted(int(n) for n in os.listdir(os.path.join(str(root), "etc/ops/pods", NAME))
                    if n.isdigit())
    assert stored == winners
    assert current_of(root) == order[-1]
    assert whole_problems(root, specs) == []


def test_a_stampede_after_a_crash_recovers_once(tmp_path):
    """v1 runs; a deploy of v2 is killed half-way through its switch; then six
    deploys and two `undeploy other-pod` start at once.  Exactly one of them
    (the first to take the lock) rolls the pod back to v1; all exit 0; the
    deploys chain from v1 and the tree ends whole."""
    root = tmp_path / "root"
    root.mkdir()
    specs = {v: write_bundle(tmp_path / ("v%d" % v), NAME, v, units(v),
                             {"www": {"index.html": b"<h1>version %d</h1>\n" % v}})
             for v in range(1, RUNS + 1)}
    r = run_ops(root, "deploy", specs[1])
    assert r.returncode == 0, r.stderr
    probe = tmp_path / "probe"
    shutil.copytree(str(root), str(probe), symlinks=True)
    trace = tmp_path / "probe.trace"
    count_events(probe, "deploy", specs[2], trace=trace)
    with open(str(trace)) as f:
        enable = [int(l.split("\t")[0]) for l in f if "\tsubprocess.Popen\t" in l and " enable " in l]
    assert enable
    r = run_killer(root, enable[0], "deploy", specs[2])
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert os.path.exists(os.path.join(str(root), "var/lib/ops/journal", NAME + ".json"))

    deploys = [specs[v] for v in range(3, RUNS + 1)]
    procs = []
    for args in [["deploy", str(b)] for b in deploys] + [["undeploy", "other-pod"]] * 2:
        argv = [sys.executable, "-m", "ops", "--root", str(root), "--json"] + args
        procs.append((args, subprocess.Popen(argv, cwd=str(REPO), env=env(), stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE, universal_newlines=True)))
    results = []
    for args, p in procs:
        stdout, stderr = p.communicate(timeout=240)
        results.append((args, p.returncode, stdout, stderr))
    report = "\n".join("%s: exit %d\n  %s  %s" % (" ".join(a), c, o, e) for a, c, o, e in results)
    assert [c for _, c, _, _ in results] == [0] * len(results), report
    recovered = [a for a, _, _, e in results if "recovering the interrupted deploy of hello" in e]
    assert len(recovered) == 1, report
    order = chain([(b.version, p.pid, c, o, e) for b, (_, p), (_, c, o, e)
                   in zip(deploys, procs, results)], first_previous=1)
    assert sorted(order) == list(range(3, RUNS + 1)), report
    sys.stderr.write("\nstampede after a crash: %d runs, all exit 0, recovered once (by `%s`), "
                     "deploys in lock order %s\n" % (len(results), " ".join(recovered[0]), order))
    assert current_of(root) == order[-1]
    assert whole_problems(root, specs) == []
    with open(os.path.join(str(root), "etc/ops/pods", NAME, "2", "state.json")) as f:
        assert json.load(f)["outcome"] == "failed"
