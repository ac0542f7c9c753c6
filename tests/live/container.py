"""A real systemd, booted in a throwaway container, for live tests and the demo.

The container boots the machine's own /usr with a tmpfs root
(``systemd-nspawn --volatile=yes``): it needs no image, nothing written in it
survives, and the machine's /etc, /var and /tmp are untouched.  The repository
is bind-mounted read-only at /src.

Every command meant for the container goes through :meth:`Container.run`,
which first checks that the process it enters really is the container's PID 1
(:meth:`Container.check_leader`): a command that ran on the machine instead
(a deploy, ``systemctl stop``, ``poweroff``) would change the machine itself.

    with Container() as c:
        c.run(["systemctl", "is-active", "multi-user.target"])
        c.write_file("/root/x", b"data")
"""

import atexit
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import uuid

__all__ = ["Container", "ContainerError", "REPO"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The environment of every command run inside, unless the caller gives one.
DEFAULT_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

_LIVE = set()          # containers booted and not yet powered off (the safety net)


def _cgroup_parents():
    """This process's cgroup in each hierarchy systemd-nspawn places a container in: the named ``systemd`` one
    of cgroup v1 and the unified one (v2), where mounted and writable."""
    out = []
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        num, controllers, path = line.split(":", 2)
        if controllers == "name=systemd":
            mount = "/sys/fs/cgroup/systemd"
        elif num == "0" and controllers == "":
            mount = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        else:
            continue
        d = os.path.normpath(mount + path)
        if os.access(os.path.join(d, "cgroup.procs"), os.W_OK):
            out.append(d)
    return out


def _remove_cgroup(top):
    """Remove the cgroup ``top`` and what the container left under it (empty once its processes are gone)."""
    for d, _, _ in os.walk(top, topdown=False):
        try:
            os.rmdir(d)
        except OSError:
            pass


class ContainerError(Exception):
    """The container could not be booted, entered or stopped."""


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _status_field(pid, field):
    text = _read("/proc/%d/status" % pid)
    if text is None:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line[len(field) + 1:].strip()
    return None


def _comm(pid):
    text = _read("/proc/%d/comm" % pid)
    return text.strip() if text is not None else None


def _children(ppid):
    """PIDs whose parent is ``ppid`` (scanning /proc: works without CONFIG_PROC_CHILDREN)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _status_field(int(name), "PPid") == str(ppid):
            out.append(int(name))
    return out


class Container:
    """One booted container; :meth:`boot` it, :meth:`poweroff` it (always)."""

    def __init__(self, src=REPO, name=None, boot_timeout=90.0, binds_ro=()):
        self.src = os.path.abspath(src)
        self.binds_ro = tuple(os.path.abspath(b) for b in binds_ro)   # more host dirs, same path inside
        self.name = name or "ops-test-%d-%s" % (os.getpid(), uuid.uuid4().hex[:8])
        self.boot_timeout = boot_timeout
        self.leader = None         # host PID of the container's PID 1
        self.proc = None           # the systemd-nspawn process (Popen)
        self.console_path = None
        self._console = None
        self.boot_seconds = None
        self.keep_console = False  # the console log is deleted at poweroff unless the boot failed
        self.cgroups = []          # the container's own cgroups (one per hierarchy), removed at poweroff

    # -- life cycle -------------------------------------------------------------------------------------------

    def boot(self):
        if self.proc is not None:
            raise ContainerError("container %s was already booted" % self.name)
        if shutil.which("systemd-nspawn") is None:
            raise ContainerError("systemd-nspawn not found: apt-get install -y systemd-container")
        fd, self.console_path = tempfile.mkstemp(prefix=self.name + "-", suffix=".console.log")
        self._console = os.fdopen(fd, "wb")
        argv = ["setsid", "systemd-nspawn", "-q", "-D", "/", "--volatile=yes", "--private-network",
                "--register=no", "--keep-unit", "--console=passive", "-M", self.name,
                "--bind-ro=%s:/src" % self.src]
        argv += ["--bind-ro=%s:%s" % (b, b) for b in self.binds_ro]
        argv += ["-b", "systemd.firstboot=off"]
        # With --keep-unit, nspawn puts its container in payload/ under the cgroup it starts in, so containers
        # started from one process would share one: their systemds would make, kill and remove the same
        # system.slice/UNIT cgroups (a boot then fails with "Failed to attach to cgroup"). Each container starts
        # in a cgroup of its own, made here and entered by the shell that execs setsid, before nspawn runs.
        enter = []
        for parent in _cgroup_parents():
            d = os.path.join(parent, self.name)
            try:
                os.mkdir(d)
            except OSError:
                continue
            self.cgroups.append(d)
            enter.append("echo $$ > %s" % shlex.quote(os.path.join(d, "cgroup.procs")))
        if enter:
            argv = ["sh", "-c", " && ".join(enter) + ' && exec "$@"', "sh"] + argv
        started = time.monotonic()
        # Not a process-group leader, so setsid(1) calls setsid() and execs nspawn in place: proc.pid is nspawn
        # (the shell that enters the cgroups execs setsid in place too).
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._console,
                                     stderr=subprocess.STDOUT, close_fds=True)
        _LIVE.add(self)
        _install_sigterm()
        try:
            deadline = started + self.boot_timeout
            self.leader = self._find_leader(deadline)
            self._wait_running(deadline)
        except BaseException:
            self.keep_console = True
            self.poweroff(timeout=10)
            raise
        self.boot_seconds = time.monotonic() - started
        return self

    def _find_leader(self, deadline):
        """The container's PID 1: the child of nspawn that is PID 1 in its own PID namespace.

        nspawn's first child is a short-lived setup process still in the machine's namespaces: it is never taken.
        """
        nspawn = self.proc.pid
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ContainerError("systemd-nspawn exited with status %s before the container started%s"
                                     % (self.proc.returncode, self.console_tail()))
            for pid in _children(nspawn):
                nspid = _status_field(pid, "NSpid")
                # PID 1 of the new namespace, and already running systemd: before it execs, nspawn's child still
                # sees the machine's root directory, so entering it then would act on the machine's files.
                if nspid is not None and nspid.split() == [str(pid), "1"] and _comm(pid) == "systemd":
                    return pid
            time.sleep(0.05)
        raise ContainerError("no container PID 1 appeared under systemd-nspawn (pid %d) within %.0f s%s"
                             % (nspawn, self.boot_timeout, self.console_tail()))

    def _wait_running(self, deadline):
        started = time.monotonic()
        last = ""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.proc.poll() is not None:
                raise ContainerError("the container stopped while booting (nspawn status %s)%s"
                                     % (self.proc.returncode, self.console_tail()))
            try:
                r = self.run(["systemctl", "is-system-running", "--wait"], timeout=max(1.0, left))
            except subprocess.TimeoutExpired:
                last = "systemctl is-system-running --wait did not return"
                break
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                return state
            last = (state + " " + r.stderr.strip()).strip()
            # "Failed to connect to bus" (or "offline") for a moment after PID 1 appears: retry until the deadline.
            if state not in ("", "initializing", "starting", "offline", "unknown") or \
                    (state == "" and "bus" not in r.stderr.lower()):
                break
            time.sleep(0.1)
        raise ContainerError("the container did not finish booting (waited %.1f s of at most %.0f s; last: %s)%s"
                             % (time.monotonic() - started, self.boot_timeout, last or "nothing",
                                self.console_tail()))

    def poweroff(self, timeout=30.0):
        """``systemctl poweroff`` inside, wait for nspawn; on a hang SIGKILL the container's PID 1, then nspawn."""
        proc = self.proc
        if proc is None:
            return
        try:
            if proc.poll() is None and self._leader_ok():
                try:
                    self.run(["systemctl", "poweroff"], timeout=min(timeout, 15))
                except (subprocess.TimeoutExpired, ContainerError):
                    pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    pass
            if proc.poll() is None:
                # Killing PID 1 ends its whole PID namespace; killing only nspawn would orphan the container's systemd.
                if self._leader_ok():
                    try:
                        os.kill(self.leader, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    try:
                        proc.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        pass
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        finally:
            _LIVE.discard(self)
            if proc.poll() is not None:
                for d in self.cgroups:
                    _remove_cgroup(d)
                self.cgroups = []
            if self._console is not None:
                self._console.close()
                self._console = None
                if not self.keep_console:
                    try:
                        os.unlink(self.console_path)
                    except OSError:
                        pass
            self.leader = None

    def __enter__(self):
        return self.boot()

    def __exit__(self, *exc):
        self.poweroff()
        return False

    # -- safety -----------------------------------------------------------------------------------------------

    def _leader_ok(self):
        try:
            self.check_leader()
        except ContainerError:
            return False
        return True

    def check_leader(self):
        """Raise unless LEADER is still the container's PID 1 (``NSpid: LEADER 1``, a child of our nspawn)."""
        if self.leader is None or self.proc is None:
            raise ContainerError("container %s is not running" % self.name)
        nspid = _status_field(self.leader, "NSpid")
        ppid = _status_field(self.leader, "PPid")
        comm = _comm(self.leader)
        if nspid is None or nspid.split() != [str(self.leader), "1"] or ppid != str(self.proc.pid) \
                or comm not in ("systemd", "systemd-shutdow") or self.proc.poll() is not None:
            raise ContainerError("pid %d is no longer the PID 1 of container %s (NSpid %r, PPid %r, comm %r): "
                                 "refusing to run" % (self.leader, self.name, nspid, ppid, comm))

    # -- running things inside --------------------------------------------------------------------------------

    def run(self, argv, env=None, input=None, timeout=120.0, check=False, cwd="/"):
        """Run ``argv`` inside every namespace of the container; return a CompletedProcess (text).

        The command gets exactly ``env`` (default PATH and LANG), never the environment of this process.
        """
        self.check_leader()
        env = DEFAULT_ENV if env is None else env
        inner = ["/usr/bin/env", "-i"]
        if cwd != "/":
            inner += ["-C", cwd]
        inner += ["%s=%s" % (k, v) for k, v in sorted(env.items())]
        inner += [str(a) for a in argv]
        full = ["nsenter", "-t", str(self.leader), "-a"] + inner
        if isinstance(input, str):
            input = input.encode()
        p = subprocess.Popen(full, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                             env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            # nsenter forks the command into the container's PID namespace: kill its whole process group.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            raise
        r = subprocess.CompletedProcess([str(a) for a in argv], p.returncode,
                                        out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
        if check and r.returncode != 0:
            raise ContainerError("inside %s: %s exited %d\nstdout: %s\nstderr: %s"
                                 % (self.name, " ".join(r.args), r.returncode, r.stdout, r.stderr))
        return r

    # -- files ------------------------------------------------------------------------------------------------

    def _resolve(self, p):
        """``p`` with every directory component resolved as the container sees it (absolute symlinks stay inside
        the container, not the machine); the last component is not followed."""
        if not p.startswith("/"):
            raise ValueError("container path must be absolute: %r" % p)
        root = "/proc/%d/root" % self.leader
        todo = [c for c in p.split("/") if c]
        done = []
        hops = 0
        while todo:
            comp = todo.pop(0)
            if comp == ".":
                continue
            if comp == "..":
                if done:
                    done.pop()
                continue
            if not todo:                      # last component: not followed
                done.append(comp)
                break
            cur = root + "/" + "/".join(done + [comp])
            try:
                st = os.lstat(cur)
            except FileNotFoundError:
                done.append(comp)
                done.extend(todo)
                todo = []
                break
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    raise ContainerError("too many symlinks resolving %s in %s" % (p, self.name))
                target = os.readlink(cur)
                if target.startswith("/"):
                    done = []
                todo = [c for c in target.split("/") if c] + todo
            else:
                done.append(comp)
        return "/" + "/".join(done)

    def path(self, p):
        """The machine's path to the container's file ``p``: ``/proc/LEADER/root`` + ``p``."""
        self.check_leader()
        return "/proc/%d/root%s" % (self.leader, self._resolve(p))

    def exists(self, p):
        return os.path.lexists(self.path(p))

    def read_file(self, p, binary=False):
        with open(self.path(p), "rb" if binary else "r") as f:
            return f.read()

    def write_file(self, p, data, mode=0o644):
        dest = self.path(p)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(dest, mode)
        return dest

    def copytree(self, src, dst):
        """Copy the machine's directory ``src`` to ``dst`` inside the container (``dst`` must not exist)."""
        dest = self.path(dst)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copytree(src, dest, symlinks=True)
        return dest

    def remove(self, p):
        dest = self.path(p)
        if os.path.isdir(dest) and not os.path.islink(dest):
            shutil.rmtree(dest)
        elif os.path.lexists(dest):
            os.unlink(dest)

    # -- diagnostics ------------------------------------------------------------------------------------------

    def console_tail(self, lines=30):
        text = _read(self.console_path) if self.console_path else None
        if not text:
            return ""
        return "\n--- console log (last %d lines of %s) ---\n%s" % (
            lines, self.console_path, "\n".join(text.splitlines()[-lines:]))


def _poweroff_all():
    for c in list(_LIVE):
        try:
            c.poweroff(timeout=10)
        except Exception:
            pass


atexit.register(_poweroff_all)


def _on_sigterm(signum, frame):
    # Turn SIGTERM into KeyboardInterrupt so that finally blocks and fixture teardowns power containers off.
    raise KeyboardInterrupt("SIGTERM")


def _install_sigterm():
    try:
        if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:          # not the main thread
        pass
