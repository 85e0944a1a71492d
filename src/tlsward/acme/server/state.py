"""What the ACME server needs from its persistence: a Protocol, so that the server never imports storage (the
SQL implementation is ``tlsward.storage.acme.AcmeStore``; ``tlsward.lifecycle.acme_service`` wires them)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from tlsward.model.acme import AcmeAccount, AcmeAuthorization, AcmeCertificate, AcmeEabKey, AcmeOrder


class AcmeState(Protocol):
    """Each method is one short transaction."""

    # accounts
    def create_account(self, account: AcmeAccount) -> tuple[AcmeAccount, bool]:
        """Insert, or return the account that already holds this key (``created`` is False then)."""
    def account(self, account_id: str) -> AcmeAccount | None: ...
    def account_by_thumbprint(self, thumbprint: str) -> AcmeAccount | None: ...
    def update_account(self, account_id: str, *, status: str | None = None,
                       contact: tuple[str, ...] | None = None) -> AcmeAccount | None: ...
    def change_account_key(self, account_id: str, jwk: str, thumbprint: str) -> AcmeAccount | None:
        """Swap the key; None when another account already holds the new one."""
    def account_orders(self, account_id: str, *, limit: int = 1000) -> list[str]: ...

    # orders, authorizations, challenges
    def create_order(self, order: AcmeOrder, authorizations: Sequence[AcmeAuthorization]) -> None: ...
    def order(self, order_id: str) -> AcmeOrder | None: ...
    def update_order(self, order_id: str, *, status: str, certificate_id: str | None = None,
                     error: str | None = None, expect: str | None = None) -> bool:
        """Set the status; with ``expect``, only if the status is still that (False otherwise)."""
    def order_replacing(self, certificate_id: str) -> str | None:
        """An order (not invalid) that already replaces this RFC 9773 certificate identifier."""
    def authorization(self, authz_id: str) -> AcmeAuthorization | None: ...
    def deactivate_authorization(self, authz_id: str) -> AcmeAuthorization | None: ...
    def start_challenge(self, challenge_id: str) -> tuple[AcmeAuthorization, bool] | None:
        """Mark a pending challenge processing; returns its authorization and whether it was started now."""
    def finish_challenge(self, challenge_id: str, *, valid: bool, error: str | None, now: dt.datetime) -> None:
        """Record a validation's outcome on the challenge, its authorization and its order, together."""

    # certificates
    def store_certificate(self, certificate: AcmeCertificate) -> None:
        """Keep the certificate and mark its order valid, together."""
    def certificate(self, certificate_id: str) -> AcmeCertificate | None: ...
    def certificate_by_serial(self, serial: str) -> AcmeCertificate | None: ...
    def revoke_certificate(self, certificate_id: str, *, reason: int, now: dt.datetime) -> bool:
        """False when it was already revoked."""

    # External Account Binding
    def add_eab_key(self, key: AcmeEabKey) -> None: ...
    def eab_key(self, kid: str) -> AcmeEabKey | None: ...
    def eab_keys(self) -> list[AcmeEabKey]: ...
    def create_account_with_eab(self, account: AcmeAccount, kid: str) -> tuple[AcmeAccount, bool] | None:
        """Insert the account bound to the EAB key ``kid``; None when that key is bound already."""
