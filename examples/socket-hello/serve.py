"""The app of the socket-hello example: an HTTP server on the listening socket it is given at descriptor 3.

systemd opens the socket (socket-hello-web.socket) and passes it to the service; rkt's fly stage1 keeps the
descriptor but not LISTEN_FDS/LISTEN_PID, so the pod manifest sets LISTEN_FDS=1 in the app's environment and this
server takes descriptor 3 (SD_LISTEN_FDS_START) without looking at LISTEN_PID.  It answers every GET with
``socket-hello, version $VERSION``.  On SIGTERM it finishes the request it is answering and exits; connections
not yet accepted stay queued on the socket, which systemd keeps, for the next server to accept.
"""

import os
import signal
import socket
import socketserver
import sys
from http.server import BaseHTTPRequestHandler

LISTEN_FDS_START = 3
VERSION = os.environ.get("VERSION", "?")


class Hello(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        body = ("socket-hello, version %s\n" % VERSION).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.TCPServer):
    busy = False
    stopping = False

    def process_request(self, request, client_address):
        self.busy = True
        try:
            socketserver.TCPServer.process_request(self, request, client_address)
        finally:
            self.busy = False
        if self.stopping:
            sys.exit(0)


def main():
    if os.environ.get("LISTEN_FDS") != "1":
        sys.exit("socket-hello: LISTEN_FDS is %r: expected one socket at descriptor 3" % os.environ.get("LISTEN_FDS"))
    sock = socket.socket(fileno=LISTEN_FDS_START)
    server = Server(sock.getsockname()[:2], Hello, bind_and_activate=False)
    server.socket.close()
    server.socket = sock

    def on_term(signum, frame):
        if server.busy:
            server.stopping = True      # exit once this request is answered
        else:
            sys.exit(0)
    signal.signal(signal.SIGTERM, on_term)
    server.serve_forever(poll_interval=3600)


if __name__ == "__main__":
    main()
