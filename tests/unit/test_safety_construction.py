"""Guarantees that hold for every path through ops: what it reads from the
store, the environment and a bundle is checked where it is read."""

import json
import os

import pytest

from conftest import diff, snapshot, state, unit_dir, unit_text


def web(bundle, version, body="v"):
    return bundle(name="web", version=version,
                  units=[{"file": "web-api.service", "start": True,
                          "text": unit_text("web-api.service", body=body)}])


# -- list NAME:VERSION ---------------------------------------------------------

def test_list_of_a_version_is_refused_saying_list_takes_a_pod_name(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    r = ops("list", "web:1")
    assert r.code == 2, r
    assert "list takes a pod name" in r.err and "ops list web" in r.err
    r = ops("--json", "list", "web:1")
    assert r.code == 2 and json.loads(r.out)["ok"] is False


# -- a stored version's state.json missing or unreadable ------------------------

@pytest.mark.parametrize("damage", ["missing", "garbage", "deep"])
def test_a_missing_state_json_is_named_not_called_different_content(ops, root, bundle, damage):
    b = web(bundle, 1)
    assert ops("deploy", b).code == 0
    p = root / "etc/ops/pods/web/1/state.json"
    if damage == "missing":
        p.unlink()
    elif damage == "garbage":
        p.write_bytes(b"{not json")
    else:
        p.write_text("[" * 100000 + "]" * 100000)
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert "different content" not in r.err
    assert str(p) in r.err and "undeploy web:1 --remove" in r.err
    assert {"missing": "missing", "garbage": "not valid JSON",
            "deep": "nested too deeply"}[damage] in r.err
    assert diff(before, snapshot(root)) == []


def test_one_unreadable_state_json_does_not_fail_commands_about_other_pods(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", bundle(name="db", version=1, units=[])).code == 0
    (root / "etc/ops/pods/web/1/state.json").write_text("[" * 100000)
    r = ops("--json", "list")
    assert r.code == 0, r
    assert ("db", 1) in [(p["name"], p["version"]) for p in json.loads(r.out)["pods"]]
    assert ops("deploy", bundle(name="db", version=2, units=[])).code == 0
    assert ops("status", "db").code in (0, 5)


# -- an edited stored unit copy --------------------------------------------------

def test_a_deploy_refuses_to_install_an_edited_stored_unit_copy(ops, root, bundle):
    b = web(bundle, 1, body="original")
    assert ops("deploy", b).code == 0
    copy = root / "etc/ops/pods/web/1/units/web-api.service"
    copy.write_text(copy.read_text().replace("original", "edited"))
    (unit_dir(root) / "web-api.service").unlink()       # so the deploy would install again
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert str(copy) in r.err and "changed on disk" in r.err
    assert diff(before, snapshot(root)) == []
    # put back, the deploy converges with the bundle's bytes
    copy.write_text(copy.read_text().replace("edited", "original"))
    r = ops("deploy", b)
    assert r.code == 0, r
    assert "original" in (unit_dir(root) / "web-api.service").read_text()


def test_a_redeploy_refuses_an_edited_or_removed_stored_unit_copy(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", web(bundle, 2)).code == 0
    copy = root / "etc/ops/pods/web/1/units/web-api.service"
    copy.unlink()
    r = ops("redeploy", "web:1")
    assert r.code == 2, r
    assert str(copy) in r.err
    assert state(root, "web", 1)["units"]
