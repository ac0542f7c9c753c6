"""Unpack volume archives (SPEC §6): the one place ops extracts a tarball.

:func:`unpack` reads a tar archive (plain, gzip, bzip2 or xz, told apart by
magic bytes) as a stream and creates every member itself, after checking it;
``tarfile`` only parses headers, its ``extract``/``extractall`` and their
``filter=`` (which differ between Python versions) are never used.  The
archive is unpacked into a fresh ``.ops-tmp-PID-NAME`` directory beside
``dest`` and renamed to ``dest`` only when every member is in place; on any
failure the temporary directory is removed, so no partial volume is left.

Refused, with the member named: absolute names, ``..`` components, device
nodes, FIFOs, members of unknown type; symbolic links that are absolute or,
resolved lexically from their own directory (through symbolic links unpacked
earlier in the same archive), lead outside the volume; hard links to anything
but a regular file unpacked earlier from the same archive; a member whose path
goes through a symbolic link unpacked earlier, or that would replace a
symbolic link or a directory of another kind.  Set-uid, set-gid, sticky and
world-writable bits are cleared; other permission bits and modification times
are kept.  Numeric owners are kept when running as root (``keep_owners``).

Limits against decompression bombs, checked as each member's header is
read, before its data is written:

``MAX_UNPACKED_BYTES`` (8 GiB)
    total size of the regular files in one archive.  Operators raise or
    lower it with the environment variable ``OPS_MAX_VOLUME_BYTES`` (bytes,
    or a number with a ``K``, ``M``, ``G`` or ``T`` suffix, powers of 1024).
``MAX_MEMBERS`` (1,000,000)
    number of members, counting the directories their paths imply (a
    member ``a/b/c/f`` alone creates four entries); ``OPS_MAX_VOLUME_MEMBERS``
    overrides it.
``MAX_NAME_BYTES`` (256 MiB)
    the paths of all entries together, which are held in memory while the
    archive is unpacked (a million members of 4,000-byte names would need
    gigabytes).
``MAX_HEADER_BYTES`` (8 MiB)
    the headers of one member (pax records, GNU long names, sparse maps),
    which are held in memory while parsed.

Reading the archive (decompression, headers, bounded memory, a corrupt or
truncated archive) is :mod:`ops.archive`'s; this module decides what each
member may be and creates it.  Files are not fsynced one by one: like
``tar``, durability is left to the kernel.
"""

import collections
import errno
import os

from ops.archive import MAX_HEADER_BYTES, TarStream, detect_compression, strerror
from ops import confine
from ops.atomic import TMP_PREFIX
from ops.errors import VolumeError

__all__ = ["MAX_UNPACKED_BYTES", "MAX_MEMBERS", "MAX_HEADER_BYTES",
           "UnpackStats", "detect_compression", "unpack"]

MAX_UNPACKED_BYTES = 8 << 30
MAX_MEMBERS = 1000000
MAX_NAME_BYTES = 256 << 20
_PATH_MAX = 4095             # as a path the kernel takes (PATH_MAX, its NUL aside)
MAX_ID = 2 ** 32 - 2          # the largest uid or gid; (uid_t) -1 means "no change"

BYTES_ENV = "OPS_MAX_VOLUME_BYTES"
MEMBERS_ENV = "OPS_MAX_VOLUME_MEMBERS"

UnpackStats = collections.namedtuple("UnpackStats", "files bytes")
UnpackStats.__doc__ = ("What :func:`unpack` created: ``files`` entries (members of every "
                       "kind, and the directories their paths imply) and ``bytes`` bytes "
                       "of regular file data.")

# Kinds of the paths created so far; a symbolic link is stored as the tuple
# of components its target resolves to, relative to the volume.
_DIR, _FILE = "d", "f"


class _Bad(Exception):
    """A member is refused; the text says why (the caller adds where)."""


def unpack(archive, dest, *, label=None, keep_owners=None, max_bytes=None, max_members=None):
    """Unpack ``archive`` into the new directory ``dest``; return :class:`UnpackStats`.

    ``label`` names the archive in errors (default: its path).  ``keep_owners``
    (default: running as root) applies the archive's numeric uid/gid.
    ``max_bytes`` and ``max_members`` default to the limits above (or their
    environment overrides).  Raises :class:`~ops.errors.VolumeError`; then
    neither ``dest`` nor the temporary directory exists.
    """
    archive = os.fspath(archive)
    dest = os.path.abspath(os.fspath(dest))
    label = label or archive
    if keep_owners is None:
        keep_owners = os.geteuid() == 0
    if max_bytes is None:
        max_bytes = _env_limit(BYTES_ENV, MAX_UNPACKED_BYTES)
    if max_members is None:
        max_members = _env_limit(MEMBERS_ENV, MAX_MEMBERS)
    kind = detect_compression(archive, label)
    parent, base = os.path.split(dest)
    tmp = "%s%d-%s" % (TMP_PREFIX, os.getpid(), base)
    try:
        pfd, _ = confine.open_dir(parent, create=True)
    except OSError as e:
        raise VolumeError(dest, "cannot create: %s" % strerror(e))
    try:
        try:
            os.stat(base, dir_fd=pfd, follow_symlinks=False)
            raise VolumeError(dest, "already exists (a volume is unpacked into a new directory)")
        except FileNotFoundError:
            pass
        try:
            confine.remove_at(pfd, tmp)      # left by a killed run with our PID
            os.mkdir(tmp, 0o700, dir_fd=pfd)
            root = os.open(tmp, confine.DIR_FLAGS, dir_fd=pfd)
        except OSError as e:
            raise VolumeError(dest, "cannot create: %s" % strerror(e))
        job = _Unpacker(root, os.path.join(parent, tmp), label, keep_owners, max_bytes,
                        max_members)
        try:
            with TarStream(archive, kind, label) as members:
                for ti in members:
                    job.member(members, ti)
            job.finish_dirs()
            job.dirs.close()
            try:
                os.rename(tmp, base, src_dir_fd=pfd, dst_dir_fd=pfd)
            except OSError as e:
                raise VolumeError(dest, "cannot rename the unpacked volume into place: %s"
                                  % strerror(e))
        except BaseException:
            job.discard(pfd, tmp)
            raise
        confine._fsync(pfd)
    finally:
        os.close(pfd)
    return UnpackStats(job.members, job.bytes)


class _Unpacker(object):
    """Creates the members of one archive in the directory ``root`` (an open
    descriptor; ``root_path`` for messages), checking each.  Every member is
    created relative to the descriptor of its directory, each directory
    opened from ``root`` one component at a time without following a link
    (:func:`ops.confine.open_child`): a link planted in the volume while it
    is unpacked is refused, never followed."""

    def __init__(self, root, root_path, label, keep_owners, max_bytes, max_members):
        self.label = label
        self.keep_owners = keep_owners
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.members = 0
        self.name_bytes = 0
        self.bytes = 0
        self.kinds = {b"": _DIR}      # relative path -> _DIR, _FILE or a symlink's resolution
        self.dir_meta = {}            # relative path -> (name, mode, mtime, uid, gid) of a directory member
        self.dirs = confine.Tree(root, root_path)     # descriptors of its directories
        self.parent, self.dirfd, self.trim = self.dirs.parent, self.dirs.dirfd, self.dirs.trim

    # -- one member -------------------------------------------------------

    def member(self, members, ti):
        where = "%s: member '%s'" % (self.label, _show(ti.name))
        try:
            self.count()
            parts = _split(ti.name)
            rel = b"/".join(parts)
            self.count_name(rel)
            if ti.size < 0:             # tarfile takes a negative size from a header
                raise _Bad("negative size %d in its header" % ti.size)
            if ti.isreg():
                self.bytes += ti.size
                if self.bytes > self.max_bytes:
                    raise VolumeError(self.label, "archive unpacks to more than %d bytes (limit; "
                                      "set %s to change it)" % (self.max_bytes, BYTES_ENV))
            elif ti.ischr() or ti.isblk():
                raise _Bad("device nodes are not allowed in a volume")
            elif ti.isfifo():
                raise _Bad("FIFOs are not allowed in a volume")
            elif not (ti.isdir() or ti.issym() or ti.islnk()):
                raise _Bad("unsupported member type %r" % _show(ti.type))
            if not parts and not ti.isdir():
                raise _Bad("names the volume directory itself")
            if not all(isinstance(i, int) and 0 <= i <= MAX_ID for i in (ti.uid, ti.gid)):
                # refused whoever runs: the same archive must not be valid for
                # one user and not for another (4294967295 is chown's "keep")
                raise _Bad("owner %s:%s is out of range (0 to %d)" % (ti.uid, ti.gid, MAX_ID))
            self.trim()
            self.make_parents(parts)
            if ti.isdir():
                self.make_dir(rel, ti)
            elif ti.issym():
                self.make_symlink(parts, rel, ti)
            elif ti.islnk():
                self.make_hardlink(rel, ti)
            else:
                self.make_file(members, rel, ti)
        except _Bad as e:
            raise VolumeError(where, str(e))
        except (OverflowError, ValueError, TypeError) as e:
            # a header value no system call takes: the archive is corrupt
            raise VolumeError(where, "invalid header value: %s" % (e or type(e).__name__))
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise VolumeError(where, "disk full while unpacking (%d bytes needed so far)"
                                  % self.bytes)
            raise VolumeError(where, strerror(e))

    def count(self):
        """One more entry in the volume: a member, or a directory a member's
        path implies (so that the limit bounds what is created, however
        deep the names)."""
        self.members += 1
        if self.members > self.max_members:
            raise VolumeError(self.label, "archive has more than %d members (limit, counting "
                              "the directories their paths imply; set %s to change it)"
                              % (self.max_members, MEMBERS_ENV))

    def count_name(self, rel):
        """The path of one more entry, kept in memory until the end."""
        self.name_bytes += len(rel) + 1
        if self.name_bytes > MAX_NAME_BYTES:
            raise VolumeError(self.label, "the paths of the archive's members total more than "
                              "%d bytes (limit)" % MAX_NAME_BYTES)

    def make_parents(self, parts):
        if self.kinds.get(b"/".join(parts[:-1])) is _DIR:
            return          # a directory is made only where its parents are directories
        for i in range(1, len(parts)):
            p = b"/".join(parts[:i])
            k = self.kinds.get(p)
            if k is _DIR:
                continue
            if k is None:
                self.count()
                self.count_name(p)
                self.trim()                 # however deep: a bounded number of descriptors
                fd, leaf = self.parent(p)
                os.mkdir(leaf, 0o700, dir_fd=fd)
                self.kinds[p] = _DIR
            elif k is _FILE:
                raise _Bad("parent '%s' is a file unpacked earlier, not a directory" % _show(p))
            else:
                raise _Bad("path goes through the symbolic link '%s' unpacked earlier"
                           % _show(p))

    def make_dir(self, rel, ti):
        k = self.kinds.get(rel)
        if k is None:
            fd, leaf = self.parent(rel)
            os.mkdir(leaf, 0o700, dir_fd=fd)    # final mode at the end: it may forbid writing
            self.kinds[rel] = _DIR
        elif k is not _DIR:
            raise _Bad("would replace the %s unpacked earlier under the same name" % _kind_name(k))
        self.dir_meta[rel] = (ti.name, ti.mode, ti.mtime, ti.uid, ti.gid)

    def make_file(self, members, rel, ti):
        self.make_room(rel)
        dfd, leaf = self.parent(rel)
        fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
        try:
            self.kinds[rel] = _FILE
            if ti.size:
                members.copy(ti, fd)
            if self.keep_owners:
                os.fchown(fd, ti.uid, ti.gid)
            os.fchmod(fd, _mode(ti.mode))
            _set_mtime(fd, ti.mtime)
        finally:
            os.close(fd)

    def make_hardlink(self, rel, ti):
        try:
            target = b"/".join(_split(ti.linkname))
        except _Bad as e:
            raise _Bad("hard link target '%s': %s" % (_show(ti.linkname), e))
        if self.kinds.get(target) is not _FILE:
            raise _Bad("hard link target '%s' is not a regular file unpacked earlier from "
                       "this archive" % _show(ti.linkname))
        if target == rel:
            return                          # a link to itself: it is already there
        self.make_room(rel)
        tfd, tleaf = self.parent(target)
        dfd, leaf = self.parent(rel)
        os.link(tleaf, leaf, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        self.kinds[rel] = _FILE

    def make_symlink(self, parts, rel, ti):
        target = ti.linkname.encode("utf-8", "surrogateescape")
        if not target:
            raise _Bad("symbolic link with an empty target")
        if b"\0" in target:
            raise _Bad("symbolic link target contains a NUL byte")
        if target.startswith(b"/"):
            raise _Bad("symbolic link target '%s' is absolute" % _show(target))
        if rel in self.kinds:
            raise _Bad("would replace the %s unpacked earlier under the same name"
                       % _kind_name(self.kinds[rel]))
        resolved = self.resolve(parts[:-1], target)
        dfd, leaf = self.parent(rel)
        os.symlink(target, leaf, dir_fd=dfd)
        self.kinds[rel] = resolved
        if self.keep_owners:
            os.chown(leaf, ti.uid, ti.gid, dir_fd=dfd, follow_symlinks=False)
        try:
            os.utime(leaf, (ti.mtime, ti.mtime), dir_fd=dfd, follow_symlinks=False)
        except (OverflowError, ValueError):
            pass

    def resolve(self, base, target):
        """Resolve ``target`` lexically from the directory ``base``; refuse it
        if it leaves the volume.  ``..`` may only step out of a directory
        unpacked earlier: a directory is never replaced, so the meaning of
        ``..`` cannot change under a later member (as it could if the
        component were created afterwards as a symbolic link)."""
        stack = list(base)
        for c in target.split(b"/"):
            if c in (b"", b"."):
                continue
            if c == b"..":
                if not stack:
                    raise _Bad("symbolic link target '%s' leads outside the volume"
                               % _show(target))
                if self.kinds.get(b"/".join(stack)) is not _DIR:
                    raise _Bad("symbolic link target '%s' uses '..' after '%s', which is not a "
                               "directory unpacked earlier" % (_show(target), _show(b"/".join(stack))))
                stack.pop()
                continue
            stack.append(c)
            k = self.kinds.get(b"/".join(stack))
            if isinstance(k, tuple):
                stack = list(k)
        return tuple(stack)

    def make_room(self, rel):
        """A regular file may replace one unpacked earlier (appended archives
        hold both); anything else under the same name is refused."""
        k = self.kinds.get(rel)
        if k is None:
            return
        if k is not _FILE:
            raise _Bad("would replace the %s unpacked earlier under the same name" % _kind_name(k))
        dfd, leaf = self.parent(rel)
        os.unlink(leaf, dir_fd=dfd)
        del self.kinds[rel]

    # -- the end ----------------------------------------------------------

    def finish_dirs(self):
        """Directory modes, owners and times, deepest first: the contents
        are in place, and a mode may forbid writing into the directory."""
        dirs = sorted((p for p, k in self.kinds.items() if k is _DIR),
                      key=lambda p: p.count(b"/") + bool(p), reverse=True)
        for rel in dirs:
            meta = self.dir_meta.get(rel)
            where = "%s: member '%s'" % (self.label, _show(meta[0] if meta else rel))
            try:
                self.trim()
                fd = self.dirfd(rel)
                if meta is None:
                    os.fchmod(fd, 0o755)
                    continue
                name, mode, mtime, uid, gid = meta
                if self.keep_owners:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, _mode(mode, directory=True))
                _set_mtime(fd, mtime)
            except OSError as e:
                raise VolumeError(where, strerror(e))

    def discard(self, pfd, tmp):
        """Remove the partly unpacked directory ``tmp`` of directory ``pfd``."""
        dirs = sorted((p for p, k in self.kinds.items() if k is _DIR), key=lambda p: p.count(b"/"))
        for rel in dirs:           # so that a non-root caller can remove them
            try:
                self.trim()
                os.fchmod(self.dirfd(rel), 0o700)
            except Exception:
                pass
        self.dirs.close()
        try:
            confine.remove_at(pfd, tmp)
        except OSError:
            pass


def _split(name):
    """The components of a member name; refuse absolute names and ``..``."""
    b = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    if b"\0" in b:
        raise _Bad("name contains a NUL byte")
    if b.startswith(b"/"):
        raise _Bad("absolute path")
    if len(b) > _PATH_MAX:     # members are made relative to descriptors: the kernel no longer says
        raise _Bad("name is longer than %d bytes" % _PATH_MAX)
    parts = [c for c in b.split(b"/") if c not in (b"", b".")]
    if b".." in parts:
        raise _Bad("path escapes the volume")
    return parts


def _mode(mode, directory=False):
    """The mode ops gives a member: no set-uid, set-gid or sticky bit, no
    write for group or others (as CPython's ``data`` extraction filter), and
    a file its owner cannot execute is executable by no one (idem)."""
    mode &= 0o755
    if not directory and not mode & 0o100:
        mode &= ~0o111
    return mode


def _set_mtime(fd, mtime):
    try:
        os.utime(fd, (mtime, mtime))
    except (OverflowError, ValueError):
        pass                   # a time the filesystem cannot hold: keep the current one


def _kind_name(k):
    if isinstance(k, tuple):
        return "symbolic link"
    return "directory" if k is _DIR else "file"


def _show(name):
    if isinstance(name, str):
        name = name.encode("utf-8", "surrogateescape")
    return name.decode("utf-8", "backslashreplace")


def _env_limit(name, default):
    from ops import environment
    return environment.get(name, default)
