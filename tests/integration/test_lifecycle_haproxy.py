"""Managed certificates behind a real HAProxy in master-worker mode: `haproxy -c` first, then `reload` on the
master CLI socket; the new certificate is verified as served, and a deploy whose key does not fit is refused by
`haproxy -c` and rolled back while the running HAProxy keeps serving the previous certificate."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.lifecycle_support import free_port, self_signed
from tlsward.ca.authority import CertificateAuthority
from tlsward.lifecycle.config import load_lifecycle_config
from tlsward.lifecycle.renew import renew_certificates
from tlsward.storage import Store, open_store

pytestmark = pytest.mark.integration
NAME = "lb.lifecycle.test"


@pytest.fixture
def haproxy(tmp_path: Path) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    (tmp_path / "tls").mkdir()
    self_signed(tmp_path, "boot")
    (tmp_path / "boot.pem").rename(tmp_path / "tls" / "site.pem")
    (tmp_path / "boot.key").rename(tmp_path / "tls" / "site.pem.key")   # HAProxy loads <crt>.key beside it
    port = free_port()
    (tmp_path / "haproxy.cfg").write_text(f"""
global
    master-worker
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port} ssl crt {tmp_path}/tls/site.pem
    http-request return status 200 content-type text/plain string ok
""")
    proc = subprocess.Popen(["haproxy", "-W", "-db", "-f", str(tmp_path / "haproxy.cfg"), "-S",
                             str(tmp_path / "master.sock")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            assert time.monotonic() < deadline, "haproxy did not listen"
            time.sleep(0.05)
    try:
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def write_config(tmp_path: Path, port: int, key: str) -> Path:
    path = tmp_path / "certificates.toml"
    path.write_text(f"""
state_dir = "state"
[[certificate]]
name = "lb"
names = ["{NAME}"]
source = "ca"
ca = {{ dir = "ca" }}
[certificate.deploy]
fullchain = "tls/site.pem"
key = "{key}"
reload = {{ haproxy = "haproxy.cfg", master_socket = "master.sock" }}
[certificate.verify]
endpoints = [{{ target = "127.0.0.1:{port}", sni = "{NAME}" }}]
timeout = "5s"
""", encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as opened:
        CertificateAuthority.init(tmp_path / "ca", opened, name="HAProxy Test CA", passphrase=None,
                                  root_passphrase=b"root secret")
        yield opened


def test_haproxy_reload_verify_and_rollback(haproxy: tuple[int, subprocess.Popen[bytes]], store: Store,
                                            tmp_path: Path) -> None:
    port, proc = haproxy
    good = load_lifecycle_config(write_config(tmp_path, port, "tls/site.pem.key"))
    [result] = renew_certificates(good, store=store)
    assert result.status == "verified", result.lines
    assert "haproxy reloaded, verified 127.0.0.1:" in result.lines[-1]
    issued = result.event.new_sha256 if result.event else None

    broken = load_lifecycle_config(write_config(tmp_path, port, "tls/other.key"))
    [result] = renew_certificates(broken, store=store, force=True)
    assert result.status == "rolled_back", result.lines
    assert "haproxy -c" in result.lines[-2], result.lines
    assert issued is not None and f"the previous certificate {issued[:8]}… is served again" in result.lines[-1]
    assert proc.poll() is None, "the running HAProxy was never disturbed"
