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
    "RollbackFailed",
]


class OpsError(Exception):
    """Base class: ``where`` names a file and a path into it (or a command,
    a URI, a unit); ``what`` says what is wrong and, where it helps, what to do."""

    exit_code = 1

    def __init__(self, where, what):
        super().__init__("%s: %s" % (where, what) if where else what)
        self.where = where
        self.what = what

    @property
    def message(self):
        return str(self)


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

    def __init__(self, where, what, returncode=None, stderr=""):
        super().__init__(where, what)
        self.returncode = returncode
        self.stderr = stderr


class LockTimeout(OpsError):
    exit_code = 3


class RollbackFailed(OpsError):
    """The deploy failed and putting the previous version back failed too."""
    exit_code = 4
