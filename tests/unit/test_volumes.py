"""ops.volumes against real tar archives (SPEC §6): what lands on disk, what
is refused, and that a refusal leaves nothing behind, inside or outside."""

import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile

import pytest

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from ops import volumes  # noqa: E402
from ops.atomic import TMP_PREFIX  # noqa: E402
from ops.errors import UsageError, VolumeError  # noqa: E402
from tests.support.tarballs import (  # noqa: E402
    MTIME, block_device, compress_with, device, directory, fifo, gnu_tar, hardlink, other_type,
    regular, symlink, write_tar)

AS_ROOT = os.geteuid() == 0
LABEL = "pod.json: ops.volumes[0].data (www.tar.gz)"


class Area:
    """``volumes/www`` is where the archive goes; ``outside/`` and its
    ``canary`` file sit beside it, where a hostile archive aims."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.volumes = tmp_path / "volumes"
        self.volumes.mkdir()
        self.dest = self.volumes / "www"
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.canary = self.outside / "canary"
        self.canary.write_bytes(b"canary\n")
        os.utime(str(self.canary), (MTIME, MTIME))
        self.archive = tmp_path / "www.tar"

    def unpack(self, archive=None, **kw):
        kw.setdefault("label", LABEL)
        return volumes.unpack(str(archive or self.archive), str(self.dest), **kw)

    def refused(self, members, compression="", **kw):
        """Unpack an archive of ``members``; return the VolumeError, having
        checked that nothing was left anywhere."""
        write_tar(self.archive, members, compression)
        with pytest.raises(VolumeError) as exc:
            self.unpack(**kw)
        self.assert_nothing_left()
        return exc.value

    def assert_nothing_left(self):
        assert sorted(os.listdir(str(self.volumes))) == [], "a partial or temporary directory remains"
        assert sorted(os.listdir(str(self.outside))) == ["canary"], "something was written outside"
        assert self.canary.read_bytes() == b"canary\n"
        st = os.lstat(str(self.canary))
        assert stat.S_ISREG(st.st_mode) and st.st_nlink == 1 and st.st_mtime == MTIME


@pytest.fixture
def area(tmp_path):
    return Area(tmp_path)


def _mode(path):
    return stat.S_IMODE(os.lstat(str(path)).st_mode)


# -- well-formed archives ------------------------------------------------------

def _source_tree(src):
    """A tree with every kind of member a volume may hold."""
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "app.conf").write_bytes(b"listen 8080\n")
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_bytes(b"#!/bin/sh\necho hi\n")
    (src / "data").mkdir()
    (src / "data" / "blob").write_bytes(os.urandom(300000))
    (src / "data" / "same-blob").write_bytes(b"")
    os.unlink(str(src / "data" / "same-blob"))
    os.link(str(src / "data" / "blob"), str(src / "data" / "same-blob"))
    os.symlink("../etc/app.conf", str(src / "bin" / "conf"))
    os.symlink("etc", str(src / "config"))
    (src / "empty").mkdir()
    os.chmod(str(src / "bin" / "tool"), 0o750)
    os.chmod(str(src / "etc" / "app.conf"), 0o640)
    for d, dirs, files in os.walk(str(src)):
        for n in dirs + files:
            os.utime(os.path.join(d, n), (MTIME + 7, MTIME + 7), follow_symlinks=False)
    os.utime(str(src), (MTIME + 7, MTIME + 7))


def _tree(root):
    """{relative path: (kind, mode, size, mtime, link target)} of a tree."""
    out = {}
    for d, dirs, files in os.walk(str(root)):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            link = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            out[os.path.relpath(p, str(root))] = (
                stat.S_IFMT(st.st_mode), None if link else stat.S_IMODE(st.st_mode),
                st.st_size if stat.S_ISREG(st.st_mode) else None, int(st.st_mtime), link)
    return out


@pytest.mark.parametrize("flags,kind", [("", "tar"), ("z", "gz"), ("j", "bz2"), ("J", "xz")])
def test_gnu_tar_archive_of_each_compression_unpacks_to_the_same_tree(area, flags, kind):
    src = area.tmp / "src"
    _source_tree(src)
    archive = gnu_tar(area.tmp / "www.archive", src, flags=flags)
    assert volumes.detect_compression(str(archive)) == kind

    stats = area.unpack(archive)

    assert _tree(area.dest) == _tree(src)
    assert (area.dest / "data" / "blob").read_bytes() == (src / "data" / "blob").read_bytes()
    assert os.stat(str(area.dest / "data" / "blob")).st_ino == \
        os.stat(str(area.dest / "data" / "same-blob")).st_ino
    assert (area.dest / "bin" / "conf").read_bytes() == b"listen 8080\n"
    assert stats.bytes == 300000 + len(b"listen 8080\n") + len(b"#!/bin/sh\necho hi\n")
    assert stats.files == len(_tree(src)) + 1          # and "./" itself
    assert sorted(os.listdir(str(area.volumes))) == ["www"]


@pytest.mark.parametrize("compression,tool", [("gz", "gzip"), ("bz2", "bzip2"), ("xz", "xz")])
def test_archive_written_by_tarfile_and_compressed_by_the_tool(area, compression, tool):
    plain = write_tar(area.tmp / "plain.tar", [directory("d"), regular("d/f", b"x" * 5000)])
    archive = compress_with(tool, plain, area.tmp / ("www.tar." + compression))
    assert volumes.detect_compression(str(archive)) == compression
    area.unpack(archive)
    assert (area.dest / "d" / "f").read_bytes() == b"x" * 5000


def test_concatenated_gzip_members_are_one_stream(area):
    # `cat a.gz b.gz` is a valid gzip file; a tar split across members unpacks whole.
    plain = write_tar(area.tmp / "plain.tar", [regular("f%d" % i, os.urandom(3000)) for i in range(10)])
    data = plain.read_bytes()
    half = area.tmp / "half"
    parts = []
    for i, piece in enumerate((data[:12345], data[12345:])):
        half.write_bytes(piece)
        parts.append(compress_with("gzip", half, area.tmp / ("p%d.gz" % i)).read_bytes())
    archive = area.tmp / "joined.tar.gz"
    archive.write_bytes(parts[0] + parts[1])
    area.unpack(archive)
    assert sorted(os.listdir(str(area.dest))) == ["f%d" % i for i in range(10)]


def test_modes_are_kept_and_setid_sticky_group_and_world_writable_bits_cleared(area):
    write_tar(area.archive, [
        regular("plain", b"a", mode=0o640),
        regular("exec", b"b", mode=0o755),
        regular("suid", b"c", mode=0o4755),
        regular("sgid", b"d", mode=0o2750),
        regular("world", b"e", mode=0o666),
        regular("all", b"f", mode=0o7777),
        directory("shared", mode=0o1777),
        directory("group", mode=0o2775),
        directory("private", mode=0o700),
        regular("group-writable", b"g", mode=0o664),
        regular("others-exec-only", b"x", mode=0o611),
        regular("group-exec-only", b"x", mode=0o650),
        directory("others-only", mode=0o507),
    ], "gz")
    area.unpack()
    d = area.dest
    # at least as strict as CPython's "data" extraction filter: no group or
    # other write, and no exec for anyone when the owner has none
    assert {n: _mode(d / n) for n in os.listdir(str(d))} == {
        "plain": 0o640, "exec": 0o755, "suid": 0o755, "sgid": 0o750, "world": 0o644,
        "all": 0o755, "shared": 0o755, "group": 0o755, "private": 0o700,
        "group-writable": 0o644, "others-exec-only": 0o600, "group-exec-only": 0o640,
        "others-only": 0o505}
    assert os.stat(str(d / "plain")).st_mtime == MTIME


def test_directory_listed_after_its_contents_gets_its_mode_and_time(area):
    write_tar(area.archive, [
        regular("ro/sub/f", b"content", mode=0o444),
        symlink("ro/sub/l", "f"),
        directory("ro/sub", mode=0o555, mtime=MTIME + 1),
        directory("ro", mode=0o500, mtime=MTIME + 2),
    ])
    area.unpack()
    assert _mode(area.dest / "ro") == 0o500 and _mode(area.dest / "ro" / "sub") == 0o555
    assert os.stat(str(area.dest / "ro")).st_mtime == MTIME + 2
    assert os.stat(str(area.dest / "ro" / "sub")).st_mtime == MTIME + 1
    assert os.lstat(str(area.dest / "ro" / "sub" / "l")).st_mtime == MTIME
    assert (area.dest / "ro" / "sub" / "l").read_bytes() == b"content"


def test_implicit_parent_directories_are_created_0755(area):
    write_tar(area.archive, [regular("a/b/c/f", b"x", mode=0o600)])
    old = os.umask(0o077)
    try:
        area.unpack()
    finally:
        os.umask(old)
    assert [_mode(area.dest / p) for p in ("", "a", "a/b", "a/b/c", "a/b/c/f")] == \
        [0o755, 0o755, 0o755, 0o755, 0o600]


def test_root_member_sets_the_volume_directory_mode(area):
    src = area.tmp / "src"
    src.mkdir()
    (src / "f").write_bytes(b"x")
    os.chmod(str(src), 0o750)
    gnu_tar(area.archive, src)
    area.unpack()
    assert _mode(area.dest) == 0o750


@pytest.mark.skipif(not AS_ROOT, reason="chown needs root")
def test_numeric_owners_are_kept_as_root(area):
    write_tar(area.archive, [
        directory("d", uid=1234, gid=5678),
        regular("d/f", b"x", uid=2345, gid=6789, mode=0o4755),
        symlink("d/l", "f", uid=3456, gid=7890),
    ], "gz")
    area.unpack()
    own = {n: (os.lstat(str(area.dest / n)).st_uid, os.lstat(str(area.dest / n)).st_gid)
           for n in ("d", "d/f", "d/l")}
    assert own == {"d": (1234, 5678), "d/f": (2345, 6789), "d/l": (3456, 7890)}
    assert _mode(area.dest / "d" / "f") == 0o755         # chown did not bring set-uid back


@pytest.mark.skipif(not AS_ROOT, reason="needs root to compare")
def test_keep_owners_false_leaves_files_to_the_caller(area):
    write_tar(area.archive, [directory("d", uid=1234, gid=5678), regular("d/f", b"x", uid=1234)])
    area.unpack(keep_owners=False)
    for p in (area.dest / "d", area.dest / "d" / "f"):
        assert (os.lstat(str(p)).st_uid, os.lstat(str(p)).st_gid) == (os.getuid(), os.getgid())


@pytest.mark.skipif(not AS_ROOT, reason="switches to an unprivileged user")
def test_unprivileged_caller_unpacks_read_only_directories(tmp_path):
    base = tempfile.mkdtemp(prefix="ops-volumes-nobody-")
    try:
        os.chmod(base, 0o777)
        archive = os.path.join(base, "ro.tar")
        write_tar(archive, [directory("ro", mode=0o555), regular("ro/f", b"x", mode=0o444, uid=1234),
                            directory("ro/inner", mode=0o500), regular("ro/inner/g", b"y")])
        os.chmod(archive, 0o644)
        dest = os.path.join(base, "vol")
        # import first: the interpreter's own files may not be readable by nobody
        code = ("import os, sys; sys.path.insert(0, %r); from ops import volumes; "
                "os.setgroups([]); os.setgid(65534); os.setuid(65534); "
                "print(volumes.unpack(%r, %r))" % (_ROOT, archive, dest))
        proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert _mode(os.path.join(dest, "ro")) == 0o555
        assert _mode(os.path.join(dest, "ro", "inner")) == 0o500
        st = os.lstat(os.path.join(dest, "ro", "f"))
        assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (65534, 0o444)
        assert open(os.path.join(dest, "ro", "inner", "g"), "rb").read() == b"y"
    finally:
        shutil.rmtree(base)


def test_hard_link_to_an_earlier_file_shares_its_inode(area):
    write_tar(area.archive, [regular("f", b"data", mode=0o600), hardlink("h", "f"),
                             hardlink("./sub/h2", "./f")])
    area.unpack()
    ino = os.stat(str(area.dest / "f")).st_ino
    assert os.stat(str(area.dest / "h")).st_ino == ino
    assert os.stat(str(area.dest / "sub" / "h2")).st_ino == ino
    assert os.stat(str(area.dest / "f")).st_nlink == 3


def test_symlinks_that_stay_inside_are_kept_as_written(area):
    write_tar(area.archive, [
        directory("d"), directory("d/e"),
        regular("d/f", b"x"),
        symlink("d/e/up", "../f"),
        symlink("top", "d/e/up"),
        symlink("self-dir", "."),
        symlink("via-link", "self-dir/d/./f"),
        symlink("dangling", "not/yet/there"),
        symlink("d/e/to-root", "../.."),
    ])
    area.unpack()
    d = area.dest
    assert os.readlink(str(d / "d" / "e" / "up")) == "../f"
    assert (d / "top").read_bytes() == b"x" and (d / "via-link").read_bytes() == b"x"
    assert os.readlink(str(d / "dangling")) == "not/yet/there"
    assert os.path.realpath(str(d / "d" / "e" / "to-root")) == os.path.realpath(str(d))


def test_a_regular_file_appended_again_replaces_the_earlier_copy(area):
    write_tar(area.archive, [regular("f", b"old"), regular("f", b"new", mode=0o600),
                             directory("d", mode=0o700), directory("d", mode=0o750)])
    area.unpack()
    assert (area.dest / "f").read_bytes() == b"new" and _mode(area.dest / "f") == 0o600
    assert _mode(area.dest / "d") == 0o750


def test_sparse_file_from_gnu_tar(area):
    src = area.tmp / "src"
    src.mkdir()
    with open(str(src / "sparse"), "wb") as f:
        f.truncate(20 << 20)
        f.seek(10 << 20)
        f.write(b"middle")
    gnu_tar(area.archive, src, flags="Sz")
    stats = area.unpack()
    assert (area.dest / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert stats.bytes == 20 << 20


def test_names_that_are_not_utf8_are_kept_as_bytes(area):
    write_tar(area.archive, [regular("caf\xe9", b"latin-1 name")], fmt=tarfile.GNU_FORMAT,
              encoding="latin-1")
    area.unpack()
    assert os.listdir(os.fsencode(str(area.dest))) == [b"caf\xe9"]


def test_long_names_and_link_targets(area):
    deep = "/".join(["component%02d" % i for i in range(30)])
    write_tar(area.archive, [regular(deep + "/file", b"deep"), symlink("l", deep + "/file")])
    area.unpack()
    assert (area.dest / "l").read_bytes() == b"deep"


def test_empty_archive_gives_an_empty_volume(area):
    subprocess.run(["tar", "-cf", str(area.archive), "-T", "/dev/null"], check=True)
    assert volumes.detect_compression(str(area.archive)) == "tar"
    assert area.unpack() == (0, 0)
    assert os.listdir(str(area.dest)) == []


def test_temporary_directory_of_a_killed_run_is_replaced(area):
    leftover = area.volumes / ("%s%d-www" % (TMP_PREFIX, os.getpid()))
    (leftover / "junk").mkdir(parents=True)
    write_tar(area.archive, [regular("f", b"x")])
    area.unpack()
    assert sorted(os.listdir(str(area.volumes))) == ["www"]
    assert os.listdir(str(area.dest)) == ["f"]


def test_existing_destination_is_refused_and_left_alone(area):
    area.dest.mkdir()
    (area.dest / "keep").write_bytes(b"mine")
    write_tar(area.archive, [regular("f", b"x")])
    with pytest.raises(VolumeError, match="already exists"):
        area.unpack()
    assert os.listdir(str(area.dest)) == ["keep"]


def test_missing_parent_directories_of_dest_are_created(area):
    write_tar(area.archive, [regular("f", b"x")])
    dest = area.tmp / "var" / "lib" / "ops" / "volumes" / "web" / "3" / "www"
    volumes.unpack(str(area.archive), str(dest))
    assert (dest / "f").read_bytes() == b"x"


# -- hostile archives ------------------------------------------------------------

def test_absolute_member_name_is_refused(area):
    target = str(area.outside / "pwned")
    e = area.refused([regular("ok", b"x"), regular(target, b"pwned")], "gz")
    assert e.where == "%s: member '%s'" % (LABEL, target)
    assert "absolute" in e.what


def test_absolute_name_from_gnu_tar_P_is_refused(area):
    (area.outside / "pwned").write_bytes(b"from the archive")
    gnu_tar(area.archive, area.tmp, str(area.outside / "pwned"), flags="P")
    os.unlink(str(area.outside / "pwned"))
    with pytest.raises(VolumeError, match="absolute"):
        area.unpack()
    area.assert_nothing_left()


@pytest.mark.parametrize("name", ["../../outside/pwned", "a/../b", "./a/../../../x", ".."])
def test_dotdot_component_is_refused(area, name):
    e = area.refused([directory("a"), regular(name, b"pwned")])
    assert e.where == "%s: member '%s'" % (LABEL, name)
    assert e.what == "path escapes the volume"


def test_absolute_symlink_is_refused(area):
    e = area.refused([symlink("l", str(area.outside)), regular("l/pwned", b"x")], "bz2")
    assert e.where.endswith("member 'l'") and "absolute" in e.what


@pytest.mark.parametrize("name,target", [
    ("l", ".."),
    ("l", "../outside"),
    ("d/l", "../../outside/canary"),
    ("d/l", "./../e/../.."),
])
def test_relative_symlink_leading_outside_is_refused(area, name, target):
    e = area.refused([directory("d"), directory("e"), symlink(name, target)], "xz")
    assert e.where.endswith("member '%s'" % name)
    assert "leads outside the volume" in e.what


def test_symlink_escaping_through_an_earlier_symlink_is_refused(area):
    # "d/l2 -> ../up/x" looks inside, but "up" is a link to "..": two levels up from the volume.
    e = area.refused([directory("d"), symlink("up", ".."), symlink("d/l2", "../up/x")])
    assert e.where.endswith("member 'up'")
    e = area.refused([directory("d"), symlink("here", "."), symlink("d/l2", "../here/..")])
    assert e.where.endswith("member 'd/l2'") and "outside" in e.what


def test_dotdot_after_a_name_that_could_later_become_a_symlink_is_refused(area):
    # Lexically "b/../../outside" from d is "outside" inside the volume, but once
    # "d/b" is created as a link to "." it would mean ../outside: refuse it up front.
    e = area.refused([directory("d"), symlink("d/a", "b/../x"), symlink("d/b", ".")])
    assert e.where.endswith("member 'd/a'") and "not a directory unpacked earlier" in e.what


@pytest.mark.parametrize("link", [".", "sub", "sub/.."])
def test_member_through_an_earlier_symlink_is_refused(area, link):
    e = area.refused([directory("sub"), symlink("l", link), regular("l/pwned", b"x")], "gz")
    assert e.where == "%s: member 'l/pwned'" % LABEL
    assert "symbolic link 'l'" in e.what


def test_symlink_then_file_through_it_with_gnu_tar(area):
    # The classic: an archive first holds "l -> ../outside", then "l/pwned".
    stage = area.tmp / "stage"
    stage.mkdir()
    os.symlink("../../outside", str(stage / "l"))
    gnu_tar(area.archive, stage, "l")
    os.unlink(str(stage / "l"))
    (stage / "l").mkdir()
    (stage / "l" / "pwned").write_bytes(b"x")
    subprocess.run(["tar", "-rf", str(area.archive), "-C", str(stage), "l/pwned"], check=True)
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert "member 'l'" in exc.value.where
    area.assert_nothing_left()


@pytest.mark.parametrize("members,replaced", [
    ([symlink("x", "sub"), regular("x", b"over")], "symbolic link"),
    ([symlink("x", "sub"), directory("x")], "symbolic link"),
    ([symlink("x", "sub"), symlink("x", "other")], "symbolic link"),
    ([directory("x"), regular("x", b"over")], "directory"),
    ([directory("x"), symlink("x", "sub")], "directory"),
    ([regular("x", b"a"), directory("x")], "file"),
    ([regular("x", b"a"), symlink("x", "sub")], "file"),
])
def test_member_replacing_an_earlier_one_of_another_kind_is_refused(area, members, replaced):
    e = area.refused([directory("sub")] + members)
    assert e.where.endswith("member 'x'")
    assert e.what == "would replace the %s unpacked earlier under the same name" % replaced


def test_hard_link_to_etc_passwd_is_refused(area):
    before = os.stat("/etc/passwd")
    e = area.refused([hardlink("passwd", "/etc/passwd")], "gz")
    assert e.where.endswith("member 'passwd'") and "absolute" in e.what
    assert os.stat("/etc/passwd").st_nlink == before.st_nlink


@pytest.mark.parametrize("target,why", [
    ("../../outside/canary", "escapes the volume"),
    ("../outside/canary", "escapes the volume"),
    ("later", "not a regular file unpacked earlier"),
    ("sub", "not a regular file unpacked earlier"),
    ("link", "not a regular file unpacked earlier"),
    ("link/f", "not a regular file unpacked earlier"),
    ("", "not a regular file unpacked earlier"),
])
def test_hard_link_to_anything_but_an_earlier_file_inside_is_refused(area, target, why):
    e = area.refused([directory("sub"), regular("sub/f", b"x"), symlink("link", "sub"),
                      hardlink("h", target), regular("later", b"y")])
    assert e.where.endswith("member 'h'") and why in e.what


@pytest.mark.parametrize("member,what", [
    (device("null", 1, 3), "device nodes are not allowed in a volume"),
    (block_device("loop0", 7, 0), "device nodes are not allowed in a volume"),
    (fifo("pipe"), "FIFOs are not allowed in a volume"),
    (other_type("label", b"V"), "unsupported member type 'V'"),     # a GNU volume label
])
def test_devices_fifos_and_unknown_types_are_refused(area, member, what):
    e = area.refused([regular("ok", b"x"), member])
    assert e.where == "%s: member '%s'" % (LABEL, member[0].name)
    assert e.what == what


def test_device_node_made_by_gnu_tar_is_refused(area):
    if not AS_ROOT:
        pytest.skip("mknod needs root")
    src = area.tmp / "src"
    src.mkdir()
    os.mknod(str(src / "zero"), 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    os.mkfifo(str(src / "fifo"))
    gnu_tar(area.archive, src, "zero")
    with pytest.raises(VolumeError, match="device nodes"):
        area.unpack()
    area.assert_nothing_left()
    gnu_tar(area.archive, src, "fifo")
    with pytest.raises(VolumeError, match="FIFO"):
        area.unpack()
    area.assert_nothing_left()


class _Zeros(object):
    def __init__(self, n):
        self.left = n

    def read(self, size=-1):
        n = self.left if size is None or size < 0 else min(size, self.left)
        self.left -= n
        return bytes(n)


def _zeros_archive(path, compression, sizes):
    mode = "w:" + compression if compression else "w"
    with tarfile.open(str(path), mode) as tf:
        for i, size in enumerate(sizes):
            ti = tarfile.TarInfo("zeros%d" % i)
            ti.size = size
            tf.addfile(ti, _Zeros(size))
    return path


def test_decompression_bomb_over_the_limit_is_refused_before_writing(area):
    archive = _zeros_archive(area.tmp / "bomb.tar.gz", "gz", [40 << 20, 40 << 20])
    assert os.path.getsize(str(archive)) < 200 << 10
    with pytest.raises(VolumeError) as exc:
        area.unpack(archive, max_bytes=50 << 20)
    assert exc.value.where == LABEL
    assert exc.value.what.startswith("archive unpacks to more than %d bytes" % (50 << 20))
    area.assert_nothing_left()


def test_byte_limit_comes_from_the_environment(area, monkeypatch):
    archive = _zeros_archive(area.tmp / "bomb.tar.bz2", "bz2", [3 << 20])
    monkeypatch.setenv("OPS_MAX_VOLUME_BYTES", "2M")
    with pytest.raises(VolumeError, match="more than 2097152 bytes .*OPS_MAX_VOLUME_BYTES"):
        area.unpack(archive)
    area.assert_nothing_left()
    monkeypatch.setenv("OPS_MAX_VOLUME_BYTES", "4M")
    assert area.unpack(archive).bytes == 3 << 20


def test_invalid_limit_in_the_environment_is_a_usage_error(area, monkeypatch):
    write_tar(area.archive, [regular("f", b"x")])
    for bad in ("lots", "-5", "0", "1.5G", "12 M"):
        monkeypatch.setenv("OPS_MAX_VOLUME_BYTES", bad)
        with pytest.raises(UsageError) as exc:
            area.unpack()
        assert exc.value.where == "OPS_MAX_VOLUME_BYTES"
        area.assert_nothing_left()


def test_too_many_members_is_refused(area, monkeypatch):
    write_tar(area.archive, [regular("f%03d" % i, b"x") for i in range(20)], "gz")
    with pytest.raises(VolumeError, match="more than 10 members"):
        area.unpack(max_members=10)
    area.assert_nothing_left()
    monkeypatch.setenv("OPS_MAX_VOLUME_MEMBERS", "19")
    with pytest.raises(VolumeError, match="more than 19 members"):
        area.unpack()
    area.assert_nothing_left()
    assert area.unpack(max_members=20).files == 20


def test_directories_implied_by_member_paths_count_as_members(area):
    """Ten members whose paths imply six directories each create seventy
    entries: the member limit bounds what is created, not only the headers
    (else a small archive of deep paths makes millions of directories)."""
    write_tar(area.archive, [regular("d%d/a/b/c/d/e/f" % i, b"x") for i in range(10)], "gz")
    err = None
    with pytest.raises(VolumeError) as exc:
        area.unpack(max_members=69)
    err = exc.value
    assert err.where == LABEL and "more than 69 members" in err.what, err
    assert "directories their paths imply" in err.what
    area.assert_nothing_left()
    assert area.unpack(max_members=70).files == 70


def test_a_deep_path_keeps_few_descriptors_open(area):
    """A member 1,500 directories deep is unpacked with a bounded number of
    open descriptors (not one per directory: a host's usual limit is 1024)."""
    import resource
    name = "a/" * 1500 + "f"
    write_tar(area.archive, [regular(name, b"deep")])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(700, hard), hard))
    try:
        assert area.unpack().files == 1501
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert (area.dest / name).read_bytes() == b"deep"
    subprocess.check_call(["rm", "-rf", str(area.dest)])      # deeper than rmtree recurses


def test_huge_pax_header_is_refused_without_reading_it_into_memory(area):
    ti, data = regular("f", b"x")
    ti.pax_headers = {"comment": "x" * (volumes.MAX_HEADER_BYTES + 1000)}
    e = area.refused([(ti, data)], "gz")
    assert e.where == LABEL and "exceed %d bytes" % volumes.MAX_HEADER_BYTES in e.what


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_peak_memory_stays_bounded_on_a_highly_compressed_archive(tmp_path, compression):
    # 256 MiB of zeros compresses to almost nothing: the decompressor must not
    # be asked for all of it at once.
    archive = _zeros_archive(tmp_path / ("z.tar." + compression), compression,
                             [64 << 20] * (1 if compression == "xz" else 4))
    code = ("import resource, sys; sys.path.insert(0, %r); from ops import volumes; "
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "volumes.unpack(%r, %r); "
            "print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
            % (_ROOT, str(archive), str(tmp_path / "vol")))
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True,
                         universal_newlines=True, timeout=300).stdout
    before, peak = (int(x) for x in out.split())
    assert peak - before < 48 << 10, "peak RSS grew by %d KiB" % (peak - before)
    assert os.path.getsize(str(tmp_path / "vol" / "zeros0")) == 64 << 20


# -- broken archives -----------------------------------------------------------

def test_garbage_is_not_a_tar_archive(area):
    area.archive.write_bytes(os.urandom(4096))
    with pytest.raises(VolumeError) as exc:
        volumes.detect_compression(str(area.archive))
    assert exc.value.where == str(area.archive)
    assert exc.value.what == "not a tar archive (plain, gzip, bzip2 or xz)"
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert (exc.value.where, exc.value.what) == (LABEL, "not a tar archive (plain, gzip, bzip2 or xz)")
    area.assert_nothing_left()


@pytest.mark.parametrize("content", [b"", b"short", b"PK\x03\x04" + bytes(600)])
def test_empty_short_or_zip_file_is_not_a_tar_archive(area, content):
    area.archive.write_bytes(content)
    with pytest.raises(VolumeError, match="not a tar archive"):
        area.unpack()
    area.assert_nothing_left()


def test_missing_archive_names_the_label(area):
    with pytest.raises(VolumeError) as exc:
        area.unpack(area.tmp / "missing.tar.gz")
    assert exc.value.where == LABEL and "No such file" in exc.value.what
    area.assert_nothing_left()


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_truncated_archive_is_refused(area, compression):
    members = [regular("f%d" % i, os.urandom(200000)) for i in range(5)]
    write_tar(area.archive, members, compression)
    data = area.archive.read_bytes()
    area.archive.write_bytes(data[:len(data) // 2])
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert exc.value.where == LABEL
    assert exc.value.what.startswith("truncated or corrupt archive: ")
    area.assert_nothing_left()


def test_tar_cut_at_a_member_boundary_is_refused(area):
    # tarfile alone takes the end of data before a header for the end of the archive.
    write_tar(area.archive, [regular("a", b"x" * 512), regular("b", b"y" * 512)])
    data = area.archive.read_bytes()
    area.archive.write_bytes(data[:1024])         # header and data of "a", nothing more
    with pytest.raises(VolumeError, match="no end-of-archive marker"):
        area.unpack()
    area.assert_nothing_left()


def test_garbage_where_a_header_should_be_is_refused(area):
    write_tar(area.archive, [regular("a", b"x" * 512), regular("b", b"y" * 512)])
    data = bytearray(area.archive.read_bytes())
    data[1024:1536] = b"\xa5" * 512               # the header of "b"
    area.archive.write_bytes(bytes(data))
    with pytest.raises(VolumeError, match="truncated or corrupt archive"):
        area.unpack()
    area.assert_nothing_left()


@pytest.mark.parametrize("padding", [0, 4 << 20])
def test_gzip_with_a_bad_crc_is_refused(area, padding):
    # With 4 MiB of zeros after the end-of-archive marker, the checksum is
    # only reached by reading on after the last member.
    plain = write_tar(area.tmp / "plain.tar", [regular("f", os.urandom(100000))])
    with open(str(plain), "ab") as f:
        f.write(bytes(padding))
    archive = compress_with("gzip", plain, area.tmp / "www.tar.gz")
    data = bytearray(archive.read_bytes())
    data[-8] ^= 0xff                             # the CRC-32 in the gzip trailer
    archive.write_bytes(bytes(data))
    with pytest.raises(VolumeError, match="truncated or corrupt archive: .*incorrect data check"):
        area.unpack(archive)
    area.assert_nothing_left()


@pytest.mark.parametrize("compression", ["gz", "bz2", "xz"])
def test_corrupt_compressed_data_is_refused(area, compression):
    write_tar(area.archive, [regular("f%d" % i, os.urandom(50000) + bytes(50000))
                             for i in range(4)], compression)
    data = bytearray(area.archive.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 64] = os.urandom(64)
    area.archive.write_bytes(bytes(data))
    with pytest.raises(VolumeError, match="truncated or corrupt archive"):
        area.unpack()
    area.assert_nothing_left()


def test_compressed_file_that_is_not_a_tar_is_refused(area):
    text = area.tmp / "notes.txt"
    text.write_bytes(b"just some text\n" * 100)
    archive = compress_with("gzip", text, area.tmp / "notes.gz")
    with pytest.raises(VolumeError, match="truncated or corrupt archive"):
        area.unpack(archive)
    area.assert_nothing_left()


# -- a full disk ----------------------------------------------------------------

@pytest.fixture
def small_fs(tmp_path):
    """A 2 MiB tmpfs, unmounted afterwards."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    if proc.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % proc.stdout.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_disk_full_is_reported_and_nothing_is_left(area, small_fs):
    write_tar(area.archive, [regular("small", b"x" * 1000)] +
              [regular("big%d" % i, os.urandom(1 << 20)) for i in range(3)], "gz")
    dest = small_fs / "www"
    with pytest.raises(VolumeError) as exc:
        volumes.unpack(str(area.archive), str(dest), label=LABEL)
    assert exc.value.where.startswith(LABEL + ": member 'big")
    assert exc.value.what.startswith("disk full while unpacking (")
    assert exc.value.what.endswith(" bytes needed so far)")
    assert os.listdir(str(small_fs)) == []
    st = os.statvfs(str(small_fs))
    assert st.f_bfree == st.f_blocks                 # all the space is back
    # the same archive fits once there is room
    volumes.unpack(str(area.archive), str(area.dest), label=LABEL)
    assert os.path.getsize(str(area.dest / "big2")) == 1 << 20


# -- the module itself ------------------------------------------------------------

def test_public_surface():
    assert set(volumes.__all__) >= {"detect_compression", "unpack", "UnpackStats",
                                    "MAX_UNPACKED_BYTES", "MAX_MEMBERS"}
    assert volumes.MAX_UNPACKED_BYTES == 8 << 30 and volumes.MAX_MEMBERS == 1000000
    assert volumes.UnpackStats(files=1, bytes=2) == (1, 2)
    assert "OPS_MAX_VOLUME_BYTES" in volumes.__doc__



@pytest.mark.skipif(not hasattr(__import__("tarfile"), "data_filter"),
                    reason="this Python's tarfile has no extraction filters")
def test_no_file_mode_grants_what_the_data_filter_would_not():
    """For every mode of a regular file, ops grants no permission bit that
    CPython's data filter takes away (the filter also adds owner read and
    write; ops keeps the owner's bits as archived)."""
    import tarfile
    from ops.volumes import _mode as ops_mode
    for mode in range(0o10000):
        ti = tarfile.TarInfo("f")
        ti.mode = mode
        allowed = tarfile.data_filter(ti, "/nonexistent").mode
        assert ops_mode(mode) & ~allowed & 0o7777 == 0, oct(mode)


def _extension_chain(n, typeflag):
    """``n`` extension headers (pax ``x`` or ``g``, GNU ``L``) in a row, then
    a regular file and the end marker."""
    import io
    out = io.BytesIO()
    for _ in range(n):
        ti = tarfile.TarInfo("././@Ext")
        body = b"19 comment=abcdefg\n" if typeflag in (b"x", b"g") else b"name\0"
        ti.size, ti.type = len(body), typeflag
        out.write(ti.tobuf(tarfile.GNU_FORMAT))
        out.write(body + b"\0" * (512 - len(body)))
    ti = tarfile.TarInfo("f")
    ti.size = 1
    out.write(ti.tobuf(tarfile.GNU_FORMAT) + b"x" + b"\0" * 511 + b"\0" * 1024)
    return out.getvalue()


@pytest.mark.parametrize("typeflag", [b"x", b"g", b"L"])
def test_a_chain_of_extension_headers_is_refused_not_a_recursion_error(area, typeflag):
    """tarfile reads each pax or GNU long-name header by a call within the
    last: a thousand of them (a few hundred KiB) overflowed Python's stack
    (RecursionError: 'unexpected error'); they are bounded and refused."""
    area.archive.write_bytes(_extension_chain(2000, typeflag))
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert exc.value.where == LABEL
    assert "more than 64 pax or GNU extension headers" in exc.value.what
    area.assert_nothing_left()
    area.archive.write_bytes(_extension_chain(3, typeflag))     # a few are usual
    assert area.unpack().files == 1


@pytest.mark.parametrize("size", ["-1", "-512", "-99999999999"])
def test_a_negative_size_in_a_pax_header_is_refused_naming_the_member(area, size):
    ti, data = regular("f", b"")
    ti.pax_headers = {"size": size}
    area.archive.write_bytes(ti.tobuf(tarfile.PAX_FORMAT) + b"\0" * 1024)
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert exc.value.where == LABEL + ": member 'f'"
    assert exc.value.what == "negative size %s in its header" % size
    area.assert_nothing_left()


def test_the_paths_held_in_memory_are_bounded(area, monkeypatch):
    """Every entry's path is kept while the archive is unpacked: their total
    is bounded, or a million members of 4,000-byte names (a few MiB of gzip)
    would take gigabytes."""
    monkeypatch.setattr(volumes, "MAX_NAME_BYTES", 2000)
    long_dir = "d" * 200
    write_tar(area.archive, [regular("%s/f%02d" % (long_dir, i), b"x") for i in range(10)], "gz")
    with pytest.raises(VolumeError) as exc:
        area.unpack()
    assert exc.value.where == LABEL
    assert "paths of the archive's members total more than 2000 bytes" in exc.value.what
    area.assert_nothing_left()
    monkeypatch.setattr(volumes, "MAX_NAME_BYTES", 3000)
    assert area.unpack().files == 11


@pytest.mark.parametrize("compress", [False, True])
def test_a_v7_tar_without_the_ustar_magic_is_read_plain_as_compressed(area, tmp_path, compress):
    """A tar header without the ustar magic (tar --format=v7) is told by its
    checksum: a plain one was refused as 'not a tar archive' while the same
    archive gzipped was read."""
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"old format\n")
    archive = tmp_path / ("v7.tar.gz" if compress else "v7.tar")
    subprocess.check_call(["tar", "--format=v7", "-c%sf" % ("z" if compress else ""),
                           str(archive), "-C", str(src), "d"])
    assert volumes.detect_compression(str(archive)) == ("gz" if compress else "tar")
    assert area.unpack(archive).files == 2
    assert (area.dest / "d" / "f").read_bytes() == b"old format\n"
