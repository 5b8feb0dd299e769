"""The relay inward: push to the sidecar, or a pull listener it leases from (``service`` picks)."""
