"""What ops reads back from its own trees (state.json, pod.json, the index,
the history, journals, the lock, drop-ins, stored unit copies) is read
through :func:`ops.confine.read_file`: never through a link, never waiting
on a FIFO, never more than a bound.  One such file of pod ``web`` gone bad
is web's problem only."""

import os

from conftest import unit_text


def two_pods(ops, bundle):
    for name in ("web", "db"):
        b = bundle(name=name, version=1, units=[{"file": "%s-api.service" % name, "start": True,
                                                  "text": unit_text("%s-api.service" % name)}])
        assert ops("deploy", b).code == 0


def fifo_at(path):
    path = str(path)
    if os.path.isdir(path) and not os.path.islink(path):
        raise AssertionError(path)
    if os.path.lexists(path):
        os.unlink(path)
    os.mkfifo(path)


def test_a_fifo_for_a_state_json_is_not_waited_on(ops, ops_proc, root, bundle):
    two_pods(ops, bundle)
    fifo_at(root / "etc/ops/pods/web/1/state.json")
    os.unlink(str(root / "etc/ops/pods/web/index"))      # so that state.json is read
    r = ops_proc("list", "db", timeout=30)
    assert r.code == 0 and "db" in r.out, r
    r = ops_proc("list", timeout=30)
    assert r.code == 0 and "db " in r.out, r
    assert "unexpected" not in r.err


def test_a_fifo_for_a_journal_or_an_index_is_not_waited_on(ops, ops_proc, root, bundle):
    two_pods(ops, bundle)
    (root / "var/lib/ops/journal").mkdir(parents=True, exist_ok=True)
    fifo_at(root / "var/lib/ops/journal/web.json")
    fifo_at(root / "etc/ops/pods/web/index")
    r = ops_proc("list", timeout=30)
    assert r.code == 0 and "db " in r.out, r


def test_a_state_json_linked_outside_root_is_not_read(ops, root, bundle, tmp_path):
    two_pods(ops, bundle)
    outside = tmp_path / "outside.json"
    outside.write_text('{"outcome": "read-outside-root", "deployed_at": "1999-01-01T00:00:00Z"}')
    state = root / "etc/ops/pods/web/1/state.json"
    state.unlink()
    os.symlink(str(outside), str(state))
    os.unlink(str(root / "etc/ops/pods/web/index"))
    r = ops("list")
    assert "read-outside-root" not in r.out and "1999" not in r.out, r
    assert "db " in r.out


def test_an_index_linked_outside_root_is_not_read(ops, root, bundle, tmp_path):
    two_pods(ops, bundle)
    # a FIFO beyond the link: opening it to read would wait for ever
    outside = tmp_path / "outside-index"
    os.mkfifo(str(outside))
    index = root / "etc/ops/pods/web/index"
    index.unlink()
    os.symlink(str(outside), str(index))
    from conftest import run_process
    r = run_process(["--root", str(root), "list"], timeout=30)
    assert r.code == 0 and "web " in r.out and "db " in r.out, r


def test_a_drop_in_linked_to_a_copy_outside_is_drift(ops, root, bundle, tmp_path):
    two_pods(ops, bundle)
    dropin = root / "etc/systemd/system/web-api.service.d/50-ops.conf"
    copy = tmp_path / "50-ops.conf"
    copy.write_bytes(dropin.read_bytes())
    dropin.unlink()
    os.symlink(str(copy), str(dropin))
    r = ops("status", "web")
    assert r.code == 5, r
    assert "drop-in differs" in r.out


def test_a_history_line_nested_a_million_deep_is_skipped(ops, root, bundle):
    two_pods(ops, bundle)
    hist = root / "etc/ops/history/web.jsonl"
    with open(str(hist), "a") as f:
        f.write("[" * 500000 + "]" * 500000 + "\n")
        f.write('{"at": 1e999}\n{"at": NaN}\n')
    r = ops("history", "web")
    assert r.code == 0, r
    assert "unexpected" not in r.err and "deploy" in r.out


def test_a_history_that_is_a_fifo_or_too_large_is_one_error_line(ops, ops_proc, root, bundle):
    two_pods(ops, bundle)
    hist = root / "etc/ops/history/web.jsonl"
    fifo_at(hist)
    r = ops_proc("history", "web", timeout=30)
    assert r.code == 1 and r.error_lines and str(hist) in r.error_lines[0], r
    assert "Traceback" not in r.err and "unexpected" not in r.err
    assert ops("history", "db").code == 0
    hist.unlink()
    with open(str(hist), "wb") as f:
        f.truncate(64 << 20)
    r = ops("history", "web")
    assert r.code == 1 and "larger than" in r.err and str(hist) in r.err, r


def test_a_stored_pod_json_that_is_a_fifo_is_not_waited_on(ops, ops_proc, root, bundle):
    two_pods(ops, bundle)
    fifo_at(root / "etc/ops/pods/web/1/pod.json")
    r = ops_proc("status", "db", timeout=30)
    assert r.code in (0, 5) and "db" in r.out, r
    r = ops_proc("undeploy", "web", timeout=30)
    assert "Traceback" not in r.err and "unexpected" not in r.err, r


def test_status_of_every_pod_reports_one_broken_pod_json_as_that_pods_drift(ops, root, bundle):
    two_pods(ops, bundle)
    (root / "etc/ops/pods/web/1/pod.json").write_text('{"acKind": ')
    r = ops("status")
    assert r.code == 5, r
    assert "db 1: ok" in r.out and "db-api.service" in r.out
    assert "cannot be used" in r.out and str(root / "etc/ops/pods/web/1/pod.json") in r.out


def test_a_deploy_is_not_stopped_by_another_pods_unreadable_pod_json(ops, root, bundle):
    two_pods(ops, bundle)
    pod_json = root / "etc/ops/pods/web/1/pod.json"
    with open(str(pod_json), "ab") as f:       # past the bound: not read at all
        f.truncate(17 << 20)
    b = bundle(name="db", version=2, units=[{"file": "db-api.service", "start": True,
                                             "text": unit_text("db-api.service", "v2")}])
    r = ops("deploy", b)
    assert r.code == 0, r


def test_a_fifo_for_the_history_or_the_lock_is_not_waited_on(ops, ops_proc, root, bundle):
    two_pods(ops, bundle)
    hist = root / "etc/ops/history/web.jsonl"
    fifo_at(hist)
    r = ops_proc("undeploy", "web", timeout=30)       # the change is made; the history warns
    assert r.code == 0 and "undeploy web 1: changed" in r.out, r
    assert str(hist) in r.err and "not a regular file" in r.err
    lock = root / "var/lib/ops/lock"
    fifo_at(lock)
    r = ops_proc("undeploy", "db", timeout=30)
    assert r.code == 2 and r.error_lines == [
        "ops: error: %s: cannot open the lock file: not a regular file" % lock], r


def test_what_an_edited_state_json_or_history_says_cannot_draw_on_the_terminal(ops, root,
                                                                               bundle):
    import json
    two_pods(ops, bundle)
    state = root / "etc/ops/pods/web/1/state.json"
    data = json.loads(state.read_text())
    data.update(outcome="\x1b[2Jok\nweb   9  *  ok", deployed_at="\x07" + "x" * 10000)
    state.write_text(json.dumps(data))
    with open(str(root / "etc/ops/history/web.jsonl"), "a") as f:
        f.write(json.dumps({"at": "\x1b]0;title\x07", "command": "deploy\nfake", "by": "\x1b[1m"})
                + "\n")
    for args in (("list",), ("status",), ("history", "web")):
        r = ops(*args)
        assert "\x1b" not in r.out and "\x07" not in r.out, (args, r)
        assert "web   9" not in r.out.splitlines() and "fake" not in r.out.splitlines(), r
        assert max(len(l) for l in r.out.splitlines()) < 5000, args
    assert "\\x1b[2Jok\\nweb" in ops("list").out


def test_a_pod_directory_linked_outside_root_is_not_listed_through_and_others_are(ops, root,
                                                                                  bundle, tmp_path):
    import shutil
    two_pods(ops, bundle)
    pod_dir = root / "etc/ops/pods/web"
    outside = tmp_path / "outside-web"
    shutil.move(str(pod_dir), str(outside))
    os.symlink(str(outside), str(pod_dir))
    r = ops("list")
    assert r.code == 0, r
    assert [l.split()[0] for l in r.lines[1:]] == ["db"], r
    assert str(pod_dir) in r.err and "symbolic link" in r.err
    r = ops("status")
    assert r.code == 5, r
    assert "db 1: ok" in r.out and str(pod_dir) in r.out
    r = ops("list", "web")
    assert r.code == 2 and str(pod_dir) in r.err, r


def test_read_files_says_what_read_file_says_of_each_file(ops, root, bundle, tmp_path):
    """:func:`ops.confine.read_files` (a directory walked once for its files) gives
    each file's bytes or the very error :func:`ops.confine.read_file` gives:
    a link as the last component, a FIFO, a directory, a missing file, a file
    over the bound, a link on the way; and for a path under ROOT outside ops's
    trees (read one at a time) the same as read_file too."""
    import errno
    from ops import confine
    two_pods(ops, bundle)
    units = root / "etc/ops/pods/web/1/units"
    outside = tmp_path / "outside.service"
    outside.write_text("[Service]\nExecStart=/bin/outside\n")
    (units / "plain.service").write_text("[Service]\nExecStart=/bin/true\n")
    os.symlink(str(outside), str(units / "link.service"))
    os.mkfifo(str(units / "fifo.service"))
    (units / "dir.service").mkdir()
    (units / "big.service").write_bytes(b"x" * 100)
    linked = root / "etc/ops/pods/db/1"
    import shutil
    shutil.move(str(linked / "units"), str(tmp_path / "db-units"))
    os.symlink(str(tmp_path / "db-units"), str(linked / "units"))
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    paths = [str(units / n) for n in ("web-api.service", "plain.service", "link.service",
                                      "fifo.service", "dir.service", "missing.service",
                                      "big.service")]
    paths += [str(linked / "units/db-api.service"), str(root / "etc/passwd"),
              str(root / "etc/missing")]
    got = confine.read_files(paths, limit=64)

    def one(p):
        try:
            return confine.read_file(p, 64)
        except OSError as e:
            return e
    for p in paths:
        want = one(p)
        if isinstance(want, OSError):
            assert isinstance(got[p], OSError) and got[p].errno == want.errno, (p, got[p], want)
            assert got[p].filename == want.filename or str(p) in str(got[p]), (p, got[p])
        else:
            assert got[p] == want, p
    assert got[paths[8]] == b"root:x:0:0::/root:/bin/sh\n"
    assert got[paths[1]] == b"[Service]\nExecStart=/bin/true\n"
    assert got[paths[2]].errno == errno.ELOOP
    assert got[paths[6]].errno == errno.EFBIG
    assert got[paths[7]].errno == errno.ELOOP          # a link on the way: not read through
