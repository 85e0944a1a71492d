"""``tlsward inventory discover ...`` as a user runs it against the built-in lab and files on disk."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.e2e.test_scan_cli import explain, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState

pytestmark = pytest.mark.e2e


def test_discover_network_adds_tls_listeners_once_and_lists_other_open_ports(lab: LabState, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    healthy, smtp, closed = (lab.endpoint(name).port for name in ("healthy-rsa", "smtp-starttls", "closed"))
    args = ("inventory", "discover", "network", "--cidr", f"{lab.host}/32", "--ports", f"{healthy},{smtp},{closed}",
            "--team", "edge", "--db", db)
    first = tlsward(*args)
    assert first.returncode == ExitCode.OK, explain(first)
    assert f"TLS {lab.host}:{healthy}" in first.stdout and f"open {lab.host}:{smtp}" in first.stdout
    assert "1 TLS listeners, 1 other open ports; 1 added to the inventory, 0 already known" in first.stdout
    listed = json.loads(tlsward("inventory", "list", "--db", db, "--json").stdout)
    assert [(e["target"], e["team"], e["tags"]) for e in listed] == [(f"{lab.host}:{healthy}", "edge", ["discovered"])]
    tlsward("inventory", "add", f"{lab.host}:{healthy}", "--owner", "ana", "--team", "web", "--db", db)
    again = tlsward(*args)
    assert "0 added to the inventory, 1 already known" in again.stdout, explain(again)
    listed = json.loads(tlsward("inventory", "list", "--db", db, "--json").stdout)
    assert [(e["owner"], e["team"]) for e in listed] == [("ana", "web")], "discovery overwrote what a person set"


def test_discover_network_refuses_a_huge_range_before_connecting(tmp_path: Path) -> None:
    proc = tlsward("inventory", "discover", "network", "--cidr", "10.0.0.0/8", "--ports", "443",
                   "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == ExitCode.USAGE and "exceed the limit" in proc.stderr, explain(proc)


def _self_signed(name: str) -> tuple[bytes, bytes]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_discover_files_reports_mismatch_and_exposure_stores_certificates(tmp_path: Path) -> None:
    certs = tmp_path / "etc-ssl"
    certs.mkdir()
    good_cert, good_key = _self_signed("good.test")
    other_cert, _ = _self_signed("other.test")
    (certs / "good.crt").write_bytes(good_cert)
    (certs / "good.key").write_bytes(good_key)
    (certs / "good.key").chmod(0o600)
    (certs / "site.crt").write_bytes(other_cert)
    (certs / "site.key").write_bytes(good_key)          # the wrong key for site.crt, and readable by all
    (certs / "site.key").chmod(0o644)
    (certs / "broken.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    dry = tlsward("inventory", "discover", "files", str(certs), "--dry-run", "--db", db)
    assert dry.returncode == ExitCode.FINDINGS and "nothing written" in dry.stdout, explain(dry)
    proc = tlsward("inventory", "discover", "files", str(certs), "--db", db)
    assert proc.returncode == ExitCode.FINDINGS, explain(proc)
    assert f"critical {certs}/site.key: file.key_mismatch" in proc.stdout, explain(proc)
    assert f"high {certs}/site.key: file.key_exposed" in proc.stdout and "chmod 600" in proc.stdout
    assert f"{certs}/broken.pem:1: file.unparseable" in proc.stdout
    assert "good.key: file." not in proc.stdout, "a matching 0600 key is not a problem"
    assert "2 certificates, 2 private keys" in proc.stdout and "2 certificates new to the inventory" in proc.stdout
    fingerprint = hashlib.sha256(x509.load_pem_x509_certificate(good_cert).public_bytes(Encoding.DER)).hexdigest()
    (certs / "copy.pem").write_bytes(good_cert)        # one certificate, two places
    tlsward("inventory", "discover", "files", str(certs), "--db", db)
    shown = tlsward("inventory", "cert", fingerprint[:12], "--db", db)
    assert shown.returncode == ExitCode.OK and "CN=good.test" in shown.stdout, explain(shown)
    assert f"{certs}/good.crt #0" in shown.stdout and f"{certs}/copy.pem #0" in shown.stdout, explain(shown)
    (certs / "copy.pem").unlink()
    lenient = tlsward("inventory", "discover", "files", str(certs), "--fail-on", "critical", "--db", db)
    assert lenient.returncode == ExitCode.FINDINGS and "0 certificates new" in lenient.stdout, explain(lenient)
    (certs / "site.key").unlink()
    (certs / "broken.pem").unlink()
    clean = tlsward("inventory", "discover", "files", str(certs), "--db", db)
    assert clean.returncode == ExitCode.OK and "0 problems" in clean.stdout, explain(clean)
