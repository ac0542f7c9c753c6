"""The index of a pod's stored versions: /etc/ops/pods/NAME/index.

`list` runs on every Ansible play and reads every stored version.  Opening
each version's state.json costs a system call or three per version, so each
pod keeps one small text file with what `list` shows: a line per version
with its outcome and deploy time, and what ``stat`` said of its state.json
(inode, size, mtime, ctime) and of its directory (mtime, ctime: a file added
or removed there) when the line was written.  A line is used only while both
still say the same.  As in git's index, a line is also not trusted when a
ctime in it is not older than the index file's mtime: a change within the
same clock tick as the index write would not show.  Anything not trusted is
read from state.json.

The index is a cache: losing it, or a stale line, costs time, never a wrong
answer.  Only commands holding the lock write it; ``list`` only reads it.
"""

import os

__all__ = ["INDEX", "PINNED", "is_version", "read_state", "state_problem", "update", "read", "changed", "remove"]

INDEX = "index"
PINNED = ".pinned"      # NAME/VERSION.pinned beside the version: seen in the listdir `list` does
_KEY = "%d\t%d\t%d\t%d\t%d\t%d"
_HEADER = "# ops: version, outcome, deployed at; state.json's inode, size, mtime, ctime; " \
          "the version directory's mtime, ctime (ns)\n"


def is_version(text):
    """A version as a directory name: ASCII digits only (``str.isdigit`` also
    accepts digits such as '²' that ``int`` refuses), below 2^63 as SPEC says."""
    # fewer than 19 digits are always below 2^63: `list` asks for every entry of every pod
    return text.isdigit() and text.isascii() and (
        len(text) < 19 or (len(text) == 19 and int(text) < 2 ** 63))


def _load(fd):
    """{version name: [name, outcome, deployed_at, key]} and the index file's
    mtime, of the pod directory open as ``fd``: a line's fields as text (an
    empty outcome or time stands for None; the key, the stat fields, is
    compared whole)."""
    from ops import confine
    try:       # a cache: one that cannot be read (a link, a FIFO, too large) is not used
        raw, st = confine.read_at(fd, INDEX, _INDEX_MAX, with_stat=True)
        text, mtime = raw.decode("utf-8"), st.st_mtime_ns
    except (OSError, UnicodeDecodeError):
        return {}, 0
    # a comprehension each: `list` parses every line of every pod's index
    split = [line.split("\t", 3) for line in text.split("\n")]
    return {f[0]: f for f in split if len(f) == 4}, mtime


def read_state(path):
    """A state.json as a dict; {} when it is missing, unreadable or not a JSON
    object (:func:`state_problem` says which)."""
    try:
        data = _load_state(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def state_problem(path):
    """Why the state.json ``path`` cannot be used, or None when it can."""
    try:
        data = _load_state(path)
    except OSError as e:
        return "missing" if not os.path.lexists(path) else \
            "cannot be read (%s)" % (e.strerror or e)
    except ValueError as e:
        return "not valid JSON (%s)" % e
    return None if isinstance(data, dict) else "not a JSON object"


def _load_state(path):
    from ops import strict_json      # bounded: one broken file is that file's problem only
    return strict_json.load_file(path, _STATE_MAX)


_STATE_MAX = 1 << 20
_INDEX_MAX = 16 << 20     # about 100,000 versions' lines


def _from_state(vdir):
    """(outcome, deployed_at) from the version's files, or None when it is not
    a stored version (no pod.json)."""
    if not os.path.isfile(os.path.join(vdir, "pod.json")):
        return None
    data = read_state(os.path.join(vdir, "state.json"))
    return tuple(v if isinstance(v, str) else None
                 for v in (data.get("outcome"), data.get("deployed_at")))


def _versions(pod_dir, names=None):
    """(version name, outcome, deployed_at, key, trusted) of each stored
    version; ``trusted``: the index line was used, so the version's directory
    has not changed since the index was written.  ``key``: what stat says of
    the version as its index line holds it (None when it is gone).  The pod
    directory is opened once (:mod:`ops.confine`: a link on the way is
    refused, never listed through); [] when it cannot be."""
    from ops import confine
    try:
        with confine.directory(pod_dir) as fd:
            return _versions_at(fd, pod_dir, os.listdir(fd) if names is None else names)
    except OSError:
        return []


def _versions_at(fd, pod_dir, names):
    """:func:`_versions` of the pod directory open as ``fd``.  Run for every
    stored version by `list`: kept to two stats (relative to ``fd``, links not
    followed: a linked version or state.json is never trusted) and a comparison."""
    lines, index_mtime = _load(fd)
    out = []
    get, append, stat = lines.get, out.append, os.stat
    for name in names:
        if not is_version(name):
            continue
        try:              # before reading state.json: a later change shows
            d = stat(name, dir_fd=fd, follow_symlinks=False)
            s = stat(name + "/state.json", dir_fd=fd, follow_symlinks=False)
        except OSError:
            key = None
        else:
            key = _KEY % (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns, d.st_mtime_ns,
                          d.st_ctime_ns)
            line = get(name)
            if line is not None and line[3] == key and s.st_ctime_ns < index_mtime \
                    and d.st_ctime_ns < index_mtime:
                append((name, line[1] or None, line[2] or None, key, True))
                continue
        got = _from_state(pod_dir + "/" + name)
        if got is not None:
            append((name, got[0], got[1], key, False))
    return out


def read(pod_dir):
    """[(version, outcome, deployed_at, pinned)] of the pod's stored versions,
    oldest first; outcome and deployed_at are None where state.json has no
    string."""
    from ops import confine
    try:        # a link on the way is refused (:mod:`ops.confine`), never listed through
        with confine.directory(pod_dir) as fd:
            names = os.listdir(fd)
            found = _versions_at(fd, pod_dir, names)
    except OSError:
        return []
    pins = {n[:-len(PINNED)] for n in names if n.endswith(PINNED)}
    rows = [(int(name), outcome, at, name in pins) for name, outcome, at, _, _ in found]
    rows.sort()
    return rows


def changed(pod_dir):
    """{version: outcome} and the versions whose directories changed since
    the index was written (or that it lacks).  Only those can hold what a
    killed run left: the index is written after every completed change."""
    rows = _versions(pod_dir)
    return ({int(name): outcome for name, outcome, _, _, _ in rows},
            {int(name) for name, _, _, _, trusted in rows if not trusted})


def update(pod_dir):
    """Write the index anew for the versions in ``pod_dir`` (under the lock,
    after a state.json changed).  The directory is not fsynced: after a
    power loss a stale or missing index is only slower.  Nor does a failure
    to write it (a full disk) fail the command: the old index stays, and its
    lines for what changed no longer match."""
    from ops import atomic
    out = [_HEADER]
    for name, outcome, at, key, _ in sorted(_versions(pod_dir), key=lambda r: int(r[0])):
        if key is None or not all(v is None or (v and not any(c in v for c in "\t\n\r"))
                                  for v in (outcome, at)):
            continue            # not ops's own words (say, ""): left to state.json
        out.append("\t".join([name, outcome or "", at or "", key]) + "\n")
    try:
        atomic.write_text(os.path.join(pod_dir, INDEX), "".join(out), sync_dir=False)
    except OSError:
        pass


def remove(pod_dir):
    """Delete the index (before the pod's emptied directory is removed)."""
    from ops import confine
    confine.unlink(os.path.join(pod_dir, INDEX))
