"""Carry out a plan as a transaction: stage, switch, settle, commit.

Like dpkg, everything new is unpacked beside what runs first (``stage``); a
failure there removes what was staged and leaves the running version alone.
Like Mercurial, the switch writes a journal before its first change and
removes it when the pod is whole again; any failure in the switch or the
settle rolls the whole pod back to the previous version (:func:`restore`), and
a run killed half-way is rolled back by the next mutating command
(:mod:`ops.recovery`).
"""

import errno
import json
import os
import shutil

from ops import atomic, index, journal, log, signals, store
from ops.errors import Failed, OpsError, Refused, RollbackFailed
from ops.host import template_file
from ops.plan import all_units, check_install_section, start_units
from ops.rkt import ids_match, image_sha512
from ops.units import Owner, dropin_text, pod_env, unit_digests

__all__ = ["Stager", "transact", "restore", "run_removals"]


# -- stage -------------------------------------------------------------------

class Stager:
    """Runs a plan's ``stage`` actions for a bundle; returns the stored version."""

    def __init__(self, ctx, bundle, plan):
        self.ctx = ctx
        self.layout = ctx.layout
        self.bundle = bundle
        self.plan = plan
        self.downloads = {}        # uri -> local path
        self.fetched = []          # image IDs this run imported
        self.image_ids = {}        # image index -> ID to record
        self.created = []          # directories this run created (removed on failure)
        self.temporary = []        # files removed when staging ends, whatever happens
        self.tmp_version = None

    def run(self):
        try:
            for a in self.plan.stage:
                log.info("%s %s" % (a.verb, a.target))
                getattr(self, "do_" + a.verb.replace("-", "_"))(a)
            return self._finish()
        except OSError as e:
            self._undo()
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            raise Failed(e.filename or self.layout.root, "%s while staging%s; nothing was switched"
                         % (e.strerror or e, ": the disk is full" if full else ""))
        except BaseException:
            self._undo()
            raise
        finally:
            for p in list(self.downloads.values()) + self.temporary:
                atomic.remove_quietly(p)

    def do_download(self, a):
        from ops.fetch import download    # imported when needed: urllib and ssl are slow
        self.downloads[a.target] = download(a.target, self.layout.tmp_dir,
                                            timeout=self.ctx.timeout, ca_file=self.ctx.ca_file)

    def _local(self, art):
        return art.path or self.downloads.get(art.uri)

    def do_store(self, a):
        b, layout = self.bundle, self.layout
        pod_dir = layout.pod_dir(b.name)
        self._makedirs(pod_dir)
        self.tmp_version = os.path.join(pod_dir, "%s%d-%d" % (atomic.TMP_PREFIX, os.getpid(),
                                                              b.version))
        shutil.rmtree(self.tmp_version, ignore_errors=True)
        os.makedirs(os.path.join(self.tmp_version, "units"))
        # files inside the staging directory need no fsync of their directory:
        # _finish renames the directory into place and fsyncs its parent
        atomic.write_bytes(os.path.join(self.tmp_version, "pod.json"), b.raw, sync_dir=False)
        for u in b.units:
            atomic.copy_file(self._local(u.source),
                             os.path.join(self.tmp_version, "units", u.name), sync_dir=False)
        for u in b.units:
            if u.source.uri:      # a downloaded unit: its [Install] is known only now
                with open(os.path.join(self.tmp_version, "units", u.name), "rb") as f:
                    check_install_section(layout, b.name, b.units, u, f.read())
        manifest = dict(b.manifest)
        vols = [v for v in manifest.get("volumes", []) or []
                if not (isinstance(v, dict) and v.get("name") in {x.name for x in b.volumes})]
        for v in b.volumes:
            vols.append({"name": v.name, "kind": "host",
                         "source": layout.host(os.path.join(
                             layout.volumes_dir(b.name, b.version), v.name))})
        if b.volumes:
            manifest["volumes"] = vols
        atomic.write_text(os.path.join(self.tmp_version, "manifest.json"),
                          json.dumps(manifest, indent=2) + "\n", sync_dir=False)

    def do_fetch_image(self, a):
        img = self.bundle.images[a.index]
        where = "%s: ops.images[%d]" % (self.bundle.label, img.index)
        src = self._local(img.source) if (img.source.path or
                                          img.source.uri in self.downloads) else None
        arg = img.source.location
        if src:
            if img.id:
                digest = image_sha512(src)
                if not ids_match(img.id, digest):
                    raise Failed(where, "the image's content does not match its id: %s hashes "
                                 "to %s" % (img.source.location, digest[:39] + "..."))
            arg = src
            if not src.endswith(".aci"):
                arg = os.path.join(self.layout.tmp_dir, "%simage-%d-%d.aci"
                                   % (atomic.TMP_PREFIX, os.getpid(), img.index))
                atomic.remove_quietly(arg)
                os.makedirs(self.layout.tmp_dir, exist_ok=True)
                os.symlink(src, arg)
                self.temporary.append(arg)
        sig = self._local(img.signature) if img.signature else None
        # the store as it is now, not as planned: only an image this run
        # added may be removed again when staging fails
        self.ctx.forget_image_ids()
        before = self.ctx.image_ids()
        printed = self.ctx.rkt.fetch(arg, signature=sig, insecure=sig is None)
        self.ctx.forget_image_ids()
        if not any(ids_match(printed, h) for h in before):
            self.fetched.append(printed)
        if img.id and not ids_match(img.id, printed):
            raise Failed(where, "rkt imported %s, which does not match id %s"
                         % (printed, img.id[:39] + "..."))
        self.image_ids[img.index] = img.id or printed

    def do_unpack_volume(self, a):
        b = self.bundle
        vol = b.volumes[a.index]
        vdir = self.layout.volumes_dir(b.name, b.version)
        self._makedirs(vdir)
        dest = os.path.join(vdir, vol.name)
        from ops import volumes
        volumes.unpack(self._local(vol.data), dest,
                       label="%s: ops.volumes[%d].data (%s)" % (b.label, a.index, vol.data.location))
        self.created.append(dest)

    def _makedirs(self, path):
        """makedirs, remembering the topmost directory it created (for _undo)."""
        top = None
        p = path
        while not os.path.exists(p):
            top = p
            p = os.path.dirname(p)
        if top is not None:
            os.makedirs(path)
            self.created.append(top)

    def _finish(self):
        b = self.bundle
        final = self.layout.version_dir(b.name, b.version)
        stored = store.get(self.layout, b.name, b.version)
        recorded = stored.recorded_images() if stored else []
        ids = [self.image_ids.get(i.index) or i.id or
               (recorded[i.index] if i.index < len(recorded) else None) for i in b.images]
        if self.tmp_version:
            sv = store.StoredVersion(b.name, b.version, self.tmp_version)
            sv.write_state(name=b.name, version=b.version, content=b.content_digest(),
                           source=b.source(), images=ids, outcome="staged",
                           staged_at=store.now(), start_units=list(start_units(b.units)),
                           units=unit_digests(sv.units_dir))
            os.rename(self.tmp_version, final)
            atomic.fsync_dir(os.path.dirname(final))
            self.tmp_version = None
            return store.StoredVersion(b.name, b.version, final)
        if self.image_ids:
            stored.write_state(images=ids)
        return stored

    def _undo(self):
        if self.tmp_version:
            shutil.rmtree(self.tmp_version, ignore_errors=True)
        for d in reversed(self.created):
            shutil.rmtree(d, ignore_errors=True)
        if self.fetched:
            try:
                in_use = {i for p in store.pods(self.layout)
                          for v in store.versions(self.layout, p) for i in v.image_ids()}
                self.ctx.rkt.remove([i for i in self.fetched
                                     if not any(ids_match(i, u) for u in in_use)])
            except OpsError as e:
                log.warn("could not remove images fetched for the failed deploy: %s" % e)


# -- switch ------------------------------------------------------------------

class Switcher:
    """Runs a plan's ``switch`` actions towards ``target`` (None: undeploy)."""

    def __init__(self, ctx, name, target):
        self.ctx = ctx
        self.layout = ctx.layout
        self.sd = ctx.systemd
        self.name = name
        self.target = target

    def run(self, a):
        log.info(a.describe())
        getattr(self, "do_" + a.verb.replace("-", "_"))(a)

    def _present(self, units):
        return installed(self.layout, units)

    def do_stop(self, a):
        self.sd.stop(self._present(a.units))

    def do_disable(self, a):
        self.sd.disable(self._present(a.units))

    def do_remove_unit(self, a):
        remove_unit(self.layout, a.target)

    def do_install_unit(self, a):
        install_unit(self.layout, self.target, a.target)

    def do_daemon_reload(self, a):
        self.sd.daemon_reload()

    def do_enable(self, a):
        self.sd.enable(a.units)

    def do_start(self, a):
        try:
            self.sd.start(a.units)
        except OpsError as e:
            down = self.sd.inactive_units(a.units)
            if down:
                raise self._unit_failure(down[0], "failed to start")
            raise e

    def do_settle(self, a):
        down = self.sd.settle(a.units, self.ctx.settle)
        if down:
            state = self.sd.states([down[0]]).get(down[0], "inactive")
            raise self._unit_failure(down[0], "%s after start (settle time %g s)"
                                     % (state, self.ctx.settle))

    def do_health_check(self, a):
        from ops import health
        health.check(self.ctx, self.target, self.target.bundle().health,
                     dict(pod_env(self.layout, self.target.name, self.target.version)))

    def _unit_failure(self, unit, what):
        why = self.sd.why(unit)
        # read now: the rollback resets the unit (reset-failed) and removes it
        result = self.sd.show([unit], "Result").get(unit, {}).get("Result") or None
        return Failed(unit, what + (": " + why if why else ""), unit=unit, result=result,
                      journal=why or None)

    def do_set_current(self, a):
        store.set_current(self.layout, self.target)

    def do_clear_current(self, a):
        store.clear_current(self.layout, self.name)


def installed(layout, units):
    """Only units whose file is installed (a template's file for an instance)."""
    return [u for u in units if os.path.lexists(layout.unit_path(template_file(u)))]


def install_unit(layout, sv, unit):
    atomic.copy_file(os.path.join(sv.units_dir, unit), layout.unit_path(unit))
    text = dropin_text(layout, sv.name, sv.version, unit)
    if text is not None:
        atomic.write_text(layout.dropin_path(unit), text)


def remove_unit(layout, unit):
    atomic.remove_quietly(layout.unit_path(unit))
    dropin = layout.dropin_path(unit)
    atomic.remove_quietly(dropin)
    try:
        os.rmdir(os.path.dirname(dropin))
    except OSError:
        pass


def transact(ctx, plan, target, previous):
    """Run ``plan.switch`` under a journal and record the outcome; on any
    failure roll the pod back to ``previous`` and raise (exit 1, or exit 4
    when the rollback fails too)."""
    name = plan.name
    jr = journal.Journal(ctx.layout, name, previous.version if previous else None,
                         target.version if target else None, plan.command)
    try:
        jr.open()
    except OSError as e:
        jr.close()
        _record_quietly(target, "failed")
        raise Failed(jr.path, "cannot write the journal: %s; nothing was switched"
                     % (e.strerror or e))
    sw = Switcher(ctx, name, target)
    try:
        for a in plan.switch:
            sw.run(a)
        signals.hold()                # committing: from here on ops finishes what it began
        if target is not None:
            target.record("ok")       # inside: a failure to record is a failed switch
    except (OpsError, OSError, KeyboardInterrupt) as e:
        if isinstance(e, OpsError):
            cause = e
        elif isinstance(e, KeyboardInterrupt):
            cause = Failed(name, "interrupted by %s during the switch"
                           % signals.Interrupted.name_of(e))
        else:
            cause = Failed(e.filename or name, e.strerror or str(e))
        back = "version %d" % previous.version if previous else "nothing"
        log.info("%s failed: %s; rolling back to %s" % (plan.command, cause, back))
        signals.hold()                # a rollback is bounded: let it finish
        try:
            restore(ctx, name, previous, [target] if target and target != previous else [])
            if target is not None and target != previous:
                target.record("failed", reason=cause.stored_reason())
        except (OpsError, OSError) as e2:
            raise RollbackFailed(name, "%s failed (%s) and rolling back to %s failed too (%s); "
                                 "the journal %s is kept: run `ops redeploy %s%s` or any "
                                 "mutating command to retry the rollback"
                                 % (plan.command, cause, back, e2, jr.path, name,
                                    ":%d" % previous.version if previous else ""))
        jr.close()
        raise Failed(cause.where, "%s; rolled back to %s" % (
            cause.what, previous.version if previous else "nothing (no unit of %s is "
            "installed)" % name), unit=cause.unit, result=cause.result, journal=cause.journal,
            rolled_back=True)
    jr.close()


def _record_quietly(sv, outcome):
    try:
        if sv is not None:
            sv.record(outcome)
    except OSError:
        pass


def restore(ctx, name, good, bad):
    """Make pod ``name`` run ``good`` (a stored version, or nothing) again,
    whatever mix of units the versions in ``bad`` left installed."""
    layout, sd = ctx.layout, ctx.systemd
    good_units = good.bundle().units if good else ()
    bad_units = [u for b in bad if b is not None for u in b.bundle().units]
    owner = Owner(layout, name)
    foreign = {u.name: owner.foreign(u.name) for u in bad_units}
    # a unit whose file is not the pod's (an administrator's, put there since) is left alone
    sd.stop_and_disable_quietly(installed(layout, all_units(
        [u for u in bad_units if foreign[u.name] is None])))
    keep = {u.name for u in good_units}
    for u in bad_units:
        if u.name in keep:
            continue
        if foreign[u.name] is None:
            remove_unit(layout, u.name)
        else:
            log.warn("%s is not what ops installed for %s: left in place" % (foreign[u.name], name))
    for u in good_units:
        foreign = owner.foreign(u.name)
        if foreign is not None:
            raise Failed(foreign, "is not what ops installed for %s, and ops does not overwrite "
                         "it; move it away" % name)
        install_unit(layout, good, u.name)
    starts = start_units(good_units)
    sd.enable(starts)
    sd.daemon_reload()
    if starts:
        sd.start(starts)
        down = sd.settle(starts, ctx.settle)
        if down:
            raise Failed(down[0], "is not active after the rollback")
    if good is not None:
        store.set_current(layout, good)
    else:
        store.clear_current(layout, name)


def run_removals(ctx, actions):
    if actions:
        signals.hold()
    for a in actions:
        log.info(a.describe())
        if a.verb in ("remove-version", "remove-volumes"):
            store.remove_tree(ctx.layout.path(a.target.lstrip("/")))
            if a.verb == "remove-version":     # a stale pin (pinned versions are refused)
                atomic.remove_quietly(ctx.layout.path(a.target.lstrip("/")) + index.PINNED)
            parent = os.path.dirname(ctx.layout.path(a.target.lstrip("/")))
            store.remove_if_empty(parent)      # the pod's directory, once empty
        elif a.verb == "remove-images":
            try:
                ctx.rkt.remove(a.units)
            except OpsError as e:
                # the versions are gone already; images are rkt's cache, and
                # `rkt image gc` reclaims them: a warning, not a failure
                log.warn("images not removed from rkt's store (%s): %s"
                         % (" ".join(a.units), e))
        else:
            raise Refused(a.verb, "not a removal")

