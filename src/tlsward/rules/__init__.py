"""Ring 1: rules. Pure functions from a scan result (and ``now``) to findings; one module per area.

Each rule reports a root cause once: an expired leaf is ``cert.expired``, not also ``chain.untrusted``.
"""
