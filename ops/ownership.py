"""What on the host is a pod's own, and what it may not touch.

Ownership comes from content, never from a name: a unit file under
/etc/systemd/system is ops's for a pod only when its digest is the one a
stored version of the pod recorded for that unit when it was staged (what ops
installs from it), or when it is byte-identical to a stored copy; a drop-in
``UNIT.d/50-ops.conf`` only when it is the text ops writes for one of them.
Anything else there is the administrator's (or another pod's), and ops
neither overwrites nor deletes it (:func:`check_conflicts`,
:func:`check_removal`: exit 2 before anything changes).

A pod's unit must not shadow one systemd already has: its name, each of its
instances and each ``Alias=`` of its ``[Install]`` section are looked up in
every directory of systemd's unit search path (``systemd-analyze
unit-paths``), and, online, among the mount points systemd makes mount units
of.  ``Also=`` may name only the pod's own units.
"""

import os

from ops import store
from ops.errors import ConflictError, Refused
from ops.units import digest, dropin_text, install_section, read_bytes

__all__ = ["Owner", "SystemNames", "install_names", "check_conflicts", "check_removal",
           "check_install_section", "SEARCH_PATHS"]

# systemd's unit search path for the system manager (systemd-analyze
# unit-paths; lookup_paths_init in src/shared/path-lookup.c), under ROOT.
# etc/systemd/system is where ops installs.
SEARCH_PATHS = (
    "etc/systemd/system.control", "run/systemd/system.control", "run/systemd/transient",
    "run/systemd/generator.early", "etc/systemd/system", "etc/systemd/system.attached",
    "run/systemd/system", "run/systemd/system.attached", "run/systemd/generator",
    "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system",
    "run/systemd/generator.late",
)
# units systemd itself provides, without a file (its perpetual units,
# src/core/mount.c, slice.c, scope.c: the root mount, the root slice, PID 1's
# own scope and the system slice, which it makes even without
# system.slice's file); offline these are the names known without asking
BUILTIN = ("-.mount", "-.slice", "init.scope", "system.slice")
_MOUNT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.")


class Owner:
    """What under /etc/systemd/system is pod ``name``'s, judged by content
    against every version directory of the pod (a version whose pod.json was
    lost included: its units/ are still what ops installed): the digests its
    state.json recorded when it was staged, or its stored copies."""

    def __init__(self, layout, name):
        self.layout = layout
        self.name = name
        self.versions = store.version_dirs(layout, name)
        self._recorded = None

    def _digests(self, unit):
        if self._recorded is None:
            from ops.index import read_state
            self._recorded = []
            for _, vdir in self.versions:
                units = read_state(os.path.join(vdir, "state.json")).get("units")
                self._recorded.append(units if isinstance(units, dict) else {})
        return {r.get(unit) for r in self._recorded} - {None}

    def _copies(self, unit):
        for number, vdir in self.versions:
            p = os.path.join(vdir, "units", unit)
            if os.path.isfile(p):
                yield number, p

    def unit_file(self, unit):
        """None when nothing is installed under ``unit``'s name, True when the
        file is one ops installed for this pod, else False."""
        path = self.layout.unit_path(unit)
        if not os.path.lexists(path):
            return None
        if os.path.islink(path) or not os.path.isfile(path):
            return self._own_alias(path)
        data = read_bytes(path)
        if data is None:
            return False
        recorded = self._digests(unit)
        return ((bool(recorded) and digest(data) in recorded)
                or any(read_bytes(p) == data for _, p in self._copies(unit)))

    def _own_alias(self, path):
        """A symlink ``systemctl enable`` made for an Alias= of this pod's unit."""
        try:
            target = os.readlink(path)
        except OSError:
            return False
        unit = os.path.basename(target)
        return (os.path.dirname(target) in (self.layout.host(self.layout.unit_dir), "")
                and any(True for _ in self._copies(unit)))

    def dropin(self, unit):
        """Like :meth:`unit_file`, for ``UNIT.d/50-ops.conf``."""
        path = self.layout.dropin_path(unit)
        if not os.path.lexists(path):
            return None
        if os.path.islink(path) or not os.path.isfile(path):
            return False
        data = read_bytes(path)
        return any(data == dropin_text(self.layout, self.name, n, unit).encode()
                   for n, _ in self._copies(unit))

    def stored_copy(self, unit):
        """The stored copy of ``unit`` ops would have installed: the current
        version's, else the newest version's that has one; None when no
        version of the pod has the unit."""
        copies = dict(self._copies(unit))
        if not copies:
            return None
        current = store.current_number(self.layout, self.name)
        return copies.get(current) or copies[max(copies)]

    def foreign(self, unit):
        """The path of the first file of ``unit`` (unit file or drop-in) that
        exists and is not this pod's, or None."""
        if self.unit_file(unit) is False:
            return self.layout.unit_path(unit)
        if self.dropin(unit) is False:
            return self.layout.dropin_path(unit)
        return None


class SystemNames:
    """Unit names systemd already has outside /etc/systemd/system: each
    other directory of its search path is listed once."""

    def __init__(self, layout):
        self.layout = layout
        own = layout.unit_dir
        self.dirs = [layout.path(d) for d in SEARCH_PATHS]
        self.dirs = [d for d in self.dirs if d != own]
        self._listed = None
        self._asked = set()

    def _names(self):
        if self._listed is None:
            listed = {}
            for d in self.dirs:
                try:
                    names = os.listdir(d)
                except OSError:
                    continue
                for n in names:
                    listed.setdefault(n, os.path.join(d, n))
            for n in BUILTIN:
                listed.setdefault(n, "systemd itself")
            for point in self._mount_points():
                parts = point.strip("/").split("/")
                if point == "/" or not all(p and not p.startswith(".") and set(p) <= _MOUNT_CHARS
                                           for p in parts):
                    continue      # "/" is built in; other names need escapes, which ops refuses
                listed.setdefault("-".join(parts) + ".mount", "the mount point " + point)
            self._listed = listed
        return self._listed

    def _mount_points(self):
        """Online: what is mounted; offline: what ROOT's fstab mounts."""
        if self.layout.offline:
            text = read_bytes(self.layout.path("etc/fstab")) or b""
            fields = [l.split() for l in text.decode("utf-8", "replace").splitlines()
                      if l.strip() and not l.lstrip().startswith("#")]
            return [f[1] for f in fields if len(f) > 1 and f[1].startswith("/")]
        text = read_bytes("/proc/self/mountinfo") or b""
        points = []
        for line in text.decode("utf-8", "replace").splitlines():
            f = line.split()
            if len(f) > 4:
                points.append(f[4])
        return points

    def ask(self, units):
        """Online, ask systemd itself too (one batched ``systemctl show``)
        about ``units`` no file names: a unit it has without a file in its
        search path (built in, a device, a scope) is its own as well."""
        if self.layout.offline:
            return
        listed = self._names()
        todo = [u for u in dict.fromkeys(units) if u not in listed and u not in self._asked]
        if not todo:
            return
        self._asked.update(todo)
        from ops.systemd import Systemd
        listed.update(Systemd(self.layout).known_elsewhere(todo))

    def where(self, unit):
        """Where systemd already has ``unit`` (a path, or what makes it), or None."""
        return self._names().get(unit)


def install_names(text):
    """``Alias=`` and ``Also=`` names of a unit file's [Install] section:
    ({aliases}, {also}); raises ValueError for a specifier ('%') there, which
    ops does not expand."""
    section = install_section(text)
    for key in ("Alias", "Also"):
        if any("%" in w for w in section.get(key, ())):
            raise ValueError("%s=%s" % (key, " ".join(section[key])))
    return set(section.get("Alias", ())), set(section.get("Also", ()))


def check_conflicts(layout, name, units, text_of, removed=()):
    """Refuse (exit 2) before anything changes when installing ``units`` or
    removing the units named in ``removed`` would touch what is not pod
    ``name``'s own (see :mod:`ops.units`): a unit file or drop-in that is not
    what ops installed for the pod, a unit another pod's current version runs
    (SPEC §2), or a name (unit, instance, ``Alias=``) systemd already has
    elsewhere in its search path.  ``text_of(unit)`` gives a unit file's
    bytes, or None when it is not at hand yet (a download)."""
    owner = Owner(layout, name)
    others = {}
    for pod in store.pods(layout):
        try:
            cur = store.current_version(layout, pod) if pod != name else None
            if cur is not None:
                others.update((u, cur) for u in cur.unit_names())
        except Refused:
            continue
    check_removal(layout, name, removed, owner)
    system = SystemNames(layout)
    system.ask(n for u in units for n in (u.name,) + u.unit_names)
    for u in units:
        p = layout.unit_path(u.name)
        if u.name in others:
            cur = others[u.name]
            raise ConflictError(p, "belongs to pod %s (its current version %d runs it); "
                                "nothing was changed" % (cur.name, cur.version))
        refuse_foreign(owner, u.name, "overwrite")
        check_install_section(layout, name, units, u, text_of(u), owner, system)
        for n in (u.name,) + u.unit_names:
            refuse_shadowing(system, u.name, n, "")


def check_removal(layout, name, removed, owner=None):
    """Refuse when a unit file or drop-in ops would delete is not its own."""
    owner = owner or Owner(layout, name)
    for unit in removed:
        refuse_foreign(owner, unit, "remove")


def refuse_foreign(owner, unit, verb):
    path = owner.foreign(unit)
    if path is None:
        return
    if path == owner.layout.unit_path(unit):
        what = ("already exists and belongs to no version of pod %s (another pod's or the "
                "administrator's unit, or changed since ops installed it)" % owner.name)
    else:
        what = ("is not the drop-in ops wrote for pod %s (another pod's or the "
                "administrator's, or changed since)" % owner.name)
    hint = ("move it away first if the pod should have it" if verb == "overwrite" else
            "move it away, or put back what ops installed, and run the command again")
    stored = owner.stored_copy(unit) if path == owner.layout.unit_path(unit) else None
    if stored is not None:      # edited by hand, perhaps: say which copy to put back
        hint += "; if it is the pod's own file edited since, put back the copy ops " \
            "installed: cp %s %s" % (stored, path)
    raise ConflictError(path, "%s: ops does not %s it; nothing was changed (%s)"
                        % (what, verb, hint))


def refuse_shadowing(system, unit, name, how):
    where = system.where(name)
    if where is not None:
        raise ConflictError(where, "systemd already has a unit %s; the pod's %s%s would shadow "
                            "it: give the pod's unit another name; nothing was changed"
                            % (name, unit, how))


def check_install_section(layout, name, units, u, text, owner=None, system=None):
    """The [Install] section of unit ``u``: each ``Alias=`` (each instance's,
    for a template) must be a name no one else has, and each ``Also=`` a unit
    of the pod itself (``systemctl enable`` and ``disable`` act on them)."""
    if text is None:
        return
    owner = owner or Owner(layout, name)
    system = system or SystemNames(layout)
    try:
        aliases, also = install_names(text.decode("utf-8", "replace"))
    except ValueError as e:
        raise ConflictError(u.name, "[Install] %s: ops does not expand specifiers in Alias= "
                            "or Also=; write the names out; nothing was changed" % e)
    ours = {n for x in units for n in (x.name,) + x.unit_names}
    for a in sorted(also):
        if a not in ours:
            raise ConflictError(u.name, "[Install] Also=%s: systemctl enable and disable would "
                                "act on %s too, which is not a unit of pod %s; nothing was "
                                "changed" % (a, a, name))
        if a.endswith("@" + a[a.rfind("."):]):
            raise ConflictError(u.name, "[Install] Also=%s: enabling a template enables its "
                                "DefaultInstance=, which is not among the pod's instances; name "
                                "the instances; nothing was changed" % a)
    for a in sorted(aliases):
        names = [a]
        if u.instances is not None and "@." in a:
            stem, suffix = a.split("@", 1)
            names += ["%s@%s%s" % (stem, i, suffix) for i in u.instances]
        system.ask(n for n in names if n not in ours)
        for n in names:
            if n in ours:
                continue
            refuse_shadowing(system, u.name, n, " (its Alias=%s)" % a)
            if owner.unit_file(n) is False:
                raise ConflictError(layout.unit_path(n), "already exists; Alias=%s of the pod's "
                                    "%s would replace it; nothing was changed" % (a, u.name))
