"""Unit files as ops installs them: the drop-in it writes, the digests it
records, and installing or removing a unit's files under /etc/systemd/system.
"""

import os
import errno

from ops import atomic
from ops.layout import template_file

__all__ = ["dropin_text", "pod_env", "read_bytes", "same_file", "digest", "unit_digests", "start_units",
           "all_units", "unit_section", "install_section", "socket_services", "enabled_by_links",
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
    """A file's bytes, or None when it cannot be read (in ops's trees: a link,
    a FIFO, a file over :data:`ops.confine.READ_MAX` bytes)."""
    from ops import confine
    try:
        return confine.read_file(path)
    except OSError:
        return None


def same_file(a, b, read=None):
    """Whether ``a`` and ``b`` are regular files with the same bytes, as
    ``filecmp.cmp(a, b, shallow=False)`` says (OSError when either cannot be
    stat'ed), without importing filecmp for a deploy with nothing to do.  In
    ops's trees neither is followed when a link (:func:`ops.confine.read_file`).
    ``read``: what :func:`ops.confine.read_files` returned for both, when the
    caller compares many files."""
    from ops import confine
    if read is None:
        read = confine.read_files((a, b))
    for got in (read[a], read[b]):
        if isinstance(got, OSError):
            if got.errno in (errno.ENOENT, errno.EACCES, errno.EPERM, errno.EIO):
                raise got
            return False      # a link, a directory, a FIFO, a file too large: not the same
    return read[a] == read[b]


def digest(data):
    return "sha256:" + _sha256(data).hexdigest()


def _sha256(data):
    """SHA-256 from Python's own module (_sha256; _sha2 from 3.12) where it
    has one: hashlib loads OpenSSL first, which costs a fifth of Python's
    start-up, and an unchanged deploy hashes only a few unit files."""
    global _sha256
    import sys
    try:
        if sys.version_info >= (3, 12):
            from _sha2 import sha256
        else:
            from _sha256 import sha256
    except ImportError:
        from hashlib import sha256
    _sha256 = sha256        # looked up once
    return sha256(data)


def unit_digests(units_dir):
    """{unit: digest} of the unit files a version stores (recorded in its
    state.json when it is staged: what ops installs from it)."""
    out = {}
    for n in sorted(os.listdir(units_dir)):
        data = read_bytes(os.path.join(units_dir, n))
        if data is not None:
            out[n] = digest(data)
    return out


def install_section(text):
    """The [Install] section of a unit file's ``text``: {key: [words]}, each
    key's assignments joined as systemd joins them (an empty one resets the
    list), continuation lines and comments as systemd reads them."""
    return unit_section(text, "Install")


def socket_services(units, text):
    """{socket unit name: the service it starts} of the ``.socket`` units
    among ``units`` (each instance of a template), ``text(u)`` giving a
    unit's bytes (None when unknown): its ``Service=``, else the service of
    the same name.  systemd refuses to start a socket while that service
    runs ("Socket service ... already active, refusing").  A socket with
    ``Accept=yes`` starts one instance per connection and is never refused:
    it is left out."""
    out = {}
    for u in units:
        if not u.name.endswith(".socket"):
            continue
        data = text(u)
        section = unit_section(data.decode("utf-8", "replace"), "Socket") if data else {}
        if (section.get("Accept") or ["no"])[-1].lower() in ("yes", "true", "on", "1"):
            continue
        service = (section.get("Service") or [None])[-1]
        for n in u.unit_names:
            out[n] = service or n[:-len(".socket")] + ".service"
    return out


def unit_section(text, name):
    """The section ``name`` of a unit file's ``text``, as :func:`install_section` reads [Install]."""
    out = {}
    section = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        if section != name or "=" not in line:
            continue
        key, _, value = line.partition("=")
        words = value.split()
        if words:
            out.setdefault(key.strip(), []).extend(words)
        else:
            out[key.strip()] = []           # an empty assignment resets the list
    return out


def enabled_by_links(layout, unit, data=None):
    """Offline, from the disk alone: True when every link ``systemctl
    enable`` makes for ``unit`` (its file's WantedBy= and RequiredBy=) is
    there and leads to its file; None when ops cannot tell that way (no such
    links to make, aliases, specifiers, a link missing): ask systemctl then.
    ``data``: the unit file's bytes or the OSError reading it gave, when the
    caller read them (:func:`ops.confine.read_files`)."""
    if data is None:
        data = read_bytes(layout.unit_path(template_file(unit)))
    if data is None or isinstance(data, OSError):
        return None
    section = install_section(data.decode("utf-8", "replace"))
    links = [(t, ".wants") for t in section.get("WantedBy", ())]
    links += [(t, ".requires") for t in section.get("RequiredBy", ())]
    if not links or set(section) - {"WantedBy", "RequiredBy"} \
            or any("%" in t or "/" in t for t, _ in links):
        return None
    for target, kind in links:
        link = os.path.join(layout.unit_dir, target + kind, unit)
        try:
            if os.path.basename(os.readlink(link)) != template_file(unit):
                return None
        except OSError:
            return None
    return True


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
