"""The rkt stand-in (tests/rkt/rkt) behaves as rkt 1.30 does for what ops uses.

Every test runs the stand-in as a program with its own --dir,
--local-config and --system-config under a temporary directory, and
checks what a user of rkt would see: exit codes, stdout, stderr, and the
files in the store and the keystore.  Signatures are made and checked with
the real gpg.
"""

import bz2
import gzip
import hashlib
import json
import lzma
import os
import re
import stat
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.support import aci, gpg  # noqa: E402

RKT = os.path.join(REPO, "tests", "rkt", "rkt")
UID = "ops test <ops@example.com>"
OTHER_UID = "someone else <else@example.org>"


class Key:
    def __init__(self, home, uid):
        self.home = str(home)
        self.uid = uid
        self.fpr = gpg.fingerprint(home, uid)
        self.armored = None

    def sign(self, path):
        return gpg.sign(self.home, str(path), uid=self.uid)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Two signing keys, made once for the module: (trusted-to-be, other)."""
    home = tmp_path_factory.mktemp("gnupg")
    armored = gpg.make_key(home, UID)
    other_armored = gpg.make_key(home, OTHER_UID)
    k, other = Key(home, UID), Key(home, OTHER_UID)
    k.armored, other.armored = armored, other_armored
    yield k, other
    gpg.stop_agent(home)


@pytest.fixture
def key(keys):
    return keys[0]


@pytest.fixture
def other_key(keys):
    return keys[1]


class Env:
    """A private rkt data dir and config dirs, and a working directory."""

    def __init__(self, tmp_path):
        self.root = tmp_path
        self.dir = tmp_path / "var-lib-rkt"
        self.local = tmp_path / "etc-rkt"
        self.system = tmp_path / "usr-lib-rkt"
        self.work = tmp_path / "work"
        self.work.mkdir()

    def flags(self):
        return ["--dir=%s" % self.dir, "--local-config=%s" % self.local,
                "--system-config=%s" % self.system]

    def run(self, *args, env=None, flags=True, python=None, stdin=subprocess.DEVNULL):
        argv = ([python] if python else []) + [RKT] + (self.flags() if flags else []) + \
            [str(a) for a in args]
        e = dict(os.environ)
        for name in ("FAKE_RKT_LOG", "FAKE_RKT_FAIL"):
            e.pop(name, None)
        e.update(env or {})
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=stdin, universal_newlines=True, cwd=str(self.work),
                              env=e, timeout=120)

    def trust(self, key, prefix="example.com/hello", config=None):
        keyfile = self.root / ("key-%s.asc" % key.fpr[:8])
        keyfile.write_text(key.armored)
        args = ["--local-config=%s" % config] if config else []
        p = self.run(*(args + ["trust", "--prefix=%s" % prefix, "--skip-fingerprint-review",
                               keyfile]))
        assert p.returncode == 0, p.stderr
        return keyfile

    def image(self, fname="hello", **kw):
        path = self.work / ("%s.aci" % fname)
        full = aci.build_aci(path, **kw)
        return path, full

    def blobs(self):
        """{store key: SHA-512 of the blob file} for every blob on disk."""
        out = {}
        base = self.dir / "cas" / "blob"
        if base.exists():
            for dirpath, _, names in os.walk(str(base)):
                for n in names:
                    with open(os.path.join(dirpath, n), "rb") as f:
                        out[n] = hashlib.sha512(f.read()).hexdigest()
        return out

    def listed(self):
        p = self.run("image", "list", "--format=json")
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout) or []


@pytest.fixture
def env(tmp_path):
    return Env(tmp_path)


def uncompressed_sha512(path):
    with open(str(path), "rb") as f:
        data = f.read()
    for magic, mod in ((b"\x1f\x8b", gzip), (b"BZh", bz2), (b"\xfd7zXZ\x00", lzma)):
        if data.startswith(magic):
            data = mod.decompress(data)
    return hashlib.sha512(data).hexdigest()


# --------------------------------------------------------------------------
# fetch: the printed ID


@pytest.mark.parametrize("compression", [None, "gz", "bz2", "xz"])
def test_fetch_prints_sha512_of_uncompressed_tar(env, compression):
    path, full = env.image(compression=compression)
    digest = uncompressed_sha512(path)
    assert full == "sha512-" + digest
    if compression is None:
        with open(str(path), "rb") as f:
            assert hashlib.sha512(f.read()).hexdigest() == digest

    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "sha512-%s\n" % digest[:32]

    p = env.run("--insecure-options=image", "fetch", "--full", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "sha512-%s\n" % digest[:64]
    # the store keeps the uncompressed tar under the 71-character key
    assert env.blobs() == {"sha512-" + digest[:64]: digest}


def test_compression_is_detected_by_magic_not_by_name(env):
    path = env.work / "plain-name.aci"
    full = aci.build_aci(path, compression="xz")
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == aci.short_id(full)


def test_fetch_prints_one_id_per_image_in_order(env):
    a, full_a = env.image("a", name="example.com/a")
    b, full_b = env.image("b", name="example.com/b", compression="gz")
    p = env.run("--insecure-options=image", "fetch", b, a)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == [aci.short_id(full_b), aci.short_id(full_a)]


def test_path_must_end_in_aci(env):
    path = env.work / "hello.tar"
    aci.build_aci(path)
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 254
    assert "invalid image string" in p.stderr and "hello.tar" in p.stderr
    assert p.stdout == ""
    assert env.blobs() == {}


def test_archive_without_manifest_is_refused(env):
    path, _ = env.image(manifest=False)
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 254
    assert p.stderr == "fetch: missing manifest\n"
    assert env.blobs() == {}


@pytest.mark.parametrize("manifest, message", [
    ({"acKind": "PodManifest", "acVersion": "0.8.11", "name": "example.com/x"}, "acKind"),
    ({"acKind": "ImageManifest", "acVersion": "0.8.11"}, "name must be set"),
    ({"acKind": "ImageManifest", "acVersion": "0.0.0", "name": "example.com/x"},
     "SemVer cannot be zero"),
    ({"acKind": "ImageManifest", "acVersion": "0.8.11", "name": "Example.com/X"},
     "ACIdentifier"),
])
def test_invalid_manifest_is_refused(env, manifest, message):
    path, _ = env.image(manifest=manifest)
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 254
    assert message in p.stderr
    assert p.stderr.startswith("fetch: ")


# what rkt 1.30 prints for these (Go's message, the line highlighted as go4 errorutil does)
@pytest.mark.parametrize("manifest, message", [
    (b"{not json", "\nError at line 1, column 2\n    1: {n\n       ^\n"
                   "invalid character 'n' looking for beginning of object key string"),
    (b'{"acKind": "ImageManifest",\n "acVersion": "0.8.11",}',
     '\nError at line 2, column 25\n    1: {"acKind": "ImageManifest",\n    2:  "acVersion": "0.8.11",}\n'
     + " " * 30 + "^\ninvalid character '}' looking for beginning of object key string"),
    (b'{"acKind": "ImageManifest"}\n}', '\nError at line 2, column 2\n    1: {"acKind": "ImageManifest"}\n'
                                      "    2: }\n       ^\ninvalid character '}' after top-level value"),
    (b'{"labels": [1 2]}', '\nError at line 1, column 15\n    1: {"labels": [1 2\n' + " " * 20
     + "^\ninvalid character '2' after array element"),
    (b'{"acKind": "ImageMan', '\nError at line 1, column 20\n    1: {"acKind": "ImageMan\n' + " " * 25
     + "^\nunexpected end of JSON input"),
])
def test_manifest_that_is_not_json_is_reported_as_rkt_does(env, manifest, message):
    path = env.work / "bad.aci"
    path.write_bytes(aci.tar_bytes(manifest, {}))
    p = env.run("--insecure-options=image", "fetch", path)
    assert (p.returncode, p.stdout, p.stderr) == (254, "", "fetch: %s\n" % message)


def test_manifest_may_be_named_dot_slash_manifest(env):
    manifest = json.dumps(aci.default_manifest("example.com/dot", "1")).encode()
    tar = aci.tar_bytes(manifest, {"x": b"x"}, manifest_name="./manifest")
    path = env.work / "dot.aci"
    path.write_bytes(tar)
    p = env.run("--insecure-options=image", "fetch", "--full", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "sha512-" + hashlib.sha512(tar).hexdigest()[:64]


def test_file_that_is_not_an_archive_is_refused(env):
    path = env.work / "junk.aci"
    path.write_bytes(b"\x00\x01\x02 not an archive")
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 254
    assert "unknown image filetype" in p.stderr


def test_truncated_archive_is_refused(env):
    path, _ = env.image(compression="gz")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    p = env.run("--insecure-options=image", "fetch", path)
    assert p.returncode == 254
    assert env.blobs() == {}


# --------------------------------------------------------------------------
# fetch: signatures


def test_signature_before_image_is_an_error(env, key):
    env.trust(key)
    path, _ = env.image()
    asc = key.sign(path)
    p = env.run("fetch", "--signature=%s" % asc, path)
    assert p.returncode == 254
    assert "--signature must follow an image" in p.stderr
    assert p.stdout == ""
    assert env.blobs() == {}


def test_signature_after_image_verifies(env, key):
    env.trust(key)
    path, full = env.image()
    asc = key.sign(path)
    moved = env.work / "elsewhere.asc"
    os.rename(asc, str(moved))
    p = env.run("fetch", path, "--signature=%s" % moved)
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.short_id(full) + "\n"
    assert "image: signature verified:\n  %s\n" % UID in p.stderr
    assert aci.image_key(full) in env.blobs()


def test_signature_twice_for_one_image_is_an_error(env, key):
    path, _ = env.image()
    asc = key.sign(path)
    p = env.run("fetch", path, "--signature=%s" % asc, "--signature=%s" % asc)
    assert p.returncode == 254
    assert "--signature specified multiple times for the same image" in p.stderr


def test_default_signature_is_path_dot_aci_dot_asc(env, key):
    env.trust(key)
    path, full = env.image(compression="bz2")
    assert key.sign(path) == str(path) + ".asc"
    p = env.run("fetch", "--full", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.image_key(full) + "\n"


def test_missing_signature_file(env, key):
    env.trust(key)
    path, _ = env.image()
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert p.stderr == "fetch: open %s.asc: no such file or directory\n" % path
    assert p.stdout == ""
    assert env.blobs() == {}


def test_relative_path_reports_absolute_signature_path(env, key):
    env.trust(key)
    env.image()
    p = env.run("fetch", "./hello.aci")
    assert p.returncode == 254
    assert "fetch: open %s: no such file or directory" % (env.work / "hello.aci.asc") in p.stderr


def test_untrusted_signer_fails(env, key, other_key):
    env.trust(key)
    path, _ = env.image()
    other_key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "openpgp: signature made by unknown entity" in p.stderr
    assert "If you expected the signing key to change, try running:" in p.stderr
    assert "    rkt trust --prefix <image>" in p.stderr
    assert p.stdout == ""
    assert env.blobs() == {}


def test_no_trusted_keys_at_all_fails(env, key):
    path, _ = env.image()
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "openpgp: signature made by unknown entity" in p.stderr


def test_tampered_image_fails(env, key):
    env.trust(key)
    path, _ = env.image(compression="gz")
    key.sign(path)
    aci.build_aci(path, compression="gz", files={"etc/hello.txt": "changed\n"})
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "invalid signature" in p.stderr
    assert "signature verified" not in p.stderr
    assert env.blobs() == {}


@pytest.mark.parametrize("content, message", [
    ("garbage\n", "openpgp: invalid data: tag byte does not have MSB set"),
    ("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n",
     "openpgp: invalid data: tag byte does not have MSB set"),
    ("-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n", "illegal base64 data at input byte 0"),
    ("", "keystore: no valid signatures found in signature file"),
    (None, "openpgp: invalid argument: expected 'PGP SIGNATURE', got: PGP PUBLIC KEY BLOCK"),
])
def test_unusable_signature_file_fails_as_go_openpgp_does(env, key, content, message):
    env.trust(key)
    path, _ = env.image()
    asc = env.work / "bad.asc"
    asc.write_text(key.armored if content is None else content)
    p = env.run("fetch", path, "--signature=%s" % asc)
    assert (p.returncode, p.stdout, p.stderr) == (254, "", "fetch: %s\n" % message)
    assert env.blobs() == {}


def test_binary_signature_verifies(env, key):
    env.trust(key)
    path, full = env.image()
    subprocess.run(["gpg", "--homedir", key.home, "--batch", "--yes", "--local-user", key.fpr,
                    "--detach-sign", "--output", str(path) + ".sig", str(path)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    p = env.run("fetch", path, "--signature=%s.sig" % path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.short_id(full) + "\n"


def test_key_lookup_uses_manifest_name_and_parent_prefixes(env, key):
    env.trust(key, prefix="example.com")
    # the file is named after nothing in particular; the manifest says example.com/deep/app
    path, full = env.image("unrelated-file-name", name="example.com/deep/app")
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == aci.short_id(full)


def test_key_for_another_prefix_does_not_apply(env, key):
    env.trust(key, prefix="example.org/hello")
    path, _ = env.image(name="example.com/hello")
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "signature made by unknown entity" in p.stderr


def test_system_config_keys_apply_and_local_empty_file_masks_them(env, key):
    gpg.install_trusted_key(env.system, key.armored, key.fpr)   # system root.d
    path, full = env.image()
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 0, p.stderr
    mask = env.local / "trustedkeys" / "root.d" / key.fpr
    mask.parent.mkdir(parents=True)
    mask.write_bytes(b"")
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "signature made by unknown entity" in p.stderr


def test_key_file_named_after_another_fingerprint_is_an_error(env, key, other_key):
    gpg.install_trusted_key(env.local, key.armored, other_key.fpr, prefix="example.com/hello")
    path, _ = env.image()
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 254
    assert "fingerprint mismatch" in p.stderr


@pytest.mark.parametrize("option", ["image", "all-fetch", "all", "tls,image"])
def test_insecure_options_skip_verification(env, option):
    path, full = env.image()
    p = env.run("--insecure-options=%s" % option, "fetch", path)
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.short_id(full) + "\n"
    assert "signature verified" not in p.stderr


def test_insecure_options_without_image_still_verify(env):
    path, _ = env.image()
    p = env.run("--insecure-options=tls,http", "fetch", path)
    assert p.returncode == 254
    assert "no such file or directory" in p.stderr


def test_unknown_insecure_option_is_an_error(env):
    path, _ = env.image()
    p = env.run("--insecure-options=everything", "fetch", path)
    assert p.returncode == 254
    assert 'unknown option "everything"' in p.stderr


# --------------------------------------------------------------------------
# names, URLs and pull policies without a network


def test_name_goes_to_discovery_under_the_default_policy_even_when_stored(env):
    # fetch's default pull policy is "update": rkt asks the remote first, and offline that fails
    path, full = env.image(version="1.0")
    assert env.run("--insecure-options=image", "fetch", path).returncode == 0
    p = env.run("fetch", "example.com/hello:1.0")
    assert (p.returncode, p.stdout, p.stderr) == (254, "", "fetch: discovery failed\n")
    p = env.run("fetch", "--pull-policy=new", "example.com/hello:1.0")
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.short_id(full) + "\n"
    p = env.run("fetch", "--pull-policy=new", "example.com/hello:2.0")
    assert (p.returncode, p.stderr) == (254, "fetch: discovery failed\n")
    p = env.run("fetch", "--pull-policy=never", "example.com/hello:2.0")
    assert p.returncode == 254
    assert "unable to fetch image from image name" in p.stderr


def test_docker_needs_insecure_image_and_fails_offline(env):
    p = env.run("fetch", "docker://busybox")
    assert p.returncode == 254
    assert "signature verification for docker images is not supported" in p.stderr
    p = env.run("--insecure-options=image", "fetch", "docker://busybox")
    assert p.returncode == 254
    assert p.stdout == ""
    assert p.stderr.startswith('fetch: Get "https://registry-1.docker.io/v2/": dial tcp: lookup ')


def test_http_url_is_downloaded_and_verified(env, key):
    from tests.support.servers import body, serve  # noqa: E402
    env.trust(key)
    path, full = env.image()
    asc = key.sign(path)
    routes = {"/img/hello.aci": body(path.read_bytes()),
              "/img/hello.aci.asc": body(open(asc, "rb").read())}
    with serve(routes) as srv:
        p = env.run("fetch", srv.url("/img/hello.aci"))
        assert p.returncode == 0, p.stderr
        assert p.stdout == aci.short_id(full) + "\n"
        assert "signature verified" in p.stderr
        assert srv.hits("/img/hello.aci.asc") == 1
        p = env.run("--insecure-options=image", "fetch", srv.url("/img/missing.aci"))
        assert p.returncode == 254
        assert "404" in p.stderr


# --------------------------------------------------------------------------
# image list


def fetch_all(env, *paths):
    p = env.run("--insecure-options=image", "fetch", "--full", *paths)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()


def test_image_list_tabbed(env):
    a, full_a = env.image("a", name="example.com/a", version="1.0")
    fetch_all(env, a)
    time.sleep(0.01)
    b, full_b = env.image("b", name="example.com/longer-name/b", version=None)
    fetch_all(env, b)

    p = env.run("image", "list")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert re.split(r"\t+", lines[0]) == ["ID", "NAME", "SIZE", "IMPORT TIME", "LAST USED"]
    rows = [re.split(r"\t+", l) for l in lines[1:]]
    assert [r[0] for r in rows] == [full_a[:19], full_b[:19]]
    assert [r[1] for r in rows] == ["example.com/a:1.0", "example.com/longer-name/b"]
    for r in rows:
        assert re.match(r"^\d+(\.\d)?(B|KiB|MiB)$", r[2]), r
        assert re.match(r"^(now|\d+ seconds? ago)$", r[3]), r
    # columns are padded with TABs, so every column starts at the same
    # 8-column tab stop on every line
    starts = None
    for line in lines:
        col, starts_line = 0, []
        for seg in re.split(r"(\t+)", line):
            if not seg:
                continue
            if seg.startswith("\t"):
                col = (col // 8 + len(seg)) * 8
            else:
                starts_line.append(col)
                col += len(seg)
        if starts is None:
            starts = starts_line
        assert starts_line == starts
    assert len(starts) == 5


def test_image_list_full_ids_only(env):
    a, full_a = env.image("a", name="example.com/a")
    b, full_b = env.image("b", name="example.com/b")
    fetch_all(env, a)
    time.sleep(0.01)
    fetch_all(env, b)
    p = env.run("image", "list", "--fields=id", "--full", "--no-legend")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "%s\n%s\n" % (aci.image_key(full_a), aci.image_key(full_b))
    p = env.run("image", "list", "--fields=id", "--full", "--no-legend", "--order=desc")
    assert p.stdout == "%s\n%s\n" % (aci.image_key(full_b), aci.image_key(full_a))


def test_image_list_json(env):
    a, full_a = env.image("a", name="example.com/a", version="2")
    before = time.time_ns()
    fetch_all(env, a)
    after = time.time_ns()
    p = env.run("image", "list", "--format=json")
    assert p.returncode == 0, p.stderr
    assert "\n" not in p.stdout.rstrip("\n")
    data = json.loads(p.stdout)
    tar_size = len(a.read_bytes())    # an uncompressed ACI is the tar itself
    assert data == [{"id": aci.image_key(full_a), "name": "example.com/a:2",
                     "import_time": data[0]["import_time"],
                     "last_used_time": data[0]["last_used_time"], "size": tar_size}]
    assert list(data[0]) == ["id", "name", "import_time", "last_used_time", "size"]
    assert before <= data[0]["import_time"] <= after
    pretty = env.run("image", "list", "--format=json-pretty")
    assert pretty.returncode == 0
    assert "\n\t{" in pretty.stdout
    assert json.loads(pretty.stdout) == data


def test_image_list_empty_store(env):
    p = env.run("image", "list", "--format=json")
    assert (p.returncode, p.stdout) == (0, "null\n")
    p = env.run("image", "list", "--no-legend")
    assert (p.returncode, p.stdout) == (0, "\n")
    p = env.run("image", "list")
    assert p.returncode == 0
    assert re.split(r"\t+", p.stdout.strip("\n")) == ["ID", "NAME", "SIZE", "IMPORT TIME",
                                                     "LAST USED"]


def test_image_list_rejects_latest_field(env):
    p = env.run("image", "list", "--fields=latest")
    assert p.returncode == 254
    assert 'unknown option "latest"' in p.stderr
    assert p.stdout == ""


def test_image_list_rejects_bad_format(env):
    p = env.run("image", "list", "--format=yaml")
    assert p.returncode == 254


# --------------------------------------------------------------------------
# image rm


def test_image_rm_by_prefix(env):
    path, full = env.image()
    fetch_all(env, path)
    p = env.run("image", "rm", full[:20])
    assert p.returncode == 0, p.stderr
    assert p.stdout == 'successfully removed aci for image: "%s"\n' % aci.image_key(full)
    assert p.stderr == "rm: 1 image(s) successfully removed\n"
    assert env.blobs() == {}
    assert env.listed() == []


def test_image_rm_full_128_hex_id(env):
    path, full = env.image()
    fetch_all(env, path)
    p = env.run("image", "rm", full)
    assert p.returncode == 0, p.stderr
    assert env.listed() == []


def test_image_rm_missing_id_exits_zero(env):
    path, full = env.image()
    fetch_all(env, path)
    other = "sha512-" + ("0" if full[7] != "0" else "1") * 64
    p = env.run("image", "rm", other)
    assert p.returncode == 0
    assert p.stdout == ""
    assert p.stderr == "rm: no image IDs found\n"
    assert [i["id"] for i in env.listed()] == [aci.image_key(full)]


def test_image_rm_short_or_unknown_names_exit_zero(env):
    p = env.run("image", "rm", "sha512-a", "example.com/nothing:1")
    assert p.returncode == 0
    lines = p.stderr.splitlines()
    assert lines[0] == "rm: image ID too short"
    assert lines[1].startswith('rm: cannot find aci satisfying name: "example.com/nothing"')


def test_image_rm_ambiguous_prefix_exits_zero_and_removes_nothing(env):
    seen = {}
    pair = None
    for i in range(2000):
        full = aci.build_aci(env.work / "probe.aci", files={"n": str(i)})
        two = full[7:9]
        if two in seen:
            pair = (seen[two], i)
            break
        seen[two] = i
    assert pair is not None
    paths = []
    for i in pair:
        p = env.work / ("img%d.aci" % i)
        aci.build_aci(p, files={"n": str(i)})
        paths.append(p)
    keys = fetch_all(env, *paths)
    assert keys[0][7:9] == keys[1][7:9] and keys[0] != keys[1]
    p = env.run("image", "rm", keys[0][:9])
    assert p.returncode == 0
    assert p.stderr == 'rm: ambiguous image ID: "%s"\n' % keys[0][:9]
    assert sorted(i["id"] for i in env.listed()) == sorted(keys)


def test_image_rm_same_image_twice_removes_once(env):
    path, full = env.image(version="3")
    fetch_all(env, path)
    p = env.run("image", "rm", full[:30], "example.com/hello:3")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("successfully removed") == 1
    assert "rm: 1 image(s) successfully removed" in p.stderr


def test_image_rm_without_arguments(env):
    p = env.run("image", "rm")
    assert p.returncode == 254
    assert p.stderr == "rm: must provide at least one image ID\n"


# --------------------------------------------------------------------------
# trust


def test_trust_stores_key_under_prefix(env, key):
    keyfile = env.root / "pub.asc"
    keyfile.write_text(key.armored)
    p = env.run("trust", "--prefix", "example.com/hello", "--skip-fingerprint-review", keyfile)
    assert p.returncode == 0, p.stderr
    stored = env.local / "trustedkeys" / "prefix.d" / "example.com" / "hello" / key.fpr
    assert stored.read_text() == key.armored
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644
    assert ('Trusting "%s" for prefix "example.com/hello" without fingerprint review.\n'
            % keyfile) in p.stdout
    assert 'Added key for prefix "example.com/hello" at "%s"\n' % stored in p.stdout


def test_trust_root(env, key):
    keyfile = env.root / "pub.asc"
    keyfile.write_text(key.armored)
    p = env.run("trust", "--root", "--skip-fingerprint-review", keyfile)
    assert p.returncode == 0, p.stderr
    stored = env.local / "trustedkeys" / "root.d" / key.fpr
    assert stored.read_text() == key.armored
    assert 'Added root key at "%s"' % stored in p.stdout
    path, full = env.image(name="any.example/whatever")
    key.sign(path)
    p = env.run("fetch", path)
    assert p.returncode == 0, p.stderr


def test_trust_needs_prefix_or_root(env, key):
    keyfile = env.root / "pub.asc"
    keyfile.write_text(key.armored)
    p = env.run("trust", "--skip-fingerprint-review", keyfile)
    assert p.returncode == 254
    assert "aborting due to implicit unbounded trust (root domain)" in p.stderr
    assert not (env.local / "trustedkeys").exists()


def test_trust_without_review_flag_and_no_tty_refuses(env, key):
    keyfile = env.root / "pub.asc"
    keyfile.write_text(key.armored)
    p = env.run("trust", "--prefix=example.com/hello", keyfile)
    assert p.returncode == 254
    assert "lack of tty" in p.stderr
    assert not (env.local / "trustedkeys" / "prefix.d").exists()


def test_trust_rejects_non_key(env):
    junk = env.root / "junk.asc"
    junk.write_text("not a key\n")
    p = env.run("trust", "--prefix=example.com/hello", "--skip-fingerprint-review", junk)
    assert p.returncode == 254
    assert "trust: error adding keys:" in p.stderr


# --------------------------------------------------------------------------
# command line, data dir, hooks


def test_bare_rkt_is_missing_command(env):
    p = env.run(flags=False)
    assert p.returncode == 2
    assert "missing command" in p.stderr


def test_unknown_subcommand_and_flag(env):
    p = env.run("frobnicate")
    assert p.returncode == 254
    assert 'unknown command "frobnicate"' in p.stderr
    p = env.run("image", "frobnicate")
    assert p.returncode == 254
    p = env.run("fetch", "--frobnicate", "x.aci")
    assert p.returncode == 254
    assert "unknown flag: --frobnicate" in p.stderr
    p = env.run("image", "list", "--frobnicate")
    assert p.returncode == 254


def test_version(env):
    p = env.run("version", flags=False)
    assert p.returncode == 0
    assert p.stdout.splitlines()[0] == "rkt Version: 1.30.0"


def test_global_flags_after_the_subcommand(env):
    path, full = env.image()
    p = env.run("fetch", "--insecure-options=image", *(env.flags() + [path]), flags=False)
    assert p.returncode == 0, p.stderr
    p = env.run("image", "list", "--format=json", *env.flags(), flags=False)
    assert [i["id"] for i in json.loads(p.stdout)] == [aci.image_key(full)]
    # after the image, as parseApps allows
    env.run("image", "rm", full)
    p = env.run("fetch", path, "--insecure-options=image", "--full", *env.flags(), flags=False)
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.image_key(full) + "\n"


def test_dir_isolation(env, tmp_path):
    path, full = env.image()
    fetch_all(env, path)
    other = tmp_path / "other-rkt"
    p = env.run("--dir=%s" % other, "--local-config=%s" % env.local,
                "image", "list", "--format=json", flags=False)
    assert (p.returncode, p.stdout) == (0, "null\n")
    assert [i["id"] for i in env.listed()] == [aci.image_key(full)]
    assert not other.exists() or not any(other.rglob("sha512-*"))


def test_concurrent_fetches_all_land_in_the_index(env):
    paths = []
    fulls = []
    for i in range(6):
        p, full = env.image("c%d" % i, name="example.com/c%d" % i)
        paths.append(p)
        fulls.append(full)
    procs = [subprocess.Popen([RKT] + env.flags() + ["--insecure-options=image", "fetch", str(p)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=str(env.work))
             for p in paths]
    for pr in procs:
        out, err = pr.communicate(timeout=120)
        assert pr.returncode == 0, err
    assert sorted(i["id"] for i in env.listed()) == sorted(aci.image_key(f) for f in fulls)


def test_fake_rkt_log_records_each_invocation(env):
    log = env.root / "rkt-log.jsonl"
    path, _ = env.image()
    a = env.run("--insecure-options=image", "fetch", path, env={"FAKE_RKT_LOG": str(log)})
    b = env.run("image", "rm", env={"FAKE_RKT_LOG": str(log)})
    assert (a.returncode, b.returncode) == (0, 254)
    entries = [json.loads(l) for l in log.read_text().splitlines()]
    assert entries == [
        {"argv": env.flags() + ["--insecure-options=image", "fetch", str(path)], "exit": 0},
        {"argv": env.flags() + ["image", "rm"], "exit": 254},
    ]


def test_fake_rkt_fail_simulates_a_failing_command(env):
    path, full = env.image()
    p = env.run("--insecure-options=image", "fetch", path, env={"FAKE_RKT_FAIL": "fetch"})
    assert p.returncode == 254
    assert p.stderr == "fetch: simulated failure\n"
    assert p.stdout == ""
    assert env.blobs() == {}
    # other commands are unaffected
    p = env.run("image", "list", "--format=json", env={"FAKE_RKT_FAIL": "fetch"})
    assert (p.returncode, p.stdout) == (0, "null\n")
    fetch_all(env, path)
    p = env.run("image", "rm", full, env={"FAKE_RKT_FAIL": "image rm"})
    assert p.returncode == 254
    assert p.stderr == "rm: simulated failure\n"
    assert [i["id"] for i in env.listed()] == [aci.image_key(full)]


def test_debug_prints_the_error_chain(env):
    path, _ = env.image()
    p = env.run("--debug", "fetch", path)
    assert p.returncode == 254
    assert "error opening signature file" in p.stderr
    assert "no such file or directory" in p.stderr


@pytest.mark.skipif(not os.path.exists("/usr/bin/python3"), reason="no /usr/bin/python3")
def test_runs_under_system_python(env, key):
    env.trust(key)
    path, full = env.image(compression="xz")
    key.sign(path)
    p = env.run("fetch", path, python="/usr/bin/python3")
    assert p.returncode == 0, p.stderr
    assert p.stdout == aci.short_id(full) + "\n"
    p = env.run("image", "list", "--format=json", python="/usr/bin/python3")
    assert [i["id"] for i in json.loads(p.stdout)] == [aci.image_key(full)]
