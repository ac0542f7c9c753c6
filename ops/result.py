"""What a command did, or why it failed: one type, one ``--json`` shape.

Every command returns a :class:`Result`; :mod:`ops.render` prints it, and
:mod:`ops.cli` makes one with :meth:`Result.failure` from the error that
stopped the command.
Its ``--json`` object has the same keys in both cases:

  ok, changed, command, dry_run, exit_code, pod {name, version} or null,
  previous, rolled_back, actions, error (the one-line message, or null),
  reason ({pod, version, unit, what, rolled_back}, or null),
  stop_timed_out (the units whose stop outlasted --stop-timeout and that ops
  killed, in a switch or its rollback; [] when none)

and the keys of the command's own report (``EXTRA``), empty on failure.
"""

__all__ = ["Result", "EXTRA", "STAGING"]

# Steps undone when the command fails (:mod:`ops.stage`): they alone do not
# make a failed command's ``changed`` true.
STAGING = ("download", "store", "fetch-image", "unpack-volume")

# The command's own keys, with the value they have when it fails.
EXTRA = {
    "cleanup": (("removed", dict), ("kept", dict)),
    "list": (("pods", list),),
    "status": (("pods", list),),
    "history": (("history", list),),
    "logs": (("entries", list),),
    "diff": (("differs", bool), ("diff", str), ("changes", list)),
    "check": (("units", list), ("images", list), ("volumes", list), ("health", lambda: None)),
}


class Result:
    def __init__(self, command, name=None, version=None, previous=None, changed=False,
                 actions=(), dry_run=False, exit_code=0, **extra):
        self.command = command
        self.name = name
        self.version = version
        self.previous = previous
        self.changed = changed
        self.actions = list(actions)        # plan actions, each with to_json()
        self.dry_run = dry_run
        self.exit_code = exit_code
        self.rolled_back = False
        self.error = None                   # the one-line message of a failure
        self.reason = None
        self.lines = []                     # human output (cleanup)
        self.stop_timed_out = []            # units ops killed: their stop timed out
        self.extra = {key: make() for key, make in EXTRA.get(command, ())}
        self.extra.update(extra)

    @classmethod
    def failure(cls, command, err, message, exit_code, dry_run=False):
        """The result of a command stopped by ``err`` (its ``message``
        already made printable, its ``exit_code``)."""
        r = cls(command, getattr(err, "pod", None), getattr(err, "version", None),
                getattr(err, "previous", None), dry_run=dry_run, exit_code=exit_code)
        r.rolled_back = bool(getattr(err, "rolled_back", False))
        r.actions = list(getattr(err, "actions", None) or ())
        # a rolled-back switch changed the host all the same: units were stopped
        # and started again, and the failed version is stored with its outcome;
        # so did any step past staging (staging is undone when it fails)
        r.changed = exit_code == 4 or r.rolled_back or any(
            a.verb not in STAGING for a in r.actions)
        r.error = message
        r.stop_timed_out = list(getattr(err, "stop_timed_out", None) or ())
        r.reason = dict(err.reason) if hasattr(err, "reason") and isinstance(err.reason, dict) \
            else {"pod": None, "version": None, "unit": None, "what": message,
                  "rolled_back": False}
        return r

    @property
    def ok(self):
        return self.exit_code == 0

    def to_json(self):
        return dict({
            "ok": self.ok, "changed": bool(self.changed) and not self.dry_run,
            "command": self.command, "dry_run": self.dry_run, "exit_code": self.exit_code,
            "pod": {"name": self.name, "version": self.version} if self.name else None,
            "previous": self.previous, "rolled_back": self.rolled_back,
            "actions": [a.to_json() for a in self.actions],
            "error": self.error, "reason": self.reason,
            "stop_timed_out": list(self.stop_timed_out)}, **self.extra)
