"""A fleet of three live systemd containers, one inventory host each through the ``community.docker.nsenter``
connection; ``ansible-playbook`` runs on the machine with examples/ansible/rolling.yml (serial: 1,
max_fail_percentage: 0).

One story in file order: v1 reaches every host, a rerun changes nothing, a v3 whose service fails is rolled back on
the first host and the play stops there, so every host still runs v1.

Safety: a wrong ``ansible_nsenter_pid`` would run the tasks (a deploy, systemctl) on the machine itself.  Each
leader is checked with the harness before the inventory is written, and before any playbook runs an ad-hoc command
must read back, on each inventory host, the marker file written into that container only.
"""

import os
import re

import pytest

from conftest import (PATH, PLAYBOOK_TIMEOUT, POD, assert_running, boot, ops_list, poweroff_all, recap,
                      run_on_machine, show_run)

NAMES = ("h1", "h2", "h3")
MARKER = "/etc/ops-ansible-fleet-host"


@pytest.fixture(scope="module")
def collection(ansible_bin):
    r = run_on_machine([os.path.join(ansible_bin, "ansible-doc"), "-t", "connection", "community.docker.nsenter"],
                       env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "ANSIBLE_NOCOLOR": "1"}, cwd="/",
                       timeout=120)
    if r.returncode != 0:
        pytest.fail("the community.docker.nsenter connection is missing: pip install ansible into %s (it is in "
                    "tests/requirements.txt; run make deps)\n%s" % (os.path.dirname(ansible_bin), r.stderr[-2000:]),
                    pytrace=False)


@pytest.fixture(scope="module")
def fleet(ansible_bin, collection, workdir, pyz, bundles):
    """{name: Container}, the inventory file, and the environment for ansible on the machine."""
    d = os.path.join(workdir, "fleet")
    os.makedirs(os.path.join(d, "home"))
    env = {"HOME": os.path.join(d, "home"), "LANG": "C.UTF-8", "PATH": PATH, "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCAL_TEMP": os.path.join(d, "local-tmp"),
           "ANSIBLE_REMOTE_TEMP": "/root/.ansible/tmp"}
    containers = {}
    try:
        for name in NAMES:
            containers[name] = boot()
        lines = ["[fleet]"]
        leaders = set()
        for name, c in containers.items():
            c.check_leader()          # NSpid is "LEADER 1" and its parent is our nspawn: the container's PID 1
            assert c.leader not in leaders and c.leader not in (1, os.getpid())
            leaders.add(c.leader)
            c.write_file(MARKER, name + "\n")
            lines.append("%s ansible_connection=community.docker.nsenter ansible_nsenter_pid=%d "
                         "ansible_python_interpreter=/usr/bin/python3" % (name, c.leader))
        inventory = os.path.join(d, "inventory.ini")
        with open(inventory, "w") as f:
            f.write("\n".join(lines) + "\n")
        assert not os.path.exists(MARKER), "the machine itself has %s: cannot tell it from a container" % MARKER
        r = run_on_machine([os.path.join(ansible_bin, "ansible"), "fleet", "-i", inventory, "-m", "command",
                            "-a", "cat " + MARKER], env=env, cwd=d, timeout=120)
        for name in NAMES:
            assert re.search(r"^%s \| CHANGED \| rc=0 >>\n%s$" % (name, name), r.stdout, re.M), \
                "inventory host %s did not reach its own container:\n%s" % (name, show_run(r))
        yield containers, inventory, env
    finally:
        poweroff_all(containers.values())


def rolling(fleet, ansible_bin, pyz, bundle):
    containers, inventory, env = fleet
    argv = [os.path.join(ansible_bin, "ansible-playbook"), "-i", inventory, "-e", "ops_pyz=" + pyz,
            "-e", "ops_bundle=" + bundle, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
                os.path.abspath(__file__)))), "examples", "ansible", "rolling.yml")]
    r = run_on_machine(argv, env=env, cwd=os.path.dirname(inventory), timeout=PLAYBOOK_TIMEOUT)
    hosts, lines = recap(r.stdout)
    print("\n$ ansible-playbook -i inventory.ini rolling.yml -e ops_bundle=%s: exit %d\n%s"
          % (os.path.basename(bundle), r.returncode, "\n".join(lines)))
    return r, hosts


def deploy_task_hosts(output):
    """Hosts in the order their `ops --json deploy` task reported a result."""
    hosts, in_task = [], False
    for line in output.splitlines():
        if line.startswith(("TASK [", "PLAY ", "NO MORE HOSTS")):
            in_task = line.startswith("TASK [ops --json deploy]")
            continue
        m = re.match(r"(changed|ok|fatal|failed|skipping): \[(\w+)\]", line)
        if in_task and m:
            hosts.append(m.group(2))
    return hosts


def test_good_version_reaches_every_host_one_by_one(fleet, ansible_bin, pyz, bundles):
    containers = fleet[0]
    r, hosts = rolling(fleet, ansible_bin, pyz, bundles[1])
    assert r.returncode == 0, show_run(r)
    assert r.stdout.count("PLAY [Deploy a pod with ops, one host at a time]") == 3, show_run(r)   # serial: 1
    assert deploy_task_hosts(r.stdout) == list(NAMES), show_run(r)
    for name in NAMES:
        assert hosts[name]["changed"] >= 1 and hosts[name]["failed"] == 0, show_run(r)
        assert_running(containers[name], 1)


def test_rerun_changes_nothing(fleet, ansible_bin, pyz, bundles):
    containers = fleet[0]
    pids = {name: assert_running(containers[name], 1) for name in NAMES}
    r, hosts = rolling(fleet, ansible_bin, pyz, bundles[1])
    assert r.returncode == 0, show_run(r)
    for name in NAMES:
        assert hosts[name]["changed"] == 0 and hosts[name]["failed"] == 0, show_run(r)
        assert assert_running(containers[name], 1) == pids[name]       # not restarted


def test_failing_version_is_rolled_back_on_the_first_host_and_the_play_stops(fleet, ansible_bin, pyz, bundles):
    containers = fleet[0]
    r, hosts = rolling(fleet, ansible_bin, pyz, bundles[3])
    assert r.returncode != 0, show_run(r)
    assert hosts["h1"]["failed"] == 1, show_run(r)
    assert re.search(r'"msg": "ops: error: anstest\.service: [^"]*rolled back to 1"', r.stdout), show_run(r)
    # h2 and h3 were never attempted: no task ran for them, nothing of v3 reached them
    assert deploy_task_hosts(r.stdout) == ["h1"], show_run(r)
    assert not re.search(r"\[h[23]\]", r.stdout) and "h2" not in hosts and "h3" not in hosts, show_run(r)
    for name in ("h2", "h3"):
        c = containers[name]
        assert not c.exists("/etc/ops/pods/%s/3" % POD)
        assert not c.exists("/var/lib/ops-ansible/bundles/%s/3" % POD)
        assert sorted(ops_list(c)) == [1]
    versions = ops_list(containers["h1"])
    assert versions[3]["outcome"] == "failed" and versions[1]["current"]
    for name in NAMES:
        assert_running(containers[name], 1)
