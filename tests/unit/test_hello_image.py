"""examples/hello/make-image.py: the hello example's image built from a static busybox, signed, and named in
each bundle's pod.json.  A stand-in file plays busybox here (any bytes do: the image is not run)."""

import json
import shutil
import tarfile

import pytest

from conftest import REPO, current_link
from ops.rkt import image_sha512
from tests.support.realrkt import make_image_module

HELLO = REPO / "examples" / "hello"
VERSIONS = ("v1", "v2", "v3")

m = make_image_module()


@pytest.fixture
def hello(tmp_path):
    d = tmp_path / "hello"
    shutil.copytree(str(HELLO), str(d), ignore=shutil.ignore_patterns("images", "__pycache__"))
    return d


def busybox(tmp_path, text):
    p = tmp_path / ("busybox-" + text)
    p.write_bytes(b"\x7fELF a static busybox stand-in: " + text.encode() * 1000)
    return p


def named_ids(bundle):
    """The image IDs pod.json names: (apps[].image.id, ops.images[].id)."""
    doc = json.loads((bundle / "pod.json").read_text())
    ops = json.loads(doc["annotations"][0]["value"])
    return [a["image"]["id"] for a in doc["apps"]], [i["id"] for i in ops["images"]]


def test_every_bundle_gets_the_image_its_signature_and_its_id(hello, tmp_path, signer):
    home, _ = signer
    bb = busybox(tmp_path, "one")
    image_id = m.make([str(hello / v) for v in VERSIONS], str(home), busybox=str(bb))
    for v in VERSIONS:
        img = hello / v / "images" / "hello-web.aci"
        assert image_sha512(str(img)) == image_id
        assert (hello / v / "images" / "hello-web.aci.asc").read_text().startswith("-----BEGIN PGP SIGNATURE")
        assert named_ids(hello / v) == ([image_id], [image_id])
    with tarfile.open(str(hello / "v1" / "images" / "hello-web.aci")) as tar:
        manifest = json.load(tar.extractfile("manifest"))
        member = tar.getmember("rootfs/bin/busybox")
        assert tar.extractfile(member).read() == bb.read_bytes() and member.mode == 0o755
        assert tar.getmember("rootfs/var/www").isdir()
    assert manifest["name"] == "example.com/hello-web"
    assert manifest["app"]["exec"][:2] == ["/bin/busybox", "httpd"]
    assert manifest["app"]["mountPoints"] == [{"name": "www", "path": "/var/www", "readOnly": True}]


def test_only_the_id_in_pod_json_changes(hello, tmp_path, signer):
    home, _ = signer
    image_id = m.make([str(hello / "v2")], str(home), busybox=str(busybox(tmp_path, "two")))
    committed = (HELLO / "v2" / "pod.json").read_text()
    (old,), _ = named_ids(HELLO / "v2")
    assert old != image_id
    assert (hello / "v2" / "pod.json").read_text() == committed.replace(old, image_id)


def test_running_it_again_changes_nothing(hello, tmp_path, signer):
    home, _ = signer
    bb = str(busybox(tmp_path, "three"))
    m.make([str(hello / "v1")], str(home), busybox=bb)
    files = ["pod.json", "images/hello-web.aci", "images/hello-web.aci.asc"]
    before = {f: (hello / "v1" / f).read_bytes() for f in files}
    m.make([str(hello / "v1")], str(home), busybox=bb)
    assert {f: (hello / "v1" / f).read_bytes() for f in files} == before


def test_another_busybox_is_another_image_signed_again(hello, tmp_path, signer):
    home, _ = signer
    first = m.make([str(hello / "v1")], str(home), busybox=str(busybox(tmp_path, "four")))
    sig = (hello / "v1" / "images" / "hello-web.aci.asc").read_bytes()
    second = m.make([str(hello / "v1")], str(home), busybox=str(busybox(tmp_path, "five")))
    assert second != first
    assert named_ids(hello / "v1") == ([second], [second])
    assert (hello / "v1" / "images" / "hello-web.aci.asc").read_bytes() != sig


def test_the_bundle_deploys_with_its_signature_checked(ops, root, hello, tmp_path, signer, rkt):
    home, key = signer
    image_id = m.make([str(hello / "v1")], str(home), busybox=str(busybox(tmp_path, "six")))
    r = ops("deploy", str(hello / "v1"))
    assert r.code == 1 and "signature" in r.err, r            # the key is not trusted yet
    rkt.trust(key, "example.com/hello-web")
    rkt.clear()
    r = ops("deploy", str(hello / "v1"))
    assert r.code == 0 and r.last == "deploy hello 1: changed", r
    (fetch,) = rkt.fetches()
    assert "--signature=" in " ".join(fetch) and not [a for a in fetch if a.startswith("--insecure")], fetch
    assert [i["id"] for i in rkt.image_list()] == [image_id[:71]]
    assert current_link(root, "hello") == "../pods/hello/1"
    stored = json.loads((root / "etc/ops/pods/hello/1/manifest.json").read_text())
    assert stored["apps"][0]["image"]["id"] == image_id
    assert {"name": "www", "kind": "host", "readOnly": False,
            "source": "/var/lib/ops/volumes/hello/1/www"} in stored["volumes"]
