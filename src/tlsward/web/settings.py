"""How ``tlsward serve`` runs: set once from the command line, read by the app and its dependencies."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class WebSettings:
    db_url: str
    https: bool = False                       # served over TLS: Secure cookies and HSTS
    anonymous_read: bool = False              # viewers need no token (only when explicitly enabled)
    session_ttl: dt.timedelta = dt.timedelta(hours=12)
    max_body_bytes: int = 1 << 20             # larger request bodies get 413
    metrics: bool = True                      # serve /metrics
    # Scans started through the API (POST /api/v1/scans): the real engine, bounded.
    ca_files: tuple[str, ...] = ()            # extra trust anchors (PEM), as `tlsward scan --ca-file`
    scan_timeout_s: float = 5.0               # per connection phase, as `tlsward scan --timeout`
    scan_job_timeout_s: float = 300.0         # a whole job (deep scans make many connections)
    scan_concurrency: int = 8                 # jobs running at once; the rest wait, queued
    scan_queue: int = 64                      # jobs queued or running before POST /scans answers 429
    scan_keep: int = 200                      # finished jobs kept in memory for GET /scans/{id}
    scan_events_timeout_s: float = 600.0      # an event stream ends after this even if its job has not
