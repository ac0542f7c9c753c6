"""rkt, as SPEC §5 and the rkt 1.30 reference describe it.

``rkt fetch IMAGE --signature=SIG`` (the signature after its image), the
printed ID matched by prefix in either direction, ``image list
--format=json`` for what the store holds, ``image rm`` (which exits 0 for a
missing ID).  Offline, rkt gets ``--dir`` and ``--local-config`` under ROOT.
"""

import os

from ops import strict_json
from ops.errors import Failed, Refused, UsageError
from ops.runner import run

__all__ = ["Rkt", "find_rkt", "ids_match", "image_sha512"]


def find_rkt(option=None):
    """--rkt PATH, else $OPS_RKT, else rkt on PATH; None when there is none."""
    cand = option
    if not option:
        from ops import environment
        env = environment.get("OPS_RKT")        # named, so never silently another rkt or none
        if env:
            return env
        import shutil           # here: it imports bz2 and lzma, which most commands never need
        cand = shutil.which("rkt")
    if cand and os.path.isfile(cand) and os.access(cand, os.X_OK):
        return cand
    if option:
        raise UsageError("rkt", "--rkt names %r, which is not an executable file" % cand)
    return None


def ids_match(a, b):
    """appc IDs match when either hex part is a prefix of the other."""
    if not (a and b and a.startswith("sha512-") and b.startswith("sha512-")):
        return False
    ha, hb = a[7:], b[7:]
    return len(ha) >= 2 and len(hb) >= 2 and (ha.startswith(hb) or hb.startswith(ha))


def image_sha512(path):
    """SHA-512 of the uncompressed tar, as appc defines the image ID."""
    import bz2
    import gzip
    import hashlib
    import lzma
    from ops.archive import compression_from_magic
    from ops.records import hash_stream
    with open(path, "rb") as f:
        kind = compression_from_magic(f.read(6))
    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(kind, open)
    try:
        with opener(path, "rb") as f:
            h = hash_stream(f, hashlib.sha512())
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise Failed(path, "cannot read the image: %s" % e)
    return "sha512-" + h.hexdigest()


class Rkt:
    def __init__(self, layout, path):
        self.layout = layout
        self.path = path

    def _argv(self, *args):
        argv = [self.path]
        if self.layout.offline:
            argv += ["--dir=" + self.layout.rkt_dir,
                     "--local-config=" + self.layout.rkt_config]
        return argv + list(args)

    def list_ids(self):
        proc = run(self._argv("image", "list", "--format=json"))
        try:
            data = strict_json.loads(proc.stdout or "null") or []
            return [str(item["id"]) for item in data]
        except (ValueError, TypeError, KeyError):
            raise Failed("rkt image list", "unexpected output: %r" % proc.stdout[:200])

    def fetch(self, image, signature=None, insecure=False):
        """Import ``image`` (a path ending in .aci, or a name/URI rkt fetches);
        return the ID rkt printed."""
        if image.startswith("-"):      # validation refuses it; never an option to rkt
            raise Refused("rkt fetch", "%r would be read as an option" % image)
        args = ["--insecure-options=image"] if insecure else []
        args += ["fetch", image]
        if signature:
            args.append("--signature=" + signature)
        proc = run(self._argv(*args))
        printed = [l.strip() for l in proc.stdout.splitlines() if l.strip()]
        if not printed or not printed[-1].startswith("sha512-"):
            raise Failed("rkt fetch %s" % image, "printed no image ID (%r)" % proc.stdout[:200])
        return printed[-1]

    def remove(self, ids):
        ids = list(ids)
        for i in ids:                 # read from state.json: only IDs reach rkt's argv
            if not (isinstance(i, str) and i.startswith("sha512-") and len(i) > 7
                    and all(c in "0123456789abcdef" for c in i[7:])):
                raise Refused("rkt image rm", "%r is not an image ID" % (i,))
        if ids:
            run(self._argv("image", "rm", *ids))


def require(path, why):
    if not path:
        raise UsageError("rkt", "not found (%s): install rkt, or give --rkt PATH or $OPS_RKT"
                         % why)
    return path
