#!/usr/bin/python
# -*- coding: utf-8 -*-
"""ops.pod.ops_pod: an Ansible module that runs ops on the managed host and reports what it did.

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
  - With C(--diff) it returns C(ops diff) of the pod's current version against the bundle or the stored version
    the task goes to (unit files as a unified diff, one line per other change); for an undeploy, the units removed.
  - When ops fails, the task fails with ops's own error line as C(msg). A deploy that failed while switching is
    rolled back by ops; the task then reports C(changed) and C(rolled_back), since the previous version's units
    were stopped and started again and the failed version is stored with the outcome C(failed).
version_added: 1.0.0
options:
  state:
    description:
      - V(deployed) runs C(ops deploy BUNDLE), the bundle's version becomes the current, running version.
      - V(redeployed) runs C(ops redeploy NAME[:VERSION]) from the versions stored on the host. Without O(version)
        it steps back once, to the newest stored version older than the current one; when the current version
        was itself reached by such a step back (the pod's last history entry is a redeploy from a newer version to
        it), nothing is done, so a second run does not step back again. Give O(version) to go further back.
      - V(undeployed) runs C(ops undeploy NAME[:VERSION]), the units are stopped and removed, stored versions kept.
      - V(absent) runs C(ops undeploy NAME[:VERSION] --remove), which also deletes the stored version(s), their
        volumes and unused images.
    type: str
    choices: [deployed, redeployed, undeployed, absent]
    default: deployed
  bundle:
    description: The bundle on the managed host, its C(pod.json) or the directory holding it. Required with
      O(state=deployed), and only allowed there.
    type: path
  name:
    description: The pod's name. Required unless O(state=deployed).
    type: str
  version:
    description: A stored version of the pod, for O(state=redeployed), V(undeployed) or V(absent).
    type: int
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
extends_documentation_fragment:
  - ops.pod.ops
attributes:
  check_mode:
    description: Runs C(ops --dry-run); nothing on the host changes.
    support: full
  diff_mode:
    description: C(ops diff) of the current version against the target.
    support: full
notes:
  - ops must run as root on the host (C(become), or connect as root), except in check mode.
  - Check mode reads the bundle and the host; it never takes ops's lock, so it may run beside a deploy.
  - An ops JSON object is returned as RV(ops_result) in every outcome, for C(register).
seealso:
  - module: ops.pod.ops_pod_info
author:
  - ops (@ops)
"""

EXAMPLES = r"""
- name: Deploy version 2 of the pod (the bundle was copied to the host before)
  ops.pod.ops_pod:
    bundle: /var/lib/ops-ansible/bundles/hello/2
    ops: /var/lib/ops-ansible/ops.pyz
    settle: 5

- name: Go back to stored version 1
  ops.pod.ops_pod:
    state: redeployed
    name: hello
    version: 1

- name: Stop the pod and delete everything of it
  ops.pod.ops_pod:
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
  elements: dict
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
  elements: str
stderr:
  description: ops's progress lines and error.
  returned: always
  type: str
diff:
  description: C(ops diff) of the current version against the target, as C(prepared) (with C(--diff)).
  returned: with --diff, when something differs
  type: dict
  sample: {"prepared": "--- hello:1 hello-web.service\n+++ hello:2 hello-web.service\n..."}
msg:
  description: Why nothing was done (a step back already taken), or ops's error line when the task fails.
  returned: sometimes
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ops.pod.plugins.module_utils.ops_cli import (OPS_ARGS, check_values, error_line,
                                                                      number_text, ops_command, run_ops)


def global_options(module):
    """The global ops options of this module's own parameters."""
    params = module.params
    argv = []
    if params["settle"] is not None:
        argv += ["--settle", number_text(module, "settle")]
    if params["lock_timeout"] is not None:
        argv += ["--lock-timeout", number_text(module, "lock_timeout")]
    if params["insecure_images"]:
        argv.append("--insecure-images")
    return argv


def command_args(params):
    state = params["state"]
    if state == "deployed":
        return ["deploy", params["bundle"]]
    ref = params["name"] if params["version"] is None else "%s:%d" % (params["name"], params["version"])
    return {"redeployed": ["redeploy", ref], "undeployed": ["undeploy", ref],
            "absent": ["undeploy", ref, "--remove"]}[state]


def stepped_back(module, ops, name):
    """The history entry that made the current version by stepping back from a newer one (the pod's last
    entry, a redeploy with outcome ok from a newer version to the current one), or None."""
    rc, listing, err = run_ops(module, ops + ["list", name])
    if rc != 0 or listing is None:
        module.fail_json(msg=error_line(rc, listing, err), changed=False, exit_code=rc, stderr=err)
    current = [v["version"] for v in listing.get("pods", []) if v.get("current")]
    if not current:
        return None
    rc, doc, err = run_ops(module, ops + ["history", name])
    events = (doc or {}).get("history") or []
    if rc != 0 or not events:
        return None
    last = events[-1]
    if (last.get("command") == "redeploy" and last.get("outcome") == "ok" and last.get("to") == current[0]
            and isinstance(last.get("from"), int) and last["from"] > current[0]):
        return last
    return None


def ops_diff(module, ops, params, plan):
    """Ansible's diff of the plan ``plan`` (ops's dry-run object): ``ops diff`` of the current version against
    the bundle or the stored version the task goes to, or the units an undeploy removes; None when nothing
    differs."""
    pod = plan.get("pod") or {}
    name = pod.get("name") or params["name"]
    if params["state"] in ("undeployed", "absent"):
        gone = [a["target"] for a in plan["actions"] if a["action"] == "remove-unit"]
        return {"prepared": "".join("%s: removed\n" % u for u in gone)} if gone else None
    target = params["bundle"] if params["state"] == "deployed" else "%s:%d" % (name, pod["version"])
    if plan.get("previous") is None:
        return {"prepared": "%s has no current version: all of %s is new\n" % (name, target)}
    argv = ops + ["diff", name, target]
    rc, doc, err = run_ops(module, argv)
    if rc != 0 or doc is None:
        module.warn("no diff: %s" % error_line(rc, doc, err))
        return None
    return {"prepared": doc.get("diff") or ""} if doc.get("differs") else None


def main():
    args = dict(
        state=dict(type="str", default="deployed",
                   choices=["deployed", "redeployed", "undeployed", "absent"]),
        bundle=dict(type="path"),
        name=dict(type="str"),
        version=dict(type="int"),
        settle=dict(type="float"),
        lock_timeout=dict(type="float"),
        insecure_images=dict(type="bool", default=False),
    )
    args.update(OPS_ARGS)
    module = AnsibleModule(
        argument_spec=args,
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
    ops = ops_command(module, global_options(module))
    args = command_args(p)

    if p["state"] == "redeployed" and p["version"] is None:
        event = stepped_back(module, ops, p["name"])
        if event is not None:
            module.exit_json(changed=False, command="redeploy", pod={"name": p["name"], "version": event["to"]},
                             previous=event["to"], actions=[], rolled_back=False, exit_code=0, cmd=[],
                             stderr="", ops_result=None,
                             msg="%s is at %d, stepped back from %d on %s: give version to go further back"
                                 % (p["name"], event["to"], event["from"], event.get("at")))

    diff = None
    if module._diff or module.check_mode:
        # the plan, from ops itself: no lock, nothing changed
        argv = ops + ["--dry-run"] + args
        rc, doc, err = run_ops(module, argv)
        if rc != 0 or doc is None:
            module.fail_json(msg=error_line(rc, doc, err), changed=False, cmd=argv, exit_code=rc,
                             rolled_back=False, stderr=err, ops_result=doc)
        if module._diff and doc["actions"]:
            diff = ops_diff(module, ops, p, doc)
        if module.check_mode:
            result = dict(changed=bool(doc["actions"]), command=doc["command"], pod=doc["pod"],
                          previous=doc["previous"], actions=doc["actions"], rolled_back=False,
                          exit_code=rc, cmd=argv, stderr=err, ops_result=doc)
            if diff is not None:
                result["diff"] = diff
            module.exit_json(**result)

    argv = ops + args
    rc, doc, err = run_ops(module, argv)
    doc_or_empty = doc or {}
    result = dict(changed=bool(doc_or_empty.get("changed")), command=doc_or_empty.get("command", args[0]),
                  pod=doc_or_empty.get("pod"), previous=doc_or_empty.get("previous"),
                  actions=doc_or_empty.get("actions", []), rolled_back=bool(doc_or_empty.get("rolled_back")),
                  exit_code=rc, cmd=argv, stderr=err, ops_result=doc)
    if diff is not None and result["changed"] and not result["rolled_back"]:
        result["diff"] = diff
    if rc != 0 or doc is None or not doc.get("ok"):
        module.fail_json(msg=error_line(rc, doc, err), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
