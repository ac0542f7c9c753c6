"""ops.units and ops.ownership on their own: the drop-in text, unit digests,
installing and removing a unit's files, the names a unit set enables and
starts, and what under /etc/systemd/system is a pod's own."""

import os

import pytest

from conftest import dropin_env, unit_text
from ops import store
from ops.layout import Layout
from ops.ownership import Owner, install_names
from ops.records import Artifact, UnitSpec
from ops.units import (all_units, digest, dropin_text, install_unit, remove_unit,
                       start_units, unit_digests)


@pytest.fixture
def layout(root):
    return Layout(str(root))


def stored(layout, name, version, units, record=True):
    """A stored version holding ``units`` ({file name: text}); its state.json
    records their digests (as staging does) when ``record``."""
    d = layout.version_dir(name, version)
    os.makedirs(os.path.join(d, "units"))
    with open(os.path.join(d, "pod.json"), "w") as f:
        f.write("{}")
    for n, text in units.items():
        with open(os.path.join(d, "units", n), "w") as f:
            f.write(text)
    sv = store.get(layout, name, version)
    if record:
        sv.write_state(units=unit_digests(sv.units_dir))
    return sv


def spec(name, start=True, instances=None):
    return UnitSpec(name, Artifact(name), start, instances)


# -- ops.units ---------------------------------------------------------------------

def test_dropin_text_gives_host_paths_without_root(root, layout):
    text = dropin_text(layout, "web", 3, "web-a.service")
    assert str(root) not in text
    assert text.splitlines()[:2] == [
        "# Written by ops for pod web version 3; ops replaces it on every deploy.",
        "[Service]"]
    assert text.splitlines()[2] == (
        'Environment="POD_NAME=web" "POD_VERSION=3" '
        '"POD_MANIFEST=/etc/ops/pods/web/3/manifest.json" '
        '"POD_VOLUMES=/var/lib/ops/volumes/web/3"')


@pytest.mark.parametrize("unit", ["web.timer", "web.socket", "web.path", "web.target"])
def test_only_a_service_gets_a_dropin(layout, unit):
    assert dropin_text(layout, "web", 1, unit) is None


def test_unit_digests_are_sha256_of_each_stored_file(layout):
    sv = stored(layout, "web", 1, {"b.service": "B\n", "a.timer": "A\n"}, record=False)
    assert unit_digests(sv.units_dir) == {
        "a.timer": "sha256:06f961b802bc46ee168555f066d28f4f0e9afdf3f88174c1ee6f9de004fc30a0",
        "b.service": digest(b"B\n")}
    assert digest(b"B\n") != digest(b"B")


def test_install_and_remove_unit_on_disk(root, layout):
    sv = stored(layout, "web", 2, {"web-a.service": "[Service]\nExecStart=/bin/true\n",
                                   "web-t.timer": "[Timer]\n"})
    install_unit(layout, sv, "web-a.service")
    install_unit(layout, sv, "web-t.timer")
    ud = root / "etc/systemd/system"
    assert (ud / "web-a.service").read_text() == "[Service]\nExecStart=/bin/true\n"
    assert dropin_env(root, "web-a.service") == {
        "POD_NAME": "web", "POD_VERSION": "2",
        "POD_MANIFEST": "/etc/ops/pods/web/2/manifest.json",
        "POD_VOLUMES": "/var/lib/ops/volumes/web/2"}
    assert not (ud / "web-t.timer.d").exists()
    assert oct((ud / "web-a.service").stat().st_mode & 0o777) == "0o644"
    # another drop-in of the administrator's keeps the directory
    (ud / "web-a.service.d/90-admin.conf").write_text("[Service]\nNice=5\n")
    remove_unit(layout, "web-a.service")
    assert not (ud / "web-a.service").exists()
    assert os.listdir(str(ud / "web-a.service.d")) == ["90-admin.conf"]
    (ud / "web-a.service.d/90-admin.conf").unlink()
    install_unit(layout, sv, "web-a.service")
    remove_unit(layout, "web-a.service")
    remove_unit(layout, "web-t.timer")
    assert sorted(os.listdir(str(ud))) == []
    remove_unit(layout, "web-a.service")       # gone already: no error


def test_start_units_and_all_units_expand_template_instances():
    units = [spec("web-a.service"), spec("web-w@.service", instances=("x", "1")),
             spec("web-tool.service", start=False),
             spec("web-j@.service", start=False, instances=("0",))]
    assert start_units(units) == ("web-a.service", "web-w@x.service", "web-w@1.service")
    assert all_units(units) == ("web-a.service", "web-w@x.service", "web-w@1.service",
                                "web-tool.service", "web-j@0.service")
    assert start_units([]) == () == all_units([])


# -- ops.ownership: Owner ----------------------------------------------------------

A = unit_text("web-a.service", body="v1")
A2 = unit_text("web-a.service", body="v2")


def install(root, name, text):
    p = root / "etc/systemd/system" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_nothing_installed_is_neither_own_nor_foreign(layout):
    stored(layout, "web", 1, {"web-a.service": A})
    owner = Owner(layout, "web")
    assert owner.unit_file("web-a.service") is None
    assert owner.dropin("web-a.service") is None
    assert owner.foreign("web-a.service") is None


def test_own_by_recorded_digest_even_when_no_stored_copy_matches(root, layout):
    sv = stored(layout, "web", 1, {"web-a.service": A})
    install_unit(layout, sv, "web-a.service")
    # the stored copy changed since (a hand edit under /etc/ops): the digest decides
    with open(os.path.join(sv.units_dir, "web-a.service"), "w") as f:
        f.write(A2)
    owner = Owner(layout, "web")
    assert owner.unit_file("web-a.service") is True
    assert owner.foreign("web-a.service") is None


def test_own_by_identical_stored_copy_without_recorded_digests(root, layout):
    stored(layout, "web", 1, {"web-a.service": A}, record=False)
    install(root, "web-a.service", A)
    assert Owner(layout, "web").unit_file("web-a.service") is True


def test_any_version_of_the_pod_makes_a_file_its_own(root, layout):
    stored(layout, "web", 1, {"web-a.service": A})
    stored(layout, "web", 2, {"web-a.service": A2})
    install(root, "web-a.service", A)
    assert Owner(layout, "web").unit_file("web-a.service") is True
    assert Owner(layout, "db").unit_file("web-a.service") is False


def test_an_edited_unit_file_is_foreign(root, layout):
    sv = stored(layout, "web", 1, {"web-a.service": A})
    install_unit(layout, sv, "web-a.service")
    with open(layout.unit_path("web-a.service"), "a") as f:
        f.write("# edited\n")
    owner = Owner(layout, "web")
    assert owner.unit_file("web-a.service") is False
    assert owner.foreign("web-a.service") == layout.unit_path("web-a.service")


def test_an_edited_dropin_is_foreign(root, layout):
    sv = stored(layout, "web", 1, {"web-a.service": A})
    install_unit(layout, sv, "web-a.service")
    assert Owner(layout, "web").dropin("web-a.service") is True
    with open(layout.dropin_path("web-a.service"), "a") as f:
        f.write("Nice=5\n")
    owner = Owner(layout, "web")
    assert owner.unit_file("web-a.service") is True
    assert owner.dropin("web-a.service") is False
    assert owner.foreign("web-a.service") == layout.dropin_path("web-a.service")


def test_a_symlinked_unit_file_is_foreign_unless_an_alias_of_an_own_unit(root, layout):
    stored(layout, "web", 1, {"web-a.service": A})
    ud = root / "etc/systemd/system"
    ud.mkdir(parents=True)
    os.symlink("/etc/systemd/system/web-a.service", str(ud / "web-alias.service"))
    os.symlink("/lib/systemd/system/other.service", str(ud / "web-b.service"))
    owner = Owner(layout, "web")
    assert owner.unit_file("web-alias.service") is True
    assert owner.unit_file("web-b.service") is False


# -- ops.ownership: install_names --------------------------------------------------

def test_install_names_reads_alias_and_also_of_the_install_section_only():
    text = ("[Unit]\nAlias=not-here.service\n"
            "[Install]\nWantedBy=multi-user.target\n"
            "Alias=a1.service a2.service\n"
            "Alias = a3.service\n"
            "# Alias=commented.service\n"
            "; Also=commented.service\n"
            "Also=web-b.service\n")
    assert install_names(text) == ({"a1.service", "a2.service", "a3.service"},
                                   {"web-b.service"})


def test_install_names_joins_continuation_lines():
    text = "[Install]\nAlias=a1.service \\\n  a2.service\nAlso=b.service\\\nc.service\n"
    assert install_names(text) == ({"a1.service", "a2.service"}, {"b.service", "c.service"})


def test_an_empty_assignment_resets_the_list():
    text = "[Install]\nAlias=a1.service\nAlias=\nAlias=a2.service\nAlso=b.service\nAlso=\n"
    assert install_names(text) == ({"a2.service"}, set())


@pytest.mark.parametrize("line", ["Alias=web-%i.service", "Also=%n.socket"])
def test_a_specifier_is_refused(line):
    with pytest.raises(ValueError) as e:
        install_names("[Install]\n%s\n" % line)
    assert str(e.value) == line


def test_a_specifier_outside_install_is_no_concern():
    assert install_names("[Service]\nExecStart=/bin/echo %i\n[Install]\n") == (set(), set())


def test_a_unit_named_by_systemd_escape_is_deployed_and_undeployed(ops, root, bundle):
    name = "web\\x2dapi.service"
    b = bundle(name="web", version=1, units=[{"file": name, "start": True,
                                              "text": unit_text(name, body="v1")}])
    r = ops("deploy", b)
    assert r.code == 0, r
    udir = root / "etc/systemd/system"
    assert (udir / name).is_file() and (udir / (name + ".d") / "50-ops.conf").is_file()
    assert ops("undeploy", "web").code == 0
    assert not (udir / name).exists() and not (udir / (name + ".d")).exists()


@pytest.mark.parametrize("unit", ["system.slice", "-.slice"])
def test_a_unit_systemd_builds_in_is_refused_offline_without_a_file(ops, root, bundle, unit):
    b = bundle(name="web", version=1, units=[{"file": unit, "text": "[Slice]\n"}])
    r = ops("deploy", b)
    assert r.code == 2, r
    assert "systemd already has a unit %s" % unit in r.err
    assert not (root / "etc/systemd/system" / unit).exists()


def fake_systemctl(tmp_path, monkeypatch, known):
    """A systemctl on PATH whose ``show`` says what ``known`` ({unit: (LoadState,
    FragmentPath)}) says, not-found for any other unit; it logs its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text("""#!%s
import json, sys
known = json.loads(%r)
args = sys.argv[1:]
with open(%r, "a") as f:
    f.write(" ".join(args) + "\\n")
units = args[args.index("--") + 1:]
print("\\n\\n".join("Id=%%s\\nLoadState=%%s\\nFragmentPath=%%s" %% ((u,) + tuple(known.get(u, ("not-found", ""))))
                     for u in units))
""" % (__import__("sys").executable, __import__("json").dumps(known), str(tmp_path / "calls")))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bin_dir, os.environ["PATH"]))
    return tmp_path / "calls"


def test_online_a_unit_systemd_has_without_a_file_is_refused(tmp_path, monkeypatch):
    from ops.errors import ConflictError
    from ops.ownership import check_conflicts
    from ops.records import Artifact, UnitSpec
    calls = fake_systemctl(tmp_path, monkeypatch, {
        "opsfake-built-in.service": ("loaded", ""),
        "opsfake-generated@1.service": ("loaded", "/run/systemd/generator/opsfake-generated@1.service"),
        "opsfake-mine.service": ("loaded", "/etc/systemd/system/opsfake-mine.service")})
    layout = Layout("/")
    mine = UnitSpec("opsfake-mine.service", Artifact("x"), True, None)
    check_conflicts(layout, "opsfake", [mine], lambda u: None)     # its own file: no conflict
    for unit in (UnitSpec("opsfake-built-in.service", Artifact("x"), True, None),
                 UnitSpec("opsfake-generated@.service", Artifact("x"), True, ("0", "1"))):
        with pytest.raises(ConflictError) as e:
            check_conflicts(layout, "opsfake", [mine, unit], lambda u: None)
        assert "systemd already has a unit opsfake-" in str(e.value.message)
    lines = calls.read_text().splitlines()
    assert len(lines) == 3 and all(l.startswith("show -p Id -p LoadState -p FragmentPath --")
                                   for l in lines)
