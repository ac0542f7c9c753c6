"""No symbolic link inside ops's own trees (README, "Symbolic links").

ops's trees are ``etc/ops`` (the store, each pod's directory, the ``current``
links), ``var/lib/ops`` (volumes and each volume, the journal directory, the
lock file, downloads) and, for the files of a pod's units,
``etc/systemd/system``.  Their tops are found as before: a link above or at
a top (``/var/lib`` on another disk) is the administrator's and is followed
(offline it must stay inside ROOT: :meth:`ops.layout.Layout.escape`).

Below a top, every path is resolved from directory descriptors, one
component at a time, each opened with ``O_NOFOLLOW | O_DIRECTORY`` relative
to its parent (:func:`open_dir`), and the final operation is done relative
to the last one (``dir_fd=``): there is no moment between a check and a use
in which a directory swapped for a link could be followed.  A component that
is a symbolic link is refused (:class:`ops.errors.Refused`, exit 2, naming
the link).  The last component itself may be a link: ops replaces or unlinks
a link, never writes, reads for deletion or deletes through it.

Every operation ops does in its trees goes through this module: :func:`parent`
(a directory descriptor and a leaf name, for the callers that do the final
system call themselves), :func:`makedirs`, :func:`open_file`, :func:`unlink`,
:func:`rmtree`, :func:`rename`, :func:`symlink`, :func:`listdir`,
:func:`kind`, :func:`walk` (removal, chown of a volume), :func:`fsync_dir` and
:func:`read_file` (every file ops reads back: bounded, never a FIFO waited on).

The tops are registered by every :class:`ops.layout.Layout` (``register``);
a path under no registered top is used as given (tests, a bundle's files).
"""

import errno
import os
import stat

__all__ = ["register", "open_dir", "parent", "makedirs", "open_file", "read_at", "read_files", "unlink", "rmtree",
           "rename", "symlink", "listdir", "kind", "walk", "fsync_dir", "read_file", "DIR_FLAGS",
           "Tree"]

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TOPS = set()


_ROOTS = set()      # offline ROOTs: what is read under one, outside the tops, stays in it


def register(*tops, root=None):
    for t in tops:
        _TOPS.add(os.path.normpath(t))
    if root is not None and root != "/":
        _ROOTS.add(os.path.normpath(root))


def _outside_root(path):
    """The real path of ``path`` when it is under an offline ROOT and a link
    on the way leads out of it (ROOT's ``etc/passwd -> /etc/passwd``), else None."""
    root = max((r for r in _ROOTS if path.startswith(r + "/")), key=len, default=None)
    if root is None:
        return None
    real = os.path.realpath(path)
    return None if real == root or real.startswith(root + "/") else real


def _top(path):
    best = None
    for t in _TOPS:
        if (path == t or path.startswith(t + "/")) and (best is None or len(t) > len(best)):
            best = t
    return best


def refused(path, target, top):
    from ops.errors import Refused
    return Refused(path, "is a symbolic link (to %s) inside ops's own directories under %s; "
                   "ops does not write or delete through a link there: replace the link by "
                   "a directory (or remove it)" % (target, top))


def open_child(dfd, name, where, top="ops's trees"):
    """Open directory ``name`` of the directory ``dfd`` without following a
    link; a link there is refused, naming ``where``."""
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dfd)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            try:
                target = os.readlink(name, dir_fd=dfd)
            except OSError:
                raise e
            raise refused(where, target, top)
        raise


def open_dir(path, create=False, mode=0o777):
    """(descriptor, topmost directory created or None) of the directory
    ``path``, every component below its top opened without following a
    link; ``create`` makes the missing ones (``mode``)."""
    path = os.path.normpath(os.path.abspath(path))
    top = _top(path)
    created = None
    if top is None or create:
        base = path if top is None else top
        if create and not os.path.isdir(base):
            p = base
            while not os.path.lexists(p):
                created, p = p, os.path.dirname(p)
            os.makedirs(base, mode, exist_ok=True)
        if top is None:
            return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC), created
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    where = top
    try:
        for part in path[len(top) + 1:].split("/") if path != top else ():
            where = where + "/" + part
            try:
                child = open_child(fd, part, where, top)
            except FileNotFoundError:
                if not create:
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=fd)
                    created = created or where
                except FileExistsError:
                    pass
                child = open_child(fd, part, where, top)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, created


class directory:
    """``with directory(path) as fd``: the descriptor of directory ``path``
    (:func:`open_dir`), closed on leaving.  A class, not a generator under
    ``contextlib``: importing contextlib (and functools) costs every command."""

    def __init__(self, path, create=False):
        self.path, self.create = path, create

    def __enter__(self):
        self.fd = open_dir(self.path, self.create)[0]
        return self.fd

    def __exit__(self, kind, err, tb):
        os.close(self.fd)
        if isinstance(err, OSError):
            _name_whole(err, self.path)
        return False


def _name_whole(err, directory):
    """A call relative to a descriptor names only the entry (``1.pinned: Is
    a directory``): the OSError ``err`` names it whole, under ``directory``,
    as every message must."""
    for attr in ("filename", "filename2"):
        name = getattr(err, attr)
        if isinstance(name, str) and name and not name.startswith("/"):
            setattr(err, attr, os.path.join(directory, name))


class parent(directory):
    """``with parent(path) as (fd, leaf)``: the descriptor of the directory
    holding ``path`` and ``path``'s last component: the one way to the parent
    of what ops changes."""

    def __init__(self, path, create=False):
        d, self.leaf = os.path.split(os.path.normpath(os.path.abspath(path)))
        directory.__init__(self, d, create)

    def __enter__(self):
        return directory.__enter__(self), self.leaf


def makedirs(path, mode=0o777, exist_ok=True):
    """Create directory ``path`` and what is missing above it (below its
    top: without following a link); return the topmost one created, or None."""
    if not exist_ok and kind(path) is not None:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
    fd, created = open_dir(path, True, mode)
    os.close(fd)
    return created


def open_file(path, flags, mode=0o644, create_dirs=False):
    """``os.open`` of the regular file ``path`` with ``O_NOFOLLOW`` from its
    confined parent; anything else there (a FIFO, which is not waited on, a
    device, a directory) is an OSError, "not a regular file".  Opened to be
    written in place (the lock, a history), a file with another hard link is
    an OSError too: that other name may be any file of the host (or of ROOT),
    which ops would overwrite or append to."""
    with parent(path, create_dirs) as (fd, leaf):
        try:
            f = os.open(leaf, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode,
                        dir_fd=fd)
        except OSError as e:
            if e.errno in (errno.ENXIO, errno.EISDIR):     # a FIFO with no reader, a directory
                raise OSError(e.errno, "not a regular file", path)
            if e.errno != errno.ELOOP:
                raise
            try:
                target = os.readlink(leaf, dir_fd=fd)
            except OSError:
                raise e
            raise refused(path, target, _top(os.path.normpath(os.path.abspath(path))) or
                          os.path.dirname(path))
    try:
        st = os.fstat(f)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                          "not a regular file", path)
        if flags & (os.O_WRONLY | os.O_RDWR) and st.st_nlink > 1:
            raise OSError(errno.EMLINK, "a file with %d hard links (another name may be any "
                          "file), which ops does not write in place" % st.st_nlink, path)
        if not flags & os.O_NONBLOCK:
            os.set_blocking(f, True)
    except BaseException:
        os.close(f)
        raise
    return f


READ_MAX = 16 << 20     # bytes: the most read_file reads unless told (ops's own files are far smaller)


def read_file(path, limit=READ_MAX, with_stat=False):
    """The bytes of the regular file ``path``, at most ``limit`` of them
    (with ``with_stat``: and its ``os.stat_result``, as a pair).
    Under a top it is reached as :func:`open_file` reaches it, and its last
    component is not followed either: what ops reads of its trees is what is
    there, never what a link points to.  Offline, what it reads elsewhere
    under ROOT (``etc/passwd``, ``etc/fstab``) may go through links that stay
    in ROOT, not through one that leads out of it (``EXDEV``).
    Anywhere, a FIFO is not waited on.  Raises OSError, and only OSError
    (a link, ``ELOOP``), when it is missing, unreadable, not a regular
    file, or larger than ``limit`` (``EFBIG``)."""
    path = os.path.normpath(os.path.abspath(path))
    try:
        if _top(path) is not None:
            fd = open_file(path, os.O_RDONLY)
        else:
            real = _outside_root(path)
            if real is not None:
                raise OSError(errno.EXDEV, "a symbolic link on the way leads outside the root "
                              "(to %s)" % real, path)
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        raise
    except Exception as e:
        raise _link_on_the_way(e)
    return _read_fd(fd, path, limit, with_stat)


def _link_on_the_way(e):
    """The OSError (``ELOOP``) a read says for the Refused ``e`` of a walk
    that met a link; any other exception as it is."""
    from ops.errors import Refused
    return OSError(errno.ELOOP, e.what, e.where) if isinstance(e, Refused) else e


def read_files(paths, limit=READ_MAX):
    """{path: its bytes, or the OSError :func:`read_file` would raise} of
    each of ``paths``: as many :func:`read_file` calls, each directory of
    ops's trees walked once for all the files it holds (an unchanged deploy
    compares each unit file with its stored copy: twenty walks become two)."""
    out, groups = {}, {}
    for p in paths:
        full = os.path.normpath(os.path.abspath(p))
        if _top(full) is None:        # elsewhere under ROOT: one at a time, as read_file reads it
            try:
                out[p] = read_file(full, limit)
            except OSError as e:
                out[p] = e
        else:
            groups.setdefault(os.path.dirname(full), []).append((p, os.path.basename(full)))
    for d, members in groups.items():
        try:
            with directory(d) as fd:
                for p, leaf in members:
                    try:
                        out[p] = read_at(fd, leaf, limit)
                    except OSError as e:
                        _name_whole(e, d)
                        out[p] = e
        except Exception as e:         # the directory itself: every member says why
            e = _link_on_the_way(e)
            if not isinstance(e, OSError):
                raise e
            for p, _ in members:
                out[p] = e
    return out


def read_at(dfd, name, limit=READ_MAX, with_stat=False):
    """:func:`read_file` of ``name`` in the directory open as ``dfd``
    (``name`` itself not followed when it is a link: ``ELOOP``)."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    return _read_fd(fd, name, limit, with_stat)


def _read_fd(fd, path, limit, with_stat):
    """Read the regular file open as ``fd`` (and close it): see :func:`read_file`."""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            err = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
            raise OSError(err, "not a regular file", path)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise OSError(errno.EFBIG, "larger than %d bytes" % limit, path)
    return (b"".join(chunks), st) if with_stat else b"".join(chunks)


def kind(path):
    """``stat.S_IFMT`` of ``path`` itself (a link is a link), or None when
    it (or a directory above it) is missing."""
    try:
        with parent(path) as (fd, leaf):
            return stat.S_IFMT(os.stat(leaf, dir_fd=fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None


def listdir(path):
    """The names in directory ``path``, opened without following a link."""
    with directory(path) as fd:
        return os.listdir(fd)


def unlink(path, missing_ok=True, sync=False):
    """Unlink the file or link ``path`` (never what a link points to)."""
    try:
        with parent(path) as (fd, leaf):
            try:
                os.unlink(leaf, dir_fd=fd)
            except FileNotFoundError:
                if not missing_ok:
                    raise
                return
            if sync:
                _fsync(fd)
    except FileNotFoundError:
        if not missing_ok:
            raise


def rmtree(path):
    """Remove ``path``: a directory with everything under it (entries
    unlinked relative to their directory's descriptor, none followed), else
    the file or link itself.  A missing path is no error; other errors
    propagate (the caller decides whether they matter)."""
    try:
        with parent(path) as (fd, leaf):
            remove_at(fd, leaf)
    except FileNotFoundError:
        pass


def remove_at(dfd, name):
    """Remove entry ``name`` of directory ``dfd``, a whole tree without following links."""
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dfd)
        return
    try:
        child = os.open(name, DIR_FLAGS, dir_fd=dfd)
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=dfd)       # swapped for a link since: the link goes
        return
    try:
        def entry(d, n, is_dir):
            if not is_dir:
                os.unlink(n, dir_fd=d)
            return is_dir
        walk(child, name, entry, lambda d, n: os.rmdir(n, dir_fd=d), unlink_links=True)
    finally:
        os.close(child)
    os.rmdir(name, dir_fd=dfd)


def rename(src, dst, sync=False):
    """Rename ``src`` to ``dst``, both reached through confined parents."""
    with parent(src) as (sfd, sleaf), parent(dst) as (dfd, dleaf):
        os.rename(sleaf, dleaf, src_dir_fd=sfd, dst_dir_fd=dfd)
        if sync:
            _fsync(dfd)


def symlink(target, path, create_dirs=False):
    with parent(path, create_dirs) as (fd, leaf):
        os.symlink(target, leaf, dir_fd=fd)


def walk(fd, where, entry, leave=None, unlink_links=False):
    """Depth first over the tree under the open directory ``fd`` (borrowed):
    ``entry(dir_fd, name, is_dir)`` for every entry, which says whether to go
    into it; ``leave(dir_fd, name)`` once a subdirectory is done.  Each
    subdirectory is opened relative to its parent without following a link
    (one swapped in is refused, or unlinked with ``unlink_links``), the way
    back up is its ``..`` checked to be the directory it came from, and one
    descriptor is open at a time whatever the depth."""
    cur = os.dup(fd)
    stack = [(None, where, _ident(cur), _enter(cur, entry))]
    try:
        while True:
            name, here, ident, pending = stack[-1]
            if pending:
                sub = pending.pop()
                path = os.path.join(here, os.fsdecode(sub))
                try:
                    child = open_child(cur, sub, path)
                except Exception as e:
                    from ops.errors import Refused
                    if not (unlink_links and isinstance(e, Refused)):
                        raise
                    os.unlink(sub, dir_fd=cur)
                    continue
                os.close(cur)
                cur = child
                stack.append((sub, path, _ident(cur), _enter(cur, entry)))
                continue
            if len(stack) == 1:
                return
            up = os.open("..", DIR_FLAGS, dir_fd=cur)
            os.close(cur)
            cur = up
            if _ident(cur) != stack[-2][2]:
                raise OSError(errno.EBUSY, "moved elsewhere while ops went through it", here)
            stack.pop()
            if leave:
                leave(cur, name)
    finally:
        os.close(cur)


def _ident(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _enter(fd, entry):
    with os.scandir(fd) as it:
        items = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    return [n for n, is_dir in items if entry(fd, n, is_dir) and is_dir]


def fsync_dir(path):
    try:
        with directory(path) as fd:
            _fsync(fd)
    except (OSError, ValueError):
        pass


def _fsync(fd):
    try:
        os.fsync(fd)
    except OSError:
        pass


class Tree(object):
    """Descriptors of the directories under the open directory ``root``
    (``root_path`` names it in messages), each opened from the nearest one
    already open, component by component, without following a link; at most
    about :attr:`KEEP` stay open (a tree is mostly filled directory by
    directory).  Relative paths are bytes, ``b""`` is ``root``; the tree
    owns ``root`` and :meth:`close` closes it."""

    KEEP = 256

    def __init__(self, root, root_path):
        self.fds = {b"": root}
        self.root_path = os.fsencode(root_path)

    def dirfd(self, rel):
        fd = self.fds.get(rel)
        if fd is not None:
            return fd
        parts = rel.split(b"/")
        i = len(parts) - 1
        while i and b"/".join(parts[:i]) not in self.fds:
            i -= 1
        fd = self.fds[b"/".join(parts[:i])]
        for j in range(i, len(parts)):
            p = b"/".join(parts[:j + 1])
            try:
                child = open_child(fd, parts[j], os.fsdecode(self.root_path + b"/" + p))
            finally:
                if j > i:             # an intermediate one: only what was asked for is kept
                    os.close(fd)
            fd = child
        self.fds[rel] = fd
        return fd

    def parent(self, rel):
        """(descriptor of the directory holding ``rel``, its last component)."""
        i = rel.rfind(b"/")
        if i < 0:
            return self.fds[b""], rel
        return self.dirfd(rel[:i]), rel[i + 1:]

    def trim(self):
        """Close all but ``root`` past :attr:`KEEP` open; call it only
        between operations (a descriptor handed out may be closed)."""
        if len(self.fds) > self.KEEP:
            root = self.fds.pop(b"")
            self.close()
            self.fds = {b"": root}

    def close(self):
        fds, self.fds = self.fds, {}
        for fd in fds.values():
            os.close(fd)
