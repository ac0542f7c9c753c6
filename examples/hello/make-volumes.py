#!/usr/bin/env python3
"""Rebuild the volume tarballs of the hello example: v1/www.tar, v2/www.tar, v3/www.tar.

The tarballs are committed; this script makes them byte-for-byte the same every time (fixed
owner, mode and time stamps), so rebuilding them does not change a version's content.  (Python 3.11 and
later write the same bytes; earlier versions fill the unused device fields with zeros instead of leaving
them empty, which gives a different but equally valid archive.)
A deployed version is immutable: after editing a page here, bump that bundle's version.

    python3 examples/hello/make-volumes.py
"""

import io
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
MTIME = 1700000000           # 2023-11-14, fixed so that the archive bytes do not depend on when it is built

PAGE = """<!doctype html>
<html>
<head><meta charset="utf-8"><title>hello {version}</title></head>
<body>
<h1>hello, version {version}</h1>
<p>{note}</p>
</body>
</html>
"""

NOTES = {
    1: "The first version: a web page, two workers and a start-up stamp.",
    2: "The second version: three workers, and a timer that ticks every 10 seconds.",
    3: "The third version never serves this page: its web service exits at once, so ops rolls back to 2.",
}


def member(name, data=None):
    info = tarfile.TarInfo(name)
    info.mtime = MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    else:
        info.size = len(data)
        info.mode = 0o644
    return info


def build(version):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(member("./"))
        page = PAGE.format(version=version, note=NOTES[version]).encode()
        tar.addfile(member("./index.html", page), io.BytesIO(page))
    return buf.getvalue()


def main():
    for version in sorted(NOTES):
        path = os.path.join(HERE, "v%d" % version, "www.tar")
        data = build(version)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        print("%s: %d bytes" % (os.path.relpath(path), len(data)))


if __name__ == "__main__":
    main()
