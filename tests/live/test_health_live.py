"""The pod's health check on a real systemd, as one story (in file order, one container):

v1 with an http check passes -> v2 whose check wants another status rolls back to v1, still serving ->
v3 with an exec check passes -> v4 whose exec check fails rolls back to v3 -> cleanup keeps the rollback
target (1) and drops the failed versions -> `redeploy probe` skips failed versions -> a pinned version
survives cleanup and `undeploy --remove` until it is unpinned.
"""

import pytest

from .conftest import (copy_bundle, describe, http_get, is_active, last_line, list_pods, make_bundle, ops,
                       ops_json, readlink, service)

URL = "http://127.0.0.1:8091/"
B = "/root/bundles/probe"

HTTP_OK = {"http": URL, "status": 200, "retries": 10, "interval": 0.3}
EXEC_OK = {"exec": ["/bin/sh", "-c", 'test "$(cat /run/probe-version)" = "$POD_VERSION"'], "timeout": 5}
EXEC_BAD = {"exec": ["/bin/sh", "-c", "echo the cache is cold; exit 3"], "timeout": 5}
HEALTH = {1: HTTP_OK, 2: dict(HTTP_OK, status=204, retries=1), 3: EXEC_OK, 4: EXEC_BAD}


def probe_bundle(directory, version):
    web = service("probe v%d" % version,
                  "/bin/sh -c 'echo $$POD_VERSION > /run/probe-version && exec /usr/bin/python3 -m http.server "
                  "--bind 127.0.0.1 --directory $$POD_VOLUMES/www 8091'")
    return make_bundle(directory, "probe", version, units=[("probe-web.service", web, True, None)],
                       volumes=[("www", {"index.html": b"probe v%d\n" % version})],
                       extra_ops={"health": HEALTH[version]})


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("probe")
    for v in HEALTH:
        copy_bundle(container, probe_bundle(str(base / str(v)), v), "%s/%d" % (B, v))
    return B


def serves(c, version):
    r = http_get(c, URL)
    assert r.returncode == 0 and r.stdout == "probe v%d\n" % version, describe(r)


def test_a_passing_http_check(container, bundles):
    c = container
    r = ops(c, "--dry-run", "deploy", B + "/1", check=0)
    assert "  health-check GET %s, expect 200" % URL in r.stdout.splitlines(), describe(r)
    r = ops(c, "deploy", B + "/1", check=0)
    assert last_line(r.stdout) == "deploy probe 1: changed", describe(r)
    assert "health check passed (GET %s, expect 200)" % URL in r.stderr, describe(r)
    serves(c, 1)


def test_a_check_answered_with_another_status_rolls_back(container, bundles):
    c = container
    obj, r = ops_json(c, "deploy", B + "/2", check=1)
    assert obj["ok"] is False and obj["rolled_back"] is True, describe(r)
    assert obj["error"] == ("health check of probe 2: GET %s answered 200 OK, expected 204 (2 attempts); "
                            "rolled back to 1" % URL), describe(r)
    assert readlink(c, "/etc/ops/current/probe") == "../pods/probe/1"
    assert is_active(c, "probe-web.service") == "active"
    serves(c, 1)
    assert c.read_file("/run/probe-version") == "1\n"
    assert list_pods(c, "probe")[("probe", 2)]["outcome"] == "failed"


def test_a_passing_exec_check(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/3", check=0)
    assert last_line(r.stdout) == "deploy probe 3: changed", describe(r)
    assert "health check passed (exec /bin/sh -c" in r.stderr, describe(r)
    serves(c, 3)
    # an unchanged re-deploy does not switch, so it runs no check
    r = ops(c, "deploy", B + "/3", check=0)
    assert last_line(r.stdout) == "deploy probe 3: unchanged" and "health check" not in r.stderr, describe(r)


def test_a_failing_exec_check_rolls_back(container, bundles):
    c = container
    r = ops(c, "deploy", B + "/4", check=1)
    assert ("ops: error: health check of probe 4: /bin/sh: exited 3: the cache is cold (1 attempt); "
            "rolled back to 3") in r.stderr.splitlines(), describe(r)
    assert readlink(c, "/etc/ops/current/probe") == "../pods/probe/3"
    serves(c, 3)
    assert list_pods(c, "probe")[("probe", 4)]["outcome"] == "failed"


def test_cleanup_keeps_the_rollback_target_and_redeploy_goes_there(container, bundles):
    c = container
    r = ops(c, "cleanup", "--keep", "0", "probe", check=0)
    assert r.stdout.splitlines() == ["cleanup probe: removed 2 4; kept 1 (rollback target)"], describe(r)
    assert sorted(v for (_, v) in list_pods(c, "probe")) == [1, 3]
    r = ops(c, "redeploy", "probe", check=0)
    assert last_line(r.stdout) == "redeploy probe 1: changed", describe(r)
    assert "health check passed (GET %s" % URL in r.stderr, describe(r)
    serves(c, 1)


def test_a_pinned_version_stays_until_unpinned(container, bundles):
    c = container
    r = ops(c, "pin", "probe:3", check=0)
    assert last_line(r.stdout) == "pin probe 3: changed", describe(r)
    assert list_pods(c, "probe")[("probe", 3)]["pinned"] is True
    r = ops(c, "cleanup", "--keep", "0", check=0)
    assert "cleanup probe: unchanged; kept 3 (pinned)" in r.stdout.splitlines(), describe(r)
    r = ops(c, "undeploy", "probe", "--remove", check=2)
    assert "ops unpin probe:3" in r.stderr, describe(r)
    serves(c, 1)
    ops(c, "unpin", "probe:3", check=0)
    r = ops(c, "undeploy", "probe", "--remove", check=0)
    assert last_line(r.stdout) == "undeploy probe 1: changed", describe(r)
    assert not [k for k in list_pods(c) if k[0] == "probe"]
    assert is_active(c, "probe-web.service") in ("inactive", "failed")


def test_a_check_failing_because_the_server_exited_after_the_settle_gives_the_servers_words(container,
                                                                                           tmp_path_factory):
    # a server that takes longer to fail than the settle time (a slow start, a loaded host): the settle sees it
    # up, then the check fails because the server has gone; why it went is in its own lines, not the check's
    c = container
    late = service("late: fails a second after start",
                   "/bin/sh -c 'sleep 1; echo late: fatal: cannot parse /etc/late.conf line 3 >&2; exit 1'")
    d = make_bundle(str(tmp_path_factory.mktemp("late") / "late"), "late", 1,
                    units=[("late.service", late, True, None)],
                    extra_ops={"health": {"exec": ["/bin/sh", "-c", "exit 1"], "retries": 3, "interval": 1}})
    copy_bundle(c, d, "/root/bundles/late")
    obj, r = ops_json(c, "deploy", "/root/bundles/late", check=1)
    assert obj["reason"]["unit"] == "late.service", describe(r)
    assert obj["error"].startswith("late.service: failed after start, its health check failed: "), describe(r)
    # the unit's journal, not the check's output (the server's own line is there once journald has stored it)
    assert "late.service: Main process exited, code=exited, status=1/FAILURE" in obj["error"], describe(r)
    assert "no error output" not in obj["error"] and "rolled back to nothing" in obj["error"], describe(r)
    assert list_pods(c, "late")[("late", 1)]["reason"]["unit"] == "late.service"
