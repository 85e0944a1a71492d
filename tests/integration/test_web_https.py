"""`tlsward serve` over HTTPS as a process: the certificate it is given, HSTS, Secure cookies, and the
explicit anonymous read-only mode (reads without a token, never writes)."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.test_scan_cli import TLSWARD, tlsward
from tests.integration.test_notifiers import Pki


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_https_hsts_secure_cookie_and_anonymous_read(pki: Pki, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    created = tlsward("token", "create", "--name", "ana", "--role", "viewer", "--json", "--db", db)
    secret = json.loads(created.stdout)["token"]
    port = _free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen([str(TLSWARD), "serve", "--listen", f"127.0.0.1:{port}", "--db", db,
                                   "--tls-cert", str(pki.cert_file), "--tls-key", str(pki.key_file),
                                   "--anonymous-read"], stdout=sink, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    base = f"https://127.0.0.1:{port}"
    trusted = ssl.create_default_context(cafile=str(pki.ca_file))
    try:
        with httpx.Client(verify=trusted, timeout=5, follow_redirects=False) as client:
            deadline = time.monotonic() + 60
            while True:
                assert server.poll() is None, log.read_text()
                try:
                    health = client.get(f"{base}/healthz")
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, f"serve did not answer over HTTPS:\n{log.read_text()}"
                    time.sleep(0.1)
            assert health.status_code == 200
            assert health.headers["strict-transport-security"].startswith("max-age=")
            login = client.post(f"{base}/login", data={"token": secret, "next": "/"})
            assert login.status_code == 303 and "secure" in login.headers["set-cookie"].lower()
            anonymous = httpx.get(f"{base}/api/v1/endpoints", verify=trusted, timeout=5)
            assert anonymous.status_code == 200 and anonymous.json()["items"] == []
            write = httpx.post(f"{base}/api/v1/scans", json={"target": "127.0.0.1:1"}, verify=trusted,
                               timeout=5)
            assert write.status_code == 403 and write.headers["content-type"] == "application/problem+json"
        with httpx.Client(verify=True, timeout=5) as public:   # not trusted by the public roots: refused
            try:
                public.get(f"{base}/healthz")
                raise AssertionError("a certificate from the test CA must not verify against public roots")
            except httpx.ConnectError:
                pass
        # SIGTERM with an idle keep-alive TLS client still connected: serve stops anyway, within its grace period
        idle = trusted.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                   server_hostname="127.0.0.1")
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert idle.recv(4096).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        server.terminate()
        server.wait(20)
        assert time.monotonic() - started < 10, "serve waited for an idle client instead of stopping"
        idle.close()
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(15)
