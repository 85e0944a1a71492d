"""Debian's lego against tlsward's ACME server over HTTPS on loopback: obtain over http-01 (lego's own responder
on the port the server validates), renew, revoke; and an EAB-bound account on a server that requires one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from tests.integration.acme_server_support import PASSPHRASE, AcmeServer, running_acme_server
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import open_store

NAME = "lego.tlsward.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> object:
    assert shutil.which("lego"), "lego (Debian) is required"
    with running_acme_server(tmp_path_factory.mktemp("acme-lego")) as running:
        yield running


def lego(server: AcmeServer, home: Path, *args: str, domains: tuple[str, ...] = (NAME,),
         extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    command = ["lego", "--server", server.directory_url, "--path", str(home), "--email", "ops@tlsward.test",
               "--accept-tos", "--http", "--http.port", f"127.0.0.1:{server.http_port}", "--key-type", "ec256",
               *(f"--domains={d}" for d in domains), *extra, *args]
    env = {**os.environ, "LEGO_CA_CERTIFICATES": str(server.root_pem)}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env, check=False)


def leaf(home: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificates((home / "certificates" / f"{NAME}.crt").read_bytes())[0]


def test_obtain_renew_revoke(server: AcmeServer, tmp_path: Path) -> None:
    obtained = lego(server, tmp_path, "run")
    assert obtained.returncode == 0, obtained.stderr
    bundle = x509.load_pem_x509_certificates((tmp_path / "certificates" / f"{NAME}.crt").read_bytes())
    assert len(bundle) == 2                       # lego saves the chain as downloaded
    root = x509.load_pem_x509_certificate(server.root_pem.read_bytes())
    bundle[1].verify_directly_issued_by(root)
    first = bundle[0]

    renewed = lego(server, tmp_path, "renew", "--days", "3650", "--no-random-sleep")
    if "--no-random-sleep" in renewed.stderr and renewed.returncode != 0:   # older lego: no such flag
        renewed = lego(server, tmp_path, "renew", "--days", "3650")
    assert renewed.returncode == 0, renewed.stderr
    second = leaf(tmp_path)
    assert second.serial_number != first.serial_number

    revoked = lego(server, tmp_path, "revoke")
    assert revoked.returncode == 0, revoked.stderr
    with open_store(server.db_url) as store:
        ca = CertificateAuthority.open(server.ca_dir, store, passphrase=PASSPHRASE.encode())
        assert ca.record(second.serial_number).revoked_at is not None


def test_outside_policy_refused(server: AcmeServer, tmp_path: Path) -> None:
    refused = lego(server, tmp_path, "run", domains=("lego.example.org",))
    assert refused.returncode != 0
    assert "rejectedIdentifier" in refused.stderr, refused.stderr[-2000:]


def test_eab_required(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    with running_acme_server(tmp_path_factory.mktemp("acme-eab"), extra=("--require-eab",)) as eab_server:
        refused = lego(eab_server, tmp_path / "plain", "run")
        # lego reads meta.externalAccountRequired from the directory and stops before asking
        assert refused.returncode != 0 and "requires External Account Binding" in refused.stderr, refused.stderr
        added = subprocess.run([sys.executable, "-c", "from tlsward.cli.acme import app; app()", "eab", "add",
                                "--label", "lego", "--json", "--db", eab_server.db_url],
                               capture_output=True, text=True, timeout=30, check=True)
        key = json.loads(added.stdout)
        bound = lego(eab_server, tmp_path / "bound", "run", extra=("--eab", "--kid", key["kid"], "--hmac",
                                                                   key["hmac_key"]))
        assert bound.returncode == 0, bound.stderr[-2000:]
        listed = subprocess.run([sys.executable, "-c", "from tlsward.cli.acme import app; app()", "eab", "list",
                                 "--json", "--db", eab_server.db_url], capture_output=True, text=True, timeout=30,
                                check=True)
        assert json.loads(listed.stdout.splitlines()[0])["account"] is not None
