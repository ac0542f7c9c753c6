"""A real ``ansible-playbook`` (ansible-core, from the test virtualenv) running the playbooks of examples/ansible
against live systemd containers (tests/live/container.py).

Two ways in, as in shared/reference/systemd-in-container.md:
- test_ansible_local.py runs ansible-playbook INSIDE one container (``-i localhost, -c local``), the virtualenv and
  the Python it was made from bind-mounted read-only at the same paths;
- test_ansible_fleet.py runs ansible-playbook on the machine against twelve containers with the
  ``community.docker.nsenter`` connection (from the ``ansible`` package), one inventory host per container.

Nothing here is skipped for a missing tool: a missing systemd-nspawn, ansible-playbook or collection fails the tests
with what to install.  Only ``OPS_LIVE=0``, set by hand, skips them.
"""

import concurrent.futures
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# tests/ on the path, as pytest puts it for the package tests/live: the same module `live.container` either way
if os.path.join(REPO, "tests") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "tests"))

from live.container import Container, ContainerError  # noqa: E402

PLAYBOOKS = os.path.join(REPO, "examples", "ansible")
PLAYBOOK_TIMEOUT = 300          # seconds for one ansible-playbook run
POD = "anstest"
UNIT = "anstest.service"
OPS_HOME = "/var/lib/ops-ansible"   # the playbooks' default ops_home
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_PARALLEL = 4               # containers booting at once (nsenter_hosts)
BOOT_TIMEOUT = 240.0            # seconds for one of them


# -- what the tests need ------------------------------------------------------------------------------------

def _venv_bin():
    """The bin/ directory holding ansible-playbook: this Python's, else the repository's .venv.  Its real path:
    a container sees the virtualenv there only (a .venv may be a symbolic link to another checkout's)."""
    for d in (os.path.dirname(sys.executable), os.path.join(REPO, ".venv", "bin")):
        if os.access(os.path.join(d, "ansible-playbook"), os.X_OK):
            return os.path.realpath(d)
    return None


@pytest.fixture(scope="session")
def ansible_bin():
    """bin/ of the virtualenv with ansible-core; fails (never skips) when anything the tests need is missing."""
    if os.environ.get("OPS_LIVE") == "0":
        pytest.skip("OPS_LIVE=0: live tests against systemd containers switched off by hand")
    if os.geteuid() != 0:
        pytest.fail("the Ansible tests boot systemd containers and must run as root (OPS_LIVE=0 skips them)",
                    pytrace=False)
    for tool, package in (("systemd-nspawn", "systemd-container"), ("nsenter", "util-linux")):
        if shutil.which(tool) is None:
            pytest.fail("%s not found: apt-get install -y %s (or run make deps)" % (tool, package), pytrace=False)
    d = _venv_bin()
    if d is None:
        pytest.fail("ansible-playbook not found next to %s nor in %s/.venv/bin: run make deps (tests/requirements.txt "
                    "has ansible-core)" % (sys.executable, REPO), pytrace=False)
    return d


@pytest.fixture(scope="session")
def venv_binds(ansible_bin):
    """Host directories a container needs to run that virtualenv's ansible-playbook: the virtualenv and the
    prefix of the Python it was made from (nothing under /usr: the container has the machine's /usr)."""
    venv = os.path.dirname(ansible_bin)
    r = subprocess.run([os.path.join(ansible_bin, "python"), "-c", "import sys; print(sys.base_prefix)"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
    assert r.returncode == 0, r.stderr
    binds = []
    for d in (venv, r.stdout.strip()):
        d = os.path.realpath(d)
        if d != "/usr" and not d.startswith("/usr/") and d not in binds:
            binds.append(d)
    return tuple(binds)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ansible"))


@pytest.fixture(scope="session")
def pyz(workdir):
    """ops.pyz built by tools/build_pyz.py, as `make pyz` would."""
    out = os.path.join(workdir, "dist", "ops.pyz")
    r = subprocess.run([sys.executable, os.path.join(REPO, "tools", "build_pyz.py"), out], cwd=workdir,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
    assert r.returncode == 0 and os.path.isfile(out), r.stdout + r.stderr
    return out


@pytest.fixture(scope="session")
def bundles(workdir):
    """Bundles of pod ``anstest`` with one unit, anstest.service: v1 and v2 run, v3 fails at once."""
    d = os.path.join(workdir, "bundles")
    return {
        1: make_bundle(os.path.join(d, "v1"), 1, "/bin/sleep infinity"),
        2: make_bundle(os.path.join(d, "v2"), 2, "/usr/bin/python3 -c 'import time; time.sleep(10**6)'"),
        3: make_bundle(os.path.join(d, "v3-broken"), 3, "/bin/false"),
    }


def description(version):
    return "ops ansible test v%d" % version


def make_bundle(directory, version, exec_start):
    os.makedirs(directory)
    with open(os.path.join(directory, UNIT), "w") as f:
        f.write("[Unit]\nDescription=%s\n\n[Service]\nExecStart=%s\n\n[Install]\nWantedBy=multi-user.target\n"
                % (description(version), exec_start))
    annotation = {"name": POD, "version": version, "systemd-units": [{"unit-file": UNIT, "start": True}]}
    with open(os.path.join(directory, "pod.json"), "w") as f:
        json.dump({"acKind": "PodManifest", "acVersion": "0.8.11",
                   "annotations": [{"name": "ops", "value": json.dumps(annotation)}]}, f, indent=2)
    return directory


# -- containers ---------------------------------------------------------------------------------------------

def boot(binds_ro=()):
    c = Container(binds_ro=binds_ro)
    try:
        c.boot()
    except ContainerError as e:
        pytest.fail("cannot boot a test container: %s" % e, pytrace=False)
    return c


def poweroff_all(containers):
    errors = []
    for c in containers:
        try:
            c.poweroff()
        except Exception as e:          # power off the others all the same
            errors.append("%s: %s" % (c.name, e))
    if errors:
        raise ContainerError("poweroff failed: " + "; ".join(errors))


# -- hosts reached through community.docker.nsenter, ansible-playbook on the machine ------------------------

MARKER = "/etc/ops-ansible-host"


@pytest.fixture(scope="session")
def collection(ansible_bin):
    """The community.docker.nsenter connection plugin (from the ``ansible`` package)."""
    r = run_on_machine([os.path.join(ansible_bin, "ansible-doc"), "-t", "connection", "community.docker.nsenter"],
                       env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "ANSIBLE_NOCOLOR": "1"}, cwd="/",
                       timeout=120)
    if r.returncode != 0:
        pytest.fail("the community.docker.nsenter connection is missing: pip install ansible into %s (it is in "
                    "tests/requirements.txt; run make deps)\n%s" % (os.path.dirname(ansible_bin), r.stderr[-2000:]),
                    pytrace=False)


@contextlib.contextmanager
def nsenter_hosts(ansible_bin, directory, names):
    """Boot one container per name; yield ({name: Container}, inventory file, environment for ansible).

    Safety: a wrong ``ansible_nsenter_pid`` would run the tasks (a deploy, systemctl) on the machine itself.  Each
    leader is checked with the harness before the inventory is written, and before any playbook runs an ad-hoc
    command must read back, on each inventory host, the marker file written into that container only."""
    os.makedirs(os.path.join(directory, "home"))
    env = {"HOME": os.path.join(directory, "home"), "LANG": "C.UTF-8", "PATH": PATH, "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCAL_TEMP": os.path.join(directory, "local-tmp"),
           "ANSIBLE_REMOTE_TEMP": "/root/.ansible/tmp"}
    containers = {}
    try:
        # booted a few side by side: a boot mostly waits for systemd inside its container, but a dozen at once on
        # two loaded cores take longer each than the harness's boot timeout
        with concurrent.futures.ThreadPoolExecutor(max_workers=BOOT_PARALLEL) as pool:
            futures = {name: pool.submit(Container(boot_timeout=BOOT_TIMEOUT).boot) for name in names}
            errors = []
            for name in names:
                try:
                    containers[name] = futures[name].result()
                except ContainerError as e:
                    errors.append("%s: %s" % (name, e))
        if errors:
            pytest.fail("cannot boot the test containers: %s" % "; ".join(errors), pytrace=False)
        lines = ["[fleet]"]
        leaders = set()
        for name, c in containers.items():
            c.check_leader()          # NSpid is "LEADER 1" and its parent is our nspawn: the container's PID 1
            assert c.leader not in leaders and c.leader not in (1, os.getpid())
            leaders.add(c.leader)
            c.write_file(MARKER, name + "\n")
            lines.append("%s ansible_connection=community.docker.nsenter ansible_nsenter_pid=%d "
                         "ansible_python_interpreter=/usr/bin/python3" % (name, c.leader))
        inventory = os.path.join(directory, "inventory.ini")
        with open(inventory, "w") as f:
            f.write("\n".join(lines) + "\n")
        assert not os.path.exists(MARKER), "the machine itself has %s: cannot tell it from a container" % MARKER
        r = run_on_machine([os.path.join(ansible_bin, "ansible"), "fleet", "-i", inventory, "-m", "command",
                            "-a", "cat " + MARKER], env=env, cwd=directory, timeout=120)
        for name in names:
            assert re.search(r"^%s \| CHANGED \| rc=0 >>\n%s$" % (name, name), r.stdout, re.M), \
                "inventory host %s did not reach its own container:\n%s" % (name, show_run(r))
        yield containers, inventory, env
    finally:
        poweroff_all(containers.values())


def playbook_on_machine(hosts, ansible_bin, pyz, name, extra_vars=(), flags=()):
    """Run ``ansible-playbook [FLAGS] -e ops_pyz=PYZ -e VAR... examples/ansible/NAME`` on the machine against
    the hosts of :func:`nsenter_hosts`; print and return (the run, its PLAY RECAP by host)."""
    inventory, env = hosts[1], hosts[2]
    argv = [os.path.join(ansible_bin, "ansible-playbook"), "-i", inventory] + list(flags) + ["-e", "ops_pyz=" + pyz]
    for e in extra_vars:
        argv += ["-e", e]
    argv.append(os.path.join(PLAYBOOKS, name))
    r = run_on_machine(argv, env=env, cwd=os.path.dirname(inventory), timeout=PLAYBOOK_TIMEOUT)
    recap_hosts, lines = recap(r.stdout)
    print("\n$ ansible-playbook %s%s %s: exit %d\n%s" % ("".join(f + " " for f in flags), name,
          " ".join("-e %s=%s" % (k, os.path.basename(v)) for k, v in (e.split("=", 1) for e in extra_vars)), r.returncode, "\n".join(lines)))
    return r, recap_hosts


def task_results(output, task):
    """[(status, host)] of the task named ``task`` in ansible-playbook's output, in the order reported."""
    results, in_task = [], False
    for line in output.splitlines():
        if line.startswith(("TASK [", "PLAY ", "NO MORE HOSTS", "RUNNING HANDLER")):
            in_task = line.startswith("TASK [%s]" % task)
            continue
        m = re.match(r"(changed|ok|fatal|failed|skipping): \[(\w+)\]", line)
        if in_task and m:
            results.append((m.group(1), m.group(2)))
    return results


# -- Ansible output -----------------------------------------------------------------------------------------

RECAP_LINE = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def recap(output):
    """The PLAY RECAP of ansible-playbook's output: ({host: {"ok": n, "changed": n, ...}}, [the raw lines])."""
    lines = output.splitlines()
    try:
        start = max(i for i, l in enumerate(lines) if l.startswith("PLAY RECAP"))
    except ValueError:
        raise AssertionError("no PLAY RECAP in the output:\n" + output[-4000:])
    hosts, raw = {}, []
    for line in lines[start + 1:]:
        m = RECAP_LINE.match(line.rstrip())
        if not m:
            if line.strip():
                break
            continue
        raw.append(line.rstrip())
        hosts[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    assert hosts, "empty PLAY RECAP:\n" + output[-4000:]
    return hosts, raw


def show_run(r):
    return "$ %s\nexit %d\n--- stdout ---\n%s\n--- stderr ---\n%s" % (
        " ".join(r.args), r.returncode, r.stdout[-12000:], r.stderr[-4000:])


def run_on_machine(argv, env, cwd, timeout=PLAYBOOK_TIMEOUT):
    """Run an Ansible command on the machine, bounded: on a timeout its whole process group is killed."""
    p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        raise AssertionError("%s did not finish within %d s" % (" ".join(argv), timeout))
    return subprocess.CompletedProcess(argv, p.returncode, out.decode("utf-8", "replace"),
                                       err.decode("utf-8", "replace"))


# -- what a user checks on a host ---------------------------------------------------------------------------

def unit_state(c):
    """(is-active, Description, MainPID) of anstest.service inside container ``c``."""
    active = c.run(["systemctl", "is-active", UNIT]).stdout.strip()
    props = c.run(["systemctl", "show", "-p", "Description", "-p", "MainPID", UNIT]).stdout
    values = dict(l.split("=", 1) for l in props.splitlines() if "=" in l)
    return active, values.get("Description"), values.get("MainPID")


def current_version(c):
    link = "/etc/ops/current/" + POD
    if not c.exists(link):
        return None
    target = os.readlink(c.path(link))
    assert target.startswith("../pods/%s/" % POD), target
    return int(target.rsplit("/", 1)[1])


def ops_list(c):
    """``ops --json list`` with the ops.pyz the playbook installed: {version: entry}."""
    r = c.run(["/usr/bin/python3", OPS_HOME + "/ops.pyz", "--json", "list", POD], env={"PATH": PATH, "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stdout + r.stderr
    return {p["version"]: p for p in json.loads(r.stdout)["pods"]}


def assert_running(c, version):
    """The host runs ``version`` of the pod: current link, unit active, the unit is that version's."""
    active, desc, pid = unit_state(c)
    assert current_version(c) == version, "%s: current is %r, expected %d" % (c.name, current_version(c), version)
    assert active == "active", "%s: %s is %s" % (c.name, UNIT, active)
    assert desc == description(version), "%s: %s runs %r" % (c.name, UNIT, desc)
    assert pid and pid != "0"
    return pid
