"""Real servers from Debian's packages as appc images and ops bundles, for the live tests on the real rkt.

tools/install-test-deps.sh downloads the packages (``apt-get download``, nothing installed, no service started)
and unpacks them with ``dpkg-deb -x`` into one tree, :data:`ROOT` (``$OPS_TEST_SERVERS``, default
/var/cache/ops-tests/servers).  An image is the server's binary, every shared library ``ldd`` names for it (from
that tree, else from the machine), the dynamic loader, and empty directories for its mount points: nothing else
(no shell, no package database).  Its app runs as the numeric user and group the test gives (the server's user on
the host, so that the volume ``owner`` and the process agree).

A bundle (:func:`bundle`) is a pod.json with one app and an ops annotation, the image with its ID (ops checks the
ID and fetches the image; no signature), one unit running the pod with ``rkt run`` (stage1-fly), and a plain tar
per ops volume.
"""

import io
import json
import os
import subprocess
import tarfile

from tests.support import aci

__all__ = ["ROOT", "Missing", "find", "closure", "image", "bundle", "unit"]

ROOT = os.environ.get("OPS_TEST_SERVERS") or "/var/cache/ops-tests/servers"
HOW = "run tools/install-test-deps.sh (it unpacks Debian's redis-server and nginx there)"
LIBDIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib")


class Missing(Exception):
    """A server's files are not unpacked here; the message says how to get them."""


def find(rel):
    """The path of ``rel`` (``usr/bin/redis-server``) in the unpacked packages, or raise :class:`Missing`."""
    path = os.path.join(ROOT, rel)
    if not os.path.exists(path):
        raise Missing("%s is missing: %s" % (path, HOW))
    return path


def closure(binary):
    """{path in the image: path on this machine} of ``binary``'s shared libraries and loader, as ``ldd`` resolves
    them with the unpacked packages' library directories first; a library found nowhere raises :class:`Missing`."""
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(os.path.join(ROOT, d) for d in LIBDIRS))
    out = subprocess.run(["ldd", binary], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, check=True).stdout
    files = {}
    for line in out.splitlines():
        line = line.strip()
        if "=> not found" in line:
            raise Missing("%s needs %s, found neither in %s nor on this machine (%s)"
                          % (binary, line.split()[0], ROOT, HOW))
        path = line.split("=>")[-1].split("(")[0].strip()
        if not path.startswith("/"):
            continue                                 # linux-vdso.so.1
        inside = path[len(ROOT):] if path.startswith(ROOT + "/") else path
        files[inside] = path
    return files


def image(path, name, version, binary, exec_, user, group, dirs=(), files=None):
    """Write the ACI ``path``: ``binary`` (a path under :data:`ROOT`) at the same path, its libraries and loader,
    an empty directory for each of ``dirs`` (mount points, /tmp), ``files`` ({path: bytes}); its app runs
    ``exec_`` as ``user``:``group``.  Returns the image ID."""
    members = {"tmp": None}
    for d in dirs:
        members[d.strip("/")] = None
    for inside, host in sorted(closure(find(binary)).items()):
        with open(host, "rb") as f:
            members[inside.lstrip("/")] = (f.read(), 0o755)
    with open(find(binary), "rb") as f:
        members[binary] = (f.read(), 0o755)
    for rel, data in (files or {}).items():
        members[rel.lstrip("/")] = data
    manifest = aci.default_manifest(name, version)
    manifest["app"] = {"exec": list(exec_), "user": str(user), "group": str(group)}
    tar = aci.tar_bytes(json.dumps(manifest, indent=1, sort_keys=True).encode(), members)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(tar)
    return aci.image_id(tar)


UNIT = """[Unit]
Description=%(description)s

[Service]
Slice=machine.slice
ExecStart=/opt/rkt/bin/rkt run --insecure-options=image --stage1-path=/opt/rkt/lib/stage1-fly.aci --pod-manifest=${POD_MANIFEST}
ExecStopPost=/opt/rkt/bin/rkt gc --grace-period=0s
KillMode=mixed
PrivateMounts=yes
%(service)s

[Install]
WantedBy=multi-user.target
"""


def unit(description, service=()):
    """The unit that runs the pod of its version (the README's real-rkt unit); ``service``: more lines of its
    [Service] section (``KillSignal=SIGQUIT``)."""
    return UNIT % {"description": description, "service": "".join(line + "\n" for line in service)}


def _tar(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def bundle(directory, name, version, app, image_file, image_id, unit_name, unit_text, volumes, health,
           pod_volumes=()):
    """Write a bundle into ``directory``.

    ``app``: the appc app (``exec``, ``user``, ``group``, ``mountPoints``...); ``image_file``: the ACI, copied
    to images/; ``volumes``: [(name, {member: bytes}, owner or None, read_only)]: an ops volume each, a
    read-only one also declared ``readOnly`` in pod.json's top-level volumes (ops keeps that option);
    ``pod_volumes``: more top-level appc volumes (a host volume of the pod's own); ``health``: the ops check."""
    os.makedirs(os.path.join(directory, "images"), exist_ok=True)
    with open(image_file, "rb") as src, open(os.path.join(directory, "images", "server.aci"), "wb") as dst:
        dst.write(src.read())
    with open(os.path.join(directory, unit_name), "w") as f:
        f.write(unit_text)
    ops_vols, top = [], list(pod_volumes)
    for vname, members, owner, read_only in volumes:
        with open(os.path.join(directory, vname + ".tar"), "wb") as f:
            f.write(_tar(members))
        entry = {"volume": vname, "data": vname + ".tar"}
        if owner:
            entry["owner"] = owner
        ops_vols.append(entry)
        top.append({"name": vname, "kind": "empty", "readOnly": bool(read_only)})
    annotation = {"name": name, "version": version,
                  "systemd-units": [{"unit-file": unit_name, "start": True}],
                  "images": [{"id": image_id, "path": "images/server.aci"}],
                  "volumes": ops_vols, "health": health}
    manifest = {"acKind": "PodManifest", "acVersion": "0.8.11",
                "apps": [{"name": app.pop("name"), "image": {"id": image_id}, "app": app}],
                "volumes": top,
                "annotations": [{"name": "ops", "value": json.dumps(annotation)}]}
    with open(os.path.join(directory, "pod.json"), "w") as f:
        f.write(json.dumps(manifest, indent=2) + "\n")
    return directory
