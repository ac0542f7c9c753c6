"""What comes from outside while ops runs — a server's redirect, a tar
header, a signal — never makes it act outside its own files, and never
gives a traceback or an "unexpected error"."""

import io
import json
import os
import tarfile

import pytest

from conftest import snapshot, stored_versions
from ops.errors import FetchError
from ops.fetch import download
from tests.support.servers import body, make_certs, redirect, serve


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
