"""Loopback HTTP and HTTPS servers for tests, and a throwaway CA made with ``openssl``.

    certs = make_certs(tmp_path)                       # CA + cert for 127.0.0.1/localhost
    routes = {"/app.aci": body(data), "/gone": status(404),
              "/flaky": sequence(status(500), body(b"ok"))}
    with serve(routes, tls=certs) as srv:              # tls=None for plain HTTP
        srv.url("/app.aci")                            # https://127.0.0.1:PORT/app.aci
        srv.hits("/flaky")                             # requests seen for that path

A route maps a path (without the query) to a *behaviour*: a callable taking
the request handler (a ``BaseHTTPRequestHandler``) that writes the whole
response.  Unknown paths answer 404.  The server listens on 127.0.0.1 only,
each request runs in its own daemon thread, and ``serve`` stops it on exit,
waking any handler that is stalling (``stall``, ``trickle``) so nothing is
left running.
"""

import collections
import contextlib
import os
import ssl
import subprocess
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Certs", "make_certs", "serve", "Server", "body", "status", "redirect",
           "truncated", "stall", "trickle", "sequence"]

Certs = collections.namedtuple("Certs", "ca_cert ca_key cert key")

_CA_CNF = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = ops test CA
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_SERVER_EXT = """\
[server]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost,IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
"""


def make_certs(directory):
    """Create a CA and a server certificate for 127.0.0.1 and localhost, signed
    by it, in ``directory`` with the real ``openssl`` CLI; return their paths."""
    d = str(directory)
    os.makedirs(d, exist_ok=True)
    p = lambda name: os.path.join(d, name)  # noqa: E731
    with open(p("ca.cnf"), "w") as f:
        f.write(_CA_CNF)
    with open(p("server.ext"), "w") as f:
        f.write(_SERVER_EXT)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", "-config", p("ca.cnf")] + ec +
        ["-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "2"],
        ["req", "-new", "-config", p("ca.cnf"), "-subj", "/CN=localhost"] + ec +
        ["-keyout", p("server.key"), "-out", p("server.csr")],
        ["x509", "-req", "-in", p("server.csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
         "-set_serial", "2", "-days", "2", "-extfile", p("server.ext"),
         "-extensions", "server", "-out", p("server.pem")],
    ):
        proc = subprocess.run(["openssl"] + argv, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60)
        if proc.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (argv[0], proc.stderr.strip()))
    return Certs(p("ca.pem"), p("ca.key"), p("server.pem"), p("server.key"))


# --- behaviours -----------------------------------------------------------

def body(data, status=200, headers=None, content_type="application/octet-stream"):
    """Answer ``status`` with ``data`` and a correct Content-Length."""
    def behave(h):
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
    return behave


def status(code, text=None):
    """Answer ``code`` with a short text body."""
    return body((text or "status %d\n" % code).encode(), status=code,
                content_type="text/plain")


def redirect(location, code=302):
    """Answer ``code`` pointing at ``location`` (a path or a full URL)."""
    return body(b"", status=code, headers={"Location": location})


def truncated(length, sent):
    """Announce ``length`` bytes, send ``sent`` of them, then close the connection."""
    def behave(h):
        h.send_response(200)
        h.send_header("Content-Length", str(length))
        h.end_headers()
        h.wfile.write(b"x" * sent)
        h.wfile.flush()
        h.close_connection = True
    return behave


def stall(seconds, after_headers=False, length=1000):
    """Say nothing for ``seconds`` (or until the server stops); with
    ``after_headers``, first send the headers and a little of the body."""
    def behave(h):
        if after_headers:
            h.send_response(200)
            h.send_header("Content-Length", str(length))
            h.end_headers()
            h.wfile.write(b"x" * (length // 10))
            h.wfile.flush()
        h.server.stopping.wait(seconds)
        h.close_connection = True
    return behave


def trickle(data, seconds, pieces=15):
    """Send ``data`` with its Content-Length in ``pieces`` spread over ``seconds``."""
    def behave(h):
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        step = -(-len(data) // pieces)
        for i in range(0, len(data), step):
            h.wfile.write(data[i:i + step])
            h.wfile.flush()
            if h.server.stopping.wait(seconds / pieces):
                return
    return behave


def sequence(*behaviours):
    """Use the behaviours in turn, one per request; the last one repeats."""
    lock = threading.Lock()
    state = {"n": 0}

    def behave(h):
        with lock:
            i = min(state["n"], len(behaviours) - 1)
            state["n"] += 1
        behaviours[i](h)
    return behave


# --- the server -----------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        self.server.record(self.command, path)
        behave = self.server.routes.get(path) or status(404)
        behave(self)

    def log_message(self, *args):   # keep stderr clean: tests capture it
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes, tls=None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = dict(routes)
        self.stopping = threading.Event()
        self.requests = []          # (method, path) in arrival order
        self.errors = []            # exceptions raised in handler threads
        self._lock = threading.Lock()
        self.ssl_context = None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls.cert, tls.key)
            self.ssl_context = ctx
        self.port = self.server_address[1]
        self.scheme = "https" if tls is not None else "http"

    def url(self, path="/", host="127.0.0.1"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def record(self, method, path):
        with self._lock:
            self.requests.append((method, path))

    def hits(self, path):
        with self._lock:
            return sum(1 for _, p in self.requests if p == path)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the request's own thread, so a client
        # that never completes it cannot block the accept loop.
        if self.ssl_context is not None:
            request.settimeout(10)
            request = self.ssl_context.wrap_socket(request, server_side=True)
        try:
            super().finish_request(request, client_address)
        finally:
            if self.ssl_context is not None:
                request.close()

    def handle_error(self, request, client_address):
        self.errors.append(sys.exc_info()[1])


@contextlib.contextmanager
def serve(routes, tls=None):
    """Run a :class:`Server` for ``routes`` on 127.0.0.1 (HTTPS when ``tls`` is
    a :class:`Certs`) in a background thread; stop it on exit."""
    srv = Server(routes, tls)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              name="test-http-server", daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join(10)
