"""examples/socket-hello: its image (serve.py, links into the host's /usr), the bundles' promises (the socket unit
the same in every version, the version in the app's environment), and serve.py itself serving a socket handed to
it at descriptor 3, as rkt's fly stage1 hands it over."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import urllib.request

import pytest

from conftest import REPO
from ops.rkt import image_sha512
from tests.support.realrkt import make_image_module

pytestmark = pytest.mark.compat     # serve.py runs on the host's Python, 3.8 or later: also run on 3.8 and 3.13

EXAMPLE = REPO / "examples" / "socket-hello"
VERSIONS = ("v1", "v2", "v3")

m = make_image_module("socket-hello")


@pytest.fixture
def example(tmp_path):
    d = tmp_path / "socket-hello"
    shutil.copytree(str(EXAMPLE), str(d), ignore=shutil.ignore_patterns("images", "__pycache__"))
    return d


def pod(bundle):
    doc = json.loads((bundle / "pod.json").read_text())
    return doc, json.loads(doc["annotations"][0]["value"])


def test_the_image_holds_serve_py_and_links_into_the_hosts_usr(example, signer):
    home, _ = signer
    image_id = m.make([str(example / v) for v in VERSIONS], str(home))
    for v in VERSIONS:
        img = example / v / "images" / "socket-hello.aci"
        assert image_sha512(str(img)) == image_id
        doc, ops = pod(example / v)
        assert [a["image"]["id"] for a in doc["apps"]] == [i["id"] for i in ops["images"]] == [image_id]
    # the committed pod.json files name the image this serve.py makes
    assert pod(EXAMPLE / "v1")[0]["apps"][0]["image"]["id"] == image_id
    with tarfile.open(str(example / "v1" / "images" / "socket-hello.aci")) as tar:
        assert tar.extractfile("rootfs/app/serve.py").read() == (EXAMPLE / "serve.py").read_bytes()
        links = {n: tar.getmember("rootfs/" + n).linkname for n in ("bin", "lib", "lib64")}
        assert links == {"bin": "usr/bin", "lib": "usr/lib", "lib64": "usr/lib64"}
        assert tar.getmember("rootfs/usr").isdir()
        manifest = json.load(tar.extractfile("manifest"))
    assert manifest["name"] == "example.com/socket-hello"
    assert manifest["app"]["exec"] == ["/usr/bin/python3", "/app/serve.py"]


def test_the_socket_is_the_same_in_every_version_and_the_app_is_told_of_it():
    for v in VERSIONS:
        assert (EXAMPLE / v / "socket-hello-web.socket").read_bytes() == \
            (EXAMPLE / "v1" / "socket-hello-web.socket").read_bytes()
        doc, ops = pod(EXAMPLE / v)
        assert ops["version"] == int(v[1:])
        assert [u["unit-file"] for u in ops["systemd-units"]] == ["socket-hello-web.socket",
                                                                   "socket-hello-web.service"]
        app = doc["apps"][0]["app"]
        env = {e["name"]: e["value"] for e in app["environment"]}
        assert env == {"VERSION": v[1:], "LISTEN_FDS": "1"}
        assert doc["volumes"] == [{"name": "host-usr", "kind": "host", "source": "/usr", "readOnly": True}]
    assert "ListenStream=127.0.0.1:8081" in (EXAMPLE / "v1" / "socket-hello-web.socket").read_text()


# Puts the listening socket given as argv[1] at descriptor 3, then runs serve.py (argv[2]).
AT_FD3 = "import os, sys; os.dup2(int(sys.argv[1]), 3); os.execv(sys.executable, [sys.executable, sys.argv[2]])"


@pytest.fixture
def served():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "VERSION": "5", "LISTEN_FDS": "1"}
    p = subprocess.Popen([sys.executable, "-c", AT_FD3, str(sock.fileno()), str(EXAMPLE / "serve.py")],
                         pass_fds=(sock.fileno(),), env=env, stderr=subprocess.PIPE)
    yield p, "http://127.0.0.1:%d/" % sock.getsockname()[1], sock
    if p.poll() is None:
        p.kill()
    p.wait()
    p.stderr.close()
    sock.close()


def test_serve_py_answers_with_its_version_on_descriptor_3(served):
    p, url, _ = served
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"socket-hello, version 5\n"


def test_on_sigterm_serve_py_exits_and_leaves_waiting_connections_to_the_next(served):
    p, url, sock = served
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=10) == 0
    # the socket is still open (here, as systemd keeps it): a connection waits in its queue, not refused
    c = socket.create_connection(sock.getsockname(), timeout=5)
    c.close()


# Runs serve.py (argv[2]) on the socket of argv[1] at descriptor 3, with a SIGTERM arriving the instant after each
# accept(), as a stop can: before serve.py has read the request.
TERM_AFTER_ACCEPT = """
import os, runpy, signal, socket, sys
os.dup2(int(sys.argv[1]), 3)
accept = socket.socket.accept
def accept_then_term(self):
    conn = accept(self)
    os.kill(os.getpid(), signal.SIGTERM)
    return conn
socket.socket.accept = accept_then_term
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_sigterm_just_after_accept_still_answers_that_connection_and_leaves_the_rest_queued():
    request = b"GET / HTTP/1.0\r\nHost: test\r\n\r\n"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        clients = [socket.create_connection(sock.getsockname(), timeout=10) for _ in range(2)]
        for c in clients:
            c.sendall(request)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "VERSION": "5", "LISTEN_FDS": "1"}
        p = subprocess.run([sys.executable, "-c", TERM_AFTER_ACCEPT, str(sock.fileno()), str(EXAMPLE / "serve.py")],
                           pass_fds=(sock.fileno(),), env=env, stderr=subprocess.PIPE, timeout=30)
        assert p.returncode == 0, p.stderr
        # the connection accepted when SIGTERM came is answered whole, not reset
        answer = b"".join(iter(lambda: clients[0].recv(65536), b""))
        assert answer.startswith(b"HTTP/1.0 200 ") and answer.endswith(b"socket-hello, version 5\n"), answer
        # the other one was not accepted: it waits on the socket for the next server
        sock.settimeout(5)
        conn, _ = sock.accept()
        with conn:
            assert conn.recv(65536) == request
        for c in clients:
            c.close()


def test_without_listen_fds_serve_py_says_so():
    r = subprocess.run([sys.executable, str(EXAMPLE / "serve.py")], env={"PATH": "/usr/bin:/bin"},
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    assert r.returncode == 1 and b"LISTEN_FDS" in r.stderr
