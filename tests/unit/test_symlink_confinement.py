"""Inside ops's own trees (etc/ops, var/lib/ops, the pod's files under
etc/systemd/system) no component below the top may be a symbolic link: a
link there is refused (exit 2, naming the link) before ops writes, renames
or deletes anything through it.  Links above the tops are followed."""

import os
import shutil

import pytest

from conftest import unit_text


def web(bundle, version, volumes=None):
    return bundle(name="web", version=version, volumes=volumes,
                  units=[{"file": "web-api.service", "start": True,
                          "text": unit_text("web-api.service", body="v%d" % version)}])


def outside_tree(tmp_path):
    out = tmp_path / "outside"
    out.mkdir(exist_ok=True)
    (out / "precious").write_text("keep me")
    return out


def listing(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def move_behind_link(path, target):
    """Move directory ``path`` to ``target`` and leave a link in its place."""
    shutil.move(str(path), str(target))
    os.symlink(str(target), str(path))


@pytest.mark.parametrize("command", [("cleanup", "--keep", "0"), ("undeploy", "web", "--remove")])
def test_a_linked_pod_directory_is_refused_and_nothing_outside_is_deleted(ops, root, bundle,
                                                                         tmp_path, command):
    assert ops("deploy", web(bundle, 1)).code == 0
    if command[0] == "cleanup":
        assert ops("undeploy", "web").code == 0
    out = tmp_path / "outside"
    move_behind_link(root / "etc/ops/pods/web", out)
    (out / "precious").write_text("keep me")
    before = listing(out)
    r = ops(*command)
    assert r.code == 2, r
    assert str(root / "etc/ops/pods/web") in r.err and "symbolic link" in r.err
    assert listing(out) == before


def test_a_linked_volume_directory_is_refused_and_nothing_is_written_outside(ops, root, bundle,
                                                                            tmp_path):
    out = outside_tree(tmp_path)
    (root / "var/lib/ops/volumes").mkdir(parents=True)
    os.symlink(str(out), str(root / "var/lib/ops/volumes/web"))
    r = ops("deploy", web(bundle, 1, volumes={"data": {"a.txt": b"x"}}))
    assert r.code == 2, r
    assert str(root / "var/lib/ops/volumes/web") in r.err
    assert listing(out) == ["precious"]


def test_linked_volumes_are_not_deleted_through_the_link(ops, root, bundle, tmp_path):
    assert ops("deploy", web(bundle, 1, volumes={"data": {"a.txt": b"x"}})).code == 0
    assert ops("undeploy", "web").code == 0
    out = tmp_path / "outside"
    move_behind_link(root / "var/lib/ops/volumes/web", out)
    before = listing(out)
    r = ops("cleanup", "--keep", "0")
    assert r.code == 2, r
    assert listing(out) == before


def test_a_linked_units_directory_of_a_version_is_removed_as_a_link(ops, root, bundle,
                                                                    tmp_path):
    # the link is the last component of what ops deletes: it goes, its target stays
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("undeploy", "web").code == 0
    out = tmp_path / "outside"
    move_behind_link(root / "etc/ops/pods/web/1/units", out)
    before = listing(out)
    r = ops("cleanup", "--keep", "0")
    assert r.code == 0, r
    assert not os.path.lexists(str(root / "etc/ops/pods/web/1"))
    assert listing(out) == before


def test_a_dropin_directory_linked_to_another_units_is_refused(ops, root, bundle):
    udir = root / "etc/systemd/system"
    other = udir / "other.service.d"
    other.mkdir(parents=True)
    (other / "50-ops.conf").write_text("# the administrator's\n")
    os.symlink("other.service.d", str(udir / "web-api.service.d"))
    r = ops("deploy", web(bundle, 1))
    assert r.code == 2, r
    assert str(udir / "web-api.service.d") in r.err
    assert (other / "50-ops.conf").read_text() == "# the administrator's\n"


def test_a_linked_journal_directory_is_refused(ops, root, bundle, tmp_path):
    out = outside_tree(tmp_path)
    (root / "var/lib/ops").mkdir(parents=True)
    os.symlink(str(out), str(root / "var/lib/ops/journal"))
    r = ops("deploy", web(bundle, 1))
    assert r.code == 2, r
    assert listing(out) == ["precious"]


def test_links_above_the_tops_are_followed(ops, root, bundle, tmp_path):
    real = root / "disk2"
    real.mkdir()
    (root / "var/lib").mkdir(parents=True)
    os.symlink(str(real), str(root / "var/lib/ops"))
    assert ops("deploy", web(bundle, 1, volumes={"data": {"a.txt": b"x"}})).code == 0
    assert (real / "volumes/web/1/data/a.txt").read_bytes() == b"x"
    assert ops("undeploy", "web", "--remove").code == 0
    assert not (real / "volumes/web/1").exists()
