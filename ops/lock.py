"""The one lock every mutating command holds: ``flock`` on var/lib/ops/lock.

flock is released by the kernel when its holder dies, so a killed run never
leaves a stale lock.  The file holds the PID of the holder (or, when the
lock is free, of the last one), for the message a waiting run prints when
it gives up.
"""

import fcntl
import os
import time

from ops.errors import LockTimeout, UsageError

__all__ = ["Lock"]


class Lock:
    def __init__(self, path, timeout=120.0):
        self.path = path
        self.timeout = timeout
        self.fd = None

    def acquire(self):
        from ops import confine
        try:
            fd = confine.open_file(self.path, os.O_RDWR | os.O_CREAT, 0o644, create_dirs=True)
        except OSError as e:
            raise UsageError(self.path, "cannot open the lock file: %s" % e.strerror)
        deadline = time.monotonic() + self.timeout
        delay = 0.02
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError:
                    if time.monotonic() >= deadline:
                        holder = _read_pid(fd)
                        raise LockTimeout(self.path, "held by PID %s; gave up after %g s "
                                          "(--lock-timeout)" % (holder or "unknown",
                                                                self.timeout))
                    time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                    delay = min(delay * 2, 0.25)
            # one write of a fixed width, never an empty file: a run that gives up
            # at this moment reads this PID or the previous holder's, not nothing
            record = b"%20d\n" % os.getpid()
            try:
                os.pwrite(fd, record, 0)
                os.ftruncate(fd, len(record))
            except OSError as e:
                # without it, `status` would call this run an interrupted one
                raise UsageError(self.path, "cannot write this run's PID into the lock file: %s"
                                 % e.strerror)
        except BaseException:        # given up, failed, or interrupted: the lock is let go
            os.close(fd)
            raise
        self.fd = fd
        return self

    def release(self):
        if self.fd is not None:
            os.close(self.fd)   # closing drops the flock; the PID stays, as the last holder's
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def _read_pid(fd):
    try:
        return os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
