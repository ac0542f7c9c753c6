"""Downloads of remote artifacts (SPEC §7).

:func:`download` fetches one ``http://`` or ``https://`` URI into a directory:
streamed to a temporary name (``ops.atomic.TMP_PREFIX``), flushed, fsynced and
renamed, so the directory holds the whole artifact or nothing from this call.
Connection errors, resets, timeouts, short reads and 5xx answers are retried
with back-off; 4xx answers are not.  Every failure is a :class:`FetchError`
whose ``where`` is the URI and whose ``what`` says what went wrong.

A download that lasts longer than a second draws a progress bar on stderr when
stderr is a terminal (and ``-q`` was not given); otherwise it prints nothing.
"""

import hashlib
import http.client
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from ops import __version__, confine, log
from ops.atomic import fsync_dir, remove_quietly, tmp_leaf
from ops.errors import FetchError, UsageError
from ops.names import is_remote

__all__ = ["is_remote", "download", "local_name", "tls_context"]

_CHUNK = 64 * 1024


def local_name(uri):
    """The file name a download of ``uri`` gets: ``<16 hex of sha256(uri)>-<basename>``.

    The basename is the last component of the URL path, percent-decoded and
    reduced to ``[A-Za-z0-9._-]`` (at most 100 characters, keeping the end so an
    extension such as ``.aci`` survives); ``download`` when nothing is left.
    """
    digest = hashlib.sha256(uri.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    path = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
    base = re.sub(r"[^A-Za-z0-9._-]", "_", path.rsplit("/", 1)[-1])[-100:]
    if base.strip("._") == "":
        base = "download"
    return "%s-%s" % (digest, base)


class _Attempt(Exception):
    """One attempt failed; ``retry`` says whether another may succeed."""

    def __init__(self, what, retry):
        super().__init__(what)
        self.what = what
        self.retry = retry


class _Redirects(urllib.request.HTTPRedirectHandler):
    """urllib's redirect handling (at most 10, loops cut short), plus 308 on
    Pythons before 3.11.  Only http:// and https:// targets are followed
    (urllib would follow ftp://), and never from https:// down to http://:
    the bundle named TLS, and a redirect must not drop it."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            new = urllib.parse.urljoin(req.full_url, location.strip())
            scheme = urllib.parse.urlsplit(new).scheme.lower()
            why = None
            if scheme not in ("http", "https"):
                why = "only http:// and https:// are followed"
            elif scheme == "http" and req.full_url.lower().startswith("https:"):
                why = "a redirect from https:// to plain http:// is not followed (give the " \
                      "http:// URI in the bundle if it is meant)"
            if why:
                fp.close()
                raise _Attempt("%d redirect to %s refused: %s" % (code, _shown(new), why), False)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if code == 308:
            code = 307  # same semantics for GET; 3.8-3.10 do not know 308
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _shown(uri):
    """A URI from a server as it may appear in a message: printable, bounded."""
    text = "".join(c if c.isprintable() else "?" for c in uri)
    return text if len(text) <= 200 else text[:200] + "..."


def tls_context(ca_file=None):
    """The TLS settings of every https connection ops makes (downloads, the
    health check): certificates verified against the system store plus
    ``ca_file`` (``--ca-file``).  Raises UsageError for a missing or bad
    ``ca_file``."""
    ctx = ssl.create_default_context()
    if ca_file is not None:
        if not os.path.isfile(ca_file):
            raise UsageError(ca_file, "CA file not found (check --ca-file)")
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError, ValueError) as e:
            raise UsageError(ca_file, "cannot load CA file: %s" % (
                getattr(e, "strerror", None) or getattr(e, "reason", None) or e))
    return ctx


def download(uri, dest_dir, *, timeout=30.0, ca_file=None, attempts=3, backoff=0.5):
    """Download ``uri`` into ``dest_dir`` (created if missing); return the file's path.

    ``timeout`` bounds the connection and every read (seconds); up to
    ``attempts`` tries, sleeping ``backoff * 2**n`` seconds after the n-th
    failed one.  TLS is verified against the system store plus ``ca_file``.
    Raises FetchError (``where`` is ``uri``), or UsageError for a bad ``ca_file``.
    """
    if not is_remote(uri):
        raise UsageError(uri, "not an http:// or https:// URI")
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=tls_context(ca_file)), _Redirects())
    final = os.path.join(dest_dir, local_name(uri))
    try:
        confine.makedirs(dest_dir)
    except OSError as e:
        raise FetchError(uri, "cannot create %s: %s" % (dest_dir, e.strerror or e))
    attempts = max(1, int(attempts))
    for n in range(attempts):
        try:
            tmp = _attempt(opener, uri, dest_dir, final, timeout)
        except _Attempt as e:
            if not e.retry:
                raise FetchError(uri, e.what)
            if n + 1 == attempts:
                if attempts == 1:
                    raise FetchError(uri, e.what)
                sep = " after" if e.what[:1].isdigit() else "; gave up after"
                raise FetchError(uri, "%s%s %d attempts" % (e.what, sep, attempts))
            time.sleep(backoff * 2 ** n)
            continue
        try:
            confine.rename(tmp, final)
        except OSError as e:
            remove_quietly(tmp)
            raise FetchError(uri, "cannot rename into %s: %s" % (final, e.strerror or e))
        fsync_dir(dest_dir)
        return final
    raise AssertionError("unreachable")


def _attempt(opener, uri, dest_dir, final, timeout):
    """One try: return the temporary file holding the whole body, or raise _Attempt."""
    req = urllib.request.Request(uri, headers={"User-Agent": "ops/" + __version__})
    progress = _Progress(os.path.basename(final).split("-", 1)[-1])
    try:
        try:
            resp = opener.open(req, timeout=timeout)
        except BaseException as e:
            raise _classify(e, timeout)
        with resp:
            try:
                total = int(resp.headers.get("Content-Length", ""))
            except ValueError:
                total = None
            fd, tmp = _create_tmp(dest_dir, os.path.basename(final))
            try:
                with os.fdopen(fd, "wb") as f:
                    got = _copy(resp, f, total, timeout, progress)
                    if total is not None and got < total:
                        raise _Attempt("short read: got %d of %d bytes" % (got, total), True)
                    try:
                        f.flush()
                        os.fsync(f.fileno())
                    except OSError as e:
                        raise _Attempt("cannot write %s: %s" % (tmp, e.strerror or e), False)
            except BaseException:
                remove_quietly(tmp)
                raise
        progress.finish(True)
        return tmp
    finally:
        progress.finish(False)


def _create_tmp(dest_dir, base):
    """(descriptor, path) of a new temporary file in ``dest_dir``, created
    with ``O_EXCL | O_NOFOLLOW`` from its confined directory."""
    import secrets
    while True:
        tmp = os.path.join(dest_dir, tmp_leaf(base, secrets.token_hex(4) + "-"))
        try:
            return confine.open_file(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600), tmp
        except FileExistsError:
            continue


def _copy(resp, f, total, timeout, progress):
    got = 0
    while True:
        try:
            chunk = resp.read(_CHUNK)
        except http.client.IncompleteRead as e:
            raise _Attempt("short read: got %d bytes, connection closed mid-body"
                           % (got + len(e.partial)), True)
        except BaseException as e:
            raise _classify(e, timeout)
        if not chunk:
            return got
        try:
            f.write(chunk)
        except OSError as e:
            raise _Attempt("cannot write %s: %s" % (f.name, e.strerror or e), False)
        got += len(chunk)
        progress.update(got, total)


def _classify(e, timeout):
    """Turn an exception from urllib/http.client into an _Attempt (re-raise others)."""
    if isinstance(e, urllib.error.HTTPError):
        code, reason = e.code, e.reason
        e.close()
        if 300 <= code < 400 and isinstance(reason, str) and \
                reason.startswith(urllib.request.HTTPRedirectHandler.inf_msg):
            return _Attempt("redirect loop", False)
        if not reason:
            try:
                reason = http.HTTPStatus(code).phrase
            except ValueError:
                reason = "error"
        return _Attempt("%d %s" % (code, reason), code >= 500)
    if isinstance(e, urllib.error.URLError) and isinstance(e.reason, BaseException):
        e = e.reason
    elif isinstance(e, urllib.error.URLError):
        return _Attempt(str(e.reason), False)
    if isinstance(e, ssl.SSLCertVerificationError):
        return _Attempt("TLS certificate verification failed: %s"
                        % (e.verify_message or e.reason or e), False)
    if isinstance(e, (socket.timeout, TimeoutError)):
        return _Attempt("timed out after %g s" % timeout, True)
    if isinstance(e, ConnectionRefusedError):
        return _Attempt("connection refused", True)
    if isinstance(e, http.client.RemoteDisconnected):
        return _Attempt("connection closed by the server before a response", True)
    if isinstance(e, ConnectionResetError):
        return _Attempt("connection reset", True)
    if isinstance(e, ssl.SSLError):
        return _Attempt("TLS error: %s" % (e.reason or e), isinstance(e, ssl.SSLEOFError))
    if isinstance(e, socket.gaierror):
        return _Attempt("cannot resolve host: %s" % (e.strerror or e), True)
    if isinstance(e, http.client.HTTPException):
        return _Attempt("bad HTTP response: %s" % (e.__class__.__name__,), False)
    if isinstance(e, OSError):
        return _Attempt(e.strerror or str(e) or e.__class__.__name__, True)
    if isinstance(e, ValueError):  # e.g. a malformed URL
        return _Attempt(str(e), False)
    raise e


def _size(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (n, unit)
        n /= 1024.0


class _Progress:
    """A one-line progress bar on stderr, drawn only for a terminal and only
    once the download has lasted a second; redrawn at most 10 times a second."""

    def __init__(self, label):
        self.label = label
        self.start = time.monotonic()
        self.last = 0.0
        self.width = 0
        self.drawn = False
        self.done = False
        self.got, self.total = 0, None
        err = sys.stderr
        try:
            self.on = log.verbosity() >= 1 and err is not None and err.isatty()
        except (AttributeError, ValueError, OSError):
            self.on = False

    def update(self, got, total, force=False):
        self.got, self.total = got, total
        if not self.on or self.done:
            return
        now = time.monotonic()
        elapsed = now - self.start
        if elapsed < 1.0 or (not force and now - self.last < 0.1):
            return
        self.last = now
        line = "%s  %s" % (self.label, _size(got))
        if total:
            line += " / %s  %3d%%" % (_size(total), min(100, got * 100 // total))
        line += "  %s/s" % _size(got / elapsed)
        self._write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.drawn = True

    def finish(self, ok):
        if self.done:
            return
        if ok and self.drawn:
            self.update(self.got, self.total, force=True)
        self.done = True
        if self.drawn:
            self._write("\n")

    def _write(self, text):
        try:
            sys.stderr.write(text)
            sys.stderr.flush()
        except (AttributeError, OSError, ValueError):
            self.on = False
