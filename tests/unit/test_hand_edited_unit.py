"""A unit file of the pod edited by hand is refused (exit 2, nothing
changed), and the refusal names the stored copy to put back."""

import shutil

from conftest import diff, snapshot, unit_text


def web(bundle, version):
    return bundle(name="web", version=version, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body="v%d" % version)}])


def test_the_refusal_names_the_stored_copy_and_the_copy_repairs(ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    installed = root / "etc/systemd/system/web-api.service"
    stored = root / "etc/ops/pods/web/1/units/web-api.service"
    installed.write_text(installed.read_text() + "# edited by hand\n")
    for args in (("deploy", b1), ("deploy", web(bundle, 2)), ("undeploy", "web")):
        before = snapshot(root)
        r = ops(*args)
        assert r.code == 2, r
        assert len(r.error_lines) == 1
        assert r.error_lines[0].endswith("put back the copy ops installed: cp %s %s)"
                                         % (stored, installed)), r
        assert diff(before, snapshot(root)) == []
    shutil.copyfile(str(stored), str(installed))            # what the message says to run
    assert ops("deploy", web(bundle, 2)).code == 0


def test_a_unit_no_version_of_the_pod_has_gets_no_copy_to_put_back(ops, root, bundle):
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/web-api.service").write_text("[Service]\nExecStart=/bin/x\n")
    r = ops("deploy", web(bundle, 1))
    assert r.code == 2 and "cp " not in r.err, r


def test_a_drop_in_edited_by_hand_is_refused_by_deploy_as_status_and_undeploy_see_it(
        ops, root, bundle):
    b1 = web(bundle, 1)
    assert ops("deploy", b1).code == 0
    dropin = root / "etc/systemd/system/web-api.service.d/50-ops.conf"
    dropin.write_text("[Service]\nEnvironment=POD_VERSION=666\n")
    assert ops("status", "web").code == 5
    for args in (("deploy", b1), ("--dry-run", "deploy", b1), ("undeploy", "web")):
        before = snapshot(root)
        r = ops(*args)
        assert r.code == 2 and len(r.error_lines) == 1 and str(dropin) in r.err, r
        assert diff(before, snapshot(root)) == []


def test_the_drop_in_of_another_version_is_rewritten_by_a_deploy_of_the_current_one(
        ops, root, bundle):
    """A drop-in ops wrote for version 1 while 2 is current (the service would
    run with version 1's manifest and volumes): status says so, and a deploy
    or redeploy of version 2 repairs it."""
    same = unit_text("web-api.service", body="same")
    b1, b2 = [bundle(name="web", version=v, units=[
        {"file": "web-api.service", "start": True, "text": same}]) for v in (1, 2)]
    assert ops("deploy", b1).code == 0
    dropin = root / "etc/systemd/system/web-api.service.d/50-ops.conf"
    old = dropin.read_text()
    assert ops("deploy", b2).code == 0
    for args in (("deploy", b2), ("redeploy", "web:2")):
        dropin.write_text(old)
        assert ops("status", "web").code == 5
        r = ops(*args)
        assert r.code == 0 and r.last.endswith(" 2: changed"), r
        assert '"POD_VERSION=2"' in dropin.read_text() and ops("status", "web").code == 0
