"""ops never damages units that are not its own (offline, into a temporary ROOT).

- a pod's unit may not shadow a unit systemd already has: its name, its
  instances, its [Install] Alias= names, anywhere in systemd's unit search
  path under ROOT; Also= may only name the pod's own units;
- a unit file or drop-in is ops's only by content (what it installed from a
  stored version), never by name: deploy, redeploy and undeploy refuse to
  overwrite or delete anything else;
- systemctl calls are batched within the OS's argument space;
- a version whose stored pod.json was deleted is still taken down;
- unit names systemd refuses are refused by `check`.
"""

import json
import os
import shutil

import pytest

from conftest import current_link, diff, snapshot, unit_dir, unit_text, wants

from ops.ownership import SEARCH_PATHS


def web(bundle, version=1, units=None, **kw):
    return bundle(name="web", version=version, units=units or [
        {"file": "web-api.service", "start": True},
        {"file": "web-tool.service", "start": False},
    ], **kw)


def refused(r, *words):
    assert r.code == 2, r
    assert len(r.error_lines) == 1, r
    for w in words:
        assert w in r.error_lines[0], r.error_lines
    assert "Traceback" not in r.err
    return r.error_lines[0]


def system_unit(root, rel, name, text=None):
    d = root / rel
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text(text or "[Unit]\nDescription=the system's %s\n" % name)
    return d / name


# -- 1. shadowing the system's units ---------------------------------------------------

OTHER_PATHS = [p for p in SEARCH_PATHS if p != "etc/systemd/system"]


def test_the_search_path_is_systemds():
    # `systemd-analyze unit-paths` (systemd 252) lists these for the system manager
    assert set(SEARCH_PATHS) >= {
        "etc/systemd/system.control", "run/systemd/system.control", "run/systemd/transient",
        "run/systemd/generator.early", "etc/systemd/system", "etc/systemd/system.attached",
        "run/systemd/system", "run/systemd/system.attached", "run/systemd/generator",
        "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system",
        "run/systemd/generator.late"}


@pytest.mark.parametrize("where", OTHER_PATHS)
def test_a_unit_named_like_a_system_unit_is_refused(ops, root, bundle, where):
    path = system_unit(root, where, "systemd-logind.service")
    before = snapshot(root)
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True},
                                  {"file": "systemd-logind.service", "start": True}])
    line = refused(ops("deploy", b), str(path), "systemd-logind.service", "shadow")
    assert "nothing was changed" in line
    assert diff(before, snapshot(root)) == []


@pytest.mark.parametrize("name", ["multi-user.target", "dbus.socket", "tmp.mount",
                                  "system.slice", "systemd-tmpfiles-clean.timer"])
def test_units_of_every_kind_are_looked_up(ops, root, bundle, name):
    system_unit(root, "usr/lib/systemd/system", name)
    before = snapshot(root)
    refused(ops("deploy", bundle(name="web", units=[{"file": name}])), name, "shadow")
    assert diff(before, snapshot(root)) == []


@pytest.mark.parametrize("name", ["-.mount", "-.slice"])
def test_units_systemd_makes_without_a_file_are_refused(ops, root, bundle, name):
    before = snapshot(root)
    refused(ops("deploy", bundle(name="web", units=[{"file": name,
                                                     "text": "[Unit]\nDescription=x\n"}])),
            name, "shadow")
    assert diff(before, snapshot(root)) == []


def test_a_mount_unit_of_a_mount_point_in_fstab_is_refused(ops, root, bundle):
    (root / "etc").mkdir()
    (root / "etc/fstab").write_text("# <fs> <dir> <type> <options>\n"
                                    "/dev/sdb1 /srv/data ext4 defaults 0 2\n")
    before = snapshot(root)
    b = bundle(name="web", units=[{"file": "srv-data.mount",
                                   "text": "[Mount]\nWhat=/dev/sdc1\nWhere=/srv/data\n"}])
    refused(ops("deploy", b), "/srv/data", "srv-data.mount", "shadow")
    assert diff(before, snapshot(root)) == []


def test_a_symlinked_system_alias_is_refused(ops, root, bundle):
    # the OS's alias names are symlinks, in /etc/systemd/system as well
    system_unit(root, "usr/lib/systemd/system", "systemd-logind.service")
    ud = unit_dir(root)
    ud.mkdir(parents=True)
    os.symlink("/usr/lib/systemd/system/systemd-logind.service",
               str(ud / "dbus-org.freedesktop.login1.service"))
    before = snapshot(root)
    b = bundle(name="web", units=[{"file": "dbus-org.freedesktop.login1.service"}])
    refused(ops("deploy", b), "dbus-org.freedesktop.login1.service", "belongs to no version")
    assert diff(before, snapshot(root)) == []


@pytest.mark.parametrize("alias", ["systemd-logind.service", "dbus-org.freedesktop.login1.service",
                                   "display-manager.service"])
def test_an_alias_of_a_system_unit_is_refused(ops, root, bundle, alias):
    system_unit(root, "lib/systemd/system", alias)
    before = snapshot(root)
    text = unit_text("web-api.service") + "Alias=web.service %s\n" % alias
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True, "text": text}])
    refused(ops("deploy", b), alias, "Alias=%s" % alias, "shadow")
    assert diff(before, snapshot(root)) == []


def test_an_alias_onto_an_administrators_file_is_refused(ops, root, bundle):
    ud = unit_dir(root)
    ud.mkdir(parents=True)
    (ud / "web.service").write_text("[Service]\nExecStart=/bin/admin\n")
    before = snapshot(root)
    text = unit_text("web-api.service") + "Alias=web.service\n"
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True, "text": text}])
    refused(ops("deploy", b), str(ud / "web.service"), "Alias=web.service")
    assert diff(before, snapshot(root)) == []


def test_an_alias_of_the_pods_own_is_deployed_and_redeployed(ops, root, bundle):
    text = unit_text("web-api.service") + "Alias=web.service\n"
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True, "text": text}])
    assert ops("deploy", b).code == 0
    assert os.path.islink(str(unit_dir(root) / "web.service"))
    # the alias link ops's enable made is its own: a converge or a re-deploy is not refused
    os.unlink(str(unit_dir(root) / "multi-user.target.wants/web-api.service"))
    r = ops("deploy", b)
    assert r.code == 0, r
    assert ops("undeploy", "web").code == 0
    assert not os.path.lexists(str(unit_dir(root) / "web.service"))


def test_a_template_alias_is_checked_per_instance(ops, root, bundle):
    system_unit(root, "usr/lib/systemd/system", "getty@tty1.service")
    before = snapshot(root)
    text = unit_text("web-w@.service") + "Alias=getty@.service\n"
    b = bundle(name="web", units=[{"file": "web-w@.service", "start": True,
                                   "instances": ["tty1"], "text": text}])
    refused(ops("deploy", b), "getty@tty1.service", "shadow")
    assert diff(before, snapshot(root)) == []


def test_also_may_name_only_the_pods_units(ops, root, bundle):
    system_unit(root, "lib/systemd/system", "ssh.service")
    before = snapshot(root)
    text = unit_text("web-api.service") + "Also=web-tool.service ssh.service\n"
    b = web(bundle, units=[{"file": "web-api.service", "start": True, "text": text},
                           {"file": "web-tool.service"}])
    line = refused(ops("deploy", b), "Also=ssh.service", "not a unit of pod web")
    assert line.startswith("ops: error: web-api.service: ")
    assert diff(before, snapshot(root)) == []
    text = unit_text("web-api.service") + "Also=web-tool.service\n"
    ok = web(bundle, version=2, units=[{"file": "web-api.service", "start": True, "text": text},
                                       {"file": "web-tool.service"}])
    assert ops("deploy", ok).code == 0


def test_also_may_not_name_a_bare_template(ops, root, bundle):
    text = unit_text("web-api.service") + "Also=web-w@.service\n"
    before = snapshot(root)
    b = web(bundle, units=[{"file": "web-api.service", "start": True, "text": text},
                           {"file": "web-w@.service", "instances": [1],
                            "text": unit_text("web-w@.service") + "DefaultInstance=other\n"}])
    refused(ops("deploy", b), "Also=web-w@.service", "DefaultInstance")
    assert diff(before, snapshot(root)) == []


def test_a_specifier_in_alias_is_refused(ops, root, bundle):
    text = unit_text("web-api.service") + "Alias=%p-other.service\n"
    before = snapshot(root)
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True, "text": text}])
    refused(ops("deploy", b), "Alias=%p-other.service", "specifiers")
    assert diff(before, snapshot(root)) == []


@pytest.mark.parametrize("system, template, instances", [
    ("getty@.service", "getty@.service", ["tty9"]),              # the system's template
    ("web-w@special.service", "web-w@.service", ["a", "special"]),  # a file for one instance
])
def test_a_template_or_instance_the_system_has_is_refused(ops, root, bundle, system, template,
                                                          instances):
    system_unit(root, "usr/lib/systemd/system", system)
    before = snapshot(root)
    b = bundle(name="web", units=[{"file": template, "start": True, "instances": instances}])
    refused(ops("deploy", b), system, "shadow")
    assert diff(before, snapshot(root)) == []


def test_a_system_unit_that_appears_later_stops_a_redeploy(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    assert ops("undeploy", "web").code == 0
    system_unit(root, "usr/local/lib/systemd/system", "web-api.service")
    before = snapshot(root)
    refused(ops("redeploy", "web:1"), "web-api.service", "shadow")
    assert diff(before, snapshot(root)) == []


def test_an_administrators_drop_in_directory_is_left_alone(ops, root, bundle):
    d = unit_dir(root) / "web-api.service.d"
    d.mkdir(parents=True)
    (d / "override.conf").write_text("[Service]\nNice=5\n")
    assert ops("deploy", web(bundle)).code == 0
    assert (d / "50-ops.conf").is_file()
    assert ops("undeploy", "web").code == 0
    assert sorted(os.listdir(str(d))) == ["override.conf"]
    assert (d / "override.conf").read_text() == "[Service]\nNice=5\n"


def test_an_administrators_50_ops_conf_is_refused(ops, root, bundle):
    d = unit_dir(root) / "web-api.service.d"
    d.mkdir(parents=True)
    (d / "50-ops.conf").write_text("[Service]\nEnvironment=MINE=1\n")
    before = snapshot(root)
    refused(ops("deploy", web(bundle)), str(d / "50-ops.conf"), "drop-in")
    assert diff(before, snapshot(root)) == []


# -- 2. ownership by content -------------------------------------------------------------

ADMIN = "[Service]\nExecStart=/usr/local/bin/admins-own\n"


def test_redeploy_does_not_overwrite_an_administrators_file(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    assert ops("undeploy", "web").code == 0
    (unit_dir(root) / "web-api.service").write_text(ADMIN)
    before = snapshot(root)
    refused(ops("redeploy", "web:1"), str(unit_dir(root) / "web-api.service"),
            "belongs to no version of pod web", "does not overwrite")
    assert diff(before, snapshot(root)) == []
    # nor does a deploy of the same bundle
    refused(ops("deploy", web(bundle)), "web-api.service")
    assert (unit_dir(root) / "web-api.service").read_text() == ADMIN


def test_undeploy_does_not_delete_an_administrators_file(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    (unit_dir(root) / "web-tool.service").write_text(ADMIN)
    before = snapshot(root)
    refused(ops("undeploy", "web"), str(unit_dir(root) / "web-tool.service"),
            "does not remove")
    assert diff(before, snapshot(root)) == []
    refused(ops("undeploy", "web", "--remove"), "web-tool.service")
    assert diff(before, snapshot(root)) == []
    # moved away, the undeploy goes through
    (unit_dir(root) / "web-tool.service").unlink()
    assert ops("undeploy", "web").code == 0
    assert current_link(root, "web") is None
    assert wants(root) == []


def test_deploy_does_not_delete_an_administrators_file_a_new_version_drops(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    (unit_dir(root) / "web-tool.service").write_text(ADMIN)
    before = snapshot(root)
    v2 = web(bundle, version=2, units=[{"file": "web-api.service", "start": True}])
    refused(ops("deploy", v2), str(unit_dir(root) / "web-tool.service"), "does not remove")
    assert diff(before, snapshot(root)) == []


def test_a_drop_in_changed_by_hand_is_not_overwritten(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    dropin = unit_dir(root) / "web-api.service.d/50-ops.conf"
    dropin.write_text(dropin.read_text() + "Environment=EXTRA=1\n")
    before = snapshot(root)
    refused(ops("deploy", web(bundle, version=2)), str(dropin), "drop-in")
    assert diff(before, snapshot(root)) == []


def test_a_file_of_an_older_version_is_the_pods_own(ops, root, bundle):
    # v1's web-api.service is installed after v2 is current (say, by hand from the store):
    # it is what ops installed for the pod, so v2's redeploy may replace it
    v1 = web(bundle)
    assert ops("deploy", v1).code == 0
    v2 = web(bundle, version=2, units=[{"file": "web-api.service", "start": True,
                                        "text": unit_text("web-api.service", body="two")}])
    assert ops("deploy", v2).code == 0
    shutil.copy(str(root / "etc/ops/pods/web/1/units/web-api.service"),
                str(unit_dir(root) / "web-api.service"))
    r = ops("deploy", v2)
    assert r.code == 0, r
    assert (unit_dir(root) / "web-api.service").read_bytes() == \
        (v2.dir / "units/web-api.service").read_bytes()


def test_what_ops_installed_stays_its_own_when_the_stored_copy_changes(ops, root, bundle):
    # state.json recorded the digest of what was staged (and so installed)
    assert ops("deploy", web(bundle)).code == 0
    digests = json.loads((root / "etc/ops/pods/web/1/state.json").read_text())["units"]
    import hashlib
    installed = (unit_dir(root) / "web-api.service").read_bytes()
    assert digests["web-api.service"] == "sha256:" + hashlib.sha256(installed).hexdigest()
    (root / "etc/ops/pods/web/1/units/web-api.service").write_text(ADMIN)
    r = ops("undeploy", "web")
    assert r.code == 0, r
    assert not os.path.lexists(str(unit_dir(root) / "web-api.service"))
    assert wants(root) == []


def test_recovery_leaves_an_administrators_file_in_place(ops, root, bundle):
    # an interrupted first deploy of v1, then the administrator put their own file there
    assert ops("deploy", web(bundle)).code == 0
    admins = ADMIN + "\n[Install]\nWantedBy=multi-user.target\n"
    (unit_dir(root) / "web-tool.service").write_text(admins)
    os.symlink("/etc/systemd/system/web-tool.service",
               str(unit_dir(root) / "multi-user.target.wants/web-tool.service"))
    jdir = root / "var/lib/ops/journal"
    jdir.mkdir(parents=True, exist_ok=True)
    (jdir / "web.json").write_text(json.dumps({"pod": "web", "from": None, "to": 1,
                                               "command": "deploy"}))
    r = ops("undeploy", "other")          # any mutating command recovers
    assert r.code == 0, r
    assert "web-tool.service is not what ops installed" in r.err
    assert (unit_dir(root) / "web-tool.service").read_text() == admins
    assert not (unit_dir(root) / "web-api.service").exists()
    assert current_link(root, "web") is None
    # the pod's unit is disabled, the administrator's stays enabled
    assert wants(root) == ["web-tool.service"]


# -- 3. batching systemctl calls ------------------------------------------------------------

def systemctl_calls(r, verb):
    return [l.split() for l in r.err.splitlines()
            if l.startswith("+ systemctl ") and verb in l.split()[1:4]]


def test_batches_fit_the_limit_and_keep_every_unit():
    from ops.systemd import batches
    names = ["web-w@%d.service" % i for i in range(5000)]
    fixed = ["systemctl", "--root=/x", "enable", "--no-reload", "--"]
    parts = batches(fixed, names, limit=os.sysconf("SC_ARG_MAX"))
    assert [n for p in parts for n in p] == names
    env = sum(len(k) + len(v) + 2 + 8 for k, v in os.environb.items())
    for limit in (env + 8192, env + 20000, env + 100000):
        parts = batches(fixed, names, limit=limit)
        assert len(parts) > 1
        assert [n for p in parts for n in p] == names
        for p in parts:
            assert env + sum(len(a) + 1 + 8 for a in fixed + p) <= limit


def test_a_small_pod_is_one_call_per_verb(ops, root, bundle):
    b = bundle(name="web", units=[{"file": "web-w@.service", "start": True, "instances": 200}])
    r = ops("-v", "deploy", b)
    assert r.code == 0, r
    assert len(systemctl_calls(r, "enable")) == 1


@pytest.mark.parametrize("count", [300])
def test_many_instances_deploy_and_undeploy_in_batches(ops, root, bundle, monkeypatch, count):
    env = sum(len(k) + len(v) + 2 + 8 for k, v in os.environb.items())
    limit = env + 4096 + 3000           # room for about a hundred names a call
    monkeypatch.setenv("OPS_ARG_MAX", str(limit + len("OPS_ARG_MAX") + 2 + 8 + 10))
    b = bundle(name="web", units=[{"file": "web-w@.service", "start": True,
                                   "instances": count}])
    r = ops("-v", "deploy", b)
    assert r.code == 0, r
    enables = systemctl_calls(r, "enable")
    assert len(enables) > count // 200
    assert sorted(n for c in enables for n in c[c.index("--") + 1:]) == \
        sorted("web-w@%d.service" % i for i in range(count))
    assert len(wants(root)) == count
    r = ops("-v", "undeploy", "web", "--remove")
    assert r.code == 0, r
    assert len(systemctl_calls(r, "disable")) > 1
    assert wants(root) == []
    assert not (unit_dir(root) / "web-w@.service").exists()


def test_the_batches_of_the_largest_pod_fit_what_the_os_accepts():
    # 100000 instances (the most check accepts): one command line would be refused
    # by the kernel (E2BIG), the batches are not
    import subprocess
    names = ["web-worker@%d.service" % i for i in range(100000)]
    fixed = ["/bin/true", "--root=/var/tmp/some/root", "enable", "--no-reload", "--"]
    with pytest.raises(OSError) as e:
        subprocess.run(fixed + names)
    assert e.value.errno == 7          # E2BIG
    from ops.systemd import batches
    parts = batches(fixed, names)
    assert len(parts) > 1
    assert [n for p in parts for n in p] == names
    for p in parts:
        assert subprocess.run(fixed + p).returncode == 0


def test_a_command_the_os_refuses_to_run_is_one_error_line(ops, root, bundle, monkeypatch):
    # the limit set far above what the OS allows: systemctl cannot even be started
    monkeypatch.setenv("OPS_ARG_MAX", str(1 << 40))
    b = bundle(name="web", units=[{"file": "web-w@.service", "start": True,
                                   "instances": [("x" * 190) + str(i) for i in range(20000)]}])
    r = ops("check", b)
    assert r.code == 0, r
    r = ops("deploy", b)
    assert r.code in (1, 4), r
    assert "systemctl enable: cannot run: Argument list too long" in r.err
    assert "Traceback" not in r.err and "unexpected" not in r.err


# -- 4. a stored version that lost its pod.json ------------------------------------------------

def pods_dir(root):
    return root / "etc/ops/pods"


def test_undeploy_remove_takes_down_a_version_without_pod_json(ops, root, bundle):
    b = bundle(name="web", units=[{"file": "web-api.service", "start": True},
                                  {"file": "web-w@.service", "start": True, "instances": 3}])
    assert ops("deploy", b).code == 0
    assert len(wants(root)) == 4
    (pods_dir(root) / "web/1/pod.json").unlink()
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert r.last == "undeploy web 1: changed"
    assert wants(root) == []
    assert not os.path.lexists(str(unit_dir(root) / "web-api.service"))
    assert not os.path.lexists(str(unit_dir(root) / "web-w@.service"))
    assert current_link(root, "web") is None
    assert not (pods_dir(root) / "web").exists()


def test_undeploy_without_remove_keeps_the_damaged_version_then_remove_deletes_it(ops, root,
                                                                                    bundle):
    assert ops("deploy", web(bundle)).code == 0
    (pods_dir(root) / "web/1/pod.json").unlink()
    r = ops("undeploy", "web")
    assert r.code == 0, r
    assert wants(root) == [] and current_link(root, "web") is None
    assert (pods_dir(root) / "web/1/units/web-api.service").is_file()
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert not (pods_dir(root) / "web").exists()


def test_plain_units_are_known_from_the_units_directory(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    (pods_dir(root) / "web/1/pod.json").unlink()
    (pods_dir(root) / "web/1/manifest.json").unlink()
    r = ops("undeploy", "web", "--remove")
    assert r.code == 0, r
    assert wants(root) == []
    assert not os.path.lexists(str(unit_dir(root) / "web-api.service"))
    assert not (pods_dir(root) / "web").exists()


def test_unknown_instances_are_refused_and_the_store_kept(ops, root, bundle):
    b = bundle(name="web", units=[{"file": "web-w@.service", "start": True, "instances": 2}])
    assert ops("deploy", b).code == 0
    (pods_dir(root) / "web/1/pod.json").unlink()
    (pods_dir(root) / "web/1/manifest.json").unlink()
    before = snapshot(root)
    refused(ops("undeploy", "web", "--remove"), "pod.json", "instances of web-w@.service")
    assert diff(before, snapshot(root)) == []


def test_a_deploy_over_a_version_without_pod_json_is_refused(ops, root, bundle):
    assert ops("deploy", web(bundle)).code == 0
    (pods_dir(root) / "web/1/pod.json").unlink()
    before = snapshot(root)
    refused(ops("deploy", web(bundle, version=2)), "pod.json", "ops undeploy web")
    assert diff(before, snapshot(root)) == []


# -- 5. unit names systemd refuses ------------------------------------------------------------

BAD_NAMES = [
    ".service", "..service", ".hidden.service", ".ops-tmp-1-web.service", "@.service",
    "@x.service", "a@b.service", "a b.service", "\u00e4.service",
    "x@.mount", "x@.automount", "x@.slice", "-a.mount", "a-.mount", "a--b.mount",
    "a-..-b.mount", "a-.-b.automount", "a--b.slice", "-a.slice", "a-.slice",
    "a" * 248 + ".service",
    # 255 and 254 characters: systemd takes them, but a drop-in directory NAME.d cannot be made
    "a" * 247 + ".service", "a" * 245 + "@.service",
]


def check_units(tmp_path, name, entry=None, body=None):
    d = tmp_path / "b"
    d.mkdir(exist_ok=True)
    (d / "u").mkdir(exist_ok=True)
    if len(name) < 250 and body is not None:
        (d / "u" / name).write_text(body)
        entry = dict(entry or {}, **{"unit-file": "u/" + name})
    elif len(name) < 250:
        body = "[Unit]\n"
        if name.endswith(".service"):     # a service systemd would run: verify refuses one without
            body += "[Service]\nExecStart=/bin/true\n"
        if name.endswith(".socket"):
            body += "[Socket]\nListenStream=8080\n"
        if name.endswith(".mount") and name != "-.mount":     # systemd-analyze verify wants What= and Where=
            body += "[Mount]\nWhat=tmpfs\nWhere=/%s\n" % name[:-len(".mount")].replace("-", "/")
        (d / "u" / name).write_text(body)
        entry = dict(entry or {}, **{"unit-file": "u/" + name})
    else:           # longer than a file name may be: only a URI can name it
        entry = dict(entry or {}, **{"unit-file": "https://example.com/" + name})
    ops_doc = {"name": "p", "version": 1, "systemd-units": [entry]}
    (d / "pod.json").write_text(json.dumps({
        "acKind": "PodManifest", "acVersion": "0.8.11",
        "annotations": [{"name": "ops", "value": json.dumps(ops_doc)}]}))
    from conftest import run_inprocess
    return run_inprocess(["check", str(d)])


@pytest.mark.parametrize("name", BAD_NAMES)
def test_names_systemd_refuses_are_refused_by_check(tmp_path, name):
    entry = {"instances": [1]} if name.rsplit(".", 1)[0].endswith("@") else None
    refused(check_units(tmp_path, name, entry), "pod.json: ops.systemd-units[0].unit-file")


@pytest.mark.parametrize("name", ["-.slice", "a-b.slice", "var-lib-x.mount", "srv.automount",
                                  "a.b@.service", "a:b_c-d.service", "-.mount",
                                  "a\\x2d.service", "web\\x2dapi@.service", "a\\x2fb.socket",
                                  "a" * 245 + ".service", "a" * 247 + ".socket"])
def test_names_systemd_accepts_pass_check(tmp_path, name):
    entry = {"instances": [1]} if "@" in name else None
    r = check_units(tmp_path, name, entry)
    assert r.code == 0, r


def test_an_instance_making_the_name_too_long_is_refused(tmp_path):
    name = "a" * 240 + "@.service"
    assert check_units(tmp_path, name, {"instances": ["b" * 6]}).code == 0
    line = refused(check_units(tmp_path, name, {"instances": ["b" * 6, "c" * 7]}),
                   "pod.json: ops.systemd-units[0].instances", "255")
    assert "c" * 7 in line


def test_the_longest_names_check_accepts_are_deployed(ops, root, bundle):
    # a 253-character service (its drop-in directory takes 255), a 255-character socket and an
    # instance making 255: every temporary name ops writes them through fits in a file name
    service, socket, template = "s" * 245 + ".service", "k" * 248 + ".socket", "t" * 240 + "@.service"
    b = bundle(name="web", units=[{"file": service, "start": True}, {"file": socket},
                                  {"file": template, "start": True, "instances": ["i" * 6]}])
    assert ops("check", b).code == 0
    r = ops("deploy", b)
    assert r.code == 0, r
    instance = template.replace("@", "@" + "i" * 6)
    assert len(instance) == len(socket) == 255
    for name in (service, socket, template):
        assert (unit_dir(root) / name).is_file() and (pods_dir(root) / "web/1/units" / name).is_file()
    assert (unit_dir(root) / (service + ".d") / "50-ops.conf").is_file()
    assert (unit_dir(root) / "multi-user.target.wants" / instance).is_symlink()


def test_a_list_of_the_most_instances_is_checked_quickly(tmp_path):
    import time
    names = ["i%d" % i for i in range(100000)]
    started = time.monotonic()
    r = check_units(tmp_path, "web-w@.service", {"instances": names})
    assert r.code == 0, r
    assert time.monotonic() - started < 30      # was quadratic: a quarter of an hour
    refused(check_units(tmp_path, "web-w@.service", {"instances": names + ["one-more"]}),
            "pod.json: ops.systemd-units[0].instances", "more than 100000")


def test_a_unit_file_changed_by_hand_is_not_converged_over(ops, root, bundle):
    b = web(bundle)
    assert ops("deploy", b).code == 0
    (unit_dir(root) / "web-api.service").write_text(ADMIN)
    before = snapshot(root)
    refused(ops("deploy", b), str(unit_dir(root) / "web-api.service"), "does not overwrite")
    refused(ops("redeploy", "web:1"), "web-api.service")
    assert diff(before, snapshot(root)) == []


def test_a_downloaded_unit_with_an_alias_of_a_system_unit_is_refused(ops, root, tmp_path,
                                                                       no_proxy):
    # its [Install] is known only once downloaded: refused while staging, what was staged removed
    from tests.support.servers import body, serve
    system_unit(root, "lib/systemd/system", "systemd-logind.service")
    text = unit_text("web-api.service") + "Alias=systemd-logind.service\n"
    before = snapshot(root)
    with serve({"/web-api.service": body(text.encode())}, tls=None) as srv:
        d = tmp_path / "remote"
        d.mkdir()
        ops_doc = {"name": "web", "version": 1, "systemd-units": [
            {"unit-file": srv.url("/web-api.service"), "start": True}]}
        (d / "pod.json").write_text(json.dumps({
            "acKind": "PodManifest", "acVersion": "0.8.11",
            "annotations": [{"name": "ops", "value": json.dumps(ops_doc)}]}))
        r = ops("deploy", d)
    refused(r, "systemd-logind.service", "Alias=systemd-logind.service", "shadow")
    # only ops's (empty) download directory is left
    assert diff(before, snapshot(root)) in ([], ["added var/lib/ops/tmp"])
    assert os.listdir(str(root / "var/lib/ops/tmp")) == []


@pytest.mark.parametrize("name", ["a:b.service", "a\\x2d.service"])
def test_a_unit_systemd_refuses_is_refused_whatever_its_name_holds(tmp_path, name):
    """systemd-analyze names the unit before a ':'; a name may hold one itself."""
    assert shutil.which("systemd-analyze"), "make test installs systemd"
    refused(check_units(tmp_path, name, body="[Unit]\nDescription=no command\n"),
            "pod.json: ops.systemd-units[0].unit-file", name + ": Service has no ExecStart=")
