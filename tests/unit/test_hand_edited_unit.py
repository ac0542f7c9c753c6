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
