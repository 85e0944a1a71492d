"""The ACME server's three validation methods against an independent responder, pebble-challtestsrv (Let's
Encrypt's challenge test server): http-01 on its HTTP port, dns-01 TXT records from its DNS server, tls-alpn-01
certificates (RFC 8737) from its TLS server; each accepted when right and refused with the right problem when
wrong."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.acme_server_support import free_port
from tlsward.acme.server.problems import AcmeProblem
from tlsward.acme.server.validation import ValidationSettings, Validator, key_authorization
from tlsward.model.acme import AcmeIdentifier

THUMBPRINT = "wY2tLbM5N6pYbgtJ0aJ3nP3bpCIXHtQeyqoYLDtRe3E"
NAME = AcmeIdentifier("dns", "host.tlsward.test")


@dataclass(frozen=True)
class ChallTestSrv:
    http_port: int
    dns_port: int
    tls_port: int
    management: str

    def add(self, path: str, **body: str) -> None:
        httpx.post(f"{self.management}/{path}", json=body, timeout=5).raise_for_status()


@pytest.fixture(scope="module")
def challtestsrv() -> Iterator[ChallTestSrv]:
    assert shutil.which("pebble-challtestsrv"), "pebble-challtestsrv (Debian's pebble) is required"
    http_port, dns_port, tls_port, management = (free_port() for _ in range(4))
    proc = subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                             "-http01", f"127.0.0.1:{http_port}", "-https01", "", "-dns01", f"127.0.0.1:{dns_port}",
                             "-tlsalpn01", f"127.0.0.1:{tls_port}", "-management", f"127.0.0.1:{management}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        for port in (management, http_port, tls_port):
            while True:
                assert proc.poll() is None, "pebble-challtestsrv exited"
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                assert time.monotonic() < deadline, f"pebble-challtestsrv does not listen on {port}"
                time.sleep(0.05)
        yield ChallTestSrv(http_port, dns_port, tls_port, f"http://127.0.0.1:{management}")
    finally:
        proc.terminate()
        proc.wait(10)


def validator(server: ChallTestSrv) -> Validator:
    return Validator(ValidationSettings(http_port=server.http_port, tls_port=server.tls_port,
                                        dns_resolver=("127.0.0.1", server.dns_port),
                                        validation_address="127.0.0.1", timeout_s=5))


def outcome(server: ChallTestSrv, kind: str, token: str, identifier: AcmeIdentifier = NAME) -> str | None:
    """None when valid, else the problem type."""
    async def run() -> str | None:
        checker = validator(server)
        try:
            await checker.validate(kind, identifier, token, THUMBPRINT)
        except AcmeProblem as problem:
            return problem.kind
        finally:
            await checker.close()
        return None

    return asyncio.run(run())


def test_http01(challtestsrv: ChallTestSrv) -> None:
    challtestsrv.add("add-http01", token="tok-http", content=key_authorization("tok-http", THUMBPRINT))
    challtestsrv.add("add-http01", token="tok-wrong", content=key_authorization("tok-wrong", "other"))
    assert outcome(challtestsrv, "http-01", "tok-http") is None
    assert outcome(challtestsrv, "http-01", "tok-wrong") == "incorrectResponse"
    assert outcome(challtestsrv, "http-01", "tok-missing") in ("unauthorized", "incorrectResponse")  # 404 or empty


def test_dns01(challtestsrv: ChallTestSrv) -> None:
    import base64
    import hashlib

    digest = hashlib.sha256(key_authorization("tok-dns", THUMBPRINT).encode()).digest()
    value = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    challtestsrv.add("set-txt", host="_acme-challenge.host.tlsward.test.", value=value)
    assert outcome(challtestsrv, "dns-01", "tok-dns") is None
    assert outcome(challtestsrv, "dns-01", "tok-dns", AcmeIdentifier("dns", "*.host.tlsward.test")) is None
    assert outcome(challtestsrv, "dns-01", "tok-other") == "incorrectResponse"
    assert outcome(challtestsrv, "dns-01", "tok-dns", AcmeIdentifier("dns", "none.tlsward.test")) in (
        "unauthorized", "dns")


def test_tls_alpn01(challtestsrv: ChallTestSrv) -> None:
    challtestsrv.add("add-tlsalpn01", host=NAME.value, content=key_authorization("tok-alpn", THUMBPRINT))
    assert outcome(challtestsrv, "tls-alpn-01", "tok-alpn") is None
    assert outcome(challtestsrv, "tls-alpn-01", "tok-other") == "incorrectResponse"


def test_refused_connection() -> None:
    closed = free_port()
    unreachable = ChallTestSrv(closed, closed, closed, "")
    assert outcome(unreachable, "http-01", "x") == "connection"
    assert outcome(unreachable, "tls-alpn-01", "x") == "tls"
