"""Bounded fetches against a real loopback HTTP server: limits, redirects and every failure as one FetchError."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.unit.loopback_http import LoopbackHTTP, Route, closed_port, loopback_http
from tlsward.model.errors import FetchError
from tlsward.net.fetch import MAX_REDIRECTS, http_get, http_post


@pytest.fixture(scope="module")
def http() -> Iterator[LoopbackHTTP]:
    with loopback_http() as server:
        yield server


def get(url: str, *, timeout: float = 2.0, max_bytes: int = 1024) -> bytes:
    return asyncio.run(http_get(url, timeout=timeout, max_bytes=max_bytes))


def failure(url: str, *, timeout: float = 2.0, max_bytes: int = 1024) -> FetchError:
    with pytest.raises(FetchError) as info:
        get(url, timeout=timeout, max_bytes=max_bytes)
    error = info.value
    assert str(error).startswith(error.url) and "\n" not in str(error)
    return error


def test_get_returns_the_body(http: LoopbackHTTP) -> None:
    http.routes["/ok.crl"] = Route(b"crl bytes")
    assert get(http.url("/ok.crl")) == b"crl bytes"


def test_post_sends_body_and_content_type(http: LoopbackHTTP) -> None:
    http.routes["/echo"] = Route(lambda request: b"got " + request)
    body = asyncio.run(http_post(http.url("/echo"), b"ocsp request", "application/ocsp-request", timeout=2,
                                 max_bytes=1024))
    assert body == b"got ocsp request"


def test_http_error_status(http: LoopbackHTTP) -> None:
    error = failure(http.url("/missing.crl"))
    assert (error.kind, error.detail) == ("http_status", "HTTP 404 Not Found")
    assert str(error) == f"{http.url('/missing.crl')}: HTTP 404 Not Found"


@pytest.mark.parametrize("url", ["ftp://ca.example/ca.crl", "ldap://ldap.example/cn=CA?certificateRevocationList",
                                 "file:///etc/passwd", "/relative.crl"])
def test_only_http_and_https(url: str) -> None:
    error = failure(url)
    assert error.kind == "scheme" and "only http:// and https://" in error.detail


def test_malformed_url() -> None:
    assert failure("http://127.0.0.1:99999/x").kind == "url"
    assert failure("http:///no-host").kind == "url"
    for bad in ("http://ca.example/a b.crl", "http://ca.example/\x00.crl", "http://bücher.example/ca.crl"):
        error = failure(bad)
        assert error.kind == "url" and "printable ASCII" in error.detail


def test_a_redirect_to_a_url_that_cannot_be_requested_is_one_clean_error(http: LoopbackHTTP) -> None:
    http.routes["/to-space"] = Route(status=302, headers={"Location": "/a b.crl"})
    error = failure(http.url("/to-space"))
    assert error.kind == "url" and "redirected to a bad URL" in error.detail


def test_body_over_the_limit_by_content_length(http: LoopbackHTTP) -> None:
    http.routes["/big"] = Route(b"x" * 5000)
    error = failure(http.url("/big"), max_bytes=4096)
    assert error.kind == "too_large" and "5000 bytes is over the 4096-byte limit" in error.detail


def test_body_over_the_limit_without_content_length(http: LoopbackHTTP) -> None:
    http.routes["/stream"] = Route(b"x" * 50_000, content_length=False)
    assert failure(http.url("/stream"), max_bytes=4096).kind == "too_large"
    assert len(get(http.url("/stream"), max_bytes=50_000)) == 50_000


def test_redirects_are_followed_up_to_the_limit(http: LoopbackHTTP) -> None:
    http.routes["/final"] = Route(b"here")
    for hop in range(1, MAX_REDIRECTS + 2):
        target = "/final" if hop == 1 else f"/hop{hop - 1}"
        http.routes[f"/hop{hop}"] = Route(status=302, headers={"Location": http.url(target)})
    assert get(http.url(f"/hop{MAX_REDIRECTS}")) == b"here"
    assert failure(http.url(f"/hop{MAX_REDIRECTS + 1}")).kind == "redirects"


def test_redirect_to_another_scheme(http: LoopbackHTTP) -> None:
    http.routes["/to-ftp"] = Route(status=301, headers={"Location": "ftp://ca.example/ca.crl"})
    assert failure(http.url("/to-ftp")).kind == "scheme"


def test_connection_refused() -> None:
    url = f"http://127.0.0.1:{closed_port()}/ca.crl"
    error = failure(url)
    assert (error.kind, str(error)) == ("refused", f"{url}: connection refused")


def test_slow_server_times_out(http: LoopbackHTTP) -> None:
    http.routes["/slow"] = Route(b"late", delay=1.5)
    error = failure(http.url("/slow"), timeout=0.3)
    assert error.kind == "timeout" and "timed out" in error.detail


def test_chunked_and_compressed_bodies_are_decoded(http: LoopbackHTTP) -> None:
    http.routes["/chunked"] = Route(b"4\r\ncrl \r\n5\r\nbytes\r\n0\r\n\r\n", content_length=False,
                                    headers={"Transfer-Encoding": "chunked"})
    assert get(http.url("/chunked")) == b"crl bytes"
    http.routes["/gzip"] = Route(gzip.compress(b"crl bytes"), headers={"Content-Encoding": "gzip"})
    assert get(http.url("/gzip")) == b"crl bytes"


def test_a_compressed_body_is_bounded_by_its_decoded_size(http: LoopbackHTTP) -> None:
    http.routes["/bomb"] = Route(gzip.compress(b"\0" * 1_000_000), headers={"Content-Encoding": "gzip"})
    error = failure(http.url("/bomb"), max_bytes=4096)
    assert error.kind == "too_large" and "4096-byte limit" in error.detail


def test_a_post_redirected_by_303_becomes_a_get(http: LoopbackHTTP) -> None:
    http.routes["/answer"] = Route(lambda request: b"request body: " + request)
    http.routes["/moved"] = Route(status=303, headers={"Location": "/answer"})
    body = asyncio.run(http_post(http.url("/moved"), b"ocsp", "application/ocsp-request", timeout=2, max_bytes=1024))
    assert body == b"request body: "


@contextmanager
def raw_server(reply: bytes, *, close: bool = True) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that reads one request and answers ``reply`` verbatim: broken HTTP on purpose."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(5)

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(reply)
                if not close:
                    time.sleep(1.0)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/ca.crl"
    finally:
        thread.join(5)
        listener.close()


@pytest.mark.parametrize(("reply", "words"), [
    (b"SSH-2.0-OpenSSH_9.2\r\n", "bad HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "without sending complete message body"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad HTTP response"),
    (b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 300_000, "bad HTTP response"),
    (b"HTTP/1.1 200 OK\r\nContent-Le", "closed inside the status line or headers"),
    (b"", "connection closed before any response"),
])
def test_a_broken_server_is_one_clean_error(reply: bytes, words: str) -> None:
    with raw_server(reply) as url:
        error = failure(url)
    assert error.kind == "network" and words in error.detail, error.detail


def test_a_server_that_sends_headers_then_stalls_times_out() -> None:
    with raw_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", close=False) as url:
        error = failure(url, timeout=0.3)
    assert error.kind == "timeout" and error.detail == "read timed out after 0.3s"


def test_the_https_context_is_the_default_one_with_the_mozilla_roots_loaded_on_first_use() -> None:
    import ssl

    import certifi

    from tlsward.net.fetch import _MozillaContext, _tls_context

    reference = ssl.create_default_context(cafile=certifi.where())
    context = _tls_context()
    for attribute in ("protocol", "verify_mode", "check_hostname", "options", "verify_flags", "minimum_version",
                      "maximum_version"):
        assert getattr(context, attribute) == getattr(reference, attribute), attribute
    fresh = _MozillaContext(ssl.PROTOCOL_TLS_CLIENT)
    assert fresh.cert_store_stats()["x509_ca"] == 0     # nothing parsed for plain http:// fetches
    fresh.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="example.com")
    assert fresh.cert_store_stats() == reference.cert_store_stats()
