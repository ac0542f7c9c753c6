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


def given(module):
    """The task's own arguments as Ansible handed them to the module, before its conversions: what was given
    at all (an explicit null too), and as what type."""
    from ansible.module_utils.basic import _load_params
    try:
        raw = _load_params()
    except Exception:
        return {}
    return raw if isinstance(raw, dict) else {}


def _number_problem(value, whole):
    """Why ``value`` given for a number option (an integer one when ``whole``) cannot be passed to ops as it
    was meant, or None.  Ansible would take ``true`` for 1, ``"1_0"`` for 10 and ``"1e3"`` for 1000."""
    if isinstance(value, bool):
        return "%s is a boolean, not a number" % ("true" if value else "false")
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return None if value == value and value not in (float("inf"), float("-inf")) else \
            "%r is not a finite number" % value
    if isinstance(value, str):
        digits = value[1:] if value.startswith("-") else value
        whole_part, dot, fraction = digits.partition(".")
        plain = (digits.isdigit() and digits.isascii() if whole else
                 (whole_part + fraction).isdigit() and (whole_part + fraction).isascii()
                 and (not dot or fraction))
        return None if plain else "%r is not %s" % (value, "a whole number (digits only)" if whole else
                                                    "a plain decimal number (digits and an optional '.')")
    return None         # a list or an object: Ansible's own conversion refuses it


def check_values(module):
    """Every value given is passed on to ops, or the task fails: an empty string (``root: ""``, an
    unset variable) or a null (``root:`` with nothing after it in YAML) is never taken for "not given",
    which for root would mean the live host; a number option given a boolean or a string that is not a
    plain number is refused rather than read as Ansible would (``true`` as 1, ``"1_0"`` as 10)."""
    raw = given(module)
    for key, spec in sorted(module.argument_spec.items()):
        if key not in raw:
            continue
        if raw[key] is None:
            module.fail_json(msg="%s: null; leave the option out for its default" % key, changed=False)
        if spec.get("type") in ("int", "float"):
            problem = _number_problem(raw[key], spec["type"] == "int")
            if problem:
                module.fail_json(msg="%s: %s" % (key, problem), changed=False)
    for key, value in sorted(module.params.items()):
        values = value if isinstance(value, list) else [value]
        for v in values:
            if isinstance(v, str) and v.strip() == "":
                module.fail_json(msg="%s: %s; leave the option out for its default"
                                 % (key, "an empty string" if v == "" else "only spaces"
                                    if not isinstance(value, list) else "an empty element"),
                                 changed=False)


def number_text(module, key):
    """The number option ``key`` as ops's command line takes it: as the task wrote it when it was a string,
    else in plain decimal notation (never Python's ``1e-07`` or ``inf``, which ops refuses)."""
    raw = given(module).get(key)
    if isinstance(raw, str):
        return raw
    value = module.params[key]
    if isinstance(value, float):
        import decimal
        return format(decimal.Decimal(repr(value)), "f")
    return str(value)


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
