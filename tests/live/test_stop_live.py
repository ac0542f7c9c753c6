"""A service that ignores SIGTERM, on a real systemd: switching away from it
takes about ``--stop-timeout``, not systemd's 90 s; ops says what it waits
for while it waits, kills what outlasts the bound, and the outcome says the
stop timed out (``stop_timed_out`` in --json; in the failure reason when the
switch fails too)."""

import json
import time

import pytest

from .conftest import copy_bundle, describe, is_active, make_bundle, ops

NAME = "stubborn"
B = "/root/bundles/stop"
UNIT = "stubborn-web.service"


def service(description, command, extra=""):
    return ("[Unit]\nDescription=%s\n\n[Service]\nExecStart=/bin/sh -c '%s'\n%s\n"
            "[Install]\nWantedBy=multi-user.target\n" % (description, command, extra))


UNITS = {
    # ignores SIGTERM (the shell and its sleep alike), and systemd would wait its 90 s
    1: service("stubborn v1", 'trap \"\" TERM; echo $$POD_VERSION > /run/stubborn.version; sleep infinity',
               "TimeoutStopSec=90\n"),
    2: service("stubborn v2", 'echo $$POD_VERSION > /run/stubborn.version; exec sleep infinity'),
    3: service("stubborn v3 (fails)", "exit 3"),
}
TIMEOUT = 6


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("stop")
    for v, text in UNITS.items():
        copy_bundle(container, make_bundle(str(base / str(v)), NAME, v,
                                           units=[(UNIT, text, True, None)]), "%s/%d" % (B, v))
    return B


def switch(container, *args, check):
    t = time.monotonic()
    r = ops(container, "--json", "--stop-timeout", TIMEOUT, *args, check=check)
    return time.monotonic() - t, json.loads(r.stdout), r


def test_a_stop_that_outlasts_the_bound_is_killed_and_said(container, bundles):
    ops(container, "deploy", "%s/1" % B, check=0)
    assert is_active(container, UNIT)
    took, out, r = switch(container, "deploy", "%s/2" % B, check=0)
    assert TIMEOUT <= took < TIMEOUT + 15, describe(r, "took %.1f s" % took)
    assert out["ok"] and out["stop_timed_out"] == [UNIT], describe(r)
    assert "waiting" in r.stderr and UNIT in r.stderr, describe(r, "no waiting line")
    assert "stop timed out after %d s" % TIMEOUT in r.stderr, describe(r)
    assert container.run(["cat", "/run/stubborn.version"]).stdout.strip() == "2"


def test_a_quick_stop_is_not_reported(container, bundles):
    ops(container, "deploy", "%s/1" % B, check=0)      # v2 stops at once
    took, out, r = switch(container, "redeploy", "%s:2" % NAME, check=0)   # v1 does not
    assert out["stop_timed_out"] == [UNIT], describe(r)
    took, out, r = switch(container, "redeploy", "%s:1" % NAME, check=0)
    assert out["stop_timed_out"] == [] and took < TIMEOUT, describe(r)


def test_the_failure_reason_says_the_stop_timed_out(container, bundles):
    took, out, r = switch(container, "deploy", "%s/3" % B, check=1)
    assert out["rolled_back"] and out["stop_timed_out"] == [UNIT], describe(r)
    assert "timed out after %d s" % TIMEOUT in out["error"], describe(r)
    assert is_active(container, UNIT)
    assert container.run(["cat", "/run/stubborn.version"]).stdout.strip() == "1"
