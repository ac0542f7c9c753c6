"""ops.store on its own: stored versions, their state.json, the order of
versions, the ``current`` link, references NAME[:VERSION] and tree removal."""

import json
import os

import pytest

from conftest import current_link, state
from ops import atomic, store
from ops.errors import UsageError
from ops.layout import Layout


@pytest.fixture
def layout(root):
    return Layout(str(root))


def fake_version(layout, name, version, pod_json=True):
    """A version directory as the store sees it (pod.json present or not)."""
    d = layout.version_dir(name, version)
    os.makedirs(os.path.join(d, "units"))
    if pod_json:
        with open(os.path.join(d, "pod.json"), "w") as f:
            f.write("{}")
    return d


def test_versions_are_numeric_order_and_only_directories_with_pod_json(layout):
    for n in (10, 2, 1):
        fake_version(layout, "web", n)
    fake_version(layout, "web", 5, pod_json=False)
    os.makedirs(layout.path("etc/ops/pods/web/.ops-tmp-42-3"))
    os.makedirs(layout.path("etc/ops/pods/web/latest"))
    with open(layout.path("etc/ops/pods/web/1.pinned"), "w"):
        pass
    vs = store.versions(layout, "web")
    assert [v.version for v in vs] == [1, 2, 10]
    assert vs[0] == store.StoredVersion("web", 1, layout.version_dir("web", 1))
    assert [n for n, _ in store.version_dirs(layout, "web")] == [1, 2, 5, 10]
    assert store.get(layout, "web", 5) is None
    assert store.get(layout, "web", 2) == vs[1]
    assert store.versions(layout, "nosuchpod") == []


def test_pods_are_sorted_and_hidden_names_left_out(layout):
    for name in ("web", "db", "api"):
        fake_version(layout, name, 1)
    os.makedirs(layout.path("etc/ops/pods/.ops-tmp-1-x"))
    with open(layout.path("etc/ops/pods/stray-file"), "w"):
        pass
    assert store.pods(layout) == ["api", "db", "web"]


def test_state_is_empty_until_written_then_record_keeps_a_history(layout):
    fake_version(layout, "web", 1)
    sv = store.get(layout, "web", 1)
    assert sv.state() == {}
    sv.record("failed", reason={"message": "web-a.service: is not active"})
    st = json.loads(open(sv.state_json).read())
    assert st["outcome"] == "failed"
    assert st["reason"] == {"message": "web-a.service: is not active"}
    assert [h["outcome"] for h in st["history"]] == ["failed"]
    assert st["deployed_at"] == st["history"][0]["at"]
    sv.record("ok")
    st = sv.state()
    assert st["outcome"] == "ok" and st["reason"] is None
    assert [h["outcome"] for h in st["history"]] == ["failed", "ok"]
    for _ in range(25):
        sv.record("ok")
    assert len(sv.state()["history"]) == 20


def test_write_state_keeps_other_keys_and_updates_the_index(layout):
    fake_version(layout, "web", 1)
    sv = store.get(layout, "web", 1)
    sv.write_state(images=["sha512-" + "a" * 64, None], content="sha256:x")
    sv.write_state(outcome="staged")
    assert sv.state()["content"] == "sha256:x"
    assert sv.recorded_images() == ["sha512-" + "a" * 64, None]
    assert sv.image_ids() == ["sha512-" + "a" * 64]
    index = open(layout.path("etc/ops/pods/web/index")).read()
    assert [l.split("\t")[:2] for l in index.splitlines() if not l.startswith("#")] == [
        ["1", "staged"]]


def test_a_state_json_that_is_not_an_object_reads_as_empty(layout):
    fake_version(layout, "web", 1)
    sv = store.get(layout, "web", 1)
    for text in ("[1, 2]", "{broken", ""):
        with open(sv.state_json, "w") as f:
            f.write(text)
        assert sv.state() == {}
        assert sv.image_ids() == []


def test_current_link_is_relative_and_can_be_cleared(root, layout):
    fake_version(layout, "web", 1)
    fake_version(layout, "web", 2)
    assert store.current_version(layout, "web") is None
    store.set_current(layout, store.get(layout, "web", 2))
    assert current_link(root, "web") == "../pods/web/2"
    assert os.path.samefile(layout.current_link("web"), layout.version_dir("web", 2))
    assert store.current_version(layout, "web") == store.get(layout, "web", 2)
    store.set_current(layout, store.get(layout, "web", 1))       # replaced, not added
    assert current_link(root, "web") == "../pods/web/1"
    assert os.listdir(layout.current_dir) == ["web"]
    store.clear_current(layout, "web")
    assert current_link(root, "web") is None
    store.clear_current(layout, "web")        # already clear: no error
    assert store.current_number(layout, "web") is None


def test_current_number_names_a_version_even_when_its_pod_json_is_gone(root, layout):
    fake_version(layout, "web", 3, pod_json=False)
    os.makedirs(layout.current_dir)
    os.symlink("../pods/web/3", layout.current_link("web"))
    assert store.current_number(layout, "web") == 3
    assert store.current_version(layout, "web") is None
    os.unlink(layout.current_link("web"))
    os.symlink("../pods/web/latest", layout.current_link("web"))
    assert store.current_number(layout, "web") is None


@pytest.mark.parametrize("ref, expected", [
    ("web", ("web", None)),
    ("web:3", ("web", 3)),
    ("web:0", ("web", 0)),
    ("my-pod.v2:12", ("my-pod.v2", 12)),
])
def test_parse_ref_accepts(ref, expected):
    assert store.parse_ref(ref) == expected


@pytest.mark.parametrize("ref, what", [
    ("Web", "not a pod name"),
    ("", "not a pod name"),
    (":1", "not a pod name"),
    ("web/x:1", "not a pod name"),
    ("-web", "not a pod name"),
    ("web:", "VERSION must be a non-negative integer"),
    ("web:-1", "VERSION must be a non-negative integer"),
    ("web:1.0", "VERSION must be a non-negative integer"),
    ("web:x", "VERSION must be a non-negative integer"),
    ("web:1:2", "VERSION must be a non-negative integer"),
    ("web:\u00b2", "VERSION must be a non-negative integer"),
])
def test_parse_ref_refuses(ref, what):
    with pytest.raises(UsageError) as e:
        store.parse_ref(ref)
    assert e.value.where == ref and e.value.what.startswith(what)
    assert e.value.exit_code == 2


def test_remove_tree_leaves_nothing(layout):
    d = fake_version(layout, "web", 1)
    os.makedirs(os.path.join(d, "a/b"))
    with open(os.path.join(d, "a/b/f"), "w") as f:
        f.write("x")
    store.remove_tree(d)
    assert os.listdir(layout.pod_dir("web")) == []
    store.remove_tree(d)          # gone already: no error


def test_remove_tree_cut_short_leaves_only_a_temporary_name(layout, monkeypatch):
    d = fake_version(layout, "web", 1)
    fake_version(layout, "web", 2)
    # killed right after the rename: the deletion itself never ran
    monkeypatch.setattr(atomic, "remove_tree_quietly", lambda path: None)
    store.remove_tree(d)
    names = sorted(os.listdir(layout.pod_dir("web")))
    assert names == ["%s%d-del-1" % (atomic.TMP_PREFIX, os.getpid()), "2"]
    assert [v.version for v in store.versions(layout, "web")] == [2]
    monkeypatch.undo()
    atomic.remove_leftovers(layout.pod_dir("web"))        # what the next run does
    assert os.listdir(layout.pod_dir("web")) == ["2"]


def test_remove_if_empty_removes_only_a_pod_directory_without_versions(layout):
    fake_version(layout, "web", 1)
    store.get(layout, "web", 1).record("ok")         # writes the index too
    store.remove_if_empty(layout.pod_dir("web"))
    assert os.path.isdir(layout.version_dir("web", 1))
    store.remove_tree(layout.version_dir("web", 1))
    assert os.listdir(layout.pod_dir("web")) == ["index"]
    store.remove_if_empty(layout.pod_dir("web"))
    assert not os.path.exists(layout.pod_dir("web"))


def test_a_deployed_version_reads_back_its_bundle(ops, root, bundle, layout):
    b = bundle(name="web", version=4, units=[{"file": "web-a.service", "start": True},
                                             {"file": "web-w@.service", "start": True,
                                              "instances": 2}])
    assert ops("deploy", b).code == 0
    sv = store.get(layout, "web", 4)
    assert sv.unit_names() == ["web-a.service", "web-w@.service"]
    assert sv.bundle().version == 4
    assert state(root, "web", 4)["outcome"] == "ok"
    assert open(sv.pod_json, "rb").read() == b.pod_json.read_bytes()
