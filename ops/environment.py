"""The environment variables ops reads, each checked like an option.

Every read goes through :func:`get`, which checks the value with the
variable's own rule; a value that breaks it is a
:class:`~ops.errors.UsageError` naming the variable (exit 2, one line),
never ignored.  An empty value counts as unset.  :func:`check` reads every
variable once, before a command starts, so that a bad one is refused even
by a command that would not have needed it; ``OPS_RKT`` alone is checked
when rkt is needed (as ``rkt`` missing from PATH is), so that a bundle
without images never depends on it.
"""

import os

from ops.errors import UsageError

__all__ = ["VARIABLES", "CHECK_MARK", "get", "check"]

# Set (never read) in the environment of a health check's command, to a token
# of that run: what the command started is found by it and killed (ops.runner).
CHECK_MARK = "OPS_CHECK_RUN"

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_MAX = 2 ** 63 - 1


def _digits(text):
    """ASCII digits only, 1 to 19 of them (no sign, space, '_' or other script)."""
    return 0 < len(text) <= 19 and all("0" <= c <= "9" for c in text)


def _size(name, value):
    number, suffix = (value[:-1], value[-1].upper()) if value[-1:].upper() in "KMGT" \
        else (value, "")
    n = int(number) * _SUFFIXES[suffix] if _digits(number) else 0
    if not 0 < n <= _MAX:
        raise UsageError(name, "invalid limit %r: expected a positive whole number, optionally "
                         "followed by K, M, G or T" % value)
    return n


def _count(name, value):
    if not (_digits(value) and 0 < int(value) <= _MAX):
        raise UsageError(name, "invalid value %r: expected a positive whole number of bytes"
                         % value)
    return int(value)


def _flag(name, value):
    if value not in ("0", "1"):
        raise UsageError(name, "invalid value %r: expected 1 (on) or 0 (off)" % value)
    return value == "1"


def _executable(name, value):
    if not (os.path.isfile(value) and os.access(value, os.X_OK)):
        raise UsageError("rkt", "$%s names %r, which is not an executable file" % (name, value))
    return value


# name -> (check, what it is for); check(name, value) returns the value to use
VARIABLES = {
    "OPS_RKT": (_executable, "the rkt program (--rkt wins)"),
    "OPS_ARG_MAX": (_count, "bytes one systemctl command line may take (default: the OS's)"),
    "OPS_MAX_VOLUME_BYTES": (_size, "most bytes one volume archive may unpack to"),
    "OPS_MAX_VOLUME_MEMBERS": (_size, "most members one volume archive may hold"),
    "OPS_DEBUG": (_flag, "1: an unexpected error shows Python's traceback"),
    "SUDO_USER": (lambda name, value: value, "who ran ops through sudo (the history records it)"),
}

# OPS_RKT is checked when rkt is needed; SUDO_USER is sudo's, never a reason to refuse
_CHECKED_FIRST = tuple(n for n in VARIABLES if n not in ("OPS_RKT", "SUDO_USER"))


def get(name, default=None):
    """The checked value of variable ``name`` (one of VARIABLES), or
    ``default`` when it is unset or empty; raises UsageError for a bad one."""
    check_value = VARIABLES[name][0]
    value = os.environ.get(name, "")
    if value == "":
        return default
    if value != value.strip() or "\0" in value:
        raise UsageError(name, "invalid value %r: no spaces around it" % value)
    return check_value(name, value)


def check():
    """Read every variable checked before a command starts (all but OPS_RKT)."""
    for name in _CHECKED_FIRST:
        get(name)
