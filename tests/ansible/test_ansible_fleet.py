"""A fleet of three live systemd containers, one inventory host each through the ``community.docker.nsenter``
connection (conftest.nsenter_hosts); ``ansible-playbook`` runs on the machine with examples/ansible/rolling.yml
(serial: 1, max_fail_percentage: 0).

One story in file order: v1 reaches every host, a rerun changes nothing, a v3 whose service fails is rolled back on
the first host and the play stops there, so every host still runs v1.
"""

import os
import re

import pytest

from conftest import (POD, assert_running, nsenter_hosts, ops_list, playbook_on_machine, show_run,
                      task_results)

NAMES = ("h1", "h2", "h3")


@pytest.fixture(scope="module")
def fleet(ansible_bin, collection, workdir, pyz, bundles):
    """({name: Container}, the inventory file, the environment for ansible on the machine)."""
    with nsenter_hosts(ansible_bin, os.path.join(workdir, "fleet"), NAMES) as hosts:
        yield hosts


def rolling(fleet, ansible_bin, pyz, bundle):
    return playbook_on_machine(fleet, ansible_bin, pyz, "rolling.yml", ["ops_bundle=" + bundle])


def deploy_task_hosts(output):
    """Hosts in the order their `ops deploy` task reported a result."""
    return [host for _, host in task_results(output, "ops deploy")]


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
