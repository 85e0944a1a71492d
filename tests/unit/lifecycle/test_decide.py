"""When a managed certificate is due: missing, changed names and a key that does not fit are due now; otherwise
renew_before, else the 2/3-of-lifetime rule (ARI windows are the ACME client's tests); --force always."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tlsward.lifecycle.config import Deploy, ManagedCertificate
from tlsward.lifecycle.renew import decide, key_pem, read_current

START = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def managed(tmp_path: Path, names: tuple[str, ...] = ("www.test",), renew_before_s: float | None = None,
            ) -> ManagedCertificate:
    return ManagedCertificate(name="www", names=names, source="ca", renew_before_s=renew_before_s,
                              deploy=Deploy(fullchain=tmp_path / "www.pem", key=tmp_path / "www.key"))


def deploy(tmp_path: Path, days: int = 90, *, wrong_key: bool = False) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "www.test")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(START).not_valid_after(START + dt.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("www.test")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "www.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    other = ec.generate_private_key(ec.SECP256R1()) if wrong_key else key
    (tmp_path / "www.key").write_bytes(key_pem(other))


def test_nothing_deployed_or_unreadable_is_due_now(tmp_path: Path) -> None:
    cert = managed(tmp_path)
    due, why, _ = decide(cert, read_current(cert), START, force=False)
    assert due and why.startswith("no certificate deployed yet:") and "does not exist" in why
    (tmp_path / "www.pem").write_text("garbage")
    due, why, _ = decide(cert, read_current(cert), START, force=False)
    assert due and "holds no PEM certificate" in why


def test_two_thirds_of_the_lifetime(tmp_path: Path) -> None:
    deploy(tmp_path, days=90)
    cert = managed(tmp_path)
    current = read_current(cert)
    due, why, at = decide(cert, current, START + dt.timedelta(days=59), force=False)
    assert not due and at == START + dt.timedelta(days=60) and why == "2/3 of its lifetime has passed"
    assert decide(cert, current, START + dt.timedelta(days=60), force=False)[0]
    assert decide(cert, current, START, force=True)[:2] == (True, "forced")


def test_renew_before_wins_over_the_default_rule(tmp_path: Path) -> None:
    deploy(tmp_path, days=90)
    cert = managed(tmp_path, renew_before_s=10 * 86400)
    due, _, at = decide(cert, read_current(cert), START + dt.timedelta(days=70), force=False)
    assert not due and at == START + dt.timedelta(days=80)


def test_changed_names_and_a_mismatched_key_are_due_now(tmp_path: Path) -> None:
    deploy(tmp_path)
    cert = managed(tmp_path, names=("www.test", "api.test"))
    due, why, _ = decide(cert, read_current(cert), START, force=False)
    assert due and "names differ" in why
    deploy(tmp_path, wrong_key=True)
    cert = managed(tmp_path)
    due, why, _ = decide(cert, read_current(cert), START, force=False)
    assert due and "does not match the deployed certificate" in why
