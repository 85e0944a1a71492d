"""The legacy probe: when OpenSSL finds nothing in common with a server, ask with a hand-made ClientHello
offering every pre-TLS-1.3 suite (3DES, RC4, export, NULL, CAMELLIA ... that OpenSSL 3 can no longer
speak) to learn what the server actually wants. A root cause instead of "handshake failure"."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from tlsward.model.errors import WireError
from tlsward.model.registry import cipher_name, version_name
from tlsward.model.scan import ProbeFailure
from tlsward.model.target import Target
from tlsward.net import starttls
from tlsward.net.connect import close, open_tcp
from tlsward.wire.client_hello import TLS12, ClientHelloSpec, build_client_hello, legacy_suites
from tlsward.wire.server_messages import ServerFlightParser


@dataclass(frozen=True, slots=True)
class LegacyAnswer:
    """What the server chose when offered everything old; its chain when it sent one in the clear."""

    version: str
    cipher: str
    cipher_code: int
    chain_der: tuple[bytes, ...]


async def probe_legacy(target: Target, address: str, timeout: float) -> LegacyAnswer | None:
    """None when the server refuses even that (or the probe itself fails: it is a diagnosis, not a verdict)."""
    try:
        reader, writer = await open_tcp(address, target.port, timeout)
    except ProbeFailure:
        return None
    try:
        if target.starttls is not None:
            await starttls.upgrade(target.starttls, reader, writer, timeout, target.name)
        writer.write(build_client_hello(ClientHelloSpec(legacy_suites(), max_version=TLS12,
                                                        server_name=target.sni)))
        await writer.drain()
        parser = ServerFlightParser()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not parser.complete and (remaining := deadline - loop.time()) > 0:
            data = await asyncio.wait_for(reader.read(65536), remaining)
            if not data:
                parser.feed_eof()
                break
            parser.feed(data)
    except (ProbeFailure, WireError, OSError, TimeoutError):
        return None
    finally:
        await close(writer)
    hello = parser.server_hello
    if hello is None:
        return None
    return LegacyAnswer(version_name(hello.version), cipher_name(hello.cipher_suite),
                        hello.cipher_suite, parser.certificate_chain or ())
