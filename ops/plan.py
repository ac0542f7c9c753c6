"""What to change, computed from a bundle (or a stored version) and the host.

A plan is data: a list of :class:`Action` in two phases, ``stage`` (work
beside what runs) and ``switch`` (what changes what runs).  The same plan is
printed by ``--dry-run``, reported in ``--json`` and walked by
:mod:`ops.deploy`; there is no second code path.  Planning only reads: files,
``systemctl is-active``/``is-enabled`` and ``rkt image list``.
"""

import filecmp
import os
from collections import namedtuple

from ops import store
from ops.bundle import is_remote
from ops.errors import ConflictError, Refused
from ops.units import Owner, SystemNames, install_names, read_bytes

__all__ = ["Action", "Plan", "plan_deploy", "plan_redeploy", "plan_undeploy",
           "plan_removal", "start_units", "all_units", "switch_actions"]


class Action(namedtuple("Action", "verb target units index", defaults=("", (), -1))):
    """One step: ``verb`` (e.g. "install-unit", "start", "unpack-volume"),
    ``target`` (what it acts on, for people), ``units`` (for batched
    systemctl verbs), ``index`` (into the bundle's images or volumes)."""
    __slots__ = ()

    def to_json(self):
        d = {"action": self.verb}
        if self.target:
            d["target"] = self.target
        if self.units:
            d["units"] = list(self.units)
        return d

    def describe(self):
        parts = [self.verb]
        if self.target:
            parts.append(self.target)
        if self.units:
            parts.append(" ".join(self.units))
        return " ".join(parts)


class Plan(namedtuple("Plan", "command name version previous stage switch removals notes",
                      defaults=((), (), (), ()))):
    """What a command will do: ``stage`` (beside what runs), ``switch`` (under
    the journal) and ``removals`` (stored versions, volumes, images)."""
    __slots__ = ()

    @property
    def actions(self):
        return self.stage + self.switch + self.removals

    @property
    def changed(self):
        return bool(self.actions)


def start_units(units):
    """Names to enable and start: every instance of a ``start`` template."""
    return tuple(n for u in units if u.start for n in u.unit_names)


def all_units(units):
    """Every name systemd may have running or enabled for these units."""
    return tuple(n for u in units for n in u.unit_names)


def _installed_same(layout, unit, stored_path):
    target = layout.unit_path(unit.name)
    if not (os.path.isfile(target) and not os.path.islink(target)
            and filecmp.cmp(stored_path, target, shallow=False)):
        return False
    return not unit.name.endswith(".service") or os.path.isfile(layout.dropin_path(unit.name))


def _nothing_to_do(ctx, stage, switch, units):
    """Identical and current: only enable/start/settle would remain, and
    every start unit is already up."""
    return (not stage and all(a.verb in ("enable", "start", "settle", "health-check",
                                         "set-current") for a in switch) and _is_up(ctx, units))


def switch_actions(layout, target_units, target_label, prev_units, converge_paths=None,
                   health=None):
    """The switch from the previous version's units to the target's.

    ``converge_paths`` (unit -> stored file) means target == previous: only
    missing or changed files are installed, nothing is stopped.  ``health``:
    the target's health check, run after the settle (not offline: nothing runs)."""
    acts = []
    new_names = {u.name for u in target_units}
    if prev_units is not None:
        acts.append(Action("stop", units=all_units(prev_units)))
        acts.append(Action("disable", units=all_units(prev_units)))
        for u in prev_units:
            if u.name not in new_names:
                acts.append(Action("remove-unit", u.name))
    installs = [u for u in target_units
                if converge_paths is None or not _installed_same(layout, u, converge_paths[u.name])]
    for u in installs:
        acts.append(Action("install-unit", u.name))
    starts = start_units(target_units)
    if starts:
        acts.append(Action("enable", units=starts))
    # enable and disable do not reload (--no-reload): one reload, after every
    # file is in place, before anything starts
    if installs or prev_units:
        acts.append(Action("daemon-reload"))
    acts = [a for a in acts if a.units or a.verb not in ("stop", "disable")]
    if starts:
        acts.append(Action("start", units=starts))
        acts.append(Action("settle", units=starts))
    if health is not None and not layout.offline:
        acts.append(Action("health-check", health.describe()))
    acts.append(Action("set-current", target_label))
    return tuple(acts)


def _check_conflicts(layout, name, units, text_of, removed=()):
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
        cur = store.current_version(layout, pod) if pod != name else None
        if cur is not None:
            try:
                others.update((u, cur) for u in cur.unit_names())
            except Refused:
                continue
    _check_removal(layout, name, removed, owner)
    system = SystemNames(layout)
    for u in units:
        p = layout.unit_path(u.name)
        if u.name in others:
            cur = others[u.name]
            raise ConflictError(p, "belongs to pod %s (its current version %d runs it); "
                                "nothing was changed" % (cur.name, cur.version))
        _refuse_foreign(owner, u.name, "overwrite")
        check_install_section(layout, name, units, u, text_of(u), owner, system)
        for n in (u.name,) + u.unit_names:
            _refuse_shadowing(system, u.name, n, "")


def _check_removal(layout, name, removed, owner=None):
    """Refuse when a unit file or drop-in ops would delete is not its own."""
    owner = owner or Owner(layout, name)
    for unit in removed:
        _refuse_foreign(owner, unit, "remove")


def _installs(switch, units):
    """The units a converging switch installs again: only those are checked
    (an unchanged, identical file is the pod's own)."""
    names = {a.target for a in switch if a.verb == "install-unit"}
    return [u for u in units if u.name in names]


def _removed(prev_units, new_units):
    keep = {u.name for u in new_units}
    return [u.name for u in prev_units or () if u.name not in keep]


def _current_units(layout, name, current):
    """The units of the current version, for a deploy or redeploy to replace;
    refused when the current version lost its pod.json (its units would be
    left running, unknown): `ops undeploy` takes such a version down."""
    if current is not None:
        return current.bundle().units
    number = store.current_number(layout, name)
    if number is None:
        return None
    raise Refused(os.path.join(layout.version_dir(name, number), "pod.json"),
                  "missing: the current version %d of pod %s lost its stored pod.json; run "
                  "`ops undeploy %s` first (it stops and removes the units ops installed)"
                  % (number, name, name))


def lost_units(layout, name, number):
    """The units of stored version ``number`` whose pod.json is gone: from
    its manifest.json (which keeps the ops annotation), else from the names
    in its units/ directory (plain units only: a template's instances are
    known only from the manifest)."""
    from ops import bundle
    from ops.errors import BundleError
    vdir = layout.version_dir(name, number)
    where = os.path.join(vdir, "pod.json")
    manifest = os.path.join(vdir, "manifest.json")
    raw = read_bytes(manifest)
    if raw is not None:
        try:
            return bundle.parse(raw, manifest, None, insecure_images=True).units
        except BundleError:
            pass
    try:
        names = sorted(n for n in os.listdir(os.path.join(vdir, "units"))
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


def _lost_versions(layout, name):
    """Version directories of the pod that lost their pod.json."""
    return [store.StoredVersion(name, n, d) for n, d in store.version_dirs(layout, name)
            if not os.path.isfile(os.path.join(d, "pod.json"))]


def _refuse_foreign(owner, unit, verb):
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
    raise ConflictError(path, "%s: ops does not %s it; nothing was changed (%s)"
                        % (what, verb, hint))


def _refuse_shadowing(system, unit, name, how):
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
        for n in names:
            if n in ours:
                continue
            _refuse_shadowing(system, u.name, n, " (its Alias=%s)" % a)
            if owner.unit_file(n) is False:
                raise ConflictError(layout.unit_path(n), "already exists; Alias=%s of the pod's "
                                    "%s would replace it; nothing was changed" % (a, u.name))


def _stored_text(sv):
    return lambda u: read_bytes(os.path.join(sv.units_dir, u.name))


def _bundle_text(u):
    return read_bytes(u.source.path) if u.source.path else None


def _is_up(ctx, units):
    starts = start_units(units)
    return not ctx.systemd.inactive_units(starts) if starts else True


def plan_deploy(ctx, bundle):
    layout = ctx.layout
    name, version = bundle.name, bundle.version
    current = store.current_version(layout, name)
    stored = store.get(layout, name, version)
    known = stored.state() if stored is not None else None
    digest = bundle.content_digest(known)
    notes = []
    if stored is not None:
        if known.get("content") != digest:
            raise Refused("%s:%d" % (name, version),
                          "this version is already stored with different content: bump the "
                          "version, or run `ops undeploy %s:%d --remove` first" % (name, version, ))
    prev_units = _current_units(layout, name, current)
    stage = _stage_actions(ctx, bundle, stored)
    label = "%s %d" % (name, version)
    if current is not None and current.version == version:
        paths = {u.name: os.path.join(current.units_dir, u.name) for u in bundle.units}
        switch = switch_actions(layout, bundle.units, label, None, paths, bundle.health)
        if _nothing_to_do(ctx, stage, switch, bundle.units):
            return Plan("deploy", name, version, version, notes=("unchanged",))
        _check_conflicts(layout, name, _installs(switch, bundle.units), _bundle_text)
        notes.append("converging: some units are stopped or missing")
        return Plan("deploy", name, version, version, stage, switch, notes=tuple(notes))
    _check_conflicts(layout, name, bundle.units, _bundle_text,
                     _removed(prev_units, bundle.units))
    switch = switch_actions(layout, bundle.units, label, prev_units, health=bundle.health)
    return Plan("deploy", name, version, current.version if current else None,
                stage, switch, notes=tuple(notes))


def _stage_actions(ctx, bundle, stored):
    """Downloads first (only of what is needed), then store, images, volumes."""
    layout = ctx.layout
    downloads, work = [], []

    def download(art):
        if art is not None and art.uri and is_remote(art.uri):
            downloads.append(Action("download", art.uri))
    if stored is None:
        for u in bundle.units:
            download(u.source)
        work.append(Action("store", layout.host(layout.version_dir(bundle.name,
                                                                   bundle.version))))
    recorded = stored.recorded_images() if stored is not None else []
    have = ctx.image_ids() if bundle.images else []
    for img in bundle.images:
        known = img.id or (recorded[img.index] if img.index < len(recorded) else None)
        if known and any(_match(known, h) for h in have):
            continue                  # already in rkt's store: no download, no fetch
        download(img.source)
        download(img.signature)
        work.append(Action("fetch-image", img.source.location, index=img.index))
    vdir = layout.volumes_dir(bundle.name, bundle.version)
    for i, vol in enumerate(bundle.volumes):
        if not os.path.isdir(os.path.join(vdir, vol.name)):
            download(vol.data)
            work.append(Action("unpack-volume", vol.name, index=i))
    return tuple(downloads + work)


def _match(a, b):
    from ops.rkt import ids_match
    return ids_match(a, b)


def plan_redeploy(ctx, name, version):
    layout = ctx.layout
    versions = store.versions(layout, name)
    current = store.current_version(layout, name)
    if version is None:
        from ops.retention import rollback_target
        target = rollback_target(versions, current)
        if target is None:
            raise Refused(name, "no stored version older than the current one (%s) whose last "
                          "outcome is ok, to go back to (see `ops list %s`; `ops redeploy "
                          "%s:VERSION` takes any)" % (current.version if current else "none",
                                                      name, name)
                          if versions else "no stored version of this pod")
    else:
        target = store.get(layout, name, version)
        if target is None:
            raise Refused("%s:%d" % (name, version), "not stored (see `ops list %s`)" % name)
    tb = target.bundle()
    for vol in tb.volumes:
        d = os.path.join(layout.volumes_dir(name, target.version), vol.name)
        if not os.path.isdir(d):
            raise Refused(d, "volume directory of %s:%d is missing; deploy the bundle again"
                          % (name, target.version))
    ids = target.image_ids()
    if ids:
        have = ctx.image_ids()
        for i in ids:
            if not any(_match(i, h) for h in have):
                raise Refused(i, "image of %s:%d is no longer in rkt's store; deploy the bundle "
                              "again" % (name, target.version))
    prev_units = _current_units(layout, name, current)
    label = "%s %d" % (name, target.version)
    if current is not None and current.version == target.version:
        paths = {u.name: os.path.join(target.units_dir, u.name) for u in tb.units}
        switch = switch_actions(layout, tb.units, label, None, paths, tb.health)
        if _nothing_to_do(ctx, (), switch, tb.units):
            return Plan("redeploy", name, target.version, target.version, notes=("unchanged",))
        _check_conflicts(layout, name, _installs(switch, tb.units), _stored_text(target))
        return Plan("redeploy", name, target.version, target.version, (), switch)
    _check_conflicts(layout, name, tb.units, _stored_text(target), _removed(prev_units, tb.units))
    return Plan("redeploy", name, target.version, current.version if current else None,
                (), switch_actions(layout, tb.units, label, prev_units, health=tb.health))


def plan_undeploy(ctx, name, version, remove):
    layout = ctx.layout
    current = store.current_version(layout, name)
    # the version `current` names, even when its pod.json was lost
    number = current.version if current else store.current_number(layout, name)
    versions = store.versions(layout, name)
    switch = ()
    if number is not None and (version is None or version == number):
        units = current.bundle().units if current else lost_units(layout, name, number)
        _check_removal(layout, name, [u.name for u in units])
        acts = [Action("stop", units=all_units(units)), Action("disable", units=all_units(units))]
        acts = [a for a in acts if a.units]
        acts += [Action("remove-unit", u.name) for u in units]
        if units:
            acts.append(Action("daemon-reload"))
        acts.append(Action("clear-current", name))
        switch = tuple(acts)
    removals = ()
    if remove:
        doomed = [v for v in versions + _lost_versions(layout, name)
                  if version is None or v.version == version]
        removals = plan_removal(ctx, name, sorted(doomed, key=lambda v: v.version))
    shown = version if version is not None else number
    return Plan("undeploy", name, shown, number, (), switch, removals)


def plan_removal(ctx, name, doomed, doomed_elsewhere=(), scheduled=None, stored_images=None):
    """Delete stored versions, their volumes, and images nothing else uses.

    ``doomed_elsewhere``: (pod, version) pairs the same command removes too
    (cleanup of several pods); ``scheduled``: a set of image IDs already
    planned for removal, updated here, so that each is removed once;
    ``stored_images``: a dict this fills once, on first need, with the image
    IDs of every stored version (cleanup plans each pod with the same one)."""
    layout = ctx.layout
    acts = []
    doomed_keys = {(name, v.version) for v in doomed} | set(doomed_elsewhere)
    for v in doomed:
        acts.append(Action("remove-version", layout.host(v.dir)))
        if os.path.isdir(layout.volumes_dir(name, v.version)):
            acts.append(Action("remove-volumes",
                               layout.host(layout.volumes_dir(name, v.version))))
    doomed_ids = [i for v in doomed for i in v.image_ids()]
    if not doomed_ids:
        return tuple(acts)
    if stored_images is None:
        stored_images = {}
    if not stored_images:
        # None: state.json cannot be read, so which images it uses is unknown
        stored_images.update(((pod, v.version), v.image_ids() if v.state() else None)
                             for pod in store.pods(layout) for v in store.versions(layout, pod))
    keep = set()
    for key, image_ids in stored_images.items():
        if key not in doomed_keys:
            if image_ids is None:
                from ops import log
                log.warn("%s:%d's state.json cannot be read: no image is removed from rkt's "
                         "store (`rkt image gc` reclaims unused ones)" % key)
                return tuple(acts)
            keep.update(image_ids)
    scheduled = set() if scheduled is None else scheduled
    ids = []
    for i in doomed_ids:
        if i not in keep and i not in scheduled and not any(_match(i, k) for k in keep):
            ids.append(i)
            scheduled.add(i)
    if ids:
        acts.append(Action("remove-images", units=tuple(ids)))
    return tuple(acts)
