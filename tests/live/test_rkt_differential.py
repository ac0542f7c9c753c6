"""The rkt calls ops makes, run against the real rkt 1.30 (fly stage1) and the stand-in tests/rkt/rkt.

Both run inside the test container on the same inputs (ACIs from tests/support/aci.py, keys and signatures from
tests/support/gpg.py), each with its own ``--dir`` and ``--local-config`` as ops gives them under ``--root``, so the
two stores never meet.  Compared: exit codes, stdout (printed IDs; ``image list`` by ID and name, since sizes and
times differ), stderr (ops passes its last lines on).  Then ops's own Rkt class runs against both, and ops deploys
a version with the real rkt whose ``manifest.json`` the real ``rkt run --pod-manifest`` runs.

The real rkt is ``$OPS_TEST_RKT`` with ``stage1-fly.aci`` beside it; without it every test here fails with one line
saying why (OPS_TEST_RKT=0, set by hand, skips them).
"""

import json
import os
import re
import shutil

import pytest

from tests.support import aci, gpg, realrkt

from .conftest import OPS_ENV, copy_bundle, describe, make_bundle, wait_for

REAL, STAGE1 = realrkt.RKT, realrkt.STAGE1    # inside the container (/usr is read-only there)
STANDIN = "/src/tests/rkt/rkt"
SIDES = {"real": REAL, "stand-in": STANDIN}
IN = "/root/in"
SIGNED = "example.com/diff-signed"         # the prefix k1 is trusted for
UID1, UID2 = "diff one <one@example.com>", "diff two <two@example.com>"
BAD_MANIFESTS = {      # image manifests that are not JSON: rkt reports Go's syntax error with the line highlighted
    "json-key": b"{not json",
    "json-comma": b'{"acKind": "ImageManifest",\n "acVersion": "0.8.11",}',
    "json-value": b'{"acKind":\n\n  ImageManifest}',
    "json-pair": b'{"acKind": "ImageManifest" "name": "x"}',
    "json-array": b'{"labels": [1 2]}',
    "json-extra": b'{"acKind": "ImageManifest"}\n}',
    "json-eof": b'{"acKind": "ImageMan',
    "json-escape": b'{"acKind": "Image\\qManifest"}',
}


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


@pytest.fixture(scope="module")
def inputs(real_rkt, tmp_path_factory):
    """The files both rkts get (copied to /root/in inside) and what the real rkt must print for them."""
    work = tmp_path_factory.mktemp("rktdiff")
    d = str(work / "in")
    os.makedirs(d)
    k1, k2 = str(work / "k1"), str(work / "k2")
    v = {"in": IN}
    try:
        _write(os.path.join(d, "k1.pub"), gpg.make_key(k1, uid=UID1))
        gpg.make_key(k2, uid=UID2)
        for name, image, version, comp in (("a", "example.com/diff-a", "1.0", None),
                                           ("b", SIGNED, "2.0", "gz"),
                                           ("c", SIGNED, "3.0", None),
                                           ("u", "example.com/untrusted", "1.0", None),
                                           ("t", SIGNED, "4.0", None),
                                           ("xz", "example.com/diff-xz", "1.0", "xz"),
                                           ("bz", "example.com/diff-bz", "1.0", "bz2")):
            full = aci.build_aci(os.path.join(d, name + ".aci"), name=image, version=version, compression=comp)
            v.update({name + "_full": full, name + "_key": aci.image_key(full), name + "_short": aci.short_id(full),
                      name + "_name": "%s:%s" % (image, version)})
        gpg.sign(k1, os.path.join(d, "b.aci"))
        gpg._gpg(k1, "--yes", "--detach-sign", "--output", os.path.join(d, "b.sig"), os.path.join(d, "b.aci"))
        gpg.sign(k2, os.path.join(d, "c.aci"))
        gpg.sign(k1, os.path.join(d, "u.aci"))
        gpg.sign(k1, os.path.join(d, "t.aci"))
        aci.build_aci(os.path.join(d, "t.aci"), name=SIGNED, version="4.1")     # changed after signing
        # ops hands rkt a symlink ending in .aci when the bundle's file is named otherwise
        full = aci.build_aci(os.path.join(d, "x.tar.gz"), name="example.com/diff-x", version="1.0", compression="gz")
        v.update(x_short=aci.short_id(full), x_key=aci.image_key(full), x_name="example.com/diff-x:1.0")
        os.symlink(IN + "/x.tar.gz", os.path.join(d, "x.aci"))
        _write(os.path.join(d, "corrupt.aci"), b"\x1f\x8b" + bytes(range(256)))
        _write(os.path.join(d, "trunc.aci"), open(os.path.join(d, "a.aci"), "rb").read()[:700])
        _write(os.path.join(d, "text.aci"), "hello world\n")
        _write(os.path.join(d, "empty.aci"), b"")
        aci.build_aci(os.path.join(d, "noman.aci"), manifest=False)
        for name, text in BAD_MANIFESTS.items():
            _write(os.path.join(d, name + ".aci"), aci.tar_bytes(text, {}))
        _write(os.path.join(d, "garbage.asc"), "garbage\n")
        _write(os.path.join(d, "empty.asc"), b"")
        _write(os.path.join(d, "emptyarmor.asc"), "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n")
        shutil.copyfile(os.path.join(d, "k1.pub"), os.path.join(d, "key.asc"))
        v["fpr1"] = fpr = gpg.fingerprint(k1)
        groups = [fpr[i:i + 4].upper() for i in range(0, 40, 4)]
        v["fpr1_shown"] = " ".join(groups[:5]) + "  " + " ".join(groups[5:])
        # the image the real rkt runs from ops's manifest.json: static busybox printing the volume's file
        manifest = aci.default_manifest("example.com/diff-busybox", "1.0")
        manifest["app"] = {"exec": ["/bin/busybox", "cat", "/var/www/index.html"], "user": "0", "group": "0",
                           "mountPoints": [{"name": "www", "path": "/var/www"}]}
        bb = os.path.join(d, "busybox.aci")
        if os.path.isfile("/bin/busybox"):
            with open("/bin/busybox", "rb") as f:
                v["busybox_full"] = aci.build_aci(bb, manifest=manifest, files={"bin/busybox": (f.read(), 0o755)},
                                                  compression="gz")
            gpg.sign(k1, bb)
    finally:
        gpg.stop_agent(k1)
        gpg.stop_agent(k2)
    v["host_dir"] = d
    return v


@pytest.fixture(scope="module")
def ct(real_rkt, inputs, container):
    """The container with the real rkt installed and the inputs at /root/in; rkt's pods collected at the end."""
    realrkt.install(container, *real_rkt)
    container.copytree(inputs["host_dir"], IN)
    yield container
    container.run([REAL, "gc", "--grace-period=0s"], timeout=120)


def flags(side):
    return ["--dir=/var/lib/rkt-%s" % side, "--local-config=/etc/rkt-%s" % side]


def run_rkt(c, side, args):
    return c.run([SIDES[side]] + flags(side) + list(args), timeout=120)


def normal(side, text):
    return text.replace("/var/lib/rkt-%s" % side, "DIR").replace("/etc/rkt-%s" % side, "CONFIG")


def ids_and_names(out):
    return [(i["id"], i["name"]) for i in json.loads(out) or []]


def table_columns(out):
    """``image list`` rows as (ID, NAME): columns are padded with tabs, so split on runs of them."""
    return [tuple(re.split(r"\t+", l)[:2]) for l in out.splitlines()]


# Each case: id, the arguments after ops's --dir/--local-config, what the real rkt must give (exit, stdout or
# None, stderr or None; "{x}" filled from the inputs), and how stdout is compared (exact, lines in any order,
# json, table).
# The cases run in this order, as one story per store.
CASES = [
    ("list-json-empty", ["image", "list", "--format=json"], (0, "null\n", ""), "exact"),
    ("list-ids-empty", ["image", "list", "--fields=id", "--full", "--no-legend"], (0, "\n", ""), "exact"),
    ("rm-empty-store", ["image", "rm", "{a_short}"], (0, "", "rm: no image IDs found\n"), "exact"),
    ("fetch-insecure", ["--insecure-options=image", "fetch", "{in}/a.aci"], (0, "{a_short}\n", ""), "exact"),
    ("fetch-insecure-again", ["--insecure-options=image", "fetch", "{in}/a.aci"], (0, "{a_short}\n", ""), "exact"),
    ("fetch-unsigned", ["fetch", "{in}/a.aci"],
     (254, "", "fetch: open {in}/a.aci.asc: no such file or directory\n"), "exact"),
    ("trust", ["trust", "--prefix=" + SIGNED, "--skip-fingerprint-review", "{in}/k1.pub"],
     (0, 'gpg key fingerprint is: {fpr1_shown}\n\t%s\nTrusting "{in}/k1.pub" for prefix "%s" without '
         'fingerprint review.\nAdded key for prefix "%s" at "CONFIG/trustedkeys/prefix.d/%s/{fpr1}"\n'
         % (UID1, SIGNED, SIGNED, SIGNED),
      'pubkey: prefix: "%s"\nkey: "{in}/k1.pub"\n' % SIGNED), "exact"),
    ("trust-no-prefix", ["trust", "--skip-fingerprint-review", "{in}/k1.pub"], (254, "", None), "exact"),
    ("trust-not-a-key", ["trust", "--prefix=" + SIGNED, "--skip-fingerprint-review", "{in}/garbage.asc"],
     (254, "", "trust: error adding keys: openpgp: invalid argument: no armored data found\n"), "exact"),
    ("fetch-signed", ["fetch", "{in}/b.aci", "--signature={in}/b.aci.asc"],
     (0, "{b_short}\n", "image: signature verified:\n  %s\n" % UID1), "exact"),
    ("fetch-signed-asc-beside", ["fetch", "{in}/b.aci"], (0, "{b_short}\n", None), "exact"),
    ("fetch-signed-binary-sig", ["fetch", "{in}/b.aci", "--signature={in}/b.sig"], (0, "{b_short}\n", None), "exact"),
    ("fetch-untrusted-key", ["fetch", "{in}/c.aci", "--signature={in}/c.aci.asc"],
     (254, "", "image: If you expected the signing key to change, try running:\nimage:     rkt trust --prefix <image>\n"
               "fetch: openpgp: signature made by unknown entity\n"), "exact"),
    ("fetch-untrusted-prefix", ["fetch", "{in}/u.aci", "--signature={in}/u.aci.asc"],
     (254, "", None), "exact"),
    ("fetch-bad-signature", ["fetch", "{in}/t.aci", "--signature={in}/t.aci.asc"],
     (254, "", "fetch: openpgp: invalid signature: hash tag doesn't match\n"), "exact"),
    ("fetch-garbage-signature", ["fetch", "{in}/b.aci", "--signature={in}/garbage.asc"],
     (254, "", "fetch: openpgp: invalid data: tag byte does not have MSB set\n"), "exact"),
    ("fetch-empty-signature", ["fetch", "{in}/b.aci", "--signature={in}/empty.asc"],
     (254, "", "fetch: keystore: no valid signatures found in signature file\n"), "exact"),
    ("fetch-empty-armor-signature", ["fetch", "{in}/b.aci", "--signature={in}/emptyarmor.asc"],
     (254, "", "fetch: illegal base64 data at input byte 0\n"), "exact"),
    ("fetch-key-as-signature", ["fetch", "{in}/b.aci", "--signature={in}/key.asc"],
     (254, "", "fetch: openpgp: invalid argument: expected 'PGP SIGNATURE', got: PGP PUBLIC KEY BLOCK\n"), "exact"),
    ("fetch-missing-signature", ["fetch", "{in}/b.aci", "--signature={in}/missing.asc"],
     (254, "", "fetch: open {in}/missing.asc: no such file or directory\n"), "exact"),
    ("fetch-signature-is-dir", ["fetch", "{in}/b.aci", "--signature={in}"],
     (254, "", "fetch: read {in}: is a directory\n"), "exact"),
    ("fetch-missing-file", ["--insecure-options=image", "fetch", "{in}/missing.aci"],
     (254, "", "fetch: open {in}/missing.aci: no such file or directory\n"), "exact"),
    ("fetch-missing-file-signed", ["fetch", "{in}/missing.aci", "--signature={in}/b.aci.asc"],
     (254, "", "fetch: open {in}/missing.aci: no such file or directory\n"), "exact"),
    ("fetch-corrupt-gzip", ["--insecure-options=image", "fetch", "{in}/corrupt.aci"],
     (254, "", "fetch: gzip: invalid header\n"), "exact"),
    ("fetch-truncated", ["--insecure-options=image", "fetch", "{in}/trunc.aci"],
     (254, "", "fetch: unexpected EOF\n"), "exact"),
    ("fetch-not-an-archive", ["--insecure-options=image", "fetch", "{in}/text.aci"],
     (254, "", "fetch: no type returned from DetectFileType?\n"), "exact"),
    ("fetch-empty-file", ["--insecure-options=image", "fetch", "{in}/empty.aci"],
     (254, "", "fetch: no type returned from DetectFileType?\n"), "exact"),
    ("fetch-no-manifest", ["--insecure-options=image", "fetch", "{in}/noman.aci"],
     (254, "", "fetch: missing manifest\n"), "exact"),
    ("fetch-bad-manifest-json", ["--insecure-options=image", "fetch", "{in}/json-key.aci"],
     (254, "", "fetch: \nError at line 1, column 2\n    1: {{n\n       ^\n"
               "invalid character 'n' looking for beginning of object key string\n"), "exact"),
] + [
    ("fetch-bad-manifest-" + name, ["--insecure-options=image", "fetch", "{in}/%s.aci" % name],
     (254, "", None), "exact")
    for name in sorted(BAD_MANIFESTS) if name != "json-key"
] + [
    ("fetch-not-dot-aci", ["--insecure-options=image", "fetch", "{in}/x.tar.gz"],
     (254, "", 'fetch: invalid image string "file://{in}/x.tar.gz"\n'), "exact"),
    ("fetch-symlink-dot-aci", ["--insecure-options=image", "fetch", "{in}/x.aci"], (0, "{x_short}\n", ""), "exact"),
    ("fetch-xz", ["--insecure-options=image", "fetch", "{in}/xz.aci"], (0, "{xz_short}\n", ""), "exact"),
    ("fetch-bzip2", ["--insecure-options=image", "fetch", "{in}/bz.aci"], (0, "{bz_short}\n", ""), "exact"),
    ("fetch-name-in-store", ["--insecure-options=image", "fetch", "example.com/diff-a:1.0"],
     (254, "", "fetch: discovery failed\n"), "exact"),
    ("fetch-name-unknown", ["--insecure-options=image", "fetch", "example.com/nothere:1.0"],
     (254, "", "fetch: discovery failed\n"), "exact"),
    # the resolver's complaint depends on the machine: compared up to the host name
    ("fetch-docker", ["--insecure-options=image", "fetch", "docker://busybox"],
     (254, "", None), "stderr-to-lookup"),
    ("list-json", ["image", "list", "--format=json"], (0, None, ""), "json"),
    ("list-table", ["image", "list"], (0, None, ""), "table"),
    ("list-ids", ["image", "list", "--fields=id", "--full", "--no-legend"],
     (0, "{a_key}\n{b_key}\n{x_key}\n{xz_key}\n{bz_key}\n", ""), "exact"),
    ("rm-by-printed-id", ["image", "rm", "{a_short}"],
     (0, 'successfully removed aci for image: "{a_key}"\n', "rm: 1 image(s) successfully removed\n"), "exact"),
    ("rm-missing-id", ["image", "rm", "{a_short}"], (0, "", "rm: no image IDs found\n"), "exact"),
    ("rm-full-id-missing-and-key", ["image", "rm", "{b_full}", "sha512-ffff", "{x_key}"],
     (0, 'successfully removed aci for image: "{b_key}"\nsuccessfully removed aci for image: "{x_key}"\n',
      "rm: no image IDs found\nrm: 2 image(s) successfully removed\n"), "lines"),
    ("rm-nothing", ["image", "rm"], (254, "", "rm: must provide at least one image ID\n"), "exact"),
    ("list-json-after-rm", ["image", "list", "--format=json"], (0, None, ""), "json"),
]


def fill(template, v):
    return None if template is None else template.format(**v)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_same_as_real_rkt(ct, inputs, case):
    name, args, (code, out, err), how = case
    args = [fill(a, inputs) for a in args]
    got = {side: run_rkt(ct, side, args) for side in SIDES}
    real, fake = got["real"], got["stand-in"]
    why = "%s\n%s" % (describe(real, "real rkt"), describe(fake, "stand-in"))
    # what the real rkt does, as ops expects it
    assert real.returncode == code, why
    if out is not None and how == "lines":      # rkt removes several images in no set order
        assert sorted(normal("real", real.stdout).splitlines()) == \
            sorted(fill(out, inputs).splitlines()), why
    elif out is not None:
        assert normal("real", real.stdout) == fill(out, inputs), why
    if err is not None:
        assert normal("real", real.stderr) == fill(err, inputs), why
    # the stand-in does the same
    assert fake.returncode == real.returncode, why
    if how == "json":
        assert ids_and_names(fake.stdout) == ids_and_names(real.stdout), why
    elif how == "table":
        assert table_columns(fake.stdout) == table_columns(real.stdout), why
    elif how == "lines":
        assert sorted(normal("stand-in", fake.stdout).splitlines()) == \
            sorted(normal("real", real.stdout).splitlines()), why
    else:
        assert normal("stand-in", fake.stdout) == normal("real", real.stdout), why
    if how == "stderr-to-lookup":
        cut = re.compile(r"(lookup \S+?):? .*")
        assert cut.sub(r"\1", fake.stderr) == cut.sub(r"\1", real.stderr), why
    else:
        assert normal("stand-in", fake.stderr) == normal("real", real.stderr), why


def test_store_contents_match_after_the_story(ct, inputs):
    """After the cases both stores hold the same images: the xz and bzip2 ones."""
    for side in SIDES:
        r = run_rkt(ct, side, ["image", "list", "--format=json"])
        assert r.returncode == 0, describe(r)
        assert ids_and_names(r.stdout) == [(inputs["xz_key"], inputs["xz_name"]), (inputs["bz_key"], inputs["bz_name"])]


# -- ops's Rkt class against both -------------------------------------------------------------------------------

DRIVER = r"""
import json, sys
from ops.errors import OpsError
from ops.layout import Layout
from ops.rkt import Rkt
rkt = Rkt(Layout(sys.argv[1]), sys.argv[2])
out = []
for method, args, kw in json.loads(sys.argv[3]):
    try:
        out.append(["ok", getattr(rkt, method)(*args, **kw)])
    except OpsError as e:
        out.append(["error", type(e).__name__, e.exit_code, str(e)])
print(json.dumps(out))
"""


def ops_rkt(c, root, rkt, calls):
    r = c.run(["/usr/bin/python3", "-c", DRIVER, root, rkt, json.dumps(calls)],
              env={"PYTHONPATH": "/src", "PYTHONDONTWRITEBYTECODE": "1", "PATH": OPS_ENV["PATH"],
                   "LANG": "C.UTF-8"}, timeout=300)
    assert r.returncode == 0, describe(r)
    return json.loads(r.stdout)


def test_ops_rkt_calls_give_the_same_results(ct, inputs):
    """ops.rkt.Rkt under --root (rkt gets --dir/--local-config there): what each call returns or raises."""
    v = inputs
    calls = [
        ["list_ids", [], {}],
        ["fetch", [IN + "/a.aci"], {"insecure": True}],
        ["fetch", [IN + "/b.aci"], {"signature": IN + "/b.aci.asc"}],
        ["fetch", [IN + "/c.aci"], {"signature": IN + "/c.aci.asc"}],
        ["fetch", [IN + "/t.aci"], {"signature": IN + "/t.aci.asc"}],
        ["fetch", [IN + "/missing.aci"], {"insecure": True}],
        ["fetch", [IN + "/corrupt.aci"], {"insecure": True}],
        ["fetch", [IN + "/x.aci"], {"insecure": True}],
        ["list_ids", [], {}],
        ["remove", [[v["a_short"], v["b_full"], "sha512-" + "0" * 32]], {}],
        ["list_ids", [], {}],
    ]
    results = {}
    for side, rkt in SIDES.items():
        root = "/root/ops-root-" + side
        r = ct.run([rkt, "--local-config=%s/etc/rkt" % root, "trust", "--prefix=" + SIGNED,
                    "--skip-fingerprint-review", IN + "/k1.pub"])
        assert r.returncode == 0, describe(r)
        results[side] = ops_rkt(ct, root, rkt, calls)
    real = results["real"]
    assert real[0] == ["ok", []]
    assert real[1] == ["ok", v["a_short"]] and real[2] == ["ok", v["b_short"]]
    assert real[3] == ["error", "CommandError", 1, "rkt fetch %s/c.aci: exited 254: image: If you expected the "
                       "signing key to change, try running: / image:     rkt trust --prefix <image> / "
                       "fetch: openpgp: signature made by unknown entity" % IN]
    assert real[4][:3] == ["error", "CommandError", 1] and real[4][3].endswith("hash tag doesn't match")
    assert real[8] == ["ok", [v["a_key"], v["b_key"], v["x_key"]]]
    assert real[9] == ["ok", None]
    assert real[10] == ["ok", [v["x_key"]]]
    for i, call in enumerate(calls):
        assert results["stand-in"][i] == real[i], "call %d %r: stand-in %r, real rkt %r" % (
            i, call, results["stand-in"][i], real[i])


def test_ops_deploy_reports_the_same_with_either_rkt(ct, inputs, tmp_path):
    """``ops --root DIR deploy`` (enable only; rkt gets --dir/--local-config under DIR): a signature by an untrusted
    key fails the deploy the same way with both rkts, a trusted one deploys and records the same image ID."""
    bundles = {}
    for version, image in ((1, "c"), (2, "b")):
        d = make_bundle(str(tmp_path / str(version)), "diffcli", version,
                        units=[("diffcli.service", "[Service]\nExecStart=/bin/true\n", True, None)],
                        extra_ops={"images": [{"path": image + ".aci", "signature": image + ".aci.asc"}]})
        for name in (image + ".aci", image + ".aci.asc"):
            shutil.copyfile(os.path.join(inputs["host_dir"], name), os.path.join(d, name))
        bundles[version] = copy_bundle(ct, d, "/root/bundles/diffcli/%d" % version)
    got = {}
    for side, rkt in SIDES.items():
        root = "/root/ops-cli-" + side
        r = ct.run([rkt, "--local-config=%s/etc/rkt" % root, "trust", "--prefix=" + SIGNED,
                    "--skip-fingerprint-review", IN + "/k1.pub"])
        assert r.returncode == 0, describe(r)
        env = dict(OPS_ENV, OPS_RKT=rkt)
        untrusted = ct.run(["/usr/bin/python3", "-m", "ops", "--root", root, "deploy", bundles[1]], env=env)
        trusted = ct.run(["/usr/bin/python3", "-m", "ops", "--root", root, "deploy", bundles[2]], env=env)
        state = json.loads(ct.read_file(root + "/etc/ops/pods/diffcli/2/state.json")) if trusted.returncode == 0 else {}
        got[side] = (untrusted, trusted, state.get("images"), ct.exists(root + "/etc/ops/pods/diffcli/1"))
    real, fake = got["real"], got["stand-in"]
    assert real[0].returncode == 1, describe(real[0])
    assert "signature made by unknown entity" in real[0].stderr, describe(real[0])
    assert real[1].returncode == 0, describe(real[1])
    assert real[2] == [inputs["b_short"]] and real[3] is False
    assert fake[0].returncode == real[0].returncode
    assert fake[0].stderr == real[0].stderr, describe(fake[0]) + describe(real[0])
    assert (fake[1].returncode, fake[1].stdout) == (real[1].returncode, real[1].stdout)
    assert fake[2:] == real[2:]


# -- the manifest.json ops writes, run by the real rkt -----------------------------------------------------------

def test_manifest_json_runs_with_the_real_rkt(ct, inputs, tmp_path):
    """ops deploys (at /, with the real rkt: signed fetch, no --dir) a version with a volume; the real
    ``rkt run --pod-manifest`` accepts its manifest.json and the app reads the volume as a host volume."""
    if "busybox_full" not in inputs:
        pytest.skip("no /bin/busybox on this machine to build the image from (apt-get install busybox-static)")
    c = ct
    full = inputs["busybox_full"]
    d = make_bundle(str(tmp_path / "b"), "diffpod", 1,
                    units=[("diffpod.service", "[Service]\nExecStart=/bin/true\n", False, None)],
                    volumes=[("www", {"index.html": b"hello from the ops volume\n"})],
                    extra_ops={"images": [{"id": full, "path": "busybox.aci", "signature": "busybox.aci.asc"}]})
    shutil.copyfile(os.path.join(inputs["host_dir"], "busybox.aci"), os.path.join(d, "busybox.aci"))
    shutil.copyfile(os.path.join(inputs["host_dir"], "busybox.aci.asc"), os.path.join(d, "busybox.aci.asc"))
    with open(os.path.join(d, "pod.json")) as f:
        pod = json.load(f)
    pod["apps"] = [{"name": "web", "image": {"id": full}, "app": {
        "exec": ["/bin/busybox", "cat", "/var/www/index.html"], "user": "0", "group": "0",
        "mountPoints": [{"name": "www", "path": "/var/www"}]}}]
    with open(os.path.join(d, "pod.json"), "w") as f:
        json.dump(pod, f, indent=2)
    copy_bundle(c, d, "/root/bundles/diffpod/1")
    r = c.run([REAL, "trust", "--prefix=example.com/diff-busybox", "--skip-fingerprint-review", IN + "/k1.pub"])
    assert r.returncode == 0, describe(r)
    env = dict(OPS_ENV, OPS_RKT=REAL)
    r = c.run(["/usr/bin/python3", "-m", "ops", "deploy", "/root/bundles/diffpod/1"], env=env, timeout=180)
    assert r.returncode == 0, describe(r, "ops deploy with the real rkt")
    manifest = "/etc/ops/pods/diffpod/1/manifest.json"
    volumes = json.loads(c.read_file(manifest))["volumes"]
    assert volumes == [{"name": "www", "kind": "host", "readOnly": False,
                        "source": "/var/lib/ops/volumes/diffpod/1/www"}]
    try:
        r = c.run([REAL, "run", "--insecure-options=image", "--stage1-path=" + STAGE1, "--pod-manifest=" + manifest],
                  timeout=120)
        assert r.returncode == 0, describe(r, "rkt run --pod-manifest")
        assert "hello from the ops volume" in r.stdout, describe(r)
        listed = c.run([REAL, "list", "--no-legend"])
        assert "web" in listed.stdout and "exited" in listed.stdout, describe(listed)
        # undeploy --remove while the exited pod is still there (as after its unit stopped): ops removes the
        # image from the real rkt's store; rkt does not refuse for a pod made from it
        r = c.run(["/usr/bin/python3", "-m", "ops", "undeploy", "diffpod", "--remove"], env=env, timeout=180)
        assert r.returncode == 0 and "warning" not in r.stderr, describe(r)
        r = c.run([REAL, "image", "list", "--format=json"])
        assert r.returncode == 0, describe(r)
        # rkt run imported the stage1 into the store too: that one is rkt's, not the pod's
        left = [i["name"] for i in json.loads(r.stdout) or [] if not i["name"].startswith("coreos.com/rkt/stage1-")]
        assert left == [], describe(r, "the pod's image is left in rkt's store")
    finally:
        gc = c.run([REAL, "gc", "--grace-period=0s"], timeout=120)
    assert gc.returncode == 0, describe(gc)
    assert c.run([REAL, "list", "--no-legend"]).stdout.strip() == ""
    assert wait_for(lambda: not [l for l in c.read_file("/proc/1/mountinfo").splitlines() if "/var/lib/rkt" in l],
                    timeout=10), "rkt mounts left after gc"
