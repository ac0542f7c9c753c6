"""`ops diff NAME[:A] TARGET`: what would change between two versions of a pod.

TARGET is a stored version (``NAME:B``, or ``NAME`` for the current one) or a
bundle: an argument holding a ``/`` or naming an existing directory or file.
Reads only: no lock, nothing written, the same offline and live.  The text
is a unified diff of every unit file, then one line per other change
(images, volumes, instances of a template, start units, health check); the
same changes are the ``changes`` list of ``--json``.
"""

import difflib
import os

from ops import store
from ops.errors import Refused

__all__ = ["diff", "is_bundle_arg"]


class _Side:
    """One side of a diff: its label, unit files (name -> bytes or None),
    and the bundle records besides them."""

    def __init__(self, label, bundle, paths, image_ids, volume_digests):
        self.label = label
        self.bundle = bundle
        self.units = {u.name: u for u in bundle.units}
        self.texts, self.unreadable = {}, {}
        for unit, path in paths.items():
            if path is None:
                continue
            try:
                self.texts[unit] = _read(path)
            except OSError as e:          # too large, gone, not a file: not compared
                self.unreadable[unit] = "cannot read %s: %s" % (path, e.strerror or e)
        self.images = [(image_ids[i.index] if i.index < len(image_ids) and image_ids[i.index]
                        else i.id, i.source.location) for i in bundle.images]
        self.volumes = {v.name: {"data": v.data.location, "owner": v.owner,
                                 "readOnly": _read_only(bundle.manifest, v.name),
                                 "content": volume_digests.get(v.name)}
                        for v in bundle.volumes}
        self.health = bundle.health._asdict() if bundle.health else None


def is_bundle_arg(arg):
    """A bundle, not a stored version: a path (with a ``/``) or an existing file
    or directory."""
    return "/" in arg or os.path.lexists(arg)


def _read_only(manifest, name):
    for v in manifest.get("volumes") or ():
        if isinstance(v, dict) and v.get("name") == name:
            return bool(v.get("readOnly", False))
    return False


def stored_side(layout, ref):
    name, version = store.parse_ref(ref)
    if version is None:
        sv = store.current_version(layout, name)
        if sv is None:
            stored = [v.version for v in store.versions(layout, name)]
            raise Refused(ref, "no current version of %s%s" % (
                name, " (stored: %s; give NAME:VERSION)" % " ".join(map(str, stored))
                if stored else ": no such pod (see `ops list`)"))
    else:
        sv = store.get(layout, name, version)
        if sv is None:
            stored = [v.version for v in store.versions(layout, name)]
            raise Refused(ref, "version %d of %s is not stored (%s)" % (
                version, name, "stored: " + " ".join(map(str, stored)) if stored
                else "no such pod: see `ops list`"))
    try:
        b = sv.bundle()
    except (OSError, ValueError) as e:
        raise Refused(sv.pod_json, "cannot read the stored manifest: %s"
                      % (getattr(e, "strerror", None) or e))
    paths = {u.name: os.path.join(sv.units_dir, u.name) for u in b.units}
    st = sv.state()
    digests = st.get("volumes") if isinstance(st.get("volumes"), dict) else {}
    side = _Side("%s:%d" % (name, sv.version), b, paths, sv.recorded_images(), digests)
    side.name, side.version = name, sv.version
    return side


def bundle_side(arg, insecure_images=False):
    from ops import bundle as bundle_mod
    from ops.records import _file_digest
    b = bundle_mod.load(arg, insecure_images=insecure_images)
    paths = {u.name: u.source.path for u in b.units}
    digests = {v.name: "sha256:" + _file_digest(v.data.path).hex() for v in b.volumes
               if v.data.path}
    label = arg if os.path.isdir(arg) else os.path.dirname(arg) or "."
    return _Side(label.rstrip("/") or label, b, paths, [], digests)


def _read(path):
    from ops import confine
    return confine.read_file(path)


def diff(layout, ref_a, target, insecure_images=False):
    """(name, version of ``ref_a``, differs, text, changes) from stored version
    ``ref_a`` to ``target``."""
    a = stored_side(layout, ref_a)
    b = bundle_side(target, insecure_images) if is_bundle_arg(target) \
        else stored_side(layout, target)
    if b.bundle.name != a.name:     # a mistyped target would read as a pod rewritten whole
        raise Refused(target, "is pod %s, not %s: ops diff compares two versions of one pod"
                      % (b.bundle.name, a.name))
    lines, changes = [], []
    for unit in sorted(set(a.units) | set(b.units)):
        remote = unit in b.units and b.units[unit].source.uri
        if remote:          # not downloaded by a command that reads only
            changes.append({"kind": "unit", "name": unit, "change": "unknown"})
            lines.append("unit %s: its file is remote (%s): not compared\n" % (unit, remote))
            continue
        unreadable = a.unreadable.get(unit) or b.unreadable.get(unit)
        if unreadable:
            changes.append({"kind": "unit", "name": unit, "change": "unknown"})
            lines.append("unit %s: %s: not compared\n" % (unit, unreadable))
            continue
        ta, tb = a.texts.get(unit), b.texts.get(unit)
        if ta == tb and (unit in a.units) == (unit in b.units):
            continue
        la = "%s/%s" % (a.label, unit) if unit in a.units else "/dev/null"
        lb = "%s/%s" % (b.label, unit) if unit in b.units else "/dev/null"
        if _binary(ta) or _binary(tb):
            lines.append("Binary files %s and %s differ\n" % (la, lb))
        else:
            lines.extend(difflib.unified_diff(_lines(ta), _lines(tb), la, lb))
        changes.append({"kind": "unit", "name": unit, "change": "added" if unit not in a.units
                        else "removed" if unit not in b.units else "changed"})
    lines = [line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
             for line in lines]
    said = []
    _images(a, b, changes, said)
    _volumes(a, b, changes, said)
    _units(a, b, changes, said)
    if a.health != b.health:
        changes.append({"kind": "health", "name": None, "from": a.health, "to": b.health})
        said.append("health: %s -> %s" % (_health(a.bundle), _health(b.bundle)))
    text = "".join(lines) + "".join(s + "\n" for s in said)
    return a.name, a.version, bool(changes), _printable(text), changes


def _binary(data):
    """A unit file diff shows as GNU diff does: one holding a NUL byte."""
    return data is not None and b"\0" in data


def _lines(data):
    """The lines of a unit file, split at newlines only (a form feed or a
    vertical tab is no line end to systemd); bytes that are not UTF-8 are
    shown as ``\\xNN``."""
    if data is None:
        return []
    parts = data.decode("utf-8", "backslashreplace").split("\n")
    last = parts.pop()
    return [p + "\n" for p in parts] + ([last] if last else [])


def _printable(text):
    """``text`` as the terminal may show it: each line's control characters
    (an escape sequence, a carriage return) escaped as ``\\x1b``, ``\\r``;
    tabs and line ends kept."""
    from ops.log import escape
    return escape(text, keep="\t\n")


def _images(a, b, changes, said):
    def key(image):
        return image[0] or image[1]
    keys_b = {key(i) for i in b.images}
    keys_a = {key(i) for i in a.images}
    for change, side, others in (("removed", a, keys_b), ("added", b, keys_a)):
        for image_id, location in side.images:
            if key((image_id, location)) not in others:
                changes.append({"kind": "image", "name": location, "change": change,
                                "id": image_id})
                said.append("image %s: %s%s" % (change, image_id or location,
                                                " (%s)" % location if image_id else ""))


def _volumes(a, b, changes, said):
    for name in sorted(set(a.volumes) | set(b.volumes)):
        va, vb = a.volumes.get(name), b.volumes.get(name)
        if va is None or vb is None:
            changes.append({"kind": "volume", "name": name,
                            "change": "added" if va is None else "removed"})
            said.append("volume %s: %s" % ("added" if va is None else "removed", name))
            continue
        for field in ("content", "readOnly", "owner"):
            if field == "content" and (va[field] is None or vb[field] is None):
                if va["data"] != vb["data"]:      # no digest recorded: the file named, then
                    changes.append({"kind": "volume", "name": name, "change": "changed",
                                    "field": "data", "from": va["data"], "to": vb["data"]})
                    said.append("volume %s: data %s -> %s" % (name, va["data"], vb["data"]))
                continue
            if va[field] != vb[field]:
                changes.append({"kind": "volume", "name": name, "change": "changed",
                                "field": field, "from": va[field], "to": vb[field]})
                said.append("volume %s: %s %s -> %s" % (name, field, _show(va[field]),
                                                        _show(vb[field])))


def _units(a, b, changes, said):
    for name in sorted(set(a.units) & set(b.units)):
        ua, ub = a.units[name], b.units[name]
        if ua.start != ub.start:
            changes.append({"kind": "start", "name": name, "from": ua.start, "to": ub.start})
            said.append("unit %s: start %s -> %s" % (name, _show(ua.start), _show(ub.start)))
        ia, ib = list(ua.instances or ()), list(ub.instances or ())
        if ia != ib:
            added = [i for i in ib if i not in ia]
            removed = [i for i in ia if i not in ib]
            changes.append({"kind": "instances", "name": name, "added": added,
                            "removed": removed})
            said.append("instances %s: %s" % (name, "; ".join(
                p for p in ("added " + " ".join(added) if added else "",
                            "removed " + " ".join(removed) if removed else "") if p)
                or "reordered"))


def _show(v):
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _health(b):
    h = b.health
    if h is None:
        return "none"
    return "%s (timeout %g, retries %d, interval %g)" % (h.describe(), h.timeout, h.retries,
                                                        h.interval)
