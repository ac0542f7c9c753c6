# -*- coding: utf-8 -*-
"""How the modules of ops.pod run ops on the managed host: the options they share, the command line, ops's JSON
object and its error line.  Standard library and AnsibleModule only; it runs with the host's Python (3.8+)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sys

ERROR_PREFIX = "ops: error: "

# The options of every module of the collection that say how to run ops (documented in doc_fragments/ops.py).
OPS_ARGS = dict(
    ops=dict(type="str", default="ops"),
    python=dict(type="str"),
    root=dict(type="path"),
    options=dict(type="list", elements="str", default=[]),
)


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


def ops_command(module, extra=()):
    """argv of ops with ``--json``, ``--root`` and the further global options (without --dry-run and the
    command); ``extra`` are global options the module itself adds."""
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
    return argv + list(extra) + list(p["options"])


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
    lines = [line for line in err.splitlines() if line.startswith(ERROR_PREFIX)]
    if lines:
        return lines[-1]
    if doc and doc.get("error"):
        return ERROR_PREFIX + doc["error"]
    tail = [line for line in err.splitlines() if line.strip()]
    return "ops exited %d without an error line%s" % (rc, (": " + tail[-1]) if tail else "")


def stored_content(root, name, version):
    """The content digest ops recorded for stored version NAME:VERSION (``state.json``, see SPEC's layout), or
    None when it has none: what a bundle's digest is compared with before copying it again."""
    path = os.path.join("/" if root is None else root, "etc/ops/pods", name, str(version), "state.json")
    try:
        with open(path, "rb") as f:
            state = json.loads(f.read().decode("utf-8"))
    except (IOError, OSError, ValueError):
        return None
    content = state.get("content") if isinstance(state, dict) else None
    return content if isinstance(content, str) else None
