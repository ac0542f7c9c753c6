"""ops.fetch against real HTTP and HTTPS servers on 127.0.0.1 (SPEC §7)."""

import hashlib
import os
import socket
import sys
import threading
import time

import pytest

from ops import log
from ops.atomic import TMP_PREFIX
from ops.errors import FetchError, UsageError
from ops.fetch import download, is_remote, local_name
from tests.support.servers import (
    body, make_certs, redirect, sequence, serve, stall, status, trickle, truncated)

FAST = {"backoff": 0.01}


pytestmark = [pytest.mark.usefixtures("no_proxy"), pytest.mark.compat]   # compat: pytest.ini


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def dest(tmp_path):
    return str(tmp_path / "var" / "lib" / "ops" / "tmp")   # does not exist yet


def fail(uri, dest, **kw):
    with pytest.raises(FetchError) as info:
        download(uri, dest, **kw)
    assert info.value.where == uri
    assert info.value.exit_code == 1
    assert str(info.value) == "%s: %s" % (uri, info.value.what)
    return info.value.what


def leftovers(dest):
    return sorted(os.listdir(dest)) if os.path.isdir(dest) else []


# --- names ------------------------------------------------------------------

@pytest.mark.parametrize("location,expected", [
    ("http://example.com/a.aci", True),
    ("https://example.com/a.aci", True),
    ("HTTPS://example.com/a.aci", True),
    ("Http://example.com/", True),
    ("docker://busybox", False),
    ("example.com/app:1.0", False),
    ("images/app.aci", False),
    ("ftp://example.com/a.aci", False),
    ("http:/example.com", False),
    ("", False),
    (None, False),
])
def test_is_remote(location, expected):
    assert is_remote(location) is expected


@pytest.mark.parametrize("uri,base", [
    ("https://example.com/images/app-1.0.aci", "app-1.0.aci"),
    ("https://example.com/images/app-1.0.aci?token=a/b#frag", "app-1.0.aci"),
    ("http://example.com/my%20app%2Bx.aci", "my_app_x.aci"),
    ("http://example.com/dir/", "download"),
    ("http://example.com", "download"),
    ("http://example.com/..", "download"),
    ("http://example.com/x/%2E%2E%2Fetc%2Fpasswd", "passwd"),
    ("http://example.com/x/%2E%2E", "download"),
    ("http://example.com/x/a%00b%0A.aci", "a_b_.aci"),
])
def test_local_name(uri, base):
    name = local_name(uri)
    assert name == hashlib.sha256(uri.encode()).hexdigest()[:16] + "-" + base
    assert "/" not in name


def test_local_name_keeps_extension_of_a_long_basename():
    uri = "http://example.com/" + "n" * 300 + ".aci"
    name = local_name(uri)
    assert name.endswith("nnn.aci") and len(name) <= 117


def test_not_a_remote_uri_is_a_usage_error(dest):
    with pytest.raises(UsageError):
        download("images/app.aci", dest)


# --- plain HTTP -------------------------------------------------------------

def test_download_writes_identical_bytes_and_keeps_the_extension(dest):
    data = os.urandom(300 * 1024 + 7)
    with serve({"/images/app-1.0.aci": body(data)}) as srv:
        uri = srv.url("/images/app-1.0.aci")
        path = download(uri, dest, **FAST)
        assert srv.hits("/images/app-1.0.aci") == 1
    assert os.path.dirname(path) == dest
    assert path.endswith("-app-1.0.aci")
    with open(path, "rb") as f:
        assert f.read() == data
    assert leftovers(dest) == [os.path.basename(path)]


def test_download_again_replaces_the_file(dest):
    with serve({"/a.aci": sequence(body(b"first"), body(b"second"))}) as srv:
        p1 = download(srv.url("/a.aci"), dest)
        p2 = download(srv.url("/a.aci"), dest)
    assert p1 == p2
    with open(p2, "rb") as f:
        assert f.read() == b"second"
    assert leftovers(dest) == [os.path.basename(p2)]


def test_empty_body(dest):
    with serve({"/empty": body(b"")}) as srv:
        path = download(srv.url("/empty"), dest)
    assert os.path.getsize(path) == 0


def test_404_is_not_retried(dest):
    with serve({}) as srv:
        what = fail(srv.url("/missing.aci"), dest, **FAST)
        assert srv.hits("/missing.aci") == 1
    assert what == "404 Not Found"
    assert leftovers(dest) == []


def test_403_is_not_retried(dest):
    with serve({"/secret": status(403)}) as srv:
        what = fail(srv.url("/secret"), dest, **FAST)
        assert srv.hits("/secret") == 1
    assert what == "403 Forbidden"


def test_500_twice_then_200_succeeds_on_the_third_attempt(dest):
    data = b"payload" * 1000
    with serve({"/flaky.aci": sequence(status(500), status(503), body(data))}) as srv:
        path = download(srv.url("/flaky.aci"), dest, **FAST)
        assert srv.hits("/flaky.aci") == 3
    with open(path, "rb") as f:
        assert f.read() == data
    assert leftovers(dest) == [os.path.basename(path)]


def test_500_always_fails_after_three_attempts(dest):
    with serve({"/broken": status(500)}) as srv:
        what = fail(srv.url("/broken"), dest, **FAST)
        assert srv.hits("/broken") == 3
    assert what == "500 Internal Server Error after 3 attempts"
    assert leftovers(dest) == []


def test_attempts_and_backoff_are_honoured(dest):
    with serve({"/broken": status(502)}) as srv:
        t0 = time.monotonic()
        what = fail(srv.url("/broken"), dest, attempts=3, backoff=0.2)
        elapsed = time.monotonic() - t0
        assert srv.hits("/broken") == 3
        what1 = fail(srv.url("/broken"), dest, attempts=1, backoff=5)
        assert srv.hits("/broken") == 4
    assert what == "502 Bad Gateway after 3 attempts"
    assert what1 == "502 Bad Gateway"
    assert 0.6 <= elapsed < 3          # slept 0.2 + 0.4


def test_short_read_fails_and_leaves_nothing(dest):
    with serve({"/cut.aci": truncated(1000, 100)}) as srv:
        what = fail(srv.url("/cut.aci"), dest, **FAST)
        assert srv.hits("/cut.aci") == 3
    assert what.startswith("short read: got 100 of 1000 bytes")
    assert leftovers(dest) == []


def test_short_read_then_complete_succeeds(dest):
    data = b"z" * 1000
    with serve({"/cut.aci": sequence(truncated(1000, 100), body(data))}) as srv:
        path = download(srv.url("/cut.aci"), dest, **FAST)
    with open(path, "rb") as f:
        assert f.read() == data


def test_failure_keeps_an_earlier_download_of_the_same_uri(dest):
    with serve({"/a.aci": sequence(body(b"good"), truncated(1000, 10))}) as srv:
        path = download(srv.url("/a.aci"), dest)
        fail(srv.url("/a.aci"), dest, attempts=1)
    with open(path, "rb") as f:
        assert f.read() == b"good"
    assert leftovers(dest) == [os.path.basename(path)]


def test_stall_before_response_times_out_in_bounded_time(dest):
    with serve({"/slow": stall(10)}) as srv:
        t0 = time.monotonic()
        what = fail(srv.url("/slow"), dest, timeout=0.3, attempts=2, **FAST)
        elapsed = time.monotonic() - t0
        assert srv.hits("/slow") == 2
    assert what == "timed out after 0.3 s; gave up after 2 attempts"
    assert 0.6 <= elapsed < 3
    assert leftovers(dest) == []


def test_stall_mid_body_times_out_and_leaves_nothing(dest):
    with serve({"/slow.aci": stall(10, after_headers=True)}) as srv:
        t0 = time.monotonic()
        what = fail(srv.url("/slow.aci"), dest, timeout=0.3, attempts=1)
        assert time.monotonic() - t0 < 2
    assert what == "timed out after 0.3 s"
    assert leftovers(dest) == []


def test_connection_refused(dest):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                  # nothing listens there now
    uri = "http://127.0.0.1:%d/app.aci" % port
    what = fail(uri, dest, attempts=2, **FAST)
    assert what == "connection refused; gave up after 2 attempts"
    assert leftovers(dest) == []


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_is_followed(dest, code):
    data = os.urandom(5000)
    routes = {"/latest.aci": redirect("/store/app-2.aci", code),
              "/store/app-2.aci": body(data)}
    with serve(routes) as srv:
        uri = srv.url("/latest.aci")
        path = download(uri, dest, **FAST)
        assert srv.hits("/latest.aci") == 1
        assert srv.hits("/store/app-2.aci") == 1
    assert os.path.basename(path) == local_name(uri)
    assert path.endswith("-latest.aci")
    with open(path, "rb") as f:
        assert f.read() == data


def test_redirect_to_another_server(dest):
    with serve({"/real.aci": body(b"elsewhere")}) as other:
        with serve({"/a.aci": redirect(other.url("/real.aci"))}) as srv:
            path = download(srv.url("/a.aci"), dest)
    with open(path, "rb") as f:
        assert f.read() == b"elsewhere"


@pytest.mark.parametrize("routes", [
    {"/loop": redirect("/loop")},
    {"/a": redirect("/b"), "/b": redirect("/a")},
])
def test_redirect_loop_is_an_error(dest, routes):
    with serve(routes) as srv:
        what = fail(srv.url(sorted(routes)[0]), dest, **FAST)
        total = sum(srv.hits(p) for p in routes)
    assert what == "redirect loop"
    assert 2 <= total <= 11            # urllib gives up; not retried
    assert leftovers(dest) == []


def test_long_redirect_chain_is_an_error(dest):
    routes = {"/r%d" % i: redirect("/r%d" % (i + 1)) for i in range(20)}
    with serve(routes) as srv:
        what = fail(srv.url("/r0"), dest, **FAST)
        total = sum(srv.hits(p) for p in routes)
    assert what == "redirect loop"
    assert total == 11


# --- HTTPS --------------------------------------------------------------------

def test_untrusted_certificate_fails(dest, certs):
    with serve({"/app.aci": body(b"secret")}, tls=certs) as srv:
        what = fail(srv.url("/app.aci"), dest, **FAST)
        assert srv.hits("/app.aci") == 0       # no request after a failed handshake
    assert what.startswith("TLS certificate verification failed: ")
    assert "certificate" in what[len("TLS certificate verification failed: "):]
    assert leftovers(dest) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_trusted_via_ca_file(dest, certs, host):
    data = os.urandom(70000)
    with serve({"/app.aci": body(data)}, tls=certs) as srv:
        path = download(srv.url("/app.aci", host=host), dest, ca_file=certs.ca_cert, **FAST)
    with open(path, "rb") as f:
        assert f.read() == data


def test_missing_ca_file_is_a_usage_error(dest, tmp_path):
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(UsageError) as info:
        download("https://127.0.0.1:1/x", dest, ca_file=missing)
    assert info.value.where == missing
    assert info.value.exit_code == 2
    assert leftovers(dest) == []


def test_garbage_ca_file_is_a_usage_error(dest, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 !!\n-----END CERTIFICATE-----\n")
    with pytest.raises(UsageError) as info:
        download("https://127.0.0.1:1/x", dest, ca_file=str(bad))
    assert info.value.where == str(bad)


# --- progress -----------------------------------------------------------------

SLOW = os.urandom(48 * 1024)


def test_no_progress_when_stderr_is_not_a_tty(dest, capfd):
    with serve({"/slow.aci": trickle(SLOW, 1.5)}) as srv:
        t0 = time.monotonic()
        path = download(srv.url("/slow.aci"), dest)
        assert time.monotonic() - t0 > 1.2
    with open(path, "rb") as f:
        assert f.read() == SLOW
    out, err = capfd.readouterr()
    assert out == "" and err == ""


class _Pty:
    """sys.stderr pointed at a pseudo-terminal; collects what is written to it."""

    def __init__(self, monkeypatch):
        self.master, slave = os.openpty()
        self.file = os.fdopen(slave, "w", encoding="utf-8")
        self.chunks = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        monkeypatch.setattr(sys, "stderr", self.file)

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self.chunks.append(data)

    def close(self):
        self.file.close()
        self.reader.join(5)
        os.close(self.master)
        return b"".join(self.chunks).decode()


def test_progress_on_a_tty_for_a_slow_download(dest, monkeypatch):
    pty = _Pty(monkeypatch)
    try:
        with serve({"/slow.aci": trickle(SLOW, 1.6)}) as srv:
            path = download(srv.url("/slow.aci"), dest)
    finally:
        text = pty.close()
    with open(path, "rb") as f:
        assert f.read() == SLOW
    assert text.startswith("\r")
    assert text.endswith("\n")
    assert text.count("\n") == 1
    lines = [l.strip() for l in text.split("\r") if l.strip()]
    # Drawn after the first second, at most ~10 times a second, ending at 100 %.
    assert 1 <= len(lines) <= 10
    assert lines[-1].startswith("slow.aci  48.0 KiB / 48.0 KiB  100%")
    assert lines[-1].endswith("/s")


def test_no_progress_on_a_tty_for_a_fast_download(dest, monkeypatch):
    pty = _Pty(monkeypatch)
    try:
        with serve({"/fast.aci": body(SLOW)}) as srv:
            download(srv.url("/fast.aci"), dest)
    finally:
        text = pty.close()
    assert text == ""


def test_no_progress_on_a_tty_when_quiet(dest, monkeypatch):
    monkeypatch.setattr(log, "_verbosity", 0)
    pty = _Pty(monkeypatch)
    try:
        with serve({"/slow.aci": trickle(SLOW, 1.2)}) as srv:
            download(srv.url("/slow.aci"), dest)
    finally:
        text = pty.close()
    assert text == ""


def test_temporary_files_use_the_ops_prefix(dest):
    # A download cut off mid-way by the process dying leaves a file that
    # ops.atomic.remove_leftovers recognises; observe it while in flight.
    seen = []
    with serve({"/slow.aci": trickle(SLOW, 0.6, pieces=6)}) as srv:
        t = threading.Thread(target=download, args=(srv.url("/slow.aci"), dest))
        t.start()
        deadline = time.monotonic() + 5
        while t.is_alive() and time.monotonic() < deadline:
            if os.path.isdir(dest):
                seen.extend(n for n in os.listdir(dest) if n not in seen)
            time.sleep(0.02)
        t.join(5)
    tmp = [n for n in seen if n.startswith(TMP_PREFIX)]
    assert tmp and all(n.endswith("-slow.aci") for n in tmp)
    assert all(not n.startswith(TMP_PREFIX) for n in os.listdir(dest))
