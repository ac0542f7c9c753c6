"""`ops diff NAME[:A] TARGET`: unit files as a unified diff, then one line per
other change; reads only; exit 2 for bad input, 0 whether or not they differ."""

import hashlib
import os

import pytest

from conftest import snapshot, unit_text

KEYS = {"ok", "changed", "command", "dry_run", "exit_code", "pod", "previous", "rolled_back",
        "stop_timed_out", "actions", "error", "reason", "differs", "diff", "changes"}


def web(bundle, version, body=None, units=None, **kw):
    return bundle(name="web", version=version, units=units or [
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body=body or "v1")}], **kw)


def test_two_stored_versions_unit_diff_and_other_changes(ops, root, bundle):
    assert ops("deploy", web(bundle, 1, volumes={"data": {"a": "1"}})).code == 0
    b2 = web(bundle, 2, body="v2", volumes={"data": {"a": "2"}}, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service", body="v2")},
        {"file": "web-w@.service", "start": True, "instances": ["a", "b"]}])
    assert ops("deploy", b2).code == 0
    os.unlink(str(root / "var/lib/ops/lock"))
    before = snapshot(root, ignore_lock=False)
    r = ops("diff", "web:1", "web:2")
    assert r.code == 0, r
    assert snapshot(root, ignore_lock=False) == before      # reads only, takes no lock
    assert "--- web:1/web-api.service\n+++ web:2/web-api.service\n" in r.out
    assert "-ExecStart=/bin/true v1\n+ExecStart=/bin/true v2\n" in r.out
    assert "--- /dev/null\n+++ web:2/web-w@.service\n" in r.out
    assert "\nvolume data: content sha256:" in r.out
    # the digest is the archive's own
    digest = hashlib.sha256((b2.dir / "volumes" / "data.tar.gz").read_bytes()).hexdigest()
    assert ("-> sha256:%s\n" % digest) in r.out
    # the other way round: the template is removed
    back = ops("diff", "web:2", "web:1")
    assert "--- web:2/web-w@.service\n+++ /dev/null\n" in back.out


def test_the_same_prints_nothing_and_exits_0(ops, bundle):
    b = web(bundle, 1)
    assert ops("deploy", b).code == 0
    for target in ("web:1", str(b.dir), "web"):
        r = ops("diff", "web", target)
        assert (r.code, r.out) == (0, ""), (target, r)
    j = ops("--json", "diff", "web", "web:1").json()
    assert (j["differs"], j["diff"], j["changes"], j["ok"]) == (False, "", [], True)


def test_against_a_bundle_instances_start_health_and_json(ops, bundle):
    assert ops("deploy", web(bundle, 1, units=[
        {"file": "web-w@.service", "start": True, "instances": ["a", "b"]},
        {"file": "web-t.service", "start": True}])).code == 0
    b = web(bundle, 2, units=[
        {"file": "web-w@.service", "start": True, "instances": ["b", "c"]},
        {"file": "web-t.service", "start": False}])
    b.ops_doc["health"] = {"exec": ["/bin/true"], "retries": 2}
    import json
    b.manifest["annotations"][-1]["value"] = json.dumps(b.ops_doc)
    b.pod_json.write_text(json.dumps(b.manifest))
    r = ops("diff", "web", str(b.dir))
    assert r.code == 0, r
    assert "instances web-w@.service: added c; removed a" in r.lines
    assert "unit web-t.service: start yes -> no" in r.lines
    assert "health: none -> exec /bin/true (timeout 5, retries 2, interval 1)" in r.lines
    j = ops("--json", "diff", "web", str(b.dir)).json()
    assert set(j) == KEYS
    assert j["pod"] == {"name": "web", "version": 1}
    assert j["differs"] is True and j["diff"] == r.out
    kinds = {c["kind"] for c in j["changes"]}
    assert kinds == {"unit", "instances", "start", "health"}
    inst = next(c for c in j["changes"] if c["kind"] == "instances")
    assert (inst["added"], inst["removed"]) == (["c"], ["a"])


def test_images_added_and_removed_by_id(ops, bundle, rkt):
    from test_images_offline import image_bundle
    same = [{"file": "web-main.service", "start": True, "text": unit_text("web-main.service")}]
    b1 = image_bundle(bundle, images=[{"file": "app.aci", "id": True, "version": "1.0"}],
                      units=same)
    assert ops("deploy", b1).code == 0
    b2 = image_bundle(bundle, version=2, images=[{"file": "app.aci", "id": True,
                                                  "version": "2.0"}], units=same)
    r = ops("diff", "web", str(b2.dir))
    assert r.code == 0, r
    assert "image removed: %s (images/app.aci)" % b1.image_ids[0] in r.lines
    assert "image added: %s (images/app.aci)" % b2.image_ids[0] in r.lines
    assert ops("deploy", b2).code == 0
    assert ops("diff", "web:1", "web:2").lines == [
        "image removed: %s (images/app.aci)" % b1.image_ids[0],
        "image added: %s (images/app.aci)" % b2.image_ids[0]]


@pytest.mark.parametrize("args, where", [
    (("web:9", "web:1"), "web:9: version 9 of web is not stored (stored: 1)"),
    (("nopod", "web:1"), "nopod: no current version of nopod: no such pod"),
    (("web", "web:x"), "web:x"),
    (("web", "./missing"), "./missing: no such file"),
])
def test_bad_input_is_one_error_line_exit_2(ops, bundle, args, where):
    assert ops("deploy", web(bundle, 1)).code == 0
    r = ops("diff", *args)
    assert r.code == 2 and r.out == "", r
    assert len(r.error_lines) == 1 and r.error_lines[0].startswith("ops: error: " + where), r
    j = ops("--json", "diff", *args).json()
    assert set(j) == KEYS and j["exit_code"] == 2 and j["differs"] is False


def test_invalid_bundle_is_refused_as_check_refuses_it(ops, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    b = web(bundle, 2)
    b.pod_json.write_text("{")
    r = ops("diff", "web", str(b.dir))
    assert r.code == 2
    assert r.error_lines == ops("check", str(b.dir)).error_lines


def test_a_bundle_named_by_its_pod_json_is_labelled_by_its_directory(ops, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    b = web(bundle, 2, body="v2")
    r = ops("diff", "web", str(b.pod_json))
    assert r.code == 0 and "+++ %s/web-api.service\n" % b.dir in r.out, r


def test_a_remote_unit_is_not_downloaded_and_said_so(ops, bundle):
    import json
    assert ops("deploy", web(bundle, 1)).code == 0
    b = web(bundle, 2)
    b.ops_doc["systemd-units"] = [{"unit-file": "http://127.0.0.1:9/web-api.service",
                                   "start": True}]
    b.manifest["annotations"][-1]["value"] = json.dumps(b.ops_doc)
    b.pod_json.write_text(json.dumps(b.manifest))
    r = ops("diff", "web", str(b.dir))
    assert r.code == 0, r
    assert r.lines == ["unit web-api.service: its file is remote "
                       "(http://127.0.0.1:9/web-api.service): not compared"], r


def test_volume_options_read_only_and_owner(ops, bundle):
    import json
    same = [{"file": "web-api.service", "start": True, "text": unit_text("web-api.service")}]
    assert ops("deploy", bundle(name="web", version=1, units=same,
                                volumes={"data": {"a": "1"}})).code == 0
    b = bundle(name="web", version=2, units=same, volumes={"data": {"a": "1"}},
               manifest_extra={"volumes": [{"name": "data", "kind": "host",
                                            "source": "/x", "readOnly": True}]})
    b.ops_doc["volumes"][0]["owner"] = "0:0"
    b.manifest["annotations"][-1]["value"] = json.dumps(b.ops_doc)
    b.pod_json.write_text(json.dumps(b.manifest))
    r = ops("diff", "web", str(b.dir))
    assert r.code == 0, r
    assert r.lines == ["volume data: readOnly no -> yes", "volume data: owner none -> 0:0"], r


def test_control_characters_are_escaped_and_a_binary_unit_is_said_binary(ops, bundle):
    """What the terminal shows of a unit file cannot draw on it: an escape
    sequence, a carriage return or a form feed is escaped (a form feed is no
    line end), bytes that are not UTF-8 are shown as \\xNN, and a unit file
    holding a NUL byte is said to differ, as GNU diff says it."""
    assert ops("deploy", web(bundle, 1, units=[
        {"file": "web-api.service", "start": True, "text": unit_text("web-api.service")},
        {"file": "web-b.service", "start": False, "text": unit_text("web-b.service")}])).code == 0
    b = web(bundle, 2, units=[
        {"file": "web-api.service", "start": True,
         "text": unit_text("web-api.service") + "# \x1b[2J\x1b]0;owned\x07 x\ry\x0cz\n"},
        {"file": "web-b.service", "start": False, "text": unit_text("web-b.service")}])
    with open(os.path.join(str(b.dir), "units", "web-api.service"), "ab") as f:
        f.write(b"# caf\xe9\n")
    with open(os.path.join(str(b.dir), "units", "web-b.service"), "ab") as f:
        f.write(b"\0\x1b[31m\n")
    r = ops("diff", "web", str(b.dir))
    assert r.code == 0, r
    assert "\x1b" not in r.out and "\r" not in r.out and "\x0c" not in r.out, r
    assert "\x07" not in r.out and "\0" not in r.out
    assert "+# \\x1b[2J\\x1b]0;owned\\x07 x\\ry\\x0cz\n" in r.out, r.out
    assert "+# caf\\xe9\n" in r.out
    assert "Binary files web:1/web-b.service and %s/web-b.service differ\n" % b.dir in r.out
    j = ops("--json", "diff", "web", str(b.dir)).json()
    assert j["diff"] == r.out
    assert {"kind": "unit", "name": "web-b.service", "change": "changed"} in j["changes"]


def test_a_unit_file_that_cannot_be_read_is_not_compared_and_said_so(ops, root, bundle):
    """A stored unit file removed by hand, or one over the read bound, is not
    shown as emptied (a diff of every line): it is not compared, and the line
    names the file and why."""
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", web(bundle, 2, body="v2")).code == 0
    stored = root / "etc/ops/pods/web/2/units/web-api.service"
    stored.unlink()
    r = ops("diff", "web:1", "web:2")
    assert r.code == 0, r
    assert r.lines == ["unit web-api.service: cannot read %s: No such file or directory: "
                       "not compared" % stored], r
    j = ops("--json", "diff", "web:1", "web:2").json()
    assert j["changes"] == [{"kind": "unit", "name": "web-api.service", "change": "unknown"}]


def test_a_target_of_another_pod_is_refused(ops, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    other = bundle(name="db", version=1, units=[
        {"file": "db.service", "start": True, "text": unit_text("db.service", body="v1")}])
    assert ops("deploy", other).code == 0
    for target in ("db:1", str(other.dir)):
        r = ops("diff", "web:1", target)
        assert r.code == 2 and r.out == "", r
        assert r.error_lines == ["ops: error: %s: is pod db, not web: ops diff compares two versions "
                                 "of one pod" % target], r
