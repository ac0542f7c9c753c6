"""Who owns a volume's tree: the ``owner`` of an ops volume ("USER[:GROUP]").

Each part is a name or a number.  Names are looked up on the host at deploy:
with pwd and grp on the live host, in ROOT's etc/passwd and etc/group
offline (the names of the system being prepared, not of the machine preparing
it).  USER alone means USER's primary group (for a number that names no
user, the same number).  After the volume is unpacked, the whole tree, its top
directory included, is given that owner (ops runs as root; see the README).
"""

import os
import re

__all__ = ["OWNER_RE", "valid", "resolve", "chown_tree"]

# A user or group name as useradd takes it (a trailing $ for machine
# accounts), or a number; at most 32 characters.
_PART = r"(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9_.-]{0,30}\$?)"
OWNER_RE = re.compile(r"(%s)(?::(%s))?" % (_PART, _PART))
MAX_ID = 4294967294          # 4294967295 is chown's "leave as it is"


def valid(spec):
    """None when ``spec`` is a well-formed owner, else what is wrong."""
    m = OWNER_RE.fullmatch(spec) if isinstance(spec, str) else None
    if m is None:
        return ("must be \"USER\" or \"USER:GROUP\", each a name (letters, digits, '_.-') "
                "or a number")
    for part in m.groups():
        if part is not None and part.isdigit() and int(part) > MAX_ID:
            return "%s is not an owner id (0 to %d)" % (part, MAX_ID)
    return None


def resolve(spec, root="/"):
    """(uid, gid) of the well-formed ``spec`` on the host under ``root``;
    raises LookupError saying which name does not resolve."""
    user, group = OWNER_RE.fullmatch(spec).groups()
    users, groups = _tables(root)
    if user.isdigit():
        uid = int(user)
        primary = next((g for (n, u, g) in users if u == uid), uid)
    else:
        found = [(u, g) for (n, u, g) in users if n == user]
        if not found:
            raise LookupError("user %r does not exist on this host (%s)" % (user, _where(root, "passwd")))
        uid, primary = found[0]
    if group is None:
        gid = primary
    elif group.isdigit():
        gid = int(group)
    else:
        found = [g for (n, g) in groups if n == group]
        if not found:
            raise LookupError("group %r does not exist on this host (%s)" % (group, _where(root, "group")))
        gid = found[0]
    # a number the table holds that no chown takes (or 4294967295, chown's "leave as it is")
    for kind, value, table in (("uid", uid, "passwd"), ("gid", gid, "group" if group else "passwd")):
        if not 0 <= value <= MAX_ID:
            raise LookupError("%s resolves to %s %d (%s), which is not an owner id (0 to %d)"
                              % (spec, kind, value, _where(root, table), MAX_ID))
    return uid, gid


def _where(root, table):
    return "etc/%s under %s" % (table, root) if os.path.realpath(root) != "/" else "getent " + table


def _tables(root):
    """[(name, uid, gid)] and [(name, gid)]: the host's users and groups."""
    if os.path.realpath(root) == "/":
        import grp
        import pwd
        return ([(p.pw_name, p.pw_uid, p.pw_gid) for p in pwd.getpwall()],
                [(g.gr_name, g.gr_gid) for g in grp.getgrall()])
    return (_read(root, "passwd", lambda f: (f[0], int(f[2]), int(f[3])), 4),
            _read(root, "group", lambda f: (f[0], int(f[2])), 3))


def _read(root, table, row, fields):
    from ops import confine
    out = []
    try:        # bounded, no FIFO waited on, no link out of ROOT followed (:mod:`ops.confine`)
        text = confine.read_file(os.path.join(root, "etc", table)).decode("utf-8", "replace")
    except FileNotFoundError:
        return out
    except OSError as e:             # a directory, unreadable: the names cannot be known
        raise LookupError("cannot read %s: %s" % (_where(root, table), e.strerror or e))
    for line in text.split("\n"):
        f_ = line.split(":")
        if len(f_) < fields or line.startswith(("#", "+", "-")):
            continue
        try:
            out.append(row(f_))
        except ValueError:
            continue
    return out


def chown_tree(top, uid, gid):
    """Give every entry of the tree at ``top`` (``top`` included) the owner
    uid:gid, symbolic links themselves (never what they point to).  The tree
    is walked from directory descriptors (:mod:`ops.confine`): a directory
    swapped for a link on the way is refused, not followed.  chown clears
    set-uid and set-gid bits; ops has cleared them already."""
    from ops import confine

    def visit(dfd, name, is_dir):
        os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
        return True

    with confine.directory(top) as fd:
        os.fchown(fd, uid, gid)
        confine.walk(fd, top, visit)
