"""Where ops keeps things on the host (SPEC §2), all under ROOT.

``path`` values are real paths (ROOT-prefixed) for ops to open; ``host()``
gives the same path as the host will see it (without ROOT), for writing into
files such as drop-ins and ``manifest.json``.
"""

import os

__all__ = ["Layout"]


class Layout:
    def __init__(self, root="/"):
        # the real path: any spelling of / (//, /., a symbolic link to /) is
        # the live host, never offline mode
        self.root = os.path.realpath(root or "/")
        self.offline = self.root != "/"
        # below these, ops refuses a symbolic link on the way to what it changes
        from ops import confine
        confine.register(self.path("etc/ops"), self.state_dir, self.unit_dir, root=self.root)

    def escape(self):
        """(path, real path) of the first directory ops writes under ROOT that
        leads outside ROOT (a tree whose ``etc`` is a symbolic link to
        ``/etc``), or None."""
        if not self.offline:
            return None
        for d in (self.pods_dir, self.current_dir, self.unit_dir, self.state_dir,
                  self.rkt_dir, self.rkt_config):
            real = os.path.realpath(d)
            if not real.startswith(self.root + "/"):
                return d, real
        return None

    def path(self, *parts):
        return os.path.join(self.root, *parts)

    def host(self, path):
        """The host-visible form of a ROOT-prefixed path."""
        if not self.offline:
            return path
        rel = os.path.relpath(path, self.root)
        return "/" + ("" if rel == "." else rel)

    # /etc/ops
    @property
    def pods_dir(self):
        return self.path("etc/ops/pods")

    def pod_dir(self, name):
        return os.path.join(self.pods_dir, name)

    def version_dir(self, name, version):
        return os.path.join(self.pod_dir(name), str(version))

    @property
    def current_dir(self):
        return self.path("etc/ops/current")

    def current_link(self, name):
        return os.path.join(self.current_dir, name)

    # /var/lib/ops
    @property
    def state_dir(self):
        return self.path("var/lib/ops")

    @property
    def lock_path(self):
        return self.path("var/lib/ops/lock")

    @property
    def journal_dir(self):
        return self.path("var/lib/ops/journal")

    def journal_path(self, name):
        return os.path.join(self.journal_dir, name + ".json")

    @property
    def tmp_dir(self):
        return self.path("var/lib/ops/tmp")

    @property
    def history_dir(self):
        return self.path("etc/ops/history")

    def volumes_dir(self, name, version):
        return self.path("var/lib/ops/volumes", name, str(version))

    # systemd and rkt
    @property
    def unit_dir(self):
        return self.path("etc/systemd/system")

    def unit_path(self, unit):
        return os.path.join(self.unit_dir, unit)

    def dropin_path(self, unit):
        return os.path.join(self.unit_dir, unit + ".d", "50-ops.conf")

    @property
    def rkt_dir(self):
        return self.path("var/lib/rkt")

    @property
    def rkt_config(self):
        return self.path("etc/rkt")


def template_file(unit):
    """The file that defines ``unit``: ``a@.service`` for ``a@1.service``."""
    if "@" not in unit:
        return unit
    stem, rest = unit.split("@", 1)
    return stem + "@" + rest[rest.rfind("."):]
