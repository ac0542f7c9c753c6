"""The records a bundle is read into (SPEC §1): Artifact, UnitSpec,
ImageSpec, VolumeSpec, HealthSpec and Bundle, immutable, and the content
digest that tells one version's bytes from another's.

:mod:`ops.bundle` builds them from a manifest and checks every rule; nothing
here validates.  A stored version's pod.json is parsed back into the same
records.
"""

import os
import time
from ops.structs import struct

__all__ = ["Artifact", "UnitSpec", "ImageSpec", "VolumeSpec", "HealthSpec", "Bundle",
           "SETTLED", "stat_key", "hash_stream"]

# A file's stat is recorded beside the content digest only if it last changed
# this many seconds before ops read it: a later change then shows in the ctime
# even on a filesystem with 2-second timestamps (vfat).
SETTLED = 2.0

# The records are tuples with named fields (ops.structs), not dataclasses:
# immutable all the same, and they cost nothing at start-up (dataclasses and typing cost ~10 ms there,
# paid by every Ansible run of `ops deploy`).

class Artifact(struct("Artifact", "location path uri", defaults=(None, None))):
    """A file the bundle points at: a local file (``path``, absolute) or a
    remote one (``uri``)."""
    __slots__ = ()


class UnitSpec(struct("UnitSpec", "name source start instances")):
    """``name`` is the unit name (the file's name); ``instances`` a tuple of
    instance names for a template, else None."""
    __slots__ = ()

    @property
    def unit_names(self):
        """Names systemd acts on: each instance of a template, else the unit."""
        if self.instances is None:
            return (self.name,)
        stem, suffix = self.name.split("@", 1)
        return tuple("%s@%s%s" % (stem, i, suffix) for i in self.instances)


class ImageSpec(struct("ImageSpec", "index id source signature")):
    """``source`` is a path or a uri (which may be docker:// or a name)."""
    __slots__ = ()


class VolumeSpec(struct("VolumeSpec", "name data owner", defaults=(None,))):
    """``owner``: the "USER[:GROUP]" the whole unpacked tree is given, or None."""
    __slots__ = ()


class HealthSpec(struct("HealthSpec", "exec http status timeout retries interval")):
    """The pod's health check: ``exec`` (argv tuple) or ``http`` (a URL whose
    answer must have ``status``); each attempt bounded by ``timeout`` seconds,
    repeated up to ``retries`` more times, ``interval`` seconds apart."""
    __slots__ = ()

    def describe(self):
        if self.http:
            return "GET %s, expect %d" % (self.http, self.status)
        return "exec " + " ".join(self.exec)


class Bundle(struct("Bundle", "label directory raw manifest name version units images "
                                  "volumes manifest_stat health", defaults=(None, None))):
    """``label`` is the manifest path as the user named it; ``directory``
    where relative artifacts resolve (None for a stored copy); ``raw`` the
    manifest's bytes; ``manifest_stat`` (absolute path, stat key, time the
    reading began) of the file they were read from, when it did not change
    while being read.  (No
    ``__slots__``: the instance keeps its digest.)"""

    @property
    def artifacts(self):
        for u in self.units:
            yield "unit", u.source
        for i in self.images:
            yield "image", i.source
            if i.signature:
                yield "signature", i.signature
        for v in self.volumes:
            yield "volume", v.data

    def content_digest(self, known=None):
        """What makes a version: pod.json's bytes plus every local artifact's
        bytes; a remote artifact counts by its URI.  Computed once.

        ``known`` is the state of the stored version with this name and
        version.  When its ``source`` (the files it was staged from, and
        what stat said of them) is what stat says of this bundle's files now,
        its ``content`` is the answer and no file is read again: an unchanged
        re-deploy (each Ansible run) costs the same with a 1 GiB volume.  As
        in git's index, the key holds the ctime, which no one can set back, and
        is recorded only for files last changed over ``SETTLED`` seconds before
        they were read (see :meth:`source`)."""
        cached = getattr(self, "_digest", None)
        if cached:
            return cached
        if known and isinstance(known.get("content"), str) and known.get("source") \
                and known["source"] == self._files_now():
            self._digest = known["content"]
            return self._digest
        import hashlib
        started = time.time()
        before = self._files_now()
        h = hashlib.sha256()
        h.update(b"pod.json\0%d\0" % len(self.raw))
        h.update(self.raw)
        for role, art in self.artifacts:
            if art.path:
                h.update(("\0%s\0%s\0" % (role, art.location)).encode())
                h.update(_file_digest(art.path))
            else:
                h.update(("\0%s-uri\0%s\0" % (role, art.uri or art.location)).encode())
        digest = "sha256:" + h.hexdigest()
        # pod.json was read when the bundle was loaded, perhaps long before
        # (the lock wait): its bytes are only as settled as they were then
        settled = int((min(started, self.manifest_stat[2] if self.manifest_stat else started)
                       - SETTLED) * 1e9)
        if before and before == self._files_now() \
                and all(key[-1] < settled for _, key in before):
            self._source = before
        self._digest = digest       # caches: the attributes that are not fields
        return digest

    def source(self):
        """What to record as ``source`` beside the content digest: the local
        files and their stat keys, or None when a file changed too recently
        (within ``SETTLED`` seconds of reading it) to be told apart by stat
        later."""
        self.content_digest()
        return getattr(self, "_source", None)

    def _files_now(self):
        """[(path, stat key)] for pod.json as read and each local artifact,
        or None (a stored copy; a file changed while read; a file gone)."""
        if self.manifest_stat is None:
            return None
        out = [list(self.manifest_stat[:2])]
        try:
            if stat_key(os.stat(self.manifest_stat[0])) != self.manifest_stat[1]:
                return None
            for _, art in self.artifacts:
                if art.path:
                    out.append([art.path, stat_key(os.stat(art.path))])
        except OSError:
            return None
        return out


def stat_key(st):
    """What stat says of a file's content (as in git's index: the ctime is
    there because no one can set it back)."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _file_digest(path):
    import hashlib
    with open(path, "rb") as f:
        return hash_stream(f, hashlib.sha256()).digest()


def hash_stream(f, h):
    """Feed every byte the binary file object ``f`` reads to the hash ``h``,
    1 MiB at a time; return ``h``."""
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return h
        h.update(chunk)
