"""Ring 1: client TLS telemetry from servers' access logs (``tlsward logs ingest``).

``parsers`` turns one access-log line (nginx, HAProxy, Apache, Envoy JSON) into a
:class:`~tlsward.model.clientlogs.LogEntry`; ``ingest`` folds lines into hourly buckets per endpoint at
hundreds of thousands of lines a second; ``follow`` reads files across rotations from a checkpoint, or stdin.
Standard library and ``tlsward.model`` only: the counts reach the database through a callback the caller gives
(``tlsward.storage.clientlogs`` in the CLI).
"""

from __future__ import annotations
