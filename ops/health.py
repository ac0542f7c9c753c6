"""The pod's optional health check (``health`` in the ops annotation).

It runs as a step of the switch, after the settle: a command on the host
(``exec``: exit status 0 passes) or an HTTP GET (``http``: the answer's status
must be ``status``; redirects are not followed, and no proxy is used, so a
loopback URL means this host).  Each attempt is bounded by ``timeout``; a
failed attempt is repeated up to ``retries`` more times, ``interval`` seconds
apart.  When every attempt fails, the switch fails and the pod is rolled back
like for a unit that did not start.  Offline (``--root``) nothing runs, so
the plan holds no health check there.
"""

import os
import time

from ops import log
from ops.errors import Failed, OpsError, clip

__all__ = ["check"]


def check(ctx, sv, spec, env):
    """Run ``spec`` (a :class:`~ops.records.HealthSpec`) for stored version
    ``sv``; ``env``: the POD_* variables the units get.  Raises Failed."""
    attempts = 1 + spec.retries
    why = None
    for n in range(1, attempts + 1):
        why = _http(ctx, spec) if spec.http else _exec(spec, env)
        if why is None:
            log.info("health check passed (%s)" % spec.describe())
            return
        if n < attempts:
            log.info("health check: %s; attempt %d of %d again in %g s"
                     % (why, n + 1, attempts, spec.interval))
            time.sleep(spec.interval)
    raise Failed("health check of %s %d" % (sv.name, sv.version), "%s (%d attempt%s)"
                 % (why, attempts, "" if attempts == 1 else "s"))


def _exec(spec, env):
    from ops.runner import run
    full = dict(os.environ)
    full.update(env)
    try:
        # bounded: killed (with all it started) at the deadline, output kept to
        # its escaped tail (ops.runner)
        run(list(spec.exec), env=full, timeout=spec.timeout)
    except OpsError as e:
        return "%s: %s" % (spec.exec[0], e.what)
    return None


def _http(ctx, spec):
    import http.client
    from urllib.parse import urlsplit
    u = urlsplit(spec.http)
    path = (u.path or "/") + ("?" + u.query if u.query else "")
    if u.scheme.lower() == "https":
        from ops.fetch import tls_context
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=spec.timeout,
                                           context=tls_context(ctx.ca_file))
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=spec.timeout)
    # One deadline for the attempt: resolving the name, connecting, the
    # headers and the body.  The name is resolved in a thread waited for
    # until the deadline at most (getaddrinfo has no timeout of its own); the
    # socket's timeout bounds each wait; the watchdog ends a server that
    # trickles a byte at a time by shutting the socket at the deadline.
    import socket
    import threading
    deadline = time.monotonic() + spec.timeout
    conn._create_connection = lambda address, timeout, source=None: _connect(address, deadline)
    expired = threading.Event()

    def watchdog():
        expired.set()
        sock = conn.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
    timer = threading.Timer(spec.timeout, watchdog)
    timer.daemon = True
    timer.start()
    try:
        conn.request("GET", path, headers={"User-Agent": "ops health check"})
        resp = conn.getresponse()
        resp.read(1 << 16)
        if expired.is_set():
            raise socket.timeout()
    except (OSError, http.client.HTTPException, ValueError) as e:
        # ValueError: a URL or host name http.client or the IDNA codec refuses (check refuses
        # those; a failed attempt all the same, never an error of its own)
        if isinstance(e, ValueError):
            return "GET %s: cannot be sent (%s)" % (spec.http, clip(str(e)))
        if isinstance(e, _Unresolved):
            return "GET %s: %s" % (spec.http, e)
        if expired.is_set() or isinstance(e, socket.timeout):
            return "GET %s: no whole answer within %g s" % (spec.http, spec.timeout)
        if isinstance(e, OSError):
            return "GET %s: %s" % (spec.http, clip(getattr(e, "strerror", None) or str(e)))
        return "GET %s: bad answer (%s)" % (spec.http, type(e).__name__)
    finally:
        timer.cancel()
        conn.close()
    if resp.status != spec.status:
        return "GET %s answered %d %s, expected %d" % (spec.http, resp.status, clip(resp.reason),
                                                        spec.status)
    return None


class _Unresolved(OSError):
    """The host name of an http check was not resolved before the deadline."""


def _resolve(host, port, deadline):
    """``socket.getaddrinfo`` in a thread of its own, waited for until
    ``deadline`` (``time.monotonic()``) at most: a resolver that hangs
    cannot hold the check, and with it ops's lock, past the attempt's
    deadline (the thread is left to end on its own)."""
    import socket
    import threading
    box = {}

    def run():
        try:
            box["infos"] = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        except BaseException as e:        # handed to the waiting thread
            box["error"] = e
    t = threading.Thread(target=run, name="ops-health-resolve")
    t.daemon = True
    t.start()
    t.join(max(0.0, deadline - time.monotonic()))
    if t.is_alive():
        raise _Unresolved("the name %s was not resolved within the timeout" % host)
    if "error" in box:
        raise box["error"]
    return box["infos"]


def _connect(address, deadline):
    """A connected socket to ``address`` (host, port), trying each address
    the name resolves to, all within ``deadline``."""
    import socket
    host, port = address
    error = None
    for family, kind, proto, _, sockaddr in _resolve(host, port, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s = socket.socket(family, kind, proto)
        try:
            s.settimeout(left)
            s.connect(sockaddr)
            return s
        except OSError as e:
            error = e
            s.close()
    raise error or socket.timeout("timed out")
