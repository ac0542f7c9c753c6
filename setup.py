"""Install ops: `pip install .` gives the `ops` command.  No runtime dependencies."""

import re

from setuptools import setup

with open("ops/__init__.py", encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

setup(
    name="ops",
    version=VERSION,
    description="Deploy a pod of rkt containers and their systemd units from a bundle, "
                "keep every version, roll back on failure",
    packages=["ops"],
    python_requires=">=3.8",
    install_requires=[],
    # a plain script: pip's console_scripts wrapper imports re (see bin/ops)
    scripts=["bin/ops"],
)
