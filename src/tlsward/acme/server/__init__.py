"""The ACME server (RFC 8555) as an ASGI app: ``create_acme_app(issuer, state, policy)``."""

from __future__ import annotations

from tlsward.acme.server.app import AcmeServer, Issuer, create_acme_app
from tlsward.acme.server.policy import IdentifierPolicy, IdentifierRule
from tlsward.acme.server.state import AcmeState
from tlsward.acme.server.validation import ValidationSettings

__all__ = ["AcmeServer", "AcmeState", "IdentifierPolicy", "IdentifierRule", "Issuer", "ValidationSettings",
           "create_acme_app"]
