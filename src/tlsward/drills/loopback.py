"""The drills' piece of the built-in lab: one TLS endpoint on loopback whose deployment a drill changes while
the monitor watches (certificate, chain, protocol versions), and the PKI responder its certificates point at
(CRLs, CA certificates, OCSP), which a drill can stop and start.

The endpoint is the lab's own server code (``server_context``, ``start_tls_server``, ``make_handler``) on a
:class:`~tlsward.lab.catalogue.LabCase` built from the current :class:`Deployment`; a new deployment is a
reload: the listener is closed and opened again on the same port with the new context. Everything runs on one
asyncio loop on a daemon thread; every call from the drill waits at most :data:`CALL_TIMEOUT` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from tlsward.drills.pki import DRILL_HOST, DrillPKI, Leaf
from tlsward.lab.catalogue import MODERN_CIPHERS, TLS12_13, LabCase
from tlsward.lab.handlers import HandlerContext, http_response, make_handler
from tlsward.lab.pki import pem_bundle, write_private
from tlsward.lab.server import server_context, start_tls_server
from tlsward.model.errors import LabError

__all__ = ["CALL_TIMEOUT", "Deployment", "LoopbackLab"]

CALL_TIMEOUT = 15.0
READ_TIMEOUT = 5.0
MAX_BODY = 16384
T = TypeVar("T")
# TLS 1.0 needs SHA-1 CBC suites, which Debian's OpenSSL only offers at security level 0.
LEGACY_SUITES = "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0"


@dataclass(frozen=True, slots=True)
class Deployment:
    """What the endpoint serves: a leaf, how much of its chain, and which protocol versions and suites."""

    leaf: Leaf
    full_chain: bool = True
    versions: tuple[str, ...] = TLS12_13
    ciphers: str = MODERN_CIPHERS

    def with_tls10(self) -> Deployment:
        return replace(self, versions=("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"),
                       ciphers=f"{MODERN_CIPHERS}:{LEGACY_SUITES}")


def _bind(host: str, port: int = 0) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise LabError(f"cannot bind {host}:{port} for the drill: {exc.strerror}") from None
    return sock


class LoopbackLab:
    """The drill endpoint and the PKI responder; use as a context manager."""

    def __init__(self, work_dir: Path, host: str = "127.0.0.1") -> None:
        self.work_dir = work_dir
        self.host = host
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tlsward-drill-lab", daemon=True)
        self._endpoint_sock = _bind(host)
        try:
            self._pki_sock = _bind(host)
        except LabError:
            self._endpoint_sock.close()
            raise
        self.port: int = self._endpoint_sock.getsockname()[1]
        self.pki_port: int = self._pki_sock.getsockname()[1]
        bracketed = f"[{host}]" if ":" in host else host
        self.pki = DrillPKI.create(f"http://{bracketed}:{self.pki_port}")
        self.deployment: Deployment | None = None
        self._endpoint: asyncio.Server | None = None
        self._responder: asyncio.Server | None = None
        self._generation = 0
        self._files: tuple[Path, Path] | None = None
        self.responder_up = False

    # -- life cycle ----------------------------------------------------------------------------------------

    def __enter__(self) -> LoopbackLab:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        self.start_responder()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(CALL_TIMEOUT)
        for sock in (self._endpoint_sock, self._pki_sock):
            sock.close()
        if not self._thread.is_alive():
            self._loop.close()

    async def _close_all(self) -> None:
        for server in (self._endpoint, self._responder):
            if server is not None:
                server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 2.0)
        self._endpoint = self._responder = None

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(CALL_TIMEOUT)

    # -- the endpoint ------------------------------------------------------------------------------------------

    @property
    def sni(self) -> str:
        return DRILL_HOST

    @property
    def target(self) -> str:
        return f"{DRILL_HOST}:{self.port}"

    def write_bundle(self, name: str, cas: tuple[str, ...]) -> Path:
        """A PEM trust bundle holding the roots ``cas`` (e.g. the old and new roots side by side)."""
        path = self.work_dir / f"{name}.pem"
        path.write_bytes(pem_bundle([self.pki.cas[ca].cert for ca in cas]))
        return path

    def deploy(self, deployment: Deployment) -> None:
        """Serve ``deployment`` from now on: write the files, then reload the listener on the same port."""
        self._generation += 1
        chain_file = self.work_dir / f"served-{self._generation}.pem"
        key_file = self.work_dir / f"served-{self._generation}.key"
        chain = deployment.leaf.chain if deployment.full_chain else deployment.leaf.chain[:1]
        chain_file.write_bytes(pem_bundle(list(chain)))
        write_private(key_file, deployment.leaf.issued.key_pem)
        case = LabCase("drill", "tlsward drill endpoint", leaf=None, versions=deployment.versions,
                       ciphers=deployment.ciphers, sni_name=DRILL_HOST)
        context = server_context(case, chain_file, key_file, chain_file)
        self._call(self._listen(case, context))
        self.deployment = deployment

    def configure_files(self, fullchain: Path, key: Path) -> str:
        """Make the endpoint a file-configured server, as nginx is: from now on ``POST /-/reload`` on the PKI
        responder (the URL returned) re-reads ``fullchain`` and ``key`` and serves them, the way ``nginx -s
        reload`` re-reads its certificate files. Renewal automation under test writes the files and calls it."""
        self._files = (fullchain, key)
        bracketed = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{bracketed}:{self.pki_port}/-/reload"

    def reload_files(self) -> str:
        """What ``POST /-/reload`` does, for the drill itself: serve the configured files from now on."""
        return self._call(self._reload_files())

    async def _reload_files(self) -> str:
        if self._files is None:
            raise LabError("the drill endpoint is not configured from files")
        fullchain, key = self._files
        case = LabCase("drill", "tlsward drill endpoint", leaf=None, versions=TLS12_13, ciphers=MODERN_CIPHERS,
                       sni_name=DRILL_HOST)
        try:
            context = server_context(case, fullchain, key, fullchain)
        except Exception as exc:   # a broken pair: like `nginx -t`, refuse and keep serving what runs now
            raise LabError(f"reload refused: {fullchain}, {key}: {exc}") from None
        await self._listen(case, context)
        return f"serving {fullchain.name}"

    async def _listen(self, case: LabCase, context: Any) -> None:
        if self._endpoint is not None:
            self._endpoint.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._endpoint.wait_closed(), 2.0)
            self._endpoint_sock = _bind(self.host, self.port)      # the old listener took its socket with it
        handler = make_handler(HandlerContext(case=case, tls=context))
        self._endpoint = await start_tls_server(handler, context, self._endpoint_sock)

    # -- the PKI responder ---------------------------------------------------------------------------------

    def start_responder(self) -> None:
        if not self.responder_up:
            self._call(self._start_responder())
            self.responder_up = True

    def stop_responder(self) -> None:
        """Take the CRL and OCSP responder down: its port refuses connections until :meth:`start_responder`."""
        if self.responder_up:
            self._call(self._stop_responder())
            self.responder_up = False

    async def _start_responder(self) -> None:
        self._responder = await asyncio.start_server(self._serve_pki, sock=self._pki_sock, backlog=64)

    async def _stop_responder(self) -> None:
        if self._responder is not None:
            self._responder.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._responder.wait_closed(), 2.0)
            self._responder = None
            self._pki_sock = _bind(self.host, self.pki_port)    # bound, not listening: connections are refused

    async def _serve_pki(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """GET ``/<ca>.crl|.der|.pem`` and POST ``/ocsp/<ca>``: bounded in size and time, one request each."""
        try:
            line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT)
            length = 0
            while (header := await asyncio.wait_for(reader.readline(), READ_TIMEOUT)) not in (b"\r\n", b"\n", b""):
                name, _, value = header.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length" and value.strip().isdigit():
                    length = min(int(value.strip()), MAX_BODY)
            parts = line.decode("ascii", "replace").split()
            method, path = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
            body = await asyncio.wait_for(reader.readexactly(length), READ_TIMEOUT) if length else b""
            if method == "POST" and path == "/-/reload":
                try:
                    status, text = "200 OK", await self._reload_files()
                except LabError as exc:
                    status, text = "409 Conflict", str(exc)
                writer.write(http_response(status, [], text + "\n"))
                await writer.drain()
                return
            answer = self._answer(method, path, body)
            if answer is None:
                writer.write(http_response("404 Not Found", [], f"no such drill PKI object: {path}\n"))
            else:
                ctype, payload = answer
                writer.write((f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                              "Connection: close\r\n\r\n").encode() + payload)
            await writer.drain()
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def _answer(self, method: str, path: str, body: bytes) -> tuple[str, bytes] | None:
        name = path.rsplit("/", 1)[-1]
        if method == "POST" and path.startswith("/ocsp/") and name in self.pki.cas:
            return "application/ocsp-response", self.pki.ocsp_answer(name, body)
        if method != "GET" or path not in self.pki.routes():
            return None
        ca, _, ext = name.rpartition(".")
        if ext == "crl":
            return "application/pkix-crl", self.pki.crl(ca)
        if ext == "der":
            return "application/pkix-cert", self.pki.ca_der(ca)
        return "application/x-pem-file", self.pki.cas[ca].cert_pem
