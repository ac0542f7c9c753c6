"""Write files the only safe way: to a temporary name in the same directory,
flushed, then renamed over the target.  A reader sees the old file or the new
one, never half of one; a killed writer leaves a ``.ops-tmp-*`` file that the
next mutating run removes (see :func:`remove_leftovers`).

Every path is reached through :mod:`ops.confine` (no symbolic link followed
below the tops of ops's trees); the temporary file is created with
``O_EXCL | O_NOFOLLOW`` and renamed relative to the same directory descriptor."""

import os

from ops import confine

__all__ = ["TMP_PREFIX", "NAME_MAX", "tmp_leaf", "remove_quietly", "remove_tree_quietly", "write_bytes", "write_text", "copy_file", "symlink",
           "remove_leftovers", "fsync_dir", "unlink"]

TMP_PREFIX = ".ops-tmp-"
NAME_MAX = 255          # bytes of one file name (Linux file systems)


def tmp_leaf(base, tag=""):
    """The temporary name of ``base`` in its directory: ``.ops-tmp-PID-TAGBASE``,
    with ``base`` cut at its start when the whole would be longer than a
    file name may be (a unit's name alone may take 255 characters)."""
    head = "%s%d-%s" % (TMP_PREFIX, os.getpid(), tag)
    room = NAME_MAX - len(os.fsencode(head))
    raw = os.fsencode(base)
    if len(raw) > room:
        base = os.fsdecode(raw[len(raw) - room:])
    return head + base


def fsync_dir(path):
    confine.fsync_dir(path)


def _replace(path, mode, fill, sync_dir=True):
    """Create ``path`` through a temporary file that ``fill(f)`` writes."""
    with confine.parent(path, create=True) as (dfd, leaf):
        tmp = tmp_leaf(leaf)
        _unlink_at(dfd, tmp)           # left by a killed run with our PID
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                         mode, dir_fd=dfd)
            with os.fdopen(fd, "wb") as f:
                fill(f)
                f.flush()
                os.fchmod(f.fileno(), mode)
                os.fsync(f.fileno())
            os.replace(tmp, leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            _unlink_at(dfd, tmp)
            raise
        if sync_dir:
            confine._fsync(dfd)


def _unlink_at(dfd, name):
    try:
        os.unlink(name, dir_fd=dfd)
    except OSError:
        pass


def write_bytes(path, data, mode=0o644, sync_dir=True):
    _replace(path, mode, lambda f: f.write(data), sync_dir)


def write_text(path, text, mode=0o644, sync_dir=True):
    write_bytes(path, text.encode("utf-8"), mode, sync_dir)


def copy_file(src, path, mode=0o644, sync_dir=True):
    import shutil
    with open(src, "rb") as fin:
        _replace(path, mode, lambda f: shutil.copyfileobj(fin, f, 1 << 20), sync_dir)


def symlink(target, path):
    """Point symlink ``path`` at ``target``, replacing it atomically."""
    with confine.parent(path, create=True) as (dfd, leaf):
        tmp = tmp_leaf(leaf)
        _unlink_at(dfd, tmp)
        os.symlink(target, tmp, dir_fd=dfd)
        try:
            os.replace(tmp, leaf, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            _unlink_at(dfd, tmp)
            raise
        confine._fsync(dfd)


def remove_leftovers(directory):
    """Remove temporary files a killed run left directly in ``directory``."""
    try:
        names = confine.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if name.startswith(TMP_PREFIX):
            p = os.path.join(directory, name)
            remove_tree_quietly(p)
            removed.append(p)
    return removed


def unlink(path, sync=True):
    """Unlink ``path`` (a missing one is no error) and sync its directory;
    other errors propagate."""
    confine.unlink(path, sync=sync)


def remove_quietly(path):
    """Unlink ``path`` if it is there; a missing file is no error.  A
    symbolic link on the way inside ops's trees is refused (:mod:`ops.confine`)."""
    try:
        confine.unlink(path)
    except OSError:
        pass


def remove_tree_quietly(path):
    """Remove ``path``: a directory with everything under it, else the file
    or symbolic link itself.  Errors are ignored (what cannot be removed
    stays); a missing path is no error.  A symbolic link on the way inside
    ops's trees is refused (:mod:`ops.confine`)."""
    try:
        confine.rmtree(path)
    except OSError:
        pass
