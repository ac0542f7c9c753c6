"""Invalid bundles are refused with exit 2 and one clear line, and nothing is written.

Every case of ``invalid/cases.json`` builds a bundle in a temporary directory,
runs ``ops check BUNDLE`` and ``ops --root TMPROOT deploy BUNDLE`` and checks
what the operator sees: exit status 2, exactly one line
``ops: error: BUNDLE/pod.json: WHERE: WHAT`` on stderr, no traceback, an
empty stdout (one JSON object with ``--json``), and no file created, changed
or removed: TMPROOT stays empty and the bundle is as it was.

A case is a JSON object:

``name``
    a short description, used as the test id.
``pod`` / ``raw`` / ``raw_b64`` / ``generate``
    the manifest as a JSON value, as exact text, as exact bytes (base64),
    or the name of a generator below (for contents too large to store).
``files``
    artifacts to create, by path relative to the bundle directory (``../x``
    lands beside it, outside the bundle): text, ``{"symlink": target}`` or
    ``{"fifo": true}``.  ``{BUNDLE}`` and ``{OUTSIDE}`` in the manifest or in
    a symlink target stand for the bundle directory and its parent.
``args``
    global options added before the command (``--insecure-images``).
``where`` / ``where_re``
    the path inside the manifest the error must name, exactly or as a regular
    expression; absent when the error is about the file as a whole.
``what``
    a substring (case-insensitive) the message must contain.
``special``
    the bundle path itself is wrong (missing, no pod.json, pod.json not a file).
``manifest`` / ``bundle``
    the manifest's file name (default ``pod.json``) and whether the directory
    (default) or the manifest file is given on the command line.
``subprocess_only``
    the case involves a FIFO: an implementation that opens it would block,
    so it runs only in a child process with a timeout.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.compat     # also run on Python 3.8 and 3.13 (pytest.ini)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CASES = json.loads((HERE / "invalid" / "cases.json").read_text(encoding="utf-8"))
BY_NAME = {c["name"]: c for c in CASES}
VALID = HERE / "valid"
MIB16 = 16 * 1024 * 1024
DEEP = 100000
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")

# Cases that also run as a real `python3 -m ops` child process (a fresh
# interpreter: real recursion limit, real stdio encoding, real exit status):
# one for each kind of error -- the file (syntax, encoding, depth, size), the
# bundle path, each level of the manifest and of the ops annotation -- and
# each case whose message a terminal must get intact (non-ASCII, a newline,
# a lone surrogate).  The whole corpus runs in-process below.  `make test`
# also runs these on Python 3.8 and 3.13 (they are marked compat).
SUBPROCESS_CASES = [
    "manifest-is-a-list", "ackind-image-manifest", "acversion-missing", "annotations-two-ops-entries",
    "ops-value-an-object", "ops-unknown-key-typo", "ops-unknown-key-singular-image",
    "ops-value-trailing-comma", "ops-value-nested-100000-deep", "file-truncated", "file-not-utf8",
    "file-nested-100000-deep", "file-nested-100000-deep-balanced", "file-over-16-mib", "bundle-missing",
    "pod-json-is-a-directory", "bundle-dir-without-pod-json", "pod-json-dangling-symlink", "name-non-ascii",
    "name-trailing-newline", "version-2-pow-63", "ops-value-version-5000-digits", "unit-unknown-key-strat",
    "unit-file-symlink-escaping", "unit-file-name-newline", "instances-duplicate-int-and-string",
    "image-id-upper-case-hex", "image-unpinned-path", "volume-name-duplicate", "health-not-an-object",
    "ops-value-lone-surrogate-in-name",
] + [c["name"] for c in CASES if c.get("subprocess_only")]


# --- building a case's bundle --------------------------------------------------------

def standard_pod(ops):
    return {"acKind": "PodManifest", "acVersion": "0.8.11",
            "annotations": [{"name": "ops", "value": json.dumps(ops)}]}


def generated(kind):
    if kind == "ops-deep":
        pod = standard_pod({})
        pod["annotations"][0]["value"] = "[" * DEEP
        return json.dumps(pod).encode()
    if kind == "outer-deep-open":
        return b"[" * DEEP
    if kind == "outer-deep-balanced":
        pod = standard_pod({"name": "p", "version": 1})
        text = json.dumps(pod)
        return (text[:-1] + ', "apps": ' + "[" * DEEP + "]" * DEEP + "}").encode()
    if kind == "over-16-mib":
        return padded_manifest(MIB16 + 1)
    raise AssertionError("unknown generator %r" % kind)


def padded_manifest(size):
    """A valid manifest of exactly ``size`` bytes (the padding is in an
    unvalidated top-level key)."""
    pod = standard_pod({"name": "big", "version": 1})
    pod["x-padding"] = ""
    base = json.dumps(pod).encode()
    pod["x-padding"] = "x" * (size - len(base))
    data = json.dumps(pod).encode()
    assert len(data) == size
    return data


def build(case, base):
    """Create the case's bundle under ``base``; return (argument, manifest path)."""
    bundle = base / "bundle"
    bundle.mkdir()
    subst = {"{BUNDLE}": str(bundle), "{OUTSIDE}": str(base)}

    def fill(text):
        for k, v in subst.items():
            text = text.replace(k, v)
        return text

    for rel, content in sorted(case.get("files", {}).items()):
        target = Path(os.path.normpath(str(bundle / rel)))
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            target.write_text(content)
        elif "symlink" in content:
            os.symlink(fill(content["symlink"]), str(target))
        elif content.get("fifo"):
            os.mkfifo(str(target))
        else:
            raise AssertionError(content)

    manifest = bundle / case.get("manifest", "pod.json")
    special = case.get("special")
    if special == "bundle-missing":
        shutil.rmtree(str(bundle))
        arg = base / "no-such-bundle"
        return str(arg), None
    if special == "no-pod-json":
        return str(bundle), str(manifest)
    if special == "pod-json-directory":
        (manifest / "pod.json").mkdir(parents=True)
        return str(bundle), str(manifest)
    if special == "pod-json-fifo":
        os.mkfifo(str(manifest))
        return str(bundle), str(manifest)
    if special == "pod-json-dangling-symlink":
        os.symlink("gone.json", str(manifest))
        return str(bundle), str(manifest)
    assert special is None, special

    if "pod" in case:
        data = fill(json.dumps(case["pod"], indent=2)).encode()
    elif "raw" in case:
        data = case["raw"].encode("utf-8")
    elif "raw_b64" in case:
        data = base64.b64decode(case["raw_b64"])
    else:
        data = generated(case["generate"])
    manifest.write_bytes(data)
    arg = manifest if case.get("bundle") == "file" else bundle
    return str(arg), str(manifest)


def snapshot(top):
    """Everything under ``top``: path, type, size, mode, mtime (symlinks not followed)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            found[os.path.relpath(p, str(top))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return found


def error_line_re(case, arg, manifest):
    """The regular expression the one stderr line must match."""
    if manifest is None:                        # the bundle path does not exist
        file_re = re.escape(arg) + r"(/pod\.json)?"
    else:
        file_re = re.escape(manifest)
    if "where" in case:
        where_re = re.escape(case["where"]) + ": "
    elif "where_re" in case:
        where_re = "(?:%s): " % case["where_re"]
    else:
        where_re = ""
    return re.compile(r"ops: error: %s: %s\S.*" % (file_re, where_re))


def check_refusal(case, arg, manifest, rc, out, err, json_mode=False):
    """What the operator must see for a refused bundle."""
    assert "Traceback" not in out + err, err
    assert rc == 2, "exit %r, stderr: %s" % (rc, err)
    lines = err.split("\n")[:-1]               # a line ends at a newline, nothing else
    if json_mode:
        doc = json.loads(out)                   # exactly one JSON document
        assert isinstance(doc, dict) and doc.get("ok") is False, out
        message = doc.get("error")
        assert isinstance(message, str), out
        assert len(lines) <= 1, err             # the line may be on stderr too
        if lines:
            assert lines[0] == "ops: error: " + message, (lines, message)
        line = "ops: error: " + message
    else:
        assert out == "", out
        assert len(lines) == 1 and err.endswith("\n"), "stderr is not one line: %r" % err
        line = lines[0]
    # Text from the bundle must not reach the terminal as control characters
    # (a newline splitting the line, an escape sequence, a carriage return).
    assert not CONTROL.search(line), "control character in %r" % line
    assert error_line_re(case, arg, manifest).fullmatch(line), \
        "%r does not name %r" % (line, case.get("where") or case.get("where_re") or manifest)
    if "what" in case:
        assert case["what"].lower() in line.lower(), line
    return line


# --- running ops -----------------------------------------------------------------

class InProcess:
    def __init__(self, capsys, monkeypatch, base):
        self.capsys = capsys
        monkeypatch.setenv("OPS_RKT", str(base / "no-rkt-here"))
        (base / "cwd").mkdir()
        monkeypatch.chdir(str(base / "cwd"))

    def __call__(self, argv):
        from ops.cli import main
        self.capsys.readouterr()
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        rc = 0 if rc is None else rc
        out, err = self.capsys.readouterr()
        return rc, out, err


def run_child(argv, cwd, base, python=None, timeout=60, extra_env=None):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO),
           "PYTHONDONTWRITEBYTECODE": "1", "OPS_RKT": str(base / "no-rkt-here")}
    env.update(extra_env or {})
    proc = subprocess.run([python or sys.executable, "-m", "ops"] + argv, cwd=str(cwd), env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)
    return (proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace"))


def exercise(case, base, run, every_command=True):
    """check, check --json, deploy, deploy --json (without ``every_command``:
    check and deploy --json): each refused, nothing written."""
    arg, manifest = build(case, base)
    root = base / "root"
    root.mkdir()
    before = snapshot(base)
    args = case.get("args", [])
    lines = []
    commands = [(args + ["check", arg], False),
                (["--json"] + args + ["check", arg], True),
                (["--root", str(root)] + args + ["deploy", arg], False),
                (["--json", "--root", str(root)] + args + ["deploy", arg], True)]
    for argv, json_mode in commands if every_command else commands[::3]:
        rc, out, err = run(argv)
        lines.append(check_refusal(case, arg, manifest, rc, out, err, json_mode))
        assert os.listdir(str(root)) == [], "deploy of an invalid bundle wrote %s" % snapshot(root)
        assert snapshot(base) == before, "files changed: %s" % (set(snapshot(base).items()) ^ set(before.items()))
    # The same bundle gets the same message whatever the command.
    assert len(set(lines)) == 1, lines


# --- the corpus --------------------------------------------------------------------

@pytest.mark.parametrize("name", [c["name"] for c in CASES if not c.get("subprocess_only")])
def test_invalid_bundle_is_refused(name, tmp_path, capsys, monkeypatch):
    exercise(BY_NAME[name], tmp_path, InProcess(capsys, monkeypatch, tmp_path))


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_invalid_bundle_is_refused_by_the_command(name, tmp_path):
    (tmp_path / "cwd").mkdir()
    case = BY_NAME[name]
    exercise(case, tmp_path, lambda argv: run_child(argv, tmp_path / "cwd", tmp_path, timeout=30),
             every_command=bool(case.get("subprocess_only")))


def test_the_command_cases_cover_every_part_of_the_manifest():
    """Each kind of error keeps a case run by the command."""
    def part(c):
        where = c.get("where") or c.get("where_re") or ""
        m = re.match(r"(ops\.[a-z-]+|[A-Za-z]+)", where.replace("\\", ""))
        return m.group(1) if m else c.get("special") or "file"
    assert {part(c) for c in CASES} - {part(BY_NAME[n]) for n in SUBPROCESS_CASES} == set()


def test_corpus_is_large_and_each_case_is_distinct():
    assert len(CASES) >= 110
    assert len(BY_NAME) == len(CASES)
    for c in CASES:
        sources = [k for k in ("pod", "raw", "raw_b64", "generate", "special") if k in c]
        assert len(sources) == 1, c["name"]
        assert not ("where" in c and "where_re" in c), c["name"]
    contents = [json.dumps({k: v for k, v in c.items() if k not in ("name", "where", "where_re", "what")},
                           sort_keys=True) for c in CASES]
    assert len(set(contents)) == len(contents)


def test_relative_bundle_path_is_named_as_given(tmp_path):
    """WHERE is the manifest path as typed by the operator."""
    case = BY_NAME["unit-unknown-key-strat"]
    build(case, tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    for argv in (["check", "bundle"], ["--root", "root", "deploy", "bundle"],
                 ["check", "bundle/pod.json"], ["check", "./bundle"]):
        rc, out, err = run_child(argv, tmp_path, tmp_path, timeout=30)
        assert rc == 2 and out == "" and "Traceback" not in err, err
        expected = argv[-1] if argv[-1].endswith(".json") else os.path.join(argv[-1], "pod.json")
        assert re.fullmatch(r"ops: error: %s: ops\.systemd-units\[1\]\.strat: .+\n" % re.escape(expected), err), err
        assert os.listdir(str(root)) == []


# --- valid bundles -----------------------------------------------------------------

VALID_BUNDLES = {           # name: global options it needs
    "minimal": [],
    "full": [],
    "limits": [],
    "insecure-image": ["--insecure-images"],
}


def expected_summary_words(bundle):
    """The pod's name and version, each unit (by the stem of its name) and each volume."""
    pod = json.loads((bundle / "pod.json").read_text())
    ops = json.loads([a for a in pod["annotations"] if a["name"] == "ops"][0]["value"])
    words = [ops["name"], str(ops["version"])]
    for unit in ops.get("systemd-units", []):
        words.append(re.split(r"[@.]", unit["unit-file"].rsplit("/", 1)[-1])[0])
    words += [v["volume"] for v in ops.get("volumes", [])]
    return words


def test_valid_bundles_are_all_listed():
    assert sorted(VALID_BUNDLES) == sorted(p.name for p in VALID.iterdir() if (p / "pod.json").is_file())


@pytest.mark.parametrize("name", sorted(VALID_BUNDLES))
def test_valid_bundle_passes_check(name, tmp_path, capsys, monkeypatch):
    bundle = tmp_path / name
    shutil.copytree(str(VALID / name), str(bundle), symlinks=True)
    run = InProcess(capsys, monkeypatch, tmp_path)
    before = snapshot(tmp_path)
    rc, out, err = run(VALID_BUNDLES[name] + ["check", str(bundle)])
    assert "Traceback" not in err and "ops: error" not in err, err
    assert rc == 0, err
    for word in expected_summary_words(bundle):
        assert word in out, "the summary does not mention %r:\n%s" % (word, out)
    rc, out, err = run(["--json"] + VALID_BUNDLES[name] + ["check", str(bundle / "pod.json")])
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and not doc.get("error"), doc
    assert snapshot(tmp_path) == before


def test_unpinned_image_needs_insecure_images(tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "b"
    shutil.copytree(str(VALID / "insecure-image"), str(bundle))
    run = InProcess(capsys, monkeypatch, tmp_path)
    rc, out, err = run(["check", str(bundle)])
    assert rc == 2 and out == "", (rc, out, err)
    assert re.fullmatch(r"ops: error: %s/pod\.json: ops\.images\[0\](\.\w+)?: .*--insecure-images.*\n"
                        % re.escape(str(bundle)), err), err
    rc, out, err = run(["--insecure-images", "check", str(bundle)])
    assert rc == 0 and err.count("ops: error") == 0, err


def test_manifest_of_exactly_16_mib_is_accepted(tmp_path, capsys, monkeypatch):
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "pod.json").write_bytes(padded_manifest(MIB16))
    rc, out, err = InProcess(capsys, monkeypatch, tmp_path)(["check", str(bundle)])
    assert rc == 0, err
    assert "big" in out


def test_huge_integer_in_an_unvalidated_key(tmp_path):
    """JSON allows any number of digits; Python 3.11+ refuses to convert more
    than 4300.  Either way: no traceback, exit 0, or 2 with one line."""
    bundle = tmp_path / "b"
    bundle.mkdir()
    pod = standard_pod({"name": "p", "version": 1})
    text = json.dumps(pod)[:-1] + ', "x-big": %s}' % ("7" * 5000)
    (bundle / "pod.json").write_text(text)
    rc, out, err = run_child(["check", str(bundle)], tmp_path, tmp_path, timeout=30)
    assert "Traceback" not in err
    assert rc in (0, 2), err
    if rc == 2:
        assert len(err.splitlines()) == 1 and err.startswith("ops: error: %s/pod.json: " % bundle), err


@pytest.mark.parametrize("count", [10 ** 6, 2 ** 63, 10 ** 30])
def test_huge_instance_count_does_not_hang(count, tmp_path):
    """SPEC sets no upper bound on N; whatever ops decides, it must answer
    promptly (no list of 10**30 instance names) and cleanly."""
    bundle = tmp_path / "b"
    bundle.mkdir()
    (bundle / "t@.service").write_text("[Service]\nExecStart=/bin/true\n")
    (bundle / "pod.json").write_text(json.dumps(standard_pod(
        {"name": "p", "version": 1, "systemd-units": [{"unit-file": "t@.service", "instances": count}]})))
    rc, out, err = run_child(["check", str(bundle)], tmp_path, tmp_path, timeout=20)
    assert "Traceback" not in err
    assert rc in (0, 2), err
    assert len(out) < 100000
    if rc == 2:
        assert re.fullmatch(r"ops: error: %s/pod\.json: ops\.systemd-units\[0\]\.instances: .*\n"
                            % re.escape(str(bundle)), err), err
