#!/usr/bin/python
# -*- coding: utf-8 -*-
"""ops.pod.ops_pod_info: what ops knows of the pods on the managed host (``ops status``, ``ops list``,
``ops history``), for a playbook to read; changes nothing."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: ops_pod_info
short_description: Read the status, stored versions and history of pods from ops
description:
  - Runs C(ops --json status [NAME]), C(ops --json list [NAME]) and, with O(name), C(ops --json history NAME) on the
    managed host and returns their objects, for a playbook to C(register) and read (O(gather) picks among them).
  - Each stored version also carries the content digest ops recorded for it (RV(versions[].content)), which a
    playbook compares with a bundle's to know whether the host already stores that version with the same content.
  - Reads only; never takes ops's lock.
version_added: 1.0.0
options:
  name:
    description: The pod. Without it, every pod's status and stored versions, and no history.
    type: str
  gather:
    description:
      - What to ask ops; what is not asked is returned empty.
      - V(status) runs C(ops status), which reads systemd; V(versions) C(ops list); V(history) C(ops history).
    type: list
    elements: str
    choices: [status, versions, history]
    default: [status, versions, history]
  missing_ops_ok:
    description:
      - When O(ops) is a path with no file on the host (ops was never installed there), return empty lists and
        RV(ops_checksum) null instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - ops.pod.ops
attributes:
  check_mode:
    description: Reads only, so it runs in check mode as it does otherwise.
    support: full
  diff_mode:
    description: Returns no diff.
    support: none
notes:
  - A pod ops has never heard of gives empty lists, not a failure.
  - C(ops status) exits 5 when a unit drifted; that is returned as RV(drift), not a failure.
seealso:
  - module: ops.pod.ops_pod
author:
  - ops (@ops)
"""

EXAMPLES = r"""
- name: Ask ops about the pod
  ops.pod.ops_pod_info:
    name: hello
    ops: /var/lib/ops-ansible/ops.pyz
  register: hello

- name: Show the current version and the last change
  ansible.builtin.debug:
    msg: "{{ hello.status[0].version }} since {{ hello.history[-1].at }}"
  when: hello.status | length > 0
"""

RETURN = r"""
status:
  description: The C(pods) of C(ops status), one object per pod with a current version.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "hello", "version": 2, "outcome": "ok", "healthy": true, "units": [], "drift": []}]
drift:
  description: C(ops status) found a unit that is not as ops left it (its exit 5).
  returned: always
  type: bool
versions:
  description: The C(pods) of C(ops list), every stored version, each with its C(content) digest added.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "hello", "version": 2, "current": true, "outcome": "ok", "content": "sha256:59006d45..."}]
  contains:
    content:
      description: The content digest ops recorded in the version's C(state.json) (null when it has none).
      type: str
      returned: always
history:
  description: The C(history) of C(ops history NAME), oldest first (empty without O(name)).
  returned: always
  type: list
  elements: dict
  sample: [{"at": "2026-12-02T17:27:34Z", "command": "deploy", "from": null, "to": 1, "outcome": "ok"}]
current:
  description: The current version of the pod O(name), or null.
  returned: always
  type: int
ops_checksum:
  description:
    - The SHA-1 of the file O(ops) names, when it is a path (null when it is a command, or missing with
      O(missing_ops_ok)), for a playbook to tell whether the host has the ops it means to run without copying it.
  returned: always
  type: str
  sample: 4b8a7c0e2b6f6f6c1d2b8f0a9e3c5d7f1a2b3c4d
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ops.pod.plugins.module_utils.ops_cli import (OPS_ARGS, check_values, error_line,
                                                                      ops_command, run_ops, stored_content)

DRIFT = 5


def ask(module, argv, key, ok_codes=(0,)):
    """The list ``key`` of ops's JSON object for ``argv``; the task fails with ops's error line otherwise."""
    rc, doc, err = run_ops(module, argv)
    if rc not in ok_codes or doc is None:
        module.fail_json(msg=error_line(rc, doc, err), changed=False, cmd=argv, exit_code=rc, stderr=err)
    return doc.get(key) or [], rc


def main():
    args = dict(
        name=dict(type="str"),
        gather=dict(type="list", elements="str", choices=["status", "versions", "history"],
                    default=["status", "versions", "history"]),
        missing_ops_ok=dict(type="bool", default=False),
    )
    args.update(OPS_ARGS)
    module = AnsibleModule(argument_spec=args, supports_check_mode=True)
    check_values(module)
    p = module.params
    path = p["ops"] if os.sep in p["ops"] else None
    if path is not None and not os.path.isfile(path) and p["missing_ops_ok"]:
        module.exit_json(changed=False, status=[], drift=False, versions=[], history=[], current=None,
                         ops_checksum=None)
    ops = ops_command(module)
    one = [p["name"]] if p["name"] is not None else []
    gather = set(p["gather"])

    # the stored versions tell whether a named pod exists, for status and history
    versions, _ = ask(module, ops + ["list"] + one, "pods")
    for v in versions:
        v["content"] = stored_content(p["root"], v["name"], v["version"])
    status, rc, history = [], 0, []
    if "status" in gather and (versions or not one):
        status, rc = ask(module, ops + ["status"] + one, "pods", ok_codes=(0, DRIFT))
    if "history" in gather and one:
        # a pod removed long ago still has its history; one never deployed has none (ops refuses: exit 2)
        hrc, doc, err = run_ops(module, ops + ["history"] + one)
        if hrc == 0 and doc is not None:
            history = doc.get("history") or []
        elif versions:
            module.fail_json(msg=error_line(hrc, doc, err), changed=False, exit_code=hrc, stderr=err)
    current = [v["version"] for v in versions if v.get("current")] if one else []
    if "versions" not in gather:
        versions = []
    module.exit_json(changed=False, status=status, drift=rc == DRIFT, versions=versions, history=history,
                     current=current[0] if current else None,
                     ops_checksum=module.sha1(path) if path is not None else None)


if __name__ == "__main__":
    main()
