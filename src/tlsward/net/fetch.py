"""Bounded HTTP fetches for revocation and chain completion: CRLs, OCSP requests, AIA caIssuers certificates.

Why bounded: every URL here comes from a certificate a server chose to send us, so the peer decides what we
download. A fetch therefore accepts only ``http://`` and ``https://``, follows at most
:data:`MAX_REDIRECTS` redirects, reads at most ``max_bytes`` of (decoded) body, and gives up after
``timeout`` seconds per network operation and three times that in total (a server trickling one byte per
second must not hold a scan). Every failure is one :class:`~tlsward.model.errors.FetchError` line naming the
URL; no h11, TLS or OS exception leaves this module.

Why h11 on asyncio streams and not httpx: these fetches are one request per connection to plain http:// URLs
almost always, and importing httpx (with httpcore and anyio) cost a one-host ``tlsward scan`` ~40 ms of its
start-up, a sixth of its run. h11 does the HTTP/1.1 framing (chunked bodies, hostile headers).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
import sys
import zlib
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urljoin, urlsplit

from tlsward import __version__
from tlsward.model.errors import FetchError

if TYPE_CHECKING:
    from collections.abc import Awaitable
    from types import ModuleType

    import h11

__all__ = [
    "MAX_CERT_BYTES",
    "MAX_CRL_BYTES",
    "MAX_OCSP_BYTES",
    "MAX_REDIRECTS",
    "http_get",
    "http_post",
]

MAX_CRL_BYTES = 10 * 1024 * 1024
MAX_OCSP_BYTES = 64 * 1024
MAX_CERT_BYTES = 256 * 1024
MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
USER_AGENT = f"tlsward/{__version__}"
SCHEMES = ("http", "https")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_HEADER_BYTES = 64 * 1024   # status line + headers: more is a hostile or broken server
READ_CHUNK = 64 * 1024
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "no_proxy"})
T = TypeVar("T")


async def http_get(url: str, *, timeout: float, max_bytes: int) -> bytes:
    """The body of a successful (2xx) GET of ``url``, or :class:`FetchError`."""
    return await _fetch("GET", url, None, None, timeout, max_bytes)


async def http_post(url: str, body: bytes, content_type: str, *, timeout: float, max_bytes: int) -> bytes:
    """The body of a successful (2xx) POST of ``body`` to ``url`` (an OCSP request), or :class:`FetchError`."""
    return await _fetch("POST", url, body, content_type, timeout, max_bytes)


def check_url(url: str) -> None:
    """Raise :class:`FetchError` unless ``url`` is an absolute http(s) URL with a host."""
    if len(url) > MAX_URL_LENGTH:
        raise FetchError(url[:80] + "...", f"URL longer than {MAX_URL_LENGTH} characters", kind="url")
    if not url.isascii() or not url.isprintable() or " " in url:
        raise FetchError(ascii(url)[1:-1], "URL has spaces or characters outside printable ASCII "
                         "(RFC 3986: they must be percent-encoded)", kind="url")
    try:
        parts = urlsplit(url)
        _port = parts.port   # raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise FetchError(url, f"malformed URL ({exc})", kind="url") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        shown = f"{scheme}://" if scheme else "no scheme"
        raise FetchError(url, f"unsupported scheme ({shown}; only http:// and https:// are fetched)", kind="scheme")
    if not parts.hostname:
        raise FetchError(url, "URL has no host", kind="url")


class _MozillaContext(ssl.SSLContext):
    """``ssl.create_default_context(cafile=certifi.where())`` that loads the roots on its first TLS connection:
    loading them costs ~12 ms, and CRL, OCSP and caIssuers URLs are plain http:// almost always (a redirect
    to https:// still verifies against them)."""

    _roots_loaded = False

    def _load_roots(self) -> None:
        if not self._roots_loaded:
            import certifi

            self.load_verify_locations(cafile=certifi.where())
            self._roots_loaded = True

    def wrap_socket(self, sock: socket.socket, server_side: bool = False, do_handshake_on_connect: bool = True,
                    suppress_ragged_eofs: bool = True, server_hostname: str | bytes | None = None,
                    session: ssl.SSLSession | None = None) -> ssl.SSLSocket:
        self._load_roots()
        return super().wrap_socket(sock, server_side, do_handshake_on_connect, suppress_ragged_eofs,
                                   server_hostname, session)

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        self._load_roots()
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """One verifying context (Mozilla roots) for every https:// fetch: building one costs milliseconds.
    Set up as :func:`ssl.create_default_context` does."""
    context = _MozillaContext(ssl.PROTOCOL_TLS_CLIENT)
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    keylog = os.environ.get("SSLKEYLOGFILE")
    if keylog and not sys.flags.ignore_environment:
        context.keylog_filename = keylog
    return context


async def _fetch(method: str, url: str, body: bytes | None, content_type: str | None, timeout: float,
                 max_bytes: int) -> bytes:
    check_url(url)
    current = url
    try:
        async with asyncio.timeout(timeout * 3):
            for _hop in range(MAX_REDIRECTS + 1):
                where = url if current == url else f"{url} (redirected to {current})"
                reply = await _exchange(method, current, where, body, content_type, timeout, max_bytes)
                if reply.location is None:
                    return reply.body
                current = _redirect_target(url, current, reply.location)
                if reply.status == 303 or (reply.status in (301, 302) and method == "POST"):
                    method, body, content_type = "GET", None, None   # what browsers and curl do
            raise FetchError(url, f"more than {MAX_REDIRECTS} redirects", kind="redirects")
    except TimeoutError:
        raise FetchError(url, f"timed out after {timeout * 3:g}s in total", kind="timeout") from None


class _Reply:
    """A 2xx body, or the Location of a redirect (``body`` empty)."""

    __slots__ = ("body", "location", "status")

    def __init__(self, status: int, body: bytes = b"", location: str | None = None) -> None:
        self.status, self.body, self.location = status, body, location


def _redirect_target(url: str, current: str, location: str) -> str:
    target = urljoin(current, location)
    scheme = urlsplit(target).scheme.lower()
    if scheme not in SCHEMES:
        raise FetchError(url, f"redirected to an unsupported URL ({target[:120]})", kind="scheme")
    try:
        check_url(target)
    except FetchError as exc:
        raise FetchError(url, f"redirected to a bad URL ({exc.detail})", kind=exc.kind) from None
    return target


async def _exchange(method: str, url: str, where: str, body: bytes | None, content_type: str | None,
                    timeout: float, max_bytes: int) -> _Reply:
    """One request on a fresh connection (``Connection: close``): h11 frames it, asyncio streams carry it."""
    import h11

    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme.lower() == "https"
    port = parts.port or (443 if tls else 80)
    authority = parts.netloc.rsplit("@", 1)[-1]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = [("Host", authority), ("User-Agent", USER_AGENT), ("Accept", "*/*"),
               ("Accept-Encoding", "identity"), ("Connection", "close")]
    if body is not None:
        headers += [("Content-Type", content_type or "application/octet-stream"), ("Content-Length", str(len(body)))]
    proxy = _proxy_for(parts.scheme.lower(), host, where)
    if proxy is None:
        reader, writer = await _connect(where, host, port, tls, timeout)
    else:
        reader, writer = await _connect(where, proxy.host, proxy.port, False, timeout, proxy=proxy)
        if not tls:   # a plain request goes to the proxy whole, in absolute form
            target = parts._replace(fragment="").geturl()
            headers += proxy.headers
    try:
        try:
            if proxy is not None and tls:   # through a CONNECT tunnel, then TLS to the server itself
                await _tunnel(reader, writer, proxy, host, port, timeout, where, h11)
                await _start_tls(writer, host, timeout, where)
            connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
            outgoing = connection.send(h11.Request(method=method, target=target, headers=headers))
            if body:
                outgoing += connection.send(h11.Data(data=body))
            outgoing += connection.send(h11.EndOfMessage())
            writer.write(outgoing)
            await _within(writer.drain(), timeout, where, "write")
            response = await _next_event(connection, reader, timeout, where, h11)
            while isinstance(response, h11.InformationalResponse):
                response = await _next_event(connection, reader, timeout, where, h11)
            assert isinstance(response, h11.Response)
            status = response.status_code
            fields = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in response.headers}
            if status in REDIRECTS and "location" in fields:
                return _Reply(status, location=fields["location"])
            if not 200 <= status < 300:
                phrase = response.reason.decode("latin-1").strip() or _phrase(status)
                raise FetchError(where, f"HTTP {status}{' ' + phrase if phrase else ''}", kind="http_status")
            declared = fields.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchError(where, f"body of {int(declared)} bytes is over the {max_bytes}-byte limit",
                                 kind="too_large")
            decoder = _decoder(fields.get("content-encoding", "identity"), where)
            chunks: list[bytes] = []
            size = 0
            while True:
                event = await _next_event(connection, reader, timeout, where, h11)
                if isinstance(event, h11.EndOfMessage):
                    if decoder is None:
                        return _Reply(status, b"".join(chunks))
                    data = decoder.flush()
                else:
                    data = bytes(event.data) if isinstance(event, h11.Data) else b""
                    if decoder is not None:
                        data = decoder.decompress(data, max_bytes + 1 - size)
                size += len(data)
                if size > max_bytes:
                    raise FetchError(where, f"body is over the {max_bytes}-byte limit", kind="too_large")
                chunks.append(data)
                if isinstance(event, h11.EndOfMessage):
                    return _Reply(status, b"".join(chunks))
        except h11.RemoteProtocolError as exc:
            raise FetchError(where, f"bad HTTP response ({_one_line(exc)})", kind="network") from None
        except h11.LocalProtocolError as exc:   # a request h11 will not frame (a header value it refuses)
            raise FetchError(where, f"cannot be requested ({_one_line(exc)})", kind="url") from None
        except zlib.error as exc:
            raise FetchError(where, f"bad compressed body ({_one_line(exc)})", kind="network") from None
        except OSError as exc:
            raise FetchError(where, exc.strerror or _one_line(exc), kind="network") from None
    finally:
        writer.close()


async def _next_event(connection: h11.Connection, reader: asyncio.StreamReader, timeout: float, where: str,
                      h11: ModuleType) -> object:
    """The next HTTP event from the server, reading as needed; an early close is an error, never a short body."""
    while True:
        event = connection.next_event()
        if event is not h11.NEED_DATA:
            if isinstance(event, h11.ConnectionClosed):
                raise FetchError(where, "connection closed before the response was complete", kind="network")
            return event
        data = await _within(reader.read(READ_CHUNK), timeout, where, "read")
        if not data and connection.their_state is h11.SEND_RESPONSE:
            detail = ("bad HTTP response (connection closed inside the status line or headers)"
                      if connection.trailing_data[0] else "connection closed before any response")
            raise FetchError(where, detail, kind="network")
        connection.receive_data(data)


class _Proxy:
    """An HTTP proxy from the environment: where it is and the headers it wants (Basic credentials)."""

    __slots__ = ("headers", "host", "port")

    def __init__(self, host: str, port: int, headers: list[tuple[str, str]]) -> None:
        self.host, self.port, self.headers = host, port, headers

    def __str__(self) -> str:
        return f"proxy {self.host}:{self.port}"


def _proxy_for(scheme: str, host: str, where: str) -> _Proxy | None:
    """The proxy the environment sets for ``scheme`` (``http_proxy``, ``https_proxy``, ``all_proxy``, any case)
    unless ``no_proxy`` exempts ``host``: what curl, httpx and urllib do. Only http:// proxies are supported."""
    if not any(name.lower() in PROXY_VARIABLES for name in os.environ):
        return None
    import urllib.request  # only when a proxy variable is set: it is a large import

    proxies = urllib.request.getproxies_environment()
    setting = proxies.get(scheme) or proxies.get("all")
    if not setting or urllib.request.proxy_bypass_environment(host):  # type: ignore[attr-defined]
        return None
    parts = urlsplit(setting if "://" in setting else f"http://{setting}")
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme.lower() != "http" or not parts.hostname or not port:
        raise FetchError(where, f"unusable proxy setting {setting!r} (an http://HOST:PORT proxy is needed)",
                         kind="url")
    headers = []
    if parts.username is not None:
        import base64
        from urllib.parse import unquote

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(pair).decode("ascii")))
    return _Proxy(parts.hostname, port, headers)


async def _tunnel(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: _Proxy, host: str, port: int,
                  timeout: float, where: str, h11: ModuleType) -> None:
    """Ask ``proxy`` for a CONNECT tunnel to ``host:port``; anything but a 2xx is one FetchError."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    try:
        writer.write(connection.send(h11.Request(method="CONNECT", target=authority, headers=[
            ("Host", authority), ("User-Agent", USER_AGENT), *proxy.headers])) + connection.send(h11.EndOfMessage()))
        await _within(writer.drain(), timeout, where, "write")
        response = await _next_event(connection, reader, timeout, where, h11)
    except h11.RemoteProtocolError as exc:
        raise FetchError(where, f"{proxy}: bad answer to CONNECT ({_one_line(exc)})", kind="network") from None
    status = getattr(response, "status_code", 0)
    if not 200 <= status < 300:
        raise FetchError(where, f"{proxy} refused the tunnel: HTTP {status}", kind="network")


async def _start_tls(writer: asyncio.StreamWriter, host: str, timeout: float, where: str) -> None:
    try:
        await _within(writer.start_tls(_tls_context(), server_hostname=host, ssl_handshake_timeout=timeout),
                      timeout, where, "TLS handshake")
    except ssl.SSLCertVerificationError as exc:
        raise FetchError(where, f"TLS certificate not trusted ({exc.verify_message})", kind="tls") from None
    except ssl.SSLError as exc:
        raise FetchError(where, f"TLS handshake failed ({exc.reason or _one_line(exc)})", kind="tls") from None


async def _connect(where: str, host: str, port: int, tls: bool, timeout: float,
                   proxy: _Proxy | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    via = "" if proxy is None else f"{proxy}: "
    try:
        return await _within(asyncio.open_connection(host, port, ssl=_tls_context() if tls else None,
                                                     server_hostname=host if tls else None,
                                                     ssl_handshake_timeout=timeout if tls else None,
                                                     limit=READ_CHUNK), timeout, where, f"{via}connect")
    except ConnectionRefusedError:
        raise FetchError(where, f"{via}connection refused", kind="refused") from None
    except socket.gaierror as exc:
        raise FetchError(where, f"{via}name does not resolve ({exc.strerror})", kind="dns") from None
    except ssl.SSLCertVerificationError as exc:
        raise FetchError(where, f"TLS certificate not trusted ({exc.verify_message})", kind="tls") from None
    except ssl.SSLError as exc:
        raise FetchError(where, f"TLS handshake failed ({exc.reason or _one_line(exc)})", kind="tls") from None
    except OSError as exc:
        detail = exc.strerror[0].lower() + exc.strerror[1:] if exc.strerror else _one_line(exc)
        raise FetchError(where, detail, kind="network") from None


async def _within(awaitable: Awaitable[T], timeout: float, where: str, phase: str) -> T:
    """One network operation bounded by ``timeout`` seconds; the phase that ran out is named."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise FetchError(where, f"{phase} timed out after {timeout:g}s", kind="timeout") from None


def _phrase(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _decoder(encoding: str, where: str) -> zlib._Decompress | None:
    """A bounded decompressor for a body the server encoded although we asked for ``identity``."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise FetchError(where, f"unsupported Content-Encoding {encoding!r}", kind="network")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
