"""The ACME server's persisted records (RFC 8555): accounts, orders, authorizations, challenges, issued
certificates and External Account Binding keys. Pure data: the server decides, the storage keeps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Statuses (RFC 8555 section 7.1.6), kept as plain strings because they go on the wire unchanged.
PENDING = "pending"
PROCESSING = "processing"
READY = "ready"
VALID = "valid"
INVALID = "invalid"
DEACTIVATED = "deactivated"
REVOKED = "revoked"
EXPIRED = "expired"


@dataclass(frozen=True)
class AcmeIdentifier:
    type: str          # "dns" or "ip" (RFC 8738)
    value: str         # lower-case DNS name (a wildcard keeps its "*.") or a canonical IP address


@dataclass(frozen=True)
class AcmeAccount:
    id: str
    jwk: str                        # the account key, a JSON Web Key (JSON text)
    thumbprint: str                 # RFC 7638 SHA-256 thumbprint of the key, base64url: one account per key
    status: str = VALID
    contact: tuple[str, ...] = ()
    eab_kid: str | None = None      # the External Account Binding key it was bound with
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class AcmeChallenge:
    id: str
    authz_id: str
    type: str                       # http-01, dns-01, tls-alpn-01
    token: str
    status: str = PENDING
    validated_at: dt.datetime | None = None
    error: str | None = None        # a problem document (JSON text) when invalid


@dataclass(frozen=True)
class AcmeAuthorization:
    id: str
    account_id: str
    order_id: str
    identifier: AcmeIdentifier
    expires: dt.datetime
    wildcard: bool = False
    status: str = PENDING
    challenges: tuple[AcmeChallenge, ...] = ()


@dataclass(frozen=True)
class AcmeOrder:
    id: str
    account_id: str
    identifiers: tuple[AcmeIdentifier, ...]
    authz_ids: tuple[str, ...]
    expires: dt.datetime
    status: str = PENDING
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None
    certificate_id: str | None = None
    error: str | None = None        # a problem document (JSON text) when invalid
    replaces: str | None = None     # RFC 9773 certificate identifier of the certificate this order replaces
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class AcmeCertificate:
    id: str
    account_id: str
    order_id: str
    serial: str                     # lower-case hex, no leading zeros
    aki: str                        # authority key identifier, lower-case hex (RFC 9773 certificate id)
    fullchain_pem: str              # leaf then intermediates, as downloaded
    not_before: dt.datetime
    not_after: dt.datetime
    identifiers: tuple[AcmeIdentifier, ...] = ()
    revoked_at: dt.datetime | None = None
    revocation_reason: int | None = None


@dataclass(frozen=True)
class AcmeEabKey:
    kid: str
    hmac_key: bytes                 # the MAC key handed to the account holder once
    label: str = ""
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    account_id: str | None = None   # set once an account binds it; a key binds one account
