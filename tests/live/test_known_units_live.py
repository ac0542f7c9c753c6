"""A pod may not install a unit that systemd already knows, on a real systemd, whether or not
a file defines it: a slice systemd made on demand for a transient unit (no file: only
`systemctl show` knows it), the transient unit itself (/run/systemd/transient), a mount its
fstab generator wrote (/run/systemd/generator) and a unit built into systemd (-.slice)."""

import pytest

from .conftest import copy_bundle, describe, exists, make_bundle, ops, show, systemctl, unit_files

SLEEP = "[Unit]\nDescription=known: %s\n\n[Service]\nExecStart=/bin/sleep infinity\n"
SLICE = "[Unit]\nDescription=known: a slice\n\n[Slice]\nCPUWeight=50\n"
MOUNT = "[Unit]\nDescription=known: a mount\n\n[Mount]\nWhat=tmpfs\nWhere=/srv/knowngen\nType=tmpfs\n"
CASES = {
    "ondemand": ("knownod.slice", SLICE),
    "transient": ("knownod-t.service", SLEEP % "transient"),
    "generated": ("srv-knowngen.mount", MOUNT),
    "builtin": ("-.slice", SLICE),
}


@pytest.fixture(scope="module")
def known(container, tmp_path_factory):
    """A transient service in a slice systemd creates for it, and an fstab line the generator
    turns into a mount unit."""
    c = container
    d = tmp_path_factory.mktemp("known")
    for key, (unit, text) in CASES.items():
        path = make_bundle(str(d / key), "known" + key, 1, units=[(unit, text, False, None)])
        copy_bundle(c, path, "/root/known/" + key)
    r = c.run(["systemd-run", "--unit=knownod-t.service", "--slice=knownod.slice",
               "/bin/sleep", "infinity"])
    assert r.returncode == 0, describe(r)
    with open(c.path("/etc/fstab"), "a") as f:
        f.write("tmpfs /srv/knowngen tmpfs defaults,noauto 0 0\n")
    assert systemctl(c, "daemon-reload").returncode == 0
    yield c
    systemctl(c, "stop", "knownod-t.service")
    with open(c.path("/etc/fstab")) as f:
        kept = [l for l in f if "knowngen" not in l]
    with open(c.path("/etc/fstab"), "w") as f:
        f.writelines(kept)
    systemctl(c, "daemon-reload")


def test_systemd_knows_the_names_as_the_cases_say(known):
    c = known
    # no file defines the on-demand slice or -.slice: only asking systemd finds them
    assert show(c, "knownod.slice", "LoadState") == "loaded"
    assert show(c, "knownod.slice", "FragmentPath") == ""
    assert show(c, "-.slice", "FragmentPath") == ""
    assert show(c, "knownod-t.service", "FragmentPath") == "/run/systemd/transient/knownod-t.service"
    assert show(c, "srv-knowngen.mount", "FragmentPath") == \
        "/run/systemd/generator/srv-knowngen.mount"


@pytest.mark.parametrize("key", sorted(CASES))
def test_a_unit_systemd_knows_without_a_file_of_its_own_is_refused(known, key):
    c = known
    unit = CASES[key][0]
    before = unit_files(c, "")
    r = ops(c, "deploy", "/root/known/" + key)
    assert r.returncode == 2, describe(r, "expected exit 2")
    errors = [l for l in r.stderr.splitlines() if l.startswith("ops: error: ")]
    assert len(errors) == 1 and unit in errors[0], describe(r)
    if key == "ondemand":
        assert "systemd itself (LoadState=loaded)" in errors[0], describe(r)
    assert unit_files(c, "") == before
    assert not exists(c, "/etc/systemd/system/" + unit)
    assert not exists(c, "/etc/ops/pods/known" + key)
    if key in ("ondemand", "transient"):
        assert show(c, "knownod-t.service", "ActiveState") == "active"
