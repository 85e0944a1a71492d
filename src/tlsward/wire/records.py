"""The TLS record layer, sans I/O: split a byte stream into records, and tell TLS from other protocols.

Nothing here reads a socket: callers ``feed()`` whatever bytes arrived, in chunks of any size, and get back
the records completed so far. Every malformed input raises :class:`~tlsward.model.errors.WireError` with a
one-line reason; the amount of buffered data is bounded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from tlsward.model.errors import WireError


class ContentType(IntEnum):
    CHANGE_CIPHER_SPEC = 20
    ALERT = 21
    HANDSHAKE = 22
    APPLICATION_DATA = 23
    HEARTBEAT = 24


RECORD_HEADER_LENGTH = 5
# RFC 5246 6.2.3: a TLSCiphertext fragment is at most 2^14 + 2048 bytes; a TLS 1.3 one 2^14 + 256.
MAX_RECORD_LENGTH = 2**14 + 2048
DEFAULT_MAX_BUFFERED = 256 * 1024


@dataclass(frozen=True, slots=True)
class Record:
    content_type: int
    version: int
    fragment: bytes


def _header_problem(header: bytes) -> str | None:
    """Why a 5-byte record header cannot be TLS, or None if it can."""
    content_type, version, length = struct.unpack(">BHH", header)
    if content_type not in ContentType._value2member_map_:
        return f"unknown record type {content_type}"
    if version >> 8 != 3:
        return f"record version 0x{version:04X} is not SSL 3.0/TLS"
    if length > MAX_RECORD_LENGTH:
        return f"record of {length} bytes exceeds the {MAX_RECORD_LENGTH}-byte limit"
    return None


class RecordReader:
    """Incremental record splitter. ``feed()`` returns the records completed by the new bytes."""

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self._buffer = bytearray()
        self._max_buffered = max_buffered

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a complete record."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Record]:
        """Append ``data``; return the records it completed. The incomplete tail may not exceed the limit."""
        self._buffer += data
        records: list[Record] = []
        while len(self._buffer) >= RECORD_HEADER_LENGTH:
            header = bytes(self._buffer[:RECORD_HEADER_LENGTH])
            problem = _header_problem(header)
            if problem is not None:
                raise WireError(f"malformed record header {header.hex()}: {problem}")
            content_type, version, length = struct.unpack(">BHH", header)
            end = RECORD_HEADER_LENGTH + length
            if len(self._buffer) < end:
                break
            records.append(Record(content_type, version, bytes(self._buffer[RECORD_HEADER_LENGTH:end])))
            del self._buffer[:end]
        if len(self._buffer) > self._max_buffered:
            raise WireError(f"more than {self._max_buffered} bytes buffered without a complete record")
        return records

    def check_eof(self) -> None:
        """The peer closed the connection: raise WireError if it did so in the middle of a record."""
        if self._buffer:
            raise WireError(f"connection closed inside a record ({len(self._buffer)} bytes of it received)")


@dataclass(frozen=True, slots=True)
class NotTls:
    """What the first bytes from a server are, when they cannot be TLS."""

    description: str
    http: bool = False


_BANNERS: tuple[tuple[bytes, str], ...] = (
    (b"HTTP/", "plaintext HTTP response"),
    (b"SSH-", "SSH banner"),
    (b"220", "plaintext greeting (SMTP/FTP 220)"),
    (b"* OK", "plaintext IMAP greeting"),
    (b"+OK", "plaintext POP3 greeting"),
    (b"-ERR", "plaintext error (POP3/Redis)"),
    (b"<?xml", "plaintext XML (XMPP?)"),
)


def sniff_not_tls(prefix: bytes, *, final: bool = False) -> NotTls | None:
    """Classify the first bytes a server sent.

    Returns :class:`NotTls` when they cannot start a TLS record stream, or None when they can (or are too few
    to tell: a lone ``b"HTT"`` waits for more so that HTTP is named as such, unless ``final`` says no more
    bytes will come). Five bytes are always enough to decide. Never raises.
    """
    if not prefix:
        return None
    for banner, description in _BANNERS:
        if prefix.startswith(banner):
            first_line = bytes(prefix.split(b"\n", 1)[0][:60]).rstrip(b"\r")
            return NotTls(f"{description}: {first_line.decode('ascii', 'replace')!r}", http=banner == b"HTTP/")
        if banner.startswith(prefix) and not final:
            return None  # could still become this banner
    first = prefix[0]
    if first & 0x80 and len(prefix) >= 3 and prefix[2] == 4:
        return NotTls("SSLv2 ServerHello (the server speaks only SSL 2.0)")
    if first not in ContentType._value2member_map_:
        if all(32 <= b < 127 or b in (9, 10, 13) for b in prefix[:40]):
            return NotTls(f"plaintext {bytes(prefix[:40]).decode('ascii')!r}")
        return NotTls(f"first byte 0x{first:02X} is not a TLS record type")
    if len(prefix) >= 2 and prefix[1] != 3:
        return NotTls(f"bytes {bytes(prefix[:3]).hex()} are not a TLS record header")
    if len(prefix) >= RECORD_HEADER_LENGTH:
        problem = _header_problem(bytes(prefix[:RECORD_HEADER_LENGTH]))
        if problem is not None:
            return NotTls(f"not a TLS record header: {problem}")
    return None
