#!/usr/bin/env python3
"""run-suites.py SUITE...: run each suite (`make SUITE`) whatever the others did, then one summary.

Each suite's pytest output shows as it runs; pytest writes a JUnit XML report for it
(``make SUITE PYTEST_ARGS=--junitxml=FILE``), from which the counts are read.  A suite that
exits non-zero, or ends with no report or no test run, is a failed suite.  The last line is

    total: N passed, N failed, N skipped

and the exit status is 1 when any suite failed.  Needs no terminal and no standard input.
"""

import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET


def counts(report):
    """(passed, failed, skipped) from a JUnit XML report of pytest."""
    root = ET.parse(report).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    tests = failed = skipped = 0
    for s in suites:
        tests += int(s.get("tests", 0))
        failed += int(s.get("failures", 0)) + int(s.get("errors", 0))
        skipped += int(s.get("skipped", 0))
    return tests - failed - skipped, failed, skipped


def main(suites):
    if not suites:
        sys.stderr.write(__doc__)
        return 2
    make = os.environ.get("MAKE", "make")
    rows = []
    with tempfile.TemporaryDirectory(prefix="ops-suites-") as tmp:
        for suite in suites:
            report = os.path.join(tmp, suite + ".xml")
            print("\n=== %s ===" % suite, flush=True)
            started = time.monotonic()
            rc = subprocess.call([make, "--no-print-directory", suite, "PYTEST_ARGS=--junitxml=" + report],
                                 stdin=subprocess.DEVNULL)
            seconds = time.monotonic() - started
            try:
                passed, failed, skipped = counts(report)
                note = ""
            except (OSError, ET.ParseError) as e:
                passed, failed, skipped = 0, 0, 0
                note = "no test report (%s)" % (e.strerror if isinstance(e, OSError) else e)
            if rc != 0 and failed == 0:
                failed = 1                   # the suite itself failed: count it, never as passing
                note = note or "exit status %d" % rc
            elif passed + failed == 0:
                failed = 1
                note = note or "no test ran"
            rows.append((suite, passed, failed, skipped, seconds, rc, note))
    print("\n=== summary ===")
    for suite, passed, failed, skipped, seconds, rc, note in rows:
        print("%-10s %5d passed, %d failed, %d skipped  %4.0f s  %s%s" % (
            suite, passed, failed, skipped, seconds, "ok" if rc == 0 and failed == 0 else "FAILED",
            " (%s)" % note if note else ""))
    total = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    print("total: %d passed, %d failed, %d skipped" % tuple(total), flush=True)
    return 1 if any(r[2] or r[5] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
