"""Which journal lines say why a unit failed: systemd.chosen on `journalctl -o json` output."""

import json

from ops.systemd import chosen


def journal(*entries):
    return "".join(json.dumps({"_PID": str(pid), "MESSAGE": msg}) + "\n" for pid, msg in entries)


RUN = journal(
    (1, "Started app.service."),
    (40, "starting"),
    (40, "fatal: cannot open /var/data/db: Permission denied"),
    (1, "app.service: Main process exited, code=exited, status=1/FAILURE"),
    (41, "gc: moving pod to garbage"),
    (41, "gc: pod removed"),
    (1, "app.service: Failed with result 'exit-code'."))


def test_the_main_process_lines_are_chosen():
    assert chosen(RUN, "40") == [
        "starting", "fatal: cannot open /var/data/db: Permission denied",
        "app.service: Main process exited, code=exited, status=1/FAILURE",
        "app.service: Failed with result 'exit-code'."]


def test_without_lines_of_the_main_process_the_stop_commands_are_left_out():
    assert chosen(RUN, "39") == [
        "Started app.service.", "starting", "fatal: cannot open /var/data/db: Permission denied",
        "app.service: Main process exited, code=exited, status=1/FAILURE",
        "app.service: Failed with result 'exit-code'."]
    assert chosen(RUN, "0") == chosen(RUN, "") == chosen(RUN, "39")


def test_bytes_and_garbage():
    text = journal((7, "ok")) + json.dumps({"_PID": "7", "MESSAGE": list(b"caf\xc3\xa9 \xff")}) + "\n" \
        + "not json\n" + json.dumps({"_PID": "7"}) + "\n" + json.dumps([1]) + "\n"
    assert chosen(text, "7") == ["ok", "caf\u00e9 \ufffd"]
    assert chosen("", "7") == []
