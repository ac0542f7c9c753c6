"""`ops deploy` into a temporary ROOT (offline mode), checked on disk.

Offline, ops enables and disables units with the real `systemctl --root=ROOT`
and never starts, stops or reloads anything; an enabled start unit counts
as up.  Each test builds a bundle, deploys it and looks at what the host
would see: the stored version, the installed units and drop-ins, the
`.wants` symlinks, the `current` link and the volumes.
"""

import json
import os
import shutil

import pytest

from conftest import (current_link, diff, dropin_env, snapshot, state, stored_versions,
                      unit_dir, unit_text, wants)

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

V1_UNITS = [
    {"file": "web-api.service", "start": True},
    {"file": "web-worker@.service", "start": True, "instances": ["a", "b"]},
    {"file": "web-jobs@.service", "start": True, "instances": 2},
    {"file": "web-tool.service", "start": False},
    {"file": "web-clean.timer", "start": True},
]
V1_VOLUMES = {"data": {"index.html": "hello v1\n", "sub/page.txt": "page\n"},
              "conf": {"app.conf": "port=8080\n"}}
V1_EXTRA = {
    "apps": [{"name": "api", "image": {"id": "sha512-" + "ab" * 32, "name": "example.com/api"},
              "mounts": [{"volume": "data", "path": "/srv"}]}],
    "volumes": [{"name": "data", "kind": "empty"},
                {"name": "logs", "kind": "host", "source": "/var/log/web"}],
    "ports": [{"name": "http", "hostPort": 8080}],
}


def v1_bundle(bundle, **kw):
    args = dict(name="web", version=1, units=V1_UNITS, volumes=V1_VOLUMES,
                manifest_extra=V1_EXTRA)
    args.update(kw)
    return bundle(**args)


def v2_bundle(bundle, **kw):
    args = dict(name="web", version=2, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body="version two")},
        {"file": "web-worker@.service", "start": True, "instances": ["b", "c"]},
        {"file": "web-new.service", "start": True},
    ], volumes={"data": {"index.html": "hello v2\n"}})
    args.update(kw)
    return bundle(**args)


V1_STARTED = ["web-api.service", "web-jobs@0.service", "web-jobs@1.service",
              "web-worker@a.service", "web-worker@b.service"]
V1_SERVICES = ["web-api.service", "web-worker@.service", "web-jobs@.service",
               "web-tool.service"]


def file_stats(root):
    """(inode, mtime) of every file and symlink under ROOT, except the lock."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(root)):
        for n in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, str(root))
            if rel == "var/lib/ops/lock":
                continue
            st = os.lstat(p)
            out[rel] = (st.st_ino, st.st_mtime_ns)
    return out


# -- the first deploy ------------------------------------------------------------

def test_first_deploy_stores_the_version(ops, root, bundle):
    b = v1_bundle(bundle)
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    vdir = root / "etc/ops/pods/web/1"
    assert (vdir / "pod.json").read_bytes() == b.pod_json.read_bytes()
    assert sorted(os.listdir(str(vdir / "units"))) == sorted(u["file"] for u in V1_UNITS)
    for u in V1_UNITS:
        assert (vdir / "units" / u["file"]).read_bytes() == \
            (b.dir / "units" / u["file"]).read_bytes()
    st = state(root, "web", 1)
    assert st["outcome"] == "ok"
    assert st.get("deployed_at")


def test_first_deploy_writes_a_concrete_manifest(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    manifest = json.loads((root / "etc/ops/pods/web/1/manifest.json").read_text())
    vols = {v["name"]: v for v in manifest["volumes"]}
    # the top-level "data" volume is replaced, "logs" kept, "conf" appended
    assert len(manifest["volumes"]) == 3
    assert vols["data"] == {"name": "data", "kind": "host", "readOnly": False,
                            "source": "/var/lib/ops/volumes/web/1/data"}
    assert vols["conf"] == {"name": "conf", "kind": "host", "readOnly": False,
                            "source": "/var/lib/ops/volumes/web/1/conf"}
    assert vols["logs"] == {"name": "logs", "kind": "host", "source": "/var/log/web"}
    # everything else of the pod manifest is kept as it was
    assert manifest["apps"] == V1_EXTRA["apps"]
    assert manifest["ports"] == V1_EXTRA["ports"]
    assert manifest["acKind"] == "PodManifest"
    assert manifest["annotations"] == b.manifest["annotations"]


def test_manifest_keeps_the_options_of_the_bundles_volume_entry(ops, root, bundle):
    extra = dict(V1_EXTRA, volumes=[
        {"name": "data", "kind": "host", "source": "/ignored", "readOnly": False,
         "recursive": True},
        {"name": "conf", "kind": "empty", "readOnly": True, "recursive": False,
         "mode": "0700", "uid": 5, "gid": 5},
        {"name": "logs", "kind": "host", "source": "/var/log/web"}])
    b = v1_bundle(bundle, manifest_extra=extra)
    assert ops("deploy", b).code == 0
    manifest = json.loads((root / "etc/ops/pods/web/1/manifest.json").read_text())
    vols = {v["name"]: v for v in manifest["volumes"]}
    # every option is said explicitly; what a host volume must not carry is dropped
    assert vols["data"] == {"name": "data", "kind": "host", "readOnly": False,
                            "recursive": True, "source": "/var/lib/ops/volumes/web/1/data"}
    assert vols["conf"] == {"name": "conf", "kind": "host", "readOnly": True,
                            "recursive": False, "source": "/var/lib/ops/volumes/web/1/conf"}
    # a volume that is not ops's is left exactly as it was
    assert vols["logs"] == {"name": "logs", "kind": "host", "source": "/var/log/web"}


def test_first_deploy_unpacks_volumes_per_version(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    vol = root / "var/lib/ops/volumes/web/1"
    assert (vol / "data/index.html").read_text() == "hello v1\n"
    assert (vol / "data/sub/page.txt").read_text() == "page\n"
    assert (vol / "conf/app.conf").read_text() == "port=8080\n"


def test_current_is_a_relative_symlink(ops, root, bundle):
    assert ops("deploy", v1_bundle(bundle)).code == 0
    link = root / "etc/ops/current/web"
    assert os.path.islink(str(link))
    assert os.readlink(str(link)) == "../pods/web/1"
    assert os.path.samefile(str(link), str(root / "etc/ops/pods/web/1"))


def test_first_deploy_installs_units_and_dropins(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    ud = unit_dir(root)
    for u in V1_UNITS:
        assert (ud / u["file"]).read_bytes() == (b.dir / "units" / u["file"]).read_bytes()
        assert not os.path.islink(str(ud / u["file"]))
    for unit in V1_SERVICES:
        env = dropin_env(root, unit)
        assert env == {"POD_NAME": "web", "POD_VERSION": "1",
                       "POD_MANIFEST": "/etc/ops/pods/web/1/manifest.json",
                       "POD_VOLUMES": "/var/lib/ops/volumes/web/1"}, unit
        text = (ud / (unit + ".d") / "50-ops.conf").read_text()
        assert "[Service]" in text
    assert not os.path.lexists(str(ud / "web-clean.timer.d"))    # services only
    # the paths ops writes are host paths: ROOT appears in none of its files
    for dirpath, _, files in os.walk(str(root)):
        for n in files:
            p = os.path.join(dirpath, n)
            if not os.path.islink(p):
                with open(p, "rb") as f:
                    assert str(root).encode() not in f.read(), p


def test_first_deploy_enables_start_units_and_every_instance(ops, root, bundle):
    assert ops("deploy", v1_bundle(bundle)).code == 0
    assert wants(root) == V1_STARTED
    assert wants(root, "timers.target") == ["web-clean.timer"]
    # each link points at the installed unit file (the template for an instance)
    link = unit_dir(root) / "multi-user.target.wants" / "web-jobs@1.service"
    assert os.readlink(str(link)) == "/etc/systemd/system/web-jobs@.service"


def test_units_without_start_are_installed_but_not_enabled(ops, root, bundle):
    assert ops("deploy", v1_bundle(bundle)).code == 0
    assert (unit_dir(root) / "web-tool.service").is_file()
    found = [os.path.join(d, n) for d, _, files in os.walk(str(unit_dir(root)))
             for n in files if n == "web-tool.service" and d != str(unit_dir(root))]
    assert found == []


def test_deploy_accepts_the_manifest_path(ops, root, bundle):
    b = bundle(name="solo", version=7)
    r = ops("deploy", b.pod_json)
    assert r.code == 0, r
    assert r.last == "deploy solo 7: changed"
    assert current_link(root, "solo") == "../pods/solo/7"


def test_deploy_of_a_pod_without_units(ops, root, bundle):
    b = bundle(name="empty", version=0, units=[])
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy empty 0: changed"
    assert current_link(root, "empty") == "../pods/empty/0"
    assert ops("deploy", b).last == "deploy empty 0: unchanged"


# -- deploying the same version again -------------------------------------------------

def test_identical_redeploy_is_unchanged_and_calls_no_mutating_systemctl(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    before, stats = snapshot(root), file_stats(root)
    r = ops("-v", "deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: unchanged"
    # offline, the links `enable` made are on disk: nothing to ask systemctl
    assert [l for l in r.err.splitlines() if l.startswith("+ ")] == []
    assert diff(before, snapshot(root)) == []
    assert file_stats(root) == stats


def test_a_start_unit_disabled_by_hand_is_enabled_again(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    links = sorted((root / "etc/systemd/system").glob("*.wants/*"))
    assert links
    for link in links:
        link.unlink()
    r = ops("-v", "deploy", b)
    assert (r.code, r.last) == (0, "deploy web 1: changed"), r
    assert any(l.startswith("+ systemctl") and "enable" in l.split() for l in r.err.splitlines())
    assert sorted((root / "etc/systemd/system").glob("*.wants/*")) == links
    assert ops("deploy", b).last == "deploy web 1: unchanged"


def test_identical_redeploy_json_reports_unchanged(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    r = ops("--json", "deploy", b)
    assert r.code == 0
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is False
    assert doc["actions"] == []
    assert doc["pod"] == {"name": "web", "version": 1}


@pytest.mark.parametrize("change", ["unit-byte", "pod-json", "volume-data"])
def test_same_version_with_different_content_is_refused(ops, root, bundle, change):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    if change == "unit-byte":
        p = b.dir / "units/web-api.service"
        data = p.read_bytes()
        p.write_bytes(data[:-1] + b"#")        # one byte differs
    elif change == "pod-json":
        p = b.pod_json
        p.write_bytes(p.read_bytes() + b" ")    # same JSON, other bytes
    else:
        from conftest import make_tar
        make_tar(b.dir / "volumes/data.tar.gz", {"index.html": "changed\n"})
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    msg = r.error_lines[0]
    assert "web:1" in msg
    assert "bump the version" in msg
    assert "undeploy web:1 --remove" in msg
    assert r.out == ""
    assert diff(before, snapshot(root)) == []


# -- converging ---------------------------------------------------------------------

def test_a_unit_file_removed_by_hand_is_put_back(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    (unit_dir(root) / "web-api.service").unlink()
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    assert (unit_dir(root) / "web-api.service").read_bytes() == \
        (b.dir / "units/web-api.service").read_bytes()
    assert wants(root) == V1_STARTED
    # and now it is whole again
    assert ops("deploy", b).last == "deploy web 1: unchanged"


def test_a_unit_disabled_by_hand_is_enabled_again(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    (unit_dir(root) / "multi-user.target.wants/web-worker@b.service").unlink()
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    assert wants(root) == V1_STARTED


def test_a_dropin_removed_by_hand_is_put_back(ops, root, bundle):
    b = v1_bundle(bundle)
    assert ops("deploy", b).code == 0
    shutil.rmtree(str(unit_dir(root) / "web-api.service.d"))
    r = ops("deploy", b)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    assert dropin_env(root, "web-api.service")["POD_VERSION"] == "1"


# -- deploying a new version ------------------------------------------------------

def test_v2_replaces_v1(ops, root, bundle):
    b1 = v1_bundle(bundle)
    assert ops("deploy", b1).code == 0
    b2 = v2_bundle(bundle)
    r = ops("deploy", b2)
    assert r.code == 0, r
    assert r.last == "deploy web 2: changed"
    ud = unit_dir(root)
    # v1-only units: files, drop-ins and enablement gone
    for gone in ("web-jobs@.service", "web-tool.service", "web-clean.timer"):
        assert not os.path.lexists(str(ud / gone)), gone
        assert not os.path.lexists(str(ud / (gone + ".d"))), gone
    assert wants(root) == ["web-api.service", "web-new.service", "web-worker@b.service",
                           "web-worker@c.service"]
    assert wants(root, "timers.target") == []
    # v2's units, with v2's content and drop-ins
    assert (ud / "web-api.service").read_bytes() == (b2.dir / "units/web-api.service").read_bytes()
    for unit in ("web-api.service", "web-new.service", "web-worker@.service"):
        env = dropin_env(root, unit)
        assert env["POD_VERSION"] == "2"
        assert env["POD_MANIFEST"] == "/etc/ops/pods/web/2/manifest.json"
        assert env["POD_VOLUMES"] == "/var/lib/ops/volumes/web/2"
    assert current_link(root, "web") == "../pods/web/2"
    # v1 stays stored, with its own volumes
    assert stored_versions(root, "web") == [1, 2]
    assert (root / "etc/ops/pods/web/1/pod.json").read_bytes() == b1.pod_json.read_bytes()
    assert (root / "var/lib/ops/volumes/web/1/data/index.html").read_text() == "hello v1\n"
    assert (root / "var/lib/ops/volumes/web/2/data/index.html").read_text() == "hello v2\n"
    assert state(root, "web", 2)["outcome"] == "ok"


def test_v2_json_reports_previous_and_actions(ops, root, bundle):
    assert ops("deploy", v1_bundle(bundle)).code == 0
    r = ops("--json", "deploy", v2_bundle(bundle))
    assert r.code == 0, r
    assert len(r.lines) == 1
    doc = r.json()
    assert doc["ok"] is True and doc["changed"] is True
    assert doc["command"] == "deploy"
    assert doc["pod"] == {"name": "web", "version": 2}
    assert doc["previous"] == 1
    assert doc["rolled_back"] is False
    assert doc["error"] is None
    verbs = [a["action"] for a in doc["actions"]]
    assert "install-unit" in verbs and "remove-unit" in verbs and "set-current" in verbs
    removed = [a["target"] for a in doc["actions"] if a["action"] == "remove-unit"]
    assert sorted(removed) == ["web-clean.timer", "web-jobs@.service", "web-tool.service"]


def test_going_back_to_an_older_bundle_by_deploy(ops, root, bundle):
    b1 = v1_bundle(bundle)
    assert ops("deploy", b1).code == 0
    assert ops("deploy", v2_bundle(bundle)).code == 0
    r = ops("deploy", b1)
    assert r.code == 0, r
    assert r.last == "deploy web 1: changed"
    assert current_link(root, "web") == "../pods/web/1"
    assert wants(root) == V1_STARTED
    assert not os.path.lexists(str(unit_dir(root) / "web-new.service"))
    assert dropin_env(root, "web-api.service")["POD_VERSION"] == "1"


# -- conflicts -------------------------------------------------------------------

def test_an_administrators_unit_is_a_conflict(ops, root, bundle):
    ud = unit_dir(root)
    ud.mkdir(parents=True)
    (ud / "web-api.service").write_text("[Service]\nExecStart=/bin/admin\n")
    before = snapshot(root)
    r = ops("deploy", v1_bundle(bundle))
    assert r.code == 2, r
    assert len(r.error_lines) == 1
    assert "web-api.service" in r.error_lines[0]
    assert "belongs to no version" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []


def test_another_pods_unit_is_a_conflict(ops, root, bundle):
    other = bundle(name="other", version=1, units=[{"file": "shared.service", "start": True}])
    assert ops("deploy", other).code == 0
    before = snapshot(root)
    mine = bundle(name="mine", version=1, units=[{"file": "mine.service", "start": True},
                                                 {"file": "shared.service", "start": True}])
    r = ops("deploy", mine)
    assert r.code == 2, r
    assert "shared.service" in r.error_lines[0]
    assert diff(before, snapshot(root)) == []
    assert (unit_dir(root) / "shared.service").read_bytes() == \
        (other.dir / "units/shared.service").read_bytes()


def test_a_conflict_in_v2_leaves_v1_running(ops, root, bundle):
    assert ops("deploy", v1_bundle(bundle)).code == 0
    (unit_dir(root) / "web-new.service").write_text("[Service]\nExecStart=/bin/admin\n")
    before = snapshot(root)
    r = ops("--json", "deploy", v2_bundle(bundle))
    assert r.code == 2, r
    doc = r.json()
    assert doc["ok"] is False
    assert "web-new.service" in doc["error"]
    assert diff(before, snapshot(root)) == []
    assert current_link(root, "web") == "../pods/web/1"


def test_an_unexpected_error_in_the_switch_rolls_the_pod_back(ops, root, bundle, monkeypatch):
    """Whatever goes wrong between the journal and the commit, the pod ends on
    one whole version and no journal is left pending."""
    from ops import execute
    assert ops("deploy", bundle(name="web", version=1)).code == 0

    def broken(self, a):
        raise ValueError("boom")
    monkeypatch.setattr(execute.Executor, "settle", broken)
    r = ops("deploy", bundle(name="web", version=2))
    assert r.code == 1, r
    assert r.error_lines == ["ops: error: web: unexpected error during the deploy: ValueError: "
                             "boom; rolled back to 1"], r
    assert os.readlink(str(root / "etc/ops/current/web")) == "../pods/web/1"
    assert not (root / "var/lib/ops/journal/web.json").exists()
    state = json.loads((root / "etc/ops/pods/web/2/state.json").read_text())
    assert state["outcome"] == "failed"
