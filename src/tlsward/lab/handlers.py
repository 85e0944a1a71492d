"""Connection handlers: what each kind of lab endpoint says on the wire.

Every handler is bounded: it reads at most a few KiB, waits at most a few seconds per read, and
closes the connection itself, so a stuck client can never pin the lab.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from tlsward.lab import legacy_tls
from tlsward.lab.catalogue import LabCase

READ_TIMEOUT = 10.0
BLACKHOLE_HOLD = 60.0
MAX_REQUEST = 16384
MAX_SMTP_COMMANDS = 50
PG_SSL_REQUEST = 80877103
PG_GSSENC_REQUEST = 80877104
HSTS_VALUE = "max-age=31536000; includeSubDomains"

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
KindHandler = Callable[["HandlerContext", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What a handler needs besides its case: its TLS context and where redirects point."""

    case: LabCase
    tls: ssl.SSLContext | None
    redirect_url: str = ""
    legacy_chain: Sequence[bytes] = ()
    legacy_suites: Sequence[int] = ()


async def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.TimeoutError, ssl.SSLError):
        writer.close()
        await asyncio.wait_for(writer.wait_closed(), 2.0)


async def _read_http_head(reader: asyncio.StreamReader) -> bytes:
    """Read an HTTP request head (up to the blank line), bounded in size and time."""
    data = b""
    while b"\r\n\r\n" not in data and b"\n\n" not in data and len(data) < MAX_REQUEST:
        chunk = await asyncio.wait_for(reader.read(4096), READ_TIMEOUT)
        if not chunk:
            break
        data += chunk
    return data


def http_response(status: str, headers: Sequence[tuple[str, str]], body: str) -> bytes:
    payload = body.encode()
    lines = [f"HTTP/1.1 {status}", "Server: tlsward-lab", "Content-Type: text/plain; charset=utf-8",
             f"Content-Length: {len(payload)}", "Connection: close", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _body(case: LabCase) -> str:
    return f"tlsward lab: {case.name}\n{case.situation}\n"


def make_handler(ctx: HandlerContext) -> Handler:
    """The connection handler for one case."""
    handlers: dict[str, KindHandler] = {
        "tls": _https, "plain_http": _plain_http_on_tls_port, "http": _http_site, "smtp": _smtp,
        "postgres": _postgres, "blackhole": _blackhole, "reset": _reset, "legacy_3des": _legacy,
        "truncated": _truncated, "imap": _imap, "pop3": _pop3, "ftp": _ftp, "ldap": _ldap, "xmpp": _xmpp,
        "mysql": _mysql,
    }
    inner = handlers[ctx.case.kind]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await inner(ctx, reader, writer)
        except (OSError, EOFError, ValueError):  # timeouts, TLS errors, truncated reads, bad ClientHellos
            pass  # a client going away or speaking nonsense is normal here
        finally:
            await _close(writer)

    return handle


async def _https(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _read_http_head(reader)
    if not head:
        return
    headers = [("Strict-Transport-Security", HSTS_VALUE)] if ctx.case.hsts else []
    writer.write(http_response("200 OK", headers, _body(ctx.case)))
    await writer.drain()


async def _plain_http_on_tls_port(ctx: HandlerContext, reader: asyncio.StreamReader,
                                  writer: asyncio.StreamWriter) -> None:
    # Like a plain nginx listener hit by a TLS ClientHello: it answers 400 in clear text.
    await asyncio.wait_for(reader.read(MAX_REQUEST), READ_TIMEOUT)
    writer.write(http_response("400 Bad Request", [], "400 Bad Request: this port speaks plain HTTP\n"))
    await writer.drain()


async def _http_site(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await _read_http_head(reader)
    if not head:
        return
    if ctx.case.redirect:
        path = head.split(b" ", 2)[1].decode("ascii", "replace") if head.count(b" ") >= 2 else "/"
        if not path.startswith("/"):
            path = "/"
        response = http_response("301 Moved Permanently", [("Location", ctx.redirect_url + path)],
                                 "moved to HTTPS\n")
    else:
        response = http_response("200 OK", [], _body(ctx.case))
    writer.write(response)
    await writer.drain()


async def _smtp(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    name = ctx.case.sni
    writer.write(f"220 {name} ESMTP tlsward-lab\r\n".encode())
    await writer.drain()
    in_tls = False
    for _ in range(MAX_SMTP_COMMANDS):
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        if not line:
            return
        verb = line.strip().split(b" ", 1)[0].upper()
        if verb in (b"EHLO", b"HELO"):
            offer_tls = ctx.case.starttls and not in_tls and verb == b"EHLO"
            lines = [name, "PIPELINING", "SIZE 10240000", *(["STARTTLS"] if offer_tls else []), "8BITMIME"]
            reply = "".join(f"250{'-' if i < len(lines) - 1 else ' '}{text}\r\n" for i, text in enumerate(lines))
            writer.write(reply.encode())
        elif verb == b"STARTTLS" and ctx.case.starttls and not in_tls and ctx.tls is not None:
            writer.write(b"220 2.0.0 Ready to start TLS\r\n")
            await writer.drain()
            await _upgrade_then_idle(ctx, reader, writer)  # no mail service behind the lab's TLS
            return
        elif verb == b"STARTTLS":
            writer.write(b"502 5.5.1 STARTTLS not available\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 2.0.0 Bye\r\n")
            await writer.drain()
            return
        elif verb in (b"NOOP", b"RSET"):
            writer.write(b"250 2.0.0 OK\r\n")
        else:
            writer.write(b"502 5.5.2 Command not recognized\r\n")
        await writer.drain()


def _pg_error(message: str) -> bytes:
    fields = b"SFATAL\x00C28000\x00M" + message.encode() + b"\x00\x00"
    return b"E" + struct.pack(">I", len(fields) + 4) + fields


async def _postgres(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(2):  # at most a GSSENCRequest, then an SSLRequest
        length, code = struct.unpack(">II", await asyncio.wait_for(reader.readexactly(8), READ_TIMEOUT))
        if length == 8 and code == PG_GSSENC_REQUEST:
            writer.write(b"N")
            await writer.drain()
            continue
        if length == 8 and code == PG_SSL_REQUEST and ctx.tls is not None:
            writer.write(b"S")
            await writer.drain()
            await _upgrade_then_idle(ctx, reader, writer)  # no database behind the lab's TLS
            return
        writer.write(_pg_error("tlsward lab: SSL is required (send SSLRequest first)"))
        await writer.drain()
        return


async def _blackhole(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Read and discard until the client gives up, for a bounded time; never answer.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BLACKHOLE_HOLD
    while (remaining := deadline - loop.time()) > 0:
        try:
            if not await asyncio.wait_for(reader.read(4096), remaining):
                return
        except TimeoutError:
            return


async def _reset(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # Wait for the ClientHello (or a short while), then close with SO_LINGER 0: the peer sees a RST.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(1), 2.0)
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _legacy(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        hello = await asyncio.wait_for(legacy_tls.read_client_hello(reader), READ_TIMEOUT)
    except legacy_tls.HelloError as exc:
        writer.write(legacy_tls.alert(exc.alert))
        await writer.drain()
        return
    writer.write(legacy_tls.server_flight(hello, ctx.legacy_suites, ctx.legacy_chain))
    await writer.drain()
    # The client cannot finish a key exchange with us; wait for it to give up, bounded.
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(reader.read(MAX_REQUEST), READ_TIMEOUT)


async def _upgrade_then_idle(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Switch to TLS, then wait (bounded) for the client to finish: there is no service behind it.

    TLS runs over memory BIOs on the same stream rather than ``start_tls``: clients such as MySQL's send
    their ClientHello right behind the upgrade request, and bytes already buffered in the StreamReader
    would be lost by swapping the transport."""
    assert ctx.tls is not None
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.tls.wrap_bio(incoming, outgoing, server_side=True)
    for _ in range(64):  # a handshake is a few round trips; bounded against a chatty peer
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLError:  # refused: send OpenSSL's alert (protocol_version ...) as real servers do
            if pending := outgoing.read():
                writer.write(pending)
                await writer.drain()
            return
        if pending := outgoing.read():
            writer.write(pending)
            await writer.drain()
        data = await asyncio.wait_for(reader.read(MAX_REQUEST), READ_TIMEOUT)
        if not data:
            return
        incoming.write(data)
    if pending := outgoing.read():
        writer.write(pending)
        await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(MAX_REQUEST), READ_TIMEOUT)


async def _line_commands(reader: asyncio.StreamReader) -> AsyncIterator[str]:
    for _ in range(MAX_SMTP_COMMANDS):
        line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
        if not line:
            return
        yield line.decode("utf-8", "replace").strip()


async def _say(writer: asyncio.StreamWriter, text: str) -> None:
    writer.write(text.encode())
    await writer.drain()


async def _imap(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _say(writer, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] tlsward lab IMAP ready\r\n")
    async for line in _line_commands(reader):
        tag, _, command = line.partition(" ")
        verb = command.split(" ", 1)[0].upper()
        if verb == "CAPABILITY":
            await _say(writer, f"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n{tag} OK CAPABILITY completed\r\n")
        elif verb == "STARTTLS":
            await _say(writer, f"{tag} OK Begin TLS negotiation now\r\n")
            await _upgrade_then_idle(ctx, reader, writer)
            return
        elif verb == "LOGOUT":
            await _say(writer, f"* BYE tlsward lab\r\n{tag} OK LOGOUT completed\r\n")
            return
        else:
            await _say(writer, f"{tag} BAD command not supported here\r\n")


async def _pop3(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _say(writer, "+OK tlsward lab POP3 ready\r\n")
    async for line in _line_commands(reader):
        verb = line.split(" ", 1)[0].upper()
        if verb == "CAPA":
            await _say(writer, "+OK Capability list follows\r\nSTLS\r\nUSER\r\n.\r\n")
        elif verb == "STLS":
            await _say(writer, "+OK Begin TLS negotiation\r\n")
            await _upgrade_then_idle(ctx, reader, writer)
            return
        elif verb == "QUIT":
            await _say(writer, "+OK bye\r\n")
            return
        else:
            await _say(writer, "-ERR command not supported here\r\n")


async def _ftp(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _say(writer, "220 tlsward lab FTP ready\r\n")
    async for line in _line_commands(reader):
        command = line.upper()
        if command.startswith("FEAT"):
            await _say(writer, "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n211 End\r\n")
        elif command in ("AUTH TLS", "AUTH SSL"):
            await _say(writer, "234 AUTH TLS OK.\r\n")
            await _upgrade_then_idle(ctx, reader, writer)
            return
        elif command.startswith("QUIT"):
            await _say(writer, "221 Goodbye.\r\n")
            return
        else:
            await _say(writer, "530 Please login with USER and PASS (after AUTH TLS).\r\n")


LDAP_STARTTLS_OID = b"1.3.6.1.4.1.1466.20037"


async def _ldap(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await asyncio.wait_for(reader.readexactly(2), READ_TIMEOUT)
    length = head[1]
    if length & 0x80:
        length = int.from_bytes(await asyncio.wait_for(reader.readexactly(length & 0x7F), READ_TIMEOUT), "big")
    if head[0] != 0x30 or length > MAX_REQUEST:
        return
    message = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT)
    # messageID is the first INTEGER; echo it back in the ExtendedResponse.
    if message[:1] != b"\x02" or LDAP_STARTTLS_OID not in message:
        return
    id_len = message[1]
    message_id = message[: 2 + id_len]
    result = b"\x0a\x01\x00\x04\x00\x04\x00" + b"\x8a" + bytes([len(LDAP_STARTTLS_OID)]) + LDAP_STARTTLS_OID
    response = message_id + b"\x78" + bytes([len(result)]) + result
    writer.write(b"\x30" + bytes([len(response)]) + response)
    await writer.drain()
    await _upgrade_then_idle(ctx, reader, writer)


async def _xmpp(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    opening = b""
    while b">" not in opening.split(b"stream:stream", 1)[-1] and len(opening) < MAX_REQUEST:
        chunk = await asyncio.wait_for(reader.read(4096), READ_TIMEOUT)
        if not chunk:
            return
        opening += chunk
    await _say(writer, (
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        f"xmlns:stream='http://etherx.jabber.org/streams' id='tlsward-lab' from='{ctx.case.sni}' version='1.0'>"
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
        "</stream:features>"))
    request = b""
    while b"starttls" not in request and len(request) < MAX_REQUEST:
        chunk = await asyncio.wait_for(reader.read(4096), READ_TIMEOUT)
        if not chunk:
            return
        request += chunk
    await _say(writer, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    await _upgrade_then_idle(ctx, reader, writer)


MYSQL_CLIENT_SSL = 0x0800


def mysql_greeting() -> bytes:
    """A MySQL protocol-10 handshake packet that advertises CLIENT_SSL."""
    capabilities = 0x0000_0001 | 0x0000_0200 | MYSQL_CLIENT_SSL | 0x0000_8000 | 0x0008_0000
    payload = (b"\x0a" + b"8.0.40-tlsward-lab\x00" + struct.pack("<I", 7) + b"abcdefgh" + b"\x00"
               + struct.pack("<H", capabilities & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
               + struct.pack("<H", capabilities >> 16) + b"\x15" + bytes(10) + b"ijklmnopqrst\x00"
               + b"mysql_native_password\x00")
    return len(payload).to_bytes(3, "little") + b"\x00" + payload


async def _mysql(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(mysql_greeting())
    await writer.drain()
    header = await asyncio.wait_for(reader.readexactly(4), READ_TIMEOUT)
    body = await asyncio.wait_for(reader.readexactly(int.from_bytes(header[:3], "little")), READ_TIMEOUT)
    if len(body) >= 4 and struct.unpack_from("<I", body)[0] & MYSQL_CLIENT_SSL:
        await _upgrade_then_idle(ctx, reader, writer)


async def _truncated(ctx: HandlerContext, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A broken TLS terminator: the ServerHello record header promises 86 bytes, 20 arrive, then FIN."""
    await asyncio.wait_for(reader.read(MAX_REQUEST), READ_TIMEOUT)
    writer.write(b"\x16\x03\x03\x00\x56\x02\x00\x00\x52\x03\x03" + bytes(9))
    await writer.drain()
