"""--stop-timeout: a bounded stop against a stand-in systemctl (a unit that
ignores SIGTERM stays "deactivating" until it is killed)."""

import json
import os
import stat
import sys
import time

import pytest

from ops import runner
from ops.errors import CommandError, Failed
from ops.layout import Layout
from ops.result import Result
from ops.systemd import Systemd

FAKE = r'''#!%s
import json, os, sys, time
state_file = os.environ["FAKE_SYSTEMCTL_STATE"]
def load():
    with open(state_file) as f:
        return json.load(f)
def save(s):
    with open(state_file + ".tmp", "w") as f:
        json.dump(s, f)
    os.replace(state_file + ".tmp", state_file)
args = sys.argv[1:]
units = args[args.index("--") + 1:] if "--" in args else []
with open(state_file + ".calls", "a") as f:
    f.write(args[0] + "\n")
s = load()
if args[0] in ("stop", "restart"):
    for u in units:
        s["units"][u] = "deactivating" if u in s["stubborn"] else "inactive"
    save(s)
    while any(load()["units"][u] == "deactivating" for u in units):
        time.sleep(0.05)
    if args[0] == "restart":
        s = load()
        for u in units:
            s["units"][u] = "active"
        save(s)
elif args[0] == "kill":
    for u in units:
        s["units"][u] = "failed"
    if not s.get("unkillable"):
        save(s)
elif args[0] == "show":
    for u in units:
        print("Id=%%s\nActiveState=%%s\nSubState=x\nResult=%%s\n" %% (
            u, s["units"][u], "signal" if s["units"][u] == "failed" else "success"))
''' % sys.executable


@pytest.fixture
def fake(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    prog = bindir / "systemctl"
    prog.write_text(FAKE)
    prog.chmod(prog.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state.json"
    monkeypatch.setenv("PATH", "%s%s%s" % (bindir, os.pathsep, os.environ["PATH"]))
    monkeypatch.setenv("FAKE_SYSTEMCTL_STATE", str(state))

    def setup(units, stubborn=(), unkillable=False):
        state.write_text(json.dumps({"units": {u: "active" for u in units},
                                     "stubborn": list(stubborn), "unkillable": unkillable}))
        def read():
            out = json.loads(state.read_text())
            calls = tmp_path / "state.json.calls"
            out["calls"] = calls.read_text().split() if calls.exists() else []
            return out
        return read
    return setup


def test_a_quick_stop_is_one_systemctl_stop(fake):
    read = fake(["a.service", "b.service"])
    assert Systemd(Layout("/")).stop(["a.service", "b.service"], 5.0) == []
    assert read()["calls"] == ["stop"]
    assert set(read()["units"].values()) == {"inactive"}


def test_a_stubborn_unit_is_killed_after_the_timeout_and_reported(fake):
    read = fake(["a.service", "slow.service"], stubborn=["slow.service"])
    said = []
    t = time.monotonic()
    late = Systemd(Layout("/")).stop(["a.service", "slow.service"], 2.0,
                                     lambda units, s: said.append((list(units), s)), every=1.0)
    took = time.monotonic() - t
    assert late == ["slow.service"]
    assert 2.0 <= took < 5.0
    assert "kill" in read()["calls"] and read()["units"]["slow.service"] == "failed"
    assert said and all(units == ["slow.service"] for units, _ in said)


def test_a_unit_that_outlives_the_kill_fails_the_step(fake):
    fake(["slow.service"], stubborn=["slow.service"], unkillable=True)
    with pytest.raises(Failed) as e:
        Systemd(Layout("/")).stop(["slow.service"], 0.5)
    assert e.value.unit == "slow.service" and "still stopping" in str(e.value)


def test_a_quick_restart_is_one_systemctl_restart(fake):
    read = fake(["a.service", "b.service"])
    assert Systemd(Layout("/")).restart(["a.service", "b.service"], 5.0) == []
    assert read()["calls"] == ["restart"]
    assert set(read()["units"].values()) == {"active"}


def test_a_restart_whose_stop_outlasts_the_bound_is_killed_then_started(fake):
    read = fake(["a.service", "slow.service"], stubborn=["slow.service"])
    said = []
    t = time.monotonic()
    late = Systemd(Layout("/")).restart(["a.service", "slow.service"], 2.0,
                                        lambda units, s: said.append((list(units), s)), every=1.0)
    took = time.monotonic() - t
    assert late == ["slow.service"]
    assert 2.0 <= took < 5.0
    assert "kill" in read()["calls"] and set(read()["units"].values()) == {"active"}
    assert said and all(units == ["slow.service"] for units, _ in said)


def test_run_waiting_ticks_and_can_give_up():
    ticks = []
    out = runner.run_waiting([sys.executable, "-c", "import time; time.sleep(1.3); print('done')"],
                             ticks.append, every=0.5)
    assert out.stdout == "done\n" and len(ticks) >= 2
    with pytest.raises(CommandError):
        runner.run_waiting([sys.executable, "-c", "import time; time.sleep(30)"], lambda s: s < 0.5,
                           every=0.2)


def test_every_json_result_says_which_stops_timed_out():
    assert Result("deploy").to_json()["stop_timed_out"] == []
    r = Result("deploy")
    r.stop_timed_out = ["a.service"]
    assert r.to_json()["stop_timed_out"] == ["a.service"]
