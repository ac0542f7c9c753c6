"""Every failure ops reports, as an exception that carries its exit code.

Only :mod:`ops.cli` turns these into the one line ``ops: error: WHERE: WHAT``
and an exit status; library code raises them and never prints.

Exit codes (SPEC §3):
  0 done, 1 failed and the host is as before, 2 refused before changing
  anything, 3 lock not acquired, 4 failed and the rollback failed too;
  5 only from `status`: it found drift, a unit down or failed, or an
  interrupted run (not an error: the report is printed).
"""

__all__ = [
    "OpsError", "Refused", "BundleError", "ConflictError", "UsageError",
    "Failed", "FetchError", "VolumeError", "CommandError", "LockTimeout",
    "RollbackFailed", "about", "clip", "OUTPUT_MAX", "MESSAGE_MAX",
]

# The most characters ops keeps and shows of text it did not write: a unit's
# journal lines, a command's or a health check's output (its end is kept),
# a failure's message in state.json (its start is kept).
OUTPUT_MAX = 2000
MESSAGE_MAX = 4000


def clip(text, limit=OUTPUT_MAX, tail=True):
    """``text`` on one line with every control character escaped (``\\n``,
    ``\\x1b``), cut to at most ``limit`` characters: the end kept when
    ``tail``, else the start, the cut said where it is."""
    if text is None:
        return None
    from ops.log import escape
    text = escape(str(text))
    if len(text) <= limit:
        return text
    mark = "[%d characters cut]" % (len(text) - limit)
    return mark + " ..." + text[-limit:] if tail else text[:limit] + "... " + mark


class OpsError(Exception):
    """Base class: ``where`` names a file and a path into it (or a command,
    a URI, a unit); ``what`` says what is wrong and, where it helps, what to do.

    An error takes its context when it is made: the pod, version and previous
    version of the command running (:class:`about`), and from the raiser the
    ``unit`` that failed, systemd's ``result`` for it, its last ``journal``
    lines, and whether the pod was ``rolled_back``."""

    exit_code = 1

    def __init__(self, where, what, unit=None, result=None, journal=None, rolled_back=False):
        super().__init__("%s: %s" % (where, what) if where else what)
        self.where = where
        self.what = what
        self.unit = unit
        self.result = result
        self.journal = clip(journal)          # a unit's words: bounded, escaped
        self.rolled_back = rolled_back
        self.pod, self.version, self.previous = (_subject.pod, _subject.version,
                                                 _subject.previous) if _subject else (None,) * 3

    @property
    def message(self):
        return str(self)

    @property
    def reason(self):
        """The structured reason of ``--json``."""
        return {"pod": self.pod, "version": self.version, "unit": self.unit,
                "what": self.what, "rolled_back": self.rolled_back}

    def stored_reason(self):
        """Why a version failed, as its state.json keeps it."""
        return {"unit": self.unit, "result": self.result, "journal": self.journal,
                "message": clip(str(self), MESSAGE_MAX, tail=False)}


_subject = None      # the `about` block in force


class about:
    """Context manager: errors made inside are about pod ``pod`` (its
    ``version``, and ``previous``, the version current before the command;
    both may be set later, once known)."""

    def __init__(self, pod, version=None, previous=None):
        self.pod, self.version, self.previous = pod, version, previous
        self.outer = None

    def __enter__(self):
        global _subject
        self.outer, _subject = _subject, self
        return self

    def __exit__(self, *exc):
        global _subject
        _subject = self.outer
        return False


class Refused(OpsError):
    """Refused before anything was changed."""
    exit_code = 2


class BundleError(Refused):
    """The bundle is invalid or incomplete."""


class ConflictError(Refused):
    """The host holds something the deploy would overwrite."""


class UsageError(Refused):
    """The command line is wrong, or the environment cannot run it."""


class Failed(OpsError):
    """A step failed; what had been touched was put back."""
    exit_code = 1


class FetchError(Failed):
    """A download failed (``where`` is the URI)."""


class VolumeError(Failed):
    """A volume archive is corrupt, unsafe or could not be unpacked
    (``where`` is the archive and the member)."""


class CommandError(Failed):
    """An external command (rkt, systemctl) exited non-zero."""

    def __init__(self, where, what, returncode=None, stderr="", **context):
        super().__init__(where, what, **context)
        self.returncode = returncode
        self.stderr = stderr


class LockTimeout(OpsError):
    exit_code = 3


class RollbackFailed(OpsError):
    """The deploy failed and putting the previous version back failed too."""
    exit_code = 4
