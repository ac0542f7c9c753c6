"""What ops finds on the host must not lead it to destroy what it cannot
vouch for: a cache (the per-pod index) never decides a deletion, and a
journal that cannot be trusted never leads to a rollback."""

import json
import os

import pytest

from conftest import current_link, diff, snapshot, state, stored_versions, unit_dir


def journal_path(root, name):
    return root / "var/lib/ops/journal" / ("%s.json" % name)


def deploy_all(ops, bundle, *refs):
    out = {}
    for name, version in refs:
        b = bundle(name=name, version=version)
        r = ops("deploy", b)
        assert r.code == 0, r
        out[(name, version)] = b
    return out


# -- the index is a cache -----------------------------------------------------

def test_an_index_line_saying_staged_does_not_delete_a_version_that_ran(ops, bundle, root):
    deploy_all(ops, bundle, ("web", 1), ("web", 2))
    index = root / "etc/ops/pods/web/index"
    lines = index.read_text().splitlines(True)
    forged = [l.replace("\tok\t", "\tstaged\t") if l.startswith("1\t") else l for l in lines]
    assert forged != lines
    index.write_text("".join(forged))     # newer than state.json: the line is trusted
    r = ops("deploy", bundle(name="db", version=1))       # recovery runs first
    assert r.code == 0, r
    assert stored_versions(root, "web") == [1, 2]
    assert state(root, "web", 1)["outcome"] == "ok"
    r = ops("redeploy", "web:1")
    assert r.code == 0, r


def test_a_version_really_staged_and_never_run_is_still_removed(ops, bundle, root):
    deploy_all(ops, bundle, ("web", 1), ("web", 2))
    assert ops("redeploy", "web:1").code == 0
    st = root / "etc/ops/pods/web/2/state.json"
    data = json.loads(st.read_text())
    data["outcome"] = "staged"
    st.write_text(json.dumps(data))
    r = ops("deploy", bundle(name="db", version=1))
    assert r.code == 0, r
    assert stored_versions(root, "web") == [1]


def test_volumes_of_a_version_whose_pod_json_is_lost_are_kept(ops, bundle, root):
    b = bundle(name="web", version=1, volumes={"data": {"a.txt": "a"}})
    assert ops("deploy", b).code == 0
    os.unlink(str(root / "etc/ops/pods/web/1/pod.json"))
    r = ops("deploy", bundle(name="db", version=1))
    assert r.code == 0, r
    assert (root / "var/lib/ops/volumes/web/1/data/a.txt").read_text() == "a"


# -- journals that cannot be trusted ------------------------------------------

UNTRUSTED = {
    "empty": ("", "the file is empty"),
    "truncated": ('{"pod": "web", "from": 1', "not a JSON object"),
    "a list": ("[]", "not a JSON object"),
    "another pod": ('{"pod": "db", "from": null, "to": 1, "command": "deploy"}',
                    "it names pod 'db', not 'web'"),
    "from not stored": ('{"pod": "web", "from": 7, "to": 2, "command": "deploy"}',
                        "version 7, which it names to roll back to, is not stored"),
    "from a string": ('{"pod": "web", "from": "1", "to": 2, "command": "deploy"}',
                      "'from' is not a version number"),
    "unknown command": ('{"pod": "web", "from": 1, "to": 2, "command": "rm -rf"}',
                        '"command" is not one of'),
    "not UTF-8": ("\udcff", "not a JSON object"),
    "nested too deeply": ('{"pod": "web", "x": ' + "[" * 100000 + "]" * 100000 + "}",
                          "not a JSON object (nested too deeply"),
    "infinite from": ('{"pod": "web", "from": 1e999, "to": 2, "command": "deploy"}',
                      "not a JSON object (the number 1e999 is too large"),
    "NaN": ('{"pod": "web", "from": NaN, "to": 2, "command": "deploy"}',
            "not a JSON object (NaN is not valid JSON"),
    # a run from nothing to nothing cannot have left version 1 current
    "from nothing, 1 current": ('{"pod": "web", "from": null, "to": null, "command": "deploy"}',
                                "version 1 is current, and it names that neither as where the "
                                "run came from nor where it went"),
}


def write_journal(root, name, text):
    p = journal_path(root, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(text.encode("utf-8", "surrogateescape"))
    return p


@pytest.mark.parametrize("case", sorted(UNTRUSTED))
def test_an_untrusted_journal_of_one_pod_does_not_roll_it_back(case, ops, bundle, root):
    """A deploy of another pod leaves the pod alone, warning with the file."""
    deploy_all(ops, bundle, ("web", 1), ("db", 1))
    text, why = UNTRUSTED[case]
    j = write_journal(root, "web", text)
    web_before = {k: v for k, v in snapshot(root).items()
                  if "web" in k and not k.startswith("var/lib/ops/journal")}
    r = ops("deploy", bundle(name="db", version=2))
    assert r.code == 0, r
    assert current_link(root, "web") == "../pods/web/1"
    assert (unit_dir(root) / "web-main.service").exists()
    assert diff(web_before, {k: v for k, v in snapshot(root).items()
                             if "web" in k and not k.startswith("var/lib/ops/journal")}) == []
    assert j.exists()
    assert "%s: cannot be trusted (%s" % (j, why) in r.err, r
    assert "web is left alone" in r.err


@pytest.mark.parametrize("case", sorted(UNTRUSTED))
def test_a_command_about_that_pod_is_refused_naming_the_journal(case, ops, bundle, root):
    deploy_all(ops, bundle, ("web", 1))
    j = write_journal(root, "web", UNTRUSTED[case][0])
    before = snapshot(root)
    for args in (("deploy", bundle(name="web", version=2)), ("undeploy", "web", "--remove"),
                 ("redeploy", "web:1")):
        r = ops(*args)
        assert r.code == 2, r
        assert r.error_lines == [
            "ops: error: %s: cannot be trusted (%s" % (j, UNTRUSTED[case][1])
            + r.error_lines[0].split(UNTRUSTED[case][1], 1)[1]], r
        assert "nothing was changed" in r.err and "then delete this file" in r.err
        assert diff(before, snapshot(root)) == []
    r = ops("--json", "undeploy", "web")
    assert r.code == 2 and r.json()["exit_code"] == 2 and str(j) in r.json()["error"]
    os.unlink(str(j))                       # the operator settles it
    assert ops("deploy", bundle(name="web", version=2)).code == 0


def test_cleanup_leaves_a_pod_with_an_untrusted_journal_alone(ops, bundle, root):
    deploy_all(ops, bundle, ("web", 1), ("web", 2), ("web", 3), ("db", 1), ("db", 2))
    write_journal(root, "web", "")
    r = ops("cleanup", "--keep", "0")
    assert r.code == 0, r
    assert stored_versions(root, "web") == [1, 2, 3]
    assert stored_versions(root, "db") == [1, 2]    # 1 is the rollback target, which cleanup keeps
    assert "cleanup web: unchanged" in r.lines


def test_dry_run_says_an_untrusted_journal_cannot_be_trusted(ops, bundle, root):
    deploy_all(ops, bundle, ("web", 1))
    j = write_journal(root, "web", "{")
    r = ops("--dry-run", "deploy", bundle(name="db", version=1))
    assert r.code == 0, r
    assert "%s is left by an interrupted run and cannot be trusted" % j in r.err


def test_a_trusted_journal_is_still_rolled_back(ops, bundle, root):
    """The journal ops itself writes (an interrupted switch from 1 to 2)."""
    deploy_all(ops, bundle, ("web", 1), ("web", 2))
    write_journal(root, "web", json.dumps({"pod": "web", "from": 1, "to": 2,
                                           "command": "deploy", "pid": 1}))
    r = ops("deploy", bundle(name="db", version=1))
    assert r.code == 0, r
    assert current_link(root, "web") == "../pods/web/1"
    assert not journal_path(root, "web").exists()
    assert state(root, "web", 2)["outcome"] == "failed"


# -- state.json that cannot be read ----------------------------------------------

def with_image(bundle, name, version, image_file):
    from tests.support import aci
    b = bundle(name=name, version=version, units=[{"file": "%s.service" % name, "start": True}])
    (b.dir / "app.aci").write_bytes(image_file.read_bytes())
    doc = dict(b.ops_doc, images=[{"path": "app.aci", "id": aci.image_id_of_file(
        str(b.dir / "app.aci"))}])
    manifest = json.loads(b.pod_json.read_text())
    manifest["annotations"][-1]["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest))
    return b


def test_an_image_is_not_removed_while_a_version_that_may_use_it_is_unreadable(
        ops, bundle, rkt, root, tmp_path):
    from tests.support import aci
    image = tmp_path / "shared.aci"
    image_id = aci.build_aci(image, name="example.com/shared")
    assert ops("deploy", with_image(bundle, "web", 1, image)).code == 0
    assert ops("deploy", with_image(bundle, "db", 1, image)).code == 0
    (root / "etc/ops/pods/db/1/state.json").write_text("{")    # db's record of its image is lost
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert "db:1's state.json cannot be read: no image is removed" in r.err
    assert rkt.removals() == []
    assert rkt.store() == [image_id[:71]]


def test_a_failed_staging_does_not_remove_an_image_someone_else_fetched_meanwhile(
        ops, bundle, rkt, root, tmp_path, monkeypatch):
    """The image list read when planning is a cache: between it and the fetch
    the administrator fetched the same image; the failed deploy keeps it."""
    from ops import stage
    from tests.support import aci
    image = tmp_path / "app.aci"
    image_id = aci.build_aci(image, name="example.com/app")
    b = with_image(bundle, "web", 1, image)
    (b.dir / "volumes").mkdir()
    (b.dir / "volumes/data.tar").write_bytes(b"not a tar archive" * 100)
    doc = json.loads(json.loads(b.pod_json.read_text())["annotations"][-1]["value"])
    doc["volumes"] = [{"volume": "data", "data": "volumes/data.tar"}]
    manifest = json.loads(b.pod_json.read_text())
    manifest["annotations"][-1]["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest))
    original = stage.Stager.fetch_image

    def admin_fetches_first(self, a):
        p = rkt.run("--insecure-options=image", "fetch", str(image))
        assert p.returncode == 0, p.stderr
        return original(self, a)
    monkeypatch.setattr(stage.Stager, "fetch_image", admin_fetches_first)
    r = ops("deploy", b)
    assert r.code == 1, r
    assert "not a tar archive" in r.err
    assert rkt.store() == [image_id[:71]]
    assert rkt.removals() == []


def edit_state(root, name, version, **changes):
    p = root / "etc/ops/pods" / name / str(version) / "state.json"
    data = json.loads(p.read_text())
    data.update(changes)
    p.write_text(json.dumps(data))


@pytest.mark.parametrize("history", [None, 5, "text", {"at": 1}])
def test_an_outcome_is_recorded_over_a_history_that_is_not_a_list(history, ops, bundle, root):
    """state.json's history edited into something else: the redeploy that
    records an outcome there, and the recovery that marks an interrupted
    deploy failed, start the list anew instead of failing."""
    deploy_all(ops, bundle, ("web", 1), ("web", 2))
    edit_state(root, "web", 1, history=history)
    r = ops("redeploy", "web:1")
    assert r.code == 0, r
    assert [e["outcome"] for e in state(root, "web", 1)["history"]] == ["ok"]
    edit_state(root, "web", 2, history=history)
    write_journal(root, "web", json.dumps({"pod": "web", "from": 1, "to": 2,
                                           "command": "redeploy", "pid": 1}))
    r = ops("undeploy", "db")
    assert r.code == 0, r
    assert "unexpected" not in r.err
    assert [e["outcome"] for e in state(root, "web", 2)["history"]] == ["failed"]
    assert not journal_path(root, "web").exists()


def test_a_current_that_is_not_a_link_is_refused_for_its_pod_only(ops, bundle, root):
    """etc/ops/current/web made a directory: ops cannot tell which version
    runs.  Before, status said "not deployed" while web's units were
    installed, and a deploy of web failed its rollback (exit 4).  Now a
    command about web is refused naming the path, and changes nothing;
    commands about other pods, cleanup and list go on."""
    deploy_all(ops, bundle, ("web", 1), ("db", 1))
    link = root / "etc/ops/current/web"
    link.unlink()
    link.mkdir()
    before = snapshot(root)
    for args in (("status", "web"), ("deploy", bundle(name="web", version=2)),
                 ("undeploy", "web"), ("redeploy", "web:1"), ("cleanup", "web")):
        r = ops(*args)
        assert r.code == 2, (args, r)
        assert r.error_lines[0].startswith("ops: error: %s: not a symbolic link" % link), r
        assert diff(before, snapshot(root)) == []
    r = ops("--json", "status")
    assert r.code == 5, r
    web = [p for p in r.json()["pods"] if p["name"] == "web"][0]
    assert "not a symbolic link" in web["drift"][0]["problem"]
    assert ops("list").code == 0
    assert ops("cleanup", "--keep", "0").code == 0
    r = ops("deploy", bundle(name="db", version=2))
    assert r.code == 0, r
    assert (unit_dir(root) / "web-main.service").exists()
    assert link.is_dir()


def test_a_pin_that_cannot_be_removed_is_named_by_its_whole_path(ops, bundle, root):
    """A system call made relative to a directory's descriptor names only the
    entry; the error line names the whole path (here: a pin made a directory)."""
    deploy_all(ops, bundle, ("web", 1))
    pin = root / "etc/ops/pods/web/1.pinned"
    pin.mkdir()
    r = ops("unpin", "web:1")
    assert r.code == 1, r
    assert r.error_lines == ["ops: error: %s: Is a directory" % pin], r
    assert pin.is_dir()


# -- names read back from state.json are names, never paths ----------------------------------------

@pytest.mark.parametrize("form", ["relative", "absolute"])
def test_a_units_key_that_is_a_path_is_refused_and_nothing_outside_root_is_opened(
        form, ops, bundle, root, tmp_path, monkeypatch):
    """state.json's "units" maps each stored unit to its digest; a key edited
    into a path (../../x, /etc/shadow) would make ops read a file outside
    ROOT, and tell by its refusal whether the file holds what was guessed."""
    from ops.units import digest
    b = bundle(name="web", version=1)
    assert ops("deploy", b).code == 0
    secret = tmp_path / "outside-secret"
    secret.write_bytes(b"s3cret\n")
    units_dir = root / "etc/ops/pods/web/1/units"
    key = os.path.relpath(str(secret), str(units_dir)) if form == "relative" else str(secret)
    p = root / "etc/ops/pods/web/1/state.json"
    data = json.loads(p.read_text())
    data["units"][key] = digest(b"s3cret\n")        # the right guess
    p.write_text(json.dumps(data))
    opened, real_open = [], os.open

    def spy(path, *a, **k):
        if "outside-secret" in str(path):
            opened.append(path)
        return real_open(path, *a, **k)
    monkeypatch.setattr(os, "open", spy)
    before = snapshot(root)
    for args in (("deploy", b), ("--dry-run", "deploy", b), ("redeploy", "web:1")):
        r = ops(*args)
        assert r.code == 2 and len(r.error_lines) == 1, r
        assert str(p) in r.err and "is not a unit file's name" in r.err, r
    assert opened == [] and diff(before, snapshot(root)) == []


@pytest.mark.parametrize("text, plain, instance", [
    ("web.service", True, True), ("web@.service", True, True), ("web@a.b.service", False, True),
    ("web-a.socket", True, True), ("../web.service", False, False), ("/etc/shadow", False, False),
    ("units/web.service", False, False), ("web@../x.service", False, False), (".web.service", False, False),
    ("web", False, False), ("", False, False), (7, False, False), ("a" * 300 + ".service", False, False)])
def test_only_a_unit_files_name_is_a_unit_name(text, plain, instance):
    from ops.names import is_unit_name
    assert (is_unit_name(text), is_unit_name(text, instance=True)) == (plain, instance)
