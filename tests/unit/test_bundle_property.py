"""Randomly damaged manifests: ops either accepts them or refuses them cleanly.

Each example takes one of the valid bundles in ``valid/``, damages its
manifest (deletes a key, changes a value's type, adds an unknown key, puts odd
strings, huge integers, floats, null or nested structures in place of a value,
cuts the serialized text at a random byte or flips bytes) and runs
``ops check`` and ``ops --root TMPROOT deploy`` on it in-process.

Whatever the damage, the outcome is one of two:
  * still valid: ``check`` exits 0 with a summary on stdout and no error;
  * invalid: exit 2 and exactly one ``ops: error: BUNDLE/pod.json: ...`` line,
and never a traceback, never another exit status, never a file written under
the root or changed in the bundle.
"""

import json
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

HERE = Path(__file__).resolve().parent
VALID = HERE / "valid"
BUNDLES = {"minimal": [], "full": [], "limits": [], "insecure-image": ["--insecure-images"]}
SECONDS_PER_RUN = 10
# More examples for a longer hunt: OPS_PROPERTY_EXAMPLES=5000 pytest tests/unit/test_bundle_property.py
EXAMPLES = int(os.environ.get("OPS_PROPERTY_EXAMPLES", "300"))

ODD_STRINGS = [
    "", " ", "\n", "\t", "..", ".", "/", "a/../b", "../../etc/passwd", "/etc/passwd", "\u0000", "a\u0000b",
    "\ud800", "\udc80", "\ufeff", "\u202e", "p\u00f6d", "\U0001f600", "$(id)", "a;b", "`id`", "a b", "*",
    "https://", "http://example.com/", "docker://", "sha512-", "sha512-" + "a" * 129, "x" * 300, "NaN",
    "true", "1", "-1", "web@.service", "a.service", "units/web@.service", "pod.json", "~", "%s%n",
]
ODD_KEYS = ["strat", "sytemd-units", "Name", "image", "volume", "data", "id", "", "\u0000", "name ", "ops"]
HUGE_INTS = [2 ** 63 - 1, 2 ** 63, -2 ** 63 - 1, 10 ** 30, 10 ** 400, -1, 0, 1]


class TooSlow(BaseException):
    """Not an Exception: ops's own error handling must not swallow it."""


def _alarm(signum, frame):
    raise TooSlow("ops did not answer within %d s" % SECONDS_PER_RUN)


texts = st.one_of(st.text(max_size=12), st.sampled_from(ODD_STRINGS))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True), texts,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(texts, inner, max_size=3)),
    max_leaves=6,
)


def paths(node, prefix=()):
    """Every (path, value) in a JSON document, the root included."""
    yield prefix, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def mutate(data, doc):
    """Apply one structural mutation to ``doc`` (returned, maybe replaced)."""
    all_paths = list(paths(doc))
    path, node = data.draw(st.sampled_from(all_paths), label="path")
    kind = data.draw(st.sampled_from(["delete", "replace", "wrap", "insert", "retype"]), label="mutation")
    if kind == "insert" and isinstance(node, (dict, list)):
        key = data.draw(st.one_of(st.sampled_from(ODD_KEYS), texts), label="key")
        value = data.draw(values, label="value")
        if isinstance(node, dict):
            node[key] = value
        else:
            node.insert(data.draw(st.integers(0, len(node)), label="at"), value)
        return doc
    if kind == "delete" and path:
        parent = get(doc, path[:-1])
        del parent[path[-1]]
        return doc
    if kind == "wrap":
        new = data.draw(st.sampled_from([[node], {"value": node}, [node, node], json.dumps(node)]), label="wrap")
    elif kind == "retype":
        new = data.draw(st.sampled_from([None, True, 0, 1.5, "", [], {}, str(node), 10 ** 30]), label="retype")
    else:
        new = data.draw(values, label="replacement")
    if not path:
        return new
    get(doc, path[:-1])[path[-1]] = new
    return doc


def serialize(data, doc):
    indent = data.draw(st.sampled_from([None, 2]), label="indent")
    if data.draw(st.booleans(), label="ascii"):
        return json.dumps(doc, indent=indent)
    # Non-ASCII as raw characters; a lone surrogate then becomes bytes that
    # are not UTF-8, which ops must refuse like any other undecodable file.
    return json.dumps(doc, indent=indent, ensure_ascii=False)


def damage_bytes(data, raw):
    kind = data.draw(st.sampled_from(["none"] * 4 + ["truncate", "flip"]), label="bytes")
    if kind == "truncate" and raw:
        return raw[:data.draw(st.integers(0, len(raw) - 1), label="cut")]
    if kind == "flip" and raw:
        raw = bytearray(raw)
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            i = data.draw(st.integers(0, len(raw) - 1), label="byte")
            raw[i] ^= data.draw(st.integers(1, 255), label="mask")
        return bytes(raw)
    return raw


def damaged_manifest(data, text):
    pod = json.loads(text)
    index = [a.get("name") for a in pod["annotations"]].index("ops")
    ops = json.loads(pod["annotations"][index]["value"])
    for _ in range(data.draw(st.integers(0, 3), label="ops mutations")):
        ops = mutate(data, ops)
    ops_text = serialize(data, ops)
    if data.draw(st.integers(0, 4), label="damage ops text") == 0:
        ops_text = damage_bytes(data, ops_text.encode("utf-8", "surrogatepass")).decode("utf-8", "replace")
    pod["annotations"][index]["value"] = ops_text
    for _ in range(data.draw(st.sampled_from([0, 0, 0, 1, 2]), label="outer mutations")):
        pod = mutate(data, pod)
    return damage_bytes(data, serialize(data, pod).encode("utf-8", "surrogatepass"))


def snapshot(top):
    found = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st_ = os.lstat(p)
            found[os.path.relpath(p, str(top))] = (st_.st_mode, st_.st_size, st_.st_mtime_ns)
    return found


@pytest.fixture
def ops_main(monkeypatch, tmp_path, capsys):
    from ops.cli import main
    monkeypatch.setenv("OPS_RKT", str(tmp_path / "no-rkt-here"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(str(tmp_path / "cwd"))
    previous = signal.signal(signal.SIGALRM, _alarm)

    def run(argv):
        capsys.readouterr()
        signal.alarm(SECONDS_PER_RUN)
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        finally:
            signal.alarm(0)
        out, err = capsys.readouterr()
        return (0 if rc is None else rc), out, err

    yield run
    signal.signal(signal.SIGALRM, previous)


def assert_clean(rc, out, err, manifest, json_mode=False):
    """Exit 0, or exit 2 with one error line naming the manifest; returns the line."""
    assert "Traceback" not in out + err, err
    assert rc in (0, 2), "exit %r: %s" % (rc, err)
    if rc == 0:
        assert "ops: error" not in err, err
        return None
    lines = err.split("\n")[:-1]
    if json_mode:
        doc = json.loads(out)
        assert doc["ok"] is False and isinstance(doc["error"], str), out
        assert len(lines) <= 1
        line = "ops: error: " + doc["error"]
    else:
        assert out == "", out
        assert len(lines) == 1 and err.endswith("\n"), "stderr is not one line: %r" % err
        line = lines[0]
    assert not re.search("[\x00-\x1f\x7f-\x9f]", line), "control character in %r" % line
    assert re.fullmatch(r"ops: error: %s: \S.*" % re.escape(manifest), line), line
    return line


@settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_damaged_manifest_is_accepted_or_refused_cleanly(data, ops_main):
    name = data.draw(st.sampled_from(sorted(BUNDLES)), label="bundle")
    args = BUNDLES[name]
    text = (VALID / name / "pod.json").read_text(encoding="utf-8")
    raw = damaged_manifest(data, text)
    work = Path(tempfile.mkdtemp(prefix="ops-property-"))
    try:
        bundle = work / "bundle"
        shutil.copytree(str(VALID / name), str(bundle))
        (bundle / "pod.json").write_bytes(raw)
        root = work / "root"
        root.mkdir()
        manifest = str(bundle / "pod.json")
        before = snapshot(work)

        rc, out, err = ops_main(args + ["check", str(bundle)])
        line = assert_clean(rc, out, err, manifest)
        event("check exit %d" % rc)
        if line is not None:
            where = line[len("ops: error: ") + len(manifest) + 2:]
            where = re.sub(r"\[\d+\]", "[i]", re.sub(r"\d+", "N", where.split(": ")[0]))
            event("refused at " + (where if where.startswith(("ops", "ac", "ann", "line")) else "the file"))
        if rc == 0:
            assert out.strip(), "check printed no summary"
        rc_json, out_json, err_json = ops_main(["--json"] + args + ["check", str(bundle)])
        assert rc_json == rc
        assert assert_clean(rc_json, out_json, err_json, manifest, json_mode=True) == line

        if line is not None:
            # Refused by check: deploy refuses it the same way, before touching the root.
            rc, out, err = ops_main(["--root", str(root)] + args + ["deploy", str(bundle)])
            assert rc == 2, err
            assert assert_clean(rc, out, err, manifest) == line
        else:
            # Still valid: a dry run plans without writing (rkt is absent: exit 2 is allowed).
            rc, out, err = ops_main(["--dry-run", "--root", str(root)] + args + ["deploy", str(bundle)])
            assert "Traceback" not in out + err, err
            assert rc in (0, 2), err
            if rc == 2:
                assert len(err.splitlines()) == 1 and err.startswith("ops: error: "), err
        assert os.listdir(str(root)) == [], snapshot(root)
        assert snapshot(work) == before
    finally:
        shutil.rmtree(str(work), ignore_errors=True)
