"""What to change, computed from a bundle (or a stored version) and the host.

A plan is data: typed steps (:mod:`ops.actions`) in phases, ``stage`` (work
beside what runs), ``switch`` (what changes what runs), ``removals`` and
``marks``.  The same plan is printed by ``--dry-run``, reported in ``--json``
and walked by :mod:`ops.stage` and :mod:`ops.execute`; there is no second
code path.  Planning only reads: files, what systemd says of the units
(:meth:`ops.systemd.Systemd.down`) and ``rkt image list``.  The rules of what
a pod may touch are :mod:`ops.ownership`'s.
"""

import os
from ops.structs import struct

from ops import store
from ops.actions import (ClearCurrent, DaemonReload, Disable, Download, Enable, FetchImage,
                         HealthCheck, InstallUnit, Pin, RemoveImages, RemoveUnit, RemoveVersion,
                         RemoveVolumes, SetCurrent, Settle, Start, Stop, StoreVersion, Unpin,
                         UnpackVolume)
from ops.switch import kept_sockets, switch_actions
from ops.errors import Refused, UsageError
from ops.names import is_remote
from ops.systemd import ENABLED
from ops.units import all_units, read_bytes, socket_services, start_units

__all__ = ["Plan", "plan_deploy", "plan_redeploy", "plan_undeploy", "plan_removal",
           "plan_cleanup", "plan_pin", "switch_actions"]


class Plan(struct("Plan", "command name version previous stage switch removals marks "
                      "notes", defaults=((), (), (), (), ()))):
    """What a command will do: ``stage`` (beside what runs), ``switch`` (under
    the journal), ``removals`` (stored versions, volumes, images) and
    ``marks`` (pins of stored versions)."""
    __slots__ = ()

    @property
    def actions(self):
        return self.stage + self.switch + self.removals + self.marks

    @property
    def changed(self):
        return bool(self.actions)


def _nothing_to_do(ctx, stage, switch, units):
    """Identical and current: only enable/start/settle would remain, and
    every start unit is already up and enabled, as systemd has it loaded."""
    return (not stage and all(isinstance(a, (Enable, DaemonReload, Start, Settle, HealthCheck,
                                             SetCurrent))
                              for a in switch) and _is_whole(ctx, units))


def _installs(switch, units):
    """The units a converging switch installs again: only those are checked
    (an unchanged, identical file is the pod's own)."""
    names = {a.unit for a in switch if isinstance(a, InstallUnit)}
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


def _stored_text(sv):
    return lambda u: read_bytes(os.path.join(sv.units_dir, u.name))


def _bundle_text(u):
    return read_bytes(u.source.path) if u.source.path else None


def _converging(ctx, switch, target, units, paths, health, text):
    """The converging ``switch`` again with what runs, online, when it matters:
    a running unit whose file or drop-in it rewrites is restarted (a service
    would go on with another version's environment), and a socket that is
    down while the service it starts runs is started only after that service
    is stopped (:func:`ops.switch.held_back`)."""
    services = socket_services(units, text)
    if ctx.layout.offline or not (services or any(isinstance(a, InstallUnit) for a in switch)):
        return switch
    sd = ctx.systemd
    running = frozenset(n for n, p in sd.unit_states(start_units(units)).items() if sd.up(p))
    return switch_actions(ctx.layout, target, units, None, paths, health, services=services,
                          running=running)


def _is_whole(ctx, units):
    """Every start unit up, enabled, and loaded as its file is on disk."""
    starts = start_units(units)
    if not starts:
        return True
    sd = ctx.systemd
    return all(sd.up(p) and p.get("UnitFileState") in ENABLED
               and p.get("NeedDaemonReload") != "yes" for p in sd.unit_states(starts).values())


def plan_deploy(ctx, bundle):
    layout = ctx.layout
    name, version = bundle.name, bundle.version
    current = store.current_version(layout, name)
    stored = store.get(layout, name, version)
    known = stored.state() if stored is not None else None
    digest = bundle.content_digest(known)
    notes = []
    if stored is not None:
        problem = stored.state_problem()
        if problem:
            raise Refused(stored.state_json, "%s, so ops cannot tell whether stored version %d "
                          "of %s holds this bundle: run `ops undeploy %s:%d --remove` and deploy "
                          "again, or bump the version" % (problem, version, name, name, version))
        stored.check_units(known, "put the bundle's file back in its place (the same bytes), "
                           "or bump the version")
        if known.get("content") != digest:
            raise Refused("%s:%d" % (name, version),
                          "this version is already stored with different content: bump the "
                          "version, or run `ops undeploy %s:%d --remove` first" % (name, version, ))
    prev_units = _current_units(layout, name, current)
    stage = _stage_actions(ctx, bundle, stored)
    if current is not None and current.version == version:
        paths = {u.name: os.path.join(current.units_dir, u.name) for u in bundle.units}
        switch = switch_actions(layout, (name, version), bundle.units, None, paths,
                                bundle.health)
        if _nothing_to_do(ctx, stage, switch, bundle.units):
            return Plan("deploy", name, version, version, notes=("unchanged",))
        switch = _converging(ctx, switch, (name, version), bundle.units, paths,
                             bundle.health, _bundle_text)
        # from here on there is something to do: only now the rules of what a pod may touch
        from ops.ownership import check_conflicts
        check_conflicts(layout, name, _installs(switch, bundle.units), _bundle_text)
        notes.append("converging: some units are stopped, disabled or missing")
        return Plan("deploy", name, version, version, stage, switch, notes=tuple(notes))
    from ops.ownership import check_conflicts
    check_conflicts(layout, name, bundle.units, _bundle_text,
                     _removed(prev_units, bundle.units))
    kept = kept_sockets(ctx.systemd, layout, bundle.units, prev_units, _bundle_text,
                        _stored_text(current)) if current is not None else frozenset()
    switch = switch_actions(layout, (name, version), bundle.units, prev_units,
                            health=bundle.health, kept=kept,
                            services=socket_services(bundle.units, _bundle_text))
    return Plan("deploy", name, version, current.version if current else None,
                stage, switch, notes=tuple(notes))


def _stage_actions(ctx, bundle, stored):
    """Downloads first (only of what is needed), then store, images, volumes."""
    layout = ctx.layout
    downloads, work = [], []

    def download(art):
        if art is not None and art.uri and is_remote(art.uri):
            downloads.append(Download(art.uri))
    if stored is None:
        for u in bundle.units:
            download(u.source)
        vdir = layout.version_dir(bundle.name, bundle.version)
        work.append(StoreVersion(vdir, layout.host(vdir)))
    recorded = stored.recorded_images() if stored is not None else []
    have = ctx.image_ids() if bundle.images else []
    if bundle.images:
        from ops.rkt import ids_match
    for img in bundle.images:
        known = img.id or (recorded[img.index] if img.index < len(recorded) else None)
        if known and any(ids_match(known, h) for h in have):
            continue                  # already in rkt's store: no download, no fetch
        download(img.source)
        download(img.signature)
        work.append(FetchImage(img.index, img.source.location))
    vdir = layout.volumes_dir(bundle.name, bundle.version)
    for i, vol in enumerate(bundle.volumes):
        if not os.path.isdir(os.path.join(vdir, vol.name)):
            if vol.owner is not None:
                from ops import owners
                try:
                    owners.resolve(vol.owner, layout.root)
                except LookupError as e:
                    raise Refused("%s: ops.volumes[%d].owner" % (bundle.label, i), str(e))
            download(vol.data)
            work.append(UnpackVolume(i, vol.name))
    return tuple(downloads + work)


def plan_redeploy(ctx, name, version):
    from ops.ownership import check_conflicts
    from ops.retention import rollback_target
    from ops.rkt import ids_match
    layout = ctx.layout
    versions = store.versions(layout, name)
    current = store.current_version(layout, name)
    if version is None:
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
    target.check_units()
    for vol in tb.volumes:
        d = os.path.join(layout.volumes_dir(name, target.version), vol.name)
        if not os.path.isdir(d):
            raise Refused(d, "volume directory of %s:%d is missing; deploy the bundle again"
                          % (name, target.version))
    ids = target.image_ids()
    if ids:
        have = ctx.image_ids()
        for i in ids:
            if not any(ids_match(i, h) for h in have):
                raise Refused(i, "image of %s:%d is no longer in rkt's store; deploy the bundle "
                              "again" % (name, target.version))
    prev_units = _current_units(layout, name, current)
    if current is not None and current.version == target.version:
        paths = {u.name: os.path.join(target.units_dir, u.name) for u in tb.units}
        switch = switch_actions(layout, (name, target.version), tb.units, None, paths,
                                tb.health)
        if _nothing_to_do(ctx, (), switch, tb.units):
            return Plan("redeploy", name, target.version, target.version, notes=("unchanged",))
        switch = _converging(ctx, switch, (name, target.version), tb.units, paths,
                             tb.health, _stored_text(target))
        check_conflicts(layout, name, _installs(switch, tb.units), _stored_text(target))
        return Plan("redeploy", name, target.version, target.version, (), switch)
    check_conflicts(layout, name, tb.units, _stored_text(target), _removed(prev_units, tb.units))
    kept = kept_sockets(ctx.systemd, layout, tb.units, prev_units, _stored_text(target),
                        _stored_text(current)) if current is not None else frozenset()
    return Plan("redeploy", name, target.version, current.version if current else None,
                (), switch_actions(layout, (name, target.version), tb.units, prev_units,
                                    health=tb.health, kept=kept,
                                    services=socket_services(tb.units, _stored_text(target))))


def plan_undeploy(ctx, name, version, remove):
    layout = ctx.layout
    current = store.current_version(layout, name)
    # the version `current` names, even when its pod.json was lost
    number = current.version if current else store.current_number(layout, name)
    versions = store.versions(layout, name)
    switch = ()
    if number is not None and (version is None or version == number):
        units = current.bundle().units if current else store.lost_units(layout, name, number)
        from ops.ownership import check_removal
        check_removal(layout, name, [u.name for u in units])
        acts = [Stop(all_units(units)), Disable(all_units(units))] if all_units(units) else []
        acts += [RemoveUnit(u.name) for u in units]
        if units:
            acts.append(DaemonReload())
        acts.append(ClearCurrent(name))
        switch = tuple(acts)
    removals = ()
    if remove:
        doomed = [v for v in versions + store.lost_versions(layout, name)
                  if version is None or v.version == version]
        from ops.retention import refuse_pinned
        refuse_pinned(layout, name, doomed)
        removals = plan_removal(ctx, name, sorted(doomed, key=lambda v: v.version))
        if any(isinstance(a, RemoveImages) for a in removals):
            ctx.rkt       # refuse before changing anything when rkt is missing
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
        acts.append(RemoveVersion(v.version, v.dir, layout.host(v.dir)))
        if os.path.isdir(layout.volumes_dir(name, v.version)):
            vdir = layout.volumes_dir(name, v.version)
            acts.append(RemoveVolumes(vdir, layout.host(vdir)))
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
    from ops.rkt import ids_match
    ids = []
    for i in doomed_ids:
        if i not in keep and i not in scheduled and not any(ids_match(i, k) for k in keep):
            ids.append(i)
            scheduled.add(i)
    if ids:
        acts.append(RemoveImages(tuple(ids)))
    return tuple(acts)


class CleanupPlan(struct("CleanupPlan", "pods")):
    """``cleanup``: for each pod looked at, (name, versions removed, [(version,
    why)] kept beyond the N newest, removal actions)."""
    __slots__ = ()

    @property
    def actions(self):
        return tuple(a for _, _, _, acts in self.pods for a in acts)

    @property
    def changed(self):
        return any(versions for _, versions, _, _ in self.pods)


def check_cleanup_names(names):
    """Refuse what is not a pod name (before the lock: nothing is created)."""
    for n in names:
        if store.parse_ref(n)[1] is not None:
            raise UsageError(n, "cleanup takes pod names, not NAME:VERSION (to delete one "
                             "version: ops undeploy NAME:VERSION --remove)")


def plan_cleanup(ctx, names, keep, unsettled=()):
    """Keep each pod's current version, the ``keep`` newest others, pinned
    versions and the rollback target; remove the rest.  ``unsettled``: pods
    whose interrupted run is not settled (their versions all stay)."""
    from ops.retention import cleanup_choice
    check_cleanup_names(names)
    choices = []
    for name in names or store.pods(ctx.layout):
        if name in unsettled:
            from ops import log
            log.warn("%s is left alone: an interrupted run of it is not settled" % name)
            choices.append((name, [], []))
        else:
            try:
                choices.append((name,) + cleanup_choice(ctx.layout, name, keep))
            except Refused as e:       # its current link: that pod's problem only
                if names:
                    raise
                from ops import log
                log.warn("%s; %s is left alone" % (e, name))
                choices.append((name, [], []))
    every = {(n, v.version) for n, vs, _ in choices for v in vs}
    scheduled, stored_images = set(), {}
    plan = CleanupPlan(tuple((name, [v.version for v in vs], kept,
                              plan_removal(ctx, name, vs, every, scheduled, stored_images))
                             for name, vs, kept in choices))
    if any(isinstance(a, RemoveImages) for a in plan.actions):
        ctx.rkt    # refuse before removing anything when rkt is missing
    return plan


def plan_pin(ctx, name, version, on):
    """``pin`` (``on``) or ``unpin`` NAME:VERSION: nothing to do when it is so already."""
    command = "pin" if on else "unpin"
    if version is None:
        raise UsageError(name, "%s takes NAME:VERSION (see `ops list %s`)" % (command, name))
    from ops.retention import pin_path
    path = pin_path(ctx.layout, name, version)
    if on and store.get(ctx.layout, name, version) is None:
        raise Refused("%s:%d" % (name, version), "not stored (see `ops list %s`)" % name)
    marks = () if os.path.lexists(path) == on else ((Pin if on else Unpin)(name, version, path),)
    return Plan(command, name, version, None, marks=marks)
