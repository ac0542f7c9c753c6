"""A full disk: ROOT is a 4 MiB tmpfs.

A deploy whose volume does not fit fails with exit 1 and one error line that
says the disk is full; the running version stays as it was, and nothing of
the failed version is left (no version directory, no partial volume, no
temporary file).  Then a deploy that fits works.

The second test fills the disk so that only F bytes are left, for F from 0
up to what a whole deploy needs, page by page: the deploy of v2 then runs out
of space at every step in turn (storing, unpacking, the journal, the unit
files, the drop-ins, `current`).  Each time it must either succeed (exit 0,
v2 whole), or fail with v1 running (exit 1), or say that the rollback failed
too and what to run (exit 4) -- and once space is freed, the next command
leaves the tree whole.
"""

import concurrent.futures
import contextlib
import os
import queue
import shutil
import subprocess
import sys

import pytest

from conftest import unit_text
from test_crash_offline import (KILLER, count_events, current_of, env, run_ops, show, stored_of,
                                tmp_leftovers, whole_problems, write_bundle)

NAME = "hello"
SIZE = 4 << 20


def units(v):
    return [("hello-web.service", True, None, unit_text("hello-web.service", body="web v%d" % v)),
            ("hello-worker@.service", True, [1, 2], unit_text("hello-worker@.service",
                                                               body="worker v%d" % v)),
            ("hello-once.service", False, None, unit_text("hello-once.service", body="v%d" % v))]


def free_bytes(path):
    st = os.statvfs(str(path))
    return st.f_bavail * st.f_frsize


@contextlib.contextmanager
def tmpfs(path):
    """A tmpfs of 4 MiB mounted at ``path``, unmounted whatever happens."""
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs for the disk-full tests needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d,mode=0755" % SIZE, "tmpfs",
                        str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True)
    if r.returncode != 0:
        pytest.fail("cannot mount a tmpfs at %s: %s" % (path, r.stderr.strip()))
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(path)])


@pytest.fixture
def small_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    with tmpfs(root):
        yield root


def one_error_line(r):
    errors = [l for l in r.stderr.splitlines() if l.startswith("ops: error:")]
    assert len(errors) == 1, show(r)
    return errors[0]


def says_disk_full(line):
    low = line.lower()
    return "disk full" in low or "no space left" in low


def test_a_volume_larger_than_the_disk_fails_and_leaves_v1_running(small_root, tmp_path):
    root = small_root
    specs = {
        1: write_bundle(tmp_path / "v1", NAME, 1, units(1),
                        {"www": {"index.html": b"<h1>version 1</h1>\n", "a.txt": b"a" * 5000}}),
        # about 6 MiB of data that cannot be compressed away (the archive is plain tar anyway)
        2: write_bundle(tmp_path / "v2", NAME, 2, units(2),
                        {"www": {"index.html": b"<h1>version 2</h1>\n",
                                 "big/one.bin": os.urandom(3 << 20),
                                 "big/two.bin": os.urandom(3 << 20)}}),
        3: write_bundle(tmp_path / "v3", NAME, 3, units(3),
                        {"www": {"index.html": b"<h1>version 3</h1>\n",
                                 "big/one.bin": os.urandom(1 << 20)}}),
    }
    r = run_ops(root, "deploy", specs[1])
    assert r.returncode == 0, show(r)
    assert current_of(root) == 1
    free_before = free_bytes(root)
    assert free_before < 6 << 20

    r = run_ops(root, "deploy", specs[2])
    assert r.returncode == 1, show(r)
    line = one_error_line(r)
    assert says_disk_full(line), line
    assert "unexpected error" not in line, line
    assert current_of(root) == 1
    assert stored_of(root) == ["1"], "the failed version is stored: %s" % stored_of(root)
    assert not os.path.exists(os.path.join(str(root), "var/lib/ops/volumes", NAME, "2")), \
        "a partial volume directory of v2 is left"
    assert tmp_leftovers(root) == []
    assert whole_problems(root, specs) == []
    # what the failed deploy wrote is gone: the free space is back
    assert free_bytes(root) >= free_before - 8192, (free_before, free_bytes(root))
    sys.stderr.write("\ndisk full: `deploy v2` (6 MiB volume, %d KiB free) -> exit %d: %s\n"
                     % (free_before >> 10, r.returncode, line))

    r = run_ops(root, "deploy", specs[3])
    assert r.returncode == 0, show(r)
    assert current_of(root) == 3
    assert stored_of(root) == ["1", "3"]
    assert whole_problems(root, specs) == []


@pytest.fixture(scope="module")
def space_sweep(tmp_path_factory):
    """Deploy v2 over v1 with 0, 4096, 8192... bytes free until it succeeds.

    Returns {"tries": [(bytes free, exit code, error line or None, problems)], "need": N}."""
    base = tmp_path_factory.mktemp("disk-full-sweep")
    root = base / "root"
    root.mkdir()
    specs = {v: write_bundle(base / ("v%d" % v), NAME, v, units(v),
                             {"www": {"index.html": b"<h1>version %d</h1>\n" % v,
                                      "data/notes.txt": b"notes %d\n" % v * 400}})
             for v in (1, 2)}
    start = base / "start"          # v1 deployed: copied onto the tmpfs before each try
    start.mkdir()
    r = run_ops(start, "deploy", specs[1])
    assert r.returncode == 0, show(r)

    def reset():
        for n in os.listdir(str(root)):
            p = os.path.join(str(root), n)
            shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        for n in os.listdir(str(start)):
            src, dst = os.path.join(str(start), n), os.path.join(str(root), n)
            shutil.copytree(src, dst, symlinks=True) if os.path.isdir(src) else shutil.copy2(src, dst)

    def fill(leave):
        """A filler file that leaves exactly ``leave`` bytes free."""
        filler = os.path.join(str(root), "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free_bytes(root) - leave))
        assert free_bytes(root) == leave, (leave, free_bytes(root))
        return filler

    tries = []
    with tmpfs(root):
        reset()
        base_free = free_bytes(root)
        r = run_ops(root, "deploy", specs[2])
        assert r.returncode == 0, show(r)
        need = base_free - free_bytes(root)
        leave = 0
        while leave <= need + (64 << 10):
            reset()
            filler = fill(leave)
            r = run_ops(root, "deploy", specs[2])
            os.unlink(filler)                 # the operator frees space
            code, line, problems = r.returncode, None, []
            if code == 0:
                if current_of(root) != 2:
                    problems.append("exit 0 but current is %r" % current_of(root))
            elif code in (1, 4):
                errors = [l for l in r.stderr.splitlines() if l.startswith("ops: error:")]
                if len(errors) != 1:
                    problems.append("not one error line: %s" % show(r))
                line = errors[-1] if errors else r.stderr.strip()
                if code == 1:
                    # exit 1: the host is as it was, whole on v1, before any other run
                    found = whole_problems(root, specs)
                    if current_of(root) != 1 or found:
                        problems.append("exit 1 (the host as before) but current is %r: %s"
                                        % (current_of(root), found))
            else:
                problems.append("exit %d: %s" % (code, show(r)))
            # the next command (with space again) leaves the tree whole
            nxt = run_ops(root, "undeploy", "other-pod")
            if nxt.returncode != 0:
                problems.append("the next command failed: %s" % show(nxt))
            found = whole_problems(root, specs)
            if found:
                problems.append("after the next command: %s\n%s" % (found, show(r)))
            tries.append((leave, code, line, problems))
            if code == 0:
                break
            leave += 4096
    codes = {}
    for _, code, _, _ in tries:
        codes[code] = codes.get(code, 0) + 1
    sys.stderr.write("\nout of space at every step of `deploy v2`: %d tries (0 to %d bytes free), "
                     "exit codes %s\n" % (len(tries), tries[-1][0], codes))
    return {"tries": tries, "need": need}


def test_out_of_space_at_every_step_leaves_the_host_whole(space_sweep):
    """Exit 0 (v2 whole), 1 (v1 whole, at once) or 4 (whole once the next
    command ran with space again); in the end, with enough space, it works."""
    tries = space_sweep["tries"]
    bad = ["with %d bytes free, exit %d: %s" % (leave, code, "; ".join(p))
           for leave, code, _, p in tries if p]
    assert not bad, "\n".join(bad)
    assert tries[-1][1] == 0, "the deploy never succeeded (up to %d bytes free)" % tries[-1][0]
    assert any(code in (1, 4) for _, code, _, _ in tries)


def test_out_of_space_errors_say_the_disk_is_full_and_where(space_sweep):
    """One error line that says the disk is full, and where (a file, a member),
    not an "unexpected error"."""
    bad = []
    for leave, code, line, _ in space_sweep["tries"]:
        if code in (1, 4) and (not says_disk_full(line) or "unexpected error" in line):
            bad.append("with %d bytes free, exit %d: %s" % (leave, code, line))
    assert not bad, "\n".join(bad)


def test_disk_fills_up_at_every_step_of_a_deploy(tmp_path):
    """killer.py --fill: the disk fills up just before the N-th step of
    `deploy v2`, for every N.  The deploy succeeds (the steps left need no
    space), or fails with v1 whole at once (exit 1), or fails and says its
    rollback failed too (exit 4); once space is freed, the next command
    leaves the tree whole on the version the exit code promised."""
    specs = {v: write_bundle(tmp_path / ("v%d" % v), NAME, v, units(v),
                             {"www": {"index.html": b"<h1>version %d</h1>\n" % v,
                                      "data/notes.txt": b"notes %d\n" % v * 400}})
             for v in (1, 2)}
    start = tmp_path / "start"
    start.mkdir()
    r = run_ops(start, "deploy", specs[1])
    assert r.returncode == 0, show(r)
    counted = tmp_path / "counted"
    shutil.copytree(str(start), str(counted), symlinks=True)
    total = count_events(counted, "deploy", specs[2])

    workers = min(6, max(2, 2 * (os.cpu_count() or 1)))
    mounts = [tmp_path / ("mnt%d" % i) for i in range(workers)]
    free = queue.Queue()

    def one(n):
        mnt = free.get()
        try:
            for e in os.listdir(str(mnt)):
                p = os.path.join(str(mnt), e)
                shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
            for e in os.listdir(str(start)):
                src, dst = os.path.join(str(start), e), os.path.join(str(mnt), e)
                shutil.copytree(src, dst, symlinks=True) if os.path.isdir(src) else shutil.copy2(src, dst)
            filler, trace = os.path.join(str(mnt), "filler"), str(mnt) + ".trace"
            if os.path.exists(trace):
                os.unlink(trace)
            argv = [sys.executable, KILLER, "--fill", filler, "--trace", trace, str(n), "--",
                    "--root", str(mnt), "deploy", str(specs[2])]
            r = subprocess.run(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               universal_newlines=True, timeout=120)
            with open(trace) as f:
                filled = [l.strip() for l in f if l.startswith("FILL")]
            os.unlink(filler)                     # the operator frees space
            label = "disk full before step %d (%s): exit %d" % (n, filled[0] if filled else "never",
                                                                  r.returncode)
            out = []
            if not filled:
                out.append("the disk was never filled")
            if r.returncode in (1, 4):
                errors = [l for l in r.stderr.splitlines() if l.startswith("ops: error:")]
                if len(errors) != 1 or not says_disk_full(errors[0]):
                    out.append("not one error line saying the disk is full: %r" % r.stderr)
            if r.returncode == 1:
                found = whole_problems(mnt, specs)
                if found or current_of(mnt) != 1:
                    out.append("exit 1 (host as before), but current is %r: %s"
                               % (current_of(mnt), found))
            elif r.returncode == 0:
                if current_of(mnt) != 2:
                    out.append("exit 0, but current is %r" % current_of(mnt))
            elif r.returncode != 4:
                out.append(show(r))
            nxt = run_ops(mnt, "undeploy", "other-pod")
            found = whole_problems(mnt, specs)
            if nxt.returncode != 0 or found or current_of(mnt) != (2 if r.returncode == 0 else 1):
                out.append("then `undeploy other-pod`: exit %d, current %r: %s"
                           % (nxt.returncode, current_of(mnt), found))
            return r.returncode, ("%s: %s\n%s" % (label, "; ".join(out), r.stderr) if out else None)
        finally:
            free.put(mnt)

    with contextlib.ExitStack() as stack:
        for m in mounts:
            m.mkdir()
            stack.enter_context(tmpfs(m))
            free.put(m)
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(one, range(1, total + 1)))
    codes = {}
    for code, _ in results:
        codes[code] = codes.get(code, 0) + 1
    failures = [msg for _, msg in results if msg]
    sys.stderr.write("\ndisk filled up before each of the %d steps of `deploy v2`: exit codes %s, "
                     "%d whole afterwards\n" % (total, codes, total - len(failures)))
    assert not failures, "\n".join(failures)
