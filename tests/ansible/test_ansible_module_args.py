"""The Ansible module's argument handling (ops.pod.ops_pod, in examples/ansible/collections),
run as Ansible runs a module, with a stand-in for ops that records its argv:
every value is passed through, or the task fails; an empty string never
means "not given" (for root, that would be the live host)."""

import json
import os
import subprocess
import sys

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "examples/ansible/collections"
MODULE = COLLECTIONS / "ansible_collections/ops/pod/plugins/modules/ops_pod.py"


@pytest.fixture
def module(tmp_path):
    calls = tmp_path / "calls"
    fake = tmp_path / "ops"
    fake.write_text("#!%s\nimport json, sys\nopen(%r, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
                    "print(json.dumps({'ok': True, 'changed': False, 'command': 'undeploy', "
                    "'pod': None, 'previous': None, 'actions': []}))\n" % (sys.executable, str(calls)))
    fake.chmod(0o755)

    def run(**params):
        params.setdefault("ops", str(fake))
        args = tmp_path / "args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        # as Ansible ships it: the collection's module_utils importable as ansible_collections.ops.pod
        env = dict(os.environ, PYTHONPATH=str(COLLECTIONS))
        proc = subprocess.run([sys.executable, str(MODULE), str(args)], cwd=str(tmp_path), env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        argvs = [json.loads(l) for l in calls.read_text().splitlines()] if calls.exists() else []
        if calls.exists():
            os.unlink(str(calls))
        return out, argvs
    return run


@pytest.mark.parametrize("params,key", [
    (dict(root=""), "root"), (dict(root="  "), "root"), (dict(name=""), "name"),
    (dict(python="", ops="x.pyz"), "python"), (dict(ops=""), "ops"),
    (dict(options=["--rkt", ""]), "options"), (dict(bundle="", state="deployed", name=None), "bundle"),
])
def test_an_empty_value_fails_the_task_and_runs_nothing(module, params, key):
    base = dict(state="undeployed", name="web")
    base.update(params)
    base = {k: v for k, v in base.items() if v is not None}
    out, argvs = module(**base)
    assert out.get("failed") is True and out["msg"].startswith(key + ": "), out
    assert argvs == []


def test_every_value_given_is_passed_to_ops(module, tmp_path):
    out, argvs = module(state="undeployed", name="web", root=str(tmp_path), settle=0.5,
                        lock_timeout=3, insecure_images=True, options=["--rkt", "/bin/true"],
                        version=2)
    assert out.get("failed") is not True, out
    assert argvs == [["--json", "--root", str(tmp_path), "--settle", "0.5", "--lock-timeout", "3.0",
                      "--insecure-images", "--rkt", "/bin/true", "undeploy", "web:2"]]


@pytest.mark.parametrize("params,msg", [
    (dict(root=None), "root: null"), (dict(ops=None), "ops: null"), (dict(version=None), "version: null"),
    (dict(version=True), "version: true is a boolean"), (dict(settle=True), "settle: true is a boolean"),
    (dict(lock_timeout=False), "lock_timeout: false is a boolean"),
    (dict(version="1_0"), "version: '1_0' is not a whole number"),
    (dict(version="1e3"), "version: '1e3' is not a whole number"),
    (dict(settle="1e-7"), "settle: '1e-7' is not a plain decimal number"),
    (dict(lock_timeout=float("inf")), "lock_timeout: inf is not a finite number"),
])
def test_a_null_or_a_value_ansible_would_turn_into_another_number_fails_the_task(module, params, msg):
    # root: null (YAML's `root:` with nothing after it) would have meant the live host; version: true
    # would have been version 1, "1_0" version 10
    base = dict(state="undeployed", name="web")
    base.update(params)
    out, argvs = module(**base)
    assert out.get("failed") is True and out["msg"].startswith(msg), out
    assert argvs == []


def test_numbers_reach_ops_as_plain_decimals(module):
    out, argvs = module(state="undeployed", name="web", settle=0.0000001, lock_timeout="2.5", version="3")
    assert out.get("failed") is not True, out
    assert argvs == [["--json", "--settle", "0.0000001", "--lock-timeout", "2.5", "undeploy", "web:3"]]
