"""The lab process: one asyncio loop serving every case on its own loopback port.

Start-up order matters for clean errors: every port is bound first (so a taken port fails before
anything is generated), then the PKI is built and written, then the servers start listening, and
only then is ``lab.json`` published.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import datetime as dt
import errno
import logging
import os
import socket
import ssl
import warnings
from asyncio import sslproto
from collections.abc import Sequence
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives import serialization

from tlsward.lab.catalogue import CASES, CLIENT_LEAF, CLIENT_SPEC, LabCase, PortPlan
from tlsward.lab.handlers import Handler, HandlerContext, http_response, make_handler
from tlsward.lab.pki import LabPKI, build_pki, pem_bundle, write_private
from tlsward.lab.state import EndpointInfo, LabState
from tlsward.model.errors import LabError, PortInUseError

log = logging.getLogger("tlsward.lab")

TLS_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}
TLS_RSA_WITH_3DES_EDE_CBC_SHA = 0x000A
BLOCK_SEARCH = range(20000, 60000, 97)


def bind_ports(plan: PortPlan, cases: Sequence[LabCase]) -> dict[str, socket.socket]:
    """Bind every port of the plan, or none: the first taken port raises a one-line error."""
    family = socket.AF_INET6 if ":" in plan.host else socket.AF_INET
    names = ["pki", *(c.name for c in cases)]
    ports = [plan.base, *(plan.ports[c.name] for c in cases)]
    # Listen at once (the servers start later; connections wait in the backlog): with SO_REUSEADDR, Linux lets a
    # second socket bind a port nobody listens on yet, so two labs starting together could both "claim" a block.
    # The closed case never listens (refused connections); the ports bound before it already keep others out.
    closed = {c.name for c in cases if c.kind == "closed"}
    bound: dict[str, socket.socket] = {}
    try:
        for name, port in zip(names, ports, strict=True):
            if not 0 < port < 65536:
                raise LabError(f"lab port {port} (case {name}) is out of range; choose a lower --base-port")
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((plan.host, port))
                if name not in closed:
                    sock.listen(128)
            except OSError as exc:
                sock.close()
                if exc.errno == errno.EADDRINUSE:
                    raise PortInUseError(
                        f"port {port} on {plan.host} (lab case {name}) is already in use; "
                        f"stop what holds it or choose another --base-port"
                    ) from None
                raise LabError(f"cannot bind {plan.host}:{port} (lab case {name}): {exc.strerror}") from None
            bound[name] = sock
    except BaseException:
        for sock in bound.values():
            sock.close()
        raise
    return bound


def find_free_plan(host: str, cases: Sequence[LabCase] = CASES) -> tuple[PortPlan, dict[str, socket.socket]]:
    """Find a block of free ports (for tests that must not collide with a user's lab)."""
    for base in BLOCK_SEARCH:
        plan = PortPlan.for_base(host, base, cases)
        with contextlib.suppress(PortInUseError):
            return plan, bind_ports(plan, cases)
    raise LabError(f"no block of {len(cases) + 1} free ports found on {host}")


def _serialize_chain(case: LabCase, pki: LabPKI) -> bytes:
    chain = pki.chain_for(case.name)
    if case.chain == "leaf_only":
        chain = chain[:1]
    elif case.chain == "wrong_order":
        chain = [chain[0], *reversed(chain[1:])]
    return pem_bundle(chain)


def _send_client_ca_names(ctx: ssl.SSLContext, ca_file: Path) -> None:
    """Make the server list acceptable client-certificate CAs in its CertificateRequest, as nginx's
    ``ssl_client_certificate`` does. The stdlib has no API for SSL_CTX_set_client_CA_list, so we call
    the libssl this interpreter's ``_ssl`` module is linked against, on the SSL_CTX inside ``ctx``
    (CPython's PySSLContext keeps it right after the object header)."""
    libssl = ctypes.CDLL(ctypes.util.find_library("ssl") or "libssl.so.3")
    libssl.SSL_load_client_CA_file.restype = ctypes.c_void_p
    libssl.SSL_load_client_CA_file.argtypes = [ctypes.c_char_p]
    libssl.SSL_CTX_set_client_CA_list.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    libssl.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
    ssl_ctx = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    # Guard against a layout change: the pointer must be the context whose verify mode we just set.
    if not ssl_ctx or libssl.SSL_CTX_get_verify_mode(ssl_ctx) == 0:
        raise LabError("cannot reach the OpenSSL context to set client CA names")
    names = libssl.SSL_load_client_CA_file(str(ca_file).encode())
    if not names:
        raise LabError(f"cannot read client CA names from {ca_file}")
    libssl.SSL_CTX_set_client_CA_list(ssl_ctx, names)


# RFC 2409 Oakley group 2: the 1024-bit MODP prime that Logjam-era servers shipped by default.
OAKLEY_GROUP_2_PEM = """-----BEGIN DH PARAMETERS-----
MIGHAoGBAP//////////yQ/aoiFowjTExmKLgNwc0SkCTgiKZ8x0Agu+pjsTmyJR
Sgh5jjQE3e+VGbPNOkMbMCsKbfJfFDdP4TVtbVHCReSFtXZiXn7G9ExC6aY37WsL
/1y29Aa37e44a/taiZ+lrp8kEXxLH+ZJKGZR7OZTgf//////////AgEC
-----END DH PARAMETERS-----
"""


def server_context(case: LabCase, chain_file: Path, key_file: Path, client_ca_file: Path) -> ssl.SSLContext:
    """An OpenSSL server context configured exactly as the case declares."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [TLS_VERSIONS[v] for v in case.versions]
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated: that is the point of those cases
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = min(versions)
        ctx.maximum_version = max(versions)
    ctx.set_ciphers(case.ciphers)
    ctx.load_cert_chain(chain_file, key_file)
    if case.weak_dh:
        dh_file = chain_file.with_name("dh1024.pem")
        dh_file.write_text(OAKLEY_GROUP_2_PEM)
        ctx.load_dh_params(str(dh_file))
    if case.client_cert != "none":
        ctx.verify_mode = ssl.CERT_REQUIRED if case.client_cert == "required" else ssl.CERT_OPTIONAL
        ctx.load_verify_locations(client_ca_file)
        _send_client_ca_names(ctx, client_ca_file)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class _AlertingSSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS server, except that a failed handshake sends its alert before the connection closes.

    Stock asyncio force-closes the transport with OpenSSL's alert (protocol_version, handshake_failure ...)
    still in its outgoing buffer, so clients see a bare EOF. nginx, HAProxy and ``openssl s_server`` send the
    alert, and scanners read it: a refusal is then a clean "no" rather than an inconclusive silence.
    """

    def _on_handshake_complete(self, handshake_exc: BaseException | None) -> None:
        if handshake_exc is not None:
            outgoing = getattr(self, "_outgoing", None)
            transport = self._transport
            if isinstance(outgoing, ssl.MemoryBIO) and isinstance(transport, asyncio.WriteTransport):
                with contextlib.suppress(OSError, RuntimeError):
                    if pending := outgoing.read():
                        transport.write(pending)  # loopback: sent at once, before the force-close below
        super()._on_handshake_complete(handshake_exc)


async def start_tls_server(handler: Handler, ctx: ssl.SSLContext, sock: socket.socket) -> asyncio.Server:
    """``asyncio.start_server(handler, sock=sock, ssl=ctx)`` with :class:`_AlertingSSLProtocol`."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.BaseProtocol:
        reader = asyncio.StreamReader(loop=loop)
        app = asyncio.StreamReaderProtocol(reader, handler, loop=loop)
        no_waiter = cast("asyncio.Future[None]", None)  # the stubs want a future; asyncio accepts None
        return _AlertingSSLProtocol(loop, app, ctx, no_waiter, server_side=True, ssl_handshake_timeout=10)

    return await loop.create_server(factory, sock=sock, backlog=512)


class LabServer:
    """Owns the sockets, the PKI files and the asyncio servers of one lab."""

    def __init__(self, state_dir: Path, plan: PortPlan, sockets: dict[str, socket.socket],
                 cases: Sequence[LabCase] = CASES, now: dt.datetime | None = None) -> None:
        self.state_dir = state_dir
        self.plan = plan
        self.cases = tuple(cases)
        self._sockets = sockets
        self._now = now or dt.datetime.now(dt.UTC)
        self._servers: list[asyncio.Server] = []
        self.pki: LabPKI | None = None

    def _write_pki(self) -> dict[str, tuple[Path, Path]]:
        specs = {c.name: c.leaf for c in self.cases if c.leaf is not None}
        specs[CLIENT_LEAF] = CLIENT_SPEC
        self.pki = pki = build_pki(specs, self._now, self.plan.pki_url)
        pki_dir = self.state_dir / "pki"
        certs_dir = self.state_dir / "certs"
        pki_dir.mkdir(parents=True, exist_ok=True)
        certs_dir.mkdir(parents=True, exist_ok=True)
        for name, ca in pki.cas.items():
            (pki_dir / f"{name}.pem").write_bytes(ca.cert_pem)
        (pki_dir / "ca-bundle.pem").write_bytes(pki.cas["root"].cert_pem)
        (pki_dir / "client-ca.pem").write_bytes(pem_bundle([pki.cas["intermediate-2"].cert, pki.cas["root"].cert]))
        client = pki.leaves[CLIENT_LEAF]
        (pki_dir / "client.pem").write_bytes(pem_bundle(pki.chain_for(CLIENT_LEAF)))
        write_private(pki_dir / "client.key", client.key_pem)
        files: dict[str, tuple[Path, Path]] = {}
        for case in self.cases:
            if case.leaf is None:
                continue
            chain_file, key_file = certs_dir / f"{case.name}.pem", certs_dir / f"{case.name}.key"
            chain_file.write_bytes(_serialize_chain(case, pki))
            write_private(key_file, pki.leaves[case.name].key_pem)
            files[case.name] = (chain_file, key_file)
        return files

    def _pki_routes(self) -> dict[str, tuple[str, bytes]]:
        assert self.pki is not None
        routes: dict[str, tuple[str, bytes]] = {}
        for name, ca in self.pki.cas.items():
            routes[f"/{name}.der"] = ("application/pkix-cert", ca.cert.public_bytes(serialization.Encoding.DER))
            routes[f"/{name}.pem"] = ("application/x-pem-file", ca.cert_pem)
        for name, crl in self.pki.crls.items():
            routes[f"/{name}.crl"] = ("application/pkix-crl", crl.public_bytes(serialization.Encoding.DER))
        return routes

    async def _serve_pki(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """A minimal HTTP/1.1 GET server for CRLs and CA certificates (what CDP/AIA URLs point to)."""
        routes = self._pki_routes()
        try:
            line = await asyncio.wait_for(reader.readline(), 10.0)
            while (await asyncio.wait_for(reader.readline(), 10.0)) not in (b"\r\n", b"\n", b""):
                pass
            parts = line.decode("ascii", "replace").split()
            path = parts[1] if len(parts) >= 2 else ""
            if path in routes:
                ctype, body = routes[path]
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                        "Connection: close\r\n\r\n").encode()
                writer.write(head + body)
            else:
                writer.write(http_response("404 Not Found", [], f"no such lab PKI object: {path}\n"))
            await writer.drain()
        except (TimeoutError, OSError, ValueError):
            pass
        finally:
            writer.close()

    async def start(self) -> LabState:
        files = self._write_pki()
        assert self.pki is not None
        client_ca = self.state_dir / "pki" / "client-ca.pem"
        redirect_to = self.plan.ports.get("https-hsts", self.plan.base)
        self._servers.append(await asyncio.start_server(self._serve_pki, sock=self._sockets["pki"]))
        for case in self.cases:
            sock = self._sockets[case.name]
            if case.kind == "closed":
                continue  # bound but never listening: connections are refused, and the port stays ours
            tls = None
            if case.name in files and case.kind != "legacy_3des":
                tls = server_context(case, *files[case.name], client_ca)
            legacy_chain = tuple(
                c.public_bytes(serialization.Encoding.DER) for c in self.pki.chain_for(case.name)
            ) if case.kind == "legacy_3des" else ()
            ctx = HandlerContext(
                case=case, tls=tls, redirect_url=f"https://https-hsts.lab.tlsward.test:{redirect_to}",
                legacy_chain=legacy_chain, legacy_suites=(TLS_RSA_WITH_3DES_EDE_CBC_SHA,),
            )
            if tls is not None and case.kind == "tls":  # STARTTLS kinds upgrade later, in their dialogue
                self._servers.append(await start_tls_server(make_handler(ctx), tls, sock))
            else:
                self._servers.append(await asyncio.start_server(make_handler(ctx), sock=sock, backlog=512))
        state = LabState(
            pid=os.getpid(), host=self.plan.host, base_port=self.plan.base, pki_url=self.plan.pki_url,
            started_at=self._now.isoformat(timespec="seconds"), state_dir=str(self.state_dir),
            ca_file=str(self.state_dir / "pki" / "ca-bundle.pem"),
            untrusted_ca_file=str(self.state_dir / "pki" / "untrusted-root.pem"),
            client_cert=str(self.state_dir / "pki" / "client.pem"),
            client_key=str(self.state_dir / "pki" / "client.key"),
            endpoints=tuple(
                EndpointInfo(c.name, c.kind, self.plan.ports[c.name], c.sni, c.target(self.plan.ports[c.name]),
                             c.situation)
                for c in self.cases
            ),
        )
        state.write(self.state_dir)
        return state

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)
        for sock in self._sockets.values():
            sock.close()
        self._servers.clear()
