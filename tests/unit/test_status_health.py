"""`ops status --health`: each current version's health check runs now, and a failure is drift."""

import json

import pytest

from ops import bundle as bundle_mod, options, status

pytestmark = pytest.mark.compat


class Version:
    def __init__(self, health):
        ops = {"name": "web", "version": 2, "health": health} if health else \
            {"name": "web", "version": 2}
        raw = json.dumps({"acKind": "PodManifest", "acVersion": "0.8.11",
                          "annotations": [{"name": "ops", "value": json.dumps(ops)}]}).encode()
        self._b = bundle_mod.parse(raw, "pod.json", None)
        self.name, self.version = "web", 2

    def bundle(self):
        return self._b


@pytest.fixture
def host(root):
    from ops.host import Host
    return Host(root=str(root))


def test_a_passing_check(host):
    drift = []
    h = status._health(host, Version({"exec": ["/bin/sh", "-c", "test \"$POD_VERSION\" = 2"]}),
                       drift)
    assert (h["checked"], h["ok"], h["reason"], drift) == (True, True, None, [])
    assert h["check"].startswith("exec /bin/sh")


def test_a_failing_check_is_drift_with_its_reason(host):
    drift = []
    h = status._health(host, Version({"exec": ["/bin/sh", "-c", "echo the cache is cold; exit 3"]}),
                       drift)
    assert (h["checked"], h["ok"]) == (True, False)
    assert "the cache is cold" in h["reason"]
    assert drift == [{"unit": None, "problem": "health check failed: " + h["reason"]}]


def test_no_check_says_so(host):
    drift = []
    h = status._health(host, Version(None), drift)
    assert (h["checked"], h["ok"], h["reason"], drift) == (False, None,
                                                          "the pod has no health check", [])


def test_offline_is_refused(ops):
    r = ops("status", "--health")
    assert r.code == 2 and "nothing runs" in r.err, r
    assert ops("status").code == 0


def test_the_option():
    assert options.parse(["status", "--health", "web"]).health is True
    assert options.parse(["status"]).health is False
