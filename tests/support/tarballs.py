"""Build real tar archives, well-formed or hostile, for the volume tests.

    write_tar(path, [directory("d", mode=0o555),
                     regular("d/f", b"data", mode=0o4755, uid=1234),
                     symlink("l", "../outside"),
                     hardlink("h", "/etc/passwd"),
                     device("null", 1, 3), fifo("p")], compression="gz")

Each helper returns a ``(TarInfo, data)`` pair written as it is: ``tarfile``
keeps names such as ``/abs`` or ``a/../b`` and link targets unchanged, which
is what a hostile archive needs.  ``gnu_tar`` runs GNU ``tar`` itself.
"""

import io
import os
import subprocess
import tarfile

__all__ = ["MTIME", "regular", "directory", "symlink", "hardlink", "device", "block_device",
           "fifo", "other_type", "write_tar", "gnu_tar", "compress_with", "sizes"]

MTIME = 1600000000


def _info(name, kind, mode, mtime, uid, gid):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = mode
    ti.mtime = mtime
    ti.uid, ti.gid = uid, gid
    return ti


def regular(name, data=b"", mode=0o644, mtime=MTIME, uid=0, gid=0):
    ti = _info(name, tarfile.REGTYPE, mode, mtime, uid, gid)
    ti.size = len(data)
    return ti, data


def directory(name, mode=0o755, mtime=MTIME, uid=0, gid=0):
    return _info(name, tarfile.DIRTYPE, mode, mtime, uid, gid), None


def symlink(name, target, mtime=MTIME, uid=0, gid=0):
    ti = _info(name, tarfile.SYMTYPE, 0o777, mtime, uid, gid)
    ti.linkname = target
    return ti, None


def hardlink(name, target, mtime=MTIME):
    ti = _info(name, tarfile.LNKTYPE, 0o644, mtime, 0, 0)
    ti.linkname = target
    return ti, None


def device(name, major=1, minor=3):
    ti = _info(name, tarfile.CHRTYPE, 0o666, MTIME, 0, 0)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def block_device(name, major=7, minor=0):
    ti = _info(name, tarfile.BLKTYPE, 0o660, MTIME, 0, 0)
    ti.devmajor, ti.devminor = major, minor
    return ti, None


def fifo(name):
    return _info(name, tarfile.FIFOTYPE, 0o644, MTIME, 0, 0), None


def other_type(name, typeflag, data=b""):
    """A member of any type flag, e.g. ``b"V"`` (a GNU volume label)."""
    ti = _info(name, typeflag, 0o644, MTIME, 0, 0)
    ti.size = len(data)
    return ti, data


def write_tar(path, members, compression="", fmt=tarfile.PAX_FORMAT, encoding="utf-8"):
    """Write ``members`` to ``path``; ``compression`` is "", "gz", "bz2" or "xz"."""
    mode = "w:" + compression if compression else "w"
    with tarfile.open(str(path), mode, format=fmt, encoding=encoding) as tf:
        for ti, data in members:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return path


def gnu_tar(archive, directory_, *args, flags=""):
    """``tar -c{flags}f ARCHIVE -C DIRECTORY ARGS...`` with GNU tar (``.`` when no ARGS)."""
    subprocess.run(["tar", "-c%sf" % flags, str(archive), "-C", str(directory_)]
                   + [str(a) for a in (args or (".",))], check=True)
    return archive


def compress_with(tool, src, dest):
    """Compress ``src`` into ``dest`` with an external tool (gzip, bzip2, xz)."""
    with open(str(src), "rb") as fin, open(str(dest), "wb") as fout:
        subprocess.run([tool, "-c"], stdin=fin, stdout=fout, check=True)
    return dest


def sizes(root):
    """{relative path: size} of every file under ``root`` (for comparing trees)."""
    out = {}
    for d, dirs, files in os.walk(str(root)):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, str(root))] = os.lstat(p).st_size
    return out
