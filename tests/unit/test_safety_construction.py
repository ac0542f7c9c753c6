"""Guarantees that hold for every path through ops: what it reads from the
store, the environment and a bundle is checked where it is read."""

import json
import os

import pytest

from conftest import diff, snapshot, state, unit_dir, unit_text


def web(bundle, version, body="v"):
    return bundle(name="web", version=version,
                  units=[{"file": "web-api.service", "start": True,
                          "text": unit_text("web-api.service", body=body)}])


# -- list NAME:VERSION ---------------------------------------------------------

def test_list_of_a_version_is_refused_saying_list_takes_a_pod_name(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    r = ops("list", "web:1")
    assert r.code == 2, r
    assert "list takes a pod name" in r.err and "ops list web" in r.err
    r = ops("--json", "list", "web:1")
    assert r.code == 2 and json.loads(r.out)["ok"] is False


# -- a stored version's state.json missing or unreadable ------------------------

@pytest.mark.parametrize("damage", ["missing", "garbage", "deep"])
def test_a_missing_state_json_is_named_not_called_different_content(ops, root, bundle, damage):
    b = web(bundle, 1)
    assert ops("deploy", b).code == 0
    p = root / "etc/ops/pods/web/1/state.json"
    if damage == "missing":
        p.unlink()
    elif damage == "garbage":
        p.write_bytes(b"{not json")
    else:
        p.write_text("[" * 100000 + "]" * 100000)
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert "different content" not in r.err
    assert str(p) in r.err and "undeploy web:1 --remove" in r.err
    assert {"missing": "missing", "garbage": "not valid JSON",
            "deep": "nested too deeply"}[damage] in r.err
    assert diff(before, snapshot(root)) == []


def test_one_unreadable_state_json_does_not_fail_commands_about_other_pods(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", bundle(name="db", version=1, units=[])).code == 0
    (root / "etc/ops/pods/web/1/state.json").write_text("[" * 100000)
    r = ops("--json", "list")
    assert r.code == 0, r
    assert ("db", 1) in [(p["name"], p["version"]) for p in json.loads(r.out)["pods"]]
    assert ops("deploy", bundle(name="db", version=2, units=[])).code == 0
    assert ops("status", "db").code in (0, 5)


# -- an edited stored unit copy --------------------------------------------------

def test_a_deploy_refuses_to_install_an_edited_stored_unit_copy(ops, root, bundle):
    b = web(bundle, 1, body="original")
    assert ops("deploy", b).code == 0
    copy = root / "etc/ops/pods/web/1/units/web-api.service"
    copy.write_text(copy.read_text().replace("original", "edited"))
    (unit_dir(root) / "web-api.service").unlink()       # so the deploy would install again
    before = snapshot(root)
    r = ops("deploy", b)
    assert r.code == 2, r
    assert str(copy) in r.err and "changed on disk" in r.err
    assert diff(before, snapshot(root)) == []
    # put back, the deploy converges with the bundle's bytes
    copy.write_text(copy.read_text().replace("edited", "original"))
    r = ops("deploy", b)
    assert r.code == 0, r
    assert "original" in (unit_dir(root) / "web-api.service").read_text()


def test_a_redeploy_refuses_an_edited_or_removed_stored_unit_copy(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    assert ops("deploy", web(bundle, 2)).code == 0
    copy = root / "etc/ops/pods/web/1/units/web-api.service"
    copy.unlink()
    r = ops("redeploy", "web:1")
    assert r.code == 2, r
    assert str(copy) in r.err
    assert state(root, "web", 1)["units"]


# -- environment variables ---------------------------------------------------------

BAD_ENV = [("OPS_ARG_MAX", "lots"), ("OPS_ARG_MAX", "0"), ("OPS_ARG_MAX", "1e6"),
           ("OPS_ARG_MAX", "-1"), ("OPS_ARG_MAX", "9" * 30), ("OPS_ARG_MAX", " 4096"),
           ("OPS_MAX_VOLUME_BYTES", "1.5G"), ("OPS_MAX_VOLUME_BYTES", "9" * 30 + "T"),
           ("OPS_MAX_VOLUME_MEMBERS", "many"), ("OPS_DEBUG", "yes"), ("OPS_DEBUG", "2")]


@pytest.mark.parametrize("name,value", BAD_ENV)
@pytest.mark.parametrize("command", ["list", "deploy"])
def test_a_bad_environment_variable_is_one_error_line_naming_it(ops, root, bundle, monkeypatch,
                                                               name, value, command):
    monkeypatch.setenv(name, value)
    args = ["list"] if command == "list" else ["deploy", web(bundle, 1)]
    r = ops(*args)
    assert r.code == 2, r
    assert r.err.startswith("ops: error: %s: invalid " % name) and r.err.count("\n") == 1, r.err
    assert "Traceback" not in r.err
    r = ops("--json", *args)
    assert r.code == 2 and json.loads(r.out)["error"].startswith(name + ": invalid")
    assert os.listdir(str(root)) == [] or command == "list"


@pytest.mark.parametrize("name,value", [("OPS_ARG_MAX", "100000"), ("OPS_MAX_VOLUME_BYTES", "2G"),
                                        ("OPS_MAX_VOLUME_MEMBERS", "10k"), ("OPS_DEBUG", "0"),
                                        ("OPS_DEBUG", "1"), ("OPS_DEBUG", "")])
def test_good_environment_values_are_taken(ops, root, bundle, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert ops("deploy", web(bundle, 1)).code == 0


def test_every_environment_variable_ops_reads_goes_through_the_one_reader():
    """No module of ops reads os.environ itself, but to pass it on to a child."""
    import re
    from pathlib import Path
    from ops import environment
    src = Path(environment.__file__).parent
    named = set()
    for p in src.glob("*.py"):
        text = p.read_text()
        named |= set(re.findall(r"[\"'](OPS_[A-Z_]+)[\"']", text))
        if p.name == "environment.py":
            continue
        reads = re.findall(r"os\.environ\.get|os\.getenv|os\.environ\[|environb\.get", text)
        assert not reads, "%s reads the environment itself: %s" % (p.name, reads)
    assert named - {"OPS_"} <= set(environment.VARIABLES) | {environment.CHECK_MARK}, named


def test_a_bad_ops_rkt_is_refused_when_rkt_is_needed(ops, root, bundle, monkeypatch, tmp_path):
    monkeypatch.setenv("OPS_RKT", str(tmp_path / "nothing"))
    assert ops("deploy", web(bundle, 1)).code == 0          # no image: rkt is not needed
    b = bundle(name="img", version=1, units=[], images=[{"uri": "docker://x"}])
    r = ops("--insecure-images", "deploy", b)
    assert r.code == 2 and "$OPS_RKT names" in r.err, r


# -- text from units and checks: bounded, escaped ---------------------------------

CONTROL = __import__("re").compile(r"[\x00-\x1f\x7f]")


def test_a_commands_output_in_an_error_is_bounded_and_escaped():
    import sys
    from ops.errors import CommandError, OUTPUT_MAX
    from ops.runner import run
    code = "import sys; sys.stderr.write('\\x1b[31m' + 'x' * 100000 + '\\rend\\n'); sys.exit(3)"
    for timeout in (None, 10):
        with pytest.raises(CommandError) as e:
            run([sys.executable, "-c", code], timeout=timeout)
        what = e.value.what
        assert len(what) < OUTPUT_MAX + 100 and not CONTROL.search(what), what[:200]
        assert what.endswith("end") and "characters cut" in what


def test_a_units_journal_and_a_stored_reason_are_bounded_and_escaped():
    from ops.errors import Failed, MESSAGE_MAX, OUTPUT_MAX
    e = Failed("web-api.service", "failed: " + "\x1b]0;" * 3000, unit="web-api.service",
               journal="line\x07one / " + "y" * 50000 + " / last")
    assert len(e.journal) <= OUTPUT_MAX + 40 and e.journal.endswith(" / last")
    assert not CONTROL.search(e.journal)
    r = e.stored_reason()
    assert len(r["message"]) <= MESSAGE_MAX + 40 and not CONTROL.search(r["message"])
    assert r["message"].startswith("web-api.service: failed: \\x1b]0;")


def test_a_reason_read_back_from_state_json_is_bounded_and_escaped(ops, root, bundle):
    assert ops("deploy", web(bundle, 1)).code == 0
    p = root / "etc/ops/pods/web/1/state.json"
    st = json.loads(p.read_text())
    st["outcome"] = "failed"
    st["reason"] = {"unit": "web-api.service", "journal": "\x1b[2J" + "j" * 100000,
                    "message": "boom\r\n" * 10000, "result": "exit-code"}
    p.write_text(json.dumps(st))
    r = ops("--json", "list", "web")
    reason = json.loads(r.out)["pods"][0]["reason"]
    for k in ("journal", "message"):
        assert len(reason[k]) < 4100 and not CONTROL.search(reason[k]), k
    assert reason["message"].startswith("boom\\r\\nboom")
