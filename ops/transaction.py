"""The transaction of a switch, and recovery from an interrupted one.

A :class:`Transaction` owns everything between the first change to what runs
and the commit, in the spirit of Mercurial's ``transaction.py``:

* the journal, var/lib/ops/journal/NAME.json: written (and fsynced) before
  the first change, removed (its directory fsynced) once the pod is whole
  again on one version.  It records where the switch goes, not each step:
  recovery puts the ``from`` version back whole, whatever was done;
* the trapped signals (:mod:`ops.signals`): they interrupt the switch, which
  is then rolled back; from the commit on they are held off, so a finished
  switch is never reported as failed;
* the rollback (:func:`restore`, the one path back, used by :func:`recover`
  too) and the outcome recorded in the target's state.json.

Leaving the ``with`` block commits; an error inside it rolls the whole pod
back to the previous version and raises :class:`~ops.errors.Failed` (exit 1),
or :class:`~ops.errors.RollbackFailed` (exit 4) when that fails too.

What it survives: a killed ops at any point (SIGKILL, OOM, power loss after
the journal reached the disk): the next mutating command finds the journal
and rolls back (:func:`recover`).  What it does not: someone editing units or
``/etc/ops`` by hand while a journal is pending.  No other module writes,
reads or removes a journal: `status`, `list` and ``--dry-run`` ask
:func:`journals`.
"""

import os

from ops import atomic, confine, index, log, signals, store
from ops.errors import Failed, OpsError, Refused, RollbackFailed

__all__ = ["Transaction", "irreversible", "recover", "journals", "interrupted", "running"]


class Transaction:
    """``with Transaction(ctx, command, name, previous, target):`` run the
    switch of pod ``name`` from stored version ``previous`` to ``target``
    (either may be None: nothing)."""

    def __init__(self, ctx, command, name, previous, target):
        self.ctx = ctx
        self.command = command
        self.name = name
        self.previous = previous
        self.target = target
        self.path = ctx.layout.journal_path(name)

    def __enter__(self):
        data = {"pod": self.name, "from": self.previous.version if self.previous else None,
                "to": self.target.version if self.target else None, "command": self.command,
                "pid": os.getpid(), "started_at": store.now()}
        import json           # here: `list`, which asks for journals, rarely needs it
        from ops.restore import restore   # before any change: a rollback imports nothing
        self.restore = restore
        try:
            atomic.write_text(self.path, json.dumps(data, indent=1) + "\n")
        except BaseException as e:
            # nothing is switched yet, so no journal may stay: not even one
            # renamed into place just before a signal (during its fsync)
            signals.hold()                # ops is failing: let the removal finish
            _remove_journal(self.path)
            if not isinstance(e, OSError):
                raise
            try:
                if self.target is not None:
                    self.target.record("failed")
            except OSError:
                pass
            raise Failed(self.path, "cannot write the journal: %s; nothing was switched"
                         % (e.strerror or e))
        return self

    def __exit__(self, kind, err, tb):
        if kind is None:
            try:
                signals.hold()            # committing: from here on ops finishes what it began
                if self.target is not None:
                    self.target.record("ok")    # a failure to record is a failed switch
            except Exception as e:
                self._abort(e)
            _remove_journal(self.path)
            return False
        if issubclass(kind, (Exception, KeyboardInterrupt)):
            self._abort(err)
        return False        # SystemExit and the like: the journal stays, the next command recovers

    def _abort(self, e):
        # first: a second signal (Ctrl-C twice) must not stop the rollback
        # before it begins, leaving the pod half-switched; a rollback is bounded
        signals.hold()
        name, previous, target = self.name, self.previous, self.target
        if isinstance(e, OpsError):
            cause = e
        elif isinstance(e, KeyboardInterrupt):
            cause = Failed(name, "interrupted by %s during the switch"
                           % signals.Interrupted.name_of(e))
        elif isinstance(e, OSError):
            cause = Failed(e.filename or name, e.strerror or str(e))
        else:           # a defect of ops: the pod is rolled back all the same
            cause = Failed(name, "unexpected error during the %s: %s: %s"
                           % (self.command, type(e).__name__, e))
        back = "version %d" % previous.version if previous else "nothing"
        log.info("%s failed: %s; rolling back to %s" % (self.command, cause, back))
        try:
            self.restore(self.ctx, name, previous, [target] if target and target != previous else [])
            if target is not None:      # a failed repair of the current version too
                target.record("failed", reason=cause.stored_reason())
        except (OpsError, OSError) as e2:
            raise RollbackFailed(name, "%s failed (%s) and rolling back to %s failed too (%s); "
                                 "the journal %s is kept: run `ops redeploy %s%s` or any "
                                 "mutating command to retry the rollback"
                                 % (self.command, cause, back, e2, self.path, name,
                                    ":%d" % previous.version if previous else ""))
        _remove_journal(self.path)
        late = list(getattr(self.ctx, "stops_timed_out", ()))
        failed = Failed(cause.where, "%s; rolled back to %s%s" % (
            cause.what, previous.version if previous else "nothing (no unit of %s is "
            "installed)" % name,
            "; the stop of %s timed out after %g s and ops killed it" % (
                " ".join(late), self.ctx.stop_timeout) if late else ""),
            unit=cause.unit, result=cause.result, journal=cause.journal, rolled_back=True)
        failed.stop_timed_out = late
        raise failed


class irreversible:
    """``with irreversible():`` steps that are not undone (removals, pins):
    once they begin, trapped signals are held off and ops finishes them."""

    def __enter__(self):
        signals.hold()
        return self

    def __exit__(self, *exc):
        return False


def _remove_journal(path):
    atomic.remove_quietly(path)
    atomic.fsync_dir(os.path.dirname(path))


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
    pending = journals(layout)
    for j in pending:
        if not j.get("unreadable"):
            j["unreadable"] = _unstored(layout, j)
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
    if pending:
        # here, not at the top: `list` and an unchanged deploy only read journals
        from ops.restore import restore
    remove_leftovers(layout, pending, left)
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
        restored = good
        try:
            restore(ctx, name, good, bad)
        except KeyboardInterrupt as e:
            # the pod is between two versions again: say so, and how it ends (exit 4)
            raise RollbackFailed(j["path"], "interrupted by %s while rolling %s back to %s after "
                                 "an interrupted %s; the journal is kept, and the next mutating "
                                 "command finishes the rollback" % (
                                     signals.Interrupted.name_of(e), name,
                                     "version %d" % good.version if good else "nothing",
                                     j.get("command")))
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
            restored = None
            try:
                restore(ctx, name, None, bad + ([good] if good else []))
            except (OpsError, OSError) as e2:
                raise RollbackFailed(j["path"], "an interrupted run of %s could not be rolled "
                                     "back (%s), nor its units removed (%s)" % (name, e, e2))
        _record_recovery(layout, j, restored)
        for b in bad:
            if j.get("command") in ("deploy", "redeploy"):
                b.record("failed", reason={
                    "unit": None, "result": None, "journal": None,
                    "message": "the %s was interrupted (ops killed or the host stopped) and "
                    "rolled back by the next command" % j.get("command")})
        _remove_journal(j["path"])
    return left


def _unstored(layout, j):
    """Why the readable journal ``j`` does not fit what is stored, or None.
    A run ops interrupted leaves ``current`` on its ``from`` or its ``to``
    (or on nothing): any other current version means the journal is not this
    host's story of the pod, and rolling back to ``from`` would replace it."""
    if isinstance(j["from"], int) and store.get(layout, j["pod"], j["from"]) is None:
        return "version %d, which it names to roll back to, is not stored" % j["from"]
    try:
        cur = store.current_version(layout, j["pod"])
    except Refused as e:
        return str(e)
    if cur is not None and cur.version not in (j["from"], j["to"]):
        return "version %d is current, and it names that neither as where the run came from " \
            "nor where it went" % cur.version
    return None


def _record_recovery(layout, j, good):
    """The pod's history: the interrupted run was rolled back (to ``good``)."""
    from ops import history
    try:
        history.record(layout, j["pod"], "recover", "rolled back", j.get("to"),
                       good.version if good else None,
                       "the interrupted %s was rolled back by the next command"
                       % j.get("command"))
    except OSError as e:
        history.warn_not_written(j["pod"], e)


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
                atomic.remove_tree_quietly(p)
            else:
                atomic.remove_quietly(p)
    dirs = [layout.state_dir, layout.journal_dir, layout.current_dir, layout.unit_dir,
            layout.pods_dir, layout.path("var/lib/ops/volumes")]
    try:        # a history trim killed before its rename
        atomic.remove_leftovers(layout.history_dir)
    except Refused:     # a link: no history is written there either (a warning says so)
        pass
    journaled = {(j["pod"], j.get(k)) for j in pending for k in ("from", "to")}
    broken = set()
    pods = store.pods(layout)
    for pod in pods:
        if pod in left:
            continue
        try:
            number = store.current_number(layout, pod)
        except Refused:       # which version runs is unknown: nothing of that pod is deleted
            broken.add(pod)
            continue
        dirs.append(layout.pod_dir(pod))
        cur = None if number is None else store.get(layout, pod, number)
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
        if pod in left or pod in broken:
            continue
        pdir = os.path.join(vol_root, pod)
        dirs.append(pdir)
        for ver in _listdir(pdir):
            vdir = os.path.join(pdir, ver)
            # only volumes with no version directory at all (a run killed
            # while staging): a version whose pod.json is lost keeps its data
            if store.is_version(ver) and not os.path.lexists(layout.version_dir(pod, ver)) \
                    and store.current_number(layout, pod) != int(ver):
                atomic.remove_tree_quietly(vdir)
            else:
                dirs.append(vdir)
    for d in dirs:
        atomic.remove_leftovers(d)
    for pod in pods:
        if pod not in left and pod not in broken and not store.version_dirs(layout, pod):
            # `undeploy --remove` killed once its versions were gone: the pod's
            # directory (its index) would keep the pod in `status` forever
            store.remove_if_empty(layout.pod_dir(pod))


def _listdir(d):
    try:
        return sorted(os.listdir(d))
    except OSError:
        return []


def interrupted(layout):
    """The pods whose journal an interrupted run left behind (not a run
    still going on: :mod:`ops.progress`)."""
    return {j["pod"] for j in journals(layout) if not j["in_progress"]}


COMMANDS = ("deploy", "redeploy", "undeploy")


def journals(layout):
    """Journals left by interrupted runs: a list of their dicts (sorted by pod).

    ``pod`` is always the file's name; a journal that cannot be read, or that
    does not say plainly which pod it is about and where it goes, has
    ``unreadable`` set to why: recovery must not guess what to roll back
    (see :func:`recover`).  ``in_progress``: the PID of its writer when that
    run still holds the lock, else None (:mod:`ops.progress`)."""
    out = []
    try:
        names = sorted(os.listdir(layout.journal_dir))
    except OSError:
        return out
    names = [n for n in names if n.endswith(".json") and not n.startswith(atomic.TMP_PREFIX)]
    if names:
        # only then: `list` of a host with no journal never needs it
        from ops.strict_json import loads as json_loads
    for n in names:
        p = os.path.join(layout.journal_dir, n)
        try:       # no link followed, no FIFO waited on, at most 1 MiB
            raw = confine.read_file(p, 1 << 20)
            # bounded (size, depth, numbers): one broken journal is that pod's problem only
            data = json_loads(raw) if raw.strip() else None
            why = _problem(data, n[:-5]) if raw.strip() else "the file is empty"
        except (OSError, ValueError) as e:
            data, why = {}, "not a JSON object (%s)" % (getattr(e, "strerror", None)
                                                       or str(e) or "empty")
        if why:
            data = {"pod": n[:-5], "from": None, "to": None, "command": "?",
                    "unreadable": why}
        data["path"] = p
        if not why:
            from ops.progress import writer_alive
        data["in_progress"] = None if why else writer_alive(layout, data)
        out.append(data)
    return out


def _problem(data, stem):
    """Why the journal ``data`` of file ``stem``.json cannot be trusted, or None."""
    from ops.names import is_pod_name     # only with a journal: `re` costs `list` 5 ms
    if not isinstance(data, dict):
        return "not a JSON object"
    if not is_pod_name(stem):
        return "its file name is not a pod name"
    if data.get("pod") != stem:
        return "it names pod %r, not %r as its file name does" % (data.get("pod"), stem)
    for key in ("from", "to"):
        v = data.get(key, "missing")
        if v is not None and (not isinstance(v, int) or isinstance(v, bool)
                              or not 0 <= v < 2 ** 63):
            return "%r is not a version number or null" % key
    if data.get("command") not in COMMANDS:
        return "\"command\" is not one of %s" % ", ".join(COMMANDS)
    return None


def running(layout):
    """{pod: {command, from, to, pid, started_at}} of the runs going on now."""
    return {j["pod"]: {"command": j.get("command"), "from": j.get("from"), "to": j.get("to"),
                       "pid": j["in_progress"], "started_at": j.get("started_at")}
            for j in journals(layout) if j["in_progress"]}
