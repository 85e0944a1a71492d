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
