"""systemctl, batched: one call per verb for all the units of a step.

Offline mode (``--root`` other than /) only enables and disables with
``systemctl --root=DIR``; start, stop, reload and settle do nothing there and
"active" reads as "enabled".  Unit names are arguments, never shell text.
"""

import time

from ops.errors import OpsError
from ops.runner import run

__all__ = ["Systemd"]


class Systemd:
    def __init__(self, layout):
        self.layout = layout
        self.offline = layout.offline

    def _ctl(self, *args, check=True):
        argv = ["systemctl"]
        if self.offline:
            argv.append("--root=" + self.layout.root)
        argv.extend(args)
        return run(argv, check=check)

    def _mutate(self, verb, units, *flags):
        units = list(units)
        if not units:
            return
        self._ctl(verb, *flags, "--", *units)

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

    def stop(self, units):
        if not self.offline:
            self._mutate("stop", units)

    def stop_and_disable_quietly(self, units):
        """For rollbacks: best effort, whatever state a failed run left."""
        units = list(units)
        if not units:
            return
        if not self.offline:
            self._ctl("stop", "--", *units, check=False)
        self._ctl("disable", "--no-reload", "--", *units, check=False)
        if not self.offline:
            self._ctl("reset-failed", "--", *units, check=False)

    def states(self, units):
        """{unit: state}: ``is-active`` online, ``is-enabled`` offline."""
        units = list(units)
        if not units:
            return {}
        verb = "is-enabled" if self.offline else "is-active"
        proc = self._ctl(verb, "--", *units, check=False)
        lines = proc.stdout.splitlines()
        states = {}
        for i, u in enumerate(units):
            states[u] = lines[i].strip() if i < len(lines) else "unknown"
        return states

    def good(self, state):
        if self.offline:
            return state in ("enabled", "enabled-runtime", "static", "alias", "indirect",
                             "generated")
        return state in ("active", "reloading", "activating")

    def inactive_units(self, units):
        """The units that are not up (not active online, not enabled offline).

        "activating" counts as up, except a unit waiting to be restarted
        after a crash (SubState auto-restart): a crash loop is down."""
        states = self.states(units)
        bad = [u for u, s in states.items() if not self.good(s)]
        starting = [u for u, s in states.items() if s == "activating"]
        if starting and not self.offline:
            subs = self._show(starting, "SubState")
            bad += [u for u in starting if subs.get(u, {}).get("SubState") == "auto-restart"]
        return [u for u in bad if not self._finished_oneshot(u)]

    def _show(self, units, *props):
        """{unit: {prop: value}} from one batched ``systemctl show``."""
        args = ["show"]
        for p in ("Id",) + props:
            args += ["-p", p]
        proc = self._ctl(*args, "--", *units, check=False)
        out, cur = {}, {}
        for block in proc.stdout.split("\n\n"):
            cur = dict(l.split("=", 1) for l in block.splitlines() if "=" in l)
            if cur.get("Id"):
                out[cur["Id"]] = cur
        return out

    def show(self, units, *props):
        """{unit: {prop: value}} of ``units``, in one ``systemctl show`` (online only)."""
        units = list(units)
        if self.offline or not units:
            return {}
        return self._show(units, *props)

    def _finished_oneshot(self, unit):
        if self.offline:
            return False
        props = self._show([unit], "Type", "Result", "ActiveState").get(unit, {})
        return (props.get("Type") == "oneshot" and props.get("Result") == "success"
                and props.get("ActiveState") == "inactive")

    def settle(self, units, seconds):
        """Poll for ``seconds``; return the first units found down, else []."""
        units = list(units)
        if not units:
            return []
        if self.offline:
            return self.inactive_units(units)
        deadline = time.monotonic() + seconds
        while True:
            bad = self.inactive_units(units)
            if bad or time.monotonic() >= deadline:
                return bad
            time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))

    def why(self, unit, lines=5):
        """The last journal lines of the unit's latest run, for the error message."""
        if self.offline:
            return ""
        proc = self._ctl("show", "-p", "InvocationID", "--value", "--", unit, check=False)
        inv = proc.stdout.strip()
        match = (["_SYSTEMD_INVOCATION_ID=" + inv, "+", "INVOCATION_ID=" + inv] if inv
                 else ["-u", unit])
        try:
            proc = run(["journalctl", "--no-pager", "-o", "cat", "-n", str(lines * 4)] + match,
                       check=False)
        except OpsError:       # no journalctl: the message goes without the lines
            return ""
        out = []
        for line in proc.stdout.splitlines():
            line = line.strip()
            if line and line not in out:      # systemd may repeat a line many times
                out.append(line)
        return " / ".join(out[-lines:])
