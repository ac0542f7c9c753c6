"""The signals ops traps, in one list, and the two ways it treats them.

From the start of a run (:func:`trap`), SIGINT, SIGTERM and SIGHUP (Ctrl-C, a
shutdown or a caller's timeout, a closed terminal) raise :class:`Interrupted`
where the program is: staging is undone, a switch rolled back, and ops exits
1 with one line.  A signal the caller set to be ignored (nohup) stays ignored.

From the commit of a transaction, and while the result is written
(:func:`hold`), they are ignored: an interrupt there could only make ops
report a failure for work that is done, or cut its output in two.
"""

__all__ = ["TRAPPED", "Interrupted", "trap", "hold"]

# (number, name): SIGHUP, SIGINT, SIGTERM on every Linux architecture.  The
# numbers are written out: importing `signal` (which imports enum) costs
# start-up time on every `ops list`; `_signal` is the same functions.
TRAPPED = ((2, "SIGINT"), (15, "SIGTERM"), (1, "SIGHUP"))


class Interrupted(KeyboardInterrupt):
    """A trapped signal arrived: ``signum`` and its ``name``."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum
        self.name = dict(TRAPPED).get(signum, "signal %d" % signum)

    @classmethod
    def name_of(cls, exc):
        """The signal's name for a KeyboardInterrupt (a plain one is SIGINT)."""
        return getattr(exc, "name", "SIGINT")


_held = False


def _raise(signum, frame):
    if not _held:
        raise Interrupted(signum)


class trap:
    """Context manager: trapped signals raise :class:`Interrupted` inside.
    ``restore``: give the previous handlers back on leaving (ops run
    in-process, as the tests and a library caller run it); the program's
    own run keeps them to its exit, so a signal after the output is written
    cannot turn into a second one."""

    def __init__(self, restore=True):
        self.restore = restore
        self.saved = {}

    def __enter__(self):
        import _signal
        global _held
        _held = False
        try:
            for signum, _ in TRAPPED:
                old = _signal.getsignal(signum)
                if old != _signal.SIG_IGN:
                    _signal.signal(signum, _raise)
                    self.saved[signum] = old
        except ValueError:       # not the main thread: signals are the caller's
            self.saved.clear()
        return self

    def __exit__(self, *exc):
        hold()
        if self.restore:
            import _signal
            for signum, handler in self.saved.items():
                try:
                    _signal.signal(signum, handler)
                except (ValueError, TypeError):
                    pass
        return False


def hold():
    """From now on a trapped signal is ignored, to the end of the run (or of
    the :class:`trap` block).  Called at a transaction's commit and when the
    result is written."""
    global _held
    _held = True
    import _signal
    for signum, _ in TRAPPED:
        try:
            if _signal.getsignal(signum) == _raise:
                continue                      # the trap itself ignores it now
            _signal.signal(signum, _signal.SIG_IGN)
        except (ValueError, TypeError):       # not the main thread
            pass
