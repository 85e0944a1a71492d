"""SMTP STARTTLS replies, fed from memory (no sockets): a 421 is rate limiting, other refusals are unchanged."""

from __future__ import annotations

import asyncio

import pytest

from tlsward.model.scan import FailureKind, ProbeFailure
from tlsward.net import starttls


class _Writer:
    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None


def _dialogue(server_says: bytes) -> tuple[ProbeFailure | None, bytes]:
    async def run() -> tuple[ProbeFailure | None, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(server_says)
        reader.feed_eof()
        writer = _Writer()
        try:
            await starttls.smtp(reader, writer, 1.0)  # type: ignore[arg-type]
        except ProbeFailure as exc:
            return exc, writer.sent
        return None, writer.sent

    return asyncio.run(run())


EHLO_OK = b"250-mx.test\r\n250 STARTTLS\r\n"


@pytest.mark.parametrize(("server_says", "after"), [
    (b"421 4.7.0 mx.test Error: too many connections from 192.0.2.1\r\n", "as greeting"),
    (b"220 mx.test ESMTP\r\n421 4.3.2 Service shutting down\r\n", "to EHLO"),
    (b"220 mx.test ESMTP\r\n" + EHLO_OK + b"421 4.7.0 Try again later\r\n", "to STARTTLS"),
])
def test_smtp_421_is_rate_limiting(server_says: bytes, after: str) -> None:
    failure, _ = _dialogue(server_says)
    assert failure is not None and failure.kind is FailureKind.RATE_LIMITED
    assert str(failure).startswith(f"SMTP 421 {after}: '421 ")
    assert failure.phase == "starttls"


def test_other_smtp_refusals_keep_their_kinds() -> None:
    failure, _ = _dialogue(b"554 5.7.1 go away\r\n")
    assert failure is not None and failure.kind is FailureKind.STARTTLS_FAILED
    failure, _ = _dialogue(b"220 mx.test ESMTP\r\n250 mx.test\r\n")
    assert failure is not None and failure.kind is FailureKind.STARTTLS_NOT_OFFERED


def test_a_willing_server_gets_ehlo_then_starttls() -> None:
    failure, sent = _dialogue(b"220 mx.test ESMTP\r\n" + EHLO_OK + b"220 2.0.0 Ready to start TLS\r\n")
    assert failure is None
    assert sent == b"EHLO tlsward.invalid\r\nSTARTTLS\r\n"
