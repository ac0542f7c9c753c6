"""ops.plan on its own: the typed steps each plan_* function returns, and
their order, for a host in a known state (offline ROOT).

Host state is made by running ops in-process (``ops("deploy", ...)``); the
plans are then computed directly, without executing anything, and a plan
never changes the host (checked with a snapshot where it matters).
"""

import json
import os

import pytest

from conftest import snapshot, state
from ops import bundle as bundle_mod
from ops import store
from ops.actions import (ClearCurrent, DaemonReload, Disable, Enable, InstallUnit, Pin,
                         RemoveImages, RemoveUnit, RemoveVersion, RemoveVolumes, Restart,
                         SetCurrent, Settle, Start, Stop, StoreVersion, Unpin, UnpackVolume)
from ops.errors import ConflictError, Refused, UsageError
from ops.host import Host
from ops.plan import (plan_cleanup, plan_deploy, plan_pin, plan_redeploy, plan_removal,
                      plan_undeploy)

V1_UNITS = [{"file": "web-a.service", "start": True},
            {"file": "web-w@.service", "start": True, "instances": ["x", "y"]},
            {"file": "web-tool.service", "start": False}]
V2_UNITS = [{"file": "web-a.service", "start": True},
            {"file": "web-new.service", "start": True}]
V1_STARTS = ("web-a.service", "web-w@x.service", "web-w@y.service")
V1_ALL = V1_STARTS + ("web-tool.service",)
V2_STARTS = ("web-a.service", "web-new.service")

IMG_A = "sha512-" + "a" * 64
IMG_B = "sha512-" + "b" * 64


def host(root):
    return Host(str(root), settle=0)


def load(b):
    return bundle_mod.load(str(b.dir))


def v1(bundle, **kw):
    return bundle(name="web", version=1, units=V1_UNITS, volumes={"data": {"f": "1\n"}}, **kw)


def v2(bundle):
    return bundle(name="web", version=2, units=V2_UNITS)


def deployed(ops, b):
    r = ops("deploy", b)
    assert r.code == 0, r
    return b


# -- deploy ------------------------------------------------------------------------

def test_first_deploy_stores_unpacks_installs_enables_reloads_starts_settles_sets_current(
        root, bundle):
    b = v1(bundle)
    before = snapshot(root)
    plan = plan_deploy(host(root), load(b))
    assert snapshot(root) == before, "planning changed the host"
    vdir = str(root / "etc/ops/pods/web/1")
    assert plan.stage == (StoreVersion(vdir, "/etc/ops/pods/web/1"), UnpackVolume(0, "data"))
    assert plan.switch == (
        InstallUnit("web-a.service"), InstallUnit("web-w@.service"),
        InstallUnit("web-tool.service"), Enable(V1_STARTS), DaemonReload(),
        Start(V1_STARTS), Settle(V1_STARTS), SetCurrent("web", 1))
    assert plan.removals == () and plan.marks == ()
    assert (plan.command, plan.name, plan.version, plan.previous) == ("deploy", "web", 1, None)
    assert plan.changed


def test_upgrade_prepares_everything_while_the_old_version_runs_then_only_stops_and_starts(
        ops, root, bundle):
    deployed(ops, v1(bundle))
    plan = plan_deploy(host(root), load(v2(bundle)))
    assert plan.previous == 1
    assert plan.stage == (StoreVersion(str(root / "etc/ops/pods/web/2"),
                                       "/etc/ops/pods/web/2"),)
    assert plan.switch == (
        # while v1 runs: links, files, one reload
        Disable(V1_ALL), InstallUnit("web-a.service"), InstallUnit("web-new.service"),
        Enable(V2_STARTS), DaemonReload(),
        # the outage: v1's other units stop, the shared one restarts, the new one starts
        Stop(("web-w@x.service", "web-w@y.service", "web-tool.service")),
        Restart(("web-a.service",)), Start(("web-new.service",)),
        Settle(V2_STARTS),
        # v2 runs: v1's own files go, with a reload
        RemoveUnit("web-w@.service"), RemoveUnit("web-tool.service"), DaemonReload(),
        SetCurrent("web", 2))


def test_between_the_first_stop_and_the_last_start_there_are_only_stops_and_starts(
        ops, root, bundle):
    deployed(ops, v1(bundle))
    verbs = [a.verb for a in plan_deploy(host(root), load(v2(bundle))).switch]
    first = verbs.index("stop")
    last = max(i for i, v in enumerate(verbs) if v in ("restart", "start"))
    assert set(verbs[first:last + 1]) <= {"stop", "restart", "start"}
    assert verbs.count("daemon-reload") == 2
    assert verbs.index("daemon-reload") < first
    assert all(verbs.index(v) < first for v in ("disable", "install-unit", "enable"))
    assert verbs.index("remove-unit") > verbs.index("settle")


def test_upgrade_without_start_units_has_no_enable_start_or_settle(ops, root, bundle):
    deployed(ops, v1(bundle))
    b = bundle(name="web", version=2, units=[{"file": "web-tool.service", "start": False}])
    verbs = [a.verb for a in plan_deploy(host(root), load(b)).switch]
    assert verbs == ["disable", "install-unit", "daemon-reload", "stop", "remove-unit",
                     "remove-unit", "daemon-reload", "set-current"]


SOCKET_V1 = [{"file": "web-a.socket", "start": True}, {"file": "web-a.service", "start": True}]


def test_an_unchanged_socket_is_kept_listening_its_service_restarted_behind_it(
        ops, root, bundle):
    deployed(ops, bundle(name="web", version=1, units=SOCKET_V1))
    plan = plan_deploy(host(root), load(bundle(name="web", version=2, units=SOCKET_V1)))
    assert plan.switch == (
        Disable(("web-a.service",)), InstallUnit("web-a.service"),
        Enable(("web-a.socket", "web-a.service")), DaemonReload(),
        Restart(("web-a.service",)),
        Settle(("web-a.socket", "web-a.service")), SetCurrent("web", 2))
    assert not any(isinstance(a, (Stop, Disable, Restart, Start)) and "web-a.socket" in a.units
                   for a in plan.switch)
    # and back: the redeploy keeps it too
    deployed(ops, bundle(name="web", version=2, units=SOCKET_V1))
    back = plan_redeploy(host(root), "web", 1)
    assert Restart(("web-a.service",)) in back.switch
    assert not any(getattr(a, "units", None) and "web-a.socket" in a.units
                   for a in back.switch if not isinstance(a, (Enable, Start, Settle)))


def test_a_changed_socket_is_switched_like_any_unit(ops, root, bundle):
    deployed(ops, bundle(name="web", version=1, units=SOCKET_V1))
    changed = [{"file": "web-a.socket", "start": True,
                "text": "[Socket]\nListenStream=127.0.0.1:10\n[Install]\nWantedBy=sockets.target\n"},
               {"file": "web-a.service", "start": True}]
    plan = plan_deploy(host(root), load(bundle(name="web", version=2, units=changed)))
    assert InstallUnit("web-a.socket") in plan.switch
    assert Disable(("web-a.socket", "web-a.service")) in plan.switch
    # not one restart of both: systemd would start the socket while the old service still runs
    # ("Socket service ... already active, refusing"); stopped together, then started together
    at = plan.switch.index(DaemonReload())
    assert plan.switch[at + 1:at + 3] == (Stop(("web-a.socket", "web-a.service")),
                                          Start(("web-a.socket", "web-a.service")))
    assert not any(isinstance(a, Restart) for a in plan.switch)


def test_a_socket_added_to_a_running_service_is_started_after_the_service_is_stopped(
        ops, root, bundle):
    deployed(ops, bundle(name="web", version=1, units=[{"file": "web-a.service", "start": True}]))
    plan = plan_deploy(host(root), load(bundle(name="web", version=2, units=SOCKET_V1)))
    at = plan.switch.index(DaemonReload())
    assert plan.switch[at + 1:at + 3] == (Stop(("web-a.service",)),
                                          Start(("web-a.socket", "web-a.service")))


def test_an_accept_yes_socket_or_one_for_another_service_holds_nothing_back(ops, root, bundle):
    """Accept=yes starts a service instance per connection (systemd never
    refuses it); a socket whose Service= is not the pod's restarted service
    does not make ops stop that service."""
    for text in ("[Socket]\nListenStream=127.0.0.1:10\nAccept=yes\n",
                 "[Socket]\nListenStream=127.0.0.1:10\nService=other.service\n"):
        deployed(ops, bundle(name="web", version=1, units=SOCKET_V1))
        units = [{"file": "web-a.socket", "start": True, "text": text + "[Install]\nWantedBy=x\n"},
                 {"file": "web-a.service", "start": True}]
        plan = plan_deploy(host(root), load(bundle(name="web", version=2, units=units)))
        assert Restart(("web-a.socket", "web-a.service")) in plan.switch, plan.switch
        assert not any(isinstance(a, Stop) for a in plan.switch), plan.switch
        ops("undeploy", "web", "--remove")


def test_a_socket_edited_on_disk_is_not_kept(ops, root, bundle):
    deployed(ops, bundle(name="web", version=1, units=SOCKET_V1))
    (root / "etc/systemd/system/web-a.socket").write_text("[Socket]\nListenStream=1\n")
    with pytest.raises(ConflictError):
        plan_deploy(host(root), load(bundle(name="web", version=2, units=SOCKET_V1)))


SOCKET_TEXT = "[Socket]\nListenStream=127.0.0.1:9\n[Install]\nWantedBy=sockets.target\n"


def socket_pod(start_socket, start_service):
    return [{"file": "web-a.socket", "start": start_socket, "text": SOCKET_TEXT},
            {"file": "web-a.service", "start": start_service}]


def test_a_socket_the_new_version_does_not_start_is_not_kept(ops, root, bundle):
    """Kept means left listening for the new version: one it does not start
    is disabled and stopped like any other unit of the old version, so the
    host ends as a fresh deploy of the new version would leave it."""
    deployed(ops, bundle(name="web", version=1, units=socket_pod(True, False)))
    link = root / "etc/systemd/system/sockets.target.wants/web-a.socket"
    assert link.is_symlink()
    b2 = bundle(name="web", version=2, units=socket_pod(False, True))
    plan = plan_deploy(host(root), load(b2))
    assert Disable(("web-a.socket", "web-a.service")) in plan.switch
    assert Stop(("web-a.socket",)) in plan.switch
    deployed(ops, b2)
    assert not link.exists() and not link.is_symlink()
    assert ops("deploy", b2).last == "deploy web 2: unchanged"


def test_a_rollback_to_a_version_that_does_not_start_the_socket_stops_it(
        ops, root, bundle, monkeypatch):
    deployed(ops, bundle(name="web", version=1, units=socket_pod(False, True)))
    link = root / "etc/systemd/system/sockets.target.wants/web-a.socket"
    assert not link.is_symlink()
    from ops import execute
    from ops.errors import Failed

    def settle(self, a):
        raise Failed("web-a.socket", "is not active after the start (injected)")
    monkeypatch.setattr(execute.Executor, "settle", settle)
    r = ops("--json", "deploy", bundle(name="web", version=2, units=socket_pod(True, False)))
    assert r.code == 1, r
    rollback = [a for a in r.json()["actions"] if a.get("rollback")]
    assert {"action": "stop", "units": ["web-a.socket"], "rollback": True} in rollback, rollback
    assert not link.is_symlink()
    assert os.readlink(str(root / "etc/ops/current/web")).endswith("/1")


def test_unchanged_current_version_plans_nothing_with_a_note(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    plan = plan_deploy(host(root), load(b))
    assert plan.actions == ()
    assert plan.notes == ("unchanged",)
    assert not plan.changed
    assert plan.previous == 1


def test_converging_the_current_version_installs_only_the_missing_file(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    (root / "etc/systemd/system/web-tool.service").unlink()
    plan = plan_deploy(host(root), load(b))
    assert plan.stage == ()        # stored, volume unpacked: nothing to stage
    assert plan.switch == (InstallUnit("web-tool.service"), Enable(V1_STARTS), DaemonReload(),
                           Start(V1_STARTS), Settle(V1_STARTS), SetCurrent("web", 1))
    assert plan.notes == ("converging: some units are stopped, disabled or missing",)


def test_converging_reinstalls_a_unit_whose_dropin_is_missing(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    (root / "etc/systemd/system/web-w@.service.d/50-ops.conf").unlink()
    installs = [a for a in plan_deploy(host(root), load(b)).switch
                if isinstance(a, InstallUnit)]
    assert installs == [InstallUnit("web-w@.service")]


def test_converging_refuses_to_overwrite_an_edited_unit_file(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    with open(str(root / "etc/systemd/system/web-a.service"), "a") as f:
        f.write("# edited\n")
    with pytest.raises(ConflictError) as e:
        plan_deploy(host(root), load(b))
    assert e.value.where == str(root / "etc/systemd/system/web-a.service")
    assert "ops does not overwrite it" in e.value.what


def test_converging_a_disabled_start_unit_installs_nothing_but_enables(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    wants = root / "etc/systemd/system/multi-user.target.wants/web-a.service"
    wants.unlink()
    plan = plan_deploy(host(root), load(b))
    # the reload after the enable: what systemd reports of enablement is then what is on disk
    assert [a.verb for a in plan.switch] == ["enable", "daemon-reload", "start", "settle",
                                            "set-current"]
    assert plan.switch[0] == Enable(V1_STARTS)


def test_a_removed_volume_directory_is_unpacked_again(ops, root, bundle):
    b = deployed(ops, v1(bundle))
    import shutil
    shutil.rmtree(str(root / "var/lib/ops/volumes/web/1/data"))
    plan = plan_deploy(host(root), load(b))
    assert plan.stage == (UnpackVolume(0, "data"),)


def test_same_version_with_different_content_is_refused(ops, root, bundle):
    deployed(ops, v1(bundle))
    other = bundle(name="web", version=1, units=V2_UNITS)
    with pytest.raises(Refused) as e:
        plan_deploy(host(root), load(other))
    assert e.value.where == "web:1"
    assert "already stored with different content" in e.value.what
    assert e.value.exit_code == 2


# -- redeploy ----------------------------------------------------------------------

def test_redeploy_goes_back_to_the_rollback_target_without_staging(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    plan = plan_redeploy(host(root), "web", None)
    assert (plan.command, plan.version, plan.previous) == ("redeploy", 1, 2)
    assert plan.stage == ()
    assert plan.switch == (
        Disable(V2_STARTS), InstallUnit("web-a.service"), InstallUnit("web-w@.service"),
        InstallUnit("web-tool.service"), Enable(V1_STARTS), DaemonReload(),
        Stop(("web-new.service",)),
        Restart(("web-a.service",)), Start(("web-w@x.service", "web-w@y.service")),
        Settle(V1_STARTS), RemoveUnit("web-new.service"), DaemonReload(),
        SetCurrent("web", 1))


def test_redeploy_skips_a_failed_version_for_the_rollback_target(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    deployed(ops, bundle(name="web", version=3, units=V2_UNITS))
    store.get(host(root).layout, "web", 2).record("failed")
    assert plan_redeploy(host(root), "web", None).version == 1


def test_redeploy_of_the_current_version_in_place_is_unchanged(ops, root, bundle):
    deployed(ops, v1(bundle))
    plan = plan_redeploy(host(root), "web", 1)
    assert plan.actions == () and plan.notes == ("unchanged",)


def test_redeploy_refusals(ops, root, bundle):
    with pytest.raises(Refused, match="no stored version of this pod"):
        plan_redeploy(host(root), "web", None)
    deployed(ops, v1(bundle))
    with pytest.raises(Refused, match="no stored version older than the current one"):
        plan_redeploy(host(root), "web", None)
    with pytest.raises(Refused) as e:
        plan_redeploy(host(root), "web", 7)
    assert e.value.where == "web:7" and "not stored" in e.value.what


def test_redeploy_refuses_a_version_whose_volume_directory_is_gone(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    import shutil
    shutil.rmtree(str(root / "var/lib/ops/volumes/web/1/data"))
    with pytest.raises(Refused, match="volume directory of web:1 is missing"):
        plan_redeploy(host(root), "web", 1)


# -- undeploy and removal ----------------------------------------------------------

def test_undeploy_takes_the_current_version_down_and_keeps_it_stored(ops, root, bundle):
    deployed(ops, v1(bundle))
    plan = plan_undeploy(host(root), "web", None, remove=False)
    assert (plan.command, plan.version, plan.previous) == ("undeploy", 1, 1)
    assert plan.switch == (
        Stop(V1_ALL), Disable(V1_ALL), RemoveUnit("web-a.service"),
        RemoveUnit("web-w@.service"), RemoveUnit("web-tool.service"), DaemonReload(),
        ClearCurrent("web"))
    assert plan.removals == ()


def test_undeploy_remove_deletes_every_version_and_its_volumes(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    plan = plan_undeploy(host(root), "web", None, remove=True)
    assert plan.switch[-1] == ClearCurrent("web")
    assert plan.removals == (
        RemoveVersion(1, str(root / "etc/ops/pods/web/1"), "/etc/ops/pods/web/1"),
        RemoveVolumes(str(root / "var/lib/ops/volumes/web/1"), "/var/lib/ops/volumes/web/1"),
        RemoveVersion(2, str(root / "etc/ops/pods/web/2"), "/etc/ops/pods/web/2"))


def test_undeploy_of_an_old_version_switches_nothing(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    plan = plan_undeploy(host(root), "web", 1, remove=True)
    assert plan.switch == ()
    assert [a.verb for a in plan.removals] == ["remove-version", "remove-volumes"]
    assert plan.removals[0].shown == "/etc/ops/pods/web/1"
    assert plan_undeploy(host(root), "web", 1, remove=False).actions == ()


def test_undeploy_of_a_pinned_version_is_refused(ops, root, bundle):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    assert ops("pin", "web:1").code == 0
    with pytest.raises(Refused) as e:
        plan_undeploy(host(root), "web", None, remove=True)
    assert e.value.where == "web:1" and "pinned" in e.value.what


def set_images(root, name, version, ids):
    store.get(host(root).layout, name, version).write_state(images=list(ids))


def test_remove_images_only_those_no_other_version_uses(ops, root, bundle, rkt):
    deployed(ops, v1(bundle))
    deployed(ops, v2(bundle))
    set_images(root, "web", 1, [IMG_A, IMG_B])
    set_images(root, "web", 2, [IMG_B])
    plan = plan_undeploy(host(root), "web", 1, remove=True)
    assert plan.removals[-1] == RemoveImages((IMG_A,))
    assert plan.removals[-1].to_json() == {"action": "remove-images", "ids": [IMG_A]}
    # removing both: both images go, each once
    plan = plan_undeploy(host(root), "web", None, remove=True)
    assert [a for a in plan.removals if isinstance(a, RemoveImages)] == [
        RemoveImages((IMG_A, IMG_B))]


def test_an_image_another_pod_uses_is_kept(ops, root, bundle, rkt):
    deployed(ops, v1(bundle))
    deployed(ops, bundle(name="db", version=1, units=[{"file": "db-main.service"}]))
    set_images(root, "web", 1, [IMG_A])
    set_images(root, "db", 1, [IMG_A[:40]])       # a prefix of the same ID
    plan = plan_undeploy(host(root), "web", None, remove=True)
    assert not any(isinstance(a, RemoveImages) for a in plan.actions)


def test_plan_removal_schedules_each_image_once_across_pods(ops, root, bundle, rkt):
    deployed(ops, v1(bundle))
    deployed(ops, bundle(name="db", version=1, units=[{"file": "db-main.service"}]))
    set_images(root, "web", 1, [IMG_A])
    set_images(root, "db", 1, [IMG_A])
    h = host(root)
    lay = h.layout
    both = {("web", 1), ("db", 1)}
    scheduled = set()
    first = plan_removal(h, "web", [store.get(lay, "web", 1)], both, scheduled)
    second = plan_removal(h, "db", [store.get(lay, "db", 1)], both, scheduled)
    assert first[-1] == RemoveImages((IMG_A,))
    assert [a.verb for a in second] == ["remove-version"]


# -- cleanup -----------------------------------------------------------------------

def five_versions(ops, bundle):
    for n in range(1, 6):
        deployed(ops, bundle(name="web", version=n, units=[
            {"file": "web-a.service", "start": True,
             "text": "[Service]\nExecStart=/bin/true %d\n[Install]\nWantedBy=multi-user.target\n"
                     % n}]))


def test_cleanup_keeps_pinned_and_the_rollback_target(ops, root, bundle):
    five_versions(ops, bundle)
    assert ops("pin", "web:1").code == 0
    store.get(host(root).layout, "web", 4).record("failed")    # rollback target: 3
    plan = plan_cleanup(host(root), ["web"], 1)
    ((name, removed, kept, acts),) = plan.pods
    assert name == "web"
    assert removed == [2]
    assert kept == [(1, "pinned"), (3, "rollback target")]
    assert acts == (RemoveVersion(2, str(root / "etc/ops/pods/web/2"), "/etc/ops/pods/web/2"),)
    assert plan.changed and plan.actions == acts


def test_cleanup_with_nothing_beyond_keep_plans_nothing(ops, root, bundle):
    five_versions(ops, bundle)
    plan = plan_cleanup(host(root), [], 4)
    assert plan.pods == (("web", [], [], ()),)
    assert not plan.changed


def test_cleanup_leaves_an_unsettled_pod_alone(ops, root, bundle):
    five_versions(ops, bundle)
    plan = plan_cleanup(host(root), ["web"], 0, unsettled={"web"})
    assert plan.pods == (("web", [], [], ()),)


def test_cleanup_takes_pod_names_only(root):
    with pytest.raises(UsageError, match="cleanup takes pod names"):
        plan_cleanup(host(root), ["web:1"], 1)


# -- pin ---------------------------------------------------------------------------

def test_pin_and_unpin_plan_a_mark_only_when_it_changes_something(ops, root, bundle):
    deployed(ops, v1(bundle))
    path = str(root / "etc/ops/pods/web/1.pinned")
    plan = plan_pin(host(root), "web", 1, True)
    assert plan.marks == (Pin("web", 1, path),)
    assert plan.marks[0].to_json() == {"action": "pin", "target": "web 1"}
    assert plan_pin(host(root), "web", 1, False).actions == ()     # not pinned: no unpin
    assert ops("pin", "web:1").code == 0
    assert plan_pin(host(root), "web", 1, True).actions == ()      # pinned already
    assert plan_pin(host(root), "web", 1, False).marks == (Unpin("web", 1, path),)


def test_pin_refusals(ops, root, bundle):
    deployed(ops, v1(bundle))
    with pytest.raises(Refused) as e:
        plan_pin(host(root), "web", 9, True)
    assert e.value.where == "web:9" and "not stored" in e.value.what
    with pytest.raises(UsageError, match="pin takes NAME:VERSION"):
        plan_pin(host(root), "web", None, True)


# -- --json ------------------------------------------------------------------------

def test_json_of_each_kind_of_step(ops, root, bundle):
    deployed(ops, v1(bundle))
    plan = plan_deploy(host(root), load(v2(bundle)))
    assert [a.to_json() for a in plan.actions] == [
        {"action": "store", "target": "/etc/ops/pods/web/2"},
        {"action": "disable", "units": list(V1_ALL)},
        {"action": "install-unit", "target": "web-a.service"},
        {"action": "install-unit", "target": "web-new.service"},
        {"action": "enable", "units": list(V2_STARTS)},
        {"action": "daemon-reload"},
        {"action": "stop", "units": ["web-w@x.service", "web-w@y.service", "web-tool.service"]},
        {"action": "restart", "units": ["web-a.service"]},
        {"action": "start", "units": ["web-new.service"]},
        {"action": "settle", "units": list(V2_STARTS)},
        {"action": "remove-unit", "target": "web-w@.service"},
        {"action": "remove-unit", "target": "web-tool.service"},
        {"action": "daemon-reload"},
        {"action": "set-current", "target": "web 2"},
    ]
    # the same steps are what `--dry-run --json` reports
    r = ops("--json", "--dry-run", "deploy", v2(bundle))
    assert r.code == 0, r
    assert r.json()["actions"] == [a.to_json() for a in plan.actions]
    json.dumps([a.to_json() for a in plan.actions])


def test_json_of_an_undeploy_with_images(ops, root, bundle, rkt):
    deployed(ops, v1(bundle))
    set_images(root, "web", 1, [IMG_A])
    plan = plan_undeploy(host(root), "web", None, remove=True)
    assert [a.to_json() for a in plan.removals] == [
        {"action": "remove-version", "target": "/etc/ops/pods/web/1"},
        {"action": "remove-volumes", "target": "/var/lib/ops/volumes/web/1"},
        {"action": "remove-images", "ids": [IMG_A]},
    ]
    assert state(root, "web", 1)["images"] == [IMG_A]     # planning removed nothing
