"""A real rkt (1.30 with the fly stage1) in a throwaway systemd container, for the live tests and ``make demo``.

The rkt binary is named by ``$OPS_TEST_RKT``; its stage1, ``stage1-fly.aci``, lies beside it.  :func:`find` says
why there is none (the live tests fail with that line unless OPS_TEST_RKT=0 is set by hand, the demo stops with
it).  :func:`install` copies both into the
container, where /usr is the machine's, read-only: rkt goes to /opt/rkt/bin/rkt and the stage1 to
/opt/rkt/lib/stage1-fly.aci, the paths examples/hello's web unit names.  rkt keeps its store and its pods in the
container's /var/lib/rkt and its trusted keys in /etc/rkt (both on the container's tmpfs).

:func:`prepare_hello` makes what examples/hello needs besides its committed files: a gpg key, the busybox image
signed with it (examples/hello/make-image.py), and the key trusted by rkt for the image's name.
"""

import importlib.util
import json
import os
import shutil

from tests.support import gpg

__all__ = ["Missing", "find", "install", "prepare_hello", "prepare_example", "make_image_module", "trust_argv", "pods", "image_ids", "rkt_mounts", "gc",
           "RKT", "STAGE1", "KEY", "IMAGE_NAME"]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(REPO, "examples")
HELLO = os.path.join(EXAMPLES, "hello")
RKT = "/opt/rkt/bin/rkt"                    # inside the container
STAGE1 = "/opt/rkt/lib/stage1-fly.aci"
KEY = "/root/hello-web.pub"                 # the public key of the hello image's signature, inside the container
IMAGE_NAME = "example.com/hello-web"
HOW = "build rkt and stage1-fly.aci with rkt's build script (see README, Tests) and set OPS_TEST_RKT to the rkt binary"


class Missing(Exception):
    """No real rkt on this machine; the message is one line saying why."""


def find():
    """(rkt, stage1) on this machine, from $OPS_TEST_RKT; raise :class:`Missing` when there is none."""
    rkt = os.environ.get("OPS_TEST_RKT")
    if not rkt:
        raise Missing("no real rkt: OPS_TEST_RKT is not set (%s)" % HOW)
    if rkt == "0":
        raise Missing("no real rkt: OPS_TEST_RKT=0 switches it off")
    rkt = os.path.abspath(rkt)
    if not (os.path.isfile(rkt) and os.access(rkt, os.X_OK)):
        raise Missing("no real rkt: OPS_TEST_RKT=%s is not an executable file (%s)" % (rkt, HOW))
    stage1 = os.path.join(os.path.dirname(rkt), "stage1-fly.aci")
    if not os.path.isfile(stage1):
        raise Missing("no real rkt: %s is missing beside OPS_TEST_RKT=%s (%s)" % (stage1, rkt, HOW))
    return rkt, stage1


def _copy(container, src, dest, mode):
    path = container.path(dest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shutil.copyfile(src, path)
    os.chmod(path, mode)


def install(container, rkt, stage1):
    """Copy rkt and its stage1 into the container; ops run there (tests/live/conftest.ops) then use this rkt."""
    _copy(container, rkt, RKT, 0o755)
    _copy(container, stage1, STAGE1, 0o644)
    container.ops_rkt = RKT
    return RKT


def make_image_module(example="hello"):
    """examples/EXAMPLE/make-image.py, loaded as a module."""
    spec = importlib.util.spec_from_file_location("%s_make_image" % example.replace("-", "_"),
                                                  os.path.join(EXAMPLES, example, "make-image.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trust_argv(key=KEY, prefix=IMAGE_NAME):
    """``rkt trust`` of the key at ``key`` inside the container (the hello image's) for the name ``prefix``."""
    return [RKT, "trust", "--prefix=" + prefix, "--skip-fingerprint-review", key]


def prepare_hello(container, workdir, dest="/root/hello", busybox="/bin/busybox", trust=True):
    """Copy examples/hello to ``workdir``/hello, build and sign its image there with a new key (in ``workdir``),
    copy the bundles into the container at ``dest``, the public key to :data:`KEY`, and (``trust``) make rkt
    trust the key for example.com/hello-web.

    Returns (the prepared copy on this machine, the image ID)."""
    return prepare_example(container, workdir, "hello", dest, KEY, trust=trust, busybox=busybox)


def prepare_example(container, workdir, example, dest, key, trust=True, **make_args):
    """Copy examples/EXAMPLE to ``workdir``/EXAMPLE, build and sign its image there with its make-image.py and
    a new key (in ``workdir``), copy the bundles into the container at ``dest``, the public key to ``key``
    inside it, and (``trust``) make rkt trust the key for the image's name (make-image.py's ``NAME``).

    Returns (the prepared copy on this machine, the image ID)."""
    make_image = make_image_module(example)
    home = os.path.join(str(workdir), "gnupg")
    copy = os.path.join(str(workdir), example)
    shutil.copytree(os.path.join(EXAMPLES, example), copy, ignore=shutil.ignore_patterns("images", "__pycache__"))
    versions = sorted(os.path.join(copy, d) for d in os.listdir(copy) if d[:1] == "v" and d[1:].isdigit())
    try:
        public = gpg.make_key(home, uid="%s example <%s@example.com>" % (example, example))
        image_id = make_image.make(versions, home, **make_args)
    finally:
        gpg.stop_agent(home)
    if container.exists(dest):
        container.remove(dest)
    container.copytree(copy, dest)
    container.write_file(key, public)
    if trust:
        container.run(trust_argv(key, make_image.NAME), check=True)
    return copy, image_id


def pods(container):
    """rkt's pods as [(uuid, app, state)], from ``rkt list`` (UUID APP IMAGE-NAME IMAGE-ID STATE ...)."""
    r = container.run([RKT, "list", "--no-legend", "--full"], check=True)
    out = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 5:
            out.append((f[0], f[1], f[4]))
    return out


def image_ids(container):
    """The IDs in rkt's store (``image list --format=json``)."""
    r = container.run([RKT, "image", "list", "--format=json"], check=True)
    return [i["id"] for i in json.loads(r.stdout or "null") or []]


def rkt_mounts(container):
    """Lines of the container's mount table (PID 1's namespace) that lie under rkt's directory."""
    r = container.run(["cat", "/proc/1/mountinfo"], check=True)
    return [l for l in r.stdout.splitlines() if "/var/lib/rkt" in l]


def gc(container):
    """``rkt gc --grace-period=0s``: remove every exited pod (and its mounts) now."""
    return container.run([RKT, "gc", "--grace-period=0s"], timeout=120)
