"""The test container itself: it is a separate machine, and commands meant for it never run on this one."""

import os
import uuid

import pytest

from .container import Container, ContainerError


def test_container_is_a_separate_machine(container):
    with open("/etc/machine-id") as f:
        host_id = f.read().strip()
    r = container.run(["cat", "/etc/machine-id"], check=True)
    assert r.stdout.strip() and r.stdout.strip() != host_id

    r = container.run(["cat", "/proc/1/comm"], check=True)
    assert r.stdout.strip() == "systemd"
    # The container's PID 1 is the leader process on this machine, not this machine's PID 1.
    assert container.leader != 1
    with open("/proc/%d/comm" % container.leader) as f:
        assert f.read().strip() == "systemd"
    with open("/proc/%d/status" % container.leader) as f:
        assert "NSpid:\t%d\t1\n" % container.leader in f.read()

    r = container.run(["systemctl", "is-system-running"])
    assert r.stdout.strip() in ("running", "degraded"), r.stdout + r.stderr


def test_file_written_inside_does_not_appear_on_this_machine(container):
    name = "/root/ops-live-%s" % uuid.uuid4().hex
    container.run(["sh", "-c", 'echo inside > "$1"', "sh", name], check=True)
    assert container.read_file(name) == "inside\n"
    assert not os.path.lexists(name)

    # And the other way: a file written through /proc/LEADER/root is seen inside, not here.
    other = name + "-2"
    container.write_file(other, "from outside\n")
    assert container.run(["cat", other], check=True).stdout == "from outside\n"
    assert not os.path.lexists(other)


def test_environment_of_this_process_does_not_leak_in(container, monkeypatch):
    monkeypatch.setenv("OPS_LIVE_LEAK_CHECK", "leaked")
    out = container.run(["env"], check=True).stdout
    assert "OPS_LIVE_LEAK_CHECK" not in out
    assert sorted(l.split("=", 1)[0] for l in out.splitlines()) == ["LANG", "PATH"]
    out = container.run(["env"], env={"PATH": "/usr/bin:/bin", "ONLY": "this"}, check=True).stdout
    assert sorted(out.splitlines()) == ["ONLY=this", "PATH=/usr/bin:/bin"]


def test_path_resolves_absolute_symlinks_inside_the_container(container):
    # /proc/LEADER/root/LINK/... with an absolute LINK would be resolved against this machine's root by the kernel.
    container.run(["mkdir", "-p", "/root/linktest/real"], check=True)
    container.run(["ln", "-s", "/root/linktest/real", "/root/linktest/abs"], check=True)
    container.write_file("/root/linktest/abs/f", "x")
    assert container.run(["cat", "/root/linktest/real/f"], check=True).stdout == "x"
    assert container.path("/root/linktest/abs/f") == "/proc/%d/root/root/linktest/real/f" % container.leader


def test_a_pid_that_is_not_the_containers_pid_1_is_refused(container):
    marker = "/tmp/ops-live-marker-%s" % uuid.uuid4().hex
    leader = container.leader
    container.leader = os.getpid()          # a process of this machine: must never be entered
    try:
        with pytest.raises(ContainerError):
            container.run(["touch", marker])
        with pytest.raises(ContainerError):
            container.path("/etc")
    finally:
        container.leader = leader
    assert not os.path.lexists(marker)
    container.check_leader()


def _status(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return f.read()
    except OSError:
        return ""


def test_powered_off_container_refuses_commands():
    c = Container()
    c.boot()
    leader, nspawn = c.leader, c.proc
    try:
        c.check_leader()
        assert c.run(["cat", "/proc/1/comm"], check=True).stdout.strip() == "systemd"
    finally:
        c.poweroff()
    assert nspawn.poll() is not None
    assert "NSpid:\t%d\t1\n" % leader not in _status(leader)
    with pytest.raises(ContainerError):
        c.run(["true"])
    with pytest.raises(ContainerError):
        c.path("/etc")


def _cgroups(pid):
    """{hierarchy: path} of ``pid`` (/proc/PID/cgroup), for the two nspawn uses: name=systemd and the unified one."""
    out = {}
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f.read().splitlines():
            num, controllers, path = line.split(":", 2)
            if controllers == "name=systemd" or (num == "0" and controllers == ""):
                out[controllers or "unified"] = path
    return out


def test_two_containers_do_not_share_a_cgroup_and_theirs_go_with_them(container):
    """Each container's systemd runs in a cgroup of its own (a shared one had two systemds making and removing the
    same system.slice/UNIT cgroups); the container's cgroups are removed at its poweroff."""
    other = Container()
    other.boot()
    try:
        mine, theirs = _cgroups(container.leader), _cgroups(other.leader)
        assert mine and set(mine) == set(theirs), (mine, theirs)
        for h in mine:
            assert mine[h] != theirs[h], (h, mine[h])
            assert "/%s/payload/" % container.name in mine[h] and "/%s/payload/" % other.name in theirs[h], \
                (mine, theirs)
        made = list(other.cgroups)
        assert made and all(os.path.isdir(d) for d in made)
    finally:
        other.poweroff()
    assert not [d for d in made if os.path.exists(d)]


@pytest.mark.parametrize("value, outcome", [("", "9 errors"), ("/nonexistent/rkt", "9 errors"),
                                            ("0", "9 skipped")])
def test_a_missing_real_rkt_fails_the_live_tests_unless_switched_off_by_hand(value, outcome):
    # A suite that did not run must not count as passed: without a real rkt the tests that need one fail with the
    # reason, and only OPS_TEST_RKT=0 skips them (the fixture asks for rkt before it boots a container).
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, OPS_TEST_RKT=value)
    env.pop("PYTEST_XDIST_WORKER", None)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                        "tests/live/test_real_rkt_live.py"], cwd=repo, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    last = r.stdout.strip().splitlines()[-1]
    assert outcome in last and "passed" not in last, r.stdout[-2000:]
    assert r.returncode == (0 if value == "0" else 1), r.stdout[-2000:]
    if value != "0":
        assert "no real rkt: " in r.stdout and "OPS_TEST_RKT=0 skips these tests" in r.stdout
    else:
        assert "OPS_TEST_RKT=0: tests on the real rkt switched off by hand" in r.stdout
