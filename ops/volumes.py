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
    number of members; ``OPS_MAX_VOLUME_MEMBERS`` overrides it.
``MAX_HEADER_BYTES`` (8 MiB)
    the headers of one member (pax records, GNU long names, sparse maps),
    which are held in memory while parsed.

Memory stays bounded (data is copied in 1 MiB chunks; the decompressors are
asked for bounded output), whatever the compression ratio.  Decompression
runs in a background thread, overlapping with writing files as ``gzip -d``
does beside ``tar -x``; gzip uses zlib in-process, which measured faster than
piping through an external ``gzip -dc``.  Files are not fsynced one by one:
like ``tar``, durability is left to the kernel.
"""

import collections
import errno
import os
import queue
import re
import shutil
import tarfile
import threading
import zlib

from ops.atomic import TMP_PREFIX, fsync_dir
from ops.errors import UsageError, VolumeError

try:                    # a Python may be built without them; only their archives need them
    import bz2
except ImportError:     # pragma: no cover
    bz2 = None
try:
    import lzma
except ImportError:     # pragma: no cover
    lzma = None

__all__ = ["MAX_UNPACKED_BYTES", "MAX_MEMBERS", "MAX_HEADER_BYTES",
           "UnpackStats", "detect_compression", "unpack"]

MAX_UNPACKED_BYTES = 8 << 30
MAX_MEMBERS = 1000000
MAX_HEADER_BYTES = 8 << 20
MAX_ID = 2 ** 32 - 2          # the largest uid or gid; (uid_t) -1 means "no change"

BYTES_ENV = "OPS_MAX_VOLUME_BYTES"
MEMBERS_ENV = "OPS_MAX_VOLUME_MEMBERS"

_CHUNK = 1 << 20
_DRAIN_LIMIT = 64 << 20      # decompressed bytes read after the end-of-archive marker
_NOT_TAR = "not a tar archive (plain, gzip, bzip2 or xz)"

UnpackStats = collections.namedtuple("UnpackStats", "files bytes")
UnpackStats.__doc__ = ("What :func:`unpack` created: ``files`` members (of every "
                       "kind) and ``bytes`` bytes of regular file data.")

# Kinds of the paths created so far; a symbolic link is stored as the tuple
# of components its target resolves to, relative to the volume.
_DIR, _FILE = "d", "f"


class _Bad(Exception):
    """A member is refused; the text says why (the caller adds where)."""


class _Broken(Exception):
    """The archive cannot be read to its end; the text is the whole WHAT."""


def detect_compression(path):
    """Return ``"tar"``, ``"gz"``, ``"bz2"`` or ``"xz"`` from the file's magic bytes."""
    return _detect(path, str(path))


def _detect(path, where):
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise VolumeError(where, "cannot read: %s" % _strerror(e))
    if head[:2] == b"\x1f\x8b":
        return "gz"
    if head[:3] == b"BZh":
        return "bz2"
    if head[:6] == b"\xfd7zXZ\x00":
        return "xz"
    if head[257:262] == b"ustar":
        return "tar"
    if len(head) == 512 and not head.strip(b"\0"):
        return "tar"        # an empty archive: nothing but the end marker
    raise VolumeError(where, _NOT_TAR)


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
    if os.path.lexists(dest):
        raise VolumeError(dest, "already exists (a volume is unpacked into a new directory)")
    kind = _detect(archive, label)
    parent, base = os.path.split(dest)
    tmp = os.path.join(parent, "%s%d-%s" % (TMP_PREFIX, os.getpid(), base))
    try:
        os.makedirs(parent, exist_ok=True)
        if os.path.lexists(tmp):            # left by a killed run with our PID
            _remove(tmp)
        os.mkdir(tmp, 0o700)
    except OSError as e:
        raise VolumeError(dest, "cannot create: %s" % _strerror(e))
    job = _Unpacker(tmp, label, keep_owners, max_bytes, max_members)
    try:
        try:
            stream = _open_stream(archive, kind)
        except _Broken as e:
            raise VolumeError(label, str(e))
        except OSError as e:
            raise VolumeError(label, "cannot read: %s" % _strerror(e))
        try:
            job.run(stream, drain=kind != "tar")
        finally:
            stream.close()
        try:
            os.rename(tmp, dest)
        except OSError as e:
            raise VolumeError(dest, "cannot rename the unpacked volume into place: %s"
                              % _strerror(e))
    except BaseException:
        job.discard()
        raise
    fsync_dir(parent)
    return UnpackStats(job.members, job.bytes)


def _open_stream(archive, kind):
    """A file object yielding the uncompressed tar.  Each decompressor is
    asked for bounded output and checks the stream's checksum at its end; it
    runs in a thread of its own (zlib, bz2 and lzma release the GIL), so
    that decompressing overlaps writing files, as with ``tar | gzip -d``."""
    module = {"bz2": bz2, "xz": lzma}.get(kind, zlib)
    if module is None:
        raise _Broken("cannot decompress %s: this Python lacks its %s module"
                      % (kind, "bz2" if kind == "bz2" else "lzma"))
    raw = open(archive, "rb")
    if kind == "tar":
        return raw
    try:
        if kind == "gz":
            reader = _GzipReader(raw)
        elif kind == "bz2":
            reader = bz2.BZ2File(raw, "rb")
        else:
            reader = lzma.LZMAFile(raw, "rb")
        return _Prefetch(reader, raw)
    except BaseException:
        raw.close()
        raise


class _GzipReader(object):
    """gzip, decompressed by zlib in large steps (several times fewer calls
    than ``gzip.GzipFile`` on older Pythons); zlib checks each member's CRC-32
    and length.  Members are concatenated; bytes after the last one are
    ignored, as ``gzip -d`` does."""

    _RAW = 256 << 10

    def __init__(self, raw):
        self.raw = raw
        self.zd = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.tail = b""

    def read(self, size):
        while True:
            if self.tail:
                out = self.zd.decompress(self.tail, size)
                self.tail = self.zd.unconsumed_tail
                if out:
                    return out
            if self.zd.eof:
                rest = self.zd.unused_data
                while len(rest) < 2:
                    more = self.raw.read(self._RAW)
                    if not more:
                        break
                    rest += more
                if rest[:2] != b"\x1f\x8b":
                    return b""
                self.zd = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self.tail = rest
                continue
            self.tail = self.raw.read(self._RAW)
            if not self.tail:
                raise EOFError("compressed data ends before the end of the gzip stream")

    def close(self):
        pass


class _Prefetch(object):
    """Reads ``reader`` in a background thread, :data:`_CHUNK` at a time,
    through a queue of at most ``depth`` chunks (memory stays bounded).  An
    exception in the thread is raised again by :meth:`read`."""

    def __init__(self, reader, raw, depth=4):
        self.reader, self.raw = reader, raw
        self.queue = queue.Queue(depth)
        self.stopping = threading.Event()
        self.buf, self.pos, self.end = b"", 0, None
        self.thread = threading.Thread(target=self._fill, name="ops-unpack-read")
        self.thread.daemon = True
        self.thread.start()

    def _fill(self):
        try:
            while True:
                data = self.reader.read(_CHUNK)
                if not self._put(data) or not data:
                    return
        except BaseException as e:        # handed to the reading thread
            self._put(e)

    def _put(self, item):
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read(self, size=-1):
        if self.pos >= len(self.buf):
            if self.end is not None:
                if isinstance(self.end, BaseException):
                    raise self.end
                return b""
            item = self.queue.get()
            if isinstance(item, BaseException) or not item:
                self.end = item
                return self.read(size)
            self.buf, self.pos = item, 0
        if size is None or size < 0:
            size = len(self.buf) - self.pos
        data = self.buf[self.pos:self.pos + size] if self.pos or size < len(self.buf) else self.buf
        self.pos += len(data)
        return data

    def close(self):
        self.stopping.set()
        self.thread.join()
        try:
            self.reader.close()
        finally:
            self.raw.close()


class _HeaderLimit(object):
    """Stands in for ``TarFile.fileobj`` while one member's headers are
    parsed, so that a huge pax record, long name or sparse map (all held in
    memory by tarfile) is refused instead of read."""

    def __init__(self, fileobj, limit):
        self.fileobj, self.left = fileobj, limit

    def read(self, size=-1):
        if size is None or size < 0 or size > self.left:
            raise _Broken("a member's headers (pax records, long name or sparse map) "
                          "exceed %d bytes" % MAX_HEADER_BYTES)
        self.left -= size
        return self.fileobj.read(size)

    def tell(self):
        return self.fileobj.tell()

    def seek(self, pos):
        return self.fileobj.seek(pos)


class _TarInfo(tarfile.TarInfo):
    """Parses headers as tarfile does, under :data:`MAX_HEADER_BYTES`, and
    remembers why the last header could not be read: tarfile treats a
    missing end marker or a damaged header after the first member as the end
    of the archive, ops treats them as a corrupt archive."""

    __slots__ = ()

    @classmethod
    def fromtarfile(cls, tf):
        if isinstance(tf.fileobj, _HeaderLimit):       # a pax or long-name header's member
            return super(_TarInfo, cls).fromtarfile(tf)
        real = tf.fileobj
        tf.fileobj = _HeaderLimit(real, MAX_HEADER_BYTES)
        try:
            return super(_TarInfo, cls).fromtarfile(tf)
        except tarfile.HeaderError as e:
            tf.ops_end = e
            raise
        finally:
            tf.fileobj = real


_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, ValueError,
                OverflowError) + ((lzma.LZMAError,) if lzma else ())


def _broken(e):
    if isinstance(e, _Broken):
        return e
    if isinstance(e, OSError) and e.errno is not None:
        return _Broken("cannot read the archive: %s" % _strerror(e))
    return _Broken("truncated or corrupt archive: %s" % (str(e) or type(e).__name__))


class _Unpacker(object):
    """Creates the members of one archive under ``root``, checking each."""

    def __init__(self, root, label, keep_owners, max_bytes, max_members):
        self.root = os.fsencode(root)
        self.label = label
        self.keep_owners = keep_owners
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.members = 0
        self.bytes = 0
        self.kinds = {b"": _DIR}      # relative path -> _DIR, _FILE or a symlink's resolution
        self.dir_meta = {}            # relative path -> (name, mode, mtime, uid, gid) of a directory member

    # -- the archive ------------------------------------------------------

    def run(self, stream, drain):
        try:
            tf = tarfile.open(fileobj=stream, mode="r|", tarinfo=_TarInfo,
                              encoding="utf-8", errors="surrogateescape")
        except (_Broken,) + _READ_ERRORS as e:
            raise VolumeError(self.label, str(_broken(e)))
        try:
            empty = tf.firstmember is None    # asking again would seek backwards on 3.8
            while not empty:
                try:
                    ti = tf.next()
                except (_Broken,) + _READ_ERRORS as e:
                    raise VolumeError(self.label, str(_broken(e)))
                del tf.members[:]            # stream mode: nothing needs them, memory stays flat
                if ti is None:
                    break
                self.member(tf, ti)
            self.check_end(tf)
            if drain:
                self.drain(stream)
            self.finish_dirs()
        finally:
            tf.close()

    def check_end(self, tf):
        end = getattr(tf, "ops_end", None)
        if isinstance(end, tarfile.EOFHeaderError):
            return
        if isinstance(end, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError)) \
                or end is None:
            what = "unexpected end of data (no end-of-archive marker)"
        else:
            what = "%s after the last member" % (str(end) or "invalid header")
        raise VolumeError(self.label, "truncated or corrupt archive: %s" % what)

    def drain(self, stream):
        """Read what follows the end marker (padding) so that the
        decompressor reaches the end of its stream and checks its CRC."""
        left = _DRAIN_LIMIT
        try:
            while left > 0:
                data = stream.read(min(_CHUNK, left))
                if not data:
                    return
                left -= len(data)
        except _READ_ERRORS as e:
            raise VolumeError(self.label, str(_broken(e)))

    # -- one member -------------------------------------------------------

    def member(self, tf, ti):
        where = "%s: member '%s'" % (self.label, _show(ti.name))
        try:
            self.members += 1
            if self.members > self.max_members:
                raise VolumeError(self.label, "archive has more than %d members (limit; set %s "
                                  "to change it)" % (self.max_members, MEMBERS_ENV))
            parts = _split(ti.name)
            rel = b"/".join(parts)
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
            self.make_parents(parts)
            if ti.isdir():
                self.make_dir(rel, ti)
            elif ti.issym():
                self.make_symlink(parts, rel, ti)
            elif ti.islnk():
                self.make_hardlink(rel, ti)
            else:
                self.make_file(tf, rel, ti, where)
        except _Bad as e:
            raise VolumeError(where, str(e))
        except _Broken as e:
            raise VolumeError(self.label, str(e))
        except (OverflowError, ValueError, TypeError) as e:
            # a header value no system call takes: the archive is corrupt
            raise VolumeError(where, "invalid header value: %s" % (e or type(e).__name__))
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise VolumeError(where, "disk full while unpacking (%d bytes needed so far)"
                                  % self.bytes)
            raise VolumeError(where, _strerror(e))

    def make_parents(self, parts):
        for i in range(1, len(parts)):
            p = b"/".join(parts[:i])
            k = self.kinds.get(p)
            if k is _DIR:
                continue
            if k is None:
                os.mkdir(self.path(p), 0o700)
                self.kinds[p] = _DIR
            elif k is _FILE:
                raise _Bad("parent '%s' is a file unpacked earlier, not a directory" % _show(p))
            else:
                raise _Bad("path goes through the symbolic link '%s' unpacked earlier"
                           % _show(p))

    def make_dir(self, rel, ti):
        k = self.kinds.get(rel)
        if k is None:
            os.mkdir(self.path(rel), 0o700)     # final mode at the end: it may forbid writing
            self.kinds[rel] = _DIR
        elif k is not _DIR:
            raise _Bad("would replace the %s unpacked earlier under the same name" % _kind_name(k))
        self.dir_meta[rel] = (ti.name, ti.mode, ti.mtime, ti.uid, ti.gid)

    def make_file(self, tf, rel, ti, where):
        path = self.path(rel)
        self.make_room(rel)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        try:
            self.kinds[rel] = _FILE
            if ti.size:
                self.copy(tf.extractfile(ti), fd, ti.size)
            if self.keep_owners:
                os.fchown(fd, ti.uid, ti.gid)
            os.fchmod(fd, _mode(ti.mode))
            _set_mtime(fd, ti.mtime)
        finally:
            os.close(fd)

    def copy(self, src, fd, size):
        left = size
        while left:
            try:
                chunk = src.read(min(_CHUNK, left))
            except _READ_ERRORS as e:
                raise _broken(e)
            if not chunk:
                raise _Broken("truncated or corrupt archive: unexpected end of data")
            left -= len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

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
        os.link(self.path(target), self.path(rel), follow_symlinks=False)
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
        path = self.path(rel)
        os.symlink(target, path)
        self.kinds[rel] = resolved
        if self.keep_owners:
            os.lchown(path, ti.uid, ti.gid)
        _set_mtime(path, ti.mtime, follow_symlinks=False)

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
        os.unlink(self.path(rel))
        del self.kinds[rel]

    # -- the end ----------------------------------------------------------

    def finish_dirs(self):
        """Directory modes, owners and times, deepest first: the contents
        are in place, and a mode may forbid writing into the directory."""
        dirs = sorted((p for p, k in self.kinds.items() if k is _DIR),
                      key=lambda p: p.count(b"/") + bool(p), reverse=True)
        for rel in dirs:
            meta = self.dir_meta.get(rel)
            path = self.path(rel)
            where = "%s: member '%s'" % (self.label, _show(meta[0] if meta else rel))
            try:
                if meta is None:
                    os.chmod(path, 0o755)
                    continue
                name, mode, mtime, uid, gid = meta
                if self.keep_owners:
                    os.lchown(path, uid, gid)
                os.chmod(path, _mode(mode))
                _set_mtime(path, mtime)
            except OSError as e:
                raise VolumeError(where, _strerror(e))

    def discard(self):
        for rel, k in self.kinds.items():      # so that a non-root caller can remove them
            if k is _DIR:
                try:
                    os.chmod(self.path(rel), 0o700)
                except OSError:
                    pass
        _remove(os.fsdecode(self.root))

    def path(self, rel):
        return self.root + b"/" + rel if rel else self.root


def _split(name):
    """The components of a member name; refuse absolute names and ``..``."""
    b = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    if b"\0" in b:
        raise _Bad("name contains a NUL byte")
    if b.startswith(b"/"):
        raise _Bad("absolute path")
    parts = [c for c in b.split(b"/") if c not in (b"", b".")]
    if b".." in parts:
        raise _Bad("path escapes the volume")
    return parts


def _mode(mode):
    return mode & 0o775        # no set-uid, set-gid, sticky or world-writable bit


def _set_mtime(target, mtime, follow_symlinks=True):
    try:
        if follow_symlinks:
            os.utime(target, (mtime, mtime))
        else:
            os.utime(target, (mtime, mtime), follow_symlinks=False)
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


def _strerror(e):
    return e.strerror or str(e)


def _remove(path):
    shutil.rmtree(path, ignore_errors=True)
    if os.path.lexists(path) and not os.path.isdir(path):
        try:
            os.unlink(path)
        except OSError:
            pass


_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _env_limit(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    m = re.match(r"([0-9]+)([KMGT]?)$", value, re.I)
    if m and int(m.group(1)) > 0:
        return int(m.group(1)) * _SUFFIXES[m.group(2).upper()]
    raise UsageError(name, "invalid limit %r: expected a positive whole number, optionally "
                     "followed by K, M, G or T" % value)
