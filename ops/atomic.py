"""Write files the only safe way: to a temporary name in the same directory,
flushed, then renamed over the target.  A reader sees the old file or the new
one, never half of one; a killed writer leaves a ``.ops-tmp-*`` file that the
next mutating run removes (see :func:`remove_leftovers`)."""

import os

from ops import confine

__all__ = ["TMP_PREFIX", "remove_quietly", "remove_tree_quietly", "write_bytes", "write_text", "copy_file", "symlink",
           "remove_leftovers", "fsync_dir"]

TMP_PREFIX = ".ops-tmp-"


def _tmp_name(path):
    d, base = os.path.split(path)
    return os.path.join(d, "%s%d-%s" % (TMP_PREFIX, os.getpid(), base))


def fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace(path, mode, fill, sync_dir=True):
    """Create ``path`` through a temporary file that ``fill(f)`` writes."""
    confine.makedirs(os.path.dirname(path) or ".")
    tmp = _tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "wb") as f:
            fill(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    if sync_dir:
        fsync_dir(os.path.dirname(path) or ".")


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
    confine.makedirs(os.path.dirname(path) or ".")
    tmp = _tmp_name(path)
    remove_quietly(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise
    fsync_dir(os.path.dirname(path))


def remove_leftovers(directory):
    """Remove temporary files a killed run left directly in ``directory``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    removed = []
    for name in names:
        if name.startswith(TMP_PREFIX):
            p = os.path.join(directory, name)
            remove_tree_quietly(p)
            removed.append(p)
    return removed


def remove_quietly(path):
    """Unlink ``path`` if it is there; a missing file is no error.  A
    symbolic link on the way inside ops's trees is refused (:mod:`ops.confine`)."""
    confine.check(path)
    try:
        os.unlink(path)
    except OSError:
        pass


def remove_tree_quietly(path):
    """Remove ``path``: a directory with everything under it, else the file
    or symbolic link itself.  Errors are ignored (what cannot be removed
    stays); a missing path is no error.  A symbolic link on the way inside
    ops's trees is refused (:mod:`ops.confine`)."""
    confine.check(path)
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil          # only when there is a tree to remove
        shutil.rmtree(path, ignore_errors=True)
    else:
        remove_quietly(path)
