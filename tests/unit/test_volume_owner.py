"""The owner of an ops volume: names resolved on the host at deploy, the whole tree given to it."""

import os

import pytest


# -- owner: who owns a volume's tree -------------------------------------------------------------------

def _owned_bundle(bundle, owner, version=1):
    import json as _json
    b = bundle(name="srv", version=version, units=[],
               volumes={"data": {"db/state": "s\n", "top.txt": "t\n"}})
    doc = _json.loads(b.pod_json.read_text())
    ann = _json.loads(doc["annotations"][-1]["value"])
    ann["volumes"][0]["owner"] = owner
    doc["annotations"][-1]["value"] = _json.dumps(ann)
    b.pod_json.write_text(_json.dumps(doc))
    return b


@pytest.fixture
def accounts(root):
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1234:1235::/srv:/bin/false\n")
    (root / "etc/group").write_text("root:x:0:\napp:x:1235:\nstaff:x:1300:app\n")


def _owners(top):
    out = set()
    for d, dirs, files in os.walk(str(top)):
        for n in [""] + dirs + files:
            st = os.lstat(os.path.join(d, n))
            out.add((st.st_uid, st.st_gid))
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
@pytest.mark.parametrize("owner,ids", [("app", (1234, 1235)), ("app:staff", (1234, 1300)),
                                       ("4321", (4321, 4321)), ("1234", (1234, 1235)),
                                       ("app:77", (1234, 77)), ("0:staff", (0, 1300))])
def test_owner_is_given_to_the_whole_tree(ops, root, bundle, accounts, owner, ids):
    r = ops("deploy", _owned_bundle(bundle, owner))
    assert r.code == 0, r
    assert _owners(root / "var/lib/ops/volumes/srv/1/data") == {ids}


@pytest.mark.parametrize("owner,what", [("nobody-here", "user 'nobody-here'"),
                                        ("app:nogroup", "group 'nogroup'")])
def test_an_owner_that_does_not_resolve_is_refused(ops, root, bundle, accounts, owner, what):
    b = _owned_bundle(bundle, owner)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert "pod.json: ops.volumes[0].owner" in r.err and what in r.err, r
    assert not (root / "etc/ops/pods/srv").exists() and not (root / "var/lib/ops/volumes/srv").exists()
    assert ops("check", b).code == 0           # check reads nothing outside the bundle


@pytest.mark.parametrize("passwd,group,owner,what", [
    ("big:x:99999999999:1::/:/bin/sh\n", "", "big", "uid 99999999999"),
    ("neg:x:-5:1::/:/bin/sh\n", "", "neg", "uid -5"),
    ("keep:x:4294967295:1::/:/bin/sh\n", "", "keep", "uid 4294967295"),    # chown's "leave as it is"
    ("app:x:1234:1::/:/bin/sh\n", "huge:x:4294967296:\n", "app:huge", "gid 4294967296"),
    (None, "", "app", "cannot read etc/passwd"),                           # a directory
])
def test_an_owner_resolving_to_an_id_chown_cannot_take_is_refused(ops, root, bundle, passwd, group,
                                                                    owner, what):
    # was an "unexpected error: OverflowError" in the middle of staging, or a silent no-op chown
    (root / "etc").mkdir(exist_ok=True)
    if passwd is None:
        (root / "etc/passwd").mkdir()
    else:
        (root / "etc/passwd").write_text(passwd)
    (root / "etc/group").write_text(group)
    r = ops("deploy", _owned_bundle(bundle, owner))
    assert r.code == 2, r
    assert "pod.json: ops.volumes[0].owner" in r.err and what in r.err, r
    assert "unexpected" not in r.err
    assert not (root / "etc/ops/pods/srv").exists() and not (root / "var/lib/ops/volumes/srv").exists()


@pytest.mark.parametrize("table", ["passwd", "group"])
def test_roots_tables_through_a_link_out_of_root_are_not_read(ops, root, bundle, tmp_path, table):
    """Offline, ROOT's tables are ROOT's: a link out of ROOT (to the machine's
    own /etc, here a stand-in) is refused, not read; a link inside ROOT is followed.
    (An ``etc`` that is itself such a link is refused before: ops writes under it.)"""
    outside = tmp_path / "outside-etc"
    outside.mkdir()
    (outside / "passwd").write_text("app:x:1234:1234::/:/bin/sh\n")
    (outside / "group").write_text("app:x:1234:\n")
    (root / "etc").mkdir(exist_ok=True)
    for t in ("passwd", "group"):
        if t == table:
            os.symlink(str(outside / t), str(root / "etc" / t))
        else:
            (root / "etc" / t).write_text((outside / t).read_text())
    r = ops("deploy", _owned_bundle(bundle, "app:app"))
    assert r.code == 2, r
    assert "pod.json: ops.volumes[0].owner" in r.err and "outside the root" in r.err, r
    assert not (root / "var/lib/ops/volumes/srv").exists()


def test_roots_passwd_through_a_link_inside_root_is_read(ops, root, bundle):
    (root / "etc").mkdir(exist_ok=True)
    (root / "usr/share").mkdir(parents=True)
    (root / "usr/share/passwd").write_text("app:x:1234:1234::/:/bin/sh\n")
    os.symlink("../usr/share/passwd", str(root / "etc/passwd"))
    (root / "etc/group").write_text("app:x:1234:\n")
    r = ops("deploy", _owned_bundle(bundle, "app"))
    assert r.code == 0, r
