"""Plain-text dialogues that precede TLS: SMTP, IMAP, POP3, FTP, LDAP, XMPP, PostgreSQL, MySQL.

Each waits for every reply before the next command (servers that enforce pipelining rules drop
clients that do not) and is bounded in lines, bytes and time.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable

from tlsward.model.scan import FailureKind, ProbeFailure
from tlsward.model.target import StartTLS

MAX_LINES = 100
EHLO_NAME = "tlsward.invalid"


def _fail(kind: FailureKind, message: str) -> ProbeFailure:
    return ProbeFailure(kind, message, phase="starttls")


async def _line(reader: asyncio.StreamReader, timeout: float) -> str:
    try:
        raw = await asyncio.wait_for(reader.readline(), timeout)
    except TimeoutError:
        raise _fail(FailureKind.HANDSHAKE_TIMEOUT, f"no reply within {timeout:g}s") from None
    except (asyncio.LimitOverrunError, ValueError):
        raise _fail(FailureKind.PROTOCOL_ERROR, "reply line too long") from None
    except ConnectionResetError:
        raise _fail(FailureKind.RESET, "connection reset during the STARTTLS dialogue") from None
    if not raw:
        raise _fail(FailureKind.CLOSED, "server closed the connection during the STARTTLS dialogue")
    return raw.decode("utf-8", "replace").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader, timeout: float) -> tuple[int, list[str]]:
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader, timeout)
        lines.append(line)
        if line.startswith("HTTP/"):
            raise _fail(FailureKind.PLAINTEXT_HTTP, "an HTTP server answered instead of SMTP")
        if len(line) < 3 or not line[:3].isdigit():
            raise _fail(FailureKind.PROTOCOL_ERROR, f"not an SMTP reply: {line[:60]!r}")
        if len(line) == 3 or line[3] != "-":
            return int(line[:3]), lines
    raise _fail(FailureKind.PROTOCOL_ERROR, "SMTP reply longer than 100 lines")


async def _send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


# RFC 5321 4.2.3: 421 "Service not available, closing transmission channel", what MTAs answer when a client
# opens too many connections (Postfix smtpd_client_connection_count_limit, Exim smtp_accept_max_per_host).
SMTP_SERVICE_NOT_AVAILABLE = 421


async def _smtp_reply_checked(reader: asyncio.StreamReader, timeout: float, after: str) -> tuple[int, list[str]]:
    """An SMTP reply; a 421 (the server sheds load, typically too many connections) is RATE_LIMITED."""
    code, lines = await _smtp_reply(reader, timeout)
    if code == SMTP_SERVICE_NOT_AVAILABLE:
        raise _fail(FailureKind.RATE_LIMITED, f"SMTP 421 {after}: {lines[0][:120]!r}")
    return code, lines


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    code, lines = await _smtp_reply_checked(reader, timeout, "as greeting")
    if code != 220:
        raise _fail(FailureKind.STARTTLS_FAILED, f"SMTP greeting {lines[0]!r}")
    await _send(writer, f"EHLO {EHLO_NAME}\r\n".encode())
    code, lines = await _smtp_reply_checked(reader, timeout, "to EHLO")
    if code != 250:
        raise _fail(FailureKind.STARTTLS_FAILED, f"EHLO refused: {lines[0]!r}")
    if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, "the server's EHLO reply does not offer STARTTLS")
    await _send(writer, b"STARTTLS\r\n")
    code, lines = await _smtp_reply_checked(reader, timeout, "to STARTTLS")
    if code != 220:
        raise _fail(FailureKind.STARTTLS_FAILED, f"STARTTLS refused: {lines[0]!r}")


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    greeting = await _line(reader, timeout)
    if not greeting.startswith("* "):
        raise _fail(FailureKind.PROTOCOL_ERROR, f"not an IMAP greeting: {greeting[:60]!r}")
    await _send(writer, b"a1 CAPABILITY\r\n")
    capabilities = ""
    for _ in range(MAX_LINES):
        line = await _line(reader, timeout)
        if line.startswith("a1 "):
            break
        capabilities += " " + line.upper()
    if "STARTTLS" not in capabilities and "STARTTLS" not in greeting.upper():
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, "IMAP CAPABILITY does not list STARTTLS")
    await _send(writer, b"a2 STARTTLS\r\n")
    for _ in range(MAX_LINES):
        line = await _line(reader, timeout)
        if line.startswith("a2 "):
            if not line.upper().startswith("A2 OK"):
                raise _fail(FailureKind.STARTTLS_FAILED, f"STARTTLS refused: {line!r}")
            return
    raise _fail(FailureKind.PROTOCOL_ERROR, "no tagged reply to STARTTLS")


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    greeting = await _line(reader, timeout)
    if not greeting.startswith("+OK"):
        raise _fail(FailureKind.PROTOCOL_ERROR, f"not a POP3 greeting: {greeting[:60]!r}")
    await _send(writer, b"STLS\r\n")
    reply = await _line(reader, timeout)
    if not reply.startswith("+OK"):
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, f"POP3 STLS refused: {reply[:60]!r}")


async def ftp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    code, lines = await _smtp_reply(reader, timeout)  # FTP replies share SMTP's shape
    if code != 220:
        raise _fail(FailureKind.PROTOCOL_ERROR, f"FTP greeting {lines[0]!r}")
    await _send(writer, b"AUTH TLS\r\n")
    code, lines = await _smtp_reply(reader, timeout)
    if code != 234:
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, f"FTP AUTH TLS refused: {lines[0]!r}")


# LDAPv3 ExtendedRequest for StartTLS (RFC 4511 4.14), message id 1.
LDAP_STARTTLS = bytes.fromhex("301d02010177188016312e332e362e312e342e312e313436362e3230303337")


async def ldap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    await _send(writer, LDAP_STARTTLS)
    try:
        head = await asyncio.wait_for(reader.readexactly(2), timeout)
        length = head[1]
        if length & 0x80:
            length = int.from_bytes(await asyncio.wait_for(reader.readexactly(length & 0x7F), timeout), "big")
        body = await asyncio.wait_for(reader.readexactly(min(length, 65536)), timeout)
    except TimeoutError:
        raise _fail(FailureKind.HANDSHAKE_TIMEOUT, f"no LDAP reply within {timeout:g}s") from None
    except asyncio.IncompleteReadError:
        raise _fail(FailureKind.CLOSED, "server closed the connection during LDAP StartTLS") from None
    # ExtendedResponse [APPLICATION 24] carries resultCode as the first ENUMERATED (0a 01 xx).
    marker = body.find(b"\x78")
    result = body.find(b"\x0a\x01", marker if marker >= 0 else 0)
    if head[0] != 0x30 or marker < 0 or result < 0:
        raise _fail(FailureKind.PROTOCOL_ERROR, "not an LDAP ExtendedResponse")
    if body[result + 2] != 0:
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, f"LDAP StartTLS refused (resultCode {body[result + 2]})")


async def xmpp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float, domain: str) -> None:
    await _send(writer, (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>").encode())
    seen = b""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while b"</stream:features>" not in seen and len(seen) < 65536:
        chunk = await asyncio.wait_for(reader.read(4096), max(0.01, deadline - loop.time()))
        if not chunk:
            raise _fail(FailureKind.CLOSED, "server closed the XMPP stream")
        seen += chunk
    if b"urn:ietf:params:xml:ns:xmpp-tls" not in seen:
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, "XMPP stream features do not offer STARTTLS")
    await _send(writer, b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    reply = await asyncio.wait_for(reader.read(4096), timeout)
    if b"<proceed" not in reply:
        raise _fail(FailureKind.STARTTLS_FAILED, f"XMPP STARTTLS refused: {reply[:80]!r}")


async def postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    await _send(writer, struct.pack(">II", 8, 80877103))
    try:
        answer = await asyncio.wait_for(reader.readexactly(1), timeout)
    except asyncio.IncompleteReadError:
        raise _fail(FailureKind.CLOSED, "server closed the connection after SSLRequest") from None
    if answer == b"N":
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, "PostgreSQL server refused SSLRequest (ssl = off)")
    if answer != b"S":
        raise _fail(FailureKind.PROTOCOL_ERROR, f"not a PostgreSQL SSLRequest answer: {answer!r}")


async def mysql(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, timeout: float) -> None:
    try:
        header = await asyncio.wait_for(reader.readexactly(4), timeout)
        payload = await asyncio.wait_for(reader.readexactly(int.from_bytes(header[:3], "little")), timeout)
    except asyncio.IncompleteReadError:
        raise _fail(FailureKind.CLOSED, "server closed the connection before its MySQL greeting") from None
    if not payload or payload[0] != 10:
        raise _fail(FailureKind.PROTOCOL_ERROR, "not a MySQL protocol-10 greeting")
    version_end = payload.index(b"\x00", 1)
    caps_low = struct.unpack_from("<H", payload, version_end + 1 + 4 + 8 + 1)[0]
    client_ssl = 0x0800
    if not caps_low & client_ssl:
        raise _fail(FailureKind.STARTTLS_NOT_OFFERED, "MySQL server does not advertise CLIENT_SSL")
    flags = client_ssl | 0x0200 | 0x8000 | 0x00080000 | 0x00000001  # SSL, PROTOCOL_41, SECURE_CONN, PLUGIN_AUTH
    body = struct.pack("<IIB", flags, 1 << 24, 33) + bytes(23)
    await _send(writer, len(body).to_bytes(3, "little") + bytes([header[3] + 1]) + body)


Dialogue = Callable[[asyncio.StreamReader, asyncio.StreamWriter, float], Awaitable[None]]


async def upgrade(kind: StartTLS, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                  timeout: float, domain: str) -> None:
    """Run the dialogue for ``kind``; afterwards the next byte on the wire is the ClientHello."""
    dialogues: dict[StartTLS, Dialogue] = {
        StartTLS.SMTP: smtp, StartTLS.IMAP: imap, StartTLS.POP3: pop3, StartTLS.FTP: ftp,
        StartTLS.LDAP: ldap, StartTLS.POSTGRES: postgres, StartTLS.MYSQL: mysql,
    }
    try:
        if kind is StartTLS.XMPP:
            await xmpp(reader, writer, timeout, domain)
        else:
            await dialogues[kind](reader, writer, timeout)
    except TimeoutError:
        raise _fail(FailureKind.HANDSHAKE_TIMEOUT, f"{kind} dialogue timed out after {timeout:g}s") from None
    except ConnectionResetError:
        raise _fail(FailureKind.RESET, f"connection reset during the {kind} dialogue") from None
    except (struct.error, ValueError, IndexError) as exc:
        raise _fail(FailureKind.PROTOCOL_ERROR, f"malformed {kind} reply: {exc}") from None
