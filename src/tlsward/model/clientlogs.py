"""What real clients negotiate, from the servers' access logs: the facts behind "who breaks if we turn TLS 1.0 off".

A probe says what a server *accepts*; only its logs say what clients *use*. Log parsers
(``tlsward.logs.parsers``) turn one line into a :class:`LogEntry`; the ingester folds entries into hourly
buckets per endpoint (:class:`MixRow`: requests per protocol and cipher) and, for everything but TLS 1.3, keeps
who the clients are (:class:`ClientRow`: user agent and source network), since those are the ones a stricter
policy can break. ``tlsward impact`` (:class:`ImpactReport`) reads the buckets back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUCKET_SECONDS",
    "LEGACY_PROTOCOLS",
    "LOG_FORMATS",
    "OTHER_CLIENTS",
    "PLAIN",
    "TOP_CLIENTS",
    "Checkpoint",
    "ClientMix",
    "ClientRow",
    "ImpactClient",
    "ImpactReport",
    "IngestBatch",
    "LogEntry",
    "LogFormat",
    "MalformedLines",
    "MixRow",
    "legacy_reason",
]

LogFormat = Literal["nginx", "haproxy", "apache", "envoy"]
LOG_FORMATS: tuple[LogFormat, ...] = ("nginx", "haproxy", "apache", "envoy")
BUCKET_SECONDS = 3600          # one bucket per endpoint and hour


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One request as the server logged it. ``protocol`` is normalised ("TLSv1.2", "TLSv1.3", "SSLv3"; "" for
    plain HTTP); ``cipher`` is the name the server logged (OpenSSL's, e.g. ``ECDHE-RSA-AES128-GCM-SHA256``, or
    IANA's for TLS 1.3); ``endpoint`` is the SNI name (else the Host / virtual host) with the port when known."""

    endpoint: str
    at: float                  # seconds since the epoch (UTC)
    protocol: str
    cipher: str
    client: str                # source address as logged
    user_agent: str = ""


@dataclass(frozen=True, slots=True)
class MixRow:
    """Requests of one endpoint in one bucket over one protocol and cipher."""

    endpoint: str
    bucket: dt.datetime        # start of the hour, UTC
    protocol: str
    cipher: str
    requests: int


@dataclass(frozen=True, slots=True)
class ClientRow:
    """Who used a non-TLS-1.3 protocol/cipher: user agent and source network (/24 for IPv4, /48 for IPv6)."""

    endpoint: str
    bucket: dt.datetime
    protocol: str
    cipher: str
    user_agent: str
    network: str
    requests: int


@dataclass(frozen=True, slots=True)
class ClientMix:
    """An endpoint's (or every endpoint's, ``endpoint=None``) traffic over a window."""

    endpoint: str | None
    since: dt.datetime
    until: dt.datetime
    rows: tuple[MixRow, ...]
    clients: tuple[ClientRow, ...]

    @property
    def requests(self) -> int:
        return sum(row.requests for row in self.rows)


@dataclass(frozen=True, slots=True)
class ImpactClient:
    """A client that would fail under the policy, with how many of its requests and why."""

    user_agent: str
    network: str
    protocol: str
    cipher: str
    requests: int
    reason: str


@dataclass(frozen=True, slots=True)
class ImpactReport:
    """"What breaks if": the share of requests (and the clients) the policy would refuse."""

    endpoint: str | None
    policy: str
    since: dt.datetime
    until: dt.datetime
    requests: int
    failing: int
    by_reason: tuple[tuple[str, int], ...]        # ("TLSv1.0 not allowed", 1234), most requests first
    clients: tuple[ImpactClient, ...]             # most requests first

    @property
    def share(self) -> float:
        return self.failing / self.requests if self.requests else 0.0


# -- ingestion (tlsward.logs folds access logs into these; tlsward.storage.clientlogs stores them) -----------------

PLAIN = ""                     # MixRow.protocol and .cipher of a plain-HTTP request (the log said "-")
OTHER_CLIENTS = "*"            # ClientRow.network (and user_agent) of the row that sums the clients past the top K
TOP_CLIENTS = 20               # named ClientRows kept per (endpoint, bucket, protocol, cipher); the rest is OTHER
LEGACY_PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1")


def legacy_reason(protocol: str, cipher: str) -> str | None:
    """Why a request is "legacy" (what ``tlsward logs show`` lists): the old protocol's name (SSLv3, TLSv1.0,
    TLSv1.1), ``weak cipher`` (the registry's ``weak``: NULL, export, anonymous, RC4, DES, 3DES, MD5 ...) or ``no
    forward secrecy`` (static RSA key exchange); None for TLS 1.3, a modern suite, or plain HTTP."""
    if protocol == PLAIN:
        return None
    if protocol in LEGACY_PROTOCOLS:
        return protocol
    from tlsward.model.registry.cipher_suites import cipher_by_name  # ~4,000 entries: built on first use

    suite = cipher_by_name(cipher) if cipher else None
    if suite is None or suite.tls13:
        return None
    if suite.weak:
        return "weak cipher"
    if not suite.forward_secrecy:
        return "no forward secrecy"
    return None


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """How far a log file was read: the file (``inode``) and the byte ``offset`` after the last complete line
    folded, with the number of lines up to there (``line``) and a fingerprint of the bytes just before the offset
    (so a file truncated and written again past the offset is noticed). Stored with the counts, atomically."""

    source: str                # the path as given, made absolute
    inode: int
    offset: int
    line: int = 0
    fingerprint: str = ""


@dataclass(frozen=True, slots=True)
class MalformedLines:
    """Lines of a source no parser understood: how many, and the first few (line number, first 200 characters)."""

    source: str
    count: int
    samples: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class IngestBatch:
    """What one flush of the ingester adds: request counts, the clients of non-TLS-1.3 requests (at most
    TOP_CLIENTS named rows per key plus one OTHER_CLIENTS row), and the malformed lines seen."""

    rows: tuple[MixRow, ...] = ()
    clients: tuple[ClientRow, ...] = ()
    malformed: tuple[MalformedLines, ...] = ()

    @property
    def requests(self) -> int:
        return sum(row.requests for row in self.rows)
