#!/usr/bin/env python3
"""Run ``ops`` and SIGKILL it at its N-th host-mutating step.

    killer.py [--after] [--trace FILE] N -- OPS-ARGS...
    killer.py --fill FILE [--trace FILE] N -- OPS-ARGS...
    killer.py --count [--trace FILE] -- OPS-ARGS...
    killer.py --term [--trace FILE] N -- OPS-ARGS...

An audit hook (``sys.addaudithook``, Python 3.8+) counts the events through
which ops changes the host:

    os.rename (os.rename and os.replace), os.symlink, os.link, os.remove
    (os.remove and os.unlink), os.rmdir, os.mkdir, os.chmod, os.chown,
    os.utime, os.truncate, shutil.rmtree, subprocess.Popen, and open/os.open
    with a flag that writes (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND),
    except of devices (/dev/null, a tty...) and /proc.

At the N-th such event the process sends itself SIGKILL:

* by default *before* the event takes effect (the hook runs before the
  operation), so the host holds exactly what events 1..N-1 did;
* with ``--after``, once it has taken effect: for a system call, at the
  first return that follows it (the file is renamed, created, removed...);
  for ``subprocess.Popen``, once the child has exited and been reaped; when
  the run ends before that point, just before the process would exit.

``--fill FILE`` kills nothing either: just before the N-th event it fills
the file system that holds FILE (writing FILE until the disk is full), and
lets ops go on into a real "No space left on device".

``--term`` sends SIGTERM instead, once, before the N-th event, and lets ops
go on: it must undo its staging or roll its switch back, and exit.

``--count`` kills nothing: the run completes and the last line on stderr is
``killer: events=TOTAL exit=CODE``, the number a sweep over N needs.
``--trace FILE`` writes one line per counted event (``N<TAB>EVENT<TAB>WHAT``)
and, when it kills, ``KILL<TAB>N<TAB>before|after<TAB>EVENT<TAB>WHAT``
(``FILL<TAB>N<TAB>BYTES<TAB>EVENT<TAB>WHAT`` when it fills the disk).

Then ``ops`` runs as ``python3 -m ops OPS-ARGS`` would (``runpy``), in this
process, with writing bytecode switched off so that the only events are the
ones ops causes.  The exit status is ops's own, or -9 (SIGKILL) when killed.
The repository holding this file is put on ``sys.path`` after PYTHONPATH.
"""

import os
import runpy
import signal
import subprocess
import sys

EVENTS = frozenset([
    "os.rename", "os.symlink", "os.link", "os.remove", "os.rmdir", "os.mkdir", "os.chmod",
    "os.chown", "os.utime", "os.truncate", "shutil.rmtree", "subprocess.Popen", "open",
])
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# devices and process files are not the host's state (but /dev/shm is a file system)
IGNORED = ("/dev/null", "/dev/zero", "/dev/full", "/dev/tty", "/dev/urandom", "/dev/random")
IGNORED_PREFIXES = ("/proc/", "/dev/fd/", "/dev/pts/", "/dev/std")

USAGE = ("usage: killer.py [--after | --term] [--trace FILE] N -- OPS-ARGS...\n"
         "       killer.py --fill FILE [--trace FILE] N -- OPS-ARGS...\n"
         "       killer.py --count [--trace FILE] -- OPS-ARGS...\n")


def _text(value):
    if isinstance(value, bytes):
        return os.fsdecode(value)
    return str(value)


def _counts(event, args):
    """Is this audit event one through which ops changes the host?"""
    if event not in EVENTS:
        return False
    if event == "open":
        path, flags = args[0], args[2] if len(args) > 2 else 0
        if isinstance(path, int) or not isinstance(flags, int) or not flags & WRITE_FLAGS:
            return False
        path = _text(path)
        if path in IGNORED or path.startswith(IGNORED_PREFIXES):
            return False
    return True


# (path, dir_fd) argument positions of the events that take a directory
# descriptor: a path relative to one is shown resolved, as the host sees it
DIR_FD_ARGS = {
    "os.rename": ((0, 2), (1, 3)), "os.link": ((0, 2), (1, 3)), "os.symlink": ((1, 2),),
    "os.remove": ((0, 1),), "os.rmdir": ((0, 1),), "os.mkdir": ((0, 2),), "os.chmod": ((0, 2),),
    "os.chown": ((0, 3),), "os.utime": ((0, 3),),
}


def _resolved(event, args):
    args = list(args)
    for p, d in DIR_FD_ARGS.get(event, ()):
        if len(args) <= d or not isinstance(args[d], int) or args[d] < 0:
            continue
        if not isinstance(args[p], (str, bytes)) or os.path.isabs(_text(args[p])):
            continue
        try:
            base = os.readlink("/proc/self/fd/%d" % args[d])
        except OSError:
            continue
        args[p], args[d] = os.path.join(base, _text(args[p])), None
    return args


def _describe(event, args):
    args = _resolved(event, args)
    if event == "subprocess.Popen":
        argv = args[1] if len(args) > 1 else args
        if isinstance(argv, (list, tuple)):
            return " ".join(_text(a) for a in argv)
        return _text(argv)
    parts = []
    for a in args:
        if a is None or isinstance(a, int) and a == -1:
            continue
        parts.append(_text(a) if isinstance(a, (str, bytes)) else repr(a))
    return " ".join(parts).replace("\n", " ").replace("\t", " ")


def fill_disk(path):
    """Write ``path`` until its file system is full; return the bytes written."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    written = 0
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            block = b"\0" * size
            while True:
                try:
                    n = os.write(fd, block)
                except OSError:
                    break
                if n <= 0:
                    break
                written += n
    finally:
        os.close(fd)
    return written


class Killer:
    def __init__(self, target, after, trace_fd, fill=None, term=False):
        self.target = target        # 0: count only
        self.term = term            # --term: SIGTERM once, then carry on
        self.after = after
        self.fill = fill            # --fill FILE
        self.trace_fd = trace_fd
        self.count = 0
        self.busy = False
        self.armed = None           # (event, what) once --after waits for the effect
        self.hook_code = None

    # -- reporting, without causing audit events of our own --------------------

    def _trace(self, line):
        if self.trace_fd is not None:
            data = (line + "\n").encode("utf-8", "backslashreplace")
            while data:
                data = data[os.write(self.trace_fd, data):]

    def die(self, how, event, what):
        self._trace("KILL\t%d\t%s\t%s\t%s" % (self.target, how, event, what))
        os.kill(os.getpid(), signal.SIGKILL)
        while True:                 # SIGKILL cannot be caught; never reached
            signal.pause()

    # -- the hook ----------------------------------------------------------------

    def hook(self, event, args):
        if self.busy or not _counts(event, args):
            return
        self.busy = True
        try:
            self.count += 1
            what = _describe(event, args)
            self._trace("%d\t%s\t%s" % (self.count, event, what))
            if self.count != self.target:
                return
            if self.term:
                self._trace("TERM\t%d\t%s\t%s" % (self.target, event, what))
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if self.fill:
                self._trace("FILL\t%d\t%d\t%s\t%s" % (self.target, fill_disk(self.fill), event, what))
                return
            if not self.after:
                self.die("before", event, what)
            self.armed = (event, what)
            if event != "subprocess.Popen":
                sys.setprofile(self.profile)
        finally:
            self.busy = False

    def profile(self, frame, kind, arg):
        """--after: the first return once the audited call has done its work."""
        if kind in ("return", "c_return") and frame.f_code is not self.hook_code \
                and self.armed is not None:
            sys.setprofile(None)
            self.die("after", *self.armed)

    def popen_waited(self):
        """--after of a subprocess.Popen event: its child has been reaped."""
        if self.armed is not None and self.armed[0] == "subprocess.Popen":
            self.die("after", *self.armed)

    def at_exit(self):
        if self.armed is not None:
            sys.setprofile(None)
            self.die("after", *self.armed)


def _patch_popen_wait(killer):
    original = subprocess.Popen.wait

    def wait(self, *args, **kwargs):
        code = original(self, *args, **kwargs)
        killer.popen_waited()
        return code
    subprocess.Popen.wait = wait


def parse(argv):
    after = count = term = False
    trace = fill = None
    n = None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return after, count, trace, fill, n, term, argv[i + 1:]
        if a == "--after":
            after = True
        elif a == "--term":
            term = True
        elif a == "--count":
            count = True
        elif a == "--trace" and i + 1 < len(argv):
            i += 1
            trace = argv[i]
        elif a == "--fill" and i + 1 < len(argv):
            i += 1
            fill = argv[i]
        elif a.isdigit() and n is None:
            n = int(a)
        else:
            raise SystemExit(USAGE + "killer.py: unexpected argument %r" % a)
        i += 1
    raise SystemExit(USAGE + "killer.py: missing -- before the ops arguments")


def main():
    after, count, trace, fill, n, term, ops_args = parse(sys.argv[1:])
    if count == (n is not None) or (count and after) or (n is not None and n < 1) \
            or (fill and (after or count)) or (term and (after or count or fill)):
        raise SystemExit(USAGE + "killer.py: give either N >= 1 or --count; --fill without --after")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if repo not in sys.path:
        sys.path.append(repo)
    sys.dont_write_bytecode = True
    trace_fd = None
    if trace:
        trace_fd = os.open(trace, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    killer = Killer(0 if count else n, after, trace_fd, fill, term)
    killer.hook_code = Killer.hook.__code__
    _patch_popen_wait(killer)
    sys.argv = ["ops"] + ops_args
    sys.addaudithook(killer.hook)
    code = 0
    try:
        runpy.run_module("ops", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    killer.at_exit()
    if count:
        sys.stderr.write("killer: events=%d exit=%d\n" % (killer.count, code))
        sys.stderr.flush()
    # os._exit: nothing else (atexit handlers, buffered files) may act after ops
    os._exit(code)


if __name__ == "__main__":
    main()
