"""The internal CA's records: what was issued, to which names, under which profile, and what was revoked.

Plain data so that storage, the CLI and the web layer can pass them around without cryptography; the
``ca`` package turns certificates into these. Serials are Python ints (up to 159 bits, RFC 5280 4.1.2.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tlsward.model.errors import UsageError

PROFILES: tuple[str, ...] = ("server", "client", "both")
# RFC 5280 5.3.1 CRLReason names, as cryptography's ``x509.ReasonFlags`` values spell them.
REVOCATION_REASONS: tuple[str, ...] = (
    "unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation",
    "certificateHold", "privilegeWithdrawn", "aACompromise", "removeFromCRL")


class CaError(UsageError):
    """The internal CA refuses a request (policy, profile, names) or cannot be opened (directory, passphrase,
    token): one line naming the input. A UsageError, so the CLI exits 2."""


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    """One certificate the internal CA issued, as the inventory keeps it (``der`` is the certificate itself)."""

    authority: str                  # the issuing intermediate's key id (hex SHA-1 of its public key)
    serial: int
    subject: str
    names: tuple[str, ...]          # DNS names and IP literals, as requested
    profile: str
    key_type: str                   # ecdsa-p256, rsa-2048, ed25519 ...
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: dt.datetime
    requester: str
    sha256: str                     # hex fingerprint of the DER
    der: bytes
    replaces: int | None = None     # the serial this one renewed
    revoked_at: dt.datetime | None = None
    revocation_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after <= now


@dataclass(frozen=True, slots=True)
class RevocationRecord:
    """One entry of the CRL: who, when, why."""

    serial: int
    revoked_at: dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CrlState:
    """The authority's current CRL as the inventory holds it, so that every process (CLI, ``serve``) hands out
    the same one and numbers never go backwards."""

    number: int
    this_update: dt.datetime | None
    next_update: dt.datetime | None
    der: bytes | None
