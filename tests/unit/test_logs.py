"""`ops logs`: the journalctl command line it runs, and what it refuses."""

import pytest

from conftest import unit_text
from ops import logs, options

pytestmark = pytest.mark.compat


def test_one_journalctl_for_every_unit_and_instance():
    assert logs.argv(["a.service", "b@1.service"], 20, follow=True) == [
        "journalctl", "--no-pager", "-n", "20", "-u", "a.service", "-u", "b@1.service", "-f"]
    assert logs.argv(["a.service"], 10 ** 8, json=True) == [
        "journalctl", "--no-pager", "-n", str(logs.MAX_LINES), "-o", "json", "-u", "a.service"]


def test_the_command_line():
    a = options.parse(["logs", "hello", "-n", "5", "-f", "--version", "2"])
    assert (a.command, a.name, a.lines, a.follow, a.log_version) == ("logs", "hello", 5, True, 2)
    a = options.parse(["--json", "logs", "hello"])
    assert (a.lines, a.follow, a.log_version) == (100, False, None)
    assert options._quick_parse(["logs", "hello", "--lines", "3"]) is not None


def test_offline_is_refused(ops, bundle):
    assert ops("deploy", bundle(name="web", version=1, units=[
        {"file": "web-api.service", "start": True, "text": unit_text("web-api.service")}])).code == 0
    r = ops("logs", "web")
    assert r.code == 2 and "no running systemd" in r.err, r
    r = ops("--json", "logs", "web")
    assert r.code == 2 and r.json()["entries"] == [] and r.json()["command"] == "logs", r


def test_units_of_the_current_or_a_given_version(root, bundle, monkeypatch, ops):
    from ops.errors import Refused, UsageError
    from ops.layout import Layout
    for v in (1, 2):
        assert ops("deploy", bundle(name="web", version=v, units=[
            {"file": "web-v%d.service" % v, "start": True, "text": unit_text("web-v%d.service" % v)},
            {"file": "web-w@.service", "start": True, "instances": ["a", "b"],
             "text": unit_text("web-w@.service")}])).code == 0
    layout = Layout(str(root))
    monkeypatch.setattr(layout, "offline", False)
    sv, names = logs.units(layout, "web")
    assert sv.version == 2 and sorted(names) == ["web-v2.service", "web-w@a.service",
                                                 "web-w@b.service"]
    assert "web-v1.service" in logs.units(layout, "web", 1)[1]
    with pytest.raises(Refused):
        logs.units(layout, "web", 7)
    with pytest.raises(UsageError):
        logs.units(layout, "web:1")


def test_json_entries_are_objects(monkeypatch):
    class Done:
        stdout = '{"MESSAGE": "hi", "_SYSTEMD_UNIT": "a.service"}\nnot json\n[1]\n'
    seen = []
    monkeypatch.setattr("ops.runner.run", lambda argv: seen.append(argv) or Done())
    assert logs.entries(["a.service"], 5) == [{"MESSAGE": "hi", "_SYSTEMD_UNIT": "a.service"}]
    assert seen[0][:6] == ["journalctl", "--no-pager", "-n", "5", "-o", "json"]


def test_any_stored_version_can_be_named_and_a_count_too_large_says_so():
    """--version takes every version SPEC allows (below 2^63), not only nine
    digits; a number too large is told as too large, not as 'not a number'."""
    from ops.errors import UsageError
    for argv in (["logs", "web", "--version", "9223372036854775807"],
                 ["logs", "web", "--version=1000000000"]):
        assert options.parse(argv).log_version == int(argv[-1].rpartition("=")[2] or argv[-1])
    with pytest.raises(UsageError) as exc:
        options.parse(["logs", "web", "--version", "9223372036854775808"])
    assert "below 2^63" in exc.value.what
    with pytest.raises(UsageError) as exc:
        options.parse(["logs", "web", "-n", "1000000000"])
    assert "at most 999999999" in exc.value.what and "not a whole number" not in exc.value.what
    for bad in ("x", "1.5", "-1", "", "٣"):
        with pytest.raises(UsageError) as exc:
            options.parse(["logs", "web", "-n", bad])
        assert "-n" in exc.value.what or "lines" in exc.value.what, exc.value


def test_a_version_of_ten_digits_reaches_the_store(ops, bundle):
    r = ops("logs", "web", "--version", "12345678901")
    assert r.code == 2 and len(r.error_lines) == 1, r
    assert "no running systemd" in r.err, r
