"""Stored versions: /etc/ops/pods/NAME/VERSION/ and the ``current`` link.

A stored version holds everything needed to run it again without the bundle:
``pod.json`` (byte-identical), ``units/``, ``manifest.json`` and ``state.json``
(content digest, image IDs, outcome, deploy times).  A version directory
appears only complete: it is built under a temporary name and renamed.  Each
pod's directory also holds ``index``, what `list` shows of each version (see
:mod:`ops.index`).
"""

import errno
import os
import time

from ops import atomic, confine, index
from ops.errors import Failed
from ops.index import is_version    # there, so that `list` imports nothing more

__all__ = ["is_version", "StoredVersion", "versions", "version_dirs", "pods", "get", "current_version",
           "set_current", "clear_current", "now", "remove_tree", "remove_if_empty", "lost_units",
           "lost_versions"]


def now():
    """The current UTC time as every record of ops writes it: 2026-12-01T09:30:00Z."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class StoredVersion:
    """One stored version: pod name, version number and directory.  A plain
    class (importing collections for a namedtuple would cost `ops list` a
    tenth of its start-up)."""
    __slots__ = ("name", "version", "dir")

    def __init__(self, name, version, dir):
        self.name, self.version, self.dir = name, version, dir

    def _id(self):
        return (self.name, self.version, self.dir)

    def __eq__(self, other):
        return isinstance(other, StoredVersion) and self._id() == other._id()

    def __hash__(self):
        return hash(self._id())

    def __repr__(self):
        return "StoredVersion(name=%r, version=%r, dir=%r)" % self._id()

    @property
    def pod_json(self):
        return os.path.join(self.dir, "pod.json")

    @property
    def units_dir(self):
        return os.path.join(self.dir, "units")

    @property
    def manifest_json(self):
        return os.path.join(self.dir, "manifest.json")

    @property
    def state_json(self):
        return os.path.join(self.dir, "state.json")

    def state(self):
        return index.read_state(self.state_json)

    def state_problem(self):
        """Why its state.json cannot be used (missing, unreadable, not JSON),
        or None."""
        return index.state_problem(self.state_json)

    def edited_units(self, state=None):
        """The stored unit copies that no longer hold the bytes whose digest
        state.json recorded when the version was staged (changed or removed
        on disk since): ops would install them instead of the bundle's."""
        from ops.units import digest
        recorded = (self.state() if state is None else state).get("units")
        if not isinstance(recorded, dict):
            return []
        from ops.names import is_unit_name
        bad = [k for k in sorted(recorded) if not is_unit_name(k)]
        if bad:        # a path (../.., /etc/...) is never read: that would leave ROOT
            from ops.errors import Refused
            raise Refused(self.state_json, "\"units\" names %r, which is not a unit file's name "
                          "(the file was edited: ops records only the names of the units it "
                          "stored); run `ops undeploy %s:%d --remove` and deploy the bundle again"
                          % (bad[0][:200], self.name, self.version))
        from ops.confine import read_files
        paths = {os.path.join(self.units_dir, unit): unit for unit in sorted(recorded)}
        read = read_files(paths)          # the units directory walked once
        return [p for p, unit in paths.items()
                if isinstance(read[p], OSError) or digest(read[p]) != recorded[unit]]

    def check_units(self, state=None, fix=""):
        """Refuse (exit 2) when a stored unit copy was edited (:meth:`edited_units`)."""
        edited = self.edited_units(state)
        if edited:
            from ops.errors import Refused
            raise Refused(edited[0], "this stored copy of %s:%d%s was changed on disk since the "
                          "version was stored (it no longer matches the digest in %s); ops "
                          "installs stored copies and will not install an edited one: %s"
                          % (self.name, self.version, " (and %d more)" % (len(edited) - 1)
                             if len(edited) > 1 else "", self.state_json,
                             fix or "put the original back, or run `ops undeploy %s:%d "
                             "--remove` and deploy the bundle again" % (self.name, self.version)))

    def write_state(self, **changes):
        import json
        data = self.state()
        data.update(changes)
        atomic.write_text(self.state_json, json.dumps(data, indent=1, sort_keys=True) + "\n")
        if is_version(os.path.basename(self.dir)):     # not while staged under a temporary name
            index.update(os.path.dirname(self.dir))
        return data

    def record(self, outcome, reason=None):
        """Record an outcome; ``reason`` (why it failed) replaces the last one."""
        history = self.state().get("history")     # a list, unless state.json was edited
        history = history[-19:] if isinstance(history, list) else []
        history.append({"at": now(), "outcome": outcome})
        return self.write_state(outcome=outcome, deployed_at=now(), history=history,
                                reason=reason)

    def bundle(self):
        """The stored pod.json parsed again (artifacts are not looked up)."""
        from ops import bundle
        try:        # no link followed, no FIFO waited on, no larger than a bundle's
            raw = confine.read_file(self.pod_json, bundle.MAX_MANIFEST_BYTES)
        except OSError as e:
            # refused as an invalid one is: the callers that go on past a
            # broken version (another pod's, a conflict check) catch that
            raise bundle.BundleError(self.pod_json, "cannot be read: %s" % (e.strerror or e))
        return bundle.parse(raw, self.pod_json, None, insecure_images=True)

    def unit_names(self):
        return [u.name for u in self.bundle().units]

    def recorded_images(self):
        """The image ID recorded for each of the bundle's images, by index
        (None where none is known)."""
        ids = self.state().get("images", [])
        return [i if isinstance(i, str) else None for i in ids] if isinstance(ids, list) else []

    def image_ids(self):
        return [i for i in self.recorded_images() if i]


# a link where a directory belongs is listed: what goes through it next is refused
_DIRS = (0o040000, 0o120000)        # stat.S_IFDIR, stat.S_IFLNK


def _entries(path):
    """(name, file type) of each entry of directory ``path``, the directory
    opened below its top without following a link (:mod:`ops.confine`) and
    no entry followed: what ops deletes is chosen from this, never from what
    a link points to."""
    import stat
    try:
        with confine.directory(path) as fd:
            out = []
            for e in os.listdir(fd):
                try:
                    out.append((e, stat.S_IFMT(os.stat(e, dir_fd=fd, follow_symlinks=False).st_mode)))
                except OSError:
                    continue
            return out
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        return []


def _has_pod_json(d):
    import stat
    return confine.kind(os.path.join(d, "pod.json")) == stat.S_IFREG


def versions(layout, name):
    """Stored versions of pod ``name``, oldest first (a version directory
    that is a symbolic link is refused)."""
    d = layout.pod_dir(name)
    out = []
    for e, k in _entries(d):
        if is_version(e) and k in _DIRS and _has_pod_json(os.path.join(d, e)):
            out.append(StoredVersion(name, int(e), os.path.join(d, e)))
    out.sort(key=lambda v: v.version)
    return out


def version_dirs(layout, name):
    """[(version, directory)] of every version directory of pod ``name``,
    oldest first, whether or not its pod.json is still there."""
    d = layout.pod_dir(name)
    return sorted((int(e), os.path.join(d, e)) for e, k in _entries(d)
                  if is_version(e) and k in _DIRS)


def pods(layout):
    return sorted(n for n, k in _entries(layout.pods_dir)
                  if not n.startswith(".") and k in _DIRS)


def get(layout, name, version):
    d = layout.version_dir(name, version)
    if _has_pod_json(d):
        return StoredVersion(name, int(version), d)
    return None


def current_number(layout, name):
    """The version the pod's ``current`` link names (stored or not), or None.
    Something else there (a directory, a file) is refused: which version
    runs is unknown, and ops could not replace it with a link."""
    link = layout.current_link(name)
    try:
        target = os.readlink(link)
    except OSError as e:
        if e.errno != errno.EINVAL:          # EINVAL: there, but not a symbolic link
            return None
        from ops.errors import Refused
        raise Refused(link, "not a symbolic link: ops keeps the pod's current version there as "
                      "a link to ../pods/%s/VERSION, and cannot tell which version runs; move "
                      "it away, then run `ops redeploy %s:VERSION` for the version that runs"
                      % (name, name))
    base = os.path.basename(target.rstrip("/"))
    return int(base) if is_version(base) else None


def current_version(layout, name):
    number = current_number(layout, name)
    return None if number is None else get(layout, name, number)


def set_current(layout, sv):
    atomic.symlink(os.path.join("..", "pods", sv.name, str(sv.version)),
                   layout.current_link(sv.name))


def clear_current(layout, name):
    confine.unlink(layout.current_link(name))


def remove_tree(path):
    """Delete a directory so that a killed run leaves only a temporary name
    (removed by the next run), never a half-deleted version."""
    try:
        with confine.parent(path) as (fd, base):
            doomed = "%s%d-del-%s" % (atomic.TMP_PREFIX, os.getpid(), base)
            try:
                os.rename(base, doomed, src_dir_fd=fd, dst_dir_fd=fd)
            except FileNotFoundError:
                return
    except FileNotFoundError:
        return
    except OSError as e:
        raise Failed(path, "cannot remove: %s" % e.strerror)
    # what stays under the temporary name goes at the next run
    atomic.remove_tree_quietly(os.path.join(os.path.dirname(path.rstrip("/")), doomed))


def remove_if_empty(path):
    """Remove a pod's directory once it holds no version (its index aside)."""
    try:
        with confine.parent(path) as (fd, base):
            if confine.listdir(path) == [index.INDEX]:
                index.remove(path)
            os.rmdir(base, dir_fd=fd)
    except OSError:
        pass


def parse_ref(ref):
    """``NAME`` or ``NAME:VERSION`` -> (name, version or None)."""
    from ops.errors import UsageError
    from ops.names import is_pod_name
    name, _, version = ref.partition(":")
    if not is_pod_name(name):
        raise UsageError(ref, "not a pod name (NAME or NAME:VERSION)")
    if _:
        if not is_version(version):
            raise UsageError(ref, "VERSION must be a non-negative integer")
        return name, int(version)
    return name, None


def lost_units(layout, name, number):
    """The units of stored version ``number`` whose pod.json is gone: from
    its manifest.json (which keeps the ops annotation), else from the names
    in its units/ directory (plain units only: a template's instances are
    known only from the manifest)."""
    from ops import bundle
    from ops.errors import BundleError, Refused
    vdir = layout.version_dir(name, number)
    where = os.path.join(vdir, "pod.json")
    manifest = os.path.join(vdir, "manifest.json")
    try:        # what it names is stopped and removed: read without following a link
        raw = confine.read_file(manifest)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise Refused(e.filename, e.strerror)
        raw = None
    if raw is not None:
        try:
            return bundle.parse(raw, manifest, None, insecure_images=True).units
        except BundleError:
            pass
    try:
        names = sorted(n for n in confine.listdir(os.path.join(vdir, "units"))
                       if not n.startswith("."))
    except OSError:
        raise Refused(where, "missing, and so is the version's units/ directory: ops cannot tell "
                      "which units version %d of pod %s installed; stop and remove them by "
                      "hand, then remove %s" % (number, name, layout.current_link(name)))
    templates = [n for n in names if "@" in n]
    if templates:
        raise Refused(where, "missing, and so is manifest.json: the instances of %s are "
                      "unknown; put pod.json back from the bundle and run the undeploy again"
                      % templates[0])
    return tuple(bundle.UnitSpec(n, bundle.Artifact(n), False, None) for n in names)


def lost_versions(layout, name):
    """Version directories of the pod that lost their pod.json."""
    return [StoredVersion(name, n, d) for n, d in version_dirs(layout, name)
            if not _has_pod_json(d)]
