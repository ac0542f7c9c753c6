#!/usr/bin/python
# -*- coding: utf-8 -*-
"""An Ansible module that runs ops on the managed host and reports what it did.

It runs on the host with the host's Python (3.8 or newer) and needs nothing but the standard library and
Ansible's module_utils; ops itself is called as a command (``ops``, or ``python3 ops.pyz``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ops_pod
short_description: Deploy, redeploy, undeploy or remove a pod with ops
description:
  - Runs C(ops --json) on the managed host and reports C(changed) from what ops says it did.
  - In check mode it runs C(ops --dry-run --json) instead, which takes no lock and changes nothing; the task is
    C(changed) when ops plans at least one action.
  - With C(--diff) it returns the difference of every unit file ops installs or removes, as found under
    C(ROOT/etc/systemd/system) before and after (in check mode, after is the bundle's or the stored version's file).
  - When ops fails, the task fails with ops's own error line as C(msg). A deploy that failed while switching is
    rolled back by ops; the task then reports C(changed) and C(rolled_back), since the previous version's units
    were stopped and started again and the failed version is stored with the outcome C(failed).
options:
  state:
    description:
      - C(deployed) runs C(ops deploy BUNDLE), the bundle's version becomes the current, running version.
      - C(redeployed) runs C(ops redeploy NAME[:VERSION]) from the versions stored on the host; without I(version),
        the newest stored version older than the current one (not idempotent, each run goes back one more).
      - C(undeployed) runs C(ops undeploy NAME[:VERSION]), the units are stopped and removed, stored versions kept.
      - C(absent) runs C(ops undeploy NAME[:VERSION] --remove), which also deletes the stored version(s), their
        volumes and unused images.
    type: str
    choices: [deployed, redeployed, undeployed, absent]
    default: deployed
  bundle:
    description: The bundle on the managed host, its C(pod.json) or the directory holding it. Required with
      I(state=deployed), and only allowed there.
    type: path
  name:
    description: The pod's name. Required unless I(state=deployed).
    type: str
  version:
    description: A stored version of the pod, for I(state=redeployed), C(undeployed) or C(absent).
    type: int
  ops:
    description:
      - How to run ops on the managed host. A path ending in C(.pyz) or C(.py) is run with I(python);
        anything else is a command looked up in C(PATH) (or a path to it).
    type: str
    default: ops
  python:
    description: The Python 3.8+ that runs I(ops) when it is a C(.pyz). Default the Python running this module.
    type: str
  settle:
    description: C(--settle) seconds, how long started units must stay active.
    type: float
  lock_timeout:
    description: C(--lock-timeout) seconds to wait for ops's lock.
    type: float
  insecure_images:
    description: C(--insecure-images), accept images with neither id nor signature.
    type: bool
    default: false
  root:
    description: C(--root DIR), act on an offline tree (enable/disable only). Default C(/).
    type: path
  options:
    description: Further global ops options, put before the command, e.g. C(["--rkt", "/usr/local/bin/rkt"]).
    type: list
    elements: str
    default: []
notes:
  - ops must run as root on the host (C(become), or connect as root), except in check mode.
  - Check mode reads the bundle and the host; it never takes ops's lock, so it may run beside a deploy.
  - The diff covers unit files only, not the drop-ins ops writes next to them (C(UNIT.d/50-ops.conf)).
  - An ops JSON object is returned as I(ops_result) in every outcome, for C(register).
author:
  - ops
"""

EXAMPLES = r"""
- name: Deploy version 2 of the pod (the bundle was copied to the host before)
  ops_pod:
    bundle: /var/lib/ops-ansible/bundles/hello/2
    ops: /var/lib/ops-ansible/ops.pyz
    settle: 5

- name: Go back to stored version 1
  ops_pod:
    state: redeployed
    name: hello
    version: 1

- name: Stop the pod and delete everything of it
  ops_pod:
    state: absent
    name: hello
"""

RETURN = r"""
command:
  description: The ops command run (deploy, redeploy or undeploy).
  returned: always
  type: str
  sample: deploy
pod:
  description: The pod and version ops acted on.
  returned: when ops names one
  type: dict
  sample: {"name": "hello", "version": 2}
previous:
  description: The pod's current version before the run (null when it had none).
  returned: always
  type: int
  sample: 1
actions:
  description: What ops did or, in check mode, would do (ops's plan).
  returned: always
  type: list
  sample: [{"action": "install-unit", "target": "hello-web.service"}]
rolled_back:
  description: ops failed while switching and put the previous version back.
  returned: always
  type: bool
exit_code:
  description: ops's exit status (0 done, 1 failed and rolled back, 2 refused, 3 lock busy, 4 rollback failed).
  returned: always
  type: int
ops_result:
  description: The JSON object ops printed.
  returned: when ops printed one
  type: dict
cmd:
  description: The command line run.
  returned: always
  type: list
stderr:
  description: ops's progress lines and error.
  returned: always
  type: str
diff:
  description: Per changed unit file, before and after (with C(--diff)).
  returned: with --diff, when a unit file differs
  type: list
"""

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

UNIT_DIR = "etc/systemd/system"
ERROR_PREFIX = "ops: error: "


def check_values(module):
    """Every value given is passed on to ops, or the task fails: an empty string (``root: ""``, an
    unset variable) is never taken for "not given", which for root would mean the live host."""
    for key, value in sorted(module.params.items()):
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.strip() == "":
                module.fail_json(msg="%s: %s; leave the option out for its default"
                                 % (key, "an empty string" if v == "" else "only spaces"
                                    if not isinstance(value, list) else "an empty element"),
                                 changed=False)


def ops_command(module):
    """argv of ops with its global options (without --dry-run and the command)."""
    p = module.params
    ops = p["ops"]
    if os.sep in ops and not os.path.isfile(ops):
        module.fail_json(msg="ops: %s: no such file on the host" % ops, changed=False)
    if ops.endswith((".pyz", ".py")):
        argv = [sys.executable if p["python"] is None else p["python"], ops]
    elif os.sep in ops:
        argv = [ops]
    else:
        argv = [module.get_bin_path(ops, required=True)]
    argv.append("--json")
    if p["root"] is not None:
        argv += ["--root", p["root"]]
    if p["settle"] is not None:
        argv += ["--settle", str(p["settle"])]
    if p["lock_timeout"] is not None:
        argv += ["--lock-timeout", str(p["lock_timeout"])]
    if p["insecure_images"]:
        argv.append("--insecure-images")
    return argv + list(p["options"])


def command_args(params):
    state = params["state"]
    if state == "deployed":
        return ["deploy", params["bundle"]]
    ref = params["name"] if params["version"] is None else "%s:%d" % (params["name"], params["version"])
    return {"redeployed": ["redeploy", ref], "undeployed": ["undeploy", ref],
            "absent": ["undeploy", ref, "--remove"]}[state]


def run_ops(module, argv):
    """(exit status, ops's JSON object or None, stderr)."""
    rc, out, err = module.run_command(argv)
    doc = None
    text = out.strip()
    if text:
        try:
            doc = json.loads(text.splitlines()[-1])
        except ValueError:
            doc = None
    return rc, doc if isinstance(doc, dict) else None, err


def error_line(rc, doc, err):
    """ops's own `ops: error: ...` line, else what is known of why it did not run."""
    lines = [l for l in err.splitlines() if l.startswith(ERROR_PREFIX)]
    if lines:
        return lines[-1]
    if doc and doc.get("error"):
        return ERROR_PREFIX + doc["error"]
    tail = [l for l in err.splitlines() if l.strip()]
    return "ops exited %d without an error line%s" % (rc, (": " + tail[-1]) if tail else "")


# -- diff ---------------------------------------------------------------------------------------------------

def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except (IOError, OSError):
        return ""


def bundle_unit_files(bundle):
    """{unit name: path of its file in the bundle} from the annotation of the bundle's pod.json (ops has
    validated it); a remote unit file maps to its URI."""
    manifest = os.path.join(bundle, "pod.json") if os.path.isdir(bundle) else bundle
    with open(manifest, "rb") as f:
        pod = json.loads(f.read().decode("utf-8"))
    value = [a["value"] for a in pod["annotations"] if a.get("name") == "ops"][0]
    files = {}
    for unit in json.loads(value).get("systemd-units", []):
        ref = unit["unit-file"]
        name = ref.rstrip("/").rsplit("/", 1)[-1]
        files[name] = ref if "://" in ref else os.path.join(os.path.dirname(manifest), ref)
    return files


class UnitDiff:
    """The unit files a plan installs or removes, read before ops runs; ``after()`` makes Ansible's diff."""

    def __init__(self, params, actions):
        self.root = "/" if params["root"] is None else params["root"]
        self.installs = [a["target"] for a in actions if a["action"] == "install-unit"]
        self.removals = [a["target"] for a in actions if a["action"] == "remove-unit"]
        self.before = dict((u, read_text(self.installed(u))) for u in self.installs + self.removals)

    def installed(self, unit):
        return os.path.join(self.root, UNIT_DIR, unit)

    def planned(self, params, pod):
        """{unit: (text, where)} of what the plan installs, from the bundle or the stored version."""
        if params["state"] == "deployed":
            files = bundle_unit_files(params["bundle"])
        else:
            units = os.path.join(self.root, "etc/ops/pods", pod["name"], str(pod["version"]), "units")
            files = dict((u, os.path.join(units, u)) for u in self.installs)
        out = {}
        for u in self.installs:
            path = files.get(u, "")
            text = "(ops downloads %s)\n" % path if "://" in path else read_text(path)
            out[u] = (text, path)
        return out

    def after(self, planned=None):
        """Ansible's diff list: ``planned`` (check mode) or the files now installed."""
        diffs = []
        for unit in self.installs + self.removals:
            header = self.installed(unit)
            if planned is not None:
                text, where = planned.get(unit, ("", header))
            else:
                text, where = read_text(header), header
            if unit in self.removals and unit not in self.installs and planned is not None:
                text, where = "", header + " (removed)"
            if text != self.before[unit]:
                diffs.append({"before_header": header, "after_header": where,
                              "before": self.before[unit], "after": text})
        return diffs


# -- the module ---------------------------------------------------------------------------------------------

def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", default="deployed",
                       choices=["deployed", "redeployed", "undeployed", "absent"]),
            bundle=dict(type="path"),
            name=dict(type="str"),
            version=dict(type="int"),
            ops=dict(type="str", default="ops"),
            python=dict(type="str"),
            settle=dict(type="float"),
            lock_timeout=dict(type="float"),
            insecure_images=dict(type="bool", default=False),
            root=dict(type="path"),
            options=dict(type="list", elements="str", default=[]),
        ),
        required_if=[("state", "deployed", ["bundle"]),
                     ("state", "redeployed", ["name"]),
                     ("state", "undeployed", ["name"]),
                     ("state", "absent", ["name"])],
        mutually_exclusive=[("bundle", "name"), ("bundle", "version")],
        supports_check_mode=True,
    )
    p = module.params
    check_values(module)
    if p["bundle"] and p["state"] != "deployed":
        module.fail_json(msg="bundle is only for state=deployed (state=%s takes name and version)" % p["state"])
    ops = ops_command(module)
    args = command_args(p)

    unit_diff = None
    if module._diff or module.check_mode:
        # the plan, from ops itself: no lock, nothing changed
        argv = ops + ["--dry-run"] + args
        rc, doc, err = run_ops(module, argv)
        if rc != 0 or doc is None:
            module.fail_json(msg=error_line(rc, doc, err), changed=False, cmd=argv, exit_code=rc,
                             rolled_back=False, stderr=err, ops_result=doc)
        if module._diff:
            unit_diff = UnitDiff(p, doc["actions"])
        if module.check_mode:
            result = dict(changed=bool(doc["actions"]), command=doc["command"], pod=doc["pod"],
                          previous=doc["previous"], actions=doc["actions"], rolled_back=False,
                          exit_code=rc, cmd=argv, stderr=err, ops_result=doc)
            if unit_diff is not None:
                result["diff"] = unit_diff.after(unit_diff.planned(p, doc["pod"]))
            module.exit_json(**result)

    argv = ops + args
    rc, doc, err = run_ops(module, argv)
    doc_or_empty = doc or {}
    result = dict(changed=bool(doc_or_empty.get("changed")), command=doc_or_empty.get("command", args[0]),
                  pod=doc_or_empty.get("pod"), previous=doc_or_empty.get("previous"),
                  actions=doc_or_empty.get("actions", []), rolled_back=bool(doc_or_empty.get("rolled_back")),
                  exit_code=rc, cmd=argv, stderr=err, ops_result=doc)
    if unit_diff is not None:
        result["diff"] = unit_diff.after()
    if rc != 0 or doc is None or not doc.get("ok"):
        module.fail_json(msg=error_line(rc, doc, err), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
