#!/usr/bin/env python3
"""Benchmark ops: each figure as a ratio against a baseline doing the same work.

    .venv/bin/python bench/run.py [--quick] [--only 1,3] [--no-write]   (make bench)

ops and its baseline run alternately (A B A B ...) in this one process, so
that both see the same load; the table goes to stdout and to
bench/results.md, with the machine facts at the top.  Standard library only.

Figures (SPEC §8 and the targets in the table):
  1 start-up of ``python3 -m ops`` (and ``python3 ops.pyz``) against ``python3 -c pass``
  2 offline deploy (``--root``) of 10 units and a 50 MiB volume against a shell script
  3 deploy of 50 template instances on a real systemd (throwaway container) against
    ``systemctl enable --now``, and the number of systemctl calls for 5, 50, 200 instances
  4 ``list`` over 500, 1,000 and 2,000 stored versions against ``python3 -c pass``
  5 volume unpack of a 1 GiB tar.gz through ops.volumes.unpack against ``tar -xzf``
  6 deploy of an unchanged, already deployed bundle (``unchanged``) against ``python3 -c pass``
  7 refused window of a switch against ``systemctl restart`` of the same unit, under a 10 ms probe
    (a plain service, and a real-rkt pod with $OPS_TEST_RKT): bench/outage.py
  8 a socket-activated real-rkt pod: connections refused over 20 switches and 5 rollbacks, and latency

Only some figures: ``--only 7,8`` or ``OPS_BENCH_ONLY=7,8 make bench``.

ops runs from a copy of the package with its bytecode compiled (as an
installed package), with the host's ``/usr/bin/python3`` (``--python``).
"""

import argparse
import datetime
import importlib.util
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import fixtures  # noqa: E402
import outage  # noqa: E402
from timing import BenchError, Run, Summary, fmt_range, fmt_time, interleave, spawn  # noqa: E402

RESULTS = os.path.join(HERE, "results.md")
SYS_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
MiB = 1 << 20

# Runs inside the container: times one command and reports its rusage as JSON.
TIMER = r'''
import json, os, subprocess, sys, tempfile, time
argv, env = json.loads(sys.argv[1]), json.loads(sys.argv[2])
with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter()
    p.returncode = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255
    out.seek(0)
    err.seek(0)
    print(json.dumps({"seconds": t1 - t0, "cpu": ru.ru_utime + ru.ru_stime, "maxrss": ru.ru_maxrss,
                      "rc": p.returncode, "stdout": out.read().decode("utf-8", "replace"),
                      "stderr": err.read().decode("utf-8", "replace")}))
'''


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


class Row(object):
    """One line of the table.  ``kind`` is "time" (ratio = ops / baseline, at
    most ``limit``), "throughput" (ratio = baseline time / ops time, at least
    ``limit``), "info" (no target) or "skip"/"error" (``text`` says why)."""

    def __init__(self, figure, kind, ops=None, base=None, limit=None, target="", note="",
                 ops_text=None, base_text=None, ratio=None, met=None, spread=None):
        self.figure, self.kind, self.limit, self.target, self.note = figure, kind, limit, target, note
        self.ops, self.base = ops, base
        self.ops_text, self.base_text = ops_text, base_text
        self.ratio, self.met, self.spread = ratio, met, spread
        if ops is not None and base is not None and ratio is None:
            so, sb = Summary([r.seconds for r in ops]), Summary([r.seconds for r in base])
            self.ops_text = self.ops_text or fmt_time(so.median)
            self.base_text = self.base_text or fmt_time(sb.median)
            self.ratio = (sb.median / so.median) if kind == "throughput" else (so.median / sb.median)
            if kind == "time":
                self.met = self.ratio <= limit
            elif kind == "throughput":
                self.met = self.ratio >= limit
            self.spread = "ops %s · base %s" % (fmt_range(so.min, so.max), fmt_range(sb.min, sb.max))

    def cells(self):
        if self.kind in ("skip", "error"):
            return [self.figure, "—", "—", "—", self.target or "—", self.kind, self.note]
        met = {True: "yes", False: "**no**", None: "—"}[self.met]
        ratio = "—" if self.ratio is None else "%.2f×" % self.ratio
        return [self.figure, self.ops_text or "—", self.base_text or "—", ratio,
                self.target or "—", met, self.spread or "—"]


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return "\n".join(out)


class Bench(object):
    def __init__(self, args):
        self.args = args
        self.py = args.python
        self.quick = args.quick
        self.rows = []
        self.sections = []       # (title, markdown) after the table
        self.cpu_rows = []       # (figure, ops runs, base runs) for the CPU-time table
        self.failed = False
        self.notes_startup_pyz = ""
        self.outage = None       # bench/outage.py, figures 7 and 8
        self.work = tempfile.mkdtemp(prefix="ops-bench-")
        self.cwd = os.path.join(self.work, "cwd")      # an empty working directory
        os.mkdir(self.cwd)
        self.pkg = os.path.join(self.work, "pkg")
        self.env = {"PATH": SYS_PATH, "LANG": "C.UTF-8", "HOME": self.work, "PYTHONPATH": self.pkg}

    # -- helpers ----------------------------------------------------------------------------------

    def reps(self, full, quick):
        return quick if self.quick else full

    def ops(self, *args):
        """The `ops` command as `pip install .` installs it: bin/ops with the
        measured Python in its #! line."""
        return [self.script] + list(args)

    def run(self, argv, **kw):
        kw.setdefault("env", self.env)
        kw.setdefault("cwd", self.cwd)
        return spawn(argv, **kw)

    def section(self, title, text):
        self.sections.append((title, text))

    def fresh_dir(self, name):
        d = os.path.join(self.work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    def prepare_package(self):
        """A copy of ops/ with its bytecode compiled by the measured Python,
        as pip would install it."""
        shutil.copytree(os.path.join(REPO, "ops"), os.path.join(self.pkg, "ops"),
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self.run([self.py, "-m", "compileall", "-q", os.path.join(self.pkg, "ops")])
        with open(os.path.join(REPO, "bin", "ops")) as f:
            text = f.read()
        self.script = os.path.join(self.work, "bin", "ops")
        os.makedirs(os.path.dirname(self.script))
        with open(self.script, "w") as f:
            f.write("#!%s\n" % self.py + text.split("\n", 1)[1])
        os.chmod(self.script, 0o755)
        v = self.run(self.ops("--version")).stdout.strip()
        if not v.startswith("ops "):
            raise BenchError("ops --version printed %r" % v)
        self.version = v

    # -- 1. start-up ------------------------------------------------------------------------------

    def fig_startup(self):
        empty = self.fresh_dir("empty-root")
        cases = [("start-up: `python3 -c pass` (baseline)", [self.py, "-c", "pass"], None),
                 ("start-up: `ops --version`", self.ops("--version"), "ops "),
                 ("start-up: `ops --root EMPTY list`", self.ops("--root", empty, "list"), ""),
                 ("reference: `python3 -m ops --version`", [self.py, "-m", "ops", "--version"],
                  "ops "),
                 ("reference: `python3 -m ops --root EMPTY list`",
                  [self.py, "-m", "ops", "--root", empty, "list"], "")]
        pyz_note = None
        builder = os.path.join(REPO, "tools", "build_pyz.py")
        pyz = os.path.join(self.work, "ops.pyz")
        if not os.path.isfile(builder):
            pyz_note = "tools/build_pyz.py does not exist: no ops.pyz rows"
        else:
            try:
                self.run([self.py, builder, pyz], cwd=REPO)
                cases += [("reference: `python3 ops.pyz --version`", [self.py, pyz, "--version"], "ops "),
                          ("reference: `python3 ops.pyz --root EMPTY list`",
                           [self.py, pyz, "--root", empty, "list"], "")]
            except BenchError as e:
                pyz_note = "`python3 tools/build_pyz.py` failed: %s" % e
        # References: what any `python3 -m PACKAGE` or zip archive costs (runpy), and the
        # two modules ops reads a command line without (argparse) and needs for any stored
        # state (json); they show how low the ratios can go.
        floor = os.path.join(self.pkg, "opsbenchfloor")
        os.makedirs(floor, exist_ok=True)
        for name, text in (("__init__.py", ""), ("__main__.py", "import sys\nsys.stdout.write('ops 0\\n')\n")):
            with open(os.path.join(floor, name), "w") as f:
                f.write(text)
        self.run([self.py, "-m", "compileall", "-q", floor])
        refs = [("reference: `python3 -m PKG` of an empty package printing a version",
                 [self.py, "-m", "opsbenchfloor", "--version"], "ops "),
                ("reference: `python3 -c 'import argparse'`", [self.py, "-c", "import argparse"],
                 None),
                ("reference: `python3 -c 'import json'`", [self.py, "-c", "import json"], None)]
        cases += refs
        fns = []
        for label, argv, expect in cases:
            env = self.env
            if argv[1:2] and argv[1].endswith(".pyz"):      # the archive alone: ops from nowhere else
                env = dict(self.env)
                del env["PYTHONPATH"]

            def fn(argv=argv, expect=expect, env=env):
                r = self.run(argv, env=env)
                if expect is not None and not r.stdout.startswith(expect):
                    raise BenchError("%s printed %r" % (" ".join(argv), r.stdout[:200]))
                return r
            fns.append(fn)
        n = self.reps(60, 8)
        log("start-up: %d rounds of %d commands" % (n, len(fns)))
        res = interleave(fns, n, warmup=2)
        base = res[0]
        for (label, _, _), runs in zip(cases[1:], res[1:]):
            if label.startswith("reference"):
                self.rows.append(Row(label, "info", runs, base, target="— (reference)"))
            else:
                self.rows.append(Row(label, "time", runs, base, 1.3, "≤ 1.3× `python3 -c pass`"))
            self.cpu_rows.append((label, runs, base))
        if pyz_note:
            self.rows.append(Row("reference: `python3 ops.pyz …`", "skip", note=pyz_note))
        else:
            self.notes_startup_pyz = ("ops.pyz is built by `tools/build_pyz.py` with the measured "
                                      "Python into the bench's temporary directory (the same "
                                      "archive as `make pyz` writes to dist/ops.pyz).")
        self.importtime(empty)

    def importtime(self, empty):
        """Where start-up goes: ``-X importtime`` of `list`, median of 7 runs per module."""
        runs = 3 if self.quick else 7
        per = {}
        totals = {}
        for argv, key in ((self.ops("--root", empty, "list"), "list"),
                          ([self.py, "-c", "pass"], "pass")):
            tot = []
            for _ in range(runs):
                r = self.run([self.py, "-X", "importtime"] +
                             (argv[1:] if argv[0] == self.py else argv))
                top = 0
                for line in r.stderr.splitlines():
                    m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
                    if not m:
                        continue
                    self_us, cum_us, indent, name = int(m.group(1)), int(m.group(2)), len(m.group(3)), m.group(4)
                    if key == "list":
                        per.setdefault(name, []).append((self_us, cum_us, indent))
                    if indent == 1:
                        top += cum_us
                tot.append(top)
            totals[key] = statistics.median(tot)
        baseline_mods = set()
        r = self.run([self.py, "-X", "importtime", "-c", "pass"])
        for line in r.stderr.splitlines():
            m = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s*(\S+)", line)
            if m:
                baseline_mods.add(m.group(1))
        extra = {n: v for n, v in per.items() if n not in baseline_mods}
        top_level = sorted(((statistics.median(c for _, c, _ in v), n) for n, v in extra.items()
                            if v[0][2] == 1), reverse=True)
        heavy = sorted(((statistics.median(s for s, _, _ in v), n) for n, v in extra.items()),
                       reverse=True)[:14]
        lines = ["`python3 -X importtime bin/ops --root EMPTY list`, median of %d runs (µs; "
                 "noisy when the machine is busy). Imports take %.1f ms in all, against %.1f ms "
                 "for `python3 -c pass`; %d modules are imported that `-c pass` does not import."
                 % (runs, totals["list"] / 1000.0, totals["pass"] / 1000.0, len(extra)), "",
                 "Top-level imports (cumulative, including what they import):", "",
                 md_table(["module", "cumulative µs"], [(n, "%.0f" % c) for c, n in top_level[:10]]),
                 "", "Heaviest single modules (self time):", "",
                 md_table(["module", "self µs"], [(n, "%.0f" % s) for s, n in heavy])]
        self.section("Start-up: where the time goes", "\n".join(lines))

    # -- 2 and 6. offline deploy ------------------------------------------------------------------

    def deploy_bundle(self):
        if getattr(self, "_bundle", None):
            return self._bundle
        archive, info = fixtures.cached_archive(self.args.cache, "volume-50m.tar.gz", 50 * MiB,
                                                50, log)
        d = self.fresh_dir("bundle-deploy")
        units = [("svc%d.service" % i, fixtures.oneshot_unit(i), True, None) for i in range(10)]
        fixtures.write_bundle(d, "bench-deploy", 1, units, [("data", archive, "data.tar.gz")])
        u = self.fresh_dir("bundle-units")
        fixtures.write_bundle(u, "bench-units", 1, units)
        self._bundle = (d, u, info)
        return self._bundle

    BASELINE_DEPLOY = r'''set -e
B="$1"; R="$2"; N=bench-deploy; V=1
S="$R/etc/ops/pods/$N/$V"; D="$R/var/lib/ops/volumes/$N/$V/data"; U="$R/etc/systemd/system"
mkdir -p "$S/units" "$D" "$U"
cp "$B/pod.json" "$S/pod.json"
cp "$B"/units/*.service "$S/units/"
tar -xzf "$B/data.tar.gz" -C "$D"
cd "$B/units"
for u in *.service; do
    cp "$u" "$U/$u"
    mkdir -p "$U/$u.d"
    printf '# Written by ops for pod %s version %s; ops replaces it on every deploy.\n[Service]\nEnvironment="POD_NAME=%s" "POD_VERSION=%s" "POD_MANIFEST=/etc/ops/pods/%s/%s/manifest.json" "POD_VOLUMES=/var/lib/ops/volumes/%s/%s"\n' $N $V $N $V $N $V $N $V > "$U/$u.d/50-ops.conf"
done
systemctl --root="$R" enable *.service
'''

    def _check_deployed(self, root, files_expected):
        wants = os.path.join(root, "etc/systemd/system/multi-user.target.wants")
        for i in range(10):
            if not os.path.islink(os.path.join(wants, "svc%d.service" % i)):
                raise BenchError("svc%d.service is not enabled under %s" % (i, root))
            if not os.path.isfile(os.path.join(root, "etc/systemd/system/svc%d.service.d/50-ops.conf" % i)):
                raise BenchError("no drop-in for svc%d.service under %s" % (i, root))
        data = os.path.join(root, "var/lib/ops/volumes/bench-deploy/1/data")
        n = sum(len(f) + len(d) for _, d, f in os.walk(data))
        if n < files_expected:
            raise BenchError("%s holds %d entries, expected at least %d" % (data, n, files_expected))

    def fig_deploy_offline(self):
        bundle, _, info = self.deploy_bundle()
        script = os.path.join(self.work, "baseline-deploy.sh")
        with open(script, "w") as f:
            f.write(self.BASELINE_DEPLOY)
        roots = os.path.join(self.work, "roots")
        os.makedirs(roots, exist_ok=True)
        count = [0]

        def fresh_root():
            count[0] += 1
            r = os.path.join(roots, "r%d" % count[0])
            os.mkdir(r)
            os.sync()            # what earlier runs left dirty is not written back during this one
            return r

        def ops_fn():
            root = fresh_root()
            r = self.run(self.ops("--root", root, "deploy", bundle))
            if "deploy bench-deploy 1: changed" not in r.stdout:
                raise BenchError("ops deploy printed %r" % r.stdout)
            self._check_deployed(root, info["files"])
            shutil.rmtree(root)
            return r

        def base_fn():
            root = fresh_root()
            r = self.run(["/bin/sh", script, bundle, root])
            self._check_deployed(root, info["files"])
            shutil.rmtree(root)
            return r

        archive = os.path.join(bundle, "data.tar.gz")
        code = "import sys\nfrom ops.volumes import unpack\nunpack(sys.argv[1], sys.argv[2])\n"

        def unpack_fn():
            root = fresh_root()
            r = self.run([self.py, "-c", code, archive, os.path.join(root, "data")])
            shutil.rmtree(root)
            return r

        def tar_fn():
            root = fresh_root()
            r = self.run(["tar", "-xzf", archive, "-C", root])
            shutil.rmtree(root)
            return r
        n = self.reps(9, 3)
        log("offline deploy: %d rounds (10 units, %.0f MiB volume)" % (n, info["data_bytes"] / MiB))
        ops_runs, base_runs, unpack_runs, tar_runs = interleave([ops_fn, base_fn, unpack_fn, tar_fn], n)
        label = "deploy offline: 10 units + 50 MiB volume (`--root`, fresh root each run)"
        self.rows.append(Row(label, "time", ops_runs, base_runs, 1.25, "≤ 1.25× shell script"))
        self.cpu_rows.append((label, ops_runs, base_runs))
        label = "… its volume alone: `ops.volumes.unpack` vs `tar -xzf` (50 MiB)"
        self.rows.append(Row(label, "info", unpack_runs, tar_runs, target="— (part of the above)"))
        self.cpu_rows.append((label, unpack_runs, tar_runs))
        self.deploy_info = info
        self.fsync_diagnosis(bundle, fresh_root)

    FSYNC_PROBE = r'''import os, sys, time
real, calls = os.fsync, [0, 0.0]
def fsync(fd):
    t = time.perf_counter()
    try:
        return real(fd)
    finally:
        calls[0] += 1
        calls[1] += time.perf_counter() - t
os.fsync = fsync
t0 = time.perf_counter()
from ops.cli import main
rc = main(sys.argv[1:])
sys.stderr.write("FSYNC %d %.6f %.6f\n" % (calls[0], calls[1], time.perf_counter() - t0))
sys.exit(rc)
'''

    def fsync_diagnosis(self, bundle, fresh_root):
        """Three more offline deploys with os.fsync counted and timed (not in the table)."""
        got = []
        for _ in range(self.reps(3, 1)):
            root = fresh_root()
            r = self.run([self.py, "-c", self.FSYNC_PROBE, "--root", root, "deploy", bundle])
            m = re.search(r"FSYNC (\d+) ([0-9.]+) ([0-9.]+)", r.stderr)
            shutil.rmtree(root)
            if m:
                got.append((int(m.group(1)), float(m.group(2)), float(m.group(3))))
        if got:
            n = sorted(g[0] for g in got)
            t = sorted(g[1] for g in got)
            w = sorted(g[2] for g in got)
            self.section("Offline deploy: fsync", "ops fsyncs every file it writes, and the "
                         "directory after a rename; the script fsyncs nothing. In %d more runs "
                         "(os.fsync wrapped to count and time it) ops called fsync %s times, "
                         "spending %s of %s in main() in it (medians; min–max %s)."
                         % (len(got), "/".join(map(str, sorted(set(n)))),
                            fmt_time(statistics.median(t)), fmt_time(statistics.median(w)),
                            fmt_range(t[0], t[-1])))

    def fig_unchanged(self):
        bundle, units_bundle, _ = self.deploy_bundle()
        root = self.fresh_dir("unchanged-root")
        root_u = self.fresh_dir("unchanged-root-units")
        # ops records the bundle files' stat beside the content digest only for files
        # last changed over two seconds before it read them (SETTLED in ops/bundle.py):
        # as a bundle copied by an earlier task, not one written this very second
        time.sleep(2.2)
        for r, b, name in ((root, bundle, "bench-deploy"), (root_u, units_bundle, "bench-units")):
            self.run(self.ops("--root", r, "deploy", b))
            with open(os.path.join(r, "etc/ops/pods", name, "1", "state.json")) as f:
                if not json.load(f).get("source"):
                    raise BenchError("the first deploy of %s recorded no source" % name)
        # the least an unchanged check can do: read pod.json and ask systemctl whether
        # the units are enabled
        floor = ("import json, subprocess, sys\njson.load(open(sys.argv[1] + '/pod.json'))\n"
                 "subprocess.run(['systemctl', '--root', sys.argv[2], 'is-enabled'] + "
                 "['svc%d.service' % i for i in range(10)], stdout=subprocess.PIPE, "
                 "stderr=subprocess.PIPE, check=True)\n")

        def pass_fn():
            return self.run([self.py, "-c", "pass"])

        def floor_fn():
            return self.run([self.py, "-c", floor, units_bundle, root_u])

        def make(root, bundle, name):
            def fn():
                r = self.run(self.ops("--root", root, "deploy", bundle))
                if "deploy %s 1: unchanged" % name not in r.stdout:
                    raise BenchError("re-deploy printed %r" % r.stdout)
                return r
            return fn
        n = self.reps(25, 6)
        log("unchanged re-deploy: %d rounds" % n)
        base, vol, units, least = interleave([pass_fn, make(root, bundle, "bench-deploy"),
                                              make(root_u, units_bundle, "bench-units"),
                                              floor_fn], n)
        for label, runs in (("re-deploy unchanged offline: 10 units + 50 MiB volume", vol),
                            ("re-deploy unchanged offline: 10 units, no volume", units)):
            self.rows.append(Row(label, "time", runs, base, 2.0, "≤ 2× `python3 -c pass`"))
            self.cpu_rows.append((label, runs, base))
        label = ("reference: `python3` reading pod.json (json) and running `systemctl --root R "
                 "is-enabled` of the 10 units (subprocess)")
        self.rows.append(Row(label, "info", least, base, target="— (reference)"))
        self.cpu_rows.append((label, least, base))
        self.profile_unchanged(root, bundle)

    def profile_unchanged(self, root, bundle):
        """cProfile of one unchanged re-deploy: the functions that take its time."""
        prof = os.path.join(self.work, "unchanged.prof")
        code = ("import cProfile, sys\nsys.argv = ['ops'] + sys.argv[1:]\n"
                "from ops.cli import main\ncProfile.run('main(sys.argv[1:])', %r)\n" % prof)
        self.run([self.py, "-c", code, "--root", root, "deploy", bundle])
        code = ("import pstats, io, sys\ns = io.StringIO()\n"
                "p = pstats.Stats(%r, stream=s)\np.sort_stats('cumulative').print_stats(60)\n"
                "print(s.getvalue())\n" % prof)
        out = self.run([self.py, "-c", code]).stdout
        keep, started = [], False
        for line in out.splitlines():
            if "ncalls" in line:
                started = True
                keep.append(line.rstrip())
                continue
            if started and line.strip() and not re.search(
                    r"importlib|builtins\.exec|builtins\.__import__|<module>|<string>", line):
                keep.append(line.rstrip().replace(self.pkg + "/", ""))
        imports, base = [], []
        for _ in range(3 if self.quick else 7):
            for argv, acc in (([self.py, "-X", "importtime", self.script, "--root", root,
                                "deploy", bundle], imports),
                              ([self.py, "-X", "importtime", "-c", "pass"], base)):
                r = self.run(argv)
                acc.append(sum(int(m.group(1)) for m in re.finditer(
                    r"import time:\s+\d+ \|\s+(\d+) \| \S", r.stderr)))
        self.section("Re-deploy unchanged: where the time goes (10 units + 50 MiB volume)",
                     "Imports: %.1f ms, against %.1f ms for `python3 -c pass` (medians of %d "
                     "runs of `-X importtime`, top-level modules summed). One run under "
                     "cProfile, sorted by cumulative time, import frames left out (profiling "
                     "slows Python code down; the proportions are what matter):\n\n```\n%s\n```"
                     % (statistics.median(imports) / 1000.0, statistics.median(base) / 1000.0,
                        len(imports), "\n".join(keep[:22])))

    # -- 4. list ----------------------------------------------------------------------------------

    def fig_list(self):
        sample_root = self.fresh_dir("list-sample")
        b = self.fresh_dir("bundle-list")
        unit = fixtures.oneshot_unit(0)
        fixtures.write_bundle(b, "bench-list-sample", 1, [("app.service", unit, True, None)])
        self.run(self.ops("--root", sample_root, "deploy", b))
        with open(os.path.join(sample_root, "etc/ops/pods/bench-list-sample/1/state.json")) as f:
            sample = json.load(f)
        sizes = (500, 1000, 2000)
        roots = {0: self.fresh_dir("list-0")}
        for n in sizes:
            roots[n] = self.fresh_dir("list-%d" % n)
            fixtures.write_store(roots[n], 20, n // 20, sample, unit)
            rows = json.loads(self.run(self.ops("--root", roots[n], "--json", "list")).stdout)["pods"]
            if len(rows) != n or any(r["outcome"] != "ok" for r in rows) or \
                    sum(1 for r in rows if r["current"]) != 20:
                raise BenchError("ops list of %d stored versions returned %d rows" % (n, len(rows)))

        # the same 2,000 versions without the index files: every state.json read
        no_index = os.path.join(self.work, "list-2000-no-index")
        shutil.rmtree(no_index, ignore_errors=True)
        shutil.copytree(roots[2000], no_index, symlinks=True)
        pods_dir = os.path.join(no_index, "etc/ops/pods")
        for pod in os.listdir(pods_dir):
            os.unlink(os.path.join(pods_dir, pod, "index"))

        def pass_fn():
            return self.run([self.py, "-c", "pass"])

        def no_index_fn():
            r = self.run(self.ops("--root", no_index, "list"))
            if r.stdout.count("\n") != 2001:
                raise BenchError("list without the index printed %d lines" % r.stdout.count("\n"))
            return r

        def cleanup_fn():
            r = self.run(self.ops("--root", roots[2000], "cleanup", "--keep", "1000"))
            if r.stdout.count(": unchanged") != 20:
                raise BenchError("cleanup --keep 1000 printed %r" % r.stdout[:200])
            return r

        def make(n):
            def fn():
                r = self.run(self.ops("--root", roots[n], "list"))
                if n and r.stdout.count("\n") != n + 1:
                    raise BenchError("list printed %d lines for %d versions" % (r.stdout.count("\n"), n))
                return r
            return fn
        reps = self.reps(20, 5)
        log("list: %d rounds over 0, 500, 1000, 2000 stored versions" % reps)
        res = interleave([pass_fn] + [make(n) for n in (0,) + sizes] + [no_index_fn, cleanup_fn],
                         reps)
        base, by_n = res[0], dict(zip((0,) + sizes, res[1:-2]))
        label = "list: 2,000 stored versions of 20 pods"
        self.rows.append(Row(label, "time", by_n[2000], base, 3.0, "≤ 3× `python3 -c pass`"))
        self.cpu_rows.append((label, by_n[2000], base))
        label = "reference: list of the same 2,000 versions with the index files deleted"
        self.rows.append(Row(label, "info", res[-2], base, target="— (reference)"))
        self.cpu_rows.append((label, res[-2], base))
        label = ("reference: `cleanup --keep 1000` over the same 2,000 versions (removes nothing; "
                 "takes the lock and looks for what a killed run left)")
        self.rows.append(Row(label, "info", res[-1], base, target="— (reference)"))
        self.cpu_rows.append((label, res[-1], base))
        med = {n: Summary([r.seconds for r in runs]).median for n, runs in by_n.items()}
        per = {n: (med[n] - med[0]) / n for n in sizes}
        # least squares over the four sizes
        xs, ys = list(med), [med[n] for n in med]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
        ratio = per[2000] / per[500]
        self.rows.append(Row("list: time per version at 2,000 ÷ at 500 (linearity)", "time",
                             ops_text="%.1f µs" % (per[2000] * 1e6),
                             base_text="%.1f µs" % (per[500] * 1e6), ratio=ratio,
                             met=ratio <= 1.3, target="≤ 1.3 (linear)", limit=1.3,
                             spread="%.1f µs at 1,000; fit %.1f µs/version"
                             % (per[1000] * 1e6, slope * 1e6)))
        table = [("0 (empty root)", fmt_time(med[0]), "—", "—")]
        for n in sizes:
            table.append(("{:,}".format(n), fmt_time(med[n]), "%.1f µs" % (per[n] * 1e6),
                          "%.2f×" % (med[n] / Summary([r.seconds for r in base]).median)))
        self.section("list: time against the number of stored versions",
                     "Median wall time of `ops --root R list` (20 pods; %d rounds, "
                     "interleaved with `python3 -c pass`). Per version: (time − time on an "
                     "empty root) ÷ versions. A least-squares line through the four points "
                     "has a slope of %.1f µs per version.\n\n%s"
                     % (reps, slope * 1e6, md_table(["stored versions", "median", "per version",
                                                     "× `python3 -c pass`"], table)))

    # -- 5. volume unpack -------------------------------------------------------------------------

    def fig_unpack(self):
        mib = self.args.volume_mib or (64 if self.quick else 1024)
        archive, info = fixtures.cached_archive(self.args.cache, "volume-%dm.tar.gz" % mib,
                                                mib * MiB, mib, log)
        with open(archive, "rb") as f:        # into the page cache before either side reads it
            while f.read(8 * MiB):
                pass
        out = self.fresh_dir("unpack")
        # VmHWM is the peak RSS of this process's own memory since its exec; ru_maxrss is not
        # usable here: Linux counts into it the parent's RSS at the fork (vfork) before the exec.
        code = ("import sys\nfrom ops.volumes import unpack\nunpack(sys.argv[1], sys.argv[2])\n"
                "sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0])\n")
        count = [0]

        def dest(prefix):
            count[0] += 1
            os.sync()
            return os.path.join(out, "%s%d" % (prefix, count[0]))

        def tree(d):
            files, size = 0, 0
            for p, ds, fs in os.walk(d):
                for f in fs:
                    files += 1
                    size += os.lstat(os.path.join(p, f)).st_size
            return files + sum(1 for _ in ds), size

        checked = {}

        def ops_fn():
            d = dest("ops")
            r = self.run([self.py, "-c", code, archive, d], timeout=900)
            checked.setdefault("ops", tree(d))
            shutil.rmtree(d)
            return r

        def base_fn():
            d = dest("tar")
            os.mkdir(d)
            r = self.run(["tar", "-xzf", archive, "-C", d], timeout=900)
            checked.setdefault("tar", tree(d))
            shutil.rmtree(d)
            return r
        n = self.reps(4, 2)
        log("unpack: %d rounds of a %d MiB archive (%d MiB of file data)"
            % (n, info["size"] / MiB, mib))
        ops_runs, base_runs = interleave([ops_fn, base_fn], n, warmup=0)
        if checked["ops"] != checked["tar"]:
            raise BenchError("ops unpacked %r (files, bytes), tar %r" % (checked["ops"], checked["tar"]))
        so = Summary([r.seconds for r in ops_runs])
        sb = Summary([r.seconds for r in base_runs])
        data = float(info["data_bytes"])
        size_note = "" if mib == 1024 else " (%d MiB, not 1 GiB)" % mib
        row = Row("unpack: tar.gz of %d MiB file data%s, %d files (%.0f MiB compressed)"
                  % (mib, size_note, info["files"], info["size"] / MiB),
                  "throughput", ops_runs, base_runs, 0.7, "≥ 0.7× `tar -xzf` throughput",
                  ops_text="%s (%.0f MB/s)" % (fmt_time(so.median), data / so.median / 1e6),
                  base_text="%s (%.0f MB/s)" % (fmt_time(sb.median), data / sb.median / 1e6))
        self.rows.append(row)
        self.cpu_rows.append((row.figure, ops_runs, base_runs))
        hwm = [int(re.search(r"VmHWM:\s+(\d+) kB", r.stderr).group(1)) for r in ops_runs]
        self.rows.append(Row("unpack: peak RSS of the ops process (VmHWM)", "info",
                             ops_text="%.1f MiB" % (max(hwm) / 1024.0), target="< 64 MiB",
                             met=max(hwm) < 64 * 1024,
                             spread="ops %.1f–%.1f MiB" % (min(hwm) / 1024.0, max(hwm) / 1024.0)))
        self.unpack_info = (mib, info, checked["ops"])

    # -- 3. live systemd --------------------------------------------------------------------------

    def fig_live(self):
        if os.geteuid() != 0:
            raise _Skip("needs root (it boots a systemd container)")
        if shutil.which("systemd-nspawn") is None:
            raise _Skip("systemd-nspawn is not installed")
        path = os.path.join(REPO, "tests", "live", "container.py")
        spec = importlib.util.spec_from_file_location("ops_bench_container", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        sizes = (5, 50, 200)
        for n in sizes:
            fixtures.write_bundle(self.fresh_dir("live-b%d" % n), "bench-live", 1,
                                  [("sl@.service", fixtures.sleeper_unit(), True, n)])
        log("live: booting a systemd container")
        with mod.Container(src=REPO) as c:
            self._live(c, sizes)

    def _live(self, c, sizes):
        py = "/usr/bin/python3"
        c.copytree(self.pkg, "/root/ops-pkg")
        c.run([py, "-m", "compileall", "-q", "/root/ops-pkg/ops"], check=True)
        c.write_file("/root/bench-timer.py", TIMER)
        for n in sizes:
            c.copytree(os.path.join(self.work, "live-b%d" % n), "/root/b%d" % n)
        env = {"PATH": SYS_PATH, "LANG": "C.UTF-8", "PYTHONPATH": "/root/ops-pkg",
               "PYTHONDONTWRITEBYTECODE": "1"}

        def timed(argv):
            r = c.run([py, "/root/bench-timer.py", json.dumps(argv), json.dumps(env)],
                      timeout=300, check=True)
            d = json.loads(r.stdout)
            return Run(d["seconds"], d["cpu"], d["maxrss"], d["rc"], d["stdout"], d["stderr"])

        def units(n):
            return ["sl@%d.service" % i for i in range(n)]

        def check_active(n, who):
            r = c.run(["systemctl", "is-active", "--"] + units(n))
            states = r.stdout.split()
            if len(states) != n or any(s != "active" for s in states):
                bad = sorted(set(states) - {"active"})
                raise BenchError("after %s, not all %d instances are active (%s)" % (who, n, bad))

        counts = {}

        def ops_fn(n, settle):
            def fn():
                r = timed([py, "-m", "ops", "-v", "--settle", str(settle), "deploy", "/root/b%d" % n])
                if r.rc != 0 or "deploy bench-live 1: changed" not in r.stdout:
                    raise BenchError("ops deploy exited %d: %s" % (r.rc, r.stderr.strip()[-500:]))
                check_active(n, "ops deploy")
                calls = [l.split()[2:] for l in r.stderr.splitlines() if l.startswith("+ systemctl ")]
                counts.setdefault((n, settle), []).append(calls)
                u = c.run([py, "-m", "ops", "undeploy", "bench-live", "--remove"], env=env)
                if u.returncode != 0:
                    raise BenchError("ops undeploy failed: %s" % u.stderr.strip()[-500:])
                return r
            return fn

        def base_fn(n):
            def fn():
                r = timed(["/bin/sh", "-c", 'cp "$0" /etc/systemd/system/ && '
                           'exec systemctl enable --now -- "$@"', "/root/b%d/units/sl@.service" % n]
                          + units(n))
                if r.rc != 0:
                    raise BenchError("systemctl enable --now exited %d: %s" % (r.rc, r.stderr[-500:]))
                check_active(n, "systemctl enable --now")
                c.run(["systemctl", "disable", "--now", "--"] + units(n), check=True)
                c.run(["rm", "-f", "/etc/systemd/system/sl@.service"], check=True)
                c.run(["systemctl", "daemon-reload"], check=True)
                c.run(["systemctl", "reset-failed"])
                return r
            return fn

        n = self.reps(7, 2)
        log("live: %d rounds of 50 instances, --settle 0" % n)
        ops0, base0 = interleave([ops_fn(50, 0), base_fn(50)], n)
        label = "deploy on systemd: 50 template instances, `--settle 0`"
        self.rows.append(Row(label, "time", ops0, base0, 1.5, "≤ 1.5× `systemctl enable --now`"))
        self.cpu_rows.append((label, ops0, base0))
        m = self.reps(3, 1)
        log("live: %d rounds of 50 instances, default --settle 2" % m)
        ops2, base2 = interleave([ops_fn(50, 2), base_fn(50)], m, warmup=0)
        self.rows.append(Row("deploy on systemd: 50 template instances, default `--settle 2`",
                             "info", ops2, base2, target="— (settle waits 2 s by design)"))
        self._live_calls(timed, units(50))
        for k in (5, 200):
            log("live: counting systemctl calls for %d instances" % k)
            ops_fn(k, 0)()
            ops_fn(k, 2)()
        self._live_counts(counts, sizes)

    def _live_calls(self, timed_any, names):
        """What each systemctl call ops makes costs, 50 instances, against `enable --now`."""
        steps = [("daemon-reload", ["systemctl", "daemon-reload"]),
                 ("enable (50 instances)", ["systemctl", "enable", "--"] + names),
                 ("start (50 instances)", ["systemctl", "start", "--"] + names),
                 ("is-active (50 instances)", ["systemctl", "is-active", "--"] + names)]
        cost = {}
        reps = self.reps(3, 1)

        def timed(argv):
            r = timed_any(argv)
            if r.rc != 0:
                raise BenchError("%s exited %d: %s" % (" ".join(argv[:3]), r.rc, r.stderr[-300:]))
            return r
        log("live: timing each systemctl call, %d rounds" % reps)
        for _ in range(reps):
            timed(["cp", "/root/b50/units/sl@.service", "/etc/systemd/system/"])
            for label, argv in steps:
                cost.setdefault(label, []).append(timed(argv).seconds)
            timed(["systemctl", "disable", "--now", "--"] + names)
            cost.setdefault("enable --no-reload (50 instances)", []).append(
                timed(["systemctl", "enable", "--no-reload", "--"] + names).seconds)
            timed(["systemctl", "disable", "--now", "--"] + names)
            cost.setdefault("enable --now (50 instances): the baseline", []).append(
                timed(["systemctl", "enable", "--now", "--"] + names).seconds)
            timed(["systemctl", "disable", "--now", "--"] + names)
            timed(["rm", "-f", "/etc/systemd/system/sl@.service"])
            timed(["systemctl", "daemon-reload"])
        rows = [(label, fmt_time(statistics.median(v)), fmt_range(min(v), max(v)))
                for label, v in cost.items()]
        self.section("Deploy on systemd: what each systemctl call costs",
                     "Each call timed alone inside the container (%d rounds; median, min–max). "
                     "`systemctl enable` reloads the manager itself unless given `--no-reload`."
                     "\n\n%s" % (reps, md_table(["call", "median", "min–max"], rows)))

    def _live_counts(self, counts, sizes):
        def summary(calls):
            verbs = []
            for argv in calls:
                words = [a for a in argv if not a.startswith("-")]
                verbs.append(words[0] if words else "?")
            per = {}
            for v in verbs:
                per[v] = per.get(v, 0) + 1
            return len(calls), ", ".join("%s %d" % kv for kv in sorted(per.items()))

        table, totals = [], {}
        for settle in (0, 2):
            for n in sizes:
                runs = counts.get((n, settle), [])
                if not runs:
                    continue
                totals_n = sorted({len(c) for c in runs})
                total, detail = summary(runs[0])
                totals.setdefault(settle, {})[n] = totals_n
                table.append(("%d" % n, "%g s" % settle, "%d run%s" % (len(runs), "" if len(runs) == 1 else "s"),
                              "/".join(map(str, totals_n)), detail))
        flat0 = [t for n in sizes for t in totals.get(0, {}).get(n, [])]
        constant = len(set(flat0)) == 1
        self.rows.append(Row("deploy on systemd: `systemctl` calls for 5 / 50 / 200 instances (`--settle 0`)",
                             "info", ops_text=" / ".join("/".join(map(str, totals[0][n])) for n in sizes),
                             base_text="1 (`enable --now`)", target="constant in the number of instances",
                             met=constant, spread="default settle: %s" % " / ".join(
                                 "/".join(map(str, totals.get(2, {}).get(n, ["?"]))) for n in sizes)))
        self.section("Deploy on systemd: systemctl calls",
                     "Counted from the `+ systemctl …` lines of `ops -v deploy` (every instance "
                     "unit is named in the same call). With the default `--settle 2` ops polls "
                     "`systemctl is-active` every 0.25 s until 2 s have passed, so that count "
                     "depends on time, not on the number of instances.\n\n"
                     + md_table(["instances", "settle", "runs", "systemctl calls", "by verb (first run)"],
                                table))


    # -- 7, 8. outage during a switch (bench/outage.py) -------------------------------------------

    def _outage(self):
        if self.outage is None:
            self.outage = outage.Outage(self, Row, _Skip)
        return self.outage

    def fig_window(self):
        self._outage().fig_window()

    def fig_socket(self):
        self._outage().fig_socket()


class _Skip(Exception):
    pass


FIGURES = [
    ("1", "start-up", "fig_startup"),
    ("2", "offline deploy", "fig_deploy_offline"),
    ("3", "deploy with systemd", "fig_live"),
    ("4", "list", "fig_list"),
    ("5", "volume unpack", "fig_unpack"),
    ("6", "unchanged re-deploy", "fig_unchanged"),
    ("7", "refused window of a switch", "fig_window"),
    ("8", "socket pod over switches and rollbacks", "fig_socket"),
]


def machine_facts(py):
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ver = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                         stdout=subprocess.PIPE, universal_newlines=True).stdout.strip()
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            universal_newlines=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "ops"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True).stdout.strip()
    return {"cpus": "%d%s" % (os.cpu_count() or 0, " × %s" % model if model else ""),
            "python": "%s %s" % (py, ver),
            "driver": "%s %s" % (sys.executable, platform.python_version()),
            "kernel": "%s %s" % (platform.system(), platform.release()),
            "commit": commit + (" (with uncommitted changes in ops/)" if dirty else "")}


def main(argv=None):
    p = argparse.ArgumentParser(description="Benchmark ops against baselines doing the same work.")
    p.add_argument("--only", default=os.environ.get("OPS_BENCH_ONLY", ""),
                   help="comma-separated figure numbers (default: $OPS_BENCH_ONLY, else all)")
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds and a 64 MiB unpack archive (does not write results.md)")
    p.add_argument("--python", default="/usr/bin/python3" if os.path.exists("/usr/bin/python3")
                   else sys.executable, help="the interpreter ops and the baselines run with")
    p.add_argument("--volume-mib", type=int, default=0,
                   help="file data in the unpack archive (default 1024)")
    p.add_argument("--cache", default=os.environ.get("OPS_BENCH_CACHE", "/tmp/ops-bench-cache"),
                   help="where generated archives are kept between runs")
    p.add_argument("--no-write", action="store_true", help="do not write bench/results.md")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    only = set(x.strip() for x in args.only.split(",") if x.strip())
    started = time.monotonic()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start = os.getloadavg()
    facts = machine_facts(args.python)
    b = Bench(args)
    elapsed = {}
    try:
        b.prepare_package()
        for num, name, meth in FIGURES:
            if only and num not in only:
                continue
            t0 = time.monotonic()
            log("figure %s: %s" % (num, name))
            try:
                getattr(b, meth)()
            except _Skip as e:
                b.rows.append(Row("%s: %s" % (num, name), "skip", note=str(e)))
            except (BenchError, OSError, subprocess.SubprocessError) as e:
                b.failed = True
                log("figure %s failed: %s" % (num, e))
                b.rows.append(Row("%s: %s" % (num, name), "error", note=str(e)[:300]))
            except Exception as e:       # the container harness's own errors, among others
                b.failed = True
                log("figure %s failed: %s: %s" % (num, type(e).__name__, e))
                b.rows.append(Row("%s: %s" % (num, name), "error",
                                  note=("%s: %s" % (type(e).__name__, e))[:300]))
            elapsed[name] = time.monotonic() - t0
            log("figure %s done in %.0f s" % (num, elapsed[name]))
    finally:
        if args.keep:
            log("kept %s" % b.work)
        else:
            shutil.rmtree(b.work, ignore_errors=True)
    total = time.monotonic() - started
    load_end = os.getloadavg()
    text = report(b, facts, date, load_start, load_end, total, elapsed, args)
    sys.stdout.write(text)
    sys.stdout.flush()
    if not (args.no_write or args.quick or only):
        with open(RESULTS + ".tmp", "w") as f:
            f.write(text)
        os.replace(RESULTS + ".tmp", RESULTS)
        log("wrote %s" % os.path.relpath(RESULTS, os.getcwd()))
    elif not args.no_write:
        log("results.md not written (--quick or --only)")
    return 1 if b.failed else 0


def report(b, facts, date, load_start, load_end, total, elapsed, args):
    out = ["# ops benchmark", "",
           "Written by `make bench` (`bench/run.py`). Every figure is a ratio against a baseline "
           "doing the same work, measured in the same run: ops and the baseline run alternately "
           "(A B A B …) after an untimed warm-up round, each as a child process timed from fork "
           "to exit. Ratio = ops median ÷ baseline median (for throughput: ops ÷ baseline). "
           "Spread = min–max of each series.", "",
           md_table(["machine", ""], [
               ("date", date),
               ("CPUs", facts["cpus"]),
               ("Python measured", facts["python"] + " (ops from a copy of the package, bytecode "
                                                     "compiled)"),
               ("Python driving the bench", facts["driver"]),
               ("kernel", facts["kernel"]),
               ("ops", "%s, commit %s" % (getattr(b, "version", "?"), facts["commit"])),
               ("load average (1 min) at start / end", "%.2f / %.2f" % (load_start[0], load_end[0])),
               ("bench run time", "%d min %02d s%s" % (total // 60, total % 60,
                                                       " (--quick)" if args.quick else "")),
           ]), "",
           md_table(["figure", "ops median", "baseline median", "ratio", "target", "met?", "spread"],
                    [r.cells() for r in b.rows]), ""]
    missed = [r.figure for r in b.rows if r.met is False]
    out.append("Targets missed: %s." % ("; ".join(missed) if missed else "none"))
    out.append("")
    if b.cpu_rows:
        rows = []
        for label, ops_runs, base_runs in b.cpu_rows:
            if any(r.cpu is None for r in ops_runs + base_runs):
                continue
            so, sb = Summary([r.cpu for r in ops_runs]), Summary([r.cpu for r in base_runs])
            rows.append((label, fmt_time(so.median), fmt_time(sb.median), "%.2f×" % (so.median / sb.median)))
        out += ["## CPU time of the same runs", "",
                "User + system CPU time of the child and the children it waited for "
                "(`os.wait4`), from the runs above. Less sensitive than wall time to other load "
                "on the machine; for unpack both sides use two threads or processes, so CPU "
                "time exceeds wall time.", "",
                md_table(["figure", "ops median CPU", "baseline median CPU", "ratio"], rows), ""]
    out += ["## How each figure is measured", ""]
    out += ["- **Start-up**: `ops --version` and `ops --root EMPTY list`, where `ops` is "
            "bin/ops as `pip install .` installs it (its `#!` line naming the measured Python) "
            "and the package is a copy of `ops/` whose bytecode was compiled once, as pip "
            "installs it; against `PY -c pass`; every command in each round. Every figure "
            "below runs this `ops` too. " + b.notes_startup_pyz + " The reference rows show "
            "the floors: `python3 -m ops` and a zip archive make Python import runpy (an empty "
            "package run with `-m` costs the same); argparse and json are what ops reads the "
            "usual command lines and its own files without: each imports `re` (and with it "
            "enum, functools, collections), about half of `python3 -c pass` again. That is "
            "import time, not compilation: the host's standard library is byte-compiled (every "
            "module loads from a matching .pyc, whatever PYTHONDONTWRITEBYTECODE says; the "
            "children get PATH, LANG, HOME and PYTHONPATH only). `python3 -c pass` includes "
            "what the host's site-packages .pth files import at start-up, which a stock "
            "Debian host may not have (a lower baseline there, so higher ratios). It also "
            "includes the interpreter's last garbage collection at exit (about 1 ms here), which "
            "ops skips: it freezes what its run built before it exits (README, "
            "\"The cyclic garbage collector\"), so `ops --version` can come out at 1.0×.",
            "- **Offline deploy**: `ops --root R deploy BUNDLE` into a fresh empty R each run "
            "(made, and `sync`ed, outside the timed region), BUNDLE holding 10 units "
            "(`start: true`) and a 50 MiB volume; the baseline is a `/bin/sh` script that copies "
            "pod.json and the units to the same places, unpacks the volume with `tar -xzf`, "
            "writes the 10 drop-ins and runs `systemctl --root=R enable` of the 10 units. "
            "ops also writes manifest.json, state.json, the journal and the current link, and "
            "fsyncs each file it writes; the script fsyncs nothing.",
            "- **Deploy on systemd**: in a throwaway container booted with the machine's systemd "
            "(tests/live/container.py), timed inside it; ops runs from a compiled copy of the "
            "package with the container's `/usr/bin/python3`. ops deploys a pod with one template "
            "unit (`/bin/sleep infinity`, 50 instances, `start: true`); the baseline copies the "
            "template into /etc/systemd/system and runs `systemctl enable --now` of the 50 "
            "instances. After each run all 50 instances are checked active, then removed "
            "(`ops undeploy --remove`, or disable --now, rm, daemon-reload) outside the timed region. "
            "The ratio is for `--settle 0`: with the default ops watches the units for 2 s.",
            "- **list**: stores of 500, 1,000 and 2,000 versions of 20 pods written as ops "
            "writes them (pod.json, units/, manifest.json, state.json taken from a real offline "
            "deploy, current links, and each pod's index written by ops's own code), checked "
            "with `ops --json list`; against `PY -c pass`. The reference row is the 2,000 "
            "versions with the index files deleted, so that each state.json is read.",
            "- **Unpack**: `PY -c 'from ops.volumes import unpack; unpack(ARCHIVE, DEST)'` against "
            "`tar -xzf ARCHIVE -C DEST` (GNU tar, gzip in a second process), each into a new "
            "directory, `sync` before each run, the archive already in the page cache; both "
            "results are compared (entries and bytes). Peak RSS is the ops process's `VmHWM` "
            "(/proc/self/status) read when unpack returns: `ru_maxrss` from `wait4` would count "
            "the parent's memory at the fork before the exec.",
            "- **Unchanged re-deploy**: `ops --root R deploy BUNDLE` of the bundle already "
            "deployed in R (prints `unchanged`), against `PY -c pass`. The bundle is over two "
            "seconds old when first deployed, so ops records its files' stat and later takes "
            "the stored digest instead of reading them (checked: state.json has `source`). The "
            "reference row is the least such a check can do: parse pod.json and run "
            "`systemctl --root R is-enabled` of the units (it imports json and subprocess; "
            "ops, on this path, imports neither, and reads the enablement links on disk)."] + outage.HOW + [""]
    if getattr(b, "unpack_info", None):
        mib, info, (entries, nbytes) = b.unpack_info
        out += ["Unpack archive: %d files, %d directories, %d symbolic links, %d MiB of file data "
                "(about 10%% random bytes, the rest random words), %.0f MiB gzip -6; "
                "both sides created %d entries, %d bytes." % (
                    info["files"], info["dirs"], info["symlinks"], mib, info["size"] / MiB,
                    entries, nbytes), ""]
    for title, text in b.sections + (b.outage.sections() if b.outage else []):
        out += ["## " + title, "", text, ""]
    out += ["Figure run times: " + ", ".join("%s %.0f s" % kv for kv in elapsed.items()) + ".", ""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
