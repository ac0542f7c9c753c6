#!/usr/bin/env python3
"""Build ``ops.pyz``: ops as one executable file for any host with Python 3.8 to 3.13.

    python3 tools/build_pyz.py [OUTPUT]          (default dist/ops.pyz)
    python3 tools/build_pyz.py --measure 20      also time its start-up against `python3 -c pass`

The archive is made with the standard library's ``zipapp``: the shebang is
``#!/usr/bin/env python3`` and ``__main__`` calls ``ops.cli:console``.

zipimport never writes bytecode, so an archive of sources alone would compile
every module it imports on every run.  Each module is therefore stored twice:
``ops/cli.py`` and, next to it, ``ops/cli.pyc`` compiled by the Python running
this script.  That is the only bytecode layout zipimport reads (it looks for
``NAME.pyc`` beside ``NAME.py``, never in ``__pycache__/``); it tries the
``.pyc`` first and, when the magic number belongs to another Python version,
falls back to compiling the ``.py``.  So the archive runs everywhere and starts
fast on the Python it was built with.

The ``.pyc`` files are unchecked hash-based pycs (PEP 552): a timestamp-based
pyc would be compared with the zip entry's DOS time of its ``.py``, which has a
2-second resolution and is read in the local time zone of the host that runs
the archive, so a host in another time zone would silently recompile.
"""

import argparse
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipapp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "ops"
ENTRY_MODULE, ENTRY_FUNCTION = "ops.cli", "console"
INTERPRETER = "/usr/bin/env python3"
EARLIEST_ZIP_TIME = 315532800 + 86400      # zip dates start in 1980


class BuildError(Exception):
    pass


def _sources(package_dir):
    """Relative paths (``ops/x.py``) of every module of the package, sorted."""
    out = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__" and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                out.append(os.path.relpath(os.path.join(dirpath, name), os.path.dirname(package_dir)))
    return sorted(out)


def _stamp(paths):
    """One modification time for every archive entry: SOURCE_DATE_EPOCH, else the newest source."""
    env = os.environ.get("SOURCE_DATE_EPOCH")
    if env and env.isdigit():
        t = int(env)
    else:
        t = int(max(os.stat(p).st_mtime for p in paths))
    return max(t, EARLIEST_ZIP_TIME)


def _compile(py, rel):
    """Write ``py`` + 'c' next to it; ``rel`` (``ops/cli.py``) is the file name tracebacks show."""
    py_compile.compile(py, cfile=py + "c", dfile=rel, doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)


def build(output, source_root=REPO, compile_bytecode=True):
    """Build the archive at ``output`` (written to a temporary name, then renamed); return ``output``."""
    package_dir = os.path.join(source_root, PACKAGE)
    if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
        raise BuildError("%s: not a Python package (no __init__.py)" % package_dir)
    rels = _sources(package_dir)
    output = os.path.abspath(output)
    out_dir = os.path.dirname(output)
    os.makedirs(out_dir, exist_ok=True)
    stamp = _stamp([os.path.join(source_root, r) for r in rels])
    staging = tempfile.mkdtemp(prefix=".ops-pyz-", dir=out_dir)
    tmp_out = None
    try:
        tree = os.path.join(staging, "tree")
        os.mkdir(tree)
        main_py = os.path.join(tree, "__main__.py")
        with open(main_py, "w", encoding="utf-8") as f:
            f.write(zipapp.MAIN_TEMPLATE.format(module=ENTRY_MODULE, fn=ENTRY_FUNCTION))
        files = [main_py]
        for rel in rels:
            dst = os.path.join(tree, rel)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copyfile(os.path.join(source_root, rel), dst)
            files.append(dst)
        if compile_bytecode:
            for path in list(files):
                try:
                    _compile(path, os.path.relpath(path, tree))
                except py_compile.PyCompileError as e:
                    raise BuildError("cannot compile %s: %s" % (os.path.relpath(path, tree), e.msg))
                files.append(path + "c")
        for dirpath, _, names in os.walk(tree):
            for path in [dirpath] + [os.path.join(dirpath, n) for n in names]:
                os.utime(path, (stamp, stamp))
        fd, tmp_out = tempfile.mkstemp(prefix=".ops-", suffix=".pyz.tmp", dir=out_dir)
        os.close(fd)
        zipapp.create_archive(tree, tmp_out, interpreter=INTERPRETER)
        os.chmod(tmp_out, 0o755)
        os.replace(tmp_out, output)
        tmp_out = None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if tmp_out is not None:
            try:
                os.unlink(tmp_out)
            except OSError:
                pass
    return output


def measure(archive, runs=20, python=sys.executable):
    """Median wall time of ``PY ARCHIVE --version`` and ``PY ARCHIVE --root EMPTY list`` against
    ``PY -c pass`` over ``runs`` interleaved rounds; return [(label, seconds, ratio)]."""
    empty = tempfile.mkdtemp(prefix="ops-pyz-empty-root-")
    cases = [("%s -c pass" % python, [python, "-c", "pass"]),
             ("%s ops.pyz --version" % python, [python, archive, "--version"]),
             ("%s ops.pyz --root EMPTY list" % python, [python, archive, "--root", empty, "list"])]
    times = [[] for _ in cases]
    env = dict(os.environ, LANG="C.UTF-8")
    try:
        for _ in range(runs):
            for i, (label, argv) in enumerate(cases):
                t0 = time.perf_counter()
                r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
                                   timeout=60)
                t1 = time.perf_counter()
                if r.returncode != 0:
                    raise BuildError("%s exited %d: %s" % (label, r.returncode,
                                                           r.stderr.decode(errors="replace").strip()))
                times[i].append(t1 - t0)
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    base = statistics.median(times[0])
    return [(label, statistics.median(t), statistics.median(t) / base)
            for (label, _), t in zip(cases, times)]


def main(argv=None):
    p = argparse.ArgumentParser(description="Build ops.pyz, ops as one executable zip file.")
    p.add_argument("output", nargs="?", default=os.path.join(REPO, "dist", "ops.pyz"),
                   help="the archive to write (default dist/ops.pyz)")
    p.add_argument("--no-bytecode", action="store_true",
                   help="sources only (slower start-up on every Python)")
    p.add_argument("--measure", type=int, metavar="N", default=0,
                   help="after building, time start-up (median of N runs) against `python -c pass`")
    p.add_argument("--python", default=sys.executable, metavar="PY",
                   help="the interpreter --measure runs (default: this one)")
    args = p.parse_args(argv)
    try:
        out = build(args.output, compile_bytecode=not args.no_bytecode)
        print("%s: %d bytes, %s" % (
            out, os.path.getsize(out),
            "sources only" if args.no_bytecode else
            "bytecode for Python %d.%d, sources for other versions" % sys.version_info[:2]))
        if args.measure > 0:
            for label, seconds, ratio in measure(out, args.measure, args.python):
                print("  %-70s %7.1f ms  %5.2fx" % (label, seconds * 1000, ratio))
    except (BuildError, OSError, subprocess.SubprocessError) as e:
        sys.stderr.write("build_pyz: error: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
