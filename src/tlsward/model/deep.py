"""The deep scan's result: what a server accepts, found by crafted ClientHellos (``tlsward scan --deep``).

Every verdict is three-valued where the network can make us unsure: ``True`` / ``False`` is what the server
said; ``None`` is *inconclusive* (timeouts, resets, rate limiting), never read as "not supported".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AcceptedSuite:
    """One cipher suite the server accepted for one protocol version, with the key exchange it used."""

    code: int
    name: str                     # IANA name
    key_exchange: str             # ECDHE, DHE, RSA, ... ('any' for TLS 1.3)
    forward_secrecy: bool
    aead: bool
    weak: bool
    kx_group: str | None = None   # curve / named group used with this suite (secp256r1, x25519, ffdhe2048 ...)
    dh_bits: int | None = None    # DHE prime size when the server sent explicit DH parameters


@dataclass(frozen=True, slots=True)
class VersionSupport:
    """One protocol version: accepted or not, and if accepted, the suites in the server's order."""

    version: str                  # SSLv3, TLSv1.0 ... TLSv1.3
    accepted: bool | None         # None: inconclusive
    suites: tuple[AcceptedSuite, ...] = ()
    server_order: bool | None = None   # True: the server imposes its order; False: it follows the client's
    note: str = ""                # why a verdict is inconclusive, or other context


@dataclass(frozen=True, slots=True)
class GroupSupport:
    name: str
    code: int
    post_quantum: bool
    accepted: bool | None
    via: str = ""                 # "key_share", "hello_retry_request", "server_key_exchange"


@dataclass(frozen=True, slots=True)
class Features:
    """Protocol features beyond versions and suites; None where the probe was inconclusive or not possible."""

    fallback_scsv: bool | None = None          # True: the server refuses a downgraded retry (RFC 7507)
    secure_renegotiation: bool | None = None   # RFC 5746 renegotiation_info in the ServerHello
    compression: bool | None = None            # True: the server accepted DEFLATE (CRIME)
    session_ids: bool | None = None            # TLS <= 1.2 session IDs issued
    session_tickets: bool | None = None        # RFC 5077 tickets offered
    alpn: tuple[str, ...] = ()                 # protocols the server selects from those offered (h2, http/1.1)
    ocsp_stapling: bool | None = None


@dataclass(frozen=True, slots=True)
class DeepScan:
    """Everything the deep scan learned about one endpoint, and what it cost."""

    versions: tuple[VersionSupport, ...]
    groups: tuple[GroupSupport, ...] = ()
    features: Features = field(default_factory=Features)
    connections: int = 0          # TCP connections this deep scan opened (pacing is part of the contract)
    elapsed_ms: float = 0.0
    rate_limited: str = ""        # e.g. "SMTP 421 too many connections" when the server pushed back
    notes: tuple[str, ...] = ()

    def version(self, name: str) -> VersionSupport | None:
        return next((v for v in self.versions if v.version == name), None)

    @property
    def accepted_versions(self) -> tuple[str, ...]:
        return tuple(v.version for v in self.versions if v.accepted)

    @property
    def all_suites(self) -> tuple[AcceptedSuite, ...]:
        return tuple(s for v in self.versions for s in v.suites)
