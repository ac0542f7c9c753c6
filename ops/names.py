"""The names ops accepts (SPEC §1): pod and volume names, unit and instance
names, image IDs, and which artifact locations are remote.

Only ``re`` is imported: :mod:`ops.store` and :mod:`ops.journal` check a pod
name with :func:`is_pod_name` without loading the bundle's validation.
"""

import re

__all__ = ["NAME_RE", "MAX_NAME_LENGTH", "is_pod_name", "is_remote", "UNIT_SUFFIXES",
           "UNIT_RE", "UNIT_NAME_MAX", "INSTANCE_RE", "IMAGE_ID_RE", "unit_name_problem"]

# An AC Name without '/': a pod's name, a volume's name (it names a
# directory), the stem of a journal file.
NAME_RE = re.compile(r"[a-z0-9]+([-.][a-z0-9]+)*")
MAX_NAME_LENGTH = 128
UNIT_SUFFIXES = ("service", "socket", "timer", "path", "target", "mount",
                 "automount", "slice")
# systemd's unit_name_is_valid(): letters, digits and ":-_.\\" (the backslash
# of systemd-escape's "\x2d"); one optional '@' before the suffix (a template)
UNIT_RE = re.compile(r"([A-Za-z0-9:_.\\\-]+?)(@?)\.(%s)" % "|".join(UNIT_SUFFIXES))
UNIT_NAME_MAX = 255              # systemd: a unit name is shorter than UNIT_NAME_MAX (256)
# systemd refuses templates (and so instances) of these unit types
NO_TEMPLATE_SUFFIXES = ("mount", "automount", "slice")
INSTANCE_RE = re.compile(r"[A-Za-z0-9:_.\-]+")
IMAGE_ID_RE = re.compile(r"sha512-[0-9a-f]{32,128}")
_REMOTE_SCHEMES = ("http://", "https://")


def is_pod_name(text):
    """True when ``text`` is a valid pod (or volume) name: lower-case letters
    and digits separated by single '-' or '.', at most 128 characters."""
    return (isinstance(text, str) and len(text) <= MAX_NAME_LENGTH
            and NAME_RE.fullmatch(text) is not None)


def is_remote(location):
    """True when ``location`` is an ``http://`` or ``https://`` URI (any case):
    ops downloads it; anything else is a path in the bundle or a name rkt
    fetches itself."""
    return isinstance(location, str) and location[:8].lower().startswith(_REMOTE_SCHEMES)


def unit_name_problem(name):
    """What systemd (or ops) would refuse in the unit name ``name``, which
    already matches UNIT_RE (characters, one optional '@' before the suffix),
    or None.  systemd's rules (src/basic/unit-name.c, mount and slice units):
    no template of a mount, automount or slice unit; a mount or automount
    unit is named after its path, escaped ('-' for '/'), so the path must be
    normalized; a slice's name is its place in the tree ('a-b.slice' under
    'a.slice').  A name starting with '.' is a hidden file, which systemd
    skips when it lists units (and ops's own temporary files start so)."""
    stem, _, suffix = name.rpartition(".")
    if name.startswith("."):
        return ("%r starts with '.': a hidden file is not listed by systemd" % name)
    if stem.startswith("@"):
        return "%r: a template needs a name before its '@'" % name
    if stem.endswith("@"):
        if suffix in NO_TEMPLATE_SUFFIXES:
            return "%r: systemd has no templates of .%s units" % (name, suffix)
        return None
    if suffix in ("mount", "automount", "slice") and stem != "-":
        parts = stem.split("-")
        if "" in parts:
            return ("%r: '-' stands for '/' in a .%s unit's name; it cannot start or end the "
                    "name or come twice in a row" % (name, suffix))
        if suffix != "slice" and any(_unescape(p) in (".", "..") for p in parts):
            return "%r: the path of a .%s unit cannot hold '.' or '..'" % (name, suffix)
    return None


def _unescape(part):
    """A part of an escaped path with systemd-escape's ``\\xNN`` undone."""
    if "\\" not in part:
        return part
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), part)
