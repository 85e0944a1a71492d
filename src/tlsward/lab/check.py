"""``tlsward lab check``: confirm each lab endpoint behaves as its case declares, with stdlib clients.

This is the lab's own health check (and what ``make demo`` shows until ``tlsward scan`` lands). The test
suite checks the same behaviour with clients we did not write (``openssl s_client``, ``curl``, ``nmap``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from tlsward.lab.catalogue import LabCase, case_named
from tlsward.lab.legacy_tls import SERVER_HELLO
from tlsward.lab.state import EndpointInfo, LabState
from tlsward.model.scan import FailureKind, ProbeFailure
from tlsward.model.target import StartTLS
from tlsward.net import starttls

TIMEOUT = 5.0
VERSION_NAMES = {"TLSv1": "TLSv1", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    port: int
    ok: bool
    observed: str


def client_context(client_cert: tuple[str, str] | None = None) -> ssl.SSLContext:
    """A permissive client: every version and suite this OpenSSL has, no verification (we only observe)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    if client_cert:
        ctx.load_cert_chain(*client_cert)
    return ctx


async def _tls_get(host: str, port: int, sni: str, ctx: ssl.SSLContext) -> tuple[str, str, bytes]:
    """Handshake, send one HTTP GET, return (version, cipher, response head)."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(host, port, ssl=ctx, server_hostname=sni), TIMEOUT)
    try:
        tls = writer.get_extra_info("ssl_object")
        writer.write(f"GET / HTTP/1.1\r\nHost: {sni}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await asyncio.wait_for(reader.read(4096), TIMEOUT)
        return str(tls.version()), str(tls.cipher()[0]), response
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _check_tls(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    if case.client_cert == "required":
        try:
            _, _, answer = await _tls_get(state.host, ep.port, ep.sni, client_context())
            if answer.startswith(b"HTTP/"):
                return False, "served a request without a client certificate"
        except (ssl.SSLError, ConnectionError):
            pass
    version, cipher, response = await _tls_get(
        state.host, ep.port, ep.sni,
        client_context((state.client_cert, state.client_key) if case.client_cert == "required" else None))
    head = response.split(b"\r\n\r\n", 1)[0].lower()
    has_hsts = b"\r\nstrict-transport-security:" in head
    ok = version in case.versions and response.startswith(b"HTTP/1.1 200") and has_hsts == case.hsts
    mtls = f", client cert {case.client_cert}" if case.client_cert != "none" else ""
    return ok, f"{version} {cipher}, HSTS {'yes' if has_hsts else 'no'}{mtls}"


async def _check_plain_http(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    writer.write(b"\x16\x03\x01\x00\x05hello")
    answer = await asyncio.wait_for(reader.read(64), TIMEOUT)
    writer.close()
    return answer.startswith(b"HTTP/1.1 400"), f"answers a ClientHello with {answer[:24]!r}"


async def _check_http(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    writer.write(f"GET / HTTP/1.1\r\nHost: {ep.sni}\r\n\r\n".encode())
    head = (await asyncio.wait_for(reader.read(4096), TIMEOUT)).split(b"\r\n\r\n")[0].decode()
    writer.close()
    status = head.splitlines()[0] if head else "(nothing)"
    location = next((line.split(":", 1)[1].strip() for line in head.splitlines()
                     if line.lower().startswith("location:")), "")
    redirects = status.startswith("HTTP/1.1 301") and location.startswith("https://")
    return redirects == case.redirect, f"{status}{' -> ' + location if location else ''}"


async def _check_blackhole(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    writer.write(b"\x16\x03\x01\x00\x05hello")
    try:
        data = await asyncio.wait_for(reader.read(1), 1.0)
        return False, f"answered {data!r}"
    except TimeoutError:
        return True, "connected; no answer within 1 s"
    finally:
        writer.close()


async def _check_reset(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    try:
        writer.write(b"\x16\x03\x01\x00\x05hello")
        await writer.drain()
        data = await asyncio.wait_for(reader.read(1), TIMEOUT)
        return False, f"answered {data!r} instead of resetting"
    except ConnectionResetError:
        return True, "connection reset"
    finally:
        writer.close()


async def _check_closed(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    try:
        _, writer = await asyncio.open_connection(state.host, ep.port)
    except ConnectionRefusedError:
        return True, "connection refused"
    writer.close()
    return False, "accepted a connection"


def client_hello_3des(sni: str) -> bytes:
    """A minimal TLS 1.2 ClientHello offering only TLS_RSA_WITH_3DES_EDE_CBC_SHA."""
    name = sni.encode()
    sni_ext = struct.pack(">HHHBH", 0, len(name) + 5, len(name) + 3, 0, len(name)) + name
    body = (struct.pack(">H", 0x0303) + bytes(32) + b"\x00" + struct.pack(">HH", 2, 0x000A) + b"\x01\x00"
            + struct.pack(">H", len(sni_ext)) + sni_ext)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return struct.pack(">BHH", 22, 0x0301, len(handshake)) + handshake


async def _check_legacy(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    try:
        writer.write(client_hello_3des(ep.sni))
        header = await asyncio.wait_for(reader.readexactly(5), TIMEOUT)
        body = await asyncio.wait_for(reader.readexactly(struct.unpack(">H", header[3:5])[0]), TIMEOUT)
        if header[0] != 22 or body[0] != SERVER_HELLO:
            return False, f"answered record type {header[0]}"
        suite = struct.unpack(">H", body[4 + 2 + 32 + 1 : 4 + 2 + 32 + 3])[0]
        return suite == 0x000A, f"ServerHello chose suite 0x{suite:04X}"
    finally:
        writer.close()


async def _check_starttls(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    try:
        await starttls.upgrade(StartTLS(case.kind), reader, writer, TIMEOUT, ep.sni)
        await writer.start_tls(client_context(), server_hostname=ep.sni)
        version = writer.get_extra_info("ssl_object").version()
        return case.starttls and version in case.versions, f"{case.kind.upper()} STARTTLS -> {version}"
    except ProbeFailure as exc:
        return exc.kind is FailureKind.STARTTLS_NOT_OFFERED and not case.starttls, str(exc)
    finally:
        writer.close()


async def _check_truncated(case: LabCase, ep: EndpointInfo, state: LabState) -> tuple[bool, str]:
    reader, writer = await asyncio.open_connection(state.host, ep.port)
    try:
        writer.write(client_hello_3des(ep.sni))
        data = await asyncio.wait_for(reader.read(), TIMEOUT)
        declared = struct.unpack(">H", data[3:5])[0] if len(data) >= 5 else 0
        got = len(data) - 5
        return data[:1] == b"\x16" and got < declared, f"record promises {declared} bytes, got {got}"
    finally:
        writer.close()


CHECKS: dict[str, Callable[[LabCase, EndpointInfo, LabState], Awaitable[tuple[bool, str]]]] = {
    "tls": _check_tls, "plain_http": _check_plain_http, "http": _check_http, "blackhole": _check_blackhole,
    "reset": _check_reset, "closed": _check_closed, "legacy_3des": _check_legacy, "truncated": _check_truncated,
    **dict.fromkeys(("smtp", "postgres", "imap", "pop3", "ftp", "ldap", "xmpp", "mysql"), _check_starttls),
}


async def check_endpoint(state: LabState, ep: EndpointInfo) -> CheckResult:
    case = case_named(ep.name)
    try:
        ok, observed = await asyncio.wait_for(CHECKS[case.kind](case, ep, state), 3 * TIMEOUT)
    except (TimeoutError, OSError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        ok, observed = False, f"{type(exc).__name__}: {exc}"
    return CheckResult(ep.name, ep.port, ok, observed)


async def check_lab(state: LabState) -> list[CheckResult]:
    """Check every endpoint concurrently; results in catalogue order."""
    return list(await asyncio.gather(*(check_endpoint(state, ep) for ep in state.endpoints)))


def check_lab_sync(state_dir: Path) -> list[CheckResult]:
    return asyncio.run(check_lab(LabState.read(state_dir)))
