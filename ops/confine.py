"""No symbolic link inside ops's own trees (README, "Symbolic links").

ops's trees are ``etc/ops`` (the store, each pod's directory, the ``current``
links), ``var/lib/ops`` (volumes and each volume, the journal directory, the
lock file, downloads) and, for the files of a pod's units,
``etc/systemd/system``.  Their tops are found as before: a link above or at
a top (``/var/lib`` on another disk) is the administrator's and is followed
(offline it must stay inside ROOT: :meth:`ops.layout.Layout.escape`).
Below a top, every path ops creates, renames, locks or deletes is checked
component by component with ``lstat`` before use: a directory on the way
that is a symbolic link is refused (:class:`ops.errors.Refused`, exit 2,
naming the link).  The last component itself may be a link: ops replaces or
unlinks a link, never writes or deletes through it (``shutil.rmtree`` does
not follow links either).

The check is ``lstat`` per component, not ``openat`` with ``O_NOFOLLOW``:
between the check and the use, someone who can already write into ops's
root-owned trees could swap a directory for a link.  ops holds its lock
then, and such a writer could change ops's files directly anyway; the check
is against links left in place (by hand, a restored backup, a copied
tree), not a racing attacker.

Reading is not checked (``list`` and an unchanged ``deploy`` stay as cheap
as before): what ops reads through a link it never writes or deletes there.

The tops are registered by every :class:`ops.layout.Layout` (``register``);
a path under no registered top is not checked.
"""

import os
import stat

__all__ = ["register", "check", "check_dir", "makedirs"]

_TOPS = set()


def register(*tops):
    for t in tops:
        _TOPS.add(os.path.normpath(t))


def _top(path):
    best = None
    for t in _TOPS:
        if path.startswith(t + "/") and (best is None or len(t) > len(best)):
            best = t
    return best


def _walk(path, leaf):
    path = os.path.normpath(os.path.abspath(path))
    top = _top(path)
    if top is None:
        return
    parts = path[len(top) + 1:].split("/")
    if not leaf:
        parts = parts[:-1]
    p = top
    for part in parts:
        p = os.path.join(p, part)
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return          # ops creates the rest itself
        except OSError:
            return          # the use that follows reports it
        if stat.S_ISLNK(st.st_mode):
            from ops.errors import Refused
            raise Refused(p, "is a symbolic link (to %s) inside ops's own directories under %s; "
                          "ops does not write or delete through a link there: replace the "
                          "link by a directory (or remove it)" % (os.readlink(p), top))


def check(path):
    """Refuse when a directory on the way from its top to ``path`` (not
    ``path`` itself) is a symbolic link: ``path`` may be created, replaced,
    renamed or unlinked then."""
    _walk(path, False)


def check_dir(path):
    """Like :func:`check`, ``path`` itself included: a directory that ops
    creates files in."""
    _walk(path, True)


def makedirs(path, mode=0o777, exist_ok=True):
    check_dir(path)
    os.makedirs(path, mode, exist_ok=exist_ok)
