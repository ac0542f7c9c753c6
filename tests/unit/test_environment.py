"""The same behaviour without a TTY, without HOME, under `env -i`, and with a
non-UTF-8 locale (SPEC §3): a bare environment is what cron and some
configuration-management runs give ops."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, Run, current_link, snapshot

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

BARE_ENVS = {
    "env -i": {},
    "C locale, no HOME": {"LC_ALL": "C", "LANG": "C"},
    "latin-1 locale, no coercion": {"LC_ALL": "en_US.ISO-8859-1", "LANG": "en_US.ISO-8859-1",
                                    "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"},
}


def bare_ops(argv, extra):
    """`env -i` plus only PYTHONPATH (and ``extra``): no PATH, HOME or TERM;
    stdin, stdout and stderr are not terminals."""
    env = {"PYTHONPATH": str(REPO)}
    env.update(extra)
    proc = subprocess.run([sys.executable, "-m", "ops"] + [os.fsencode(str(a)) for a in argv],
                          env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=60)
    return Run(proc.returncode, proc.stdout.decode("utf-8", "replace"),
               proc.stderr.decode("utf-8", "replace"), argv)


@pytest.mark.parametrize("extra", list(BARE_ENVS.values()), ids=list(BARE_ENVS))
def test_deploy_in_a_bare_environment(root, bundle, extra):
    b = bundle(name="bare", units=[{"file": "bare-a.service", "start": True}],
               volumes={"data": {"x.txt": "x"}})
    r = bare_ops(["--root", root, "deploy", b], extra)
    assert r.code == 0, r
    assert r.lines == ["deploy bare 1: changed"]
    assert "Traceback" not in r.err
    assert current_link(root, "bare") == "../pods/bare/1"
    assert (root / "var/lib/ops/volumes/bare/1/data/x.txt").read_text() == "x"
    r = bare_ops(["--root", root, "deploy", b], extra)
    assert (r.code, r.lines) == (0, ["deploy bare 1: unchanged"]), r


@pytest.mark.parametrize("extra", list(BARE_ENVS.values()), ids=list(BARE_ENVS))
def test_error_naming_a_non_utf8_path_is_one_line(root, tmp_path, extra):
    odd = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9")   # latin-1 bytes in a name
    os.mkdir(odd)
    before = snapshot(root)
    r = bare_ops(["--root", root, "check", os.fsdecode(odd)], extra)
    assert r.code == 2, r
    lines = r.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ops: error: "), r
    assert "pod.json" in lines[0] and "Traceback" not in r.err
    r = bare_ops(["--root", root, "--json", "deploy", os.fsdecode(odd)], extra)
    assert r.code == 2 and r.json()["ok"] is False, r
    assert snapshot(root) == before


def test_systemds_variables_in_the_callers_environment_do_not_reach_systemctl(ops, root, bundle,
                                                                              monkeypatch):
    # SYSTEMD_UNIT_PATH would have systemctl look for units elsewhere than
    # where ops installs them: enable fails, and so would the rollback
    monkeypatch.setenv("SYSTEMD_UNIT_PATH", "/nonexistent")
    monkeypatch.setenv("SYSTEMD_OFFLINE", "0")
    b1 = bundle(name="web", version=1)
    b2 = bundle(name="web", version=2)
    assert ops("deploy", b1).code == 0
    r = ops("deploy", b2)
    assert r.code == 0, r
    assert os.path.islink(str(root / "etc/systemd/system/multi-user.target.wants/web-main.service"))
