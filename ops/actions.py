"""The steps of a plan, as typed records: one class per kind of step.

A plan (:mod:`ops.plan`) is a tuple of these; ``--dry-run`` prints
:meth:`describe`, ``--json`` reports :meth:`to_json`, and the executors
(:mod:`ops.stage`, :mod:`ops.execute`) dispatch on the class.  Each field has
one meaning: unit names in ``units``, image IDs in ``ids``, real paths in
``path`` and the same path as the host sees it (without ``--root``) in
``shown``.  They are tuples with named fields (:mod:`ops.structs`):
immutable, and cheap to import.
"""

from ops.structs import struct

from ops import log

__all__ = ["did", "stopped_late", "Rollback", "Download", "StoreVersion", "FetchImage", "UnpackVolume",
           "Stop", "Disable", "RemoveUnit", "InstallUnit", "DaemonReload", "Enable", "Restart", "Start",
           "Settle", "HealthCheck", "SetCurrent", "ClearCurrent",
           "RemoveVersion", "RemoveVolumes", "RemoveImages", "Pin", "Unpin"]


def _kind(class_name, verb, fields, target=None, listed=None, doc="", **members):
    """A step class: ``verb`` as ``--json`` and ``--dry-run`` name it;
    ``target`` the field (or property) shown as its target; ``listed`` the
    field whose names follow it (in ``--json``, under that field's name);
    ``members``: more class members (properties, methods)."""
    def to_json(self):
        d = {"action": verb}
        if target and getattr(self, target):
            d["target"] = str(getattr(self, target))
        if listed and getattr(self, listed):
            d[listed] = list(getattr(self, listed))
        return d

    def describe(self):
        parts = [verb]
        if target and getattr(self, target):
            parts.append(str(getattr(self, target)))
        if listed and getattr(self, listed):
            parts.append(" ".join(getattr(self, listed)))
        return " ".join(parts)

    return struct(class_name, fields, members=dict(
        {"__doc__": doc, "__module__": __name__, "verb": verb, "to_json": to_json,
         "describe": describe, "__eq__": _same_step, "__ne__": _other_step,
         "__hash__": _step_hash}, **members))


# A step is equal to a step of the same kind with the same fields only: as
# plain tuples, Stop(("a",)) and Start(("a",)) would be equal, and a plan
# compared with the steps it should hold would pass with the wrong verb.
def _same_step(self, other):
    return type(self) is type(other) and tuple.__eq__(self, other)


def _other_step(self, other):
    return not _same_step(self, other)


def _step_hash(self):
    return hash((type(self).__name__, tuple(self)))


_label = property(lambda self: "%s %d" % (self.name, self.version))


# -- stage: beside what runs --------------------------------------------------
Download = _kind("Download", "download", "uri", target="uri",
                 doc="Download a remote artifact into var/lib/ops/tmp.")
StoreVersion = _kind("StoreVersion", "store", "path shown", target="shown",
                     doc="Write the version's directory: pod.json, units, manifest.json.")
FetchImage = _kind("FetchImage", "fetch-image", "index location", target="location",
                   doc="Verify and import image ``index`` of the bundle into rkt's store.")
UnpackVolume = _kind("UnpackVolume", "unpack-volume", "index volume", target="volume",
                     doc="Unpack volume ``index`` of the bundle into its own directory.")

# -- switch: under the journal ------------------------------------------------
Stop = _kind("Stop", "stop", "units", listed="units")
Disable = _kind("Disable", "disable", "units", listed="units")
RemoveUnit = _kind("RemoveUnit", "remove-unit", "unit", target="unit",
                   doc="Remove a unit file of the previous version and its drop-in.")
InstallUnit = _kind("InstallUnit", "install-unit", "unit", target="unit",
                    doc="Install a unit file from the target's stored copy, with its drop-in.")
DaemonReload = _kind("DaemonReload", "daemon-reload", ())
Enable = _kind("Enable", "enable", "units", listed="units")
Restart = _kind("Restart", "restart", "units", listed="units",
                doc="Restart units both versions have, by their newly loaded files.")
Start = _kind("Start", "start", "units", listed="units")
Settle = _kind("Settle", "settle", "units", listed="units",
               doc="Watch the started units for --settle seconds.")
HealthCheck = _kind("HealthCheck", "health-check", "check", target="shown",
                    doc="Run the target's health check (``check``: a HealthSpec).",
                    shown=property(lambda self: self.check.describe()))
SetCurrent = _kind("SetCurrent", "set-current", "name version", target="label", label=_label)
ClearCurrent = _kind("ClearCurrent", "clear-current", "name", target="name")

# -- removals: after the switch, not undone ------------------------------------
RemoveVersion = _kind("RemoveVersion", "remove-version", "version path shown", target="shown",
                      doc="Delete stored version ``version`` (its directory ``path``).")
RemoveVolumes = _kind("RemoveVolumes", "remove-volumes", "path shown", target="shown")
RemoveImages = _kind("RemoveImages", "remove-images", "ids", listed="ids",
                     doc="Remove images no remaining stored version uses from rkt's store.")
Pin = _kind("Pin", "pin", "name version path", target="label", label=_label,
            doc="Write the pin file ``path`` of NAME:VERSION.")
Unpin = _kind("Unpin", "unpin", "name version path", target="label", label=_label,
              doc="Remove the pin file ``path`` of NAME:VERSION.")


class Rollback(struct("Rollback", "step")):
    """A step of a rollback (``step``: the step it did): in ``--json``, the
    step with ``"rollback": true``; described as ``rollback: STEP``."""
    __slots__ = ()
    verb = property(lambda self: self.step.verb)

    def to_json(self):
        return dict(self.step.to_json(), rollback=True)

    def describe(self):
        return "rollback: " + self.step.describe()


def did(ctx, *steps, rollback=False):
    """Note ``steps`` as carried out by the command running with ``ctx`` (its
    ``done`` list, when it has one): the ``actions`` of its result, failed or
    not; ``rollback``: steps of a rollback."""
    done = getattr(ctx, "done", None)
    if done is not None:
        done.extend(Rollback(s) if rollback else s for s in steps)


def stopped_late(ctx, units):
    """Units whose stop timed out: said now, kept for the result
    (``stops_timed_out``) and for the failure reason of the command."""
    timeout = getattr(ctx, "stop_timeout", None)
    log.warn("stop timed out after %g s (--stop-timeout): ops killed %s" % (
        timeout, " ".join(units)))
    seen = getattr(ctx, "stops_timed_out", None)
    if seen is not None:
        seen.extend(u for u in units if u not in seen)
