"""Facts about one certificate and verdicts about a chain, as plain data (parsed in ``tlsward.x509``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class CertificateFacts:
    """Everything a person asks about a certificate, extracted once from its DER."""

    subject: str
    issuer: str
    serial: str                       # hex, no separators
    not_before: dt.datetime           # UTC
    not_after: dt.datetime            # UTC
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    key_type: str                     # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    curve: str | None
    signature_algorithm: str          # e.g. sha256WithRSAEncryption, ecdsa-with-SHA256
    signature_hash: str | None        # sha256, sha1, md5 ... (None for Ed25519)
    sha256: str                       # fingerprint of the DER, hex
    spki_sha256: str                  # base64 SHA-256 of the SubjectPublicKeyInfo (HPKP/pinning form)
    is_ca: bool
    path_length: int | None
    key_usage: tuple[str, ...]
    extended_key_usage: tuple[str, ...]   # serverAuth, clientAuth, or dotted OIDs
    ocsp_urls: tuple[str, ...]
    ca_issuers_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]
    sct_count: int
    must_staple: bool
    self_issued: bool                 # subject == issuer
    self_signed: bool                 # and the signature verifies with its own key

    @property
    def lifetime(self) -> dt.timedelta:
        return self.not_after - self.not_before

    def days_left(self, now: dt.datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def is_valid_at(self, now: dt.datetime) -> bool:
        return self.not_before <= now <= self.not_after


@dataclass(frozen=True, slots=True)
class TrustVerdict:
    """The result of RFC 5280 path validation against one named trust store."""

    store: str                        # "mozilla (certifi 2026.10.19)", "system", "ca-file /path"
    trusted: bool
    reason: str                       # empty when trusted
    path: tuple[str, ...] = ()        # sha256 fingerprints, leaf first, up to and including the root
    effective_expiry: dt.datetime | None = None   # earliest not_after on the validated path
    completed_via_aia: bool = False   # trusted only after fetching a missing issuer from AIA caIssuers


@dataclass(frozen=True, slots=True)
class ChainAnalysis:
    """Verdicts about the chain as presented, independent of any one trust store."""

    hostname: str
    hostname_matches: bool
    leaf_self_signed: bool
    in_order: bool                    # each certificate is issued by the next one
    incomplete: bool                  # the leaf's issuer chain stops before a self-signed root is reached
    contains_root: bool
    expired_intermediates: tuple[int, ...]   # indices into the presented chain
    weak_keys: tuple[int, ...]
    weak_signatures: tuple[int, ...]
    verdicts: tuple[TrustVerdict, ...]

    @property
    def trusted(self) -> bool:
        return any(v.trusted for v in self.verdicts)


RevocationState = Literal["good", "revoked", "unknown", "unavailable"]
RevocationSource = Literal["crl", "ocsp", "stapled-ocsp", ""]
RevocationMode = Literal["off", "soft", "hard"]
REVOCATION_MODES: tuple[RevocationMode, ...] = ("off", "soft", "hard")


@dataclass(frozen=True, slots=True)
class RevocationStatus:
    """Whether the leaf has been revoked, and how we know (or why we could not find out).

    ``unknown``: an answer came but does not settle it (CRL expired, bad signature, responder does not know
    the certificate); ``unavailable``: no answer came (responder unreachable, timed out, "try later").
    """

    status: RevocationState
    source: RevocationSource = ""          # what gave the verdict; "" when nothing did
    reason: str = ""                       # one line, naming the URL it is about
    revoked_at: dt.datetime | None = None  # UTC, when status is "revoked"
    checked_urls: tuple[str, ...] = ()     # every OCSP/CRL URL asked, in order
    url: str = ""                          # the URL whose answer decided "good"/"revoked" ("" when stapled)

    @property
    def established(self) -> bool:
        """A definitive answer: good or revoked."""
        return self.status in ("good", "revoked")
