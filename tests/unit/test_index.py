"""Each pod's index (etc/ops/pods/NAME/index): `list` reads it instead of
every state.json, and must never show other than state.json says."""

import json
import os
import time

import pytest

from conftest import unit_text


def deploy(ops, bundle, version):
    b = bundle(name="web", version=version,
               units=[{"file": "web.service", "start": True,
                       "text": unit_text("web.service", body="v%d" % version)}])
    r = ops("deploy", b)
    assert r.code == 0, r


def listed(ops):
    r = ops("--json", "list")
    assert r.code == 0, r
    return [(p["version"], p["outcome"], p["current"]) for p in json.loads(r.out)["pods"]]


def index_lines(root):
    with open(str(root / "etc/ops/pods/web/index")) as f:
        return [l.split("\t") for l in f.read().splitlines() if not l.startswith("#")]


def age_index(root, seconds):
    """Move the index file's mtime: older than the versions' ctimes makes
    every line untrusted; newer makes them trusted."""
    p = str(root / "etc/ops/pods/web/index")
    t = time.time() + seconds
    os.utime(p, (t, t))


@pytest.fixture
def three(ops, bundle, root):
    for v in (1, 2, 3):
        deploy(ops, bundle, v)
    age_index(root, 10)      # as if written well after the versions (no clock tick shared)
    return root


def test_each_version_has_a_line_with_what_list_shows(three, ops):
    lines = index_lines(three)
    assert [(l[0], l[1]) for l in lines] == [("1", "ok"), ("2", "ok"), ("3", "ok")]
    for l in lines:
        st = json.loads((three / "etc/ops/pods/web" / l[0] / "state.json").read_text())
        assert l[2] == st["deployed_at"] and len(l) == 9
    assert listed(ops) == [(1, "ok", False), (2, "ok", False), (3, "ok", True)]


def test_a_trusted_line_is_what_list_shows(three, ops):
    """The index is really used: a line edited by hand (its stat fields
    intact) shows, while the index is newer than the version."""
    p = three / "etc/ops/pods/web/index"
    p.write_text(p.read_text().replace("2\tok\t", "2\tfrom-the-index\t"))
    age_index(three, 10)
    assert listed(ops)[1] == (2, "from-the-index", False)


def test_a_line_as_new_as_the_index_is_read_from_state_json(three, ops):
    """A change in the clock tick of the index write would not show in the
    stat fields: such lines are not trusted (git's racy rule)."""
    p = three / "etc/ops/pods/web/index"
    p.write_text(p.read_text().replace("2\tok\t", "2\tfrom-the-index\t"))
    age_index(three, -3600)
    assert listed(ops)[1] == (2, "ok", False)


def test_state_json_edited_in_place_shows_at_once(three, ops):
    p = three / "etc/ops/pods/web/2/state.json"
    text = p.read_text()
    assert '"outcome": "ok"' in text
    with open(str(p), "r+") as f:          # in place, same size: the directory does not change
        f.write(text.replace('"outcome": "ok"', '"outcome": "no"'))
    assert listed(ops)[1] == (2, "no", False)


def test_a_version_whose_pod_json_is_gone_is_not_listed(three, ops):
    os.unlink(str(three / "etc/ops/pods/web/2/pod.json"))
    assert [v for v, _, _ in listed(ops)] == [1, 3]


def test_only_names_that_are_versions_are_listed(three, ops):
    """A directory is a version when its name is ASCII digits below 2^63
    (SPEC), whatever the index says of it: lines are copied for the others."""
    import shutil
    pod = three / "etc/ops/pods/web"
    names = ["9223372036854775807", "9223372036854775808", "12345678901234567890", "\u00b2", "1a"]
    for n in names:
        shutil.copytree(str(pod / "2"), str(pod / n))
    line = [l for l in (pod / "index").read_text().splitlines() if l.startswith("2\t")][0]
    with open(str(pod / "index"), "a") as f:
        f.write("".join(n + line[1:] + "\n" for n in names))
    age_index(three, 10)
    assert [v for v, _, _ in listed(ops)] == [1, 2, 3, 2 ** 63 - 1]


def test_missing_or_garbage_index_changes_nothing_listed(three, ops):
    want = listed(ops)
    p = three / "etc/ops/pods/web/index"
    p.write_bytes(b"\xff\xfe garbage\n1\tok\n\t\t\t\n")
    assert listed(ops) == want
    p.unlink()
    assert listed(ops) == want


def test_the_next_deploy_writes_lines_for_versions_the_index_lacks(three, ops, bundle):
    (three / "etc/ops/pods/web/index").unlink()
    deploy(ops, bundle, 4)
    assert [l[0] for l in index_lines(three)] == ["1", "2", "3", "4"]
    assert listed(ops)[-1] == (4, "ok", True)


def test_cleanup_then_deploy_drops_lines_of_removed_versions(three, ops, bundle):
    assert ops("cleanup", "--keep", "0").code == 0      # keeps 2: the rollback target
    deploy(ops, bundle, 4)
    assert [l[0] for l in index_lines(three)] == ["2", "3", "4"]


def test_undeploy_remove_leaves_no_pod_directory(three, ops):
    assert ops("undeploy", "web", "--remove").code == 0
    assert not (three / "etc/ops/pods/web").exists()
    assert listed(ops) == []


def test_list_of_an_unchanged_store_does_not_write(three, ops):
    p = three / "etc/ops/pods/web/index"
    before = (p.read_bytes(), os.stat(str(p)).st_mtime_ns)
    listed(ops)
    assert (p.read_bytes(), os.stat(str(p)).st_mtime_ns) == before


def test_a_leftover_in_a_version_the_index_vouched_for_is_still_removed(three, ops):
    """Recovery scans only the version directories that changed since the
    index was written; a file a killed run left there is such a change."""
    left = three / "etc/ops/pods/web/1/.ops-tmp-4242-state.json"
    left.write_text("{")
    age_index(three, 10)       # the index newer still: only the stat key tells
    r = ops("cleanup", "--keep", "5")
    assert r.code == 0, r
    assert not left.exists()
    assert listed(ops) == [(1, "ok", False), (2, "ok", False), (3, "ok", True)]


def test_an_index_that_cannot_be_written_does_not_fail_the_deploy(ops, root, bundle, monkeypatch):
    from ops import atomic
    real = atomic.write_text

    def full_for_the_index(path, *a, **kw):
        if path.endswith("/index"):
            raise OSError(28, "No space left on device", path)
        return real(path, *a, **kw)
    monkeypatch.setattr(atomic, "write_text", full_for_the_index)
    r = ops("deploy", bundle(name="web", version=1))
    assert (r.code, r.last) == (0, "deploy web 1: changed"), r
    monkeypatch.undo()
    r = ops("--json", "list")
    assert [(p["version"], p["outcome"]) for p in r.json()["pods"]] == [(1, "ok")]


def test_control_characters_edited_into_state_json_are_shown_escaped(three, ops):
    p = three / "etc/ops/pods/web/2/state.json"
    st = json.loads(p.read_text())
    st["outcome"], st["deployed_at"] = "ok\x1b[2J", "\x1b]0;x\x072026"
    p.write_text(json.dumps(st))
    r = ops("list")
    assert r.code == 0, r
    assert "\x1b" not in r.out and "\x07" not in r.out, repr(r.out)
    assert "ok\\x1b[2J" in r.out and "\\x1b]0;x\\x072026" in r.out
    assert listed(ops)[1] == (2, "ok\x1b[2J", False)      # --json carries the text as it is
