#!/usr/bin/env python3
"""Build and sign the image of the hello example, and write its ID into the bundles.

The image ``example.com/hello-web`` is Debian's static busybox (package busybox-static) in an ACI whose app is
busybox's httpd serving /var/www (the pod's ``www`` volume) on 127.0.0.1:8080.  For each bundle directory given
this writes:

    images/hello-web.aci        the ACI (a plain tar, byte for byte the same for the same busybox)
    images/hello-web.aci.asc    its detached signature, made with a key of GNUPGHOME (kept while the ACI is unchanged)
    pod.json                    the image's ID in apps[0].image.id and in the ops image entry

The image ID depends on the busybox binary, so pod.json is rewritten only when it names another ID.  rkt must
trust the signing key for the image's name before the deploy:

    python3 examples/hello/make-image.py --gnupghome ~/.gnupg examples/hello/v1 examples/hello/v2 examples/hello/v3
    gpg --armor --export KEY > hello-web.pub
    rkt trust --prefix=example.com/hello-web --skip-fingerprint-review hello-web.pub
"""

import argparse
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, REPO)

from tests.support import aci, gpg  # noqa: E402

NAME = "example.com/hello-web"
VERSION = "1.0.0"
ACI = "images/hello-web.aci"
BUSYBOX = "/bin/busybox"


def image_tar(busybox=BUSYBOX):
    """The ACI's bytes (an uncompressed tar): busybox at /bin/busybox, an empty /var/www."""
    with open(busybox, "rb") as f:
        binary = f.read()
    manifest = aci.default_manifest(NAME, VERSION)
    manifest["app"] = {
        "exec": ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/var/www"],
        "user": "0", "group": "0",
        "mountPoints": [{"name": "www", "path": "/var/www", "readOnly": True}],
    }
    mbytes = json.dumps(manifest, indent=1, sort_keys=True).encode()
    return aci.tar_bytes(mbytes, {"bin/busybox": (binary, 0o755), "var/www": None, "tmp": None})


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


def make(bundles, gnupghome, busybox=BUSYBOX, key=None):
    """Write the image, its signature and its ID into every bundle directory; return the image ID."""
    tar = image_tar(busybox)
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
    p.add_argument("--busybox", default=BUSYBOX, help="a static busybox (default %(default)s)")
    p.add_argument("--gnupghome", default=os.environ.get("GNUPGHOME") or os.path.expanduser("~/.gnupg"),
                   help="the gpg home holding the signing key (default $GNUPGHOME, else ~/.gnupg)")
    p.add_argument("--key", help="the signing key's user ID, when the home holds several")
    args = p.parse_args()
    image_id = make(args.bundles, args.gnupghome, args.busybox, args.key)
    for b in args.bundles:
        print("%s: %s" % (os.path.join(b, ACI), image_id))


if __name__ == "__main__":
    main()
