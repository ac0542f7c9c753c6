"""Removing versions and images, and the NAME[:VERSION] arguments: what an
operator sees when rkt fails late, when pods share an image, when a staged
version never ran, and when an argument is almost right."""

import json

import pytest

from conftest import current_link, snapshot, stored_versions
from tests.support import aci


def image_bundle(bundle, name, version, image_file, image_name):
    """A bundle with one unit and one image pinned by its id."""
    b = bundle(name=name, version=version)
    image_id = aci.build_aci(str(b.dir / image_file), name=image_name)
    manifest = json.loads(b.pod_json.read_text())
    doc = json.loads(manifest["annotations"][-1]["value"])
    doc["images"] = [{"id": image_id, "path": image_file}]
    manifest["annotations"][-1]["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest, indent=2) + "\n")
    return b, image_id


@pytest.mark.parametrize("args", [("undeploy", "web:\u00b2"), ("redeploy", "web:\u0661"),
                                  ("cleanup", "web:2"), ("cleanup", "--keep", "\u00b3")])
def test_almost_right_arguments_are_refused(ops, root, args):
    before = snapshot(root)
    r = ops(*args)
    assert r.code == 2, r
    assert len(r.error_lines) == 1 and "Traceback" not in r.err, r
    assert snapshot(root) == before


def test_a_failing_image_removal_is_a_warning_after_the_versions_are_gone(ops, root, bundle,
                                                                         rkt, monkeypatch):
    b, image_id = image_bundle(bundle, "web", 1, "app.aci", "example.com/web")
    assert ops("deploy", b).code == 0
    monkeypatch.setenv("FAKE_RKT_FAIL", "rm")
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert r.last == "undeploy web 1: changed"
    assert "warning: images not removed" in r.err and "rkt image rm" in r.err, r
    assert stored_versions(root, "web") == []
    assert len(rkt.store()) == 1             # rkt refused: the image is still there


def test_cleanup_removes_an_image_that_only_doomed_versions_of_several_pods_use(ops, root,
                                                                               bundle, rkt):
    for name in ("xa", "xb"):
        b, image_id = image_bundle(bundle, name, 1, "shared.aci", "example.com/shared")
        assert ops("deploy", b).code == 0, name
        assert ops("undeploy", name).code == 0
    assert len(rkt.store()) == 1
    r = ops("cleanup", "--keep", "0")
    assert r.code == 0, r
    assert r.lines == ["cleanup xa: removed 1", "cleanup xb: removed 1"]
    assert rkt.store() == []


def test_a_staged_version_that_never_ran_is_removed_and_can_be_deployed_anew(ops, root, bundle):
    assert ops("deploy", bundle(name="web", version=1)).code == 0
    assert ops("deploy", bundle(name="web", version=2)).code == 0
    assert ops("redeploy", "web:1").code == 0
    # what a run killed between staging version 2 and writing its journal leaves
    state = root / "etc/ops/pods/web/2/state.json"
    st = json.loads(state.read_text())
    st["outcome"] = "staged"
    state.write_text(json.dumps(st))
    other = bundle(name="web", version=2, units=[{"file": "web-other.service", "start": True}])
    r = ops("deploy", other)
    assert r.code == 0, r
    assert r.last == "deploy web 2: changed"
    assert current_link(root, "web") == "../pods/web/2"
    assert (root / "etc/ops/pods/web/2/units/web-other.service").exists()
