"""The names ops accepts (SPEC §1): pod and volume names, unit and instance
names, image IDs, and which artifact locations are remote.

Nothing is imported: :mod:`ops.store` and :mod:`ops.journal` check a pod
name with :func:`is_pod_name` without loading the bundle's validation, and
each rule is a test of characters rather than a regular expression, so that
reading a bundle does not load :mod:`re` (a large part of Python's own
start-up).  The same rules as regular expressions (``NAME_RE``, ``UNIT_RE``,
``INSTANCE_RE``, ``IMAGE_ID_RE``) are compiled when asked for.
"""

__all__ = ["MAX_NAME_LENGTH", "is_pod_name", "is_remote", "UNIT_SUFFIXES", "UNIT_NAME_MAX",
           "unit_name_problem", "unit_name_parts", "is_unit_name", "is_instance_name",
           "is_image_id", "has_uri_scheme"]

# An AC Name without '/': a pod's name, a volume's name (it names a
# directory), the stem of a journal file.
_PATTERNS = {"NAME_RE": r"[a-z0-9]+([-.][a-z0-9]+)*"}
MAX_NAME_LENGTH = 128
UNIT_SUFFIXES = ("service", "socket", "timer", "path", "target", "mount",
                 "automount", "slice")
# systemd's unit_name_is_valid(): letters, digits and ":-_.\\" (the backslash
# of systemd-escape's "\x2d"); one optional '@' before the suffix (a template)
_PATTERNS["UNIT_RE"] = r"([A-Za-z0-9:_.\\\-]+?)(@?)\.(%s)" % "|".join(UNIT_SUFFIXES)
UNIT_NAME_MAX = 255              # systemd: a unit name is shorter than UNIT_NAME_MAX (256)
# a service's drop-in directory, NAME.service.d, is a file name too (at most 255 bytes)
SERVICE_NAME_MAX = UNIT_NAME_MAX - len(".d")
# systemd refuses templates (and so instances) of these unit types
NO_TEMPLATE_SUFFIXES = ("mount", "automount", "slice")
_PATTERNS["INSTANCE_RE"] = r"[A-Za-z0-9:_.\-]+"
_PATTERNS["IMAGE_ID_RE"] = r"sha512-[0-9a-f]{32,128}"
_REMOTE_SCHEMES = ("http://", "https://")

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_LETTERS = _LOWER + _LOWER.upper()
_DIGITS = "0123456789"
_INSTANCE_CHARS = _LETTERS + _DIGITS + ":_.-"
_UNIT_CHARS = _INSTANCE_CHARS + "\\"
_SCHEME_CHARS = _LETTERS + _DIGITS + "+.-"


def __getattr__(name):
    """NAME_RE, UNIT_RE, INSTANCE_RE, IMAGE_ID_RE: compiled on first use."""
    if name not in _PATTERNS:
        raise AttributeError("module %r has no attribute %r" % (__name__, name))
    import re
    value = globals()[name] = re.compile(_PATTERNS[name])
    return value


def _only(text, chars):
    """True when ``text`` is not empty and every character of it is in ``chars``."""
    return text != "" and not text.strip(chars)


def is_pod_name(text):
    """True when ``text`` is a valid pod (or volume) name: lower-case letters
    and digits separated by single '-' or '.', at most 128 characters."""
    return (isinstance(text, str) and len(text) <= MAX_NAME_LENGTH
            and all(_only(part, _LOWER + _DIGITS)
                    for part in text.replace(".", "-").split("-")))


def unit_name_parts(name):
    """(stem, "@" or "", suffix) of a unit file's name: letters, digits and
    ':_.-\\', an optional '@' (a template), '.' and a unit type of
    UNIT_SUFFIXES; None when ``name`` is none such."""
    head, dot, suffix = name.rpartition(".")
    if not dot or suffix not in UNIT_SUFFIXES:
        return None
    at = "@" if head.endswith("@") else ""
    stem = head[:-1] if at else head
    return (stem, at, suffix) if _only(stem, _UNIT_CHARS) else None


def is_unit_name(text, instance=False):
    """True when ``text`` is a unit file's name a bundle may give (a name,
    never a path: no '/'); with ``instance``, an instance of a template
    (``name@instance.service``) too.  For names read back from ops's own
    files, which may have been edited."""
    if not isinstance(text, str) or len(text) > UNIT_NAME_MAX:
        return False
    head, at, tail = text.partition("@")
    if instance and at and not tail.startswith("."):       # not the template itself
        inst, dot, suffix = tail.rpartition(".")
        return dot != "" and is_instance_name(inst) and is_unit_name(head + "@." + suffix)
    return unit_name_parts(text) is not None and unit_name_problem(text) is None


def is_instance_name(text):
    """True when ``text`` is a valid instance name: letters, digits, ':_.-'."""
    return _only(text, _INSTANCE_CHARS)


def is_image_id(text):
    """True when ``text`` is "sha512-" and 32 to 128 lower-case hex digits."""
    digits = text[7:]
    return text.startswith("sha512-") and 32 <= len(digits) <= 128 and \
        _only(digits, _DIGITS + "abcdef")


def has_uri_scheme(text):
    """True when ``text`` starts with a URI scheme and '://' (any scheme)."""
    scheme, sep, _ = text.partition("://")
    return sep != "" and scheme[:1] != "" and scheme[:1] in _LETTERS and \
        not scheme[1:].strip(_SCHEME_CHARS)


def is_remote(location):
    """True when ``location`` is an ``http://`` or ``https://`` URI (any case):
    ops downloads it; anything else is a path in the bundle or a name rkt
    fetches itself."""
    return isinstance(location, str) and location[:8].lower().startswith(_REMOTE_SCHEMES)


def unit_name_problem(name):
    """What systemd (or ops) would refuse in the unit name ``name``, which
    already has :func:`unit_name_parts` (characters, one optional '@' before the suffix),
    or None.  systemd's rules (src/basic/unit-name.c, mount and slice units):
    no template of a mount, automount or slice unit; a mount or automount
    unit is named after its path, escaped ('-' for '/'), so the path must be
    normalized; a slice's name is its place in the tree ('a-b.slice' under
    'a.slice').  A name starting with '.' is a hidden file, which systemd
    skips when it lists units (and ops's own temporary files start so).
    A service (or service template) takes at most 253 characters: ops gives
    it a drop-in directory, ``NAME.d``, which must fit in a file name."""
    stem, _, suffix = name.rpartition(".")
    if name.startswith("."):
        return ("%r starts with '.': a hidden file is not listed by systemd" % name)
    if suffix == "service" and len(name) > SERVICE_NAME_MAX:
        return ("%r is longer than %d characters: the directory of its drop-in, %s.d, would be "
                "longer than a file name may be (255)" % (name, SERVICE_NAME_MAX, name))
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
    import re
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), part)
