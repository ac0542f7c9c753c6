"""Helpers shared by the test suites: ACI building (``aci``), gpg keys and
signatures (``gpg``), loopback servers (``servers``)."""
