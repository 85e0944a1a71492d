"""The TLS handshake, driven over asyncio through an OpenSSL memory BIO (pyOpenSSL).

Why not the stdlib ``ssl`` module: Python 3.11 cannot return the chain the server presented, the
negotiated group, the CertificateRequest, or alerts. With a memory BIO we own the socket (so every
phase is timed and every failure classified), and OpenSSL's message callback hands us each handshake
message in the clear, including TLS 1.3's encrypted ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from OpenSSL import SSL, crypto
from OpenSSL._util import ffi, lib  # the message callback and group name are not wrapped by pyOpenSSL

from tlsward.model.errors import UsageError
from tlsward.model.registry import alert_name, cipher_name
from tlsward.model.scan import ClientAuth, FailureKind, ProbeFailure, Session

READ_CHUNK = 65536
CERTIFICATE_REQUEST = 13
SERVER_HELLO = 2
CLIENT_CERT_REFUSALS = {40, 42, 46, 48, 116}
VERSION_NAMES = {"TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3",
                 "SSLv3": "SSLv3"}


@dataclass
class _Recorder:
    """What the message callback saw on one connection (received messages only)."""

    handshake_types: list[int] = field(default_factory=list)
    server_hello: bytes = b""
    alerts: list[tuple[int, int]] = field(default_factory=list)
    ocsp: bytes | None = None


_RECORDERS: dict[int, _Recorder] = {}


def _on_message(write_p: int, version: int, content_type: int, buf: Any, length: int, ssl: Any, arg: Any) -> None:
    try:
        recorder = _RECORDERS.get(int(ffi.cast("uintptr_t", ssl)))
        if recorder is None or write_p:
            return
        data = bytes(ffi.buffer(buf, length))
        if content_type == 22 and data:
            recorder.handshake_types.append(data[0])
            if data[0] == SERVER_HELLO and not recorder.server_hello:
                recorder.server_hello = data[4:]
        elif content_type == 21 and len(data) >= 2:
            recorder.alerts.append((data[0], data[1]))
    except Exception:  # noqa: S110 - an exception must never cross into OpenSSL
        pass


_ON_MESSAGE = ffi.callback("void(int, int, int, void *, size_t, SSL *, void *)", _on_message)


def _on_ocsp(conn: SSL.Connection, ocsp: bytes, data: Any) -> bool:
    recorder = conn.get_app_data()
    if isinstance(recorder, _Recorder):
        recorder.ocsp = ocsp
    return True


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    cert_file: str
    key_file: str


def make_context(client: ClientIdentity | None = None, alpn: tuple[bytes, ...] = (b"h2", b"http/1.1"),
                 ) -> SSL.Context:
    """A client context that can talk to anything OpenSSL still implements (we observe; we do not judge
    here: verification is done afterwards, against named trust stores)."""
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_VERSION)
    ctx.set_cipher_list(b"ALL:COMPLEMENTOFALL:@SECLEVEL=0")
    ctx.set_verify(SSL.VERIFY_NONE)
    ctx.set_options(SSL.OP_NO_TICKET)
    if alpn:
        ctx.set_alpn_protos(list(alpn))
    ctx.set_ocsp_client_callback(_on_ocsp)
    if client is not None:
        _load_client_identity(ctx, client)
    lib.SSL_CTX_set_msg_callback(ctx._context, _ON_MESSAGE)
    return ctx


def _load_client_identity(ctx: SSL.Context, client: ClientIdentity) -> None:
    """Load --cert/--key, or fail with one line that names the file and what is wrong with it."""
    for flag, path in (("--cert", client.cert_file), ("--key", client.key_file)):
        if not Path(path).is_file() or not os.access(path, os.R_OK):
            raise UsageError(f"{flag} {path}: not a readable file")
    steps = (("--cert", client.cert_file, ctx.use_certificate_chain_file),
             ("--key", client.key_file, ctx.use_privatekey_file))
    for flag, path, load in steps:
        try:
            load(path)
        except SSL.Error as exc:
            reasons = ", ".join(str(e[2]) for e in exc.args[0] if isinstance(e, tuple) and e[2]) or "unreadable"
            raise UsageError(f"{flag} {path}: not a usable PEM {flag[2:]} ({reasons})") from None
    try:
        ctx.check_privatekey()
    except SSL.Error:
        raise UsageError(f"--key {client.key_file} does not match --cert {client.cert_file}") from None


def _cipher_code(server_hello: bytes) -> int:
    """The cipher suite from a ServerHello body: version(2) random(32) session_id<1> suite(2)."""
    try:
        sid_len = server_hello[34]
        return int(struct.unpack_from(">H", server_hello, 35 + sid_len)[0])
    except (IndexError, struct.error):
        return -1


@dataclass
class Handshake:
    """One client handshake on an already-connected stream (after any STARTTLS dialogue)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    ctx: SSL.Context
    sni: str | None
    timeout: float
    recorder: _Recorder = field(default_factory=_Recorder)
    first_bytes: bytes = b""

    def __post_init__(self) -> None:
        self.conn = SSL.Connection(self.ctx, None)
        self.conn.set_connect_state()
        if self.sni:
            self.conn.set_tlsext_host_name(self.sni.encode("idna"))
        self.conn.request_ocsp()
        self.conn.set_app_data(self.recorder)
        self._key = int(ffi.cast("uintptr_t", self.conn._ssl))
        _RECORDERS[self._key] = self.recorder
        self.handshake_ms: float | None = None
        self.head = bytearray()  # the first record's worth of server bytes, to diagnose truncation
        self.client_cert_refused = False

    def release(self) -> None:
        _RECORDERS.pop(self._key, None)

    async def _flush(self) -> None:
        with contextlib.suppress(SSL.WantReadError):
            while True:
                data = self.conn.bio_read(READ_CHUNK)
                if not data:
                    break
                self.writer.write(data)
        await self.writer.drain()

    async def _pump_in(self, deadline: float, phase: str) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError
        data = await asyncio.wait_for(self.reader.read(READ_CHUNK), remaining)
        if not data:
            raise EOFError
        if not self.first_bytes:
            self.first_bytes = data[:16]
            self._check_first_bytes(phase)
        if len(self.head) < 5 + 2**14:
            self.head += data[: 5 + 2**14 - len(self.head)]
        self.conn.bio_write(data)

    def _check_first_bytes(self, phase: str) -> None:
        head = self.first_bytes
        if head[:1] in (b"\x16", b"\x15"):
            return
        if head.startswith(b"HTTP/") or head[:4].upper() in (b"<HTM", b"<!DO"):
            raise ProbeFailure(FailureKind.PLAINTEXT_HTTP,
                               "plain HTTP answered on the TLS port (the listener is not configured for TLS)",
                               phase=phase)
        raise ProbeFailure(FailureKind.NOT_TLS, f"the server answered with non-TLS bytes {head!r}", phase=phase)

    def _alert(self) -> tuple[int, int] | None:
        return self.recorder.alerts[-1] if self.recorder.alerts else None

    def _failure_from_ssl_error(self, exc: SSL.Error, phase: str) -> ProbeFailure:
        alert = self._alert()
        if alert is not None:
            name = alert_name(alert[1])
            if not self.recorder.server_hello and alert[1] in (40, 70, 71):
                return ProbeFailure(
                    FailureKind.NO_SHARED_CIPHER,
                    f"the server rejected every protocol version and cipher suite offered ({name} alert)",
                    phase=phase, alert=name)
            return ProbeFailure(FailureKind.TLS_ALERT, f"the server sent a fatal {name} alert", phase=phase,
                                alert=name)
        return ProbeFailure(FailureKind.PROTOCOL_ERROR, f"TLS error: {exc}", phase=phase)

    async def run(self) -> None:
        """Complete the handshake or raise a classified ProbeFailure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        start = time.perf_counter()
        try:
            while True:
                try:
                    self.conn.do_handshake()
                    break
                except SSL.WantReadError:
                    await self._flush()
                    await self._pump_in(deadline, "handshake")
            await self._flush()
        except TimeoutError:
            raise ProbeFailure(FailureKind.HANDSHAKE_TIMEOUT,
                               f"no TLS handshake within {self.timeout:g}s (the server accepted TCP but did not "
                               "answer the ClientHello)", phase="handshake") from None
        except EOFError:
            raise self._closed_failure() from None
        except ConnectionResetError:
            raise ProbeFailure(FailureKind.RESET, "the server reset the connection during the handshake",
                               phase="handshake") from None
        except SSL.Error as exc:
            if self._refused_for_missing_client_cert():
                self.client_cert_refused = True
                return
            raise self._failure_from_ssl_error(exc, "handshake") from None
        finally:
            self.handshake_ms = round((time.perf_counter() - start) * 1000, 2)

    def _refused_for_missing_client_cert(self) -> bool:
        alert = self._alert()
        return (CERTIFICATE_REQUEST in self.recorder.handshake_types and alert is not None
                and alert[1] in CLIENT_CERT_REFUSALS)

    def _closed_failure(self) -> ProbeFailure:
        alert = self._alert()
        if alert is not None:
            return self._failure_from_ssl_error(SSL.Error(), "handshake")
        head = bytes(self.head)
        if len(head) >= 5 and head[0] in (20, 21, 22, 23):
            declared = int.from_bytes(head[3:5], "big")
            if len(head) - 5 < declared:
                return ProbeFailure(FailureKind.PROTOCOL_ERROR,
                                    f"the server sent a truncated TLS record ({len(head) - 5} of {declared} bytes) "
                                    "and closed the connection", phase="handshake")
        return ProbeFailure(FailureKind.CLOSED, "the server closed the connection during the handshake "
                            "without an alert", phase="handshake")

    async def client_auth(self, request: bytes = b"", wait: float = 1.0) -> tuple[ClientAuth, bytes]:
        """Whether a client certificate was asked for, and whether going without one is fatal; also
        returns what the server answered to ``request`` (sent only if the handshake went through).

        TLS 1.2 servers refuse during the handshake; TLS 1.3 servers send certificate_required after
        our Finished, so when a certificate was requested we read briefly to catch that alert."""
        requested = CERTIFICATE_REQUEST in self.recorder.handshake_types
        cas = tuple(
            ",".join(f"{k.decode()}={v.decode(errors='replace')}" for k, v in reversed(name.get_components()))
            for name in (self.conn.get_client_ca_list() or [])
        ) if requested else ()
        required, answer = self.client_cert_refused, b""
        if not required and (request or requested):
            try:
                if request:
                    await self.send(request)
                answer = await self.read_until_closed(wait) if request else await self.read_some(wait)
                if requested and not answer and not request:
                    raise EOFError
            except SSL.Error:
                required = self._refused_for_missing_client_cert()
            except (EOFError, ConnectionResetError, SSL.ZeroReturnError):
                # Some servers drop the connection instead of sending certificate_required.
                required = requested
            except (TimeoutError, OSError):
                pass  # still waiting for us: the certificate was optional
            if requested and request and not answer and not required:
                required = True  # asked for a certificate, then never answered the request without one
        return ClientAuth(requested=requested, required=required, acceptable_cas=cas), answer

    async def read_until_closed(self, wait: float, limit: int = 65536) -> bytes:
        """Application data until the server closes, ``limit`` bytes, or ``wait`` seconds."""
        data = b""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while len(data) < limit:
            try:
                chunk = await self.read_some(max(0.0, deadline - loop.time()))
            except (TimeoutError, EOFError):
                break
            if not chunk:
                break
            data += chunk
        return data

    async def read_some(self, wait: float) -> bytes:
        """Read application data (or provoke a pending alert) for at most ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                return self.conn.recv(READ_CHUNK)
            except SSL.WantReadError:
                await self._flush()
                await self._pump_in(deadline, "application")
            except SSL.ZeroReturnError:
                return b""

    async def send(self, data: bytes) -> None:
        self.conn.sendall(data)
        await self._flush()

    def session(self, client_auth: ClientAuth) -> Session:
        chain = tuple(
            crypto.dump_certificate(crypto.FILETYPE_ASN1, cert)
            for cert in (self.conn.get_peer_cert_chain() or [])
        )
        group_ptr = lib.SSL_get0_group_name(self.conn._ssl)
        group = bytes(ffi.string(group_ptr)).decode() if group_ptr != ffi.NULL else None
        alpn = self.conn.get_alpn_proto_negotiated()
        version = self.conn.get_protocol_version_name()
        ocsp = self.recorder.ocsp
        code = _cipher_code(self.recorder.server_hello)
        return Session(
            version=VERSION_NAMES.get(version, version),
            cipher=cipher_name(code) if code >= 0 else self.conn.get_cipher_name() or "",
            cipher_code=code,
            group=group,
            alpn=alpn.decode() if alpn else None,
            ocsp_stapled=bool(ocsp),
            ocsp_status=None,
            chain_der=chain,
            client_auth=client_auth,
            ocsp_response=ocsp or None,
        )
