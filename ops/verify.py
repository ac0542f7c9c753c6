"""`check`: a unit file systemd cannot parse is refused, by asking
``systemd-analyze verify`` where it is installed (one call for every unit).

The units are verified as they would be installed: in a temporary directory
under their own names, each service with the drop-in ops writes (so the
``POD_*`` variables are defined), that directory first in the unit search
path.  What counts as "cannot parse" is what systemd itself would drop or
refuse at load time: a complaint about a line of the file that ends in
"ignoring" (an unknown section or key, a value that does not parse, an
assignment outside a section), and a unit systemd refuses ("bad unit file
setting", "fatal error").  The rest of what verify says depends on the host
``check`` runs on, not on the file: an ``ExecStart`` binary or a dependency
that only exists on the target, a missing man page; that is not refused.
"""

import os
import re

from ops.errors import BundleError

__all__ = ["verify_units"]

_LINE = re.compile(r"^(?P<path>/.+?):(?P<line>\d+): (?P<what>.+)$")
_REFUSED = ("Refusing.", "has a bad unit file setting", "has fatal error")


def verify_units(bundle):
    """Raise BundleError for the first local unit file systemd cannot parse;
    do nothing when ``systemd-analyze`` is not installed."""
    import shutil
    tool = shutil.which("systemd-analyze")
    units = [u for u in bundle.units if u.source.path]
    if tool is None or not units:
        return
    import tempfile
    from ops.units import dropin_text
    from ops.layout import Layout
    from ops.runner import run
    from ops.store import StoredVersion
    layout = Layout("/")
    sv = StoredVersion(bundle.name, bundle.version,
                       layout.version_dir(bundle.name, bundle.version))
    with tempfile.TemporaryDirectory(prefix="ops-verify-") as tmp:
        paths = {}
        for u in units:
            path = os.path.join(tmp, _verify_name(u.name, bundle))
            shutil.copyfile(u.source.path, path)
            paths[path] = u
            if u.name.endswith(".service"):
                os.mkdir(path + ".d")
                with open(os.path.join(path + ".d", "50-ops.conf"), "w") as f:
                    f.write(dropin_text(layout, sv.name, sv.version, u.name))
        env = dict(os.environ, SYSTEMD_UNIT_PATH=tmp + ":")   # ":": then the usual paths
        proc = run([tool, "verify", "--man=no", "--"] + list(paths), check=False, env=env)
    _refuse(bundle, paths, (proc.stderr + "\n" + proc.stdout).splitlines())


def _verify_name(name, bundle):
    """The name ``name`` is verified under: systemd-analyze 252 cannot load a
    unit whose name holds ':' ("Couldn't process aliases") and verifies
    nothing then, so such a unit is verified as the same name with '_x3a_'
    for each ':' (unless the bundle has a unit of that name too)."""
    other = name.replace(":", "_x3a_")
    return other if other == name or all(u.name != other for u in bundle.units) else name


def _refuse(bundle, paths, lines):
    by_name = {os.path.basename(p): u for p, u in paths.items()}     # verified name -> unit
    notes, bad = {}, {}     # unit name -> [(line number, complaint)]; -> why it is bad
    for text in lines:
        text = text.strip()
        m = _LINE.match(text)
        if m and m.group("path") in paths:
            name, what = paths[m.group("path")].name, m.group("what")
            notes.setdefault(name, []).append("line %s: %s" % (m.group("line"), what))
            if "ignoring" in what.lower():
                bad.setdefault(name, notes[name][-1])
        elif any(r in text for r in _REFUSED):
            # "NAME: ... Refusing." or "Unit NAME has ...": NAME may hold ':' itself
            found = next((n for n in by_name if text.startswith((n + ":", "Unit %s " % n))), None)
            if found is not None:
                name = by_name[found].name
                bad.setdefault(name, (notes.get(name) or [text.replace(found, name, 1)])[-1])
    verified = set(map(id, paths.values()))
    for i, u in enumerate(bundle.units):
        if u.name in bad and id(u) in verified:
            raise BundleError("%s: ops.systemd-units[%d].unit-file" % (bundle.label, i),
                              "%s: systemd cannot parse it (systemd-analyze verify): %s"
                              % (u.source.location, bad[u.name]))
