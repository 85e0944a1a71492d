"""Inventory records: endpoints we keep watching, certificates we have seen, and what each scan observed.

Plain frozen data, mapped to and from rows by ``tlsward.storage``; nothing here knows about a database.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from tlsward.model.findings import Severity


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One endpoint in the inventory. ``target`` is the canonical ``str(Target)`` and its identity."""

    target: str
    host: str
    port: int
    scheme: str = "tls"
    sni: str | None = None
    owner: str | None = None
    team: str | None = None
    environment: str | None = None
    tags: tuple[str, ...] = ()
    probe_interval_s: int | None = None     # None: the monitor's default
    enabled: bool = True
    id: int | None = None                   # set once stored
    created_at: dt.datetime | None = None   # UTC, set by the store
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateRecord:
    """A certificate, deduplicated by the SHA-256 fingerprint of its DER."""

    sha256: str
    subject: str
    issuer: str
    serial: str
    not_before: dt.datetime
    not_after: dt.datetime
    sans: tuple[str, ...]
    key_type: str
    key_bits: int
    signature_algorithm: str
    der: bytes = b""

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class ObservationRecord:
    """What one scan of one endpoint saw. ``probe_id`` makes a write idempotent."""

    target: str
    observed_at: dt.datetime
    success: bool
    failure_kind: str | None = None
    version: str | None = None
    cipher: str | None = None
    handshake_ms: float | None = None
    chain: tuple[str, ...] = ()             # sha256 fingerprints as presented, leaf first
    finding_ids: tuple[str, ...] = ()       # worst first, so finding_ids[0] is the worst finding
    worst_severity: Severity | None = None
    probe_id: str | None = None
    id: int | None = None


# The fields an inventory import sets (everything but identity and timestamps), in a stable order.
IMPORTED_FIELDS: tuple[str, ...] = ("host", "port", "scheme", "sni", "owner", "team", "environment", "tags",
                                    "probe_interval_s", "enabled")


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What importing one record does (or would do) to the inventory; ``fields`` are those updated."""

    target: str
    kind: Literal["added", "updated", "unchanged"]
    fields: tuple[str, ...] = ()
