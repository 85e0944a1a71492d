"""The session probe: connect, STARTTLS if the target needs it, handshake, mTLS, and HTTP when asked.

One or two connections per endpoint: one for the handshake (and the HTTP request over it), a second
only when the server asked for a client certificate and we present one (``--cert/--key``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from OpenSSL import SSL

from tlsward.model.scan import FailureKind, HttpFacts, ProbeFailure, Session, Timings
from tlsward.model.target import SCHEMES, Target
from tlsward.net import starttls
from tlsward.net.connect import close, elapsed_ms, open_tcp
from tlsward.net.tls import Handshake
from tlsward.probes import http


@dataclass(frozen=True, slots=True)
class SessionProbe:
    session: Session | None
    timings: Timings
    http: HttpFacts | None


async def probe_session(target: Target, address: str, ctx: SSL.Context, timeout: float,
                        dns_ms: float | None, client_ctx: SSL.Context | None = None) -> SessionProbe:
    """Run the session probe against one address of ``target``; raises a classified ProbeFailure.

    The first handshake never presents a client certificate, so "requested" and "required" are facts
    about the server. Only when it requires one and the user gave ``--cert/--key`` is there a second
    handshake presenting it, whose session (and HTTP answer) is the one reported."""
    first = await _probe_once(target, address, ctx, timeout, dns_ms)
    if client_ctx is None or first.session is None or not first.session.client_auth.requested:
        return first
    auth = first.session.client_auth
    try:
        second = await _probe_once(target, address, client_ctx, timeout, dns_ms)
    except ProbeFailure:
        return replace(first, session=replace(first.session, client_auth=replace(auth, presented_accepted=False)))
    if second.session is None:
        return first
    accepted = not second.session.client_auth.required
    return replace(second, session=replace(second.session, client_auth=replace(auth, presented_accepted=accepted)))


async def _probe_once(target: Target, address: str, ctx: SSL.Context, timeout: float,
                      dns_ms: float | None) -> SessionProbe:
    start = time.perf_counter()
    reader, writer = await open_tcp(address, target.port, timeout)
    connect_ms = elapsed_ms(start)
    try:
        if not target.speaks_tls:
            return SessionProbe(None, Timings(dns_ms, connect_ms), await _plain_http(target, reader, writer, timeout))
        starttls_ms = None
        if target.starttls is not None:
            start = time.perf_counter()
            await starttls.upgrade(target.starttls, reader, writer, timeout, target.name)
            starttls_ms = elapsed_ms(start)
        handshake = Handshake(reader, writer, ctx, target.sni, timeout)
        try:
            await handshake.run()
            request = http.request(target.name, target.port, SCHEMES[target.scheme].port) \
                if target.checks_http and not handshake.client_cert_refused else b""
            client_auth, answer = await handshake.client_auth(request, wait=min(timeout, 2.0 if request else 1.0))
            facts = http.parse_head(answer) if request else None
            session = handshake.session(client_auth)
        finally:
            handshake.release()
        return SessionProbe(session, Timings(dns_ms, connect_ms, starttls_ms, handshake.handshake_ms), facts)
    finally:
        await close(writer)


async def _plain_http(target: Target, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      timeout: float) -> HttpFacts:
    writer.write(http.request(target.name, target.port, 80))
    await writer.drain()
    data = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while b"\r\n\r\n" not in data and len(data) < 65536:
            chunk = await asyncio.wait_for(reader.read(8192), max(0.01, deadline - loop.time()))
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        raise ProbeFailure(FailureKind.HANDSHAKE_TIMEOUT, f"no HTTP answer within {timeout:g}s", phase="http") from None
    except ConnectionResetError:
        raise ProbeFailure(FailureKind.RESET, "connection reset before an HTTP answer", phase="http") from None
    facts = http.parse_head(data)
    if facts is None:
        raise ProbeFailure(FailureKind.PROTOCOL_ERROR, f"not an HTTP answer: {data[:40]!r}", phase="http")
    return facts
