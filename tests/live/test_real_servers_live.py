"""Real servers from Debian's packages (redis-server, nginx) as appc pods on the real rkt 1.30 with stage1-fly.

Each server is packaged here as an ACI (its binary, the shared libraries ldd names, the loader: tests/live/
server_aci.py) and deployed by ops in a systemd container as an operator would: a writable data volume seeded from a
tarball and owned by the server's user (the volume ``owner``, a name resolved on the host), a read-only
configuration volume, an exec health check run on the host.  Per server, in this order (one story):
v1 answers its protocol and writes into its data volume as its user; the configuration is read-only in the pod;
v1 -> v2 serves v2's configuration; v3's configuration is refused by the server, which exits with its own fatal
message: rolled back to 2, exit 1, that message in the reason; redeploy 1 brings back version 1's data; the
refused windows of the switch and of the rollback are measured (median of 3 rounds); undeploy --remove.
Each server writes its log (redis's logfile, nginx's access log) into a host volume of the pod's own, which keeps
what every version wrote and outlasts undeploy --remove.  Each has a stop that does not end, bounded by
--stop-timeout: redis runs a Lua script that never returns (it ignores SIGTERM meanwhile); nginx's graceful stop
(KillSignal=SIGQUIT) waits for a request whose header never ends.
Without a real rkt the module fails (OPS_TEST_RKT=0 skips it); without the unpacked packages it fails saying how to get them.
"""

import json
import os
import statistics
import time

import pytest

from tests.support import realrkt

from . import server_aci
from .conftest import describe, http_get, last_line, list_pods, ops, ops_json, wait_for

FIGURES = os.environ.get("OPS_TEST_FIGURES")       # a file to append the measured windows to (optional)

REDIS_CLIENT = r"""
import json, socket, sys, time
deadline = time.monotonic() + 10          # the server may still be starting: retry refused connects
while True:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
        break
    except ConnectionRefusedError:
        if time.monotonic() >= deadline:
            raise
        time.sleep(0.1)
args = [a.encode() for a in sys.argv[3:]]
s.sendall(b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args))
if sys.argv[2] == "send":          # send only: the command may run for ever
    time.sleep(0.5)
    sys.exit(0)
f = s.makefile("rb")
def read():
    line = f.readline().rstrip(b"\r\n")
    kind, rest = line[:1], line[1:].decode()
    if kind in (b"+", b":"):
        return rest
    if kind == b"-":
        return "ERROR " + rest
    if kind == b"$":
        return None if int(rest) < 0 else f.read(int(rest) + 2)[:-2].decode()
    if kind == b"*":
        return [read() for _ in range(int(rest))]
    raise SystemExit("not a RESP reply: %r" % line)
print(json.dumps(read()))
"""

# Connect every 10 ms until the stop file appears; write the refused windows (seconds, from the first refused
# connect to the next accepted one) as JSON.  "ready" is written after the first accepted connect.
PROBE = r"""
import json, os, socket, sys, time
port, out, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3]
windows, down, attempts, refused = [], None, 0, 0
while not os.path.exists(stop):
    t = time.monotonic()
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        ok = True
    except OSError:
        ok = False
    s.close()
    attempts += 1
    if ok:
        if down is not None:
            windows.append(time.monotonic() - down)
            down = None
        if not os.path.exists(out + ".ready"):
            open(out + ".ready", "w").close()
    else:
        refused += 1
        down = t if down is None else down
    time.sleep(0.01)
with open(out + ".tmp", "w") as f:     # renamed into place whole: the test reads it once it exists
    json.dump({"windows": windows, "still_down": down is not None, "attempts": attempts, "refused": refused}, f)
os.replace(out + ".tmp", out)
"""


class Server:
    """What differs between the servers: the image, the configurations, how to ask it, what it writes."""

    def __init__(self, name, user, port, binary, exec_, mounts, conf_name, confs, data, fatal, log, service=()):
        self.name, self.user, self.port, self.binary, self.exec = name, user, port, binary, exec_
        self.mounts, self.conf_name, self.confs, self.data, self.fatal = mounts, conf_name, confs, data, fatal
        self.unit = name + ".service"
        self.log = log                  # the file it writes into its host volume "logs" (on the host: HOST_LOGS)
        self.service = service          # more [Service] lines of its unit
        self.started = []               # (version, main PID) of every version the story started, in order


REDIS_CONF = ("bind 127.0.0.1\nport 6379\ndaemonize no\nlogfile /var/log/redis/redis-server.log\n"
              "dir /var/lib/redis\nappendonly yes\nsave \"\"\n")
REDIS = Server(
    "redis", "redis", 6379, "usr/bin/redis-server", ["/usr/bin/redis-server", "/etc/redis/redis.conf"],
    {"data": "/var/lib/redis", "conf": "/etc/redis", "logs": "/var/log/redis"}, "redis.conf",
    {1: REDIS_CONF, 2: REDIS_CONF + "maxmemory 64mb\n", 3: REDIS_CONF + "no-such-directive yes\n"},
    "data", ["FATAL CONFIG FILE ERROR", "Bad directive or wrong number of arguments"], "redis-server.log")

# client_header_timeout: a request whose header never ends is waited for an hour, and nginx's graceful stop
# (SIGQUIT, the unit's KillSignal=) waits for the requests in flight
NGINX_CONF = """pid /var/lib/nginx/nginx.pid;
error_log stderr notice;
worker_processes 1;
events { worker_connections 64; }
http {
    log_format story '$remote_addr "$request" $status served by %(v)s';
    access_log /var/log/nginx/access.log story;
    client_header_timeout 1h;
    default_type text/plain;
    server { listen 127.0.0.1:8081; root /etc/nginx; location / { return 200 "nginx %(v)s\\n"; } }
}
"""
NGINX = Server(
    "web", "www-data", 8081, "usr/sbin/nginx",
    ["/usr/sbin/nginx", "-e", "stderr", "-c", "/etc/nginx/nginx.conf", "-g", "daemon off;"],
    {"state": "/var/lib/nginx", "conf": "/etc/nginx", "logs": "/var/log/nginx"}, "nginx.conf",
    {1: NGINX_CONF % {"v": "version 1"}, 2: NGINX_CONF % {"v": "version 2"},
     3: NGINX_CONF.replace("worker_processes 1;", "worker_processes 1;\nno_such_directive on;") % {"v": "version 3"}},
    "state", ["[emerg]", 'unknown directive "no_such_directive" in /etc/nginx/nginx.conf:4'], "access.log",
    service=["KillSignal=SIGQUIT"])
# each pod's host volume "logs" (its own, not ops's): the log every version writes, kept across versions
HOST_LOGS = {REDIS: "/var/lib/redis-logs", NGINX: "/var/lib/web-logs"}

B = "/root/bundles/"


@pytest.fixture(scope="module")
def rkt_ready(real_rkt, container):
    realrkt.install(container, *real_rkt)
    container.run(["groupadd", "--system", "rkt"])
    # redis-cli for the health check, which runs on the host: the binary and the two libraries it takes from
    # the unpacked packages
    tools = {"/opt/redis-tools/bin/redis-cli": "usr/bin/redis-cli"}
    for inside, host in server_aci.closure(server_aci.find("usr/bin/redis-cli")).items():
        if host.startswith(server_aci.ROOT + "/"):
            tools["/opt/redis-tools/lib/" + os.path.basename(inside)] = host[len(server_aci.ROOT) + 1:]
    for inside, rel in tools.items():
        with open(server_aci.find(rel), "rb") as f:
            container.write_file(inside, f.read(), mode=0o755)
    yield container
    realrkt.gc(container)


def ids(c, user):
    """(uid, gid) of ``user`` in the container (the host ops runs on), made a system user when missing."""
    if c.run(["getent", "passwd", user]).returncode != 0:
        c.run(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
              check=True)
    f = c.run(["getent", "passwd", user], check=True).stdout.split(":")
    return int(f[2]), int(f[3])


def health(s):
    if s is REDIS:
        return {"exec": ["/bin/sh", "-c", 'test "$(LD_LIBRARY_PATH=/opt/redis-tools/lib '
                         '/opt/redis-tools/bin/redis-cli -p 6379 ping)" = PONG'], "timeout": 5, "retries": 5}
    return {"exec": ["/usr/bin/python3", "-c", "import urllib.request as u; "
                     "assert u.urlopen('http://127.0.0.1:8081/', timeout=5).status == 200"],
            "timeout": 10, "retries": 5}


@pytest.fixture(scope="module", params=[REDIS, NGINX], ids=lambda s: s.name)
def server(request, rkt_ready, tmp_path_factory):
    """The server's three bundles in the container (B/NAME/1..3); yields the Server with .uid/.gid."""
    s, c = request.param, rkt_ready
    s.uid, s.gid = ids(c, s.user)
    work = tmp_path_factory.mktemp(s.name)
    aci = str(work / "server.aci")
    image_id = server_aci.image(aci, "example.com/%s-server" % s.name, "1.0.0", s.binary, s.exec, s.uid, s.gid,
                                dirs=list(s.mounts.values()))
    c.run(["install", "-d", "-o", str(s.uid), "-g", str(s.gid), HOST_LOGS[s]], check=True)
    pod_volumes = [{"name": "logs", "kind": "host", "source": HOST_LOGS[s], "readOnly": False}]
    for version in (1, 2, 3):
        app = {"name": s.name, "exec": list(s.exec), "user": str(s.uid), "group": str(s.gid),
               "mountPoints": [{"name": n, "path": p} for n, p in sorted(s.mounts.items())]}
        d = server_aci.bundle(
            str(work / str(version)), s.name, version, app, aci, image_id, s.unit,
            server_aci.unit("%s v%d: Debian's %s in an rkt pod" % (s.name, version, s.binary), s.service),
            volumes=[(s.data, {"seed.txt": b"seeded by version %d's bundle\n" % version}, s.user, False),
                     ("conf", {s.conf_name: s.confs[version].encode()}, None, True)],
            health=health(s), pod_volumes=pod_volumes)
        if c.exists(B + "%s/%d" % (s.name, version)):
            c.remove(B + "%s/%d" % (s.name, version))
        c.copytree(d, B + "%s/%d" % (s.name, version))
    s.image_id = image_id
    yield s
    ops(c, "undeploy", s.name, "--remove")


# -- what an operator checks ----------------------------------------------------------------------------------

def redis(c, *args, send_only=False):
    r = c.run(["/usr/bin/python3", "-c", REDIS_CLIENT, "6379", "send" if send_only else "read"] + list(args),
              timeout=30)
    assert r.returncode == 0, describe(r)
    return None if send_only else json.loads(r.stdout)


def answers(c, s, version):
    """The server answers its own protocol with version ``version``'s configuration."""
    if s is REDIS:
        assert redis(c, "PING") == "PONG"
        assert redis(c, "CONFIG", "GET", "maxmemory") == ["maxmemory", "0" if version == 1 else "67108864"]
    else:
        r = http_get(c, "http://127.0.0.1:8081/")
        assert r.returncode == 0 and r.stdout == "nginx version %d\n" % version, describe(r)


def main_pid(c, unit):
    return int(c.run(["systemctl", "show", "-p", "MainPID", "--value", unit]).stdout.strip())


def volume(s, version, name):
    return "/var/lib/ops/volumes/%s/%d/%s" % (s.name, version, name)


def owned(c, path):
    st = os.lstat(c.path(path))
    return st.st_uid, st.st_gid


def deploy(c, s, version, **kw):
    return ops(c, "deploy", B + "%s/%d" % (s.name, version), **kw)


# -- the story ------------------------------------------------------------------------------------------------

def test_v1_answers_and_writes_into_its_data_volume_as_its_user(container, server):
    c, s = container, server
    r = deploy(c, s, 1, check=0)
    assert last_line(r.stdout) == "deploy %s 1: changed" % s.name, describe(r)
    assert "health check passed" in r.stderr, describe(r)
    answers(c, s, 1)
    pid = main_pid(c, s.unit)
    s.started.append((1, pid))
    # the unit's main process is the server itself, as the server's user
    assert os.path.basename(c.run(["readlink", "/proc/%d/exe" % pid]).stdout.strip()) == os.path.basename(s.binary)
    assert c.run(["stat", "-c", "%u:%g", "/proc/%d" % pid]).stdout.strip() == "%d:%d" % (s.uid, s.gid)
    data = volume(s, 1, s.data)
    assert c.read_file(data + "/seed.txt") == "seeded by version 1's bundle\n"
    # the owner option: the whole tree is the server's user's, whatever the tarball said
    assert owned(c, data) == owned(c, data + "/seed.txt") == (s.uid, s.gid)
    if s is REDIS:
        assert redis(c, "SET", "greeting", "written by version 1") == "OK"
        written = data + "/appendonlydir"
    else:
        written = data + "/nginx.pid"
        assert c.read_file(written).strip() == str(pid)
    assert wait_for(lambda: c.exists(written), timeout=10), describe(r)
    assert owned(c, written) == (s.uid, s.gid)     # made by the server, as its user


def test_the_configuration_volume_is_read_only_in_the_pod(container, server):
    c, s = container, server
    pid = main_pid(c, s.unit)
    root = c.run(["readlink", "/proc/%d/root" % pid], check=True).stdout.strip()
    mounts = {}
    for line in c.run(["cat", "/proc/%d/mountinfo" % pid], check=True).stdout.splitlines():
        f = line.split()
        mounts[f[4]] = f[5].split(",")
    # mount points as the server sees them (relative to its root)
    assert "ro" in mounts[s.mounts["conf"]], mounts
    assert "rw" in mounts[s.mounts[s.data]], mounts
    # even root, in the unit's mount namespace, cannot write there; the data volume takes a write
    r = c.run(["nsenter", "-t", str(pid), "-m", "touch", root + s.mounts["conf"] + "/written-by-root"])
    assert r.returncode != 0 and "Read-only file system" in r.stderr, describe(r)
    r = c.run(["nsenter", "-t", str(pid), "-m", "touch", root + s.mounts[s.data] + "/written-by-root"])
    assert r.returncode == 0, describe(r)
    assert c.exists(volume(s, 1, s.data) + "/written-by-root")
    assert not c.exists(volume(s, 1, "conf") + "/written-by-root")


def test_v2_serves_its_own_configuration(container, server):
    c, s = container, server
    r = deploy(c, s, 2, check=0)
    assert last_line(r.stdout) == "deploy %s 2: changed" % s.name, describe(r)
    answers(c, s, 2)
    s.started.append((2, main_pid(c, s.unit)))
    if s is REDIS:      # version 2 starts from its own data volume: version 1's key is not there
        assert redis(c, "GET", "greeting") is None
        assert redis(c, "SET", "greeting", "written by version 2") == "OK"


def test_v3_refused_by_the_server_is_rolled_back_with_its_own_words(container, server):
    c, s = container, server
    obj, r = ops_json(c, "deploy", B + "%s/3" % s.name, check=1)
    for line in s.fatal:
        assert line in obj["error"], describe(r)
    assert "rolled back to 2" in obj["error"] and "rkt gc" not in obj["error"], describe(r)
    assert "gc: " not in obj["error"] and "Garbage collecting" not in obj["error"], describe(r)
    assert obj["reason"]["unit"] == s.unit and obj["reason"]["rolled_back"] is True, obj["reason"]
    answers(c, s, 2)
    pods = list_pods(c, s.name)
    assert pods[(s.name, 3)]["outcome"] == "failed" and pods[(s.name, 2)]["current"] is True
    assert s.fatal[-1] in pods[(s.name, 3)]["reason"]["journal"], pods[(s.name, 3)]["reason"]


def test_redeploy_1_brings_back_version_1s_data(container, server):
    c, s = container, server
    r = ops(c, "redeploy", "%s:1" % s.name, check=0)
    assert last_line(r.stdout) == "redeploy %s 1: changed" % s.name, describe(r)
    answers(c, s, 1)
    s.started.append((1, main_pid(c, s.unit)))
    if s is REDIS:
        assert redis(c, "GET", "greeting") == "written by version 1"
    else:
        assert c.exists(volume(s, 1, s.data) + "/written-by-root")


def written_by(s, log):
    """The versions that wrote ``log`` (the text of the host volume's log), in the order they wrote: redis's lines
    begin with the PID of the server that wrote them ("PID:M ... Ready to accept connections"); nginx's access log
    says which version served each request ("served by version N", its log_format)."""
    versions = []
    for line in log.splitlines():
        if s is REDIS:
            pid = line.split(":", 1)[0]
            v = [v for v, p in s.started if str(p) == pid and "Ready to accept connections" in line]
        else:
            v = [int(line.rsplit(" ", 1)[1])] if '"GET / HTTP/1.1" 200 served by version ' in line else []
        if v and (not versions or versions[-1] != v[0]):
            versions.append(v[0])
    return versions


def test_every_version_writes_its_log_into_the_pods_own_host_volume(container, server):
    """redis's log file (``logfile``) and nginx's access log are in a host volume of the pod's own, the same
    directory for every version: what versions 1, 2 and 1 again wrote is all there, in that order."""
    c, s = container, server
    assert [v for v, _ in s.started] == [1, 2, 1], s.started
    log = c.read_file(HOST_LOGS[s] + "/" + s.log)
    assert written_by(s, log) == [1, 2, 1], log
    assert owned(c, HOST_LOGS[s] + "/" + s.log) == (s.uid, s.gid)     # written by the server, as its user
    assert not c.exists(volume(s, 1, "logs")) and not c.exists(volume(s, 2, "logs"))    # not an ops volume


def probe(c, s, tag, action):
    """Run ``action`` while connecting every 10 ms; the refused windows (seconds)."""
    out, stop = "/root/probe-%s.json" % tag, "/root/probe-%s.stop" % tag
    c.run(["systemd-run", "--quiet", "--collect", "--unit", "probe-" + tag,
           "/usr/bin/python3", "-c", PROBE, str(s.port), out, stop], check=True)
    assert wait_for(lambda: c.exists(out + ".ready"), timeout=10)
    result = action()
    c.write_file(stop, "")
    assert wait_for(lambda: c.exists(out), timeout=10)
    got = json.loads(c.read_file(out))
    assert not got["still_down"], got
    return result, got


def test_refused_windows_of_switch_and_rollback(container, server):
    """A deploy of v2 over v1 and a failed deploy of v3 rolled back to v2, three rounds each, measured from the
    outside: connects every 10 ms (ops's default settle, 2 s)."""
    c, s = container, server
    switch, rollback = [], []
    for n in range(3):
        r = ops(c, "redeploy", "%s:1" % s.name, check=0)
        answers(c, s, 1)
        r, got = probe(c, s, "%s-switch-%d" % (s.name, n), lambda: deploy(c, s, 2, settle=None))
        assert r.returncode == 0, describe(r)
        assert len(got["windows"]) == 1, got       # one outage, then v2 answers
        switch.append(got["windows"][0])
        answers(c, s, 2)
        r, got = probe(c, s, "%s-rollback-%d" % (s.name, n), lambda: deploy(c, s, 3, settle=None))
        assert r.returncode == 1 and "rolled back to 2" in r.stderr, describe(r)
        rollback.append(got["windows"][0] if got["windows"] else 0.0)
        answers(c, s, 2)
    line = ("%s: refused window of the switch v1->v2: median %.3f s (%s); of the rollback from v3: median %.3f s (%s)"
            % (s.name, statistics.median(switch), ", ".join("%.3f" % w for w in switch),
               statistics.median(rollback), ", ".join("%.3f" % w for w in rollback)))
    print("\n" + line)
    if FIGURES:
        with open(FIGURES, "a") as f:
            f.write(line + "\n")
    assert all(w > 0 for w in switch), switch      # stop, then start: the port is closed for a while


# Send a request whose header never ends and hold the connection open for an hour; write the client's port to
# the ready file.
HOLD = r"""
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Never-Ends: ")
open(sys.argv[2], "w").write(str(s.getsockname()[1]))
time.sleep(3600)
"""


def read_by_the_server(c, port, client_port):
    """The server's side of the connection from ``client_port`` is established and everything sent on it has
    been read by the server (its receive queue is empty): /proc/net/tcp."""
    for line in c.run(["cat", "/proc/net/tcp"], check=True).stdout.splitlines()[1:]:
        f = line.split()
        local, remote, state, queues = f[1], f[2], f[3], f[4]
        if (int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state) == (port, client_port, "01"):
            return int(queues.split(":")[1], 16) == 0
    return False


def hold_the_stop(c, s):
    """Make the server's stop one that does not end: redis runs a Lua script that never returns (it ignores
    SIGTERM meanwhile); nginx's graceful stop (SIGQUIT) waits for a request whose header never ends."""
    if s is REDIS:
        redis(c, "EVAL", "while true do end", "0", send_only=True)
        assert wait_for(lambda: str(redis(c, "PING")).startswith("ERROR BUSY"), timeout=15)
        return
    ready = "/root/hold-%s.port" % s.name
    c.run(["systemd-run", "--quiet", "--collect", "--unit", "hold-" + s.name,
           "/usr/bin/python3", "-c", HOLD, str(s.port), ready], check=True)
    assert wait_for(lambda: c.exists(ready) and c.read_file(ready), timeout=10)
    client_port = int(c.read_file(ready))
    assert wait_for(lambda: read_by_the_server(c, s.port, client_port), timeout=10)


def test_a_stop_that_does_not_end_is_bounded_by_stop_timeout(container, server):
    """Without --stop-timeout the switch's stop would wait systemd's TimeoutStopSec= (90 s): redis ignores SIGTERM
    while a Lua script runs; nginx's graceful stop waits for the request in flight (client_header_timeout 1h)."""
    c, s = container, server
    hold_the_stop(c, s)
    current = [v for (_, v), p in list_pods(c, s.name).items() if p["current"]]
    other = 1 if current == [2] else 2
    started = time.monotonic()
    try:
        obj, r = ops_json(c, "--stop-timeout", "2", "redeploy", "%s:%d" % (s.name, other), check=0)
    finally:
        if s is NGINX:
            c.run(["systemctl", "stop", "hold-" + s.name])
    assert obj["stop_timed_out"] == [s.unit], describe(r)
    assert "ops: warning: stop timed out after 2 s (--stop-timeout): ops killed %s" % s.unit in r.stderr, \
        describe(r)
    took = time.monotonic() - started
    print("\n%s: redeploy with a stop that does not end, --stop-timeout 2: %.2f s" % (s.name, took))
    assert took < 60          # well below systemd's TimeoutStopSec= (90 s)
    answers(c, s, other)


def test_undeploy_remove_leaves_the_host_volume(container, server):
    c, s = container, server
    r = ops(c, "undeploy", s.name, "--remove", check=0)
    assert last_line(r.stdout).startswith("undeploy %s " % s.name), describe(r)
    assert not c.exists("/etc/ops/pods/" + s.name) and not c.exists("/etc/ops/current/" + s.name)
    assert not c.exists("/var/lib/ops/volumes/" + s.name)
    assert not [i for i in realrkt.image_ids(c) if s.image_id.startswith(i)]
    assert realrkt.pods(c) == [] and realrkt.rkt_mounts(c) == []
    assert c.run(["systemctl", "is-active", s.unit]).stdout.strip() != "active"
    # the pod's own host volume is the operator's: kept, with what every version wrote
    assert written_by(s, c.read_file(HOST_LOGS[s] + "/" + s.log))[:3] == [1, 2, 1]
