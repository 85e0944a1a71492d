"""A hand-written TLS 1.0-1.2 responder for suites OpenSSL 3 can no longer serve (3DES).

It answers a ClientHello with ServerHello, Certificate and ServerHelloDone when the client offers
one of its suites, and with a fatal ``handshake_failure`` alert otherwise. That is all a scanner needs
to see the suite is accepted; no key exchange ever completes, so nothing is encrypted with 3DES.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import Sequence

HANDSHAKE = 22
ALERT = 21
CLIENT_HELLO = 1
SERVER_HELLO = 2
CERTIFICATE = 11
SERVER_HELLO_DONE = 14
RENEGOTIATION_INFO = 0xFF01
EMPTY_RENEGOTIATION_INFO_SCSV = 0x00FF
ALERT_HANDSHAKE_FAILURE = 40
ALERT_PROTOCOL_VERSION = 70
ALERT_DECODE_ERROR = 50
MAX_HELLO = 65536


class HelloError(ValueError):
    """The client's first flight is not a ClientHello we can answer."""

    def __init__(self, alert: int, reason: str) -> None:
        super().__init__(reason)
        self.alert = alert


def parse_client_hello(body: bytes) -> tuple[int, list[int], list[int]]:
    """Return (legacy_version, cipher suites, extension types) of a ClientHello handshake body."""
    try:
        pos = 0
        version = struct.unpack_from(">H", body, pos)[0]
        pos += 2 + 32
        sid_len = body[pos]
        pos += 1 + sid_len
        (cs_len,) = struct.unpack_from(">H", body, pos)
        pos += 2
        if cs_len % 2 or pos + cs_len > len(body):
            raise HelloError(ALERT_DECODE_ERROR, "cipher suite list overruns the ClientHello")
        suites = [struct.unpack_from(">H", body, pos + i)[0] for i in range(0, cs_len, 2)]
        pos += cs_len
        comp_len = body[pos]
        pos += 1 + comp_len
        if pos > len(body):
            raise HelloError(ALERT_DECODE_ERROR, "compression methods overrun the ClientHello")
        extensions: list[int] = []
        if pos < len(body):
            (ext_total,) = struct.unpack_from(">H", body, pos)
            pos += 2
            end = min(pos + ext_total, len(body))
            while pos + 4 <= end:
                ext_type, ext_len = struct.unpack_from(">HH", body, pos)
                extensions.append(ext_type)
                pos += 4 + ext_len
    except (struct.error, IndexError) as exc:
        raise HelloError(ALERT_DECODE_ERROR, f"truncated ClientHello: {exc}") from None
    return version, suites, extensions


def _record(content_type: int, version: int, payload: bytes) -> bytes:
    return struct.pack(">BHH", content_type, version, len(payload)) + payload


def _handshake(msg_type: int, body: bytes) -> bytes:
    return struct.pack(">B", msg_type) + len(body).to_bytes(3, "big") + body


def alert(description: int, version: int = 0x0301) -> bytes:
    return _record(ALERT, version, bytes([2, description]))


def server_flight(client_hello: bytes, suites: Sequence[int], chain_der: Sequence[bytes]) -> bytes:
    """The server's answer to one ClientHello body: a full first flight, or an alert record."""
    try:
        client_version, offered, extensions = parse_client_hello(client_hello)
        if client_version < 0x0301:
            raise HelloError(ALERT_PROTOCOL_VERSION, "client offers nothing newer than SSL 3.0")
        version = min(client_version, 0x0303)
        chosen = next((s for s in suites if s in offered), None)
        if chosen is None:
            raise HelloError(ALERT_HANDSHAKE_FAILURE, "no shared cipher suite")
    except HelloError as exc:
        return alert(exc.alert)
    ext = b""
    if RENEGOTIATION_INFO in extensions or EMPTY_RENEGOTIATION_INFO_SCSV in offered:
        ext = struct.pack(">HHB", RENEGOTIATION_INFO, 1, 0)
    hello = (
        struct.pack(">H", version) + os.urandom(32) + b"\x00" + struct.pack(">HB", chosen, 0)
        + (struct.pack(">H", len(ext)) + ext if ext else b"")
    )
    certs = b"".join(len(der).to_bytes(3, "big") + der for der in chain_der)
    payload = (
        _handshake(SERVER_HELLO, hello)
        + _handshake(CERTIFICATE, len(certs).to_bytes(3, "big") + certs)
        + _handshake(SERVER_HELLO_DONE, b"")
    )
    return _record(HANDSHAKE, version, payload)


async def read_client_hello(reader: asyncio.StreamReader) -> bytes:
    """Read handshake records until one whole ClientHello body is assembled (bounded)."""
    buffer = b""
    while True:
        header = await reader.readexactly(5)
        content_type, _version, length = struct.unpack(">BHH", header)
        if content_type != HANDSHAKE or length > 16384 + 2048:
            raise HelloError(ALERT_DECODE_ERROR, "first record is not a handshake record")
        buffer += await reader.readexactly(length)
        if len(buffer) >= 4:
            if buffer[0] != CLIENT_HELLO:
                raise HelloError(ALERT_DECODE_ERROR, "first handshake message is not a ClientHello")
            body_len = int.from_bytes(buffer[1:4], "big")
            if body_len > MAX_HELLO:
                raise HelloError(ALERT_DECODE_ERROR, "ClientHello too large")
            if len(buffer) >= 4 + body_len:
                return buffer[4 : 4 + body_len]
