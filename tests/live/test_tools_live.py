"""The operator's tools on a real systemd, as one story (in file order, one container): `ops history` of a
pod through deploys, a rolled-back deploy, a redeploy and its removal; `ops logs`; `ops status --health`."""

import pytest

from .conftest import copy_bundle, describe, make_bundle, ops, ops_json, service


def tool_bundle(directory, version, web_exec="/bin/sleep infinity", health=None):
    return make_bundle(directory, "tool", version, units=[
        ("tool-web.service", service("tool web %d" % version, web_exec), True, None),
        ("tool-w@.service", service("tool worker %i", "/bin/sh -c 'echo tool worker %i says hi; "
                                    "sleep infinity'"), True, [1, 2]),
    ], extra_ops={"health": health} if health else None)


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("tools")
    copy_bundle(container, tool_bundle(str(base / "t1"), 1), "/root/bundles/tool/1")
    copy_bundle(container, tool_bundle(str(base / "t2"), 2, web_exec="/bin/sh -c 'echo tool-web has no "
                                       "config; exit 3'"), "/root/bundles/tool/2")
    copy_bundle(container, tool_bundle(str(base / "t3"), 3, health={
        "exec": ["/bin/sh", "-c", "test ! -e /run/tool-sick"], "timeout": 5}), "/root/bundles/tool/3")
    return base


def history(c, check=0):
    obj, r = ops_json(c, "history", "tool", check=check)
    assert obj["command"] == "history", describe(r)
    return [(e["command"], e["from"], e["to"], e["outcome"]) for e in obj["history"]], obj


def test_history(container, bundles):
    c = container
    ops(c, "deploy", "/root/bundles/tool/1", check=0)
    ops(c, "deploy", "/root/bundles/tool/2", check=1)
    ops(c, "--dry-run", "redeploy", "tool:1", check=0)
    got, obj = history(c)
    assert got == [("deploy", None, 1, "ok"), ("deploy", 1, 2, "rolled back")], obj
    assert "tool-web.service" in obj["history"][1]["reason"], obj
    assert all(e["by"] == "root" for e in obj["history"]), obj
    r = ops(c, "history", "tool", check=0)
    assert r.stdout.splitlines()[0].split() == ["AT", "COMMAND", "FROM", "TO", "OUTCOME", "BY", "REASON"], \
        describe(r)
    assert r.stdout.splitlines()[2].split()[1:6] == ["deploy", "1", "2", "rolled", "back"], describe(r)
    ops(c, "history", "other", check=2)


def test_logs(container, bundles):
    c = container
    r = ops(c, "logs", "tool", "-n", "200", check=0)
    for words in ("tool worker 1 says hi", "tool worker 2 says hi"):
        assert words in r.stdout, describe(r)
    r = ops(c, "logs", "tool", "--version", "2", check=0)
    assert "tool-web has no config" in r.stdout, describe(r)
    obj, r = ops_json(c, "logs", "tool", "-n", "200", check=0)
    assert (obj["command"], obj["pod"]) == ("logs", {"name": "tool", "version": 1}), describe(r)
    units = {e.get("_SYSTEMD_UNIT") or e.get("UNIT") for e in obj["entries"]}
    assert {"tool-w@1.service", "tool-w@2.service"} <= units, units
    assert any("tool worker 1 says hi" == e.get("MESSAGE") for e in obj["entries"]), obj["entries"][-5:]
    # -f: journalctl itself follows (ops execs it); a signal ends it
    from .conftest import OPS_ENV
    r = c.run(["timeout", "-s", "INT", "3", "/usr/bin/python3", "-m", "ops", "logs", "tool", "-f", "-n", "5"],
              env=OPS_ENV, timeout=30)
    assert "tool worker" in r.stdout and "Traceback" not in r.stderr, describe(r)
    ops(c, "--json", "logs", "tool", "-f", check=2)
    ops(c, "logs", "nope", check=2)


def test_status_health(container, bundles):
    c = container
    ops(c, "status", "--health", "tool", check=0)
    obj, r = ops_json(c, "status", "--health", "tool", check=0)
    assert obj["pods"][0]["health"]["reason"] == "the pod has no health check", describe(r)
    ops(c, "deploy", "/root/bundles/tool/3", check=0)
    obj, r = ops_json(c, "status", "--health", "tool", check=0)
    assert obj["pods"][0]["health"]["ok"] is True, describe(r)
    c.run(["touch", "/run/tool-sick"], timeout=10)
    try:
        obj, r = ops_json(c, "status", "--health", "tool", check=5)
        pod = obj["pods"][0]
        assert pod["health"]["ok"] is False and not pod["healthy"], describe(r)
        assert any(d["problem"].startswith("health check failed: health check of tool 3")
                   for d in pod["drift"]), describe(r)
        r = ops(c, "status", "--health", "tool", check=5)
        assert "  health: FAILED (exec /bin/sh -c test ! -e /run/tool-sick)" in r.stdout, describe(r)
        assert "drift: health check failed" in r.stdout, describe(r)
        ops(c, "status", "tool", check=0)             # without --health: the units run
    finally:
        c.run(["rm", "-f", "/run/tool-sick"], timeout=10)


def test_history_outlives_the_pod(container, bundles):
    c = container
    r = ops(c, "undeploy", "tool", "--remove", check=0)
    assert "history of tool is kept" in r.stderr, describe(r)
    got, obj = history(c)
    assert got[-2:] == [("deploy", 1, 3, "ok"), ("undeploy", 3, None, "removed")], obj
    assert sorted(obj["history"][-1]["removed"]) == [1, 2, 3], obj
