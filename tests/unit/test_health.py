"""The pod's health check: what the annotation accepts, where it sits in the
plan, and the exec and http checks themselves against loopback servers.
(Rolling back on a failing check runs against a real systemd in
tests/live/test_health_live.py; the refused annotations are in
invalid/cases.json.)"""

import json
import time

import pytest

from ops import bundle as bundle_mod, health
from ops.errors import Failed
from ops.layout import Layout
from ops.plan import switch_actions
from tests.support.servers import body, sequence, serve, status


def parse(h):
    ops = {"name": "web", "version": 2, "health": h}
    raw = json.dumps({"acKind": "PodManifest", "acVersion": "0.8.11",
                      "annotations": [{"name": "ops", "value": json.dumps(ops)}]}).encode()
    return bundle_mod.parse(raw, "pod.json", None).health


class Version:
    name, version = "web", 2


def test_an_http_check_has_defaults():
    spec = parse({"http": "http://127.0.0.1:8080/health"})
    assert spec == bundle_mod.HealthSpec(None, "http://127.0.0.1:8080/health", 200, 5, 0, 1)
    assert spec.describe() == "GET http://127.0.0.1:8080/health, expect 200"


def test_an_exec_check_keeps_its_arguments():
    spec = parse({"exec": ["/bin/sh", "-c", "test -e /run/x"], "timeout": 2.5, "retries": 3,
                  "interval": 0})
    assert spec.exec == ("/bin/sh", "-c", "test -e /run/x")
    assert (spec.http, spec.timeout, spec.retries, spec.interval) == (None, 2.5, 3, 0)


def test_no_health_key_means_no_check():
    ops = {"name": "web", "version": 2}
    raw = json.dumps({"acKind": "PodManifest", "acVersion": "0.8.11",
                      "annotations": [{"name": "ops", "value": json.dumps(ops)}]}).encode()
    assert bundle_mod.parse(raw, "pod.json", None).health is None


def test_check_prints_the_health_check(ops, bundle):
    b = bundle(name="web", version=1)
    doc = json.loads(b.pod_json.read_text())
    value = json.loads(doc["annotations"][0]["value"])
    value["health"] = {"http": "http://127.0.0.1:8080/", "status": 204}
    doc["annotations"][0]["value"] = json.dumps(value)
    b.pod_json.write_text(json.dumps(doc))
    r = ops("check", b)
    assert r.code == 0, r
    assert "  health GET http://127.0.0.1:8080/, expect 204" in r.lines
    assert ops("--json", "check", b).json()["health"]["status"] == 204


# -- the plan ---------------------------------------------------------------------

def test_the_health_check_comes_after_the_settle(tmp_path):
    units = bundle_mod.parse(json.dumps({"acKind": "PodManifest", "acVersion": "0.8.11",
                                         "annotations": [{"name": "ops", "value": json.dumps(
                                             {"name": "web", "version": 2, "systemd-units": [
                                                 {"unit-file": "web.service", "start": True}]})}]}
                                        ).encode(), "pod.json", None).units
    spec = parse({"http": "http://127.0.0.1:8080/"})
    verbs = [a.verb for a in switch_actions(Layout("/"), ("web", 2), units, None, health=spec)]
    assert verbs[-3:] == ["settle", "health-check", "set-current"]
    # offline (--root) nothing runs, so there is nothing to check
    offline = switch_actions(Layout(str(tmp_path)), ("web", 2), units, None, health=spec)
    assert "health-check" not in [a.verb for a in offline]


# -- http -------------------------------------------------------------------------

def test_http_check_passes_on_the_expected_status(no_proxy):
    with serve({"/health": status(204)}) as srv:
        health.check(None, Version, parse({"http": srv.url("/health"), "status": 204}), {})
        assert srv.hits("/health") == 1


def test_http_check_fails_on_another_status(no_proxy):
    with serve({"/health": body(b"fine")}) as srv:
        with pytest.raises(Failed) as e:
            health.check(None, Version, parse({"http": srv.url("/health"), "status": 204}), {})
    assert e.value.where == "health check of web 2"
    assert e.value.what == "GET %s answered 200 OK, expected 204 (1 attempt)" % srv.url("/health")


def test_http_check_retries(no_proxy):
    with serve({"/h": sequence(status(503), status(503), body(b"up"))}) as srv:
        health.check(None, Version, parse({"http": srv.url("/h"), "retries": 2,
                                           "interval": 0.05}), {})
        assert srv.hits("/h") == 3
    with serve({"/h": status(503)}) as srv:
        with pytest.raises(Failed) as e:
            health.check(None, Version, parse({"http": srv.url("/h"), "retries": 2,
                                               "interval": 0}), {})
        assert srv.hits("/h") == 3
    assert "answered 503" in e.value.what and "(3 attempts)" in e.value.what


def test_http_check_against_nothing_listening(no_proxy):
    with serve({}) as srv:
        url = srv.url("/")
    with pytest.raises(Failed) as e:
        health.check(None, Version, parse({"http": url}), {})
    assert "GET %s: Connection refused" % url in e.value.what


def test_http_check_does_not_go_through_a_proxy(monkeypatch):
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9/")
    with serve({"/": body(b"ok")}) as srv:
        health.check(None, Version, parse({"http": srv.url("/")}), {})
        assert srv.hits("/") == 1


# -- exec -------------------------------------------------------------------------

def test_exec_check_sees_the_pod_variables():
    spec = parse({"exec": ["/bin/sh", "-c", 'test "$POD_NAME $POD_VERSION" = "web 2"']})
    health.check(None, Version, spec, {"POD_NAME": "web", "POD_VERSION": "2"})
    with pytest.raises(Failed):
        health.check(None, Version, spec, {"POD_NAME": "web", "POD_VERSION": "1"})


def test_exec_check_failure_names_the_status_and_output():
    spec = parse({"exec": ["/bin/sh", "-c", "echo not ready; exit 3"]})
    with pytest.raises(Failed) as e:
        health.check(None, Version, spec, {})
    assert e.value.what == "/bin/sh: exited 3: not ready (1 attempt)"


def test_exec_check_timeout_kills_what_it_started(tmp_path):
    marker = tmp_path / "survivor"
    spec = parse({"exec": ["/bin/sh", "-c", "(sleep 2; touch %s) & sleep 30" % marker],
                  "timeout": 0.3})
    started = time.monotonic()
    with pytest.raises(Failed) as e:
        health.check(None, Version, spec, {})
    assert time.monotonic() - started < 2
    assert "timed out after 0.3 s" in e.value.what
    time.sleep(2.5)
    assert not marker.exists()          # the background child was killed too


def test_exec_check_of_a_missing_program():
    spec = parse({"exec": ["/nonexistent/check"]})
    with pytest.raises(Failed) as e:
        health.check(None, Version, spec, {})
    assert "/nonexistent/check" in e.value.what and "not found" in e.value.what


# -- one deadline, everything killed, output bounded ----------------------------------

def trickle(headers_first):
    """Send a byte every 0.2 s for 10 s: in the status line, or in the body."""
    def behave(h):
        if headers_first:
            h.send_response(200)
            h.send_header("Content-Length", "50")
            h.end_headers()
            h.wfile.flush()
            data = b"x" * 50
        else:
            data = b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
        for c in data:
            h.wfile.write(bytes([c]))
            h.wfile.flush()
            time.sleep(0.2)
    return behave


@pytest.mark.parametrize("headers_first", [False, True], ids=["status-line", "body"])
def test_a_server_that_trickles_bytes_cannot_hold_the_check_past_its_timeout(no_proxy,
                                                                             headers_first):
    with serve({"/h": trickle(headers_first)}) as srv:
        started = time.monotonic()
        with pytest.raises(Failed) as e:
            health.check(None, Version, parse({"http": srv.url("/h"), "timeout": 1}), {})
        took = time.monotonic() - started
    assert took < 2, took
    assert "no whole answer within 1 s" in e.value.what


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("how", ["setsid", "double-fork", "setsid-after-exit"])
def test_every_process_the_exec_check_starts_is_killed(tmp_path, how):
    pidfile = tmp_path / "pid"
    escape = ("import os, time\n"
              "if os.fork() == 0:\n"
              "    os.setsid()\n"
              "    if os.fork() == 0:\n"
              "        open(%r, 'w').write(str(os.getpid()))\n"
              "        os.close(1); os.close(2)\n"
              "        time.sleep(60)\n"
              "    os._exit(0)\n"
              "time.sleep(0.5)\n" % str(pidfile))
    import sys
    if how == "setsid":
        argv = ["/bin/sh", "-c", "setsid sleep 60 & echo $! > %s; sleep 30" % pidfile]
    elif how == "double-fork":
        argv = [sys.executable, "-c", escape + "time.sleep(30)\n"]
    else:
        argv = [sys.executable, "-c", escape]       # the check passes, the daemon stays behind
    spec = parse({"exec": argv, "timeout": 1.5})
    started = time.monotonic()
    if how == "setsid-after-exit":
        health.check(None, Version, spec, {})
    else:
        with pytest.raises(Failed):
            health.check(None, Version, spec, {})
    assert time.monotonic() - started < 3
    pid = int(pidfile.read_text())
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.05)
    assert not alive(pid), "process %d outlived the check" % pid


def test_the_exec_checks_output_is_a_bounded_escaped_tail():
    import sys
    code = ("import sys; sys.stdout.write('\\x1b[2J' + 'a' * 10000000 + '\\x07the end'); "
            "sys.exit(1)")
    with pytest.raises(Failed) as e:
        health.check(None, Version, parse({"exec": [sys.executable, "-c", code]}), {})
    what = e.value.what
    assert len(what) < 2200 and what.endswith("\\x07the end (1 attempt)"), what[-100:]
    assert not any(ord(c) < 32 for c in what)


def test_a_resolver_that_hangs_cannot_hold_the_check_past_its_timeout(monkeypatch):
    # getaddrinfo blocks until the test lets it go: the check gives up at its
    # deadline while the resolver is still blocked, and says so
    import socket
    import threading
    release, asked = threading.Event(), []

    def hanging(host, *args, **kw):
        asked.append(host)
        release.wait(10)
        raise socket.gaierror(socket.EAI_AGAIN, "released")
    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    try:
        with pytest.raises(Failed) as e:
            health.check(None, Version, parse({"http": "http://health.invalid:8080/h",
                                               "timeout": 1, "retries": 1, "interval": 0}), {})
        still_blocked = not release.is_set()
    finally:
        release.set()
    assert still_blocked and asked == ["health.invalid", "health.invalid"]
    assert e.value.what == ("GET http://health.invalid:8080/h: the name health.invalid was not "
                            "resolved within the timeout (2 attempts)")


def test_a_host_name_the_resolver_refuses_is_a_failed_attempt():
    # check refuses it (invalid/cases.json); a check that reaches the resolver all the
    # same fails as an attempt, never as an error of its own ("unexpected error")
    spec = bundle_mod.HealthSpec(None, "http://a..b:8080/", 200, 1, 1, 0)
    with pytest.raises(Failed) as e:
        health.check(None, Version, spec, {})
    assert e.value.what.startswith("GET http://a..b:8080/: cannot be sent (")
    assert e.value.what.endswith("(2 attempts)")
