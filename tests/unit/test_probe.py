"""bench/probe.py, the probe client of the outage figures and of the socket pod's live test: each attempt's outcome
against a real server on this machine and against a port nothing listens on, and the figures it reports."""

import importlib.util
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import REPO

spec = importlib.util.spec_from_file_location("ops_bench_probe", str(REPO / "bench" / "probe.py"))
probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(probe)

A = probe.Attempt


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello, version 7\n"
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    s = HTTPServer(("127.0.0.1", 0), Hello)
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield "127.0.0.1", s.server_address[1]
    s.shutdown()
    s.server_close()


@pytest.fixture
def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                     # bound, never listened: connecting is refused
    return "127.0.0.1", port


def test_an_answering_server_is_ok_with_its_last_line(server):
    outcome, latency, answer = probe.attempt_once(*server, timeout=5)
    assert (outcome, answer) == ("ok", "hello, version 7")
    assert latency > 0


def test_a_port_nothing_listens_on_is_refused(closed_port):
    assert probe.attempt_once(*closed_port, timeout=5) == ("refused", None, "")


def test_an_answer_other_than_200_is_an_error(server):
    outcome, _, answer = probe.attempt_once(*server, timeout=5, request=b"GET /x HTTP/1.0\r\n\r\n")
    assert outcome == "error" and "404" in answer


def test_a_server_that_accepts_and_never_answers_times_out():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(5)
    try:
        assert probe.attempt_once("127.0.0.1", s.getsockname()[1], timeout=0.2)[0] == "timeout"
    finally:
        s.close()


def test_probing_attempts_every_interval_and_counts_outcomes(server, closed_port):
    attempts = probe.probe(*server, interval=0.01, duration=0.3)
    s = probe.summarize(attempts, 0.01)
    assert s["attempts"] == len(attempts) >= 10
    assert s["counts"] == {"ok": len(attempts), "refused": 0, "timeout": 0, "error": 0}
    assert s["answers"] == {"hello, version 7": len(attempts)}
    assert s["refused_window_ms"] == 0.0 and s["refused_runs"] == []
    starts = [a.start for a in attempts]
    assert starts == sorted(starts)
    s = probe.summarize(probe.probe(*closed_port, interval=0.01, duration=0.2), 0.01)
    assert s["refused"] == s["attempts"] >= 5 and s["latency_ms"]["p50"] is None


def test_summary_of_refused_runs_window_and_latency():
    attempts = [A(0.00, "ok", 0.001, "v1"), A(0.01, "refused"), A(0.02, "refused"), A(0.03, "timeout"),
                A(0.04, "ok", 0.003, "v2"), A(0.10, "refused"), A(0.11, "ok", 0.002, "v2"),
                A(0.12, "error", None, "[Errno 104] Connection reset by peer")]
    s = probe.summarize(attempts, 0.01, raw=True)
    assert s["counts"] == {"ok": 3, "refused": 3, "timeout": 1, "error": 1}
    assert s["refused_window_ms"] == 90.0
    assert s["refused_runs"] == [{"from_ms": 10.0, "to_ms": 20.0, "count": 2},
                                 {"from_ms": 100.0, "to_ms": 100.0, "count": 1}]
    assert s["latency_ms"] == {"p50": 2.0, "p99": 3.0, "max": 3.0}
    assert s["answers"] == {"v1": 1, "v2": 2}
    assert s["errors"] == {"[Errno 104] Connection reset by peer": 1}
    assert s["raw"][1] == [0.01, "refused", None, ""]


def test_percentile_is_the_nearest_rank():
    assert probe.percentile([], 50) is None
    assert probe.percentile([5, 1, 3], 50) == 3
    assert probe.percentile(list(range(1, 101)), 99) == 99
    assert probe.percentile(list(range(1, 101)), 100) == 100


def test_the_command_writes_its_summary(server, tmp_path):
    out = tmp_path / "s.json"
    assert probe.main(["%s:%d" % server, "--duration", "0.1", "--out", str(out)]) == 0
    s = json.loads(out.read_text())
    assert s["counts"]["ok"] == s["attempts"] > 0 and s["interval_ms"] == 10.0
    stop = tmp_path / "stop"
    stop.write_text("")
    assert probe.main(["%s:%d" % server, "--until", str(stop), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["attempts"] == 0


@pytest.mark.parametrize("argv", [["nohost"], ["127.0.0.1:80"], ["127.0.0.1:80", "--duration", "1", "--until", "x"],
                                  ["127.0.0.1:80", "--duration", "1", "--interval", "0"]])
def test_bad_command_lines_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as e:
        probe.main(argv)
    assert e.value.code == 2
    assert "error:" in capsys.readouterr().err
