"""Build ACI files (appc images) for tests, byte for byte reproducible.

``build_aci`` writes a tar with ``manifest`` and ``rootfs/`` (fixed mtimes,
owners and modes), optionally gzip/bzip2/xz compressed, and returns the appc
image ID: ``sha512-`` and the 128 hex digits of the SHA-512 of the
uncompressed tar.  rkt shortens IDs: ``image_key`` gives its 71-character
store key (``fetch --full``, ``image list --format=json``), ``short_id`` the
39 characters ``fetch`` prints.
"""

import bz2
import gzip
import hashlib
import io
import json
import lzma
import platform

__all__ = ["Symlink", "build_aci", "tar_bytes", "compress", "image_id", "image_id_of_file",
           "image_key", "short_id", "host_arch", "MTIME"]

MTIME = 1500000000   # 2017-07-14, the mtime of every member


def host_arch():
    """The appc ``arch`` label of this machine, as rkt computes it."""
    m = platform.machine().lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "aarch64",
            "arm64": "aarch64", "i386": "i386", "i686": "i386",
            "armv7l": "armv7l", "armv6l": "armv6l", "ppc64le": "ppc64le",
            "ppc64": "ppc64", "s390x": "s390x"}.get(m, m)


def default_manifest(name, version, labels=None, app=True):
    labs = []
    if version is not None:
        labs.append({"name": "version", "value": str(version)})
    labs += [{"name": "os", "value": "linux"}, {"name": "arch", "value": host_arch()}]
    for n, v in labels or []:
        labs.append({"name": n, "value": v})
    m = {"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name, "labels": labs}
    if app:
        m["app"] = {"exec": ["/bin/hello"], "user": "0", "group": "0"}
    return m


BLOCK = 512
RECORD = 20 * BLOCK


def _split_name(name):
    data = name.encode("utf-8")
    if len(data) <= 100:
        return b"", data
    for i in range(len(data) - 1, 0, -1):
        if data[i:i + 1] == b"/" and i <= 155 and len(data) - i - 1 <= 100:
            return data[:i], data[i + 1:]
    raise ValueError("name too long for a ustar header: %r" % name)


def _header(name, typeflag, size=0, mode=0o644):
    """A POSIX ustar header: owner root (0/0), mtime MTIME."""
    prefix, short = _split_name(name)
    h = bytearray(BLOCK)

    def put(off, width, value):
        h[off:off + len(value)] = value
        assert len(value) <= width

    put(0, 100, short)
    put(100, 8, b"%07o\0" % mode)
    put(108, 8, b"%07o\0" % 0)
    put(116, 8, b"%07o\0" % 0)
    put(124, 12, b"%011o\0" % size)
    put(136, 12, b"%011o\0" % MTIME)
    put(148, 8, b" " * 8)
    put(156, 1, typeflag)
    put(257, 6, b"ustar\0")
    put(263, 2, b"00")
    put(265, 32, b"root")
    put(297, 32, b"root")
    put(329, 8, b"%07o\0" % 0)
    put(337, 8, b"%07o\0" % 0)
    put(345, 155, prefix)
    put(148, 8, b"%06o\0 " % sum(h))
    return bytes(h)


class Symlink(object):
    """A symbolic link to ``target``, as a value of :func:`tar_bytes`'s ``files``."""

    def __init__(self, target):
        self.target = target


def _member(name, content=None, mode=0o644):
    if content is None:
        return _header(name.rstrip("/") + "/", b"5", 0, mode)
    pad = (-len(content)) % BLOCK
    return _header(name, b"0", len(content), mode) + content + b"\0" * pad


def _symlink(name, target):
    h = bytearray(_header(name, b"2", 0, 0o777))
    link = target.encode("utf-8")
    if len(link) > 100:
        raise ValueError("link target too long for a ustar header: %r" % target)
    h[157:157 + len(link)] = link
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def tar_bytes(manifest_bytes, files, manifest_name="manifest"):
    """The uncompressed ACI, written byte by byte (the same on every Python):
    ``manifest`` (unless ``manifest_bytes`` is None), ``rootfs/``, then
    ``files`` ({path under rootfs: bytes, str, (bytes, mode), a :class:`Symlink`,
    or None for an empty directory}) with their parent directories; two zero blocks, padded
    to a 10240-byte record."""
    out = []
    if manifest_bytes is not None:
        out.append(_member(manifest_name, bytes(manifest_bytes)))
    out.append(_member("rootfs/", None, 0o755))
    dirs = set()
    for rel in sorted(files):
        parts = rel.strip("/").split("/")
        content = files[rel]
        # its parent directories, and itself when it is an empty directory (None)
        for i in range(1, len(parts) + (content is None)):
            d = "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                out.append(_member("rootfs/" + d + "/", None, 0o755))
        if content is None:
            continue
        if isinstance(content, Symlink):
            out.append(_symlink("rootfs/" + "/".join(parts), content.target))
            continue
        mode = 0o644
        if isinstance(content, tuple):
            content, mode = content
        if isinstance(content, str):
            content = content.encode("utf-8")
        out.append(_member("rootfs/" + "/".join(parts), content, mode))
    out.append(b"\0" * (2 * BLOCK))
    data = b"".join(out)
    return data + b"\0" * ((-len(data)) % RECORD)


def compress(data, compression):
    """Compress reproducibly: None (plain tar), "gz", "bz2" or "xz"."""
    if compression is None:
        return data
    if compression == "gz":
        out = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as g:
            g.write(data)
        return out.getvalue()
    if compression == "bz2":
        return bz2.compress(data)
    if compression == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    raise ValueError("unknown compression %r" % (compression,))


def image_id(tar):
    """The appc image ID of an uncompressed tar: sha512- and 128 hex digits."""
    return "sha512-" + hashlib.sha512(tar).hexdigest()


def build_aci(path, name="example.com/hello", version="1.0", compression=None, files=None,
              labels=None, manifest=None, app=True):
    """Write an ACI to ``path`` and return its full image ID (135 characters).

    ``files`` maps paths under rootfs to contents (bytes, str,
    (bytes, mode), or None for an empty directory); by default one small
    text file naming the image.
    ``labels`` adds (name, value) labels after version/os/arch.
    ``manifest`` replaces the generated manifest: a dict (serialized as JSON),
    bytes/str (written as they are), or False for an archive without one.
    """
    if files is None:
        files = {"etc/hello.txt": "hello from %s %s\n" % (name, version),
                 "bin/hello": ("#!/bin/sh\necho hello\n", 0o755)}
    if manifest is None:
        manifest = default_manifest(name, version, labels, app)
    if manifest is False:
        mbytes = None
    elif isinstance(manifest, dict):
        mbytes = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
    elif isinstance(manifest, str):
        mbytes = manifest.encode("utf-8")
    else:
        mbytes = bytes(manifest)
    tar = tar_bytes(mbytes, files)
    with open(str(path), "wb") as f:
        f.write(compress(tar, compression))
    return image_id(tar)


def image_id_of_file(path):
    """The full image ID of an ACI file, whatever its compression (by magic bytes)."""
    with open(str(path), "rb") as f:
        data = f.read()
    if data.startswith(b"\x1f\x8b"):
        data = gzip.decompress(data)
    elif data.startswith(b"BZh"):
        data = bz2.decompress(data)
    elif data.startswith(b"\xfd7zXZ\x00"):
        data = lzma.decompress(data)
    return image_id(data)


def image_key(full_id):
    """rkt's store key: sha512- and the first 64 hex digits (71 characters)."""
    return full_id[:71]


def short_id(full_id):
    """What ``rkt fetch`` prints without --full: sha512- and 32 hex digits."""
    return full_id[:39]
