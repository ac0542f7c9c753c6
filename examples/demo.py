#!/usr/bin/env python3
"""`make demo`: the whole life of examples/hello on a real systemd and a real rkt, in a throwaway container.

Needs a real rkt 1.30 with its fly stage1: $OPS_TEST_RKT names the rkt binary, stage1-fly.aci lies beside it
(without them the demo says so in one line and exits 2).  Builds the hello image from the machine's static busybox
(Debian's busybox-static), signs it with a new gpg key (examples/hello/make-image.py), boots a container
(systemd-nspawn, the machine's own /usr on a tmpfs root: nothing in it survives), copies rkt to /opt/rkt and the
prepared examples/hello into it, makes rkt trust the key, and runs, printing each command with its output and
exit status:

    ops deploy /root/hello/v1        an rkt pod (busybox httpd) serving v1's volume, two workers, a start-up stamp
    ops deploy /root/hello/v2        three workers and a timer; v1's stamp unit goes away
    ops deploy /root/hello/v3        its pod exits half a second after start: rolled back to 2, exit 1
    ops list
    ops redeploy hello:1             from the store, without the bundle
    ops list
    ops undeploy hello --remove      no image, pod or mount of hello is left

Exits non-zero when a step does not do what it should. Needs root and systemd-nspawn (systemd-container).
"""

import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "live"))
sys.path.insert(0, REPO)

from container import Container, ContainerError  # noqa: E402
from tests.support import realrkt  # noqa: E402

OPS_ENV = {
    "PYTHONPATH": "/src",
    "PYTHONDONTWRITEBYTECODE": "1",
    "OPS_RKT": realrkt.RKT,
    "LANG": "C.UTF-8",
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
}

HTTP_GET = r"""
import sys, time, urllib.request
deadline = time.monotonic() + 10
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
            sys.stdout.write(r.read().decode())
            break
    except OSError as e:
        if time.monotonic() >= deadline:
            sys.exit("GET %s: %s" % (sys.argv[1], e))
        time.sleep(0.1)
"""

# every process's mount table: a pod's mounts outlive it only if some namespace still holds them
MOUNTS = "grep -l /var/lib/rkt/pods /proc/[0-9]*/mountinfo 2>/dev/null; true"
MOUNTS_SHOWN = "grep -l /var/lib/rkt/pods /proc/[0-9]*/mountinfo   (any process's mount table)"

USE_COLOR = sys.stdout.isatty()


class StepFailed(Exception):
    pass


def say(text, color=None):
    if USE_COLOR and color:
        text = "\033[%sm%s\033[0m" % (color, text)
    print(text, flush=True)


class Demo:
    def __init__(self, container):
        self.c = container
        self.failures = []

    def show(self, shown, argv, env=None, expect_exit=0):
        """Run and print a command; ``expect_exit`` None: a check, whose
        exit status says nothing by itself (the ok: line after it judges)."""
        say("\n$ " + shown, "1")
        r = self.c.run(argv, env=env, timeout=180)
        # progress lines (stderr) come before the result line (stdout) when ops runs
        for line in r.stderr.splitlines():
            say("  " + line, "2")
        for line in r.stdout.splitlines():
            say("  " + line)
        if expect_exit is None:
            return r
        ok = r.returncode == expect_exit
        say("  [exit %d]" % r.returncode, "32" if ok else "31")
        if not ok:
            self.fail("%s: exit %d, expected %d" % (shown, r.returncode, expect_exit))
        return r

    def check(self, shown, argv):
        """A check's command: printed as one, without its exit status."""
        return self.show("check: " + shown, argv, expect_exit=None)

    def ops(self, *args, expect_exit=0):
        return self.show("ops " + " ".join(args), ["/usr/bin/python3", "-m", "ops"] + list(args), env=OPS_ENV,
                         expect_exit=expect_exit)

    def expect(self, condition, what):
        if condition:
            say("  ok: " + what, "32")
        else:
            self.fail(what)

    def fail(self, what):
        say("  FAILED: " + what, "31")
        self.failures.append(what)

    def last_line(self, r):
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        return lines[-1] if lines else ""

    def active(self, units):
        r = self.check("systemctl is-active " + " ".join(units), ["systemctl", "is-active"] + units)
        states = r.stdout.split()
        self.expect(states == ["active"] * len(units), "all active")

    def page(self, version):
        r = self.show("GET http://127.0.0.1:8080/   (python3 urllib, inside the container)",
                      ["/usr/bin/python3", "-c", HTTP_GET, "http://127.0.0.1:8080/"])
        self.expect("<h1>hello, version %d</h1>" % version in r.stdout, "the page of version %d is served" % version)

    def rkt(self, *args):
        return self.show("rkt " + " ".join(args), [realrkt.RKT] + list(args), expect_exit=0)

    def pods(self, expect_running):
        self.rkt("list")
        running = [p for p in realrkt.pods(self.c) if p[2] == "running"]
        self.expect(len(running) == expect_running, "%d pod(s) running" % expect_running)

    def prepare(self, workdir):
        rkt, stage1 = realrkt.find()
        say("# copying rkt and its stage1 into the container, building and signing the hello image ...")
        realrkt.install(self.c, rkt, stage1)
        say("# copied %s and %s to %s and %s inside the container" % (rkt, stage1, realrkt.RKT, realrkt.STAGE1))
        _, image_id = realrkt.prepare_hello(self.c, workdir, "/root/hello", trust=False)
        say("# built example.com/hello-web from /bin/busybox (examples/hello/make-image.py): %s..." % image_id[:39])
        say("# signed it with a new gpg key; copied the bundles to /root/hello and the key to %s" % realrkt.KEY)
        # what rkt's own install does (scripts/setup-data-dir.sh): without the group, `rkt run` warns on every start
        self.show("groupadd --force --system rkt", ["groupadd", "--force", "--system", "rkt"])
        self.show(" ".join(["rkt"] + realrkt.trust_argv()[1:]), realrkt.trust_argv())

    def run(self, workdir):
        say("# ops is run inside the container as: /usr/bin/python3 -m ops (PYTHONPATH=/src, OPS_RKT=%s)"
            % realrkt.RKT)
        self.prepare(workdir)

        r = self.ops("deploy", "/root/hello/v1")
        self.expect(self.last_line(r) == "deploy hello 1: changed", "deploy hello 1: changed")
        self.active(["hello-web.service", "hello-worker@1.service", "hello-worker@2.service", "hello-stamp.service"])
        self.pods(1)
        self.mounts()
        self.rkt("image", "list")
        self.page(1)

        r = self.ops("deploy", "/root/hello/v2")
        self.expect(self.last_line(r) == "deploy hello 2: changed", "deploy hello 2: changed")
        self.active(["hello-web.service", "hello-worker@0.service", "hello-worker@1.service",
                     "hello-worker@2.service", "hello-tick.timer"])
        r = self.check("systemctl is-active hello-stamp.service", ["systemctl", "is-active", "hello-stamp.service"])
        self.expect(r.stdout.strip() == "inactive", "v1's hello-stamp.service is gone")
        self.pods(1)
        self.page(2)

        r = self.ops("deploy", "/root/hello/v3", expect_exit=1)
        self.expect("rolled back to 2" in r.stderr, "v3's pod exits after start; rolled back to 2")
        self.active(["hello-web.service", "hello-tick.timer"])
        self.pods(1)
        self.page(2)

        self.ops("list")
        r = self.ops("redeploy", "hello:1")
        self.expect(self.last_line(r) == "redeploy hello 1: changed", "redeploy hello 1: changed")
        self.active(["hello-web.service", "hello-worker@1.service", "hello-worker@2.service", "hello-stamp.service"])
        self.pods(1)
        self.page(1)
        r = self.ops("list")
        self.expect(len([l for l in r.stdout.splitlines() if "hello" in l]) == 3, "three stored versions listed")

        r = self.ops("undeploy", "hello", "--remove")
        self.expect(self.last_line(r).endswith(": changed"), "undeploy hello: changed")
        r = self.ops("list")
        self.expect("hello" not in r.stdout, "nothing of hello is left")
        r = self.show("ls /etc/systemd/system", ["ls", "/etc/systemd/system"])
        self.expect("hello" not in r.stdout, "no unit of hello is left")
        self.pods(0)
        self.expect(realrkt.pods(self.c) == [], "no pod is left")
        r = self.rkt("image", "list")
        self.expect(realrkt.IMAGE_NAME not in r.stdout, "the hello image is removed (the stage1 stays: rkt's own)")
        r = self.check(MOUNTS_SHOWN, ["/bin/sh", "-c", MOUNTS])
        self.expect(r.stdout.strip() == "", "no process holds a mount of an rkt pod (none is left)")

    def mounts(self):
        """The pod's mounts live in hello-web.service's own mount namespace (PrivateMounts=yes), not
        the host's: they are in its main process's mountinfo, not in PID 1's, and go with the unit."""
        pid = self.c.run(["systemctl", "show", "-p", "MainPID", "--value", "hello-web.service"]).stdout.strip()
        r = self.check("grep -c /var/lib/rkt/pods /proc/%s/mountinfo   (hello-web.service's main process)" % pid,
                       ["grep", "-c", "/var/lib/rkt/pods", "/proc/%s/mountinfo" % pid])
        self.expect(r.stdout.strip() not in ("", "0"), "the pod's mounts are in hello-web.service's mount namespace")
        r = self.check("grep -c /var/lib/rkt/pods /proc/1/mountinfo   (the host's)",
                       ["grep", "-c", "/var/lib/rkt/pods", "/proc/1/mountinfo"])
        self.expect(r.stdout.strip() == "0", "and not in the host's (PrivateMounts=yes)")


def main():
    if os.geteuid() != 0:
        print("demo: error: run as root (it boots a systemd container with systemd-nspawn)", file=sys.stderr)
        return 2
    try:
        realrkt.find()
    except realrkt.Missing as e:
        print("demo: error: %s" % e, file=sys.stderr)
        return 2
    started = time.monotonic()
    workdir = tempfile.mkdtemp(prefix="ops-demo-")
    c = Container()
    demo = None
    try:
        say("# booting a throwaway systemd container (systemd-nspawn -D / --volatile=yes) ...")
        c.boot()
        say("# booted %s in %.1f s" % (c.name, c.boot_seconds))
        demo = Demo(c)
        demo.run(workdir)
    except ContainerError as e:
        print("demo: error: %s" % e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("demo: interrupted; powering the container off", file=sys.stderr)
        return 130
    finally:
        c.poweroff()
        shutil.rmtree(workdir, ignore_errors=True)
    say("\n# container powered off; demo took %.1f s" % (time.monotonic() - started))
    if demo.failures:
        say("# %d step(s) did not do what they should:" % len(demo.failures), "31")
        for f in demo.failures:
            say("#   " + f, "31")
        return 1
    say("# every step did what it should", "32")
    return 0


if __name__ == "__main__":
    sys.exit(main())
