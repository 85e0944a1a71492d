"""CRL content: numbers that only grow, reasons, signatures, expired entries dropped, the stale-republish rule and
the root CRL."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.ca.conftest import NOW, PASSPHRASE, ROOT_PASSPHRASE
from tlsward.ca.authority import CertificateAuthority
from tlsward.ca.crl import crl_number
from tlsward.model.ca import CaError


def test_revocation_publishes_a_signed_crl_with_reason(ca: CertificateAuthority,
                                                        leaf_key: ec.EllipticCurvePrivateKey) -> None:
    initial = ca.crl(now=NOW)
    assert crl_number(initial) == 1 and len(initial) == 0
    assert initial.is_signature_valid(ca.intermediate.public_key())  # type: ignore[arg-type]
    assert initial.next_update_utc == NOW + dt.timedelta(days=1)
    kept = ca.issue(names=["keep.example.test"], public_key=leaf_key.public_key(), now=NOW)
    gone = ca.issue(names=["gone.example.test"], public_key=leaf_key.public_key(), now=NOW)
    held = ca.issue(names=["held.example.test"], public_key=leaf_key.public_key(), now=NOW)
    ca.revoke(gone.serial, reason=x509.ReasonFlags.key_compromise, now=NOW + dt.timedelta(minutes=1))
    ca.revoke(held.serial, now=NOW + dt.timedelta(minutes=2))
    crl = ca.crl(now=NOW + dt.timedelta(minutes=3))
    assert crl_number(crl) == 3
    assert crl.is_signature_valid(ca.intermediate.public_key())  # type: ignore[arg-type]
    assert crl.issuer == ca.intermediate.subject
    entry = crl.get_revoked_certificate_by_serial_number(gone.serial)
    assert entry is not None
    assert entry.revocation_date_utc == NOW + dt.timedelta(minutes=1)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    plain = crl.get_revoked_certificate_by_serial_number(held.serial)
    assert plain is not None and len(plain.extensions) == 0   # unspecified: no reasonCode (RFC 5280 5.3.1)
    assert crl.get_revoked_certificate_by_serial_number(kept.serial) is None
    # the files nginx and `openssl crl` read follow the database
    assert x509.load_der_x509_crl((ca.directory / "crl.der").read_bytes()) == crl
    text = (ca.directory / "crl.pem").read_bytes()
    end = b"-----END X509 CRL-----\n"
    bundle = [x509.load_pem_x509_crl(part + end) for part in text.split(end) if part.strip()]
    assert [c.issuer for c in bundle] == [ca.intermediate.subject, ca.root.subject]


def test_revoke_errors(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CaError, match="serial abc: not issued by this CA"):
        ca.revoke(0xABC, now=NOW)
    issued = ca.issue(names=["twice.example.test"], public_key=leaf_key.public_key(), now=NOW)
    ca.revoke(issued.serial, now=NOW)
    with pytest.raises(CaError, match="already revoked"):
        ca.revoke(issued.serial, now=NOW)
    with pytest.raises(CaError, match="removeFromCRL"):
        ca.revoke(issued.serial, reason=x509.ReasonFlags.remove_from_crl, now=NOW)


def test_crl_is_reused_while_fresh_and_republished_when_half_stale(ca: CertificateAuthority) -> None:
    first = ca.crl(now=NOW)
    assert crl_number(ca.crl(now=NOW + dt.timedelta(hours=11))) == crl_number(first)
    assert not ca.crl_is_stale(now=NOW + dt.timedelta(hours=11))
    assert ca.crl_is_stale(now=NOW + dt.timedelta(hours=12))
    later = ca.crl(now=NOW + dt.timedelta(hours=12))
    assert crl_number(later) == crl_number(first) + 1
    assert later.last_update_utc == NOW + dt.timedelta(hours=12)


def test_expired_certificates_leave_the_crl(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    short = ca.issue(names=["s.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(hours=1),
                     now=NOW)
    ca.revoke(short.serial, now=NOW)
    assert ca.crl(now=NOW).get_revoked_certificate_by_serial_number(short.serial) is not None
    after = ca.publish_crl(now=NOW + dt.timedelta(hours=2))
    assert after.get_revoked_certificate_by_serial_number(short.serial) is None


def test_a_second_process_sees_the_same_crl(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    """`tlsward ca revoke` in one process, `serve` in another: the server's next answer includes the revocation."""
    server_side = CertificateAuthority.open(ca.directory, ca.store, passphrase=PASSPHRASE)
    before = server_side.crl(now=NOW)
    issued = ca.issue(names=["x.example.test"], public_key=leaf_key.public_key(), now=NOW)
    ca.revoke(issued.serial, now=NOW)
    after = server_side.crl(now=NOW)
    assert crl_number(after) == crl_number(before) + 1
    assert after.get_revoked_certificate_by_serial_number(issued.serial) is not None


def test_root_crl(ca: CertificateAuthority) -> None:
    root_crl = ca.root_crl()
    assert root_crl.issuer == ca.root.subject and len(root_crl) == 0
    assert root_crl.is_signature_valid(ca.root.public_key())  # type: ignore[arg-type]
    assert crl_number(root_crl) == 1
    with pytest.raises(CaError, match="wrong passphrase"):
        ca.resign_root_crl(root_passphrase=b"nope", now=NOW)
    again = ca.resign_root_crl(root_passphrase=ROOT_PASSPHRASE, now=NOW + dt.timedelta(days=1))
    assert crl_number(again) == 2 and again.is_signature_valid(ca.root.public_key())  # type: ignore[arg-type]
