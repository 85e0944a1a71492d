"""Profiles, names, lifetimes and the policy limits: what a leaf carries and what the CA refuses."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.ca.conftest import NOW, PASSPHRASE, ROOT_PASSPHRASE
from tlsward.ca.authority import CertificateAuthority, IssueRequest, load_csr
from tlsward.ca.profiles import parse_name
from tlsward.model.ca import CaError
from tlsward.storage import Store


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


@pytest.mark.parametrize(("profile", "usages", "days"), [
    ("server", [ExtendedKeyUsageOID.SERVER_AUTH], 30),
    ("client", [ExtendedKeyUsageOID.CLIENT_AUTH], 7),
    ("both", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH], 7),
])
def test_profile_extensions_and_default_lifetime(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey,
                                                  profile: str, usages: list[x509.ObjectIdentifier],
                                                  days: int) -> None:
    issued = ca.issue(names=["svc.example.test", "10.0.0.7"], public_key=leaf_key.public_key(), profile=profile,
                      now=NOW)
    cert = issued.certificate
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == usages  # type: ignore[call-overload]
    key_usage = _ext(cert, x509.KeyUsage)
    assert key_usage.critical and key_usage.value.digital_signature  # type: ignore[attr-defined]
    assert not key_usage.value.key_encipherment  # type: ignore[attr-defined]  (an EC key)
    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca is False  # type: ignore[attr-defined]
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["svc.example.test"]  # type: ignore[attr-defined]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]  # type: ignore[attr-defined]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "svc.example.test"
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=days)
    assert cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc
    assert cert.issuer == ca.intermediate.subject and issued.chain == (ca.intermediate,)
    aia = _ext(cert, x509.AuthorityInformationAccess).value
    assert [d.access_location.value for d in aia] == ["http://127.0.0.1:9/ca/ocsp"]  # type: ignore[attr-defined]
    cdp = _ext(cert, x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://127.0.0.1:9/ca/crl"  # type: ignore[index]
    cert.verify_directly_issued_by(ca.intermediate)
    ca.intermediate.verify_directly_issued_by(ca.root)
    assert issued.fullchain_pem() == issued.cert_pem() + issued.chain_pem()
    record = ca.record(issued.serial)
    assert record.profile == profile and record.names == ("svc.example.test", "10.0.0.7")
    assert record.key_type == "ecdsa-p256" and record.der == cert.public_bytes(Encoding.DER)


def test_rsa_server_key_gets_key_encipherment(ca: CertificateAuthority) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = ca.issue(names=["rsa.example.test"], public_key=key.public_key(), now=NOW).certificate
    assert _ext(cert, x509.KeyUsage).value.key_encipherment  # type: ignore[attr-defined]


@pytest.mark.parametrize(("names", "message"), [
    ([], "at least one name"),
    (["bad name.example"], "'bad name.example': not a DNS name"),
    (["-x.example"], "not a DNS name"),
    (["a..b"], "not a DNS name"),
    (["ünï.example"], "not a DNS name"),
])
def test_bad_names_are_refused_with_the_name(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey,
                                            names: list[str], message: str) -> None:
    with pytest.raises(CaError, match=message):
        ca.issue(names=names, public_key=leaf_key.public_key(), now=NOW)


def test_names_are_normalised_and_deduplicated() -> None:
    assert parse_name("WWW.Example.TEST.") == "www.example.test"
    assert parse_name("*.example.test") == "*.example.test"
    assert parse_name("[::1]") == ipaddress.ip_address("::1")


def test_exactly_one_of_key_or_csr(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CaError, match="exactly one"):
        ca.issue(names=["a.example.test"], now=NOW)
    csr = _csr(leaf_key, ["a.example.test"])
    with pytest.raises(CaError, match="exactly one"):
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), csr=csr, now=NOW)


def test_unknown_profile(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CaError, match="--profile 'email'"):
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), profile="email", now=NOW)


def _csr(key: ec.EllipticCurvePrivateKey, names: list[str]) -> x509.CertificateSigningRequest:
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))


def test_csr_names_are_used_and_key_kept(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    csr = _csr(leaf_key, ["one.example.test", "two.example.test"])
    issued = ca.issue(names=[], csr=load_csr(csr.public_bytes(Encoding.PEM), "x.csr"), profile="client", now=NOW)
    san = _ext(issued.certificate, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["one.example.test", "two.example.test"]  # type: ignore[attr-defined]
    assert issued.certificate.public_key() == leaf_key.public_key()
    # DER works too
    assert load_csr(csr.public_bytes(Encoding.DER), "x.der").subject == csr.subject


def test_garbage_and_tampered_csr(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CaError, match=r"junk\.csr: not a PEM or DER certificate signing request"):
        load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nnot base64\n-----END CERTIFICATE REQUEST-----\n", "junk.csr")
    with pytest.raises(CaError, match=r"junk\.csr"):
        load_csr(b"\x30\x03\x02\x01\x00", "junk.csr")
    der = bytearray(_csr(leaf_key, ["a.example.test"]).public_bytes(Encoding.DER))
    der[-5] ^= 0x01   # inside the signature
    tampered = x509.load_der_x509_csr(bytes(der))
    with pytest.raises(CaError, match="signature does not verify"):
        ca.issue(names=[], csr=tampered, now=NOW)


def test_name_constraints(tmp_path: Path, ca_store: Store, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    ca = CertificateAuthority.init(tmp_path / "nc", ca_store, name="Constrained", passphrase=PASSPHRASE,
                                   root_passphrase=ROOT_PASSPHRASE, permitted_names=["corp.test", "10.0.0.0/8"],
                                   now=NOW)
    constraints = _ext(ca.intermediate, x509.NameConstraints)
    assert constraints.critical
    permitted = constraints.value.permitted_subtrees  # type: ignore[attr-defined]
    assert x509.DNSName("corp.test") in permitted
    assert x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")) in permitted
    ca.issue(names=["a.corp.test", "corp.test", "*.b.corp.test", "10.1.2.3"], public_key=leaf_key.public_key(),
             now=NOW)
    for outside in ("evilcorp.test", "corp.test.evil", "192.168.1.1", "::1"):
        with pytest.raises(CaError, match="outside this CA's name constraints"):
            ca.issue(names=[outside], public_key=leaf_key.public_key(), now=NOW)


def test_dns_only_constraints_exclude_every_ip(tmp_path: Path, ca_store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "dns", ca_store, name="DNS only", passphrase=PASSPHRASE,
                                   root_passphrase=ROOT_PASSPHRASE, permitted_names=["corp.test"], now=NOW)
    excluded = _ext(ca.intermediate, x509.NameConstraints).value.excluded_subtrees  # type: ignore[attr-defined]
    assert x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")) in excluded


def _policy(tmp_path: Path, text: str) -> str:
    path = tmp_path / "ca-policy.toml"
    path.write_text(text)
    return str(path)


def test_policy_limits(tmp_path: Path, ca_store: Store, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    policy = _policy(tmp_path, 'name = "internal"\nkey_types = ["EC", "RSA"]\ncurves = ["secp256r1", "secp384r1"]\n'
                               "min_rsa_bits = 3072\nmax_cert_lifetime_days = 14\n")
    ca = CertificateAuthority.init(tmp_path / "pol", ca_store, name="Policy", passphrase=PASSPHRASE,
                                   root_passphrase=ROOT_PASSPHRASE, policy=policy, now=NOW)
    ok = ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(days=14),
                  now=NOW)
    assert ok.certificate.not_valid_after_utc - ok.certificate.not_valid_before_utc == dt.timedelta(days=14)
    with pytest.raises(CaError, match="exceeds policy 'internal''s maximum of 14 days"):
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(days=15),
                 now=NOW)
    with pytest.raises(CaError, match="exceeds"):   # the server default (30 days) is over the policy's maximum
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), now=NOW)
    with pytest.raises(CaError, match="needs RSA keys of at least 3072 bits, not 2048"):
        ca.issue(names=["a.example.test"], public_key=rsa.generate_private_key(65537, 2048).public_key(),
                 lifetime=dt.timedelta(days=1), now=NOW)
    with pytest.raises(CaError, match="allows EC, RSA keys, not Ed25519"):
        ca.issue(names=["a.example.test"], public_key=ed25519.Ed25519PrivateKey.generate().public_key(),
                 lifetime=dt.timedelta(days=1), now=NOW)
    with pytest.raises(CaError, match="allows the curves secp256r1, secp384r1, not secp521r1"):
        ca.issue(names=["a.example.test"], public_key=ec.generate_private_key(ec.SECP521R1()).public_key(),
                 lifetime=dt.timedelta(days=1), now=NOW)
    # the policy is stored in ca.toml and applies after reopening
    reopened = CertificateAuthority.open(tmp_path / "pol", ca_store, passphrase=PASSPHRASE)
    with pytest.raises(CaError, match="exceeds"):
        reopened.issue(names=["a.example.test"], public_key=leaf_key.public_key(), now=NOW)
    assert not ca.certificates(now=NOW)[1:], "refused requests must not be recorded"


def test_lifetime_floor_and_intermediate_ceiling(ca: CertificateAuthority,
                                                 leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with pytest.raises(CaError, match="too short"):
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(minutes=1),
                 now=NOW)
    with pytest.raises(CaError, match="would outlive the intermediate"):
        ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(days=800),
                 now=NOW)
    short = ca.issue(names=["a.example.test"], public_key=leaf_key.public_key(), lifetime=dt.timedelta(hours=1),
                     now=NOW)
    assert short.certificate.not_valid_after_utc - short.certificate.not_valid_before_utc == dt.timedelta(hours=1)


def test_small_rsa_refused_without_policy(ca: CertificateAuthority) -> None:
    with pytest.raises(CaError, match="RSA key of 1024 bits is too small"):
        ca.issue(names=["a.example.test"], public_key=rsa.generate_private_key(65537, 1024).public_key(),  # noqa: S505
                 now=NOW)


def test_issue_many_checks_all_before_signing(ca: CertificateAuthority,
                                              leaf_key: ec.EllipticCurvePrivateKey) -> None:
    good = IssueRequest(names=("a.example.test",), public_key=leaf_key.public_key())
    bad = IssueRequest(names=("not a name",), public_key=leaf_key.public_key())
    with pytest.raises(CaError):
        ca.issue_many([good, bad], now=NOW)
    assert ca.certificates(now=NOW) == []
    issued = ca.issue_many([good, good], now=NOW)
    assert len({i.serial for i in issued}) == 2
    assert {r.serial for r in ca.certificates(now=NOW)} == {i.serial for i in issued}


def test_renew_keeps_names_and_profile(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    first = ca.issue(names=["r.example.test", "10.9.9.9"], public_key=leaf_key.public_key(), profile="both",
                     now=NOW)
    same_key = ca.renew(first.serial, now=NOW + dt.timedelta(days=3))
    assert same_key.certificate.public_key() == leaf_key.public_key()
    new_key = ec.generate_private_key(ec.SECP384R1())
    renewed = ca.renew(first.serial, public_key=new_key.public_key(), now=NOW + dt.timedelta(days=3))
    assert renewed.profile == "both" and renewed.serial != first.serial
    assert renewed.certificate.public_key() == new_key.public_key()
    record = ca.record(renewed.serial)
    assert record.replaces == first.serial and record.names == ("r.example.test", "10.9.9.9")
    assert record.key_type == "ecdsa-p384"
    with pytest.raises(CaError, match="serial 1234: not issued by this CA"):
        ca.renew(0x1234)


def test_times_are_utc(ca: CertificateAuthority, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    issued = ca.issue(names=["t.example.test"], public_key=leaf_key.public_key(), now=NOW.astimezone(paris))
    assert issued.certificate.not_valid_before_utc == NOW - dt.timedelta(minutes=5)
    with pytest.raises(CaError, match="naive datetime"):
        ca.issue(names=["t.example.test"], public_key=leaf_key.public_key(), now=NOW.replace(tzinfo=None))
