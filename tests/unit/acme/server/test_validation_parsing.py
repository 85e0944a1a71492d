"""The http-01 response reader: Content-Length, chunked and read-to-close bodies; anything else is a
``connection`` problem, never an exception of another kind."""

from __future__ import annotations

import pytest

from tlsward.acme.server.problems import AcmeProblem
from tlsward.acme.server.validation import _parse_http_response


@pytest.mark.parametrize(("raw", "status", "body"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, b"hello"),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nhello", 200, b"hel"),
    (b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nto the close", 200, b"to the close"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n", 200,
     b"hello!"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404, b""),
])
def test_parses(raw: bytes, status: int, body: bytes) -> None:
    assert _parse_http_response(raw, "test") == (status, body)


@pytest.mark.parametrize("raw", [b"", b"garbage", b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n",
                                 b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
def test_refuses(raw: bytes) -> None:
    with pytest.raises(AcmeProblem) as caught:
        _parse_http_response(raw, "test")
    assert caught.value.kind == "connection"
