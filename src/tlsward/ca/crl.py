"""CRLs (RFC 5280 section 5): the intermediate's, rebuilt on every revocation and on a schedule, and the root's,
which lists revoked intermediates and needs the root key (so it is made at ``init`` and on demand)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509

from tlsward.ca.keys import Signer, sign_crl
from tlsward.model.ca import RevocationRecord

INTERMEDIATE_CRL_VALIDITY = dt.timedelta(days=1)     # nextUpdate; republished when half of it has passed
ROOT_CRL_VALIDITY = dt.timedelta(days=365)           # the root key is offline: a long-lived, usually empty list


def build_crl(issuer: x509.Certificate, signer: Signer, key_type: str, *, number: int,
              revocations: Sequence[RevocationRecord], this_update: dt.datetime,
              next_update: dt.datetime) -> x509.CertificateRevocationList:
    """A CRL with a CRL number and the issuer's key identifier; each entry carries its reason unless it is
    ``unspecified`` (RFC 5280 5.3.1: then the extension should be absent)."""
    builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject)
               .last_update(this_update).next_update(next_update)
               .add_extension(x509.CRLNumber(number), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
                              critical=False))
    for revocation in revocations:
        entry = x509.RevokedCertificateBuilder().serial_number(revocation.serial).revocation_date(
            revocation.revoked_at)
        if revocation.reason != "unspecified":
            entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags(revocation.reason)), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    return sign_crl(builder, signer, key_type)


def crl_number(crl: x509.CertificateRevocationList) -> int:
    try:
        return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        return 0
