"""`ops deploy` of bundles whose artifacts are http:// and https:// URIs
(SPEC §1, §4, §7), offline into a temporary ROOT, against real servers on
127.0.0.1 started by each test.

The bundle directory holds only pod.json: its unit file, image, signature and
volume data are served by a loopback server (tests/support/servers.py).  Each
test looks at what an operator would: the exit code, the last line or the
error line, the files under ROOT, what reached the server (its request log)
and what reached rkt (the stand-in's log and store).  After every run,
downloads must be gone: ``var/lib/ops/tmp/`` is empty and no ``.ops-tmp-*``
name is left anywhere under ROOT.
"""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from conftest import (current_link, diff, dropin_env, make_tar, snapshot, state,
                      stored_versions, unit_dir, unit_text, wants)
from tests.support import aci, gpg
from tests.support.servers import (body, make_certs, redirect, sequence, serve, stall, status,
                                   truncated)

IMAGE_NAME = "example.com/remote"
UNIT = "web-main.service"
VOLUME_FILES = {"index.html": "served over http\n", "sub/page.txt": "page\n"}


pytestmark = pytest.mark.usefixtures("no_proxy")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("pki"))


class Site:
    """The artifacts of one version, as bytes, ready to be served."""

    def __init__(self, directory, version=1, signer_home=None):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.unit = unit_text(UNIT, body="remote %d" % version).encode()
        self.volume = make_tar(d / "data.tar.gz", VOLUME_FILES).read_bytes()
        self.image_id = aci.build_aci(d / "app.aci", name=IMAGE_NAME,
                                      version="%d.0" % version, compression="gz")
        self.image = (d / "app.aci").read_bytes()
        self.signature = None
        if signer_home is not None:
            self.signature = Path(gpg.sign(signer_home, d / "app.aci")).read_bytes()

    def routes(self, **override):
        r = {"/u/" + UNIT: body(self.unit), "/v/data.tar.gz": body(self.volume),
             "/i/app.aci": body(self.image)}
        if self.signature is not None:
            r["/i/app.aci.asc"] = body(self.signature)
        r.update(override)
        return r


def remote_bundle(directory, version=1, unit=None, volume=None, image=None, image_id=None,
                  signature=None, name="web", local_unit=False):
    """A bundle directory holding pod.json whose artifacts are URIs; with
    ``local_unit`` the unit file is a file of the bundle instead."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "version": version}
    if local_unit:
        (d / "units").mkdir(exist_ok=True)
        (d / "units" / UNIT).write_text(unit_text(UNIT, body="local %d" % version))
        unit = "units/" + UNIT
    if unit:
        doc["systemd-units"] = [{"unit-file": unit, "start": True}]
    if image:
        entry = {"uri": image}
        if image_id:
            entry["id"] = image_id
        if signature:
            entry["signature"] = signature
        doc["images"] = [entry]
    if volume:
        doc["volumes"] = [{"volume": "data", "data": volume}]
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11",
                "annotations": [{"name": "ops", "value": json.dumps(doc)}]}
    (d / "pod.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return d


def full_bundle(directory, srv, site, version=1):
    return remote_bundle(directory, version=version, unit=srv.url("/u/" + UNIT),
                         volume=srv.url("/v/data.tar.gz"), image=srv.url("/i/app.aci"),
                         image_id=site.image_id,
                         signature=srv.url("/i/app.aci.asc") if site.signature else None)


def assert_no_leftovers(root):
    """Downloads and temporary names are all gone."""
    tmp = Path(root) / "var/lib/ops/tmp"
    if tmp.exists():
        assert sorted(os.listdir(str(tmp))) == [], "left in var/lib/ops/tmp"
    left = [os.path.relpath(os.path.join(dp, n), str(root))
            for dp, dns, fns in os.walk(str(root)) for n in dns + fns
            if n.startswith(".ops-tmp-")]
    assert left == []


def without_tmp(snap):
    """A snapshot without the downloads directory itself (ops may create it)."""
    return {k: v for k, v in snap.items() if k != "var/lib/ops/tmp"}


def deploy_local_v1(ops, bundle, root):
    """Version 1 from a local bundle, running before the remote version 2 comes."""
    b1 = bundle(name="web", version=1, units=[{"file": UNIT, "start": True}],
                volumes={"data": {"index.html": "local v1\n"}})
    r = ops("deploy", b1)
    assert r.code == 0, r
    return b1


def assert_v1_untouched(root, b1):
    assert current_link(root, "web") == "../pods/web/1"
    assert stored_versions(root, "web") == [1]
    assert (unit_dir(root) / UNIT).read_text() == (b1.dir / "units" / UNIT).read_text()
    assert dropin_env(root, UNIT)["POD_VERSION"] == "1"
    assert wants(root) == [UNIT]
    assert not (Path(root) / "var/lib/ops/volumes/web/2").exists()
    assert (Path(root) / "var/lib/ops/volumes/web/1/data/index.html").read_text() == "local v1\n"


# -- success ---------------------------------------------------------------------

def test_all_remote_artifacts_deploy_and_the_version_redeploys_without_network(
        ops, root, tmp_path, bundle, rkt, signer):
    home, key = signer
    rkt.trust(key, IMAGE_NAME)
    site = Site(tmp_path / "site", signer_home=home)
    with serve(site.routes()) as srv:
        b = full_bundle(tmp_path / "remote-bundle", srv, site)
        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        # each artifact asked for once
        assert sorted(p for _, p in srv.requests) == sorted(
            ["/u/" + UNIT, "/v/data.tar.gz", "/i/app.aci", "/i/app.aci.asc"])
        image_uri, sig_uri = srv.url("/i/app.aci"), srv.url("/i/app.aci.asc")
    # the unit file: stored with the version and installed under its own name
    vdir = root / "etc/ops/pods/web/1"
    assert (vdir / "units" / UNIT).read_bytes() == site.unit
    assert (unit_dir(root) / UNIT).read_bytes() == site.unit
    assert wants(root) == [UNIT]
    assert dropin_env(root, UNIT)["POD_VERSION"] == "1"
    assert current_link(root, "web") == "../pods/web/1"
    assert (vdir / "pod.json").read_bytes() == (b / "pod.json").read_bytes()
    # the volume, unpacked
    vol = root / "var/lib/ops/volumes/web/1/data"
    assert (vol / "index.html").read_text() == VOLUME_FILES["index.html"]
    assert (vol / "sub/page.txt").read_text() == VOLUME_FILES["sub/page.txt"]
    # the image: downloaded, handed to rkt under a name ending in .aci, with its signature
    (fetch,) = rkt.fetches()
    arg = fetch[fetch.index("fetch") + 1]
    assert arg.endswith(".aci"), fetch
    assert os.path.dirname(arg) == str(root / "var/lib/ops/tmp")
    sigs = [a for a in fetch if a.startswith("--signature=")]
    assert len(sigs) == 1 and fetch.index(sigs[0]) > fetch.index(arg)
    assert os.path.dirname(sigs[0][len("--signature="):]) == str(root / "var/lib/ops/tmp")
    assert image_uri not in fetch and sig_uri not in fetch   # ops downloads, not rkt
    assert rkt.store() == [aci.image_key(site.image_id)]
    assert state(root, "web", 1)["images"] == [site.image_id]
    assert_no_leftovers(root)

    # the server is gone and so is the bundle; version 2 comes from a local bundle
    shutil.rmtree(str(b))
    b2 = bundle(name="web", version=2, units=[{"file": UNIT, "start": True}])
    r = ops("deploy", b2)
    assert r.code == 0, r
    assert r.last == "deploy web 2: changed"
    assert current_link(root, "web") == "../pods/web/2"
    # back to 1 from what is stored: no download (nothing listens any more)
    r = ops("redeploy", "web:1")
    assert r.code == 0, r
    assert r.last == "redeploy web 1: changed"
    assert current_link(root, "web") == "../pods/web/1"
    assert (unit_dir(root) / UNIT).read_bytes() == site.unit
    assert dropin_env(root, UNIT)["POD_VERSION"] == "1"
    assert wants(root) == [UNIT]
    assert (vol / "index.html").read_text() == VOLUME_FILES["index.html"]
    assert len(rkt.fetches()) == 1
    assert_no_leftovers(root)


def test_an_image_uri_not_ending_in_aci_reaches_rkt_under_a_name_that_does(
        ops, root, tmp_path, rkt):
    site = Site(tmp_path / "site")
    with serve({"/blobs/7f3a": body(site.image)}) as srv:
        b = remote_bundle(tmp_path / "b", image=srv.url("/blobs/7f3a"), image_id=site.image_id)
        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        assert srv.hits("/blobs/7f3a") == 1
    (fetch,) = rkt.fetches()
    arg = fetch[fetch.index("fetch") + 1]
    assert arg.endswith(".aci"), fetch
    assert "--insecure-options=image" in fetch       # pinned by id, no signature
    assert rkt.store() == [aci.image_key(site.image_id)]
    assert current_link(root, "web") == "../pods/web/1"
    assert_no_leftovers(root)


# -- failures while downloading ----------------------------------------------------

def test_a_404_for_the_volume_fails_and_leaves_the_running_version(ops, root, tmp_path,
                                                                   bundle, rkt):
    b1 = deploy_local_v1(ops, bundle, root)
    before = snapshot(root)
    site = Site(tmp_path / "site", version=2)
    with serve(site.routes(**{"/v/data.tar.gz": status(404)})) as srv:
        uri = srv.url("/v/data.tar.gz")
        b2 = remote_bundle(tmp_path / "b2", version=2, local_unit=True, volume=uri)
        r = ops("deploy", b2)
        assert r.code == 1, r
        assert r.out == ""
        assert r.error_lines == ["ops: error: %s: 404 Not Found" % uri], r
        assert srv.hits("/v/data.tar.gz") == 1          # no retry on 4xx
    assert_v1_untouched(root, b1)
    assert not (root / "etc/ops/pods/web/2").exists()
    assert diff(without_tmp(before), without_tmp(snapshot(root))) == []
    assert_no_leftovers(root)


def test_a_500_then_200_is_retried_and_succeeds(ops, root, tmp_path, rkt):
    site = Site(tmp_path / "site")
    routes = site.routes(**{"/v/data.tar.gz": sequence(status(500), body(site.volume))})
    with serve(routes) as srv:
        b = remote_bundle(tmp_path / "b", local_unit=True, volume=srv.url("/v/data.tar.gz"))
        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        assert r.error_lines == []
        assert srv.hits("/v/data.tar.gz") == 2
    assert (root / "var/lib/ops/volumes/web/1/data/index.html").read_text() == \
        VOLUME_FILES["index.html"]
    assert (unit_dir(root) / UNIT).read_bytes() == (b / "units" / UNIT).read_bytes()
    assert current_link(root, "web") == "../pods/web/1"
    assert_no_leftovers(root)


def assert_nothing_staged(root):
    """A first deploy that failed while staging: nothing of the pod anywhere."""
    assert not (root / "etc/ops/pods/web").exists()
    assert current_link(root, "web") is None
    assert not (unit_dir(root) / UNIT).exists()
    assert not (root / "var/lib/ops/volumes/web").exists()
    files = sorted(k for k, v in snapshot(root).items() if v[0] != "dir")
    assert files == [], files


def test_a_short_read_fails_and_stages_nothing(ops, root, tmp_path, rkt):
    site = Site(tmp_path / "site")
    with serve(site.routes(**{"/v/data.tar.gz": truncated(50000, 1000)})) as srv:
        uri = srv.url("/v/data.tar.gz")
        b = remote_bundle(tmp_path / "b", local_unit=True, volume=uri)
        r = ops("deploy", b)
        assert r.code == 1, r
        assert r.out == ""
        assert len(r.error_lines) == 1, r
        assert r.error_lines[0].startswith("ops: error: %s: " % uri), r
        assert "short read" in r.error_lines[0], r
        assert 1 <= srv.hits("/v/data.tar.gz") <= 3
    assert_nothing_staged(root)
    assert_no_leftovers(root)


@pytest.mark.parametrize("after_headers", [False, True], ids=["before-headers", "mid-body"])
def test_a_stalled_server_times_out_within_bounds(ops, root, tmp_path, rkt, after_headers):
    site = Site(tmp_path / "site")
    routes = site.routes(**{"/v/data.tar.gz": stall(60, after_headers=after_headers)})
    with serve(routes) as srv:
        uri = srv.url("/v/data.tar.gz")
        b = remote_bundle(tmp_path / "b", local_unit=True, volume=uri)
        t0 = time.monotonic()
        r = ops("--timeout", "0.5", "deploy", b)
        elapsed = time.monotonic() - t0
        assert r.code == 1, r
        assert r.out == ""
        assert len(r.error_lines) == 1, r
        assert r.error_lines[0].startswith("ops: error: %s: " % uri), r
        assert "timed out" in r.error_lines[0], r
        # 3 attempts of 0.5 s plus back-off; far below the server's 60 s stall
        assert elapsed < 10, elapsed
        assert 1 <= srv.hits("/v/data.tar.gz") <= 3
    assert_nothing_staged(root)
    assert_no_leftovers(root)


def test_a_redirect_is_followed(ops, root, tmp_path, rkt):
    site = Site(tmp_path / "site")
    routes = site.routes(**{"/u/" + UNIT: redirect("/blobs/unit-1", code=302),
                            "/blobs/unit-1": redirect("/blobs/unit-2", code=301),
                            "/blobs/unit-2": body(site.unit)})
    with serve(routes) as srv:
        b = remote_bundle(tmp_path / "b", unit=srv.url("/u/" + UNIT),
                          volume=srv.url("/v/data.tar.gz"))
        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        assert [srv.hits(p) for p in ("/u/" + UNIT, "/blobs/unit-1", "/blobs/unit-2")] == \
            [1, 1, 1]
    # the unit keeps the name its URI gives it, whatever path served it
    assert (root / "etc/ops/pods/web/1/units" / UNIT).read_bytes() == site.unit
    assert (unit_dir(root) / UNIT).read_bytes() == site.unit
    assert current_link(root, "web") == "../pods/web/1"
    assert_no_leftovers(root)


def test_a_redirect_loop_fails(ops, root, tmp_path, rkt):
    site = Site(tmp_path / "site")
    routes = site.routes(**{"/v/data.tar.gz": redirect("/loop/b"),
                            "/loop/b": redirect("/v/data.tar.gz")})
    with serve(routes) as srv:
        uri = srv.url("/v/data.tar.gz")
        b = remote_bundle(tmp_path / "b", local_unit=True, volume=uri)
        r = ops("deploy", b)
        assert r.code == 1, r
        assert r.out == ""
        assert r.error_lines == ["ops: error: %s: redirect loop" % uri], r
        assert srv.hits("/v/data.tar.gz") + srv.hits("/loop/b") <= 30
    assert_nothing_staged(root)
    assert_no_leftovers(root)


# -- https -------------------------------------------------------------------------

def test_https_with_an_untrusted_certificate_fails_and_with_ca_file_succeeds(
        ops, root, tmp_path, rkt, certs):
    site = Site(tmp_path / "site")
    with serve(site.routes(), tls=certs) as srv:
        image_uri, vol_uri = srv.url("/i/app.aci"), srv.url("/v/data.tar.gz")
        assert image_uri.startswith("https://127.0.0.1:")
        b = remote_bundle(tmp_path / "b", local_unit=True, image=image_uri,
                          image_id=site.image_id, volume=vol_uri)
        r = ops("deploy", b)
        assert r.code == 1, r
        assert r.out == ""
        assert len(r.error_lines) == 1, r
        assert any(r.error_lines[0].startswith("ops: error: %s: " % u)
                   for u in (image_uri, vol_uri)), r
        assert "certificate" in r.error_lines[0].lower(), r
        assert srv.requests == []          # no request got past the handshake
        assert rkt.fetches() == []
        assert_nothing_staged(root)
        assert_no_leftovers(root)

        r = ops("--ca-file", certs.ca_cert, "deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        assert srv.hits("/i/app.aci") == 1 and srv.hits("/v/data.tar.gz") == 1
    assert rkt.store() == [aci.image_key(site.image_id)]
    assert (root / "var/lib/ops/volumes/web/1/data/index.html").read_text() == \
        VOLUME_FILES["index.html"]
    assert (unit_dir(root) / UNIT).read_bytes() == (b / "units" / UNIT).read_bytes()
    assert current_link(root, "web") == "../pods/web/1"
    assert_no_leftovers(root)


# -- images ------------------------------------------------------------------------

def test_a_downloaded_image_that_does_not_match_its_id_is_refused(ops, root, tmp_path,
                                                                  bundle, rkt):
    b1 = deploy_local_v1(ops, bundle, root)
    before = snapshot(root)
    site = Site(tmp_path / "site", version=2)
    other = aci.build_aci(tmp_path / "other.aci", name=IMAGE_NAME, version="9.9")
    assert other != site.image_id
    with serve(site.routes()) as srv:
        uri = srv.url("/i/app.aci")
        b2 = remote_bundle(tmp_path / "b2", version=2, local_unit=True,
                           volume=srv.url("/v/data.tar.gz"), image=uri, image_id=other)
        r = ops("deploy", b2)
        assert r.code == 1, r
        assert r.out == ""
        assert len(r.error_lines) == 1, r
        assert "does not match" in r.error_lines[0], r
        assert uri in r.error_lines[0], r
        assert srv.hits("/i/app.aci") == 1
    assert rkt.fetches() == []                  # refused before rkt saw it
    assert rkt.image_list() in (None, [])
    assert_v1_untouched(root, b1)
    assert not (root / "etc/ops/pods/web/2").exists()
    assert diff(without_tmp(before),
                {k: v for k, v in without_tmp(snapshot(root)).items()
                 if not k.startswith("var/lib/rkt")}) == []
    assert_no_leftovers(root)


def test_a_signed_remote_image_fetched_again_is_still_verified(ops, root, tmp_path, rkt,
                                                               signer):
    """The version is stored but its image left rkt's store: deploying the
    same bundle fetches the image again, and rkt must again get its signature."""
    home, key = signer
    rkt.trust(key, IMAGE_NAME)
    site = Site(tmp_path / "site", signer_home=home)
    with serve(site.routes()) as srv:
        b = remote_bundle(tmp_path / "b", local_unit=True, image=srv.url("/i/app.aci"),
                          signature=srv.url("/i/app.aci.asc"))
        r = ops("deploy", b)
        assert r.code == 0, r
        assert rkt.store() == [aci.image_key(site.image_id)]
        p = rkt.run("image", "rm", site.image_id[:71])
        assert p.returncode == 0, p.stderr
        assert rkt.store() == []

        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        first, again = rkt.fetches()
        for fetch in (first, again):
            # no --insecure-options: the image has no id, only its signature vouches for it
            assert "--insecure-options=image" not in fetch, fetch
            assert len([a for a in fetch if a.startswith("--signature=")]) == 1, fetch
        assert srv.hits("/i/app.aci") == 2 and srv.hits("/i/app.aci.asc") == 2
    assert rkt.store() == [aci.image_key(site.image_id)]
    assert current_link(root, "web") == "../pods/web/1"
    assert_no_leftovers(root)


# -- identical re-deploy and dry-run -------------------------------------------------

@pytest.mark.parametrize("pinned", [True, False], ids=["id-and-signature", "signature-only"])
def test_an_identical_redeploy_asks_the_server_for_nothing(ops, root, tmp_path, rkt, signer,
                                                           pinned):
    home, key = signer
    rkt.trust(key, IMAGE_NAME)
    site = Site(tmp_path / "site", signer_home=home)
    with serve(site.routes()) as srv:
        b = full_bundle(tmp_path / "b", srv, site)
        if not pinned:
            b = remote_bundle(tmp_path / "b", unit=srv.url("/u/" + UNIT),
                              volume=srv.url("/v/data.tar.gz"), image=srv.url("/i/app.aci"),
                              signature=srv.url("/i/app.aci.asc"))
        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: changed"
        seen = list(srv.requests)
        assert len(seen) == 4
        fetches = len(rkt.fetches())
        assert fetches == 1
        before = snapshot(root)

        r = ops("deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: unchanged"
        assert srv.requests == seen               # not one request more
        assert len(rkt.fetches()) == fetches      # and no fetch
    assert diff(without_tmp(before), without_tmp(snapshot(root))) == []
    assert_no_leftovers(root)


def test_dry_run_prints_the_downloads_and_makes_no_request(ops, root, tmp_path, rkt, signer):
    home, _ = signer
    site = Site(tmp_path / "site", signer_home=home)
    with serve(site.routes()) as srv:
        b = full_bundle(tmp_path / "b", srv, site)
        r = ops("--dry-run", "deploy", b)
        assert r.code == 0, r
        assert r.last == "deploy web 1: would change"
        uris = [srv.url(p) for p in ("/u/" + UNIT, "/i/app.aci", "/i/app.aci.asc",
                                     "/v/data.tar.gz")]
        downloads = sorted(l.strip()[len("download "):] for l in r.lines
                           if l.strip().startswith("download "))
        assert downloads == sorted(uris), r
        assert srv.requests == []
        rj = ops("--dry-run", "--json", "deploy", b)
        assert rj.code == 0, rj
        doc = rj.json()
        assert doc["ok"] is True and doc["changed"] is False
        assert sorted(a["target"] for a in doc["actions"] if a["action"] == "download") == \
            sorted(uris)
        assert srv.requests == []
    assert rkt.fetches() == []
    assert not (root / "etc/ops").exists()
    assert not (unit_dir(root) / UNIT).exists()
    assert_no_leftovers(root)
