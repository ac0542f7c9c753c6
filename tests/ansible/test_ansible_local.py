"""ansible-playbook runs inside a live systemd container (``-i localhost, -c local``) with the playbooks of
examples/ansible: its ops_pod module runs ops.pyz on that host.

The tests run in file order as one story on one container: deploy v1, the same again, v2, a broken v3 that fails
the play and leaves v2 running, then redeploy-previous.yml back to v1.
"""

import json
import os
import re

import pytest

from conftest import (OPS_HOME, PATH, PLAYBOOK_TIMEOUT, POD, REPO, assert_running, boot, ops_list, poweroff_all,
                      recap, show_run)

HOST = "localhost"


@pytest.fixture(scope="module")
def host(ansible_bin, venv_binds, workdir, pyz, bundles):
    c = boot(binds_ro=venv_binds + (workdir,))
    try:
        yield c
    finally:
        poweroff_all([c])


def playbook(host, ansible_bin, pyz, name, *extra, cwd="/root"):
    """Run ``ansible-playbook`` inside the container, in ``cwd``, on examples/ansible/NAME (seen there under /src)."""
    argv = [os.path.join(ansible_bin, "ansible-playbook"), "-i", HOST + ",", "-c", "local",
            "-e", "ansible_python_interpreter=/usr/bin/python3", "-e", "ops_pyz=" + pyz]
    for e in extra:
        argv += ["-e", e]
    argv.append("/src/examples/ansible/" + name)
    env = {"HOME": "/root", "LANG": "C.UTF-8", "PATH": PATH, "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0"}
    r = host.run(argv, env=env, timeout=PLAYBOOK_TIMEOUT, cwd=cwd)
    assert "PLAY RECAP" in r.stdout, show_run(r)
    hosts, lines = recap(r.stdout)
    print("\n$ ansible-playbook %s %s (inside %s): exit %d\n%s" % (name, " ".join(extra), host.name, r.returncode,
                                                                  "\n".join(lines)))
    return r, hosts


def ops_history(c):
    r = c.run(["/usr/bin/python3", OPS_HOME + "/ops.pyz", "--json", "history", POD],
              env={"PATH": PATH, "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["history"]


def test_the_playbooks_are_the_repositorys(host):
    # the container sees this checkout at /src: the playbooks run are the ones under test
    with open(os.path.join(REPO, "examples", "ansible", "deploy.yml")) as f:
        assert host.read_file("/src/examples/ansible/deploy.yml") == f.read()


def test_first_deploy_reports_changed_and_the_unit_runs(host, ansible_bin, pyz, bundles):
    r, hosts = playbook(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[1])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] >= 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert re.search(r"TASK \[ops deploy\] \*+\nchanged: \[%s\]" % HOST, r.stdout), show_run(r)
    assert_running(host, 1)


def test_second_run_changes_nothing(host, ansible_bin, pyz, bundles):
    pid_before = assert_running(host, 1)
    r, hosts = playbook(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[1])
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 0 and hosts[HOST]["failed"] == 0, show_run(r)
    assert re.search(r"TASK \[ops deploy\] \*+\nok: \[%s\]" % HOST, r.stdout), show_run(r)
    assert assert_running(host, 1) == pid_before      # not restarted


def test_next_version_given_as_a_relative_path(host, ansible_bin, pyz, bundles):
    # ops_bundle relative to the directory ansible-playbook runs in, as a user types it
    base = os.path.dirname(bundles[2])
    r, hosts = playbook(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + os.path.relpath(bundles[2], base),
                        cwd=base)
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] >= 1 and hosts[HOST]["failed"] == 0, show_run(r)
    assert_running(host, 2)


def test_broken_version_fails_the_play_and_the_previous_keeps_running(host, ansible_bin, pyz, bundles):
    pid_before = assert_running(host, 2)
    r, hosts = playbook(host, ansible_bin, pyz, "deploy.yml", "ops_bundle=" + bundles[3])
    assert r.returncode != 0, show_run(r)
    assert hosts[HOST]["failed"] == 1, show_run(r)
    # the failure shows ops's own error line (from its stderr), which names the unit and the rollback
    assert re.search(r'"msg": "ops: error: anstest\.service: [^"]*rolled back to 2"', r.stdout), show_run(r)
    assert_running(host, 2)
    assert assert_running(host, 2) != pid_before     # v2 was started again by the rollback
    versions = ops_list(host)
    assert versions[3]["outcome"] == "failed" and not versions[3]["current"]
    assert versions[2]["current"] and versions[2]["outcome"] == "ok"


def test_redeploy_previous(host, ansible_bin, pyz, bundles):
    r, hosts = playbook(host, ansible_bin, pyz, "redeploy-previous.yml", "ops_pod=" + POD)
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] >= 1 and hosts[HOST]["failed"] == 0, show_run(r)
    pid = assert_running(host, 1)
    # run again as it was: v1 was reached by stepping back, so the play does not step back again (it would go to
    # no version at all: ops would refuse and the play fail)
    r, hosts = playbook(host, ansible_bin, pyz, "redeploy-previous.yml", "ops_pod=" + POD)
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 0 and hosts[HOST]["failed"] == 0, show_run(r)
    assert assert_running(host, 1) == pid
    assert [e["command"] for e in ops_history(host)].count("redeploy") == 1
    # naming the version makes it idempotent
    r, hosts = playbook(host, ansible_bin, pyz, "redeploy-previous.yml", "ops_pod=" + POD, "ops_version=1")
    assert r.returncode == 0, show_run(r)
    assert hosts[HOST]["changed"] == 0 and hosts[HOST]["failed"] == 0, show_run(r)
    assert_running(host, 1)
