"""Data for the benchmark: volume archives, bundles and a large store.

Archives are generated once, deterministically, and cached (default
``/tmp/ops-bench-cache``); a cached archive is reused while its size and
modification time match the stamp written beside it.
"""

import io
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tarfile
import time

__all__ = ["cached_archive", "pod_json", "write_bundle", "oneshot_unit", "sleeper_unit",
           "write_store"]

MTIME = 1700000000          # every member's modification time (reproducible archives)
GEN_VERSION = 1             # bump when the generator changes: cached archives are redone


def _text_pool(rng, nbytes):
    """Random words of a 6,000-word vocabulary, in lines: text that gzip
    shrinks about three times, not a repeated pattern."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 11)))
             for _ in range(6000)]
    words = rng.choices(vocab, k=nbytes // 7 + 1)
    lines = [" ".join(words[i:i + 11]) for i in range(0, len(words), 11)]
    return "\n".join(lines).encode("ascii")[:nbytes]


def _content(rng, pool, size, binary):
    if binary:
        return rng.getrandbits(size * 8).to_bytes(size, "little") if size else b""
    parts, left = [], size
    while left > 0:
        n = min(left, rng.randint(4096, 65536))
        off = rng.randrange(len(pool) - n)
        parts.append(pool[off:off + n])
        left -= n
    return b"".join(parts)


def _sizes(rng, total):
    """File sizes adding up to ``total``: mostly small files (100 B to
    32 KiB) and a log-uniform spread of larger ones (32 KiB to 2 MiB); about
    100 KiB on average."""
    out, left = [], total
    while left > 0:
        if rng.random() < 0.8:
            s = rng.randint(100, 32 << 10)
        else:
            s = int(math.exp(rng.uniform(math.log(32 << 10), math.log(2 << 20))))
        s = min(s, left)
        out.append(s)
        left -= s
    return out


def write_archive(path, total_bytes, seed):
    """Write a tar.gz of ``total_bytes`` of file data (about 10% random
    bytes, the rest text) in nested directories, with a few empty files and
    relative symbolic links; return a dict describing it."""
    rng = random.Random(seed)
    pool = _text_pool(rng, 8 << 20)
    tmp = path + ".part"
    files = dirs = links = 0
    with open(tmp, "wb") as out:
        gz = subprocess.Popen(["gzip", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=out)
        try:
            with tarfile.open(fileobj=gz.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tf:
                def add_dir(name):
                    ti = tarfile.TarInfo(name)
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, MTIME
                    tf.addfile(ti)
                made = set()
                for i, size in enumerate(_sizes(rng, total_bytes)):
                    d = "d%02d/s%d" % (rng.randrange(24), rng.randrange(4))
                    for p in (d.split("/")[0], d):
                        if p not in made:
                            add_dir(p)
                            made.add(p)
                            dirs += 1
                    binary = rng.random() < 0.10
                    name = "%s/f%05d.%s" % (d, i, "bin" if binary else "txt")
                    data = _content(rng, pool, size, binary)
                    ti = tarfile.TarInfo(name)
                    ti.size, ti.mode, ti.mtime = len(data), 0o644, MTIME
                    tf.addfile(ti, io.BytesIO(data))
                    files += 1
                    if i % 97 == 0:
                        ti = tarfile.TarInfo("%s/empty%05d" % (d, i))
                        ti.mode, ti.mtime = 0o644, MTIME
                        tf.addfile(ti)
                        files += 1
                    if i % 53 == 0:
                        ti = tarfile.TarInfo("%s/link%05d" % (d, i))
                        ti.type, ti.linkname, ti.mode, ti.mtime = (tarfile.SYMTYPE,
                                                                   "f%05d.txt" % i if not binary
                                                                   else "f%05d.bin" % i,
                                                                   0o777, MTIME)
                        tf.addfile(ti)
                        links += 1
        finally:
            gz.stdin.close()
            rc = gz.wait()
        if rc != 0:
            raise OSError("gzip exited %d" % rc)
    os.replace(tmp, path)
    return {"data_bytes": total_bytes, "files": files, "dirs": dirs, "symlinks": links,
            "seed": seed, "gen": GEN_VERSION}


def cached_archive(cache_dir, name, total_bytes, seed, log=None):
    """The archive ``cache_dir/name`` (generated when missing or stale); its description."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, name)
    stamp_path = path + ".json"
    try:
        with open(stamp_path) as f:
            stamp = json.load(f)
        st = os.stat(path)
        if (stamp.get("size") == st.st_size and stamp.get("mtime_ns") == st.st_mtime_ns
                and stamp.get("data_bytes") == total_bytes and stamp.get("seed") == seed
                and stamp.get("gen") == GEN_VERSION):
            return path, stamp
    except (OSError, ValueError):
        pass
    if log:
        log("generating %s (%d MiB of file data, once; cached in %s)"
            % (name, total_bytes >> 20, cache_dir))
    info = write_archive(path, total_bytes, seed)
    st = os.stat(path)
    info.update(size=st.st_size, mtime_ns=st.st_mtime_ns)
    with open(stamp_path + ".tmp", "w") as f:
        json.dump(info, f)
    os.replace(stamp_path + ".tmp", stamp_path)
    return path, info


def pod_json(name, version, units=(), volumes=()):
    """A pod manifest: ``units`` as (path, start, instances or None), ``volumes`` as (name, path)."""
    ops = {"name": name, "version": version}
    if units:
        ops["systemd-units"] = []
        for path, start, instances in units:
            u = {"unit-file": path, "start": start}
            if instances is not None:
                u["instances"] = instances
            ops["systemd-units"].append(u)
    if volumes:
        ops["volumes"] = [{"volume": v, "data": p} for v, p in volumes]
    doc = {"acKind": "PodManifest", "acVersion": "0.8.11", "apps": [],
           "annotations": [{"name": "ops", "value": json.dumps(ops, indent=1)}]}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def oneshot_unit(i):
    return ("[Unit]\nDescription=ops bench unit %d\n\n[Service]\nType=oneshot\n"
            "ExecStart=/bin/true\nRemainAfterExit=yes\n\n[Install]\n"
            "WantedBy=multi-user.target\n" % i)


def sleeper_unit():
    return ("[Unit]\nDescription=ops bench sleeper %i\n\n[Service]\n"
            "ExecStart=/bin/sleep infinity\n\n[Install]\nWantedBy=multi-user.target\n")


def write_bundle(directory, name, version, units, volumes=()):
    """``units``: (file name, text, start, instances or None); ``volumes``:
    (volume name, archive path, file name in the bundle).  Archives are hard
    linked into the bundle when they can be, else copied."""
    os.makedirs(os.path.join(directory, "units"), exist_ok=True)
    specs = []
    for fname, text, start, instances in units:
        with open(os.path.join(directory, "units", fname), "w") as f:
            f.write(text)
        specs.append(("units/" + fname, start, instances))
    vols = []
    for vname, archive, fname in volumes:
        dst = os.path.join(directory, fname)
        if os.path.lexists(dst):
            os.unlink(dst)
        try:
            os.link(archive, dst)
        except OSError:
            shutil.copyfile(archive, dst)
        vols.append((vname, fname))
    with open(os.path.join(directory, "pod.json"), "wb") as f:
        f.write(pod_json(name, version, specs, vols))
    return directory


def write_store(root, pods, versions_per_pod, sample_state, unit_text):
    """Write ``pods`` pods of ``versions_per_pod`` versions each as ops stores
    them (etc/ops/pods/NAME/VERSION/{pod.json, units/, manifest.json,
    state.json}, etc/ops/current/NAME -> the newest, and each pod's index,
    written by ops's own code after the versions, as when they were deployed
    earlier); ``sample_state`` is a state.json written by ops, given each
    version's name and version."""
    names = []
    for p in range(pods):
        name = "bench-list-%02d" % p
        names.append(name)
        pod_dir = os.path.join(root, "etc/ops/pods", name)
        for v in range(1, versions_per_pod + 1):
            vdir = os.path.join(pod_dir, str(v))
            os.makedirs(os.path.join(vdir, "units"))
            raw = pod_json(name, v, [("units/app.service", True, None)])
            with open(os.path.join(vdir, "pod.json"), "wb") as f:
                f.write(raw)
            with open(os.path.join(vdir, "units", "app.service"), "w") as f:
                f.write(unit_text)
            manifest = json.loads(raw)
            with open(os.path.join(vdir, "manifest.json"), "w") as f:
                f.write(json.dumps(manifest, indent=2) + "\n")
            state = dict(sample_state, name=name, version=v)
            with open(os.path.join(vdir, "state.json"), "w") as f:
                f.write(json.dumps(state, indent=1, sort_keys=True) + "\n")
        cur = os.path.join(root, "etc/ops/current")
        os.makedirs(cur, exist_ok=True)
        os.symlink(os.path.join("..", "pods", name, str(versions_per_pod)),
                   os.path.join(cur, name))
    time.sleep(0.05)     # past the clock tick of the last state.json (see ops/index.py)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from ops import index
    for name in names:
        index.update(os.path.join(root, "etc/ops/pods", name))
    return names
