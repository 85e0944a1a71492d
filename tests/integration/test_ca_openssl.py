"""The internal CA checked by OpenSSL: `openssl ocsp` against the responder served over real HTTP on loopback,
`openssl crl -verify` on the published CRL, `openssl verify` of an issued chain (with and without CRL checks),
and the CLI run as a user runs it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from tests.integration.ca_support import run, serve_ca
from tlsward.ca.authority import CertificateAuthority, IssuedCertificate
from tlsward.ca.crl import crl_number
from tlsward.storage import Store, open_store

pytestmark = pytest.mark.integration

PASSPHRASE = b"integration secret"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as opened:
        yield opened


def _openssl_serial(serial: int) -> str:
    """A serial as `openssl crl -text` prints it: upper-case hex of whole bytes (a leading zero nibble kept)."""
    text = f"{serial:X}"
    return text.zfill(len(text) + len(text) % 2)


def _write(directory: Path, issued: IssuedCertificate) -> Path:
    path = directory / f"{issued.serial:x}.pem"
    path.write_bytes(issued.cert_pem())
    return path


def test_openssl_ocsp_crl_and_verify(tmp_path: Path, store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", store, name="OpenSSL Check", passphrase=PASSPHRASE)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = ca.issue(names=["ocsp.example.test", "127.0.0.1"], public_key=key.public_key(), profile="both")
    leaf_pem = _write(tmp_path, leaf)
    root, intermediate = ca.directory / "root.pem", ca.directory / "intermediate.pem"
    chain = tmp_path / "chain.pem"
    chain.write_bytes(leaf.chain_pem())

    assert run("openssl", "verify", "-CAfile", str(root), "-untrusted", str(chain), "-purpose", "sslserver",
               str(leaf_pem)).stdout.strip() == f"{leaf_pem}: OK"
    run("openssl", "verify", "-CAfile", str(root), "-untrusted", str(chain), "-purpose", "sslclient", str(leaf_pem))

    with serve_ca(ca) as base:
        def ask() -> str:
            done = run("openssl", "ocsp", "-issuer", str(intermediate), "-cert", str(leaf_pem), "-url",
                       f"{base}/ocsp", "-CAfile", str(root), "-verify_other", str(intermediate), "-nonce")
            assert "Response verify OK" in done.stderr, done.stderr   # signature, responder and nonce checked
            return done.stdout

        good = ask()
        assert f"{leaf_pem}: good" in good, good
        ca.revoke(leaf.serial, reason=x509.ReasonFlags.key_compromise)
        revoked = ask()
        assert f"{leaf_pem}: revoked" in revoked and "Reason: keyCompromise" in revoked, revoked

        # RFC 6960 appendix A.1: GET with the request, base64 then URL-encoded, in the path
        request = ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, ca.intermediate, hashes.SHA1()).build()  # noqa: S303 (what OCSP clients send)
        encoded = quote(base64.b64encode(request.public_bytes(serialization.Encoding.DER)).decode(), safe="")
        with httpx.Client(timeout=10) as client:
            got = client.get(f"{base}/ocsp/{encoded}")
            assert got.status_code == 200 and got.headers["content-type"] == "application/ocsp-response"
            assert ocsp.load_der_ocsp_response(got.content).certificate_status == ocsp.OCSPCertStatus.REVOKED
            junk = client.post(f"{base}/ocsp", content=b"junk", headers={"content-type": "application/ocsp-request"})
            assert ocsp.load_der_ocsp_response(junk.content).response_status == \
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST
            assert ocsp.load_der_ocsp_response(client.get(f"{base}/ocsp/%%%").content).response_status == \
                ocsp.OCSPResponseStatus.MALFORMED_REQUEST

            crl = client.get(f"{base}/crl")
            assert crl.headers["content-type"] == "application/pkix-crl"
            (tmp_path / "crl.der").write_bytes(crl.content)
            crl_pem = client.get(f"{base}/crl.pem").text
            (tmp_path / "root.crl").write_bytes(client.get(f"{base}/root.crl").content)
            assert client.get(f"{base}/root.pem").content == root.read_bytes()
            assert client.get(f"{base}/chain.pem").content == intermediate.read_bytes() + root.read_bytes()

    checked = run("openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-CAfile", str(intermediate),
                  "-verify", "-noout", "-text")
    assert "verify OK" in checked.stderr + checked.stdout
    assert f"Serial Number: {_openssl_serial(leaf.serial)}" in checked.stdout and "Key Compromise" in checked.stdout
    run("openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "root.crl"), "-CAfile", str(root), "-verify",
        "-noout")
    bundle = tmp_path / "crls.pem"
    root_crl_pem = run("openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "root.crl")).stdout
    bundle.write_text(crl_pem + root_crl_pem)
    refused = run("openssl", "verify", "-crl_check_all", "-CRLfile", str(bundle), "-CAfile", str(root), "-untrusted",
                  str(chain), str(leaf_pem), check=False)
    assert refused.returncode != 0 and "certificate revoked" in refused.stdout + refused.stderr
    other = ca.issue(names=["fine.example.test"], public_key=key.public_key())
    run("openssl", "verify", "-crl_check_all", "-CRLfile", str(bundle), "-CAfile", str(root), "-untrusted",
        str(chain), str(_write(tmp_path, other)))


def test_crl_republished_on_schedule_without_requests(tmp_path: Path, store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "ca", store, name="Schedule", passphrase=PASSPHRASE,
                                   crl_validity=dt.timedelta(seconds=2))
    first = crl_number(ca.crl())
    with serve_ca(ca, refresh_seconds=0.2):
        deadline = time.monotonic() + 8
        while crl_number(ca.crl(now=ca.ca_store.crl_state(ca.key_id).this_update)) < first + 2:
            assert time.monotonic() < deadline, "the CRL was not republished by the schedule within 8 s"
            time.sleep(0.1)
    reread = x509.load_der_x509_crl((ca.directory / "crl.der").read_bytes())
    assert crl_number(reread) >= first + 2
    run("openssl", "crl", "-inform", "DER", "-in", str(ca.directory / "crl.der"), "-CAfile",
        str(ca.directory / "intermediate.pem"), "-verify", "-noout")


def _cli(*args: str, capsys: pytest.CaptureFixture[str], check: bool = True) -> tuple[int, str, str]:
    """``tlsward ca ARGS`` in this process (``python -m tlsward.cli.ca``'s entry point): exit code, stdout, stderr."""
    from tlsward.cli.ca import main

    capsys.readouterr()
    saved = sys.argv
    sys.argv = ["tlsward ca", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = saved
    out, err = capsys.readouterr()
    if check:
        assert code == 0, f"tlsward ca {' '.join(args)} exited {code}: {err}"
    return code, out, err


def test_cli_as_a_user_runs_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TLSWARD_DB", f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setenv("TLSWARD_CA_DIR", str(tmp_path / "ca"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TLSWARD_CA_PASSPHRASE", raising=False)
    secret = tmp_path / "pass"
    secret.write_text("cli secret\n")
    _cli("init", "--name", "CLI Org", "--passphrase-file", str(secret), "--permit", "cli.test", "--json",
         capsys=capsys)
    # as a user runs it: a separate process, one line on stderr, exit code 2, no traceback
    done = run(sys.executable, "-m", "tlsward.cli.ca", "issue", "--name", "a.cli.test", check=False,
               env={**os.environ})
    assert done.returncode == 2 and done.stderr.strip().endswith(
        "is encrypted: give its passphrase (--passphrase-file or $TLSWARD_CA_PASSPHRASE)"), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    monkeypatch.setenv("TLSWARD_CA_PASSPHRASE", "cli secret")
    _, out, _ = _cli("issue", "--name", "a.cli.test", "--profile", "client", "--hours", "12", "--out-dir",
                     str(tmp_path / "out"), "--json", capsys=capsys)
    issued = json.loads(out)
    key = Path(issued["files"]["key"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    run("openssl", "verify", "-CAfile", str(tmp_path / "ca" / "root.pem"), "-untrusted", issued["files"]["chain"],
        "-purpose", "sslclient", issued["files"]["cert"])
    _, out, _ = _cli("renew", "--cert", issued["files"]["cert"], "--out-dir", str(tmp_path / "renewed"), "--json",
                     capsys=capsys)
    renewed = json.loads(out)
    _, out, _ = _cli("revoke", issued["serial"], "--reason", "superseded", "--json", capsys=capsys)
    assert json.loads(out)["crl_number"] == 2
    _, out, _ = _cli("list", "--json", capsys=capsys)
    listed = {r["serial"]: r for r in json.loads(out)}
    assert listed[issued["serial"]]["status"] == "revoked"
    assert listed[renewed["serial"]]["replaces"] == issued["serial"]
    assert listed[renewed["serial"]]["profile"] == "client"
    _, out, _ = _cli("crl", capsys=capsys)
    (tmp_path / "crl.pem").write_text(out)
    assert f"Serial Number: {_openssl_serial(int(issued['serial'], 16))}" in run(
        "openssl", "crl", "-noout", "-text", "-in", str(tmp_path / "crl.pem"), "-CAfile",
        str(tmp_path / "ca" / "intermediate.pem"), "-verify").stdout
    for args, message in [
        (("issue", "--name", "evil.example"), "--name evil.example: outside this CA's name constraints"),
        (("revoke", "zz"), "serial 'zz': not a hexadecimal serial number"),
        (("revoke", "abc123"), "serial abc123: not issued by this CA"),
        (("issue", "--csr", str(secret)), f"--csr {secret}: not a PEM or DER certificate signing request"),
        (("revoke", issued["serial"], "--reason", "bored"), "--reason 'bored': not one of"),
        (("init", "--name", "Again"), "already holds a CA"),
        (("issue", "--name", "b.cli.test", "--days", "1", "--hours", "2"), "give --days or --hours, not both"),
    ]:
        rc, _, err = _cli(*args, capsys=capsys, check=False)
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
