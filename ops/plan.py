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


def _check_conflicts(layout, name, units):
    """A unit file that exists and belongs to no version of this pod, or that
    another pod's current version runs, is a conflict (SPEC §2)."""
    owned = set()
    for sv in store.versions(layout, name):
        try:
            owned.update(sv.unit_names())
        except Refused:
            continue
    others = {}
    for pod in store.pods(layout):
        cur = store.current_version(layout, pod) if pod != name else None
        if cur is not None:
            try:
                others.update((u, cur) for u in cur.unit_names())
            except Refused:
                continue
    for u in units:
        p = layout.unit_path(u.name)
        if u.name in others:
            cur = others[u.name]
            raise ConflictError(p, "belongs to pod %s (its current version %d runs it); "
                                "nothing was changed" % (cur.name, cur.version))
        if os.path.lexists(p) and u.name not in owned:
            raise ConflictError(p, "already exists and belongs to no version of pod %s "
                                "(another pod's or the administrator's unit); nothing was changed"
                                % name)


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
    _check_conflicts(layout, name, bundle.units)
    stage = _stage_actions(ctx, bundle, stored)
    label = "%s %d" % (name, version)
    if current is not None and current.version == version:
        paths = {u.name: os.path.join(current.units_dir, u.name) for u in bundle.units}
        switch = switch_actions(layout, bundle.units, label, None, paths, bundle.health)
        if _nothing_to_do(ctx, stage, switch, bundle.units):
            return Plan("deploy", name, version, version, notes=("unchanged",))
        notes.append("converging: some units are stopped or missing")
        return Plan("deploy", name, version, version, stage, switch, notes=tuple(notes))
    prev_units = current.bundle().units if current else None
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
    _check_conflicts(layout, name, tb.units)
    label = "%s %d" % (name, target.version)
    if current is not None and current.version == target.version:
        paths = {u.name: os.path.join(target.units_dir, u.name) for u in tb.units}
        switch = switch_actions(layout, tb.units, label, None, paths, tb.health)
        if _nothing_to_do(ctx, (), switch, tb.units):
            return Plan("redeploy", name, target.version, target.version, notes=("unchanged",))
        return Plan("redeploy", name, target.version, target.version, (), switch)
    prev_units = current.bundle().units if current else None
    return Plan("redeploy", name, target.version, current.version if current else None,
                (), switch_actions(layout, tb.units, label, prev_units, health=tb.health))


def plan_undeploy(ctx, name, version, remove):
    layout = ctx.layout
    current = store.current_version(layout, name)
    versions = store.versions(layout, name)
    switch = ()
    if current is not None and (version is None or version == current.version):
        units = current.bundle().units
        acts = [Action("stop", units=all_units(units)), Action("disable", units=all_units(units))]
        acts = [a for a in acts if a.units]
        acts += [Action("remove-unit", u.name) for u in units]
        if units:
            acts.append(Action("daemon-reload"))
        acts.append(Action("clear-current", name))
        switch = tuple(acts)
    removals = ()
    if remove:
        doomed = [v for v in versions if version is None or v.version == version]
        removals = plan_removal(ctx, name, doomed)
    shown = version if version is not None else (current.version if current else None)
    return Plan("undeploy", name, shown, current.version if current else None,
                (), switch, removals)


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
