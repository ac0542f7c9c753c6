"""What comes from outside while ops runs — a server's redirect, a tar
header, a signal — never makes it act outside its own files, and never
gives a traceback or an "unexpected error"."""

import io
import json
import os
import tarfile

import pytest

from conftest import current_link, snapshot, stored_versions
from ops.errors import FetchError
from ops.fetch import download
from tests.support.servers import body, make_certs, redirect, serve

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)


# -- redirects ------------------------------------------------------------------

@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def dest(tmp_path):
    return str(tmp_path / "tmp")


@pytest.mark.parametrize("target", ["file:///etc/passwd", "FILE:///etc/passwd",
                                    "ftp://127.0.0.1/a.aci", "data:,secret",
                                    "gopher://127.0.0.1/a"])
@pytest.mark.usefixtures("no_proxy")
def test_a_redirect_to_another_scheme_is_refused_naming_it(target, dest):
    with serve({"/a": redirect(target)}) as srv:
        uri = srv.url("/a")
        with pytest.raises(FetchError) as info:
            download(uri, dest, backoff=0.01)
        assert srv.hits("/a") == 1               # refused, not retried
    assert info.value.where == uri
    assert info.value.what == ("302 redirect to %s refused: only http:// and https:// are "
                               "followed" % target)
    assert not os.path.exists(dest) or os.listdir(dest) == []


@pytest.mark.usefixtures("no_proxy")
def test_https_is_never_downgraded_to_http_by_a_redirect(dest, certs):
    with serve({"/plain.aci": body(b"plain")}) as plain:
        with serve({"/a.aci": redirect(plain.url("/plain.aci"), 301)}, tls=certs) as srv:
            uri = srv.url("/a.aci")
            with pytest.raises(FetchError) as info:
                download(uri, dest, ca_file=certs.ca_cert, backoff=0.01)
            assert plain.hits("/plain.aci") == 0
    assert info.value.what.startswith("301 redirect to %s refused: a redirect from https:// to "
                                      "plain http:// is not followed" % plain.url("/plain.aci"))


@pytest.mark.usefixtures("no_proxy")
def test_http_to_https_and_https_to_https_are_followed(dest, certs):
    with serve({"/b.aci": body(b"tls")}, tls=certs) as secure:
        with serve({"/a.aci": redirect(secure.url("/b.aci"))}) as plain:
            path = download(plain.url("/a.aci"), dest, ca_file=certs.ca_cert)
        with open(path, "rb") as f:
            assert f.read() == b"tls"
        with serve({"/c.aci": redirect(secure.url("/b.aci"), 307)}, tls=certs) as other:
            path = download(other.url("/c.aci"), dest, ca_file=certs.ca_cert)
        with open(path, "rb") as f:
            assert f.read() == b"tls"


@pytest.mark.usefixtures("no_proxy")
def test_a_deploy_whose_volume_redirects_to_a_local_file_fails_and_leaves_nothing(
        ops, bundle, root):
    b = bundle(name="web", version=1)
    with serve({"/data.tar": redirect("file:///etc/hostname")}) as srv:
        uri = srv.url("/data.tar")
        doc = dict(b.ops_doc, volumes=[{"volume": "data", "data": uri}])
        manifest = json.loads(b.pod_json.read_text())
        manifest["annotations"][-1]["value"] = json.dumps(doc)
        b.pod_json.write_text(json.dumps(manifest))
        r = ops("deploy", b)
    assert r.code == 1, r
    assert r.error_lines == ["ops: error: %s: 302 redirect to file:///etc/hostname refused: "
                             "only http:// and https:// are followed" % uri], r
    assert stored_versions(root, "web") == []
    assert not (root / "var/lib/ops/volumes/web").exists()


# -- tar headers ------------------------------------------------------------------

def raw_tar(path, members):
    """Write a tar whose headers carry the given fields as they are (no
    checks): ``members`` is a list of (TarInfo fields dict, data, pax dict)."""
    with open(str(path), "wb") as out:
        tf = tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT)
        for fields, data, pax in members:
            ti = tarfile.TarInfo(fields.pop("name"))
            for k, v in fields.items():
                setattr(ti, k, v)
            ti.size = len(data)
            if pax:
                ti.pax_headers = pax
            tf.addfile(ti, io.BytesIO(data))
        tf.close()
    return path


def unpack_as_root(archive, dest):
    from ops import volumes
    return volumes.unpack(str(archive), str(dest), label="v.tar", keep_owners=True)


@pytest.mark.parametrize("pax,what", [
    ({"uid": str(2 ** 32)}, "owner 4294967296:0 is out of range"),
    ({"uid": str(2 ** 64)}, "owner 18446744073709551616:0 is out of range"),
    ({"gid": str(2 ** 32 - 1)}, "owner 0:4294967295 is out of range"),
    ({"uid": "-5"}, "owner -5:0 is out of range"),
])
def test_an_out_of_range_owner_is_a_volume_error(pax, what, tmp_path):
    from ops.errors import VolumeError
    archive = raw_tar(tmp_path / "v.tar", [({"name": "a.txt", "mode": 0o644}, b"a", pax)])
    with pytest.raises(VolumeError) as info:
        unpack_as_root(archive, tmp_path / "out")
    assert str(info.value) == "v.tar: member 'a.txt': %s (0 to 4294967294)" % what
    assert info.value.exit_code == 1
    assert sorted(os.listdir(str(tmp_path))) == ["v.tar"]


@pytest.mark.parametrize("kind", ["dir", "symlink"])
def test_an_out_of_range_owner_of_a_directory_or_link_is_refused(kind, tmp_path):
    from ops.errors import VolumeError
    fields = {"name": "d", "mode": 0o755, "type": tarfile.DIRTYPE} if kind == "dir" else \
        {"name": "l", "type": tarfile.SYMTYPE, "linkname": "x"}
    archive = raw_tar(tmp_path / "v.tar", [(fields, b"", {"gid": str(2 ** 40)})])
    with pytest.raises(VolumeError) as info:
        unpack_as_root(archive, tmp_path / "out")
    assert "is out of range" in str(info.value)
    assert sorted(os.listdir(str(tmp_path))) == ["v.tar"]


@pytest.mark.parametrize("pax", [
    {"mtime": "1e300"}, {"mtime": "-1e300"}, {"mtime": "nan"}, {"mtime": "inf"},
    {"mtime": "99999999999999999999999"}, {"size": "abc"}, {"uid": "x"},
    {"path": "a\x00b"}, {"linkpath": "\x00"}, {"mtime": ""}, {"atime": "-"},
    {"size": "-5"}, {"size": str(2 ** 70)}, {"uid": "-1"}, {"mtime": "-1"}, {"uname": "\udcff"},
])
def test_odd_pax_values_never_give_an_unexpected_error(pax, tmp_path):
    """Either unpacked (a value the filesystem cannot hold is left as it is)
    or refused as a VolumeError; never another exception."""
    from ops.errors import VolumeError
    archive = raw_tar(tmp_path / "v.tar", [({"name": "a.txt", "mode": 0o644}, b"abc", pax)])
    try:
        unpack_as_root(archive, tmp_path / "out")
    except VolumeError:
        assert sorted(os.listdir(str(tmp_path))) == ["v.tar"]
    else:
        assert (tmp_path / "out").is_dir()


def test_a_volume_with_an_out_of_range_owner_fails_the_deploy_cleanly(ops, bundle, root):
    b = bundle(name="web", version=1, volumes={"data": {"a.txt": "a"}})
    raw_tar(b.dir / "volumes/data.tar.gz", [({"name": "a.txt", "mode": 0o644}, b"a",
                                             {"uid": str(2 ** 33)})])
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 1, r
    assert len(r.error_lines) == 1 and "is out of range" in r.err, r
    assert "unexpected error" not in r.err
    assert stored_versions(root, "web") == []
    assert not (root / "var/lib/ops/volumes/web").exists()
    assert [k for k in snapshot(root) if k not in before and "web" in k] == []


# -- signals ------------------------------------------------------------------------

import signal                      # noqa: E402
import subprocess                  # noqa: E402
import sys                         # noqa: E402
import time                        # noqa: E402

from conftest import REPO, default_signals, run_inprocess   # noqa: E402


def one_json_failure(r, command, signame):
    """Exit 1, stdout exactly one JSON object saying the run was interrupted."""
    assert r.code == 1, r
    obj = json.loads(r.out)          # one object: anything more would not parse
    assert obj["ok"] is False and obj["exit_code"] == 1 and obj["command"] == command, obj
    assert obj["error"] == "%s: interrupted by %s" % (command, signame), obj
    assert r.error_lines == ["ops: error: %s: interrupted by %s" % (command, signame)], r


def kill_self_then(func, signum=signal.SIGTERM):
    def wrapper(*a, **kw):
        os.kill(os.getpid(), signum)
        return func(*a, **kw)
    return wrapper


@pytest.mark.parametrize("signum,signame", [(signal.SIGTERM, "SIGTERM"),
                                            (signal.SIGHUP, "SIGHUP"),
                                            (signal.SIGINT, "SIGINT")])
def test_a_signal_while_parsing_gives_one_json_object(signum, signame, root, bundle,
                                                       monkeypatch, signal_handlers):
    from ops import options
    monkeypatch.setattr(options, "_quick_parse", kill_self_then(options._quick_parse, signum))
    before = signal.getsignal(signum)
    r = run_inprocess(["--json", "--root", root, "deploy", bundle(name="web", version=1)])
    one_json_failure(r, "deploy", signame)
    assert os.listdir(str(root)) == []
    assert signal.getsignal(signum) == before          # handlers given back


@pytest.mark.parametrize("phase", ["ops.bundle.parse", "ops.transaction.recover",
                                   "ops.plan.plan_deploy"])
def test_a_sigterm_while_validating_recovering_or_planning_changes_nothing(
        phase, ops, root, bundle, monkeypatch, signal_handlers):
    assert ops("deploy", bundle(name="web", version=1)).code == 0
    module, name = phase.rsplit(".", 1)
    mod = __import__(module, fromlist=[name])
    monkeypatch.setattr(mod, name, kill_self_then(getattr(mod, name)))
    before = snapshot(root)
    r = ops("--json", "deploy", bundle(name="web", version=2))
    one_json_failure(r, "deploy", "SIGTERM")
    assert snapshot(root) == before


def test_a_signal_while_the_result_is_written_does_not_cut_it(ops, root, bundle, monkeypatch,
                                                              signal_handlers):
    """From the first byte of output on, the run finishes what it prints."""
    import io
    from ops import cli

    class Killing(io.StringIO):
        def write(self, text):
            os.kill(os.getpid(), signal.SIGTERM)
            return super().write(text)
    out = Killing()
    monkeypatch.setattr(sys, "stdout", out)
    code = cli.main(["--json", "--root", str(root), "deploy", str(bundle(name="web", version=1))])
    assert code == 0
    obj = json.loads(out.getvalue())
    assert obj["ok"] is True and obj["changed"] is True


def ops_process(args, **kw):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    kw.setdefault("preexec_fn", default_signals)
    return subprocess.Popen([sys.executable, "-m", "ops"] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True, env=env, **kw)


class Finished:
    def __init__(self, proc):
        self.out, self.err = proc.communicate(timeout=60)
        self.code = proc.returncode

    @property
    def error_lines(self):
        return [l for l in self.err.splitlines() if l.startswith("ops: error:")]

    def __repr__(self):
        return "Finished(code=%r, out=%r, err=%r)" % (self.code, self.out, self.err)


def hold_lock(root):
    lock = root / "var/lib/ops/lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # its own process group, so that `release` ends the sleep (which holds the lock) with flock
    holder = subprocess.Popen(["flock", str(lock), "sleep", "30"], start_new_session=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if subprocess.run(["flock", "-n", str(lock), "true"]).returncode != 0:
            return holder
        time.sleep(0.02)
    raise AssertionError("flock did not take the lock")


def waiting_for_the_lock(proc, root, timeout=30):
    """Wait until ``proc`` has the lock file open: started, validated, now waiting for the lock."""
    lock = os.path.realpath(str(root / "var/lib/ops/lock"))
    fds = "/proc/%d/fd" % proc.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if any(os.readlink(os.path.join(fds, fd)) == lock for fd in os.listdir(fds)):
                return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("ops did not wait for the lock: %r" % (Finished(proc),))


def release(holder):
    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()


@pytest.mark.parametrize("signum,signame", [(signal.SIGTERM, "SIGTERM"),
                                            (signal.SIGHUP, "SIGHUP"),
                                            (signal.SIGINT, "SIGINT")])
def test_a_signal_while_waiting_for_the_lock_gives_one_json_object(signum, signame, root,
                                                                   bundle):
    holder = hold_lock(root)
    try:
        proc = ops_process(["--json", "--root", root, "deploy", bundle(name="web", version=1)])
        waiting_for_the_lock(proc, root)
        proc.send_signal(signum)
        r = Finished(proc)
    finally:
        release(holder)
    one_json_failure(r, "deploy", signame)
    assert sorted(os.listdir(str(root))) == ["var"]
    assert stored_versions(root, "web") == []


def test_sighup_ignored_by_the_caller_stays_ignored(root, bundle):
    """Under nohup, a closed terminal does not stop the deploy."""
    holder = hold_lock(root)
    try:
        proc = ops_process(["--json", "--root", root, "deploy", bundle(name="web", version=1)],
                           preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
        waiting_for_the_lock(proc, root)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
    finally:
        release(holder)
    r = Finished(proc)
    assert r.code == 0, r
    assert json.loads(r.out)["changed"] is True
    assert stored_versions(root, "web") == [1]


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_closed_output_pipe_does_not_change_the_outcome(stream, root, bundle):
    """SIGPIPE: Python ignores it, and a write to a closed pipe fails with
    EPIPE; ops finishes its work and exits as it would have."""
    r_fd, w_fd = os.pipe()
    os.close(r_fd)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    other = subprocess.PIPE
    proc = subprocess.run([sys.executable, "-m", "ops", "--json", "--root", str(root),
                           "deploy", str(bundle(name="web", version=1))], env=env,
                          stdout=w_fd if stream == "stdout" else other,
                          stderr=w_fd if stream == "stderr" else other, timeout=60)
    os.close(w_fd)
    assert proc.returncode == 0, proc
    assert stored_versions(root, "web") == [1]
    assert b"Traceback" not in (proc.stderr or b"") + (proc.stdout or b"")


def gnu_header(name, size_field=None, uid_field=None):
    """A tar header with raw fields (GNU base-256 numbers can be negative)."""
    ti = tarfile.TarInfo(name)
    ti.mode = 0o644
    buf = bytearray(ti.tobuf(format=tarfile.GNU_FORMAT))
    if size_field is not None:
        buf[124:136] = size_field
    if uid_field is not None:
        buf[108:116] = uid_field
    buf[148:156] = b" " * 8
    buf[148:156] = b"%06o\0 " % sum(buf[:512])
    return bytes(buf)


@pytest.mark.parametrize("fields", [
    {"size_field": b"\xff" * 11 + b"\xf0"},            # size -16
    {"uid_field": b"\xff" * 8},                         # uid -1
    {"uid_field": b"\x80" + b"\x00" * 2 + b"\x01" + b"\x00" * 4},   # uid 2**32
])
def test_base256_header_tricks_are_a_volume_error(fields, tmp_path):
    from ops.errors import VolumeError
    archive = tmp_path / "v.tar"
    archive.write_bytes(gnu_header("a.txt", **fields) + b"x" * 512 + b"\0" * 1024)
    with pytest.raises(VolumeError):
        unpack_as_root(archive, tmp_path / "out")
    assert sorted(os.listdir(str(tmp_path))) == ["v.tar"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_at_the_commit_leaves_the_deploy_committed(signum, ops, root, bundle,
                                                            monkeypatch, signal_handlers):
    """Once every step of the switch is done, a signal cannot roll it back."""
    from ops import store
    assert ops("deploy", bundle(name="web", version=1)).code == 0
    record = store.StoredVersion.record

    def killing_record(self, outcome, *a, **kw):
        if outcome == "ok":
            os.kill(os.getpid(), signum)
        return record(self, outcome, *a, **kw)
    monkeypatch.setattr(store.StoredVersion, "record", killing_record)
    r = ops("--json", "deploy", bundle(name="web", version=2))
    assert r.code == 0, r
    assert json.loads(r.out)["changed"] is True
    assert current_link(root, "web") == "../pods/web/2"
