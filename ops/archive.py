"""Read a tar archive as a stream of members (SPEC §6), for :mod:`ops.volumes`
to unpack; the one place that knows compression magic bytes.

Plain, gzip, bzip2 or xz, told apart by magic bytes (a plain tar by the
``ustar`` magic, or for an old one without it by its first header's
checksum); decompressed in a background thread, overlapping with writing
files as ``gzip -d`` beside ``tar -x`` (gzip by zlib in-process: faster than an external ``gzip -dc``).
Memory stays bounded whatever the compression ratio: data moves in 1 MiB
chunks, decompressors are asked for bounded output, a member's headers may
hold ``MAX_HEADER_BYTES``.  ``tarfile`` only parses headers; a missing end
marker, a damaged header or a failed checksum is a corrupt archive.  Nothing
here creates a file: which members are accepted (how many, how large, of
which kind), and how they are written, is :mod:`ops.volumes`' job.
"""

import os
import queue
import tarfile
import threading
import zlib

from ops.errors import VolumeError

try:                    # a Python may be built without them; only their archives need them
    import bz2
except ImportError:     # pragma: no cover
    bz2 = None
try:
    import lzma
except ImportError:     # pragma: no cover
    lzma = None

__all__ = ["MAX_HEADER_BYTES", "compression_from_magic", "detect_compression", "TarStream",
           "strerror"]

MAX_HEADER_BYTES = 8 << 20
MAX_EXTENSION_HEADERS = 64    # pax, GNU long name and long link headers before one member

_CHUNK = 1 << 20
_DRAIN_LIMIT = 64 << 20      # decompressed bytes read after the end-of-archive marker
_NOT_TAR = "not a tar archive (plain, gzip, bzip2 or xz)"
_GZIP_MAGIC = b"\x1f\x8b"
_MAGIC = ((_GZIP_MAGIC, "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


class _Broken(Exception):
    """The archive cannot be read to its end; the text is the whole WHAT."""


def compression_from_magic(head):
    """``"gz"``, ``"bz2"`` or ``"xz"`` from the first bytes of a file (at
    least 6), or None when they announce none of them."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def detect_compression(path, where=None):
    """Return ``"tar"``, ``"gz"``, ``"bz2"`` or ``"xz"`` from the file's magic
    bytes; raise VolumeError (``where``, default the path) for anything else."""
    where = str(path) if where is None else where
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise VolumeError(where, "cannot read: %s" % strerror(e))
    kind = compression_from_magic(head)
    if kind:
        return kind
    if head[257:262] == b"ustar" or _v7_header(head):
        return "tar"
    if len(head) == 512 and not head.strip(b"\0"):
        return "tar"        # an empty archive: nothing but the end marker
    raise VolumeError(where, _NOT_TAR)


def _v7_header(head):
    """A tar header without the ``ustar`` magic (``tar --format=v7``): told
    by its checksum, as tar itself tells it (a compressed one is read as
    any other)."""
    if len(head) < 512 or not head[0]:
        return False
    try:
        return tarfile.nti(head[148:156]) in tarfile.calc_chksums(head[:512])
    except (tarfile.TarError, ValueError):
        return False


class TarStream(object):
    """The members of one archive, read once from start to end.

    Iterating yields each member's ``tarfile.TarInfo``, its headers read
    within bounds; :meth:`copy` writes the current member's data.  Every
    failure to read is a VolumeError whose ``where`` is ``label``.  Use it as
    a context manager: leaving closes the file and stops the decompressing
    thread."""

    def __init__(self, path, kind, label):
        self.label, self.kind = label, kind
        try:
            self.stream = _open_stream(path, kind)
        except _Broken as e:
            raise VolumeError(label, str(e))
        except OSError as e:
            raise VolumeError(label, "cannot read: %s" % strerror(e))
        try:
            self.tf = tarfile.open(fileobj=self.stream, mode="r|", tarinfo=_TarInfo,
                                   encoding="utf-8", errors="surrogateescape")
        except BaseException as e:
            self.stream.close()
            if isinstance(e, _READ_ERRORS):
                raise _unreadable(label, e)
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.tf.close()
        finally:
            self.stream.close()

    def __iter__(self):
        tf = self.tf
        empty = tf.firstmember is None    # asking again would seek backwards on 3.8
        while not empty:
            try:
                ti = tf.next()
            except _READ_ERRORS as e:
                raise _unreadable(self.label, e)
            del tf.members[:]            # stream mode: nothing needs them, memory stays flat
            if ti is None:
                break
            yield ti
        self.check_end()
        if self.kind != "tar":
            self.drain()

    def copy(self, ti, fd):
        """Write the data of member ``ti`` (the last one yielded) to the file
        descriptor ``fd``; an error writing is the OSError itself."""
        src = self.tf.extractfile(ti)
        left = ti.size
        while left:
            try:
                chunk = src.read(min(_CHUNK, left))
            except _READ_ERRORS as e:
                raise _unreadable(self.label, e)
            if not chunk:
                raise VolumeError(self.label, "truncated or corrupt archive: unexpected end "
                                  "of data")
            left -= len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]

    def check_end(self):
        end = getattr(self.tf, "ops_end", None)
        if isinstance(end, tarfile.EOFHeaderError):
            return
        if isinstance(end, (tarfile.EmptyHeaderError, tarfile.TruncatedHeaderError)) \
                or end is None:
            what = "unexpected end of data (no end-of-archive marker)"
        else:
            what = "%s after the last member" % (str(end) or "invalid header")
        raise VolumeError(self.label, "truncated or corrupt archive: %s" % what)

    def drain(self):
        """Read what follows the end marker (padding) so that the
        decompressor reaches the end of its stream and checks its CRC."""
        left = _DRAIN_LIMIT
        try:
            while left > 0:
                data = self.stream.read(min(_CHUNK, left))
                if not data:
                    return
                left -= len(data)
        except _READ_ERRORS as e:
            raise _unreadable(self.label, e)


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
                if rest[:2] != _GZIP_MAGIC:
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
        self.headers = 0

    def nested(self):
        """One more pax or GNU header before the member: tarfile reads each
        by a call within the last, so a chain of them is bounded too."""
        self.headers += 1
        if self.headers > MAX_EXTENSION_HEADERS:
            raise _Broken("a member has more than %d pax or GNU extension headers"
                          % MAX_EXTENSION_HEADERS)

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
            tf.fileobj.nested()
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


_READ_ERRORS = (_Broken, tarfile.TarError, EOFError, OSError, zlib.error, ValueError,
                OverflowError) + ((lzma.LZMAError,) if lzma else ())


def _unreadable(label, e):
    """The VolumeError for ``e``, one of _READ_ERRORS, met reading the archive."""
    if isinstance(e, _Broken):
        return VolumeError(label, str(e))
    if isinstance(e, OSError) and e.errno is not None:
        return VolumeError(label, "cannot read the archive: %s" % strerror(e))
    return VolumeError(label, "truncated or corrupt archive: %s" % (str(e) or type(e).__name__))


def strerror(e):
    """What an OSError says, without its errno number."""
    return e.strerror or str(e)
