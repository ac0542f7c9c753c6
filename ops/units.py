"""Unit files as ops installs them: the drop-in it writes, the digests it
records, and installing or removing a unit's files under /etc/systemd/system.
"""

import os

from ops import atomic
from ops.layout import template_file

__all__ = ["dropin_text", "pod_env", "read_bytes", "digest", "unit_digests", "start_units", "all_units",
           "installed", "install_unit", "remove_unit"]


def start_units(units):
    """Names to enable and start: every instance of a ``start`` template."""
    return tuple(n for u in units if u.start for n in u.unit_names)


def all_units(units):
    """Every name systemd may have running or enabled for these units."""
    return tuple(n for u in units for n in u.unit_names)


def pod_env(layout, name, version):
    """The variables a unit of NAME:VERSION gets (its drop-in), as (name, value)."""
    return [("POD_NAME", name), ("POD_VERSION", str(version)),
            ("POD_MANIFEST", layout.host(os.path.join(layout.version_dir(name, version),
                                                      "manifest.json"))),
            ("POD_VOLUMES", layout.host(layout.volumes_dir(name, version)))]


def dropin_text(layout, name, version, unit):
    """The drop-in ops writes for ``unit`` of NAME:VERSION (None: not a service)."""
    if not unit.endswith(".service"):
        return None
    env = pod_env(layout, name, version)
    return ("# Written by ops for pod %s version %d; ops replaces it on every deploy.\n"
            "[Service]\nEnvironment=%s\n" % (name, version,
                                             " ".join('"%s=%s"' % kv for kv in env)))


def read_bytes(path):
    """A file's bytes, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return None


def digest(data):
    import hashlib
    return "sha256:" + hashlib.sha256(data).hexdigest()


def unit_digests(units_dir):
    """{unit: digest} of the unit files a version stores (recorded in its
    state.json when it is staged: what ops installs from it)."""
    out = {}
    for n in sorted(os.listdir(units_dir)):
        data = read_bytes(os.path.join(units_dir, n))
        if data is not None:
            out[n] = digest(data)
    return out


def installed(layout, units):
    """Only units whose file is installed (a template's file for an instance)."""
    return [u for u in units if os.path.lexists(layout.unit_path(template_file(u)))]


def install_unit(layout, sv, unit):
    """Install ``unit`` of stored version ``sv``: its stored copy, and for a
    service the drop-in ops writes."""
    atomic.copy_file(os.path.join(sv.units_dir, unit), layout.unit_path(unit))
    text = dropin_text(layout, sv.name, sv.version, unit)
    if text is not None:
        atomic.write_text(layout.dropin_path(unit), text)


def remove_unit(layout, unit):
    """Remove ``unit``'s file, its drop-in and the drop-in's directory once empty."""
    atomic.remove_quietly(layout.unit_path(unit))
    dropin = layout.dropin_path(unit)
    atomic.remove_quietly(dropin)
    try:
        os.rmdir(os.path.dirname(dropin))
    except OSError:
        pass
