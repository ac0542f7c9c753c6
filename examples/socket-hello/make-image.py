#!/usr/bin/env python3
"""Build and sign the image of the socket-hello example, and write its ID into the bundles.

The image ``example.com/socket-hello`` holds no interpreter: it is serve.py at /app/serve.py, an empty /usr on
which the pod mounts the host's /usr read-only (the pod manifest's host volume ``host-usr``), and the links
/bin, /lib and /lib64 into /usr that a merged-/usr Debian host has.  Its app runs the host's python3 on
serve.py.  For each bundle directory given this writes:

    images/socket-hello.aci        the ACI (a plain tar, byte for byte the same for the same serve.py)
    images/socket-hello.aci.asc    its detached signature, made with a key of GNUPGHOME (kept while the ACI
                                   is unchanged)
    pod.json                       the image's ID in apps[0].image.id and in the ops image entry

rkt must trust the signing key for the image's name before the deploy:

    cd examples/socket-hello && python3 make-image.py --gnupghome ~/.gnupg v1 v2 v3
    gpg --armor --export KEY > socket-hello.pub
    rkt trust --prefix=example.com/socket-hello --skip-fingerprint-review socket-hello.pub
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)

from tests.support import aci, gpg  # noqa: E402

NAME = "example.com/socket-hello"
VERSION = "1.0.0"
ACI = "images/socket-hello.aci"
SERVE = os.path.join(HERE, "serve.py")


def image_tar(serve=SERVE):
    """The ACI's bytes (an uncompressed tar)."""
    with open(serve, "rb") as f:
        script = f.read()
    manifest = aci.default_manifest(NAME, VERSION)
    manifest["app"] = {
        "exec": ["/usr/bin/python3", "/app/serve.py"],
        "user": "0", "group": "0",
        "environment": [{"name": "LISTEN_FDS", "value": "1"}],
        "mountPoints": [{"name": "host-usr", "path": "/usr", "readOnly": True}],
    }
    mbytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    return aci.tar_bytes(mbytes, {"app/serve.py": (script, 0o644), "usr": None, "tmp": None,
                                  "bin": aci.Symlink("usr/bin"), "lib": aci.Symlink("usr/lib"),
                                  "lib64": aci.Symlink("usr/lib64")})


def set_image_id(bundle, image_id):
    """Name ``image_id`` in the bundle's pod.json (apps[].image.id and ops.images[].id); True when it changed."""
    path = os.path.join(bundle, "pod.json")
    with open(path) as f:
        manifest = json.load(f)
    for app in manifest.get("apps", []):
        app["image"]["id"] = image_id
    for ann in manifest["annotations"]:
        if ann["name"] == "ops":
            ops = json.loads(ann["value"])
            for img in ops.get("images", []):
                img["id"] = image_id
            ann["value"] = json.dumps(ops)
    text = json.dumps(manifest, indent=2) + "\n"
    with open(path) as f:
        if f.read() == text:
            return False
    with open(path, "w") as f:
        f.write(text)
    return True


def make(bundles, gnupghome, key=None):
    """Write the image, its signature and its ID into every bundle directory; return the image ID."""
    tar = image_tar()
    image_id = aci.image_id(tar)
    for bundle in bundles:
        path = os.path.join(bundle, ACI)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        same = False
        if os.path.exists(path):
            with open(path, "rb") as f:
                same = f.read() == tar
        if not same:
            with open(path, "wb") as f:
                f.write(tar)
        if not (same and os.path.exists(path + ".asc")):
            gpg.sign(gnupghome, path, uid=key)
        set_image_id(bundle, image_id)
    return image_id


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundles", nargs="+", metavar="BUNDLE_DIR")
    p.add_argument("--gnupghome", default=os.environ.get("GNUPGHOME") or os.path.expanduser("~/.gnupg"),
                   help="the gpg home holding the signing key (default $GNUPGHOME, else ~/.gnupg)")
    p.add_argument("--key", help="the signing key's user ID, when the home holds several")
    args = p.parse_args()
    image_id = make(args.bundles, args.gnupghome, args.key)
    for b in args.bundles:
        print("%s: %s" % (os.path.join(b, ACI), image_id))


if __name__ == "__main__":
    main()
