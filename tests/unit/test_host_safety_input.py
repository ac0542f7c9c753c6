"""Option values and bundle strings that could make ops act outside its own
files: each is refused with one line (exit 2) and nothing is changed."""

import json
import os
import subprocess

import pytest

from conftest import NOBODY, run_inprocess, run_process, snapshot



def refused(r, where, what):
    """Exit 2, one error line naming WHERE and WHAT, nothing on stdout."""
    assert r.code == 2, r
    assert r.out == "", r
    assert len(r.error_lines) == 1 and len(r.err.splitlines()) == 1, r
    assert where in r.err and what in r.err, r
    assert "Traceback" not in r.err and "unexpected error" not in r.err, r


# -- --root ---------------------------------------------------------------------

def test_an_empty_root_is_refused_not_the_live_host(bundle, tmp_path):
    b = bundle(name="web", version=1)
    r = run_inprocess(["--root", "", "--dry-run", "deploy", b])
    refused(r, "--root", "empty; give a directory")
    r = run_inprocess(["--json", "--root=", "--dry-run", "deploy", b])
    assert r.code == 2 and json.loads(r.out)["exit_code"] == 2, r


@pytest.mark.parametrize("spelling", ["//", "/.", "/./", "///", "TMP/..", "LINK"])
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to an unprivileged user")
def test_every_spelling_of_slash_is_the_live_host(spelling, public_dir):
    """Offline mode is decided by the real path: `--root //` is `/`, so a
    non-root user is refused as on the live host (it used to run offline
    mode against the live root)."""
    link = os.path.join(public_dir, "to-slash")
    os.symlink("/", link)
    root = spelling.replace("TMP", "/tmp").replace("LINK", link)
    r = run_process(["--root", root, "deploy", "/nonexistent-bundle"], python="/usr/bin/python3",
                    preexec=NOBODY, cwd="/", env={"PYTHONDONTWRITEBYTECODE": "1"})
    refused(r, "deploy", "must run as root")


def test_root_is_decided_by_its_real_path(tmp_path):
    from ops import options
    from ops.layout import Layout
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert options._root("//") == "/" and Layout("//").offline is False
    assert options._root(str(tmp_path / "link")) == str(tmp_path / "real")
    assert Layout(str(tmp_path / "link")).offline is True


@pytest.mark.parametrize("kind,what", [("file", "not a directory"),
                                       ("missing", "no such directory")])
def test_a_root_that_is_not_a_directory_is_refused(kind, what, bundle, tmp_path):
    b = bundle(name="web", version=1)
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("x")
    r = run_inprocess(["--root", target, "deploy", b])
    refused(r, "--root", what)
    assert (kind == "file") == target.exists()
    assert not target.exists() or target.read_text() == "x"


def test_a_relative_root_is_the_directory_it_names(bundle, tmp_path, monkeypatch):
    b = bundle(name="web", version=1)
    (tmp_path / "image").mkdir()
    monkeypatch.chdir(tmp_path)
    r = run_inprocess(["--root", "image", "deploy", b])
    assert r.code == 0, r
    assert os.readlink(str(tmp_path / "image/etc/ops/current/web")) == "../pods/web/1"


def test_a_tree_whose_etc_leads_outside_root_is_refused(bundle, tmp_path):
    """An image whose etc is a symbolic link to an absolute path (/etc, on
    the host) must not make ops write there."""
    outside = tmp_path / "outside-etc"
    outside.mkdir()
    image = tmp_path / "image"
    image.mkdir()
    (image / "etc").symlink_to(outside)
    b = bundle(name="web", version=1)
    before = snapshot(tmp_path / "outside-etc")
    r = run_inprocess(["--root", image, "deploy", b])
    refused(r, str(image / "etc"), "leads outside --root")
    assert snapshot(outside) == before == {}
    assert sorted(os.listdir(str(image))) == ["etc"]


# -- seconds, counts, programs and files ----------------------------------------

@pytest.mark.parametrize("option", ["--timeout", "--settle", "--lock-timeout"])
@pytest.mark.parametrize("value", ["1e300", "nan", "inf", "-inf", "-1", "1_0", " 5", "0x10",
                                   "\u0663", "604801", "99999999999", "1e3", ""])
def test_seconds_out_of_range_are_refused(option, value, ops, bundle, root):
    b = bundle(name="web", version=1)
    before = snapshot(root, ignore_lock=False)
    r = ops("%s=%s" % (option, value), "deploy", b)
    refused(r, "argument %s" % option, "seconds")
    assert snapshot(root, ignore_lock=False) == before
    r = ops("--json", "%s=%s" % (option, value), "deploy", b)
    assert r.code == 2 and json.loads(r.out)["ok"] is False, r


def test_a_zero_timeout_is_refused_but_zero_settle_and_lock_timeout_are_not(ops, bundle):
    b = bundle(name="web", version=1)
    refused(ops("--timeout", "0", "deploy", b), "argument --timeout", "> 0")
    r = ops("--settle", "0", "--lock-timeout", "0", "--timeout", "0.5", "deploy", b)
    assert r.code == 0, r


def test_a_huge_keep_is_refused(ops):
    refused(ops("cleanup", "--keep", "1" * 10), "argument --keep", "must be at most 999999999")


@pytest.mark.parametrize("kind,what", [("dir", "a directory, not a program"),
                                       ("plain", "not an executable file"),
                                       ("missing", "no such file")])
def test_rkt_must_be_an_executable_file(kind, what, ops, bundle, tmp_path, root):
    rkt = tmp_path / "rkt"
    if kind == "dir":
        rkt.mkdir()
    elif kind == "plain":
        rkt.write_text("#!/bin/sh\nexit 0\n")
    b = bundle(name="web", version=1)
    before = snapshot(root, ignore_lock=False)
    refused(ops("--rkt", rkt, "deploy", b), "argument --rkt", what)
    assert snapshot(root, ignore_lock=False) == before


@pytest.mark.parametrize("kind,what", [
    ("dir", "cannot read"), ("missing", "cannot read"), ("der", "not a PEM file"),
    ("garbage", "cannot load the CA certificates")])
def test_ca_file_must_be_readable_pem(kind, what, ops, bundle, tmp_path, root):
    ca = tmp_path / "ca.pem"
    if kind == "dir":
        ca.mkdir()
    elif kind == "der":
        ca.write_bytes(b"0\x82\x01\x0a" + os.urandom(200))
    elif kind == "garbage":
        ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all!\n"
                      "-----END CERTIFICATE-----\n")
    b = bundle(name="web", version=1)
    before = snapshot(root, ignore_lock=False)
    refused(ops("--ca-file", ca, "deploy", b), "argument --ca-file", what)
    assert snapshot(root, ignore_lock=False) == before


def test_a_good_ca_file_is_accepted(ops, bundle, tmp_path):
    ca = tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(tmp_path / "k.pem"), "-out", str(ca), "-days", "1", "-subj",
                    "/CN=ops-test"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    r = ops("--ca-file", ca, "check", bundle(name="web", version=1))
    assert r.code == 0, r


# -- bundle strings -------------------------------------------------------------

def write_pod_json(directory, text):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "pod.json").write_text(text)
    return directory


OPS_VALUE = '{\\"name\\": \\"web\\", \\"version\\": 1%s}'
DUPLICATES = {
    "top level": ('{"acKind": "PodManifest", "acVersion": "0.8.11", "acVersion": "0.8.12", '
                  '"annotations": [{"name": "ops", "value": "%s"}]}' % (OPS_VALUE % ""),
                  ": duplicate key \"acVersion\""),
    "in apps": ('{"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [{"name": "a", '
                '"name": "b"}], "annotations": [{"name": "ops", "value": "%s"}]}'
                % (OPS_VALUE % ""), ": duplicate key \"name\""),
    "in an annotation": ('{"acKind": "PodManifest", "acVersion": "0.8.11", "annotations": '
                         '[{"name": "ops", "value": "%s", "value": "{}"}]}' % (OPS_VALUE % ""),
                         ": duplicate key \"value\""),
    "in the ops object": ('{"acKind": "PodManifest", "acVersion": "0.8.11", "annotations": '
                          '[{"name": "ops", "value": "%s"}]}' % (OPS_VALUE % ', \\"name\\": \\"db\\"'),
                          ": ops: duplicate key \"name\""),
    "in a unit entry": ('{"acKind": "PodManifest", "acVersion": "0.8.11", "annotations": '
                        '[{"name": "ops", "value": "%s"}]}' % (OPS_VALUE % (
                            ', \\"systemd-units\\": [{\\"unit-file\\": \\"a.service\\", '
                            '\\"start\\": true, \\"start\\": false}]')),
                        ": ops: duplicate key \"start\""),
}


@pytest.mark.parametrize("case", sorted(DUPLICATES))
def test_duplicate_json_keys_are_refused(case, ops, tmp_path, root):
    text, what = DUPLICATES[case]
    json.loads(text)                  # valid JSON, which Python (and rkt) read quietly
    b = write_pod_json(tmp_path / "b", text)
    (b / "a.service").write_text("[Service]\nExecStart=/bin/true\n")
    refused(ops("check", b), str(b / "pod.json") + what, "in one object")
    refused(ops("deploy", b), str(b / "pod.json") + what, "in one object")
    assert os.listdir(str(root)) == []


@pytest.mark.parametrize("uri", ["--insecure-options=all", "-x", "-", "--dir=/"])
def test_an_image_uri_that_looks_like_an_option_is_refused(uri, ops, bundle, rkt, root):
    b = bundle(name="web", version=1, images=[{"uri": uri, "id": "sha512-" + "0" * 64}])
    refused(ops("check", b), "ops.images[0].uri", "rkt would read it as an option")
    refused(ops("deploy", b), "ops.images[0].uri", "rkt would read it as an option")
    assert rkt.calls() == []
    assert os.listdir(str(root)) == []


def test_rkt_is_never_given_an_image_or_id_that_reads_as_an_option(root, rkt):
    from ops import rkt as rkt_mod
    from ops.errors import Refused
    from ops.layout import Layout
    r = rkt_mod.Rkt(Layout(str(root)), str(rkt_mod.find_rkt()))
    with pytest.raises(Refused):
        r.fetch("--insecure-options=all")
    with pytest.raises(Refused):
        r.remove(["sha512-" + "a" * 64, "--all"])
    assert rkt.calls() == []


def test_a_tampered_image_id_in_state_json_never_reaches_rkt(ops, bundle, rkt, root):
    """undeploy --remove reads the IDs to remove from state.json."""
    from tests.support import aci
    b = bundle(name="web", version=1)
    (b.dir / "app.aci").write_bytes(b"")
    image_id = aci.build_aci(b.dir / "app.aci", name="example.com/app")
    doc = dict(b.ops_doc, images=[{"path": "app.aci", "id": image_id}])
    manifest = json.loads(b.pod_json.read_text())
    manifest["annotations"][-1]["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest))
    assert ops("deploy", b).code == 0
    st = root / "etc/ops/pods/web/1/state.json"
    data = json.loads(st.read_text())
    data["images"] = ["--all"]
    st.write_text(json.dumps(data))
    rkt.clear()
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert "'--all' is not an image ID" in r.err
    assert not any("--all" in a for call in rkt.calls() for a in call), rkt.calls()
    assert rkt.store() == [image_id[:71]]


@pytest.mark.parametrize("kind", ["dir", "plain", "missing"])
def test_ops_rkt_must_name_an_executable_file(kind, ops, bundle, tmp_path, root, monkeypatch):
    from tests.support import aci
    rkt = tmp_path / "rkt"
    if kind == "dir":
        rkt.mkdir()
    elif kind == "plain":
        rkt.write_text("#!/bin/sh\nexit 0\n")
    monkeypatch.setenv("OPS_RKT", str(rkt))
    b = bundle(name="web", version=1)
    image_id = aci.build_aci(b.dir / "app.aci", name="example.com/app")
    doc = dict(b.ops_doc, images=[{"path": "app.aci", "id": image_id}])
    manifest = json.loads(b.pod_json.read_text())
    manifest["annotations"][-1]["value"] = json.dumps(doc)
    b.pod_json.write_text(json.dumps(manifest))
    refused(ops("deploy", b), "rkt: $OPS_RKT names %r" % str(rkt), "not an executable file")
    assert os.listdir(str(root)) == []
