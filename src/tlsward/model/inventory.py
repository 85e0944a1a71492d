"""Inventory records: endpoints we keep watching, certificates we have seen, and what each scan observed.

Plain frozen data, mapped to and from rows by ``tlsward.storage``; nothing here knows about a database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity


@dataclass(frozen=True, slots=True)
class EndpointRecord:
    """One endpoint in the inventory. ``target`` is the canonical ``str(Target)`` and its identity."""

    target: str
    host: str
    port: int
    scheme: str = "tls"
    sni: str | None = None
    connect: str | None = None              # an IP to reach instead of resolving host (from a server config)
    owner: str | None = None
    team: str | None = None
    environment: str | None = None
    tags: tuple[str, ...] = ()
    probe_interval_s: int | None = None     # None: the monitor's default
    enabled: bool = True
    zone: str | None = None                 # where it is probed from (tlsward worker --zone); None: keep the
                                            # stored zone, "default" for a new endpoint
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
class EndpointFileRecord:
    """A certificate file that a server config says an endpoint serves (from ``inventory discover configs``)."""

    target: str
    server: str                             # nginx, apache, haproxy
    config_path: str
    config_line: int
    certificate_path: str
    key_path: str | None = None


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
    samples: int = 1                        # > 1 once retention has folded several probes into this one
    successes: int = 0
    resolution: str = "raw"                 # raw, hour or day
    timings: tuple[tuple[str, float], ...] = ()   # (phase, ms): dns_ms, connect_ms, starttls_ms, handshake_ms

    def timing(self, phase: str) -> float | None:
        return dict(self.timings).get(phase)


# The fields an inventory import sets (everything but identity and timestamps), in a stable order.
IMPORTED_FIELDS: tuple[str, ...] = ("host", "port", "scheme", "sni", "connect", "owner", "team", "environment",
                                    "tags", "probe_interval_s", "enabled")
TAG_FORBIDDEN = ";,"   # CSV exports join tags with ';', and ',' reads as a list to people


def clean_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags stripped, blanks dropped, duplicates removed (first kept). Raises UsageError for a tag that
    could not survive an export/import round trip."""
    cleaned: list[str] = []
    for raw in tags:
        tag = raw.strip()
        if any(ch in tag for ch in TAG_FORBIDDEN):
            raise UsageError(f"tag {raw!r}: tags cannot contain ';' or ','")
        if tag and tag not in cleaned:
            cleaned.append(tag)
    return tuple(cleaned)


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """What importing one record does (or would do) to the inventory; ``fields`` are those updated."""

    target: str
    kind: Literal["added", "updated", "unchanged"]
    fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long observation history is kept, and at what resolution: every probe for ``raw_days``, then one
    row per endpoint, hour and outcome (same chain, same success) until ``hourly_days``, then one per day
    until ``daily_days``, then nothing. Folded rows keep their sample and success counts, so success rates
    over any window stay exact."""

    raw_days: float = 14
    hourly_days: float = 90
    daily_days: float = 400

    def __post_init__(self) -> None:
        if not 0 < self.raw_days <= self.hourly_days <= self.daily_days:
            raise UsageError(f"retention must satisfy 0 < raw ({self.raw_days:g} d) <= hourly "
                             f"({self.hourly_days:g} d) <= daily ({self.daily_days:g} d)")


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one retention pass did (or, with a dry run, would do)."""

    deleted_expired: int = 0        # older than daily_days
    folded_hourly: int = 0          # raw rows merged into hourly rows (the survivors not counted)
    folded_daily: int = 0           # raw or hourly rows merged into daily rows
    kept: int = 0                   # rows left


@dataclass(frozen=True, slots=True)
class EndpointSummary:
    """One line of ``inventory list``: the endpoint, its newest observation and the leaf it last presented,
    read in one query (at 100,000 endpoints the full records cost more than the answer)."""

    endpoint: EndpointRecord
    observed_at: dt.datetime | None = None          # None: never scanned
    success: bool | None = None
    failure_kind: str | None = None
    version: str | None = None
    cipher: str | None = None
    finding_ids: tuple[str, ...] = ()
    worst_severity: Severity | None = None
    leaf_sha256: str | None = None
    leaf_subject: str | None = None
    leaf_issuer: str | None = None
    leaf_not_after: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateListing:
    """One line of the certificate list: the certificate and how many places hold it."""

    sha256: str
    subject: str
    issuer: str
    not_after: dt.datetime
    key_type: str
    key_bits: int
    endpoints: int            # endpoints that presented it (at any chain position)
    files: int                # files on disk that hold it
    leaf: bool                # presented as a leaf somewhere, or stored in a file
