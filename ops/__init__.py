"""ops: deploy a pod of rkt containers and their systemd units from a bundle.

Standard library only; see README.md.
"""

__version__ = "0.1.0"
