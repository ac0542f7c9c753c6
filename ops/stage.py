"""Staging: everything a new version needs, written beside what runs.

Like dpkg's unpack, a plan's ``stage`` steps (downloads, the version's
directory, images, volumes) change nothing that runs; the version directory
is written under a temporary name and renamed into place last.  A failure
removes what this run staged (and the images it imported that no stored
version uses) and leaves the running version alone: exit 1, nothing
switched.  What a killed run staged is removed by the next mutating command
(:func:`ops.transaction.recover`).
"""

import errno
import gc
import json
import os

from ops import atomic, confine, log, store
from ops.actions import Download, FetchImage, StoreVersion, UnpackVolume
from ops.errors import Failed, OpsError
from ops.ownership import check_install_section
from ops.actions import did
from ops.rkt import ids_match, image_sha512
from ops.units import start_units, unit_digests

__all__ = ["Stager"]


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
        self.volume_digests = {}   # volume name -> sha256 of its archive (for `ops diff`)
        self.created = []          # directories this run created (removed on failure)
        self.temporary = []        # files removed when staging ends, whatever happens
        self.tmp_version = None

    def run(self):
        gc.enable()      # off while ops only looked (see cli.main): staging has no size bound
        steps = {Download: self.download, StoreVersion: self.store,
                 FetchImage: self.fetch_image, UnpackVolume: self.unpack_volume}
        try:
            for a in self.plan.stage:
                log.info(a.describe())
                did(self.ctx, a)
                steps[type(a)](a)
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

    def download(self, a):
        from ops.fetch import download    # imported when needed: urllib and ssl are slow
        self.downloads[a.uri] = download(a.uri, self.layout.tmp_dir,
                                         timeout=self.ctx.timeout, ca_file=self.ctx.ca_file)

    def _local(self, art):
        return art.path or self.downloads.get(art.uri)

    def store(self, a):
        b, layout = self.bundle, self.layout
        pod_dir = layout.pod_dir(b.name)
        self._makedirs(pod_dir)
        self.tmp_version = os.path.join(pod_dir, "%s%d-%d" % (atomic.TMP_PREFIX, os.getpid(),
                                                              b.version))
        atomic.remove_tree_quietly(self.tmp_version)
        confine.makedirs(os.path.join(self.tmp_version, "units"), exist_ok=False)
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
        ours = {x.name for x in b.volumes}
        given = {v["name"]: v for v in manifest.get("volumes", []) or []
                 if isinstance(v, dict) and v.get("name") in ours}
        vols = [v for v in manifest.get("volumes", []) or []
                if not (isinstance(v, dict) and v.get("name") in ours)]
        for v in b.volumes:
            vols.append(_host_volume(v.name, layout.host(os.path.join(
                layout.volumes_dir(b.name, b.version), v.name)), given.get(v.name)))
        if b.volumes:
            manifest["volumes"] = vols
        atomic.write_text(os.path.join(self.tmp_version, "manifest.json"),
                          json.dumps(manifest, indent=2) + "\n", sync_dir=False)

    def fetch_image(self, a):
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
                confine.symlink(src, arg, create_dirs=True)
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

    def unpack_volume(self, a):
        b = self.bundle
        vol = b.volumes[a.index]
        vdir = self.layout.volumes_dir(b.name, b.version)
        self._makedirs(vdir)
        dest = os.path.join(vdir, vol.name)
        from ops import volumes
        from ops.records import _file_digest
        self.volume_digests[vol.name] = "sha256:" + _file_digest(self._local(vol.data)).hex()
        volumes.unpack(self._local(vol.data), dest,
                       label="%s: ops.volumes[%d].data (%s)" % (b.label, a.index, vol.data.location))
        self.created.append(dest)
        if vol.owner is not None:
            from ops import owners
            where = "%s: ops.volumes[%d].owner" % (b.label, a.index)
            try:
                uid, gid = owners.resolve(vol.owner, self.layout.root)
                owners.chown_tree(dest, uid, gid)
            except LookupError as e:
                raise Failed(where, str(e))
            except OSError as e:
                raise Failed(where, "%s: %s" % (vol.owner, e.strerror or e))

    def _makedirs(self, path):
        """makedirs, remembering the topmost directory it created (for _undo)."""
        top = confine.makedirs(path)
        if top is not None:
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
                           units=unit_digests(sv.units_dir), volumes=self.volume_digests)
            confine.rename(self.tmp_version, final, sync=True)
            self.tmp_version = None
            return store.StoredVersion(b.name, b.version, final)
        if self.image_ids:
            stored.write_state(images=ids)
        return stored

    def _undo(self):
        if self.tmp_version:
            atomic.remove_tree_quietly(self.tmp_version)
        for d in reversed(self.created):
            atomic.remove_tree_quietly(d)
        if self.fetched:
            try:
                in_use = {i for p in store.pods(self.layout)
                          for v in store.versions(self.layout, p) for i in v.image_ids()}
                self.ctx.rkt.remove([i for i in self.fetched
                                     if not any(ids_match(i, u) for u in in_use)])
            except OpsError as e:
                log.warn("could not remove images fetched for the failed deploy: %s" % e)


# What an "empty" volume may say that a "host" volume must not (appc: an error).
_NOT_FOR_HOST = ("name", "kind", "source", "mode", "uid", "gid")


def _host_volume(name, source, given):
    """The manifest.json entry of ops volume ``name`` at ``source``: the options
    of the bundle manifest's own entry of that name (``given``, or None) kept,
    and ``readOnly`` always said (false unless the bundle says otherwise):
    stage1-fly gives a volume without it the setting of a mount point."""
    vol = {"name": name, "kind": "host", "source": source}
    for k, v in (given or {}).items():
        if k not in _NOT_FOR_HOST:
            vol[k] = v
    vol.setdefault("readOnly", False)
    return vol
