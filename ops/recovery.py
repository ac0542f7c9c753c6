"""Recovery, run first by every mutating command while it holds the lock.

It removes what a killed run staged before it wrote a journal (temporary
files and directories, downloads, volume directories of no stored version),
then rolls back every pod whose journal an interrupted switch left behind, to
the journal's ``from`` version (or to nothing).  With nothing to recover it
only reads directories, so it stays cheap for the run that follows.
"""

import os

from ops import atomic, index, journal, log, store
from ops.errors import OpsError, Refused, RollbackFailed

__all__ = ["recover", "remove_leftovers"]


def recover(ctx, own=()):
    """Roll back every pod whose journal an interrupted run left behind.

    When that rollback fails for a pod in ``own`` (the pod the command is
    about to deploy, redeploy or undeploy), the pod is taken down to nothing
    instead: the command's own switch supersedes it, so one broken version
    cannot block every later command.  A failing rollback of another pod is
    reported and its journal kept; it does not stop this command.

    A journal that cannot be trusted (unreadable, naming another pod, or a
    ``from`` version that is not stored) never leads to a rollback: ops
    cannot know what to put back, and rolling back to nothing would destroy
    the pod.  That pod is left alone, and a command about it is refused.
    Returns the pods whose journals are still pending."""
    layout = ctx.layout
    pending = journal.pending(layout)
    for j in pending:
        if not j.get("unreadable") and isinstance(j["from"], int) \
                and store.get(layout, j["pod"], j["from"]) is None:
            j["unreadable"] = "version %d, which it names to roll back to, is not stored" \
                % j["from"]
    left = {j["pod"] for j in pending if j.get("unreadable")}
    for j in pending:
        if j.get("unreadable"):
            what = "cannot be trusted (%s), so ops does not know which version of %s to put " \
                "back" % (j["unreadable"], j["pod"])
            if j["pod"] in own:
                raise Refused(j["path"], "%s; nothing was changed: check %s's units and `ops "
                              "list %s`, set them right, then delete this file"
                              % (what, j["pod"], j["pod"]))
            log.warn("%s: %s; %s is left alone" % (j["path"], what, j["pod"]))
    pending = [j for j in pending if not j.get("unreadable")]
    remove_leftovers(layout, pending, left)
    if pending:
        from ops.deploy import restore
    for j in pending:
        name = j["pod"]
        good = store.get(layout, name, j["from"]) if isinstance(j.get("from"), int) else None
        bad = []
        if isinstance(j.get("to"), int) and j["to"] != j.get("from"):
            bad.append(store.get(layout, name, j["to"]))
        cur = store.current_version(layout, name)
        if cur is not None and cur != good and cur not in bad:
            bad.append(cur)
        bad = [b for b in bad if b is not None]
        log.info("recovering the interrupted %s of %s: rolling back to %s"
                 % (j.get("command"), name, "version %d" % good.version if good else "nothing"))
        try:
            restore(ctx, name, good, bad)
        except (OpsError, OSError) as e:
            if name not in own:
                log.warn("the interrupted run of %s could not be rolled back (%s); its journal "
                         "%s is kept: deploy, redeploy or undeploy %s to settle it"
                         % (name, e, j["path"], name))
                left.add(name)
                continue
            log.warn("rolling %s back to %s failed (%s); taking %s down to nothing before "
                     "this command" % (name, "version %d" % good.version if good else "nothing",
                                       e, name))
            try:
                restore(ctx, name, None, bad + ([good] if good else []))
            except (OpsError, OSError) as e2:
                raise RollbackFailed(j["path"], "an interrupted run of %s could not be rolled "
                                     "back (%s), nor its units removed (%s)" % (name, e, e2))
        for b in bad:
            if j.get("command") in ("deploy", "redeploy"):
                b.record("failed", reason={
                    "unit": None, "result": None, "journal": None,
                    "message": "the %s was interrupted (ops killed or the host stopped) and "
                    "rolled back by the next command" % j.get("command")})
        atomic.remove_quietly(j["path"])
    return left


def remove_leftovers(layout, pending, left=()):
    """Remove what a killed run staged before it wrote a journal (``pending``:
    the journals left, whose versions are kept; ``left``: pods not to touch at
    all): temporary files and directories, downloads, volume directories of
    no version directory.  The index only narrows the search; a version is
    deleted only when its own state.json says it was staged and never ran."""
    if os.path.isdir(layout.tmp_dir):
        for n in os.listdir(layout.tmp_dir):
            p = os.path.join(layout.tmp_dir, n)
            if os.path.isdir(p) and not os.path.islink(p):
                _rmtree(p)
            else:
                atomic.remove_quietly(p)
    dirs = [layout.state_dir, layout.journal_dir, layout.current_dir, layout.unit_dir,
            layout.pods_dir, layout.path("var/lib/ops/volumes")]
    journaled = {(j["pod"], j.get(k)) for j in pending for k in ("from", "to")}
    for pod in store.pods(layout):
        if pod in left:
            continue
        dirs.append(layout.pod_dir(pod))
        cur = store.current_version(layout, pod)
        # a version's files are written before its directory is renamed into
        # place; afterwards only state.json is (replaced, then the index
        # rewritten), so only directories the index does not vouch for are scanned
        outcomes, changed = index.changed(layout.pod_dir(pod))
        for v in store.versions(layout, pod):
            if (outcomes.get(v.version) == "staged" and v != cur
                    and (pod, v.version) not in journaled
                    and v.state().get("outcome") == "staged"):
                # staged, then killed before its switch began: never ran
                # (the index is a cache: state.json decides)
                store.remove_tree(v.dir)
                continue
            if v.version in changed:
                dirs.append(v.dir)
    dirs += [os.path.join(layout.unit_dir, n) for n in _listdir(layout.unit_dir)
             if n.endswith(".d")]
    vol_root = layout.path("var/lib/ops/volumes")
    for pod in _listdir(vol_root):
        if pod in left:
            continue
        pdir = os.path.join(vol_root, pod)
        dirs.append(pdir)
        for ver in _listdir(pdir):
            vdir = os.path.join(pdir, ver)
            # only volumes with no version directory at all (a run killed
            # while staging): a version whose pod.json is lost keeps its data
            if store.is_version(ver) and not os.path.lexists(layout.version_dir(pod, ver)) \
                    and store.current_number(layout, pod) != int(ver):
                _rmtree(vdir)
            else:
                dirs.append(vdir)
    for d in dirs:
        atomic.remove_leftovers(d)


def _listdir(d):
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def _rmtree(p):
    import shutil         # only when there is something to remove
    shutil.rmtree(p, ignore_errors=True)

