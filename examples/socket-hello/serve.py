"""The app of the socket-hello example: an HTTP server on the listening socket it is given at descriptor 3.

systemd opens the socket (socket-hello-web.socket) and passes it to the service; rkt's fly stage1 keeps the
descriptor but not LISTEN_FDS/LISTEN_PID, so the pod manifest sets LISTEN_FDS=1 in the app's environment and this
server takes descriptor 3 (SD_LISTEN_FDS_START) without looking at LISTEN_PID.  It answers every GET with
``socket-hello, version $VERSION``.  On SIGTERM it answers the connection it has accepted, if any, and exits;
connections not yet accepted stay queued on the socket, which systemd keeps, for the next server to accept.
"""

import os
import select
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


def main():
    if os.environ.get("LISTEN_FDS") != "1":
        sys.exit("socket-hello: LISTEN_FDS is %r: expected one socket at descriptor 3" % os.environ.get("LISTEN_FDS"))
    sock = socket.socket(fileno=LISTEN_FDS_START)
    server = socketserver.TCPServer(sock.getsockname()[:2], Hello, bind_and_activate=False)
    server.socket.close()
    server.socket = sock
    # SIGTERM only marks the server as stopping and wakes up its select(); the loop below decides, between two
    # requests, that it is time to go.  A connection accepted is therefore always answered: exiting from the
    # handler itself could close one accepted an instant before, unread, and its client would see a reset.
    stopping = []
    wake, woken = socket.socketpair()
    wake.setblocking(False)
    signal.set_wakeup_fd(wake.fileno())
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    while not stopping:
        readable = select.select([sock, woken], [], [])[0]
        if woken in readable:
            woken.recv(256)
        if stopping:
            break
        if sock in readable:
            server.handle_request()
    # the connections not accepted stay queued on the socket, which systemd keeps, for the next server


if __name__ == "__main__":
    main()
