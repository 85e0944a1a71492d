"""The result of scanning one endpoint: timings, the negotiated session, the chain, verdicts, findings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from tlsward.model.certificate import CertificateFacts, ChainAnalysis, RevocationStatus
from tlsward.model.deep import DeepScan
from tlsward.model.errors import Error
from tlsward.model.findings import Finding
from tlsward.model.grade import Grade
from tlsward.model.target import Target


class FailureKind(StrEnum):
    """Why an endpoint could not be scanned; each maps to one ``conn.*`` / ``starttls.*`` finding."""

    DNS = "dns"
    REFUSED = "refused"
    UNREACHABLE = "unreachable"
    CONNECT_TIMEOUT = "connect_timeout"
    HANDSHAKE_TIMEOUT = "handshake_timeout"
    RESET = "reset"
    CLOSED = "closed"                      # peer closed the connection mid-handshake, without an alert
    PLAINTEXT_HTTP = "plaintext_http"
    NOT_TLS = "not_tls"
    TLS_ALERT = "tls_alert"
    NO_SHARED_CIPHER = "no_shared_cipher"
    STARTTLS_NOT_OFFERED = "starttls_not_offered"
    STARTTLS_FAILED = "starttls_failed"
    PROTOCOL_ERROR = "protocol_error"
    RATE_LIMITED = "rate_limited"          # the server refused more connections (SMTP 421 too many connections)


class ProbeFailure(Error):
    """A network step failed in a way worth reporting (not a bug): carries its kind and phase."""

    def __init__(self, kind: FailureKind, message: str, *, phase: str = "", alert: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.phase = phase
        self.alert = alert


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure as data, for results and JSON."""

    kind: FailureKind
    message: str
    phase: str = ""
    alert: str | None = None

    @classmethod
    def of(cls, exc: ProbeFailure) -> Failure:
        return cls(exc.kind, str(exc), exc.phase, exc.alert)


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds per phase; None when the phase did not run."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    starttls_ms: float | None = None
    handshake_ms: float | None = None


@dataclass(frozen=True, slots=True)
class ClientAuth:
    """What the server said about client certificates (mTLS)."""

    requested: bool = False
    required: bool = False
    acceptable_cas: tuple[str, ...] = ()
    presented_accepted: bool | None = None   # with --cert/--key: did the server accept ours? None: not sent


@dataclass(frozen=True, slots=True)
class Session:
    """What the handshake negotiated."""

    version: str                        # TLSv1.0 ... TLSv1.3
    cipher: str                         # IANA name
    cipher_code: int
    group: str | None                   # key-exchange group (x25519, secp256r1, ffdhe2048 ...)
    alpn: str | None
    ocsp_stapled: bool
    ocsp_status: str | None             # good, revoked, unknown, malformed; None when nothing stapled
    chain_der: tuple[bytes, ...]        # as presented, leaf first
    client_auth: ClientAuth = field(default_factory=ClientAuth)
    completed: bool = True              # False: learned from a hand-made ClientHello; no handshake finished
    ocsp_response: bytes | None = None  # the stapled OCSP response (DER) as received


@dataclass(frozen=True, slots=True)
class HttpFacts:
    """The answer to one HTTP request over the endpoint (HTTPS or plain HTTP)."""

    status: int
    hsts: str | None
    location: str | None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One endpoint, one scan. ``failure`` is set when no session could be established."""

    target: Target
    address: str | None
    scanned_at: dt.datetime
    timings: Timings
    session: Session | None = None
    failure: Failure | None = None
    chain: tuple[CertificateFacts, ...] = ()
    analysis: ChainAnalysis | None = None
    http: HttpFacts | None = None
    revocation: RevocationStatus | None = None   # None: not checked (--revocation off, self-signed)
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()         # non-fatal problems: "OCSP responder unreachable", ...
    deep: DeepScan | None = None        # --deep: versions, suites, groups and features, enumerated
    grade: Grade | None = None          # --deep: SSL Labs-style grade with its reasons
    policy: str | None = None           # the policy profile the findings were checked against
