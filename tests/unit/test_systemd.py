"""ops.systemd on its own: batching by argument space, is_up of systemd's
properties, and unit_states/down offline against the real
``systemctl --root=DIR``."""

import os

import pytest

from conftest import unit_text, wants
from ops.layout import Layout
from ops.systemd import Systemd, arg_max, batches, is_up


def env_cost():
    return sum(len(k) + len(v) + 2 + 8 for k, v in os.environb.items())


# -- batches -----------------------------------------------------------------------

def test_a_small_list_is_one_batch():
    units = ["u%d.service" % i for i in range(50)]
    assert batches(["systemctl", "enable", "--"], units) == [units]
    assert batches(["systemctl"], []) == []


def test_units_are_split_to_fit_the_argument_space_in_order():
    fixed = ["systemctl", "--"]
    units = ["unit-%02d.service" % i for i in range(20)]     # 15 bytes: 24 each with NUL+pointer
    limit = env_cost() + 4096 + sum(len(a) + 9 for a in fixed) + 5 * 24
    out = batches(fixed, units, limit=limit)
    assert [len(b) for b in out] == [5, 5, 5, 5]
    assert [u for b in out for u in b] == units
    out = batches(fixed, units, limit=limit + 23)          # one byte short of a 6th
    assert [len(b) for b in out] == [5, 5, 5, 5]
    out = batches(fixed, units, limit=limit + 24)
    assert [len(b) for b in out] == [6, 6, 6, 2]


def test_ops_arg_max_sets_the_limit(monkeypatch):
    monkeypatch.setenv("OPS_ARG_MAX", "1000000")
    assert arg_max() == 1000000
    monkeypatch.setenv("OPS_ARG_MAX", "1")
    assert batches(["systemctl"], ["a.service", "b.service"]) == [["a.service"], ["b.service"]]


def test_a_unit_too_long_for_any_batch_still_goes_alone(monkeypatch):
    out = batches(["systemctl"], ["a.service", "b.service"], limit=1)
    assert out == [["a.service"], ["b.service"]]


def test_arg_max_is_the_systems_when_ops_arg_max_is_empty(monkeypatch):
    monkeypatch.setenv("OPS_ARG_MAX", "")
    assert arg_max() == os.sysconf("SC_ARG_MAX")


@pytest.mark.parametrize("value", ["abc", "-5", "\u0661\u0662"])
def test_arg_max_refuses_a_value_that_is_not_a_number(monkeypatch, value):
    from ops.errors import UsageError
    monkeypatch.setenv("OPS_ARG_MAX", value)
    with pytest.raises(UsageError) as e:
        arg_max()
    assert e.value.where == "OPS_ARG_MAX"


# -- is_up -------------------------------------------------------------------------

@pytest.mark.parametrize("props, up", [
    ({"ActiveState": "active", "SubState": "running"}, True),
    ({"ActiveState": "reloading"}, True),
    ({"ActiveState": "activating", "SubState": "start"}, True),
    ({"ActiveState": "activating", "SubState": "auto-restart"}, False),
    ({"ActiveState": "failed", "Result": "exit-code"}, False),
    ({"ActiveState": "inactive", "Type": "oneshot", "Result": "success"}, True),
    ({"ActiveState": "inactive", "Type": "oneshot", "Result": "exit-code"}, False),
    ({"ActiveState": "inactive", "Type": "simple", "Result": "success"}, False),
    ({"ActiveState": "failed", "Type": "oneshot", "Result": "success"}, False),
    ({}, False),
])
def test_is_up(props, up):
    assert is_up(props) is up


def test_online_up_is_is_up_and_offline_up_is_enabled():
    online = Systemd(Layout("/"))
    assert not online.offline
    assert online.up({"ActiveState": "active"}) is True
    assert online.up({"UnitFileState": "enabled"}) is False
    offline = Systemd(Layout("/tmp"))
    assert offline.up({"UnitFileState": "enabled"}) is True
    assert offline.up({"UnitFileState": "static"}) is True
    assert offline.up({"UnitFileState": "disabled"}) is False
    assert offline.up({"UnitFileState": "not-found"}) is False
    assert offline.up({"ActiveState": "active"}) is False


# -- unit_states / down offline, with the real systemctl ------------------------------

@pytest.fixture
def sd(root):
    ud = root / "etc/systemd/system"
    ud.mkdir(parents=True)
    (ud / "web-a.service").write_text(unit_text("web-a.service"))
    (ud / "web-b.service").write_text(unit_text("web-b.service"))
    (ud / "web-w@.service").write_text(unit_text("web-w@.service"))
    (ud / "web-s.service").write_text("[Service]\nExecStart=/bin/true\n")    # no [Install]
    return Systemd(Layout(str(root)))


def test_unit_states_offline_reads_unit_file_state(root, sd):
    assert sd.offline
    sd.enable(["web-a.service", "web-w@1.service"])
    assert wants(root) == ["web-a.service", "web-w@1.service"]
    states = sd.unit_states(["web-a.service", "web-b.service", "web-w@1.service",
                             "web-w@2.service", "web-s.service"])
    assert states == {
        "web-a.service": {"UnitFileState": "enabled"},
        "web-b.service": {"UnitFileState": "disabled"},
        "web-w@1.service": {"UnitFileState": "enabled"},
        "web-w@2.service": {"UnitFileState": "disabled"},
        "web-s.service": {"UnitFileState": "static"},
    }


def test_a_missing_unit_is_not_found_without_breaking_the_others(root, sd):
    sd.enable(["web-a.service"])
    units = ["web-gone.service", "web-a.service", "web-x@1.service", "web-b.service"]
    states = sd.unit_states(units)
    assert list(states) == units
    assert states["web-gone.service"] == {"UnitFileState": "not-found"}
    assert states["web-x@1.service"] == {"UnitFileState": "not-found"}
    assert states["web-a.service"] == {"UnitFileState": "enabled"}
    assert states["web-b.service"] == {"UnitFileState": "disabled"}
    assert sd.down(units) == ["web-gone.service", "web-x@1.service", "web-b.service"]
    assert sd.settle(units, 0) == sd.down(units)


def test_disable_and_down_offline(root, sd):
    sd.enable(["web-a.service", "web-b.service"])
    assert sd.down(["web-a.service", "web-b.service"]) == []
    sd.disable(["web-a.service"])
    assert wants(root) == ["web-b.service"]
    assert sd.down(["web-a.service", "web-b.service"]) == ["web-a.service"]
    assert sd.unit_states([]) == {} and sd.down([]) == [] and sd.settle([], 5) == []


def test_offline_batches_of_one_still_read_every_state(root, sd, monkeypatch):
    sd.enable(["web-a.service"])
    monkeypatch.setenv("OPS_ARG_MAX", "1")       # one unit per systemctl call
    states = sd.unit_states(["web-a.service", "web-b.service", "web-s.service"])
    assert [s["UnitFileState"] for s in states.values()] == ["enabled", "disabled", "static"]


def test_offline_start_stop_and_reload_do_nothing(root, sd):
    sd.start(["web-a.service"])
    sd.stop(["web-a.service"])
    sd.daemon_reload()
    assert sd.why("web-a.service") == ""
    assert wants(root) == []


# -- settle online: a unit that ran again meanwhile ----------------------------------

def _online_with_states(monkeypatch, looks):
    """A Systemd for the live host whose unit_states gives ``looks`` in turn
    (the last one again and again): no systemctl runs."""
    sd = Systemd(Layout("/"))
    assert not sd.offline
    seen = []

    def unit_states(units, *props):
        assert "InvocationID" in props
        seen.append(props)
        return looks[min(len(seen), len(looks)) - 1]
    monkeypatch.setattr(sd, "unit_states", unit_states)
    return sd, seen


def _up(run_id):
    return {"ActiveState": "active", "SubState": "running", "InvocationID": run_id}


def test_settle_counts_a_unit_started_again_meanwhile_as_down(monkeypatch):
    # a kept socket with clients waiting starts a failed service again within
    # milliseconds: every poll sees it active, but it is not the run ops started
    looks = [{"web.socket": _up("s1"), "web.service": _up("a1")},
             {"web.socket": _up("s1"), "web.service": _up("a1")},
             {"web.socket": _up("s1"), "web.service": _up("a2")}]
    sd, seen = _online_with_states(monkeypatch, looks)
    assert sd.settle(["web.socket", "web.service"], 30) == ["web.service"]
    assert len(seen) == 3


def test_settle_of_units_that_stay_in_their_run_is_clean(monkeypatch):
    looks = [{"web.service": {"ActiveState": "activating", "SubState": "start",
                              "InvocationID": ""}},
             {"web.service": _up("a1")}]           # an ID first seen later is the first run
    sd, seen = _online_with_states(monkeypatch, looks)
    assert sd.settle(["web.service"], 0.6) == []
    assert len(seen) >= 3


def test_settle_of_no_time_looks_once(monkeypatch):
    sd, seen = _online_with_states(monkeypatch, [{"web.service": _up("a1")}])
    assert sd.settle(["web.service"], 0) == []
    assert len(seen) == 1          # --settle 0: one batched show, as before the run check
