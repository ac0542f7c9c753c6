"""Guards against a deploy that looks done but is not, on a real systemd: a
crash-looping service, a unit another pod runs, and a version whose rollback
cannot succeed."""

import hashlib
import json

import pytest

from .conftest import (copy_bundle, describe, exists, is_active, list_pods, make_bundle, ops,
                       readlink, service, show, unit_files)


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    d = tmp_path_factory.mktemp("guards")
    sleep = service("loop: steady", "/bin/sleep infinity")
    crash = service("loop: crashes and is restarted", "/bin/sh -c 'sleep 0.2; exit 1'",
                    extra="Restart=always\nRestartSec=300ms\n")
    made = {
        "loop/1": make_bundle(str(d / "loop1"), "loop", 1, units=[("loop-a.service", sleep, True, None)]),
        "loop/2": make_bundle(str(d / "loop2"), "loop", 2, units=[("loop-a.service", crash, True, None)]),
        "owner/1": make_bundle(str(d / "owner1"), "owner", 1,
                               units=[("shared-name.service", sleep, True, None)]),
        "taker/1": make_bundle(str(d / "taker1"), "taker", 1,
                               units=[("taker-own.service", sleep, True, None)]),
        "taker/2": make_bundle(str(d / "taker2"), "taker", 2,
                               units=[("shared-name.service", sleep, True, None)]),
    }
    for key, path in made.items():
        copy_bundle(container, path, "/root/guards/" + key)
    return made


def test_a_crash_looping_service_fails_the_deploy(container, bundles):
    c = container
    ops(c, "deploy", "/root/guards/loop/1", check=0)
    pid = show(c, "loop-a.service", "MainPID")
    r = ops(c, "--settle", "3", "deploy", "/root/guards/loop/2", check=1)
    assert "loop-a.service" in r.stderr and "rolled back to 1" in r.stderr, describe(r)
    assert is_active(c, "loop-a.service") == "active"
    assert show(c, "loop-a.service", "MainPID") not in ("0", pid)   # v1 started again
    assert readlink(c, "/etc/ops/current/loop") == "../pods/loop/1"
    assert list_pods(c, "loop")[("loop", 2)]["outcome"] == "failed"


def test_a_unit_another_pod_runs_is_a_conflict(container, bundles):
    c = container
    ops(c, "deploy", "/root/guards/owner/1", check=0)
    ops(c, "deploy", "/root/guards/taker/1", check=0)
    r = ops(c, "deploy", "/root/guards/taker/2", check=2)
    assert "shared-name.service" in r.stderr and "owner" in r.stderr, describe(r)
    # the owner's unit and drop-in are untouched, and taker stays on 1
    assert "POD_NAME=owner" in c.read_file("/etc/systemd/system/shared-name.service.d/50-ops.conf")
    assert is_active(c, "shared-name.service") == "active"
    assert readlink(c, "/etc/ops/current/taker") == "../pods/taker/1"
    assert not exists(c, "/etc/ops/pods/taker/2")
    # undeploying taker leaves the owner's unit alone
    ops(c, "undeploy", "taker", check=0)
    assert is_active(c, "shared-name.service") == "active"
    assert unit_files(c, "shared-name") == ["shared-name.service", "shared-name.service.d"]


def test_a_journal_that_cannot_be_rolled_back_does_not_block_the_pod(container, bundles):
    """Exit 4 leaves a journal; the next deploy of that pod takes the pod down
    and goes on, and commands about other pods are not blocked."""
    c = container
    ops(c, "deploy", "/root/guards/loop/1", check=0)
    # an interrupted switch towards loop 2 whose `from` version can no longer start (its
    # stored and installed unit, and the digest its state.json records, made so: not an
    # edit of a stored copy, which ops refuses)
    stored = "/etc/ops/pods/loop/1/units/loop-a.service"
    broken = service("loop: broken on disk", "/bin/false")
    c.write_file(stored, broken)
    c.write_file("/etc/systemd/system/loop-a.service", broken)
    state = json.loads(c.read_file("/etc/ops/pods/loop/1/state.json"))
    state["units"]["loop-a.service"] = "sha256:" + hashlib.sha256(broken.encode()).hexdigest()
    c.write_file("/etc/ops/pods/loop/1/state.json", json.dumps(state))
    c.write_file("/var/lib/ops/journal/loop.json",
                 '{"pod": "loop", "from": 1, "to": 2, "command": "deploy"}\n')
    r = ops(c, "undeploy", "taker", check=0)          # another pod: not blocked
    assert "loop" in r.stderr, describe(r)             # ...but warned about
    assert exists(c, "/var/lib/ops/journal/loop.json")
    r = ops(c, "redeploy", "loop:1", check=1)          # 1 is broken: fails, takes loop down
    assert not exists(c, "/var/lib/ops/journal/loop.json"), describe(r)
    assert not exists(c, "/etc/ops/current/loop")
    assert unit_files(c, "loop") == []
    assert is_active(c, "loop-a.service") in ("inactive", "failed")
