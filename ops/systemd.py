"""systemctl, batched: one call per verb for all the units of a step.

Offline mode (``--root`` other than /) only enables and disables with
``systemctl --root=DIR``; start, stop, reload and settle do nothing there and
"active" reads as "enabled".  Unit names are arguments, never shell text.
"""

import os
import time

from ops import log
from ops.errors import Failed, OpsError
from ops.layout import template_file
from ops.runner import run
from ops.units import enabled_by_links

__all__ = ["Systemd", "arg_max", "batches", "chosen", "ENABLED", "STATE", "is_up", "waiting"]


def waiting(timeout):
    """The progress line of a bounded stop: which units ops is waiting for."""
    def say(units, seconds):
        them = "it" if len(units) == 1 else "them"
        if seconds >= timeout:
            log.info("%s still stopping after %d s (--stop-timeout): killing %s (SIGKILL)"
                     % (" ".join(units), seconds, them))
        else:
            log.info("waiting %d s for %s to stop (--stop-timeout %g s, then ops kills %s)"
                     % (seconds, " ".join(units), timeout, them))
    return say

# What `systemctl is-enabled` says of a unit that is enabled, in effect.
ENABLED = ("enabled", "enabled-runtime", "static", "alias", "indirect", "generated")
# What ops asks systemd of a unit, in one `systemctl show`: enough to tell up
# from down (is_up), enablement, and whether its file changed since loading.
STATE = ("ActiveState", "SubState", "Type", "Result", "UnitFileState", "NeedDaemonReload")


def is_up(props):
    """Is a unit up, from its ``systemctl show`` properties?  Active (or
    starting, but not waiting to restart after a crash: a crash loop is down),
    or a oneshot that finished successfully."""
    state = props.get("ActiveState")
    if state in ("active", "reloading"):
        return True
    if state == "activating":
        return props.get("SubState") != "auto-restart"
    return (props.get("Type") == "oneshot" and props.get("Result") == "success"
            and state == "inactive")


# Room left in the argument space for what is not ours: the environment's
# pointers and alignment, the program's own name, the kernel's slack.
_SLACK = 4096


def arg_max():
    """Bytes one command line (arguments and environment) may take:
    ``OPS_ARG_MAX`` when set (to test batching), else what the OS allows."""
    from ops import environment
    value = environment.get("OPS_ARG_MAX")
    if value is not None:
        return value
    try:
        limit = os.sysconf("SC_ARG_MAX")
    except (ValueError, OSError):
        limit = -1
    return limit if limit > 0 else 131072


def batches(fixed, units, limit=None):
    """Split ``units`` so that ``fixed + batch`` fits in one command line
    (each argument costs its bytes, a NUL and a pointer; the environment
    counts too).  A small list is one batch: the number of calls does not
    grow with a pod until its names fill the OS's argument space."""
    limit = arg_max() if limit is None else limit
    env = sum(len(k) + len(v) + 2 + 8 for k, v in os.environb.items())
    room = limit - env - _SLACK - sum(len(os.fsencode(a)) + 1 + 8 for a in fixed)
    out, cur, size = [], [], 0
    for u in units:
        cost = len(os.fsencode(u)) + 1 + 8
        if cur and size + cost > room:
            out.append(cur)
            cur, size = [], 0
        cur.append(u)
        size += cost
    if cur:
        out.append(cur)
    return out


def systemctl_env():
    """The environment systemctl runs in: ops's own without systemd's
    ``SYSTEMD_*`` variables, which change what systemctl does (where it looks
    for units, ``SYSTEMD_UNIT_PATH``; whether it asks the manager at all,
    ``SYSTEMD_OFFLINE``): what ops installed under /etc/systemd/system is
    what systemctl acts on, whatever the caller's shell holds."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SYSTEMD_")}


class Systemd:
    def __init__(self, layout):
        self.layout = layout
        self.offline = layout.offline

    def _argv(self, args):
        argv = ["systemctl"]
        if self.offline:
            argv.append("--root=" + self.layout.root)
        argv.extend(args)
        return argv

    def _ctl(self, *args, check=True):
        return run(self._argv(args), check=check, env=systemctl_env())

    def _each(self, args, units, check=True):
        """``systemctl ARGS -- UNITS`` in as few calls as the argument space
        allows; the CompletedProcess of each."""
        fixed = self._argv(list(args) + ["--"])
        return [run(fixed + batch, check=check, env=systemctl_env())
                for batch in batches(fixed, units)]

    def _mutate(self, verb, units, *flags):
        units = list(units)
        if not units:
            return
        self._each((verb,) + flags, units)

    def daemon_reload(self):
        if not self.offline:
                self._ctl("daemon-reload")

    def enable(self, units):
        self._mutate("enable", units, "--no-reload")

    def disable(self, units):
        self._mutate("disable", units, "--no-reload")

    def start(self, units):
        if not self.offline:
            self._mutate("start", units)

    def restart(self, units, timeout=None, waiting=None, every=5.0, check=True):
        """``systemctl restart`` of ``units``: each stops by its loaded unit
        (as the last ``daemon-reload`` read it), then starts.  The stop is
        bounded as :meth:`stop`'s: units still stopping (``deactivating``)
        after ``timeout`` seconds are killed, and the restart goes on to the
        start.  Returns the units ops killed."""
        return self._bounded("restart", units, timeout, waiting, every, check)

    def stop(self, units, timeout=None, waiting=None, every=5.0, check=True):
        """Stop ``units``; online, with ``timeout`` seconds, bounded: while
        ``systemctl stop`` waits, ``waiting(units, seconds)`` is told every
        ``every`` seconds which units are still stopping; those still
        stopping after ``timeout`` are killed (SIGKILL to all their
        processes: their ExecStopPost= still runs) and given as long again
        (at least 10 s) to end.  Returns the units whose stop timed out
        (killed by ops, or systemd's own Result=timeout); raises
        :class:`Failed` when some are still not down after the kill.
        A quick stop is one ``systemctl stop``, as without a bound."""
        return self._bounded("stop", units, timeout, waiting, every, check)

    def _bounded(self, verb, units, timeout, waiting, every, check):
        units = list(units)
        if self.offline or not units:
            return []
        if timeout is None:
            self._mutate(verb, units)
            return []
        from ops.runner import run_waiting
        start = time.monotonic()
        late, state = [], {"shown": 0.0, "killed": False, "left": []}

        def stopping():
            props = self._show(units, "ActiveState", "SubState")
            if verb == "restart":     # the stop half: the start after it is not waited for
                return [u for u in units
                        if props.get(u, {}).get("ActiveState") == "deactivating"]
            return [u for u in units if props.get(u, {}).get("ActiveState", "inactive")
                    not in ("inactive", "failed")]

        def tick(_):
            now = time.monotonic() - start
            if not state["killed"] and now >= timeout:
                left = stopping()
                late.extend(u for u in left if u not in late)
                if left:
                    self._each(("kill", "--signal=SIGKILL"), left, check=False)
                state["killed"] = True
                if waiting is not None:
                    waiting(left, now)
                state["shown"] = now
            elif state["killed"] and now >= timeout + max(timeout, 10.0):
                state["left"] = stopping()
                return False
            elif waiting is not None and now - state["shown"] >= every:
                state["shown"] = now
                left = stopping()
                if left:
                    waiting(left, now)
            return True

        fixed = self._argv([verb, "--"])
        for batch in batches(fixed, units):
            try:
                run_waiting(fixed + batch, tick, 1.0, check=check, env=systemctl_env())
            except OpsError:
                if not state["left"]:
                    raise
                u = state["left"][0]
                raise Failed(u, "still stopping %d s after its stop timed out (--stop-timeout "
                             "%g s) and ops killed it" % (time.monotonic() - start - timeout,
                                                         timeout), unit=u, result="timeout")
        if verb == "stop" and time.monotonic() - start >= 1.0:
            # slow: did systemd time the stop out itself?  (A restart's start
            # resets Result: only the units ops killed are known then.)
            props = self._show(units, "Result")
            late.extend(u for u in units if u not in late
                        and props.get(u, {}).get("Result") == "timeout")
        return late

    def stop_quietly(self, units, timeout=None, waiting=None):
        """Best effort :meth:`stop` (bounded the same way), then
        ``reset-failed``.  Returns the units whose stop timed out."""
        units = list(units)
        late = []
        if not units or self.offline:
            return late
        if timeout is None:
            self._each(("stop",), units, check=False)
        else:
            try:
                late = self.stop(units, timeout, waiting, check=False)
            except Failed as e:       # still not down after the kill: said, not raised
                log.warn(str(e))
                late = [e.unit] if e.unit else []
        self.reset_failed(units)
        return late

    def disable_quietly(self, units):
        """Best effort ``disable --no-reload``."""
        units = list(units)
        if units:
            self._each(("disable", "--no-reload"), units, check=False)

    def reset_failed(self, units):
        """``systemctl reset-failed``, best effort: a failed unit becomes
        inactive and its start limit counter starts again (a socket failed by
        its service's start limit can then listen again)."""
        units = list(units)
        if units and not self.offline:
            self._each(("reset-failed",), units, check=False)

    def unit_states(self, units, *props):
        """{unit: {property: value}}: what systemd says of each unit, in one
        batched ``systemctl show`` of ``STATE`` (and ``props``) online.
        Offline there is no manager: only ``UnitFileState``, "enabled" when
        the links ``enable`` makes are on disk (:func:`ops.units.enabled_by_links`),
        else from ``is-enabled`` (asked only of installed units: it stops at a
        missing one; the others are "not-found")."""
        units = list(units)
        if not units:
            return {}
        if not self.offline:
            shown = self._show(units, *(STATE + props))
            return {u: shown.get(u, {}) for u in units}
        states = {u: {"UnitFileState": "not-found"} for u in units}
        present = []
        files = {u: self.layout.unit_path(template_file(u)) for u in units}
        from ops.confine import read_files
        read = read_files(set(files.values()))       # the unit directory walked once
        for u in units:
            if not os.path.lexists(files[u]):
                continue
            if enabled_by_links(self.layout, u, read[files[u]]):   # what ops made: no systemctl
                states[u] = {"UnitFileState": "enabled"}
            else:
                present.append(u)
        lines = [l.strip() for p in (self._each(("is-enabled",), present, check=False)
                                     if present else ())
                 for l in p.stdout.splitlines()]
        for i, u in enumerate(present):
            states[u] = {"UnitFileState": lines[i] if i < len(lines) else "unknown"}
        return states

    def up(self, props):
        """Is a unit up, from :meth:`unit_states`?  Online :func:`is_up`;
        offline ("active" reads as "enabled") its file state is enabled."""
        if self.offline:
            return props.get("UnitFileState") in ENABLED
        return is_up(props)

    def down(self, units):
        """The units that are not up (see :meth:`up`)."""
        states = self.unit_states(units)
        return [u for u in states if not self.up(states[u])]

    def _show(self, units, *props):
        """{unit: {prop: value}} from one batched ``systemctl show``."""
        args = ["show"]
        for p in ("Id",) + props:
            args += ["-p", p]
        out, cur = {}, {}
        for proc in self._each(args, units, check=False):
            for block in proc.stdout.split("\n\n"):
                cur = dict(l.split("=", 1) for l in block.splitlines() if "=" in l)
                if cur.get("Id"):
                    out[cur["Id"]] = cur
        return out

    def known_elsewhere(self, units):
        """Online: {unit: what systemd says of it} of the ``units`` systemd
        itself knows (LoadState other than not-found) from no file in
        /etc/systemd/system: built in, transient, generated, a device or a
        scope.  One batched ``systemctl show``; offline {}."""
        units = list(units)
        if self.offline or not units:
            return {}
        own = self.layout.unit_dir + "/"
        out = {}
        args = self._argv(["show", "-p", "Id", "-p", "LoadState", "-p", "FragmentPath", "--"])
        for batch in batches(args, units):
            proc = run(args + batch, check=False, env=systemctl_env())
            blocks = [dict(l.split("=", 1) for l in b.splitlines() if "=" in l)
                      for b in proc.stdout.split("\n\n") if b.strip()]
            if len(blocks) != len(batch):     # not one block per name: match by Id alone
                ids = {b.get("Id"): b for b in blocks}
                blocks = [ids.get(u, {}) for u in batch]
            for u, b in zip(batch, blocks):
                state = b.get("LoadState", "not-found") or "not-found"
                frag = b.get("FragmentPath", "")
                if state != "not-found" and not frag.startswith(own):
                    out[u] = "systemd itself (LoadState=%s%s)" % (
                        state, ", FragmentPath=" + frag if frag else "")
        return out

    def settle(self, units, seconds):
        """Poll for ``seconds``; return the first units found down, else [].

        A unit that ran again meanwhile counts as down: its ``InvocationID``
        changed since the first look, so it ended and something started it
        again (a kept socket with clients waiting starts a failed service
        within milliseconds, too fast for any poll to see it down)."""
        units = list(units)
        if not units:
            return []
        if self.offline:
            return self.down(units)
        deadline = time.monotonic() + seconds
        first = {}

        def look():
            states = self.unit_states(units, "InvocationID")
            bad = []
            for u in units:
                props = states.get(u, {})
                run_id = props.get("InvocationID", "")
                if not is_up(props) or (run_id and first.setdefault(u, run_id) != run_id):
                    bad.append(u)
            return bad

        bad = look()        # the runs the start began, at once
        if bad or seconds <= 0:
            return bad
        # the next look a moment later: what just started gets the CPU first
        time.sleep(min(0.1, seconds))
        while True:
            bad = look()
            if bad or time.monotonic() >= deadline:
                return bad
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def why(self, unit, lines=10):
        """The last journal lines of the unit's latest run, for the error message:
        its main process's own lines where it has any (see :func:`chosen`)."""
        if self.offline:
            return ""
        props = self._show([unit], "InvocationID", "ExecMainPID").get(unit, {})
        inv = props.get("InvocationID", "").strip()
        match = (["_SYSTEMD_INVOCATION_ID=" + inv, "+", "INVOCATION_ID=" + inv] if inv
                 else ["-u", unit])
        try:
            proc = run(["journalctl", "--no-pager", "-o", "json", "-n", str(lines * 20)] + match,
                       check=False)
        except OpsError:       # no journalctl: the message goes without the lines
            return ""
        out = []
        for line in chosen(proc.stdout, props.get("ExecMainPID", "")):
            line = line.strip()
            if line and line not in out:      # systemd may repeat a line many times
                out.append(line)
        from ops.errors import clip
        return clip(" / ".join(out[-lines:]))         # bounded, control characters escaped


def chosen(journal, main_pid):
    """The messages of ``journal`` (``journalctl -o json`` of one run of a unit)
    that say why it failed: those of the main process (PID ``main_pid``: what it
    and its children wrote on stdout and stderr) and systemd's own (how it
    exited), when the main process wrote any; else all
    but those the unit's processes wrote after systemd saw the main process exit
    (its ExecStop= and ExecStopPost= commands: ``rkt gc`` and the like)."""
    import json
    entries = []
    for text in journal.splitlines():
        try:
            e = json.loads(text)
        except ValueError:
            continue
        msg = e.get("MESSAGE") if isinstance(e, dict) else None
        if isinstance(msg, list):           # not UTF-8 text: journald gives the bytes
            try:
                msg = bytes(msg).decode("utf-8", "replace")
            except (TypeError, ValueError):
                continue
        if isinstance(msg, str):
            entries.append((str(e.get("_PID", "")), msg))
    if main_pid not in ("", "0") and any(pid == main_pid for pid, _ in entries):
        # the main process's words, then systemd's own about it (how it exited)
        first = next(i for i, (pid, _) in enumerate(entries) if pid == main_pid)
        return [m for pid, m in entries[first:] if pid in (main_pid, "1")]
    out, exited = [], False
    for pid, m in entries:
        if pid == "1":
            out.append(m)
            exited = exited or "Main process exited" in m
        elif not exited:
            out.append(m)
    return out
