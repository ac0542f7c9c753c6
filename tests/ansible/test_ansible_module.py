"""The ops.pod.ops_pod module (examples/ansible/collections) under a real ``ansible-playbook`` on the machine, against
one live systemd container reached through ``community.docker.nsenter`` (conftest.nsenter_hosts).

One story in file order: v1 deployed (changed), the same again (ok), v2 under --check (changed reported, nothing on
the host touched), under --check --diff (the unit file's diff), for real with --diff; a broken v3 that fails with
ops's reason and reports changed (ops rolled back to v2); a redeploy and a removal under --check --diff; the removal.
"""

import hashlib
import json
import os
import re

import pytest

from conftest import (OPS_HOME, PATH, PLAYBOOKS, POD, UNIT, assert_running, current_version, description,
                      nsenter_hosts, ops_list, playbook_on_machine, run_on_machine, show_run, task_results, unit_state)

HOST = "m1"
COLLECTIONS = os.path.join(PLAYBOOKS, "collections")
MODULE = os.path.join(COLLECTIONS, "ansible_collections", "ops", "pod", "plugins", "modules", "ops_pod.py")
UNIT_PATH = "/etc/systemd/system/" + UNIT


@pytest.fixture(scope="module")
def host(ansible_bin, collection, workdir, pyz, bundles):
    with nsenter_hosts(ansible_bin, os.path.join(workdir, "module"), (HOST,)) as hosts:
        yield hosts


def container(host):
    return host[0][HOST]


def play(host, ansible_bin, pyz, name, *extra, flags=()):
    return playbook_on_machine(host, ansible_bin, pyz, name, extra, flags)


def host_state(c):
    """What --check must leave alone: every file, directory and link under ops's and systemd's trees and where
    the playbooks keep ops.pyz and bundles (content and mtime), the unit's state and PID, and scratch directories
    left in /tmp."""
    tree = {}
    for top in ("/etc/ops", "/etc/systemd/system", "/var/lib/ops", OPS_HOME):
        base = c.path(top)
        for d, dirs, files in os.walk(base):
            for n in dirs + files:
                p = os.path.join(d, n)
                rel = os.path.relpath(p, base)
                if os.path.islink(p):
                    tree[top, rel] = "-> " + os.readlink(p)
                elif os.path.isfile(p):
                    with open(p, "rb") as f:
                        tree[top, rel] = (hashlib.sha256(f.read()).hexdigest(), os.stat(p).st_mtime_ns)
                else:
                    tree[top, rel] = "dir"
    scratch = sorted(n for n in os.listdir(c.path("/tmp")) if n.endswith(".ops-check"))
    return tree, unit_state(c), scratch


def changes(before, after):
    """What differs between two host_state() readings, for the assertion message."""
    keys = set(before[0]) | set(after[0])
    return (sorted((k, before[0].get(k), after[0].get(k)) for k in keys if before[0].get(k) != after[0].get(k)),
            before[1:], after[1:])


def unit_text(bundle):
    with open(os.path.join(bundle, UNIT)) as f:
        return f.read()


def failure(output):
    """The module's result printed for the failed task (``fatal: [HOST]: FAILED! => {...}``)."""
    m = re.search(r"^fatal: \[%s\]: FAILED! => (\{.*\})$" % HOST, output, re.M)
    assert m, "no failed task in the output:\n" + output[-6000:]
    return json.loads(m.group(1))


def test_deploy_v1_reports_changed(host, ansible_bin, pyz, bundles):
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[1])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] >= 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("changed", HOST)], show_run(r)
    assert_running(container(host), 1)


def test_rerun_is_ok_and_changes_nothing(host, ansible_bin, pyz, bundles):
    c = container(host)
    pid = assert_running(c, 1)
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[1])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 0 and hosts[HOST]["failed"] == 0, show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("ok", HOST)], show_run(r)
    assert assert_running(c, 1) == pid          # not restarted


def test_check_reports_the_change_and_touches_nothing(host, ansible_bin, pyz, bundles):
    c = container(host)
    before = host_state(c)
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[2], flags=["--check"])
    assert r.returncode == 0, show_run(r)
    # exactly one change reported, by ops's plan: the copies into the scratch directory do not count
    assert hosts[HOST]["changed"] == 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("changed", HOST)], show_run(r)
    assert "--- before" not in r.stdout, show_run(r)          # no diff without --diff
    after = host_state(c)
    assert after == before, changes(before, after)          # files, unit, PID, /tmp: as they were
    assert_running(c, 1)
    assert c.read_file(UNIT_PATH) == unit_text(bundles[1])
    assert not c.exists("/etc/ops/pods/%s/2" % POD) and not c.exists("%s/bundles/%s/2" % (OPS_HOME, POD))


def test_check_diff_shows_ops_diff_of_the_current_version_against_the_bundle(host, ansible_bin, pyz, bundles):
    c = container(host)
    before = host_state(c)
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[2], flags=["--check", "--diff"])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 1, show_run(r)
    out = r.stdout
    # ops diff's unified diff: the current version's stored unit against the bundle copied to the scratch dir
    assert "--- %s:1/%s\n" % (POD, UNIT) in out, show_run(r)
    assert re.search(r"^\+\+\+ /tmp/\S+\.ops-check/bundles/%s/2/%s$" % (POD, UNIT), out, re.M), show_run(r)
    for line in ("-Description=" + description(1), "+Description=" + description(2),
                 "-ExecStart=/bin/sleep infinity"):
        assert "\n%s\n" % line in out, show_run(r)
    assert "\n WantedBy=multi-user.target\n" in out, show_run(r)     # context: an unchanged line
    after = host_state(c)
    assert after == before, changes(before, after)
    assert_running(c, 1)


def test_diff_deploy_changes_the_host_and_shows_what_changed(host, ansible_bin, pyz, bundles):
    c = container(host)
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[2], flags=["--diff"])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] >= 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("changed", HOST)], show_run(r)
    assert "--- %s:1/%s\n+++ %s/bundles/%s/2/%s\n" % (POD, UNIT, OPS_HOME, POD, UNIT) in r.stdout, show_run(r)
    assert "\n+Description=%s\n" % description(2) in r.stdout, show_run(r)
    assert_running(c, 2)
    assert c.read_file(UNIT_PATH) == unit_text(bundles[2])


def test_broken_version_fails_with_the_reason_and_reports_the_rollback_as_changed(host, ansible_bin, pyz, bundles):
    c = container(host)
    pid_before = assert_running(c, 2)
    r, hosts = play(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[3])
    assert r.returncode != 0, show_run(r)
    # the recap counts the bundle copied to the host; a failed task counts as failed only (Ansible's rule), so
    # that ops's rollback changed the host is in the task's result
    assert hosts[HOST]["failed"] == 1 and hosts[HOST]["changed"] == 1, show_run(r)
    assert task_results(r.stdout, "ops deploy") == [("fatal", HOST)], show_run(r)
    result = failure(r.stdout)
    assert re.match(r"ops: error: anstest\.service: .*rolled back to 2$", result["msg"]), result["msg"]
    assert result["changed"] is True and result["rolled_back"] is True and result["exit_code"] == 1, result
    assert result["ops_result"]["changed"] is True and result["ops_result"]["rolled_back"] is True, result
    # what ops did, its rollback included, is in the task's result
    assert any(a.get("rollback") for a in result["actions"]), result["actions"]
    # the unit both versions have: restarted by the switch (and again by the rollback)
    assert any(a["action"] == "restart" and not a.get("rollback") for a in result["actions"]), result["actions"]
    assert result["previous"] == 2 and result["pod"] == {"name": POD, "version": 3}, result
    assert assert_running(c, 2) != pid_before         # v2 was started again by the rollback
    assert c.read_file(UNIT_PATH) == unit_text(bundles[2])
    versions = ops_list(c)
    assert versions[3]["outcome"] == "failed" and versions[2]["current"]


def test_check_diff_of_a_redeploy_compares_with_the_stored_version(host, ansible_bin, pyz, bundles):
    c = container(host)
    before = host_state(c)
    r, hosts = play(host, ansible_bin, pyz, "redeploy-previous.yml", "ops_pod=" + POD, "ops_version=1",
                    flags=["--check", "--diff"])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 1, show_run(r)
    assert task_results(r.stdout, "ops redeploy") == [("changed", HOST)], show_run(r)
    assert "--- %s:2/%s\n+++ %s:1/%s\n" % (POD, UNIT, POD, UNIT) in r.stdout, show_run(r)
    assert "\n-Description=%s\n+Description=%s\n" % (description(2), description(1)) in r.stdout, show_run(r)
    after = host_state(c)
    assert after == before, changes(before, after)
    assert_running(c, 2)


def test_check_diff_of_the_removal_shows_the_unit_file_going(host, ansible_bin, pyz, bundles):
    c = container(host)
    before = host_state(c)
    r, hosts = play(host, ansible_bin, pyz, "undeploy.yml", "ops_pod=" + POD, "ops_remove=true",
                    flags=["--check", "--diff"])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 1, show_run(r)
    assert "\n%s: removed\n" % UNIT in r.stdout, show_run(r)
    after = host_state(c)
    assert after == before, changes(before, after)
    assert_running(c, 2)


def test_undeploy_removes_the_pod_and_a_rerun_is_ok(host, ansible_bin, pyz, bundles):
    c = container(host)
    r, hosts = play(host, ansible_bin, pyz, "undeploy.yml", "ops_pod=" + POD, "ops_remove=true")
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert task_results(r.stdout, "ops undeploy") == [("changed", HOST)], show_run(r)
    assert unit_state(c)[0] == "inactive"
    assert not c.exists(UNIT_PATH) and current_version(c) is None
    assert not c.exists("/etc/ops/pods/" + POD)
    r, hosts = play(host, ansible_bin, pyz, "undeploy.yml", "ops_pod=" + POD, "ops_remove=true")
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 0 and hosts[HOST]["failed"] == 0, show_run(r)


def test_the_module_documents_every_option(ansible_bin):
    # ansible-doc parses DOCUMENTATION, EXAMPLES and RETURN; the options it lists are the ones the module takes
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/root", "ANSIBLE_NOCOLOR": "1"}
    env["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS
    r = run_on_machine([os.path.join(ansible_bin, "ansible-doc"), "--json", "ops.pod.ops_pod"],
                       env=env, cwd="/", timeout=120)
    assert r.returncode == 0, show_run(r)
    doc = json.loads(r.stdout)["ops.pod.ops_pod"]
    assert "ops --dry-run --json" in " ".join(doc["doc"]["description"])
    with open(MODULE) as f:
        source = f.read()
    with open(os.path.join(os.path.dirname(os.path.dirname(MODULE)), "module_utils", "ops_cli.py")) as f:
        shared = f.read()
    spec = set(re.findall(r"^ {8}(\w+)=dict\(", source, re.M)) | set(re.findall(r"^ {4}(\w+)=dict\(", shared, re.M))
    assert spec and set(doc["doc"]["options"]) == spec
    assert doc["examples"] and {"rolled_back", "exit_code", "diff"} <= set(doc["return"])
