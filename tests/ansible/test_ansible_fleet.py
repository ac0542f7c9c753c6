"""A fleet of twelve live systemd containers, one inventory host each through the ``community.docker.nsenter``
connection (conftest.nsenter_hosts); ``ansible-playbook`` runs on the machine with examples/ansible/deploy.yml and
rolling.yml in batches of four (``-e ops_serial=4``, ``max_fail_percentage`` 0).

One story in file order: v1 reaches every host at once; v2 goes batch by batch, leaving one bundle copy per host
(``ops_keep_bundles=1``); the same run again changes nothing, copies no bundle and takes at most about half the time
of the deploy; a v3 whose service fails is rolled back on the four hosts of the first batch and the play stops
there, the eight others untouched at v2; a v2 with other content is still refused by ops.
"""

import os
import re
import shutil
import time

import pytest

from conftest import (OPS_HOME, POD, UNIT, assert_running, current_version, description, make_bundle,
                      nsenter_hosts, ops_list, playbook_on_machine, show_run, task_results)

NAMES = tuple("h%02d" % i for i in range(1, 13))
BATCH = 4
FIRST, REST = NAMES[:BATCH], NAMES[BATCH:]
PLAY = "PLAY [Deploy a pod with ops, batch by batch]"
TIMES = {}


@pytest.fixture(scope="module")
def fleet(ansible_bin, collection, workdir, pyz, bundles):
    """({name: Container}, the inventory file, the environment for ansible on the machine)."""
    with nsenter_hosts(ansible_bin, os.path.join(workdir, "fleet"), NAMES) as hosts:
        yield hosts


def run(fleet, ansible_bin, pyz, playbook, bundle, *extra):
    started = time.monotonic()
    r, hosts = playbook_on_machine(fleet, ansible_bin, pyz, playbook, ["ops_bundle=" + bundle] + list(extra))
    return r, hosts, time.monotonic() - started


def rolling(fleet, ansible_bin, pyz, bundle, *extra):
    return run(fleet, ansible_bin, pyz, "rolling.yml", bundle, "ops_serial=%d" % BATCH, *extra)


def hosts_of(output, task):
    return [host for _, host in task_results(output, task)]


def bundle_copies(c):
    d = c.path("%s/bundles/%s" % (OPS_HOME, POD))
    return sorted(int(n) for n in os.listdir(d)) if os.path.isdir(d) else []


def assert_at(c, version, bundle):
    """Not half-switched: the current link, the running unit and the installed unit file are all ``version``'s."""
    pid = assert_running(c, version)
    with open(os.path.join(bundle, UNIT)) as f:
        assert c.read_file("/etc/systemd/system/" + UNIT) == f.read(), c.name
    return pid


def test_v1_reaches_every_host_at_once(fleet, ansible_bin, pyz, bundles):
    r, hosts, seconds = run(fleet, ansible_bin, pyz, "deploy.yml", bundles[1])
    print("deploy.yml v1 on %d hosts: %.1f s" % (len(NAMES), seconds))
    assert r.returncode == 0, show_run(r)
    assert sorted(hosts_of(r.stdout, "ops deploy")) == list(NAMES), show_run(r)
    for name in NAMES:
        assert hosts[name]["changed"] >= 1 and hosts[name]["failed"] == 0, show_run(r)
        assert_at(fleet[0][name], 1, bundles[1])


def test_v2_goes_batch_by_batch_and_one_bundle_copy_stays(fleet, ansible_bin, pyz, bundles):
    r, hosts, seconds = rolling(fleet, ansible_bin, pyz, bundles[2], "ops_keep_bundles=1")
    TIMES["deploy"] = seconds
    TIMES["deploy tasks"] = {name: hosts[name]["ok"] for name in NAMES}
    print("rolling.yml v2 on %d hosts, batches of %d: %.1f s" % (len(NAMES), BATCH, seconds))
    assert r.returncode == 0, show_run(r)
    assert r.stdout.count(PLAY) == len(NAMES) // BATCH, show_run(r)
    order = hosts_of(r.stdout, "ops deploy")
    assert [sorted(order[i:i + BATCH]) for i in range(0, len(NAMES), BATCH)] == \
        [list(NAMES[i:i + BATCH]) for i in range(0, len(NAMES), BATCH)], show_run(r)
    for name in NAMES:
        c = fleet[0][name]
        assert hosts[name]["changed"] >= 1 and hosts[name]["failed"] == 0, show_run(r)
        assert_at(c, 2, bundles[2])
        assert bundle_copies(c) == [2], (name, bundle_copies(c))       # v1's copy removed
        assert sorted(ops_list(c)) == [1, 2]                              # ops keeps both versions


def test_an_unchanged_run_copies_nothing_and_costs_about_half_a_deploy(fleet, ansible_bin, pyz, bundles):
    pids = {name: assert_at(fleet[0][name], 2, bundles[2]) for name in NAMES}
    r, hosts, seconds = rolling(fleet, ansible_bin, pyz, bundles[2])
    TIMES["unchanged"] = seconds
    print("rolling.yml v2 again (unchanged) on %d hosts: %.1f s, against %.1f s for the deploy: %.2f; tasks run "
          "per host: %s against %s" % (len(NAMES), seconds, TIMES["deploy"], seconds / TIMES["deploy"],
                                       sorted({h["ok"] for h in hosts.values()}),
                                       sorted(set(TIMES["deploy tasks"].values()))))
    assert r.returncode == 0, show_run(r)
    assert sorted(task_results(r.stdout, "Copy the bundle to the host")) == [("skipping", n) for n in NAMES], \
        show_run(r)
    assert sorted(task_results(r.stdout, "ops deploy")) == [("ok", n) for n in NAMES], show_run(r)
    for name in NAMES:
        assert hosts[name]["changed"] == 0 and hosts[name]["failed"] == 0, show_run(r)
        assert assert_at(fleet[0][name], 2, bundles[2]) == pids[name]       # not restarted
    # the cost, counted rather than timed (the machine's load moves wall-clock times): per host, at most half the
    # tasks of the deploy ran (ops_pod_info and ops_pod; the check on the control machine counts for the batch's
    # first host); ops.pyz and the bundle were not copied
    for name in NAMES:
        assert hosts[name]["ok"] * 2 <= TIMES["deploy tasks"][name], (name, hosts[name], TIMES["deploy tasks"])
    assert not task_results(r.stdout, "Copy ops.pyz") or \
        {status for status, _ in task_results(r.stdout, "Copy ops.pyz")} == {"skipping"}, show_run(r)


def test_broken_v3_stops_after_the_first_batch_rolled_back_and_the_rest_untouched(fleet, ansible_bin, pyz,
                                                                                     bundles):
    containers = fleet[0]
    pids = {name: assert_at(containers[name], 2, bundles[2]) for name in NAMES}
    r, hosts, seconds = rolling(fleet, ansible_bin, pyz, bundles[3])
    print("rolling.yml broken v3: %.1f s" % seconds)
    assert r.returncode != 0, show_run(r)
    assert r.stdout.count(PLAY) == 1, show_run(r)
    assert sorted(task_results(r.stdout, "ops deploy")) == [("fatal", n) for n in FIRST], show_run(r)
    assert len(re.findall(r'"msg": "ops: error: anstest\.service: [^"]*rolled back to 2"', r.stdout)) == BATCH, \
        show_run(r)
    assert set(hosts) == set(FIRST) and all(hosts[n]["failed"] == 1 for n in FIRST), show_run(r)
    for name in FIRST:
        c = containers[name]
        assert assert_at(c, 2, bundles[2]) != pids[name]      # v2 started again by ops's rollback
        versions = ops_list(c)
        assert versions[3]["outcome"] == "failed" and versions[2]["current"]
    for name in REST:
        c = containers[name]
        assert assert_at(c, 2, bundles[2]) == pids[name]      # never touched
        assert sorted(ops_list(c)) == [1, 2] and bundle_copies(c) == [2]
        assert not c.exists("/etc/ops/pods/%s/3" % POD)


def test_the_same_version_with_other_content_is_still_refused(fleet, ansible_bin, pyz, bundles, workdir):
    other = os.path.join(workdir, "bundles", "v2-other")
    if os.path.exists(other):
        shutil.rmtree(other)
    make_bundle(other, 2, "/bin/sleep 12345")
    c = fleet[0][NAMES[-1]]
    pid = assert_at(c, 2, bundles[2])
    r, hosts, _ = rolling(fleet, ansible_bin, pyz, other, "ops_hosts=" + NAMES[-1])
    assert r.returncode != 0, show_run(r)
    assert task_results(r.stdout, "Copy the bundle to the host") == [("changed", NAMES[-1])], show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("fatal", NAMES[-1])], show_run(r)
    assert "already stored with different content" in r.stdout, show_run(r)
    assert assert_at(c, 2, bundles[2]) == pid
    assert current_version(c) == 2 and description(2) in c.read_file("/etc/systemd/system/" + UNIT)
