"""An unchanged re-deploy takes the stored content digest while stat says
the bundle's files are as they were staged (the key holds the ctime), and
reads them again otherwise."""

import json
import os
import time

import pytest

from ops import bundle as bundle_mod


def stored_state(root, version=1):
    return json.loads((root / "etc/ops/pods/web" / str(version) / "state.json").read_text())


@pytest.fixture
def settled(bundle):
    """A bundle whose files were last changed over a second ago."""
    b = bundle(name="web", version=1, volumes={"data": {"a.txt": "one\n" * 1000}})
    time.sleep(1.2)
    return b


def test_the_staged_files_and_their_stat_are_recorded(ops, root, settled):
    r = ops("deploy", settled.dir)
    assert r.code == 0, r
    source = stored_state(root)["source"]
    paths = [p for p, _ in source]
    assert paths == [str(settled.dir / "pod.json"), str(settled.dir / "units/web-main.service"),
                     str(settled.dir / "volumes/data.tar.gz")]
    st = os.stat(paths[-1])
    assert source[-1][1] == [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def test_unchanged_files_are_not_read_again(ops, root, settled, monkeypatch):
    assert ops("deploy", settled.dir).code == 0
    before = (root / "etc/ops/pods/web/1/state.json").read_bytes()
    monkeypatch.setattr(bundle_mod, "_file_digest", lambda p: pytest.fail("read %s again" % p))
    r = ops("deploy", settled.dir)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r
    assert (root / "etc/ops/pods/web/1/state.json").read_bytes() == before


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_read_and_refused(ops, root, settled):
    assert ops("deploy", settled.dir).code == 0
    vol = settled.dir / "volumes/data.tar.gz"
    st = os.stat(str(vol))
    data = bytearray(vol.read_bytes())
    data[-9] ^= 0xFF                  # the gzip trailer: the same size, other bytes
    vol.write_bytes(bytes(data))
    os.utime(str(vol), ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(str(vol)).st_mtime_ns == st.st_mtime_ns
    r = ops("deploy", settled.dir)
    assert r.code == 2, r
    assert "already stored with different content" in r.err


def test_a_fresh_bundle_records_no_source_and_is_read_each_time(ops, root, bundle, monkeypatch):
    b = bundle(name="web", version=1)
    assert ops("deploy", b.dir).code == 0
    assert stored_state(root).get("source") is None
    calls = []
    real = bundle_mod._file_digest
    monkeypatch.setattr(bundle_mod, "_file_digest", lambda p: calls.append(p) or real(p))
    r = ops("deploy", b.dir)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r
    assert calls == [str(b.dir / "units/web-main.service")]


def test_the_same_bundle_elsewhere_is_read_and_still_unchanged(ops, root, settled, tmp_path):
    import shutil
    assert ops("deploy", settled.dir).code == 0
    copy = tmp_path / "elsewhere"
    shutil.copytree(str(settled.dir), str(copy))
    r = ops("deploy", copy)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r
