# -*- coding: utf-8 -*-
"""The options every module of ops.pod takes to run ops on the managed host (module_utils/ops_cli.OPS_ARGS)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  ops:
    description:
      - How to run ops on the managed host. A path ending in C(.pyz) or C(.py) is run with O(python);
        anything else is a command looked up in E(PATH) (or a path to it).
    type: str
    default: ops
  python:
    description: The Python 3.8+ that runs O(ops) when it is a C(.pyz). Default the Python running this module.
    type: str
  root:
    description: C(--root DIR), act on an offline tree. Default C(/).
    type: path
  options:
    description: Further global ops options, put before the command, for example C(["--rkt", "/usr/local/bin/rkt"]).
    type: list
    elements: str
    default: []
notes:
  - Every value given is passed on to ops; an empty string or a null is an error, never taken for "not given".
  - A number option given a boolean, or a string that is not a plain number, is an error (Ansible would read
    V(true) as 1 and V("1_0") as 10).
"""
