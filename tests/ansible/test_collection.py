"""The ops.pod collection (examples/ansible/collections/ansible_collections/ops/pod) as its users get it: built with
``ansible-galaxy collection build``, installed from that tarball with ``ansible-galaxy collection install --offline``,
documented by ``ansible-doc``, accepted by ``ansible-test sanity --test validate-modules``, and its modules run by a
real ``ansible-playbook`` from the installed copy against an offline tree (``root``, ops's ``--root``).

One story in file order; the installed collection and the tree are shared by the module.
"""

import json
import os
import re
import shutil
import sys
import time

import pytest

from conftest import PATH, POD, REPO, recap, run_on_machine, show_run

SOURCE = os.path.join(REPO, "examples", "ansible", "collections", "ansible_collections", "ops", "pod")
MODULES = ("ops_pod", "ops_pod_info")
SANITY_TIMEOUT = 600


def tool(ansible_bin, name):
    return os.path.join(ansible_bin, name)


@pytest.fixture(scope="module")
def place(workdir):
    d = os.path.join(workdir, "collection")
    os.makedirs(os.path.join(d, "home"))
    return d


def env_for(place, collections=None):
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": os.path.join(place, "home"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_RETRY_FILES_ENABLED": "0", "ANSIBLE_LOCAL_TEMP": os.path.join(place, "local-tmp")}
    if collections:
        env["ANSIBLE_COLLECTIONS_PATH"] = collections
    return env


@pytest.fixture(scope="module")
def installed(ansible_bin, place):
    """The collection built from the repository and installed from the tarball: its collections path."""
    out = os.path.join(place, "dist")
    r = run_on_machine([tool(ansible_bin, "ansible-galaxy"), "collection", "build", SOURCE, "--output-path", out],
                       env=env_for(place), cwd=place, timeout=300)
    assert r.returncode == 0, show_run(r)
    tarball = os.path.join(out, "ops-pod-1.0.0.tar.gz")
    assert os.path.isfile(tarball), show_run(r)
    target = os.path.join(place, "installed")
    r = run_on_machine([tool(ansible_bin, "ansible-galaxy"), "collection", "install", "--offline", "-p", target,
                        tarball], env=env_for(place), cwd=place, timeout=300)
    assert r.returncode == 0, show_run(r)
    return target


def test_the_installed_collection_holds_both_modules_and_their_shared_code(installed):
    base = os.path.join(installed, "ansible_collections", "ops", "pod")
    with open(os.path.join(base, "MANIFEST.json")) as f:
        info = json.load(f)["collection_info"]
    assert (info["namespace"], info["name"]) == ("ops", "pod")
    for rel in ["plugins/modules/%s.py" % m for m in MODULES] + ["plugins/module_utils/ops_cli.py",
                                                                  "plugins/doc_fragments/ops.py"]:
        with open(os.path.join(SOURCE, rel), "rb") as a, open(os.path.join(base, rel), "rb") as b:
            assert a.read() == b.read(), rel
    # one copy of the module in the repository: the old library/ is gone
    assert not os.path.exists(os.path.join(REPO, "examples", "ansible", "library"))


def test_ansible_doc_shows_every_option_of_the_installed_modules(ansible_bin, place, installed):
    r = run_on_machine([tool(ansible_bin, "ansible-doc"), "--json"] + ["ops.pod." + m for m in MODULES],
                       env=env_for(place, installed), cwd=place, timeout=120)
    assert r.returncode == 0, show_run(r)
    docs = json.loads(r.stdout)
    for m in MODULES:
        doc = docs["ops.pod." + m]
        assert doc["doc"]["filename"].startswith(installed), doc["doc"]["filename"]
        with open(os.path.join(SOURCE, "plugins", "modules", m + ".py")) as f:
            source = f.read()
        with open(os.path.join(SOURCE, "plugins", "module_utils", "ops_cli.py")) as f:
            shared = f.read()
        spec = set(re.findall(r"^ {8}(\w+)=dict\(", source, re.M)) | set(re.findall(r"^ {4}(\w+)=dict\(", shared, re.M))
        assert set(doc["doc"]["options"]) == spec, (m, sorted(doc["doc"]["options"]), sorted(spec))
        assert doc["examples"] and doc["return"]
    assert {"rolled_back", "exit_code", "diff", "actions"} <= set(docs["ops.pod.ops_pod"]["return"])
    assert {"status", "history", "versions", "current"} <= set(docs["ops.pod.ops_pod_info"]["return"])
    # the text a user reads
    r = run_on_machine([tool(ansible_bin, "ansible-doc"), "ops.pod.ops_pod_info"], env=env_for(place, installed),
                       cwd=place, timeout=120)
    assert r.returncode == 0 and "ops --json history NAME" in r.stdout, show_run(r)


def test_ansible_test_sanity_validate_modules_passes(ansible_bin, place):
    # ansible-test wants the collection under ansible_collections/NS/NAME and writes tests/output there: a copy
    copy = os.path.join(place, "sanity", "ansible_collections", "ops", "pod")
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("output", "__pycache__"))
    version = "%d.%d" % sys.version_info[:2]
    # the user's home: where tools/install-test-deps.sh cached pip's bootstrap and ansible-test keeps its virtualenvs
    env = dict(env_for(place), HOME=os.path.expanduser("~"))
    started = time.monotonic()
    r = run_on_machine([tool(ansible_bin, "ansible-test"), "sanity", "--test", "validate-modules", "--python",
                        version, "--local", "--color", "no"], env=env, cwd=copy, timeout=SANITY_TIMEOUT)
    print("\nansible-test sanity --test validate-modules: exit %d in %.1f s" % (r.returncode, time.monotonic() - started))
    if "get-pip" in r.stdout + r.stderr and r.returncode != 0:
        pytest.fail("ansible-test cannot bootstrap pip: run tools/install-test-deps.sh\n" + show_run(r), pytrace=False)
    assert r.returncode == 0, show_run(r)
    assert 'Running sanity test "validate-modules"' in r.stdout + r.stderr, show_run(r)
    assert "ERROR" not in r.stdout + r.stderr, show_run(r)


# -- the installed modules under ansible-playbook, on an offline tree ---------------------------------------

INFO_PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: ask ops
      ops.pod.ops_pod_info:
        name: "{{ pod }}"
        ops: "{{ pyz }}"
        root: "{{ tree }}"
      register: facts
    - name: show
      ansible.builtin.debug:
        msg: "FACTS current={{ facts.current }} status={{ facts.status | map(attribute='version') | list }}
          history={{ facts.history | map(attribute='command') | list }}->{{ facts.history[-1].to }}
          contents={{ facts.versions | map(attribute='content') | list }}"
"""

STEP_BACK_PLAY = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - name: step back
      ops.pod.ops_pod:
        state: redeployed
        name: "{{ pod }}"
        ops: "{{ pyz }}"
        root: "{{ tree }}"
      register: back
    - name: show
      ansible.builtin.debug:
        msg: "BACK changed={{ back.changed }} msg={{ back.msg | default('') }}"
"""


@pytest.fixture(scope="module")
def tree(place, pyz, bundles):
    """An offline tree (ops --root) where v1 then v2 of the pod were deployed."""
    root = os.path.join(place, "tree")
    os.makedirs(root)
    for v in (1, 2):
        r = run_on_machine([sys.executable, pyz, "--root", root, "-q", "deploy", bundles[v]], env=env_for(place),
                           cwd=place, timeout=120)
        assert r.returncode == 0, show_run(r)
    return root


def playbook(ansible_bin, place, installed, text, name, pyz, tree):
    path = os.path.join(place, name)
    with open(path, "w") as f:
        f.write(text)
    r = run_on_machine([tool(ansible_bin, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                        "-e", "ansible_python_interpreter=" + sys.executable, "-e", "pod=" + POD, "-e", "pyz=" + pyz,
                        "-e", "tree=" + tree, path], env=env_for(place, installed), cwd=place, timeout=300)
    assert r.returncode == 0, show_run(r)
    return r, recap(r.stdout)[0]["localhost"]


def current(tree):
    return int(os.readlink(os.path.join(tree, "etc/ops/current", POD)).rsplit("/", 1)[1])


def test_a_playbook_reads_status_history_and_digests_from_the_info_module(ansible_bin, place, installed, pyz, tree):
    r, host = playbook(ansible_bin, place, installed, INFO_PLAY, "info.yml", pyz, tree)
    assert host["changed"] == 0, show_run(r)
    m = re.search(r"FACTS current=(\S+) status=(\[.*?\])\s+history=(\[.*?\])->(\S+)\s+contents=(\[.*?\])\"",
                  r.stdout)
    assert m, show_run(r)
    assert m.group(1) == "2" and m.group(2) == "[2]", show_run(r)
    assert m.group(3) == "['deploy', 'deploy']" and m.group(4) == "2", show_run(r)
    recorded = []
    for v in (1, 2):
        with open(os.path.join(tree, "etc/ops/pods", POD, str(v), "state.json")) as f:
            recorded.append(json.load(f)["content"])
    assert all(d.startswith("sha256:") for d in recorded)
    assert m.group(5) == repr(recorded), show_run(r)


def test_stepping_back_without_a_version_happens_once(ansible_bin, place, installed, pyz, tree):
    assert current(tree) == 2
    r, host = playbook(ansible_bin, place, installed, STEP_BACK_PLAY, "back.yml", pyz, tree)
    assert host["changed"] == 1 and "BACK changed=True" in r.stdout, show_run(r)
    assert current(tree) == 1
    r, host = playbook(ansible_bin, place, installed, STEP_BACK_PLAY, "back.yml", pyz, tree)
    assert host["changed"] == 0, show_run(r)
    assert "BACK changed=False msg=%s is at 1, stepped back from 2" % POD in r.stdout, show_run(r)
    assert current(tree) == 1
    # a newer deploy since: stepping back is asked again, and happens
    r = run_on_machine([sys.executable, pyz, "--root", tree, "-q", "redeploy", POD + ":2"], env=env_for(place),
                       cwd=place, timeout=120)
    assert r.returncode == 0, show_run(r)
    r, host = playbook(ansible_bin, place, installed, STEP_BACK_PLAY, "back.yml", pyz, tree)
    assert host["changed"] == 1, show_run(r)
    assert current(tree) == 1
