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


# -- a link at each depth, for each kind of operation ---------------------------------------------
#
# Each case: (the directory to put behind a link, what to set up with ops, the command).  The
# link's target holds what was there (or a file of its own); after the refusal (exit 2; for the
# history, written after the change, a warning) it is unchanged.

def _deployed(ops, bundle, volumes=None):
    assert ops("deploy", web(bundle, 1, volumes=volumes)).code == 0


def _undeployed(ops, bundle, volumes=None):
    _deployed(ops, bundle, volumes)
    assert ops("undeploy", "web").code == 0


VOL = {"data": {"sub/a.txt": b"x"}}

CASES = [
    # depth                        setup          command
    ("etc/ops/pods/web", _deployed, ("deploy", "V2")),
    ("etc/ops/pods/web", _deployed, ("pin", "web:1")),
    ("etc/ops/pods/web", _deployed, ("unpin", "web:1")),
    ("etc/ops/pods/web", _undeployed, ("cleanup", "--keep", "0")),
    ("etc/ops/pods/web/1", _undeployed, ("cleanup", "--keep", "0")),
    ("etc/ops/pods/web/1", _deployed, ("undeploy", "web", "--remove")),
    ("etc/ops/pods/web/1", _deployed, ("pin", "web:1")),
    ("etc/ops/pods/web/1", _deployed, ("unpin", "web:1")),
    ("var/lib/ops/volumes/web", _undeployed, ("cleanup", "--keep", "0")),
    ("var/lib/ops/volumes/web/1", _undeployed, ("cleanup", "--keep", "0")),
    ("var/lib/ops/volumes/web/1", _deployed, ("undeploy", "web", "--remove")),
    ("var/lib/ops/volumes/web", _deployed, ("deploy", "V2")),
    ("var/lib/ops/journal", _deployed, ("deploy", "V2")),
    ("var/lib/ops/journal", _deployed, ("undeploy", "web")),
    ("etc/ops/history", _deployed, ("deploy", "V2")),
    ("etc/ops/history", _deployed, ("undeploy", "web", "--remove")),
    ("etc/systemd/system/web-api.service.d", _deployed, ("deploy", "V2")),
    ("etc/systemd/system/web-api.service.d", _deployed, ("undeploy", "web", "--remove")),
]


@pytest.mark.parametrize("depth,setup,command", CASES,
                         ids=["%s-%s" % (c[0].replace("/", "."), c[2][0]) for c in CASES])
def test_a_link_at_any_depth_is_refused_for_every_operation(ops, root, bundle, tmp_path, depth,
                                                            setup, command):
    setup(ops, bundle, VOL if "volumes" in depth else None)
    if command == ("unpin", "web:1"):
        assert ops("pin", "web:1").code == 0
    here = root / depth
    out = tmp_path / "outside"
    if here.is_dir():
        move_behind_link(here, out)
    else:
        here.parent.mkdir(parents=True, exist_ok=True)
        out.mkdir()
        os.symlink(str(out), str(here))
    (out / "precious").write_text("keep me")
    before = snapshot_of(out)
    args = [str(web(bundle, 2, volumes=VOL)) if a == "V2" else a for a in command]
    r = ops(*args)
    # the history is written once the change is made: not written, a warning
    assert r.code == (0 if "history" in depth else 2), r
    assert str(here) in r.err and "symbolic link" in r.err, r.err
    assert snapshot_of(out) == before
    assert os.path.islink(str(here))


def snapshot_of(d):
    """Every path under ``d`` with its kind, content (files) and owner."""
    out = {}
    for p in sorted(d.rglob("*")):
        st = os.lstat(str(p))
        out[str(p.relative_to(d))] = (st.st_mode, st.st_uid, st.st_gid,
                                      p.read_bytes() if p.is_file() and not p.is_symlink() else None)
    return out


def test_a_link_inside_a_volume_is_removed_as_a_link_not_followed(ops, root, bundle, tmp_path):
    _undeployed(ops, bundle, VOL)
    out = tmp_path / "outside"
    move_behind_link(root / "var/lib/ops/volumes/web/1/data/sub", out)
    before = snapshot_of(out)
    assert ops("cleanup", "--keep", "0").code == 0
    assert not os.path.lexists(str(root / "var/lib/ops/volumes/web/1"))
    assert snapshot_of(out) == before


# -- races: a directory swapped for a link between ops's look and its use ----------------------

def _swap_for_link(path, out):
    """Put directory ``path`` aside (``path`` + ".real") and leave a link to ``out``."""
    os.rename(path, path + ".real")
    os.symlink(out, path)


def test_a_directory_swapped_for_a_link_after_it_was_opened_is_not_followed(root, tmp_path,
                                                                           monkeypatch):
    # the swap happens right after ops opened the pod's directory, before it
    # writes into it: the write lands in the directory ops opened, never in
    # the link's target (an lstat-then-open check would follow the new link)
    from ops import atomic, confine
    from ops.layout import Layout
    layout = Layout(str(root))
    pod = layout.pod_dir("web")
    os.makedirs(pod)
    out = outside_tree(tmp_path)
    real = confine.open_child

    def open_then_swap(dfd, name, where, top="ops's trees"):
        fd = real(dfd, name, where, top)
        if where == pod and not os.path.islink(pod):
            _swap_for_link(pod, str(out))
        return fd

    monkeypatch.setattr(confine, "open_child", open_then_swap)
    atomic.write_text(os.path.join(pod, "index"), "new\n")
    assert listing(out) == ["precious"]
    assert (root / "etc/ops/pods/web.real/index").read_text() == "new\n"


def test_a_directory_swapped_for_a_link_before_it_is_opened_is_refused(root, tmp_path,
                                                                      monkeypatch):
    from ops import atomic, confine
    from ops.errors import Refused
    from ops.layout import Layout
    layout = Layout(str(root))
    pod = layout.pod_dir("web")
    os.makedirs(os.path.join(pod, "1"))
    out = outside_tree(tmp_path)
    (out / "1").mkdir()
    (out / "1" / "pod.json").write_text("theirs")
    real = confine.open_child

    def swap_then_open(dfd, name, where, top="ops's trees"):
        if where == pod and not os.path.islink(pod):
            _swap_for_link(pod, str(out))
        return real(dfd, name, where, top)

    monkeypatch.setattr(confine, "open_child", swap_then_open)
    with pytest.raises(Refused) as e:
        atomic.remove_tree_quietly(os.path.join(pod, "1"))
    assert e.value.where == pod
    assert (out / "1" / "pod.json").read_text() == "theirs"


def _flipper(path, out, stop):
    """A thread swapping directory ``path`` and a link to ``out`` as fast as it can."""
    import threading

    def run():
        while not stop.is_set():
            try:
                os.rename(path, path + ".real")
                os.symlink(out, path)
                os.unlink(path)
                os.rename(path + ".real", path)
            except OSError:
                pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_unpacking_while_a_directory_flips_to_a_link_never_writes_outside(tmp_path, root):
    # members a/0 .. a/299 are written while another thread keeps replacing
    # the volume's directory a/ by a link to the outside and back
    import threading
    from conftest import make_tar
    from ops import volumes
    from ops.errors import OpsError
    from ops.layout import Layout
    layout = Layout(str(root))
    out = outside_tree(tmp_path)
    files = {"a/%d" % i: b"x" for i in range(300)}
    files["a/"] = None
    archive = make_tar(tmp_path / "v.tar", {k: v for k, v in files.items() if v}, None)
    vdir = layout.volumes_dir("web", 1)
    for n in range(20):
        dest = os.path.join(vdir, "v%d" % n)
        tmp = os.path.join(vdir, ".ops-tmp-%d-v%d" % (os.getpid(), n))
        stop = threading.Event()
        holder = {}

        real_member = volumes._Unpacker.member

        def member(self, members, ti, _tmp=tmp):
            real_member(self, members, ti)
            if "t" not in holder and os.path.isdir(os.path.join(_tmp, "a")):
                holder["t"] = _flipper(os.path.join(_tmp, "a"), str(out), stop)
        volumes._Unpacker.member = member
        try:
            volumes.unpack(str(archive), dest)
        except OpsError:
            pass                 # refused (a link on the way): fine, nothing outside
        finally:
            volumes._Unpacker.member = real_member
            stop.set()
            if "t" in holder:
                holder["t"].join()
        assert listing(out) == ["precious"], n


def test_volume_owner_is_not_given_through_a_directory_swapped_for_a_link(tmp_path, root,
                                                                         monkeypatch):
    from ops import confine, owners
    from ops.errors import Refused
    from ops.layout import Layout
    layout = Layout(str(root))
    top = os.path.join(layout.volumes_dir("web", 1), "data")
    os.makedirs(os.path.join(top, "sub"))
    open(os.path.join(top, "sub", "f"), "w").close()
    out = outside_tree(tmp_path)
    before = snapshot_of(out)
    real = confine.open_child

    def swap_then_open(dfd, name, where, top_="ops's trees"):
        if where.endswith("/sub") and not os.path.islink(where):
            _swap_for_link(where, str(out))
        return real(dfd, name, where, top_)

    monkeypatch.setattr(confine, "open_child", swap_then_open)
    with pytest.raises(Refused) as e:
        owners.chown_tree(top, 4321, 4321)
    assert e.value.where == os.path.join(top, "sub")
    assert snapshot_of(out) == before
    assert os.lstat(top).st_uid == 4321


def test_volume_owner_walks_no_link_planted_at_its_top(tmp_path, root):
    from ops import owners
    from ops.errors import Refused
    from ops.layout import Layout
    layout = Layout(str(root))
    vdir = layout.volumes_dir("web", 1)
    os.makedirs(vdir)
    out = outside_tree(tmp_path)
    before = snapshot_of(out)
    os.symlink(str(out), os.path.join(vdir, "data"))
    with pytest.raises(Refused):
        owners.chown_tree(os.path.join(vdir, "data"), 4321, 4321)
    assert snapshot_of(out) == before


def test_a_deep_volume_is_unpacked_chowned_and_removed_one_descriptor_at_a_time(tmp_path, root):
    # 1500 levels: deeper than Python's recursion limit, more directories on
    # one path than a process may usually hold open
    from conftest import make_tar
    from ops import owners, store, volumes
    from ops.layout import Layout
    layout = Layout(str(root))
    deep = "/".join(["d"] * 1500) + "/f"
    archive = make_tar(tmp_path / "deep.tar", {deep: b"bottom"}, None)
    dest = os.path.join(layout.volumes_dir("web", 1), "data")
    assert volumes.unpack(str(archive), dest).files == 1501      # the file and its 1500 directories
    fd = os.open(dest, os.O_RDONLY)
    try:
        with open(deep, "rb", opener=lambda p, f: os.open(p, f, dir_fd=fd)) as f:
            assert f.read() == b"bottom"
    finally:
        os.close(fd)
    owners.chown_tree(dest, 4321, 4322)
    fd = os.open(dest, os.O_RDONLY)
    try:
        st = os.stat(deep, dir_fd=fd)
    finally:
        os.close(fd)
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    store.remove_tree(layout.volumes_dir("web", 1))
    assert os.listdir(os.path.dirname(layout.volumes_dir("web", 1))) == []


def test_the_manifest_of_a_version_that_lost_its_pod_json_is_not_read_through_a_link(
        ops, root, bundle, tmp_path):
    # which units undeploy stops and removes is read from manifest.json: a
    # link there (to a manifest naming others' units) is refused, not read
    _deployed(ops, bundle)
    vdir = root / "etc/ops/pods/web/1"
    theirs = tmp_path / "theirs.json"
    theirs.write_bytes((vdir / "manifest.json").read_bytes().replace(b"web-api", b"db-main"))
    (vdir / "pod.json").unlink()
    (vdir / "manifest.json").unlink()
    os.symlink(str(theirs), str(vdir / "manifest.json"))
    unit = root / "etc/systemd/system/web-api.service"
    r = ops("undeploy", "web")
    assert r.code == 2, r
    assert str(vdir / "manifest.json") in r.err and "symbolic link" in r.err
    assert unit.exists()
