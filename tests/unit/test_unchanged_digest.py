"""An unchanged re-deploy takes the stored content digest while stat says
the bundle's files are as they were staged (the key holds the ctime), and
reads them again otherwise."""

import json
import os
import shutil
import time

import pytest

from conftest import build_bundle
from ops import bundle as bundle_mod, records


def stored_state(root, version=1):
    return json.loads((root / "etc/ops/pods/web" / str(version) / "state.json").read_text())


def settled_bundle(directory):
    """A bundle whose files were last changed over ops's SETTLED seconds ago."""
    b = build_bundle(directory, name="web", version=1, volumes={"data": {"a.txt": "one\n" * 1000}})
    time.sleep(bundle_mod.SETTLED + 0.2)
    return b


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """One settled bundle for the tests that only read it (waiting once)."""
    return settled_bundle(tmp_path_factory.mktemp("settled") / "b")


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
    monkeypatch.setattr(records, "_file_digest", lambda p: pytest.fail("read %s again" % p))
    r = ops("deploy", settled.dir)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r
    assert (root / "etc/ops/pods/web/1/state.json").read_bytes() == before


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_read_and_refused(ops, root, tmp_path):
    own = settled_bundle(tmp_path / "own")
    assert ops("deploy", own.dir).code == 0
    vol = own.dir / "volumes/data.tar.gz"
    st = os.stat(str(vol))
    data = bytearray(vol.read_bytes())
    data[-9] ^= 0xFF                  # the gzip trailer: the same size, other bytes
    vol.write_bytes(bytes(data))
    os.utime(str(vol), ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(str(vol)).st_mtime_ns == st.st_mtime_ns
    r = ops("deploy", own.dir)
    assert r.code == 2, r
    assert "already stored with different content" in r.err


def test_a_fresh_bundle_records_no_source_and_is_read_each_time(ops, root, bundle, monkeypatch):
    b = bundle(name="web", version=1)
    assert ops("deploy", b.dir).code == 0
    assert stored_state(root).get("source") is None
    calls = []
    real = records._file_digest
    monkeypatch.setattr(records, "_file_digest", lambda p: calls.append(p) or real(p))
    r = ops("deploy", b.dir)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r
    assert calls == [str(b.dir / "units/web-main.service")]


def test_the_same_bundle_elsewhere_is_read_and_still_unchanged(ops, root, settled, tmp_path):
    assert ops("deploy", settled.dir).code == 0
    copy = tmp_path / "elsewhere"
    shutil.copytree(str(settled.dir), str(copy))
    r = ops("deploy", copy)
    assert (r.code, r.last) == (0, "deploy web 1: unchanged"), r


def test_pod_json_read_before_a_long_lock_wait_counts_from_the_read(ops, root, tmp_path,
                                                                      monkeypatch):
    """pod.json is read before the lock is taken; if it was changed just
    before that read, a later change in the same clock tick would not show,
    however long ops then waited: no source is recorded."""
    b = settled_bundle(tmp_path / "b")
    os.utime(str(b.pod_json))          # changed now, then read at once by the deploy
    real = bundle_mod.Bundle.content_digest

    def after_a_wait(self, known=None):
        if not getattr(self, "_digest", None):
            time.sleep(bundle_mod.SETTLED + 0.2)        # as if waiting for the lock
        return real(self, known)
    monkeypatch.setattr(bundle_mod.Bundle, "content_digest", after_a_wait)
    r = ops("deploy", b.dir)
    assert r.code == 0, r
    assert stored_state(root).get("source") is None

