"""A pod with an image: fetched into rkt's store (the rkt stand-in tests/rkt/rkt), not fetched again when already
there, refused when its ID does not match, removed with the last version that uses it."""

import gzip
import hashlib
import io
import json
import os
import tarfile

import pytest

from .conftest import (OPS_ENV, copy_bundle, describe, exists, is_active, last_line, list_pods, make_bundle, ops,
                       readlink, service)

RKT = "/src/tests/rkt/rkt"
RKT_LOG = "/run/rkt-calls.jsonl"


def aci_bytes(name, version):
    """An ACI as a plain tar (its image ID is the SHA-512 of these bytes)."""
    manifest = json.dumps({"acKind": "ImageManifest", "acVersion": "0.8.11", "name": name,
                           "labels": [{"name": "version", "value": version},
                                      {"name": "os", "value": "linux"}]}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add(member, data=None):
            info = tarfile.TarInfo(member)
            info.mtime = 1700000000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
        add("manifest", manifest)
        add("rootfs")
        add("rootfs/hello.txt", b"hello from the image, version %s\n" % version.encode())
    return buf.getvalue()


def image_bundle(directory, version, image_entry, aci=None):
    d = make_bundle(directory, "imgpod", version, units=[
        ("imgpod.service", service("imgpod %d" % version, "/bin/sleep infinity"), True, None),
    ], extra_ops={"images": [image_entry]})
    if aci is not None:
        os.makedirs(os.path.join(d, "images"), exist_ok=True)
        # gzip-compressed, under a name that does not end in .aci: ops hashes the uncompressed tar and gives rkt
        # a name ending in .aci
        with open(os.path.join(d, "images", "app.tar.gz"), "wb") as f:
            f.write(gzip.compress(aci, mtime=0))
    return d


TAR = aci_bytes("example.com/imgpod-app", "1.0")
ID = "sha512-" + hashlib.sha512(TAR).hexdigest()


@pytest.fixture(scope="module")
def bundles(container, tmp_path_factory):
    base = tmp_path_factory.mktemp("img")
    entry = {"id": ID, "path": "images/app.tar.gz"}
    for v in (1, 2):
        copy_bundle(container, image_bundle(str(base / str(v)), v, entry, TAR), "/root/bundles/imgpod/%d" % v)
    wrong = "sha512-" + hashlib.sha512(b"something else").hexdigest()
    copy_bundle(container, image_bundle(str(base / "3"), 3, {"id": wrong, "path": "images/app.tar.gz"}, TAR),
                "/root/bundles/imgpod/3")
    copy_bundle(container, image_bundle(str(base / "4"), 4, {"path": "images/app.tar.gz"}, TAR),
                "/root/bundles/imgpod/4")
    return "/root/bundles/imgpod"


def ops_logged(c, *args):
    env = dict(OPS_ENV, FAKE_RKT_LOG=RKT_LOG)
    return c.run(["/usr/bin/python3", "-m", "ops"] + list(args), env=env, timeout=180)


def rkt_calls(c):
    if not exists(c, RKT_LOG):
        return []
    calls = [json.loads(l)["argv"] for l in c.read_file(RKT_LOG).splitlines() if l.strip()]
    c.remove(RKT_LOG)
    return calls


def store_ids(c):
    r = c.run([RKT, "image", "list", "--format=json"], env=dict(OPS_ENV))
    assert r.returncode == 0, describe(r)
    return [i["id"] for i in json.loads(r.stdout or "[]") or []]


def in_store(c):
    return [i for i in store_ids(c) if ID.startswith(i) or i.startswith(ID)]


def test_deploy_fetches_the_image(container, bundles):
    c = container
    assert in_store(c) == []
    r = ops_logged(c, "deploy", bundles + "/1")
    assert r.returncode == 0 and last_line(r.stdout) == "deploy imgpod 1: changed", describe(r)
    fetches = [a for a in rkt_calls(c) if "fetch" in a]
    assert len(fetches) == 1, fetches
    assert [a for a in fetches[0] if a.endswith(".aci")], fetches
    assert len(in_store(c)) == 1
    assert is_active(c, "imgpod.service") == "active"
    # state.json records the image ID rkt gave (rkt prints sha512- and 32 hex digits)
    assert ID[:39] in c.read_file("/etc/ops/pods/imgpod/1/state.json")


def test_image_already_in_the_store_is_not_fetched_again(container, bundles):
    c = container
    r = ops_logged(c, "deploy", bundles + "/2")
    assert r.returncode == 0 and last_line(r.stdout) == "deploy imgpod 2: changed", describe(r)
    assert not [a for a in rkt_calls(c) if "fetch" in a]
    assert len(in_store(c)) == 1
    assert readlink(c, "/etc/ops/current/imgpod") == "../pods/imgpod/2"


def test_image_whose_content_does_not_match_its_id_is_refused(container, bundles):
    c = container
    before = store_ids(c)
    r = ops_logged(c, "deploy", bundles + "/3")
    assert r.returncode in (1, 2), describe(r)
    assert "ops: error: " in r.stderr and "sha512" in r.stderr, describe(r)
    assert not [a for a in rkt_calls(c) if "fetch" in a]
    assert store_ids(c) == before
    assert not exists(c, "/etc/ops/pods/imgpod/3")
    assert readlink(c, "/etc/ops/current/imgpod") == "../pods/imgpod/2"
    assert is_active(c, "imgpod.service") == "active"
    assert "imgpod 2" in c.read_file("/etc/systemd/system/imgpod.service")


def test_image_without_id_or_signature_needs_insecure_images(container, bundles):
    c = container
    r = ops(c, "deploy", bundles + "/4", check=2)
    assert "--insecure-images" in r.stderr, describe(r)
    assert not exists(c, "/etc/ops/pods/imgpod/4")
    assert readlink(c, "/etc/ops/current/imgpod") == "../pods/imgpod/2"


def test_undeploy_remove_deletes_the_image(container, bundles):
    c = container
    r = ops(c, "undeploy", "imgpod", "--remove", check=0)
    assert last_line(r.stdout).endswith(": changed"), describe(r)
    assert in_store(c) == []
    assert not exists(c, "/etc/ops/pods/imgpod")
    assert not [k for k in list_pods(c) if k[0] == "imgpod"]
