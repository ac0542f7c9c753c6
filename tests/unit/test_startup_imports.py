"""The cheap commands load only what they need.

`list` (run on every Ansible play) and a deploy of an unchanged bundle
offline cost mostly Python's start-up and ops's imports, so the modules
that only running a command, downloading, unpacking or parsing a command
line with argparse need must not be imported on the way.  Counted, not
timed: each command runs in a fresh ``python3 -S`` (no site module, so that
only ops imports anything) and reports ``sys.modules`` as it exits.
"""

import re
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings, strategies as st

from conftest import REPO, unit_text
from ops import bundle as bundle_mod, names

# Each of these costs a large part of Python's own start-up, and none of
# them is needed to find that there is nothing to do.
HEAVY = {"subprocess", "ssl", "_ssl", "socket", "urllib", "urllib.request", "http",
         "http.client", "hashlib", "_hashlib", "shutil", "tempfile", "argparse", "tarfile",
         "bz2", "lzma", "threading", "selectors", "locale", "signal", "datetime"}

CHILD = """
import sys
from ops.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
sys.exit(code)
"""

# The same, counting the cyclic garbage collector's passes during the command
# and noting whether it is on as staging and executing a plan begin.
COLLECTOR_CHILD = """
import gc, sys
passes = []
gc.callbacks.append(lambda phase, info: phase == "start" and passes.append(info["generation"]))
import ops.execute, ops.stage
seen = {}
def spy(where, fn):
    def wrapped(*a, **k):
        seen.setdefault(where, gc.isenabled())
        return fn(*a, **k)
    return wrapped
ops.execute._apply = spy("execute", ops.execute._apply)
ops.stage.Stager.store = spy("stage", ops.stage.Stager.store)
gc.collect()
del passes[:]
from ops.cli import main
code = main(sys.argv[1:])
sys.stderr.write("\\nCOLLECTOR %d %s %s\\n" % (len(passes), gc.isenabled(),
                 " ".join("%s=%s" % kv for kv in sorted(seen.items()))))
sys.exit(code)
"""


# Standard modules that ops once loaded on these paths for little use:
# namedtuple (collections, with operator, keyword and reprlib), contextlib
# (with functools) for two context managers, filecmp for one comparison.
NOT_NEEDED = {"collections", "contextlib", "functools", "operator", "keyword", "reprlib",
              "filecmp"}

# ops's own modules that only a command with something to do needs: the
# rollback, the rules of what a pod may touch, retention, rkt, staging and
# executing a plan, volumes, downloads, health checks.
ONLY_WITH_WORK = {"ops.restore", "ops.ownership", "ops.retention", "ops.rkt", "ops.stage",
                  "ops.execute", "ops.volumes", "ops.archive", "ops.owners", "ops.fetch",
                  "ops.health", "ops.history", "ops.status", "ops.verify", "ops.diff",
                  "ops.progress"}

# and what `list` needs of none of them: no plan, no bundle, no unit files, no systemd
# (offline), no journal to roll back
NOT_FOR_LIST = ONLY_WITH_WORK | {"ops.plan", "ops.actions", "ops.switch", "ops.bundle",
                                 "ops.records", "ops.structs", "ops.units", "ops.systemd",
                                 "ops.runner", "ops.host", "ops.lock", "ops.strict_json",
                                 "ops.names"}


def _child(code, argv):
    return subprocess.run([sys.executable, "-S", "-c", code] + [str(a) for a in argv],
                          cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)


def run_counted(*argv):
    """Run ops with ``argv`` in a new interpreter; (exit code, stdout, modules)."""
    proc = _child(CHILD, argv)
    err, _, mods = proc.stderr.rpartition("\nMODULES ")
    assert mods, proc.stderr
    return proc.returncode, proc.stdout, err, set(mods.split())


def collector(*argv):
    """Run ops with ``argv`` in a new interpreter: (exit code, the cyclic
    collector's passes during the command, whether it is on once ``main``
    returned, {where: "True"/"False"} as staging and executing a plan began)."""
    proc = _child(COLLECTOR_CHILD, argv)
    line = proc.stderr.rpartition("\nCOLLECTOR ")[2].split("\n")[0].split()
    assert len(line) >= 2, proc.stderr
    return (proc.returncode, int(line[0]), line[1] == "True",
            dict(kv.split("=") for kv in line[2:]))


def heavy(modules):
    return sorted(m for m in modules if m in HEAVY or m.split(".")[0] in HEAVY)


@pytest.fixture
def deployed(ops, bundle):
    """A pod deployed offline whose bundle's files were last changed over
    SETTLED seconds before (as a bundle copied by an earlier task), so that
    its digest is taken from state.json."""
    b = bundle(name="web", version=1,
               units=[{"file": "web.service", "start": True, "text": unit_text("web.service")},
                      {"file": "web-side.service", "start": True,
                       "text": unit_text("web-side.service")}],
               volumes={"data": {"a.txt": "one\n"}})
    time.sleep(bundle_mod.SETTLED + 0.2)
    r = ops("deploy", b)
    assert r.code == 0, r
    return b


def test_an_unchanged_deploy_offline_imports_nothing_heavy(root, deployed):
    code, out, err, mods = run_counted("--root", root, "deploy", deployed)
    assert (code, out.strip()) == (0, "deploy web 1: unchanged"), err
    assert heavy(mods) == []
    # pod.json and state.json are read by _json's scanner, and names are
    # checked without regular expressions: neither json nor re is loaded
    assert not {"json", "re", "enum"} & mods
    # nor what only a command with something to do needs
    assert sorted((NOT_NEEDED | ONLY_WITH_WORK) & mods) == []


def test_list_imports_nothing_heavy_nor_json(root, deployed, ops, bundle):
    b2 = bundle(name="web", version=2,
                units=[{"file": "web.service", "start": True, "text": unit_text("web.service")}])
    assert ops("deploy", b2).code == 0
    code, out, err, mods = run_counted("--root", root, "list")
    assert code == 0, err
    assert [l.split()[:2] for l in out.splitlines()[1:]] == [["web", "1"], ["web", "2"]]
    # list reads each pod's index, a text file: no JSON parser, no regular expressions
    assert heavy(mods) == []
    assert not {"json", "re", "enum"} & mods
    assert sorted((NOT_NEEDED | NOT_FOR_LIST) & mods) == []


def test_a_changed_deploy_still_runs_what_it_needs(root, deployed, bundle):
    """The other side: the same command with something to do imports what it
    uses (the check above is not vacuous)."""
    b2 = bundle(name="web", version=2,
                units=[{"file": "web.service", "start": True, "text": unit_text("web.service")}])
    code, out, err, mods = run_counted("--root", root, "deploy", b2)
    assert code == 0, err
    assert "subprocess" in mods           # systemctl --root enable
    assert {"ops.ownership", "ops.stage", "ops.execute", "ops.restore"} <= mods


# The checks that replace regular expressions say what the expressions say.
NAME_ALPHABET = "az09AZ-._@:\\/+é\n \x00"
NAME_WORDS = list(names.UNIT_SUFFIXES) + ["sha512-", "://", "http", "@", ".", "-", "0f" * 20]


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(NAME_WORDS), st.sampled_from(NAME_ALPHABET),
                          st.text(max_size=3)), max_size=8).map("".join))
def test_the_name_checks_say_what_the_expressions_say(text):
    assert names.is_pod_name(text) == (len(text) <= names.MAX_NAME_LENGTH
                                       and names.NAME_RE.fullmatch(text) is not None)
    m = names.UNIT_RE.fullmatch(text)
    assert names.unit_name_parts(text) == (m.groups() if m else None)
    assert names.is_instance_name(text) == (names.INSTANCE_RE.fullmatch(text) is not None)
    assert names.is_image_id(text) == (names.IMAGE_ID_RE.fullmatch(text) is not None)
    assert names.has_uri_scheme(text) == (re.match(r"[A-Za-z][A-Za-z0-9+.\-]*://", text)
                                          is not None)


def test_invalid_json_is_placed_without_json_loaded_first():
    """Before Python 3.12 _json can raise its error only once json.decoder is
    loaded; ops reads with _json alone, and still says what and where."""
    code = ("import sys\nfrom ops import strict_json\n"
            "assert strict_json.loads('{\"a\": [1, 2.5, null]}') == {'a': [1, 2.5, None]}\n"
            "assert 'json' not in sys.modules\n"
            "try:\n    strict_json.loads('{\"a\": 1,\\n \"b\": ,}')\n"
            "except strict_json.JSONProblem as e:\n    print(e.what, e.line, e.column)\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=str(REPO),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, "Expecting value 2 7\n"), proc.stderr


def test_the_collector_is_off_while_ops_only_looks_and_on_when_it_changes_the_host(root, deployed, bundle):
    """`list` and a deploy with nothing to do run without a pass of the cyclic
    garbage collector; staging and executing a plan run with it on; the
    caller gets it back as it was."""
    code, passes, on_after, _ = collector("--root", root, "deploy", deployed)
    assert (code, passes, on_after) == (0, 0, True)
    code, passes, on_after, _ = collector("--root", root, "list")
    assert (code, passes, on_after) == (0, 0, True)
    b2 = bundle(name="web", version=2,
                units=[{"file": "web.service", "start": True, "text": unit_text("web.service")}])
    code, _, on_after, seen = collector("--root", root, "deploy", b2)
    assert (code, on_after, seen) == (0, True, {"stage": "True", "execute": "True"})


def test_an_in_process_caller_keeps_its_collector_setting(root, deployed):
    import gc
    from ops.cli import main
    try:
        gc.disable()
        assert main(["--root", str(root), "list"]) == 0
        assert not gc.isenabled()
        gc.enable()
        assert main(["--root", str(root), "list"]) == 0
        assert gc.isenabled()
    finally:
        gc.enable()
