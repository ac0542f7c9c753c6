"""The hello example's life on a real systemd and a real rkt, as one story (the tests run in this order, in one
container; without a real rkt, $OPS_TEST_RKT, the module fails saying why; OPS_TEST_RKT=0 skips it):

deploy v1 -> the same again (unchanged) -> a stopped unit, then a removed unit file, are converged -> v2 ->
the same version with other content is refused -> broken v3 rolls back ->
v4 with an invalid unit rolls back -> redeploy 1 from the store -> redeploy without a version -> list ->
undeploy -> undeploy --remove.
"""

import json
import os
import shutil

import pytest

from tests.support import realrkt

from .conftest import (copy_bundle, describe, exists, http_get, is_active, is_enabled, last_line,
                       list_pods, ops, ops_json, readlink, show, unit_files, wait_for)

B = "/root/bundles/hello"
PREPARED = {}      # "dir": examples/hello with its image built and signed (tests/support/realrkt.prepare_hello)

V1_UNITS = ["hello-web.service", "hello-worker@1.service", "hello-worker@2.service", "hello-stamp.service"]
V2_UNITS = ["hello-web.service", "hello-worker@0.service", "hello-worker@1.service", "hello-worker@2.service",
            "hello-tick.timer"]


def example(version, name):
    with open(os.path.join(PREPARED["dir"], "v%d" % version, name), "rb") as f:
        return f.read()


def environment(c, unit):
    """The unit's Environment= as {KEY: VALUE}, as systemd reports it."""
    return dict(item.split("=", 1) for item in show(c, unit, "Environment").split() if "=" in item)


def pod_env(version):
    return {
        "POD_NAME": "hello",
        "POD_VERSION": str(version),
        "POD_MANIFEST": "/etc/ops/pods/hello/%d/manifest.json" % version,
        "POD_VOLUMES": "/var/lib/ops/volumes/hello/%d" % version,
    }


def assert_running(c, units):
    for u in units:
        assert is_active(c, u) == "active", "%s: %s" % (u, c.run(["systemctl", "status", "--no-pager", u]).stdout)
        assert is_enabled(c, u) == "enabled", u


def assert_gone(c, unit):
    """Stopped, disabled and its file and drop-in removed."""
    assert is_active(c, unit) in ("inactive", "failed"), unit
    assert is_enabled(c, unit) != "enabled", unit
    assert not exists(c, "/etc/systemd/system/" + unit)
    assert not exists(c, "/etc/systemd/system/%s.d/50-ops.conf" % unit)
    assert not exists(c, "/etc/systemd/system/multi-user.target.wants/" + unit)


def assert_serves(c, version):
    r = http_get(c, "http://127.0.0.1:8080/")
    assert r.returncode == 0, describe(r)
    assert "<h1>hello, version %d</h1>" % version in r.stdout, r.stdout


def worker_says(c, instance):
    path = "/run/hello-worker-%s.txt" % instance
    wait_for(lambda: exists(c, path), timeout=5)
    return c.read_file(path).strip() if exists(c, path) else None


@pytest.fixture(scope="module")
def bundles(real_rkt, container, tmp_path_factory):
    realrkt.install(container, *real_rkt)
    hello, _ = realrkt.prepare_hello(container, tmp_path_factory.mktemp("hello"), B)
    PREPARED["dir"] = hello
    # v4: v2 with a web unit systemd refuses to load (ExecStart= must be an absolute path or a plain name).
    d = str(tmp_path_factory.mktemp("hello-v4") / "v4")
    shutil.copytree(os.path.join(hello, "v2"), d)
    with open(os.path.join(d, "pod.json")) as f:
        manifest = json.load(f)
    ann = json.loads(manifest["annotations"][0]["value"])
    ann["version"] = 4
    manifest["annotations"][0]["value"] = json.dumps(ann)
    with open(os.path.join(d, "pod.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    with open(os.path.join(d, "hello-web.service"), "w") as f:
        f.write("[Unit]\nDescription=hello v4: an invalid unit\n\n[Service]\nExecStart=relative/path --serve\n\n"
                "[Install]\nWantedBy=multi-user.target\n")
    copy_bundle(container, d, B + "/v4")
    # v2 again under the same version number but with different content: must be refused.
    d = str(tmp_path_factory.mktemp("hello-v2-changed") / "v2")
    shutil.copytree(os.path.join(hello, "v2"), d)
    with open(os.path.join(d, "hello-tick.timer"), "a") as f:
        f.write("# changed after 2 was deployed\n")
    copy_bundle(container, d, B + "/v2-changed")
    return B


def test_deploy_v1(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy hello 1: changed", describe(r)

    assert_running(c, V1_UNITS)
    assert is_active(c, "hello-worker@0.service") != "active"          # not an instance of v1

    # unit files installed under their own names, each service with the ops drop-in
    assert c.read_file("/etc/systemd/system/hello-web.service", binary=True) == example(1, "hello-web.service")
    assert c.read_file("/etc/systemd/system/hello-worker@.service", binary=True) == \
        example(1, "hello-worker@.service")
    assert exists(c, "/etc/systemd/system/hello-web.service.d/50-ops.conf")
    assert environment(c, "hello-web.service") == pod_env(1)
    for i in (1, 2):
        assert environment(c, "hello-worker@%d.service" % i) == pod_env(1)
        # the environment reaches the process itself
        assert worker_says(c, i) == "worker %d of hello version 1" % i
    assert c.read_file("/run/hello-stamp.txt").startswith("hello 1 started at ")

    # the volume is unpacked for this version, and the web service serves it
    page = c.read_file("/var/lib/ops/volumes/hello/1/www/index.html")
    assert "<h1>hello, version 1</h1>" in page
    assert_serves(c, 1)

    # the store: pod.json byte-identical, units, a concrete manifest.json, the current link
    assert c.read_file("/etc/ops/pods/hello/1/pod.json", binary=True) == example(1, "pod.json")
    assert c.read_file("/etc/ops/pods/hello/1/units/hello-web.service", binary=True) == \
        example(1, "hello-web.service")
    manifest = json.loads(c.read_file("/etc/ops/pods/hello/1/manifest.json"))
    assert {"name": "www", "kind": "host", "readOnly": False, "source": "/var/lib/ops/volumes/hello/1/www"} in manifest["volumes"]
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/1"
    assert not exists(c, "/var/lib/ops/journal/hello.json")


def test_same_deploy_again_is_unchanged_and_restarts_nothing(container, bundles):
    c = container
    pids = {u: show(c, u, "MainPID") for u in ("hello-web.service", "hello-worker@1.service")}
    assert all(p != "0" for p in pids.values()), pids
    r = ops(c, "-v", "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy hello 1: unchanged", describe(r)
    assert {u: show(c, u, "MainPID") for u in pids} == pids
    # -v shows every external command: none of them changes anything
    commands = [l[2:].split() for l in r.stderr.splitlines() if l.startswith("+ ")]
    assert commands, describe(r, "-v lists the commands run")
    verbs = {(cmd[0], next((a for a in cmd[1:] if not a.startswith("-")), "")) for cmd in commands}
    mutating = {v for v in verbs if v == ("rkt", "fetch") or
                (v[0] == "systemctl" and v[1] not in ("is-active", "is-enabled", "is-failed", "show", "status"))}
    assert not mutating, describe(r, "mutating commands on an unchanged deploy: %s" % sorted(mutating))
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/1"


def test_json_deploy_unchanged(container, bundles):
    obj, r = ops_json(container, "deploy", B + "/v1", check=0)
    assert obj["ok"] is True and obj["changed"] is False, describe(r)
    assert obj["command"] == "deploy"
    assert obj["pod"] == {"name": "hello", "version": 1}
    assert obj["rolled_back"] is False


def test_unit_stopped_by_hand_is_started_again(container, bundles):
    c = container
    c.run(["systemctl", "stop", "hello-worker@2.service"], check=True)
    assert is_active(c, "hello-worker@2.service") == "inactive"
    r = ops(c, "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy hello 1: changed", describe(r)
    assert_running(c, V1_UNITS)
    assert worker_says(c, 2) == "worker 2 of hello version 1"


def test_unit_file_removed_by_hand_is_put_back(container, bundles):
    c = container
    c.run(["systemctl", "disable", "--now", "hello-stamp.service"], check=True)
    c.remove("/etc/systemd/system/hello-stamp.service")
    c.run(["systemctl", "daemon-reload"], check=True)
    r = ops(c, "deploy", B + "/v1", check=0)
    assert last_line(r.stdout) == "deploy hello 1: changed", describe(r)
    assert c.read_file("/etc/systemd/system/hello-stamp.service", binary=True) == example(1, "hello-stamp.service")
    assert_running(c, V1_UNITS)
    assert environment(c, "hello-stamp.service") == pod_env(1)


def test_deploy_v2(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/v2", check=0)
    assert last_line(r.stdout) == "deploy hello 2: changed", describe(r)

    assert_running(c, V2_UNITS)
    # the unit only v1 had: stopped, disabled, its file removed
    assert_gone(c, "hello-stamp.service")
    # start: false -> installed, not enabled; the timer runs it
    assert exists(c, "/etc/systemd/system/hello-tick.service")
    assert is_enabled(c, "hello-tick.service") != "enabled"
    log = wait_for(lambda: exists(c, "/run/hello-tick.log") and c.read_file("/run/hello-tick.log"), timeout=10)
    assert log and "tick from hello 2 at " in log, log

    # a count of instances: 0, 1, 2, all running v2
    for i in (0, 1, 2):
        assert environment(c, "hello-worker@%d.service" % i) == pod_env(2)
        assert worker_says(c, i) == "worker %d of hello version 2" % i
    assert environment(c, "hello-web.service") == pod_env(2)
    assert c.read_file("/etc/systemd/system/hello-web.service", binary=True) == example(2, "hello-web.service")
    assert_serves(c, 2)

    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/2"
    # v1 stays stored, with its own volume
    assert exists(c, "/etc/ops/pods/hello/1/pod.json")
    assert "<h1>hello, version 1</h1>" in c.read_file("/var/lib/ops/volumes/hello/1/www/index.html")
    assert "<h1>hello, version 2</h1>" in c.read_file("/var/lib/ops/volumes/hello/2/www/index.html")


def test_same_version_with_other_content_is_refused(container, bundles):
    c = container
    pid = show(c, "hello-web.service", "MainPID")
    r = ops(c, "deploy", B + "/v2-changed", check=2)
    assert r.stderr.startswith("ops: error: ") or "\nops: error: " in r.stderr, describe(r)
    assert c.read_file("/etc/ops/pods/hello/2/units/hello-tick.timer", binary=True) == example(2, "hello-tick.timer")
    assert show(c, "hello-web.service", "MainPID") == pid
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/2"


def assert_back_on_v2(c):
    assert_running(c, V2_UNITS)
    assert environment(c, "hello-web.service") == pod_env(2)
    assert c.read_file("/etc/systemd/system/hello-web.service", binary=True) == example(2, "hello-web.service")
    assert_serves(c, 2)
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/2"
    assert not exists(c, "/var/lib/ops/journal/hello.json")


def test_broken_v3_is_rolled_back(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/v3", check=1, settle=None)      # caught by the default settle
    assert "rolled back to 2" in r.stderr, describe(r)
    assert "hello-web.service" in r.stderr, describe(r, "the failing unit is named")
    assert "broken on purpose" in r.stderr, describe(r, "the failing unit's journal lines are shown")
    assert_back_on_v2(c)
    pods = list_pods(c, "hello")
    assert pods[("hello", 3)]["outcome"] == "failed" and pods[("hello", 3)]["current"] is False
    assert pods[("hello", 2)]["outcome"] == "ok" and pods[("hello", 2)]["current"] is True


def test_unit_systemd_cannot_load_is_rolled_back(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/v4", check=1)
    assert "rolled back to 2" in r.stderr, describe(r)
    assert_back_on_v2(c)
    pods = list_pods(c, "hello")
    assert pods[("hello", 4)]["outcome"] == "failed" and pods[("hello", 4)]["current"] is False
    assert pods[("hello", 2)]["current"] is True


def test_redeploy_1_from_the_store_without_the_bundle(container, bundles):
    c = container
    c.remove(B + "/v1")
    assert not exists(c, B + "/v1")
    inode = os.stat(c.path("/var/lib/ops/volumes/hello/1/www/index.html")).st_ino

    r = ops(c, "redeploy", "hello:1", check=0)
    assert last_line(r.stdout) == "redeploy hello 1: changed", describe(r)
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/1"
    assert_running(c, V1_UNITS)
    for unit in ("hello-worker@0.service", "hello-tick.timer", "hello-tick.service"):
        assert_gone(c, unit)
    assert environment(c, "hello-web.service") == pod_env(1)
    assert worker_says(c, 1) == "worker 1 of hello version 1"
    assert_serves(c, 1)
    # the version's own volume directory, not unpacked again
    assert os.stat(c.path("/var/lib/ops/volumes/hello/1/www/index.html")).st_ino == inode


def test_redeploy_without_version_with_nothing_older_is_refused(container, bundles):
    c = container
    pid = show(c, "hello-web.service", "MainPID")
    r = ops(c, "redeploy", "hello", check=2)
    assert "ops: error: " in r.stderr, describe(r)
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/1"
    assert show(c, "hello-web.service", "MainPID") == pid


def test_redeploy_without_version_goes_one_back(container, bundles):
    c = container
    r = ops(c, "redeploy", "hello:2", check=0)
    assert last_line(r.stdout) == "redeploy hello 2: changed", describe(r)
    assert_back_on_v2(c)
    r = ops(c, "redeploy", "hello", check=0)
    assert last_line(r.stdout) == "redeploy hello 1: changed", describe(r)
    assert readlink(c, "/etc/ops/current/hello") == "../pods/hello/1"
    assert_running(c, V1_UNITS)
    assert_serves(c, 1)


def test_list(container, bundles):
    c = container
    pods = list_pods(c)
    hello = {k: v for k, v in pods.items() if k[0] == "hello"}
    assert sorted(hello) == [("hello", 1), ("hello", 2), ("hello", 3), ("hello", 4)]
    assert [v for (n, v), p in sorted(hello.items()) if p["current"]] == [1]
    assert {v: p["outcome"] for (n, v), p in hello.items()} == {1: "ok", 2: "ok", 3: "failed", 4: "failed"}
    for p in hello.values():
        assert p["interrupted"] is False
        assert p["deployed_at"]
    r = ops(c, "list", check=0)
    lines = [l for l in r.stdout.splitlines() if "hello" in l]
    assert len(lines) == 4, describe(r)


def test_undeploy_keeps_stored_versions(container, bundles):
    c = container
    r = ops(c, "undeploy", "hello", check=0)
    assert last_line(r.stdout) == "undeploy hello 1: changed", describe(r)
    for unit in V1_UNITS:
        assert_gone(c, unit)
    assert unit_files(c, "hello") == []          # the template hello-worker@.service and every drop-in too
    assert not exists(c, "/etc/ops/current/hello")
    http = http_get(c, "http://127.0.0.1:8080/", wait=0)
    assert http.returncode != 0, http.stdout
    for v in (1, 2):
        assert exists(c, "/etc/ops/pods/hello/%d/pod.json" % v)
        assert exists(c, "/var/lib/ops/volumes/hello/%d/www/index.html" % v)
    assert sorted(v for (n, v) in list_pods(c, "hello")) == [1, 2, 3, 4]
    assert not any(p["current"] for p in list_pods(c, "hello").values())

    r = ops(c, "undeploy", "hello", check=0)
    assert last_line(r.stdout).startswith("undeploy hello") and last_line(r.stdout).endswith(": unchanged"), \
        describe(r)


def test_undeploy_remove_deletes_everything_of_the_pod(container, bundles):
    c = container
    r = ops(c, "undeploy", "hello", "--remove", check=0)
    assert last_line(r.stdout).startswith("undeploy hello") and last_line(r.stdout).endswith(": changed"), \
        describe(r)
    assert not exists(c, "/etc/ops/pods/hello")
    assert not exists(c, "/var/lib/ops/volumes/hello")
    assert not exists(c, "/etc/ops/current/hello")
    assert unit_files(c, "hello") == []
    assert not [k for k in list_pods(c) if k[0] == "hello"]

    r = ops(c, "undeploy", "nosuchpod", check=0)
    assert last_line(r.stdout).endswith(": unchanged"), describe(r)
