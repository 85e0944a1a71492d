"""Bounded HTTP fetches for revocation and chain completion: CRLs, OCSP requests, AIA caIssuers certificates.

Why bounded: every URL here comes from a certificate a server chose to send us, so the peer decides what we
download. A fetch therefore accepts only ``http://`` and ``https://``, follows at most
:data:`MAX_REDIRECTS` redirects, reads at most ``max_bytes`` of (decoded) body, and gives up after
``timeout`` seconds per network operation and three times that in total (a server trickling one byte per
second must not hold a scan). Every failure is one :class:`~tlsward.model.errors.FetchError` line naming the
URL; no httpx or OS exception leaves this module.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
import sys
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from tlsward import __version__
from tlsward.model.errors import FetchError

if TYPE_CHECKING:
    import httpx

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


def _import_httpx() -> None:
    """Import httpx (~30 ms) when a fetch first happens, and without its command-line client: httpx's
    ``__init__`` imports ``httpx._main`` (click, pygments, rich.syntax: ~15 ms more) inside ``try: ...
    except ImportError`` and installs a stub ``httpx.main`` when that fails, which a ``None`` entry in
    ``sys.modules`` makes it do. Nothing here runs ``httpx.main``. Should an httpx need ``_main`` to import
    at all, it is imported whole."""
    if "httpx" in sys.modules:
        return
    blocked = "httpx._main" not in sys.modules
    if blocked:
        sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    except ImportError:
        if not blocked:
            raise
        del sys.modules["httpx._main"]
        blocked = False
        import httpx  # noqa: F401
    finally:
        if blocked and "httpx._main" in sys.modules and sys.modules["httpx._main"] is None:
            del sys.modules["httpx._main"]


async def _fetch(method: str, url: str, body: bytes | None, content_type: str | None, timeout: float,
                 max_bytes: int) -> bytes:
    check_url(url)
    _import_httpx()
    import httpx

    headers = {"User-Agent": USER_AGENT, "Accept": "*/*"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    try:
        async with (
            asyncio.timeout(timeout * 3),
            httpx.AsyncClient(follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=httpx.Timeout(timeout),
                              verify=_tls_context(), headers=headers) as client,
            client.stream(method, url, content=body) as response,
        ):
            return await _read(url, response, max_bytes)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(url, f"timed out after {timeout * 3:g}s in total", kind="timeout") from None
    except httpx.TimeoutException as exc:
        raise FetchError(url, f"{timeout_phase(exc)} timed out after {timeout:g}s", kind="timeout") from None
    except httpx.TooManyRedirects:
        raise FetchError(url, f"more than {MAX_REDIRECTS} redirects", kind="redirects") from None
    except httpx.UnsupportedProtocol as exc:
        raise FetchError(url, f"redirected to an unsupported URL ({_one_line(exc)})", kind="scheme") from None
    except httpx.InvalidURL as exc:
        raise FetchError(url, f"malformed URL ({_one_line(exc)})", kind="url") from None
    except httpx.ConnectError as exc:
        raise _connect_error(url, exc) from None
    except httpx.HTTPError as exc:   # protocol errors, resets mid-body, bad chunking, bad gzip ...
        raise FetchError(url, _cause(exc), kind="network") from None
    except OSError as exc:
        raise FetchError(url, exc.strerror or _one_line(exc), kind="network") from None


async def _read(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    final = str(response.url)
    where = url if final == url else f"{url} (redirected to {final})"
    if not 200 <= response.status_code < 300:
        phrase = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise FetchError(where, f"HTTP {response.status_code}{phrase}", kind="http_status")
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(where, f"body of {int(declared)} bytes is over the {max_bytes}-byte limit",
                         kind="too_large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(where, f"body is over the {max_bytes}-byte limit", kind="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


def timeout_phase(exc: httpx.TimeoutException) -> str:
    """Which part of an HTTP exchange timed out, in words for a one-line error."""
    import httpx  # loaded already: ``exc`` is one of its exceptions

    if isinstance(exc, httpx.ConnectTimeout):
        return "connect"
    if isinstance(exc, httpx.ReadTimeout):
        return "read"
    if isinstance(exc, httpx.WriteTimeout):
        return "write"
    return "request"


def _connect_error(url: str, exc: httpx.ConnectError) -> FetchError:
    """Name the OS-level cause httpx wraps (refused, DNS, TLS) instead of its generic message."""
    cause: BaseException | None = exc
    seen = 0
    while cause is not None and seen < 8:
        if isinstance(cause, ConnectionRefusedError):
            return FetchError(url, "connection refused", kind="refused")
        if isinstance(cause, socket.gaierror):
            return FetchError(url, f"name does not resolve ({cause.strerror})", kind="dns")
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchError(url, f"TLS certificate not trusted ({cause.verify_message})", kind="tls")
        if isinstance(cause, ssl.SSLError):
            return FetchError(url, f"TLS handshake failed ({cause.reason or _one_line(cause)})", kind="tls")
        if isinstance(cause, OSError) and cause.strerror:
            return FetchError(url, cause.strerror[0].lower() + cause.strerror[1:], kind="network")
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return FetchError(url, _one_line(exc), kind="network")


def _cause(exc: httpx.HTTPError) -> str:
    text = _one_line(exc)
    return text if text != type(exc).__name__ else f"{type(exc).__name__} (connection broke off)"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
