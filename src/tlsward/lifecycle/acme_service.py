"""The ACME server composed with the real parts: the internal CA (``tlsward.ca``) signs, the inventory database
(``tlsward.storage.acme``) keeps the state. ``tlsward acme serve`` and ``tlsward serve --acme`` both build it here."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette

from tlsward.acme.server import IdentifierPolicy, ValidationSettings, create_acme_app
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import Store
from tlsward.storage.acme import AcmeStore


def create_acme_service(ca_dir: Path, store: Store, *, passphrase: bytes | None = None,
                        ca: CertificateAuthority | None = None, policy: IdentifierPolicy | None = None,
                        base_url: str | None = None, validation: ValidationSettings | None = None,
                        require_eab: bool = False) -> Starlette:
    """The ACME app over the CA in ``ca_dir`` (or an already open ``ca``) and ``store``, which the caller keeps."""
    authority = ca if ca is not None else CertificateAuthority.open(ca_dir, store, passphrase=passphrase)
    return create_acme_app(authority, AcmeStore(store), policy, base_url=base_url, validation=validation,
                           require_eab=require_eab)
