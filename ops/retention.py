"""Which stored versions a pod keeps: pins, and the version to go back to.

``ops pin NAME:VERSION`` writes ``/etc/ops/pods/NAME/VERSION.pinned`` beside
the version's directory (`list` sees it in the directory listing it reads
anyway, so showing pins costs it nothing); ``unpin`` removes it.  A pinned
version is never deleted: ``cleanup`` keeps it and ``undeploy --remove``
refuses until it is unpinned.

The *rollback target* is the newest stored version older than the current
one whose last outcome is ``ok`` (with nothing current: the newest ``ok``
one).  ``redeploy NAME`` goes there, and while a version is current
``cleanup`` keeps it, so a pod can always go back one good step.
"""

import os

from ops import atomic, store
from ops.index import PINNED

__all__ = ["pin_path", "pinned", "rollback_target", "set_pin", "refuse_pinned", "cleanup_choice"]


def pin_path(layout, name, version):
    return layout.version_dir(name, version) + PINNED


def pinned(layout, name):
    """The pod's pinned version numbers (of stored versions only)."""
    try:
        names = atomic.confine.listdir(layout.pod_dir(name))
    except OSError:
        return set()
    nums = {n[:-len(PINNED)] for n in names if n.endswith(PINNED)}
    return {int(n) for n in nums if store.is_version(n) and n in names}


def rollback_target(versions, current):
    """The newest of ``versions`` (oldest first) older than ``current`` (or
    any, when ``current`` is None) whose last outcome is ``ok``; else None."""
    for v in reversed(versions):
        if (current is None or v.version < current.version) and v.state().get("outcome") == "ok":
            return v
    return None


def set_pin(ctx, name, version, on):
    """Pin (``on``) or unpin stored version ``version``; True when that
    changed anything (always False with --dry-run)."""
    from ops.errors import Refused
    path = pin_path(ctx.layout, name, version)
    if on and store.get(ctx.layout, name, version) is None:
        raise Refused("%s:%d" % (name, version), "not stored (see `ops list %s`)" % name)
    if os.path.lexists(path) == on:
        return False
    if not ctx.dry_run:
        if on:
            atomic.write_text(path, "pinned at %s\n" % store.now())
        else:
            atomic.unlink(path)
    return True


def refuse_pinned(layout, name, versions):
    """Refuse (exit 2) to delete any of ``versions`` that is pinned."""
    pins = sorted(pinned(layout, name) & {v.version for v in versions})
    if pins:
        from ops.errors import Refused
        refs = " ".join("%s:%d" % (name, p) for p in pins)
        raise Refused(refs, "pinned: run `ops unpin %s` first to delete %s"
                      % (refs, "it" if len(pins) == 1 else "them"))


def cleanup_choice(layout, name, keep):
    """(versions to delete, [(version, why)] kept beyond the current and the
    ``keep`` newest others: pinned, or the rollback target)."""
    versions = store.versions(layout, name)
    current = store.current_version(layout, name)
    others = [v for v in versions if v != current]
    candidates = others[:max(0, len(others) - keep)]
    pins = pinned(layout, name)
    target = rollback_target(versions, current) if current else None
    doomed, kept = [], []
    for v in candidates:
        if v.version in pins:
            kept.append((v.version, "pinned"))
        elif v == target:
            kept.append((v.version, "rollback target"))
        else:
            doomed.append(v)
    return doomed, kept
