"""The host a command acts on: its layout, systemd, rkt and the options that
shape how ops talks to them."""

from ops.layout import Layout
from ops.systemd import Systemd

__all__ = ["Host"]


class Host:
    def __init__(self, root="/", rkt=None, settle=2.0, timeout=30.0, ca_file=None,
                 insecure_images=False, dry_run=False, stop_timeout=30.0):
        self.layout = Layout(root)
        self.systemd = Systemd(self.layout)
        self.rkt_option = rkt
        self.settle = settle
        self.stop_timeout = stop_timeout
        self.stops_timed_out = []       # units whose stop timed out in this command
        self.done = []                  # the steps this command carried out, rollbacks too
        self.timeout = timeout
        self.ca_file = ca_file
        self.insecure_images = insecure_images
        self.dry_run = dry_run
        self._rkt = None
        self._ids = None

    @property
    def rkt(self):
        if self._rkt is None:
            from ops import rkt as rkt_mod      # only for pods with images
            path = rkt_mod.require(rkt_mod.find_rkt(self.rkt_option), "the pod has images")
            self._rkt = rkt_mod.Rkt(self.layout, path)
        return self._rkt

    def image_ids(self):
        """IDs in rkt's store (read once per command, refreshed after a fetch)."""
        if self._ids is None:
            self._ids = self.rkt.list_ids()
        return self._ids

    def forget_image_ids(self):
        self._ids = None
