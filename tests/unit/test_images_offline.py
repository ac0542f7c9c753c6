"""Images, fetched through the rkt stand-in (tests/rkt/rkt) into ROOT's rkt
store (offline mode: ``--dir=ROOT/var/lib/rkt --local-config=ROOT/etc/rkt``).

The stand-in logs every invocation to ``FAKE_RKT_LOG`` (one JSON line with
its argv and exit status), which is how these tests see what ops asked rkt
to do; the store itself is read back with ``rkt image list``.
"""

import json
import os
import shutil

import pytest

from conftest import (current_link, diff, snapshot, state, stored_versions,
                      unit_dir, wants)
from tests.support import aci, gpg


def image_bundle(bundle, version=1, images=(), name="web", units=None, volumes=None):
    """A bundle whose images are written by ``images``: a list of dicts
    {"file": "app.aci", "name": image name, "id": True/False/"other",
     "sign": homedir or None, "compression": ...}."""
    b = bundle(name=name, version=version, units=units, volumes=volumes)
    entries, ids = [], []
    (b.dir / "images").mkdir(exist_ok=True)
    for spec in images:
        p = b.dir / "images" / spec["file"]
        full = aci.build_aci(p, name=spec.get("name", "example.com/app"),
                             version=spec.get("version", "1.0"),
                             compression=spec.get("compression"))
        ids.append(full)
        entry = {"path": "images/" + spec["file"]}
        if spec.get("id") is True:
            entry["id"] = full
        elif spec.get("id") == "short":
            entry["id"] = full[:39]
        elif spec.get("id"):
            entry["id"] = spec["id"]
        if spec.get("sign"):
            gpg.sign(spec["sign"], p)
            entry["signature"] = "images/%s.asc" % spec["file"]
        entries.append(entry)
    # rewrite pod.json with the images
    doc = dict(b.ops_doc, images=entries)
    manifest = json.loads(b.pod_json.read_text())
    for a in manifest["annotations"]:
        if a["name"] == "ops":
            a["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest, indent=2) + "\n")
    b.image_ids = ids
    return b


# -- fetching -----------------------------------------------------------------

def test_an_image_pinned_by_id_is_hashed_and_fetched_insecurely(ops, root, bundle, rkt):
    b = image_bundle(bundle, images=[{"file": "app.aci", "id": True}])
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    fetches = rkt.fetches()
    assert fetches == [[rkt.dir_flag, rkt.config_flag, "--insecure-options=image", "fetch",
                        str(b.dir / "images/app.aci")]]
    assert rkt.store() == [b.image_ids[0][:71]]
    assert state(root, "web", 1)["images"] == [b.image_ids[0]]


@pytest.mark.parametrize("compression", ["gz", "xz", "bz2"])
def test_compressed_image_with_a_short_id(ops, root, bundle, rkt, compression):
    b = image_bundle(bundle, images=[{"file": "app.aci", "id": "short",
                                      "compression": compression}])
    r = ops("deploy", b)
    assert r.code == 0, r
    assert rkt.store() == [b.image_ids[0][:71]]
    assert state(root, "web", 1)["images"] == [b.image_ids[0][:39]]


def test_a_signed_image_is_verified_by_rkt(ops, root, bundle, rkt, signer):
    home, key = signer
    p = rkt.run("trust", "--prefix", "example.com/signed", "--skip-fingerprint-review", str(key))
    assert p.returncode == 0, p.stderr
    b = image_bundle(bundle, images=[{"file": "app.aci", "name": "example.com/signed",
                                      "sign": home}])
    r = ops("deploy", b)
    assert r.code == 0, r
    fetches = rkt.fetches()
    path = str(b.dir / "images/app.aci")
    # the signature follows its image; no --insecure-options: rkt checks it
    assert fetches == [[rkt.dir_flag, rkt.config_flag, "fetch", path,
                        "--signature=" + path + ".asc"]]
    assert rkt.store() == [b.image_ids[0][:71]]
    recorded = state(root, "web", 1)["images"]
    assert len(recorded) == 1 and b.image_ids[0].startswith(recorded[0])


def test_a_signature_by_an_untrusted_key_fails_the_deploy(ops, root, bundle, rkt, signer):
    home, key = signer
    b1 = bundle(name="web", version=1)
    assert ops("deploy", b1).code == 0
    before = snapshot(root)
    b2 = image_bundle(bundle, version=2, images=[{"file": "app.aci", "name": "example.com/x",
                                                  "sign": home}],
                      volumes={"data": {"f": "x"}})
    r = ops("deploy", b2)
    assert r.code == 1, r
    assert len(r.error_lines) == 1
    assert "unknown entity" in r.error_lines[0] or "trust" in r.error_lines[0]
    assert rkt.store() == []
    after = snapshot(root)
    assert diff(before, {k: v for k, v in after.items()
                         if not k.startswith("var/lib/rkt") and k != "var/lib/ops/tmp"}) == []


def test_an_image_in_the_store_is_not_fetched_again(ops, root, bundle, rkt):
    b1 = image_bundle(bundle, images=[{"file": "app.aci", "id": True}])
    assert ops("deploy", b1).code == 0
    assert len(rkt.fetches()) == 1
    rkt.clear()
    b2 = image_bundle(bundle, version=2, images=[{"file": "app.aci", "id": True}])
    assert b2.image_ids == b1.image_ids
    r = ops("deploy", b2)
    assert r.code == 0, r
    assert rkt.fetches() == []
    assert state(root, "web", 2)["images"] == [b1.image_ids[0]]
    # and an identical redeploy of the bundle asks rkt for nothing but a list
    rkt.clear()
    assert ops("deploy", b2).last == "deploy web 2: unchanged"
    assert rkt.fetches() == [] and rkt.removals() == []


def test_an_image_file_not_ending_in_aci_is_passed_under_a_name_that_does(ops, root, bundle,
                                                                          rkt):
    b = image_bundle(bundle, images=[{"file": "app.img", "id": True, "compression": "gz"}])
    r = ops("deploy", b)
    assert r.code == 0, r
    (fetch,) = rkt.fetches()
    arg = fetch[fetch.index("fetch") + 1]
    assert arg.endswith(".aci")
    assert arg != str(b.dir / "images/app.img")
    assert rkt.store() == [b.image_ids[0][:71]]
    # the temporary name is gone after the run
    tmp = root / "var/lib/ops/tmp"
    assert not tmp.exists() or os.listdir(str(tmp)) == []


# -- failures while staging: the running version stays ------------------------------

def deploy_v1_then(ops, root, bundle):
    b1 = bundle(name="web", version=1, units=[{"file": "web-one.service", "start": True}])
    assert ops("deploy", b1).code == 0
    return b1


def assert_v1_untouched(root, before):
    after = snapshot(root)
    ours = {k: v for k, v in after.items()
            if not k.startswith("var/lib/rkt") and k != "var/lib/ops/tmp"}
    assert diff(before, ours) == []
    assert current_link(root, "web") == "../pods/web/1"
    assert stored_versions(root, "web") == [1]
    assert not os.path.lexists(str(root / "var/lib/ops/volumes/web/2"))
    assert [n for n in os.listdir(str(root / "etc/ops/pods/web")) if n.startswith(".")] == []


def test_an_id_mismatch_fails_and_nothing_is_switched(ops, root, bundle, rkt, tmp_path):
    deploy_v1_then(ops, root, bundle)
    before = snapshot(root)
    other = aci.build_aci(tmp_path / "other.aci", name="example.com/other")
    b2 = image_bundle(bundle, version=2, images=[{"file": "app.aci", "id": other}],
                      units=[{"file": "web-two.service", "start": True}],
                      volumes={"data": {"f": "x"}})
    r = ops("deploy", b2)
    assert r.code == 1, r
    assert len(r.error_lines) == 1
    assert "ops.images[0]" in r.error_lines[0]
    assert "does not match" in r.error_lines[0]
    assert rkt.store() == []
    assert_v1_untouched(root, before)
    assert wants(root) == ["web-one.service"]


def test_a_failing_rkt_fetch_leaves_the_running_version(ops, root, bundle, rkt, monkeypatch):
    deploy_v1_then(ops, root, bundle)
    before = snapshot(root)
    b2 = image_bundle(bundle, version=2, images=[{"file": "app.aci", "id": True}],
                      units=[{"file": "web-two.service", "start": True}],
                      volumes={"data": {"f": "x"}})
    monkeypatch.setenv("FAKE_RKT_FAIL", "fetch")
    r = ops("--json", "deploy", b2)
    assert r.code == 1, r
    doc = r.json()
    assert doc["ok"] is False and doc["rolled_back"] is False and doc["changed"] is False
    assert doc["pod"] == {"name": "web", "version": 2} and doc["previous"] == 1
    assert "simulated failure" in doc["error"]
    assert r.error_lines == ["ops: error: " + doc["error"]]
    assert len(rkt.fetches()) == 1
    assert_v1_untouched(root, before)
    assert wants(root) == ["web-one.service"]
    # the next deploy of the same bundle works
    monkeypatch.delenv("FAKE_RKT_FAIL")
    r = ops("deploy", b2)
    assert r.code == 0, r
    assert wants(root) == ["web-two.service"]


def test_a_failed_first_deploy_stores_nothing(ops, root, bundle, rkt, monkeypatch):
    b = image_bundle(bundle, images=[{"file": "app.aci", "id": True}])
    monkeypatch.setenv("FAKE_RKT_FAIL", "fetch")
    r = ops("deploy", b)
    assert r.code == 1, r
    assert current_link(root, "web") is None
    assert stored_versions(root, "web") == []
    assert not os.path.lexists(str(unit_dir(root) / "web-main.service"))


# -- no rkt -----------------------------------------------------------------------

def test_images_without_rkt_are_refused(ops, root, bundle, monkeypatch):
    b = image_bundle(bundle, images=[{"file": "app.aci", "id": True}])
    monkeypatch.delenv("OPS_RKT", raising=False)
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    assert shutil.which("rkt") is None, "this test needs a host without rkt on PATH"
    r = ops("deploy", b)
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "rkt" in r.error_lines[0]
    assert os.listdir(str(root)) == []
    r = ops("--rkt", str(root / "no-such-rkt"), "deploy", b)
    assert r.code == 2, r
    assert os.listdir(str(root)) == []


def test_a_pod_without_images_needs_no_rkt(ops, root, bundle, monkeypatch):
    monkeypatch.delenv("OPS_RKT", raising=False)
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    r = ops("deploy", bundle(name="plain", version=1))
    assert r.code == 0, r
    assert ops("undeploy", "plain", "--remove").code == 0


# -- unpinned images ----------------------------------------------------------------

def test_an_image_without_id_or_signature_needs_insecure_images(ops, root, bundle, rkt):
    b = image_bundle(bundle, images=[{"file": "app.aci"}])
    r = ops("deploy", b)
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "ops.images[0]" in r.error_lines[0]
    assert "--insecure-images" in r.error_lines[0]
    assert os.listdir(str(root)) == []
    assert rkt.calls() == []
    r = ops("--insecure-images", "deploy", b)
    assert r.code == 0, r
    (fetch,) = rkt.fetches()
    assert "--insecure-options=image" in fetch
    recorded = state(root, "web", 1)["images"]
    assert len(recorded) == 1 and b.image_ids[0].startswith(recorded[0])


# -- removing images --------------------------------------------------------------

def test_undeploy_remove_removes_images_no_other_version_uses(ops, root, bundle, rkt):
    specs = {n: {"file": "%s.aci" % n, "name": "example.com/%s" % n, "id": True}
             for n in ("a", "b", "c")}
    w1 = image_bundle(bundle, version=1, images=[specs["a"], specs["b"]])
    w2 = image_bundle(bundle, version=2, images=[specs["b"], specs["c"]])
    db = image_bundle(bundle, name="db", version=1, images=[specs["c"]],
                      units=[{"file": "db.service", "start": True}])
    ida, idb = w1.image_ids
    idc = w2.image_ids[1]
    for b in (w1, w2, db):
        r = ops("deploy", b)
        assert r.code == 0, r
    assert rkt.store() == sorted(i[:71] for i in (ida, idb, idc))
    rkt.clear()
    r = ops("undeploy", "web:1", "--remove")
    assert r.code == 0, r
    assert rkt.removals() == [[ida]]
    assert rkt.store() == sorted(i[:71] for i in (idb, idc))
    rkt.clear()
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert rkt.removals() == [[idb]]            # c is still used by db
    assert rkt.store() == [idc[:71]]
    rkt.clear()
    r = ops("undeploy", "db", "--remove")
    assert r.code == 0, r
    assert rkt.removals() == [[idc]]
    assert rkt.store() == []


def test_cleanup_removes_the_images_of_removed_versions(ops, root, bundle, rkt):
    bs = [image_bundle(bundle, version=v, images=[{"file": "v%d.aci" % v, "id": True,
                                                   "name": "example.com/v%d" % v}])
          for v in (1, 2, 3)]
    for b in bs:
        assert ops("deploy", b).code == 0
    rkt.clear()
    r = ops("cleanup", "--keep", "0")
    assert r.code == 0, r
    # 2 is kept as the version to go back to, and so is its image
    assert r.lines == ["cleanup web: removed 1; kept 2 (rollback target)"]
    assert rkt.removals() == [[bs[0].image_ids[0]]]
    assert rkt.store() == sorted(b.image_ids[0][:71] for b in bs[1:])


def test_redeploy_of_a_version_whose_image_left_the_store_is_refused(ops, root, bundle, rkt):
    b1 = image_bundle(bundle, version=1, images=[{"file": "one.aci", "id": True,
                                                  "name": "example.com/one"}])
    b2 = image_bundle(bundle, version=2, images=[{"file": "two.aci", "id": True,
                                                  "name": "example.com/two"}])
    assert ops("deploy", b1).code == 0
    assert ops("deploy", b2).code == 0
    p = rkt.run("image", "rm", b1.image_ids[0][:71])
    assert p.returncode == 0, p.stderr
    before = snapshot(root)
    r = ops("redeploy", "web:1")
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "no longer in rkt's store" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_dry_run_fetches_nothing(ops, root, bundle, rkt):
    b = image_bundle(bundle, images=[{"file": "app.aci", "id": True}])
    r = ops("--dry-run", "deploy", b)
    assert r.code == 0, r
    assert "fetch-image images/app.aci" in r.out
    assert rkt.fetches() == []
    assert os.listdir(str(root)) == [], "a dry run changes nothing, rkt's store included"
    assert rkt.store() == []


def test_removing_images_without_rkt_is_refused_before_anything_changes(ops, root, bundle,
                                                                        rkt, monkeypatch):
    for v in (1, 2, 3):
        assert ops("deploy", bundle(name="aaa", version=v, units=[])).code == 0
        b = image_bundle(bundle, version=v, images=[{"file": "v%d.aci" % v, "id": True,
                                                     "name": "example.com/v%d" % v}])
        assert ops("deploy", b).code == 0
    monkeypatch.delenv("OPS_RKT")
    monkeypatch.setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    assert shutil.which("rkt") is None, "this test needs a host without rkt on PATH"
    before = snapshot(root)
    for args in (("undeploy", "web", "--remove"), ("undeploy", "web:1", "--remove"),
                 ("cleanup", "--keep", "0"), ("cleanup", "--keep", "0", "aaa", "web")):
        r = ops(*args)
        assert r.code == 2, (args, r)
        assert len(r.error_lines) == 1 and "rkt" in r.error_lines[0], r
        assert diff(before, snapshot(root)) == [], args
