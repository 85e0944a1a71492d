"""The passive server-flight parser against hand-assembled golden flights, in every chunking."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.wire import golden
from tlsward.model.errors import Error, WireError
from tlsward.model.registry.alerts import AlertDescription, AlertLevel
from tlsward.wire import ServerFlightParser, parse_server_flight

FLIGHTS = {
    "tls12-ecdhe": golden.FLIGHT_12,
    "tls12-dhe-client-auth": golden.FLIGHT_DHE,
    "tls13": golden.FLIGHT_13,
    "hrr": golden.FLIGHT_HRR,
    "alert": golden.ALERT_HANDSHAKE_FAILURE,
}


def snapshot(parser: ServerFlightParser) -> dict[str, Any]:
    """Everything the parser exposes, for comparing one chunking with another."""
    return {
        "server_hello": parser.server_hello,
        "certificate_chain": parser.certificate_chain,
        "server_key_exchange": parser.server_key_exchange,
        "certificate_request": parser.certificate_request,
        "server_hello_done": parser.server_hello_done,
        "alert": parser.alert,
        "encrypted": parser.encrypted,
        "not_tls": parser.not_tls,
        "looks_like_http": parser.looks_like_http,
        "complete": parser.complete,
        "handshake_types": list(parser.handshake_types),
    }


def test_framing_helpers_match_a_literal_record() -> None:
    assert golden.record(22, golden.handshake(14, b"")) == bytes.fromhex("16030300040E000000")


def test_tls12_ecdhe_flight() -> None:
    parser = parse_server_flight(golden.FLIGHT_12)
    hello = parser.server_hello
    assert hello is not None
    assert hello.legacy_version == hello.version == 0x0303
    assert hello.version_name == "TLSv1.2"
    assert hello.random == golden.RANDOM
    assert hello.session_id == golden.SESSION_ID
    assert hello.cipher_suite == 0xC02F
    assert hello.cipher is not None and hello.cipher.name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert hello.compression == 0
    assert hello.extensions == (0xFF01, 0x000B, 0x0017, 0x0010)
    assert hello.alpn == "h2"
    assert hello.key_share_group is None
    assert hello.secure_renegotiation
    assert not hello.is_hello_retry_request and not hello.tls13
    assert hello.downgrade_sentinel is None
    assert parser.certificate_chain == (golden.CERT_LEAF, golden.CERT_CA)
    ske = parser.server_key_exchange
    assert ske is not None
    assert (ske.kind, ske.curve_type, ske.named_group, ske.group_name) == ("ecdhe", 3, 0x001D, "x25519")
    assert ske.signature_scheme == 0x0804
    assert ske.dh_prime_bits is None
    assert parser.negotiated_group == 0x001D
    assert parser.server_hello_done and parser.complete
    assert not parser.encrypted and parser.alert is None and parser.not_tls is None
    assert not parser.certificate_requested
    assert parser.handshake_types == [2, 11, 12, 14]


def test_tls12_dhe_flight_with_certificate_request() -> None:
    parser = parse_server_flight(golden.FLIGHT_DHE)
    assert parser.server_hello is not None and parser.server_hello.extensions == ()
    ske = parser.server_key_exchange
    assert ske is not None
    assert ske.kind == "dhe"
    assert ske.dh_prime_bits == 2048
    assert ske.dh_prime == golden.DH_PRIME_2048
    assert ske.named_group is None
    assert ske.signature_scheme == 0x0401
    request = parser.certificate_request
    assert request is not None and parser.certificate_requested
    assert request.certificate_types == (1, 64)
    assert request.signature_algorithms == (0x0403, 0x0804)
    assert request.authorities == (golden.DN,)
    assert parser.server_hello_done


def test_tls13_server_hello_then_encrypted() -> None:
    parser = parse_server_flight(golden.FLIGHT_13)
    hello = parser.server_hello
    assert hello is not None
    assert hello.legacy_version == 0x0303
    assert hello.version == 0x0304 and hello.tls13 and hello.version_name == "TLSv1.3"
    assert hello.cipher_suite == 0x1301
    assert hello.key_share_group == 0x001D and hello.key_share_group_name == "x25519"
    assert hello.extensions == (0x002B, 0x0033)
    assert not hello.is_hello_retry_request
    assert parser.encrypted and parser.complete
    assert parser.certificate_chain is None and parser.server_key_exchange is None
    assert parser.negotiated_group == 0x001D
    parser.feed(b"\x17\x03\x03\xff\xff" + bytes(100))  # more ciphertext: ignored, never buffered
    assert parser.encrypted


def test_hello_retry_request() -> None:
    parser = parse_server_flight(golden.FLIGHT_HRR)
    hello = parser.server_hello
    assert hello is not None
    assert hello.is_hello_retry_request and parser.hello_retry_request
    assert hello.random == golden.HRR_RANDOM
    assert hello.key_share_group == 0x0017
    assert hello.version == 0x0304
    assert parser.complete and not parser.encrypted


def test_alert_record() -> None:
    parser = parse_server_flight(golden.ALERT_HANDSHAKE_FAILURE)
    assert parser.alert is not None
    assert parser.alert.level == AlertLevel.FATAL
    assert parser.alert.description == AlertDescription.HANDSHAKE_FAILURE
    assert parser.alert.name == "handshake_failure"
    assert str(parser.alert) == "fatal alert handshake_failure (40)"
    assert parser.complete and parser.server_hello is None


def test_warning_alert_does_not_end_the_flight() -> None:
    warning = golden.record(21, b"\x01\x70")  # warning unrecognized_name
    parser = parse_server_flight(warning + golden.FLIGHT_12)
    assert parser.alert is not None and not parser.alert.fatal and parser.alert.name == "unrecognized_name"
    assert parser.server_hello_done


def test_change_cipher_spec_ends_plaintext() -> None:
    resumed = golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12)) + golden.record(20, b"\x01")
    parser = parse_server_flight(resumed + golden.record(22, b"\x99" * 40))  # encrypted Finished
    assert parser.encrypted and parser.server_hello is not None and parser.certificate_chain is None


def test_messages_spanning_and_sharing_records() -> None:
    messages = golden.FLIGHT_12[5:]
    # One handshake message per record, and the certificate split across three records.
    pieces = [messages[:4 + len(golden.SERVER_HELLO_12)]]
    rest = messages[len(pieces[0]):]
    pieces += [rest[:3], rest[3:10], rest[10:]]
    flight = b"".join(golden.record(22, piece) for piece in pieces)
    assert snapshot(parse_server_flight(flight)) == snapshot(parse_server_flight(golden.FLIGHT_12))


@pytest.mark.parametrize("name", list(FLIGHTS))
def test_every_split_point_gives_the_same_result(name: str) -> None:
    flight = FLIGHTS[name]
    expected = snapshot(parse_server_flight(flight))
    for cut in range(len(flight) + 1):
        parser = ServerFlightParser()
        parser.feed(flight[:cut])
        parser.feed(flight[cut:])
        assert snapshot(parser) == expected, f"split at {cut}"


@pytest.mark.parametrize("name", list(FLIGHTS))
def test_byte_at_a_time(name: str) -> None:
    flight = FLIGHTS[name]
    parser = ServerFlightParser()
    for i in range(len(flight)):
        parser.feed(flight[i:i + 1])
    assert snapshot(parser) == snapshot(parse_server_flight(flight))


def test_incomplete_flight_is_not_complete() -> None:
    hello = golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12))
    parser = parse_server_flight(hello + golden.record(22, golden.handshake(11, golden.CERTIFICATE_12))[:-3])
    assert parser.server_hello is not None and not parser.complete
    with pytest.raises(WireError, match="connection closed inside"):
        parser.feed_eof()


@pytest.mark.parametrize(
    ("data", "http", "words"),
    [
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", True, "HTTP"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", False, "SSH"),
        (b"220 mail.example ESMTP\r\n", False, "220"),
        (b"* OK IMAP4rev1 ready\r\n", False, "IMAP"),
        (b"\x00\x00\x00\x08\x04\xd2\x16\x2f", False, "0x00"),
        (b"\x80\x2e\x04\x00\x01\x00\x02", False, "SSLv2"),
        (b"\x16\x04\x00\x00\x10", False, "not a TLS record header"),
        (b"\x16\x03\x03\xff\xff", False, "exceeds"),
        (b"hello there", False, "plaintext"),
        (b"A" * 39 + b"\xff", False, "0x41"),
    ],
)
def test_not_tls(data: bytes, http: bool, words: str) -> None:
    parser = parse_server_flight(data)
    assert parser.not_tls is not None and words in parser.not_tls
    assert parser.looks_like_http is http
    assert parser.complete
    parser.feed(golden.FLIGHT_12)  # ignored from now on
    assert parser.server_hello is None


def test_http_is_recognised_even_one_byte_at_a_time() -> None:
    parser = ServerFlightParser()
    for byte in b"HTTP/1.0 200 OK\r\n":
        parser.feed(bytes([byte]))
    assert parser.looks_like_http


def test_short_non_tls_answer_is_classified_at_eof() -> None:
    parser = parse_server_flight(b"HT", eof=True)
    assert parser.not_tls is not None and not parser.looks_like_http


@pytest.mark.parametrize(
    ("flight", "reason"),
    [
        (golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12[:-3])), "truncated ServerHello"),
        (golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12 + b"\x00")), "trailing"),
        (golden.record(22, golden.handshake(11, golden.CERTIFICATE_12)), "before ServerHello"),
        (golden.FLIGHT_12 + golden.record(22, golden.handshake(11, golden.CERTIFICATE_12)), "after ServerHelloDone"),
        (golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12) * 2), "second ServerHello"),
        (golden.record(21, b"\x02"), "alert record of 1 bytes"),
        (golden.record(23, b"hello"), "application data"),
        (golden.record(22, b""), "empty handshake record"),
        (golden.record(22, b"\x02\x7f\xff\xff"), "claims"),
        (golden.FLIGHT_12[:5] + golden.FLIGHT_12[5:40] + b"\x16\x09\x09\x00\x01", None),
    ],
)
def test_malformed_input_is_a_wire_error(flight: bytes, reason: str | None) -> None:
    parser = ServerFlightParser()
    with pytest.raises(WireError) as caught:
        parser.feed(flight)
        parser.feed_eof()
    assert isinstance(caught.value, Error)
    assert "\n" not in str(caught.value)
    if reason is not None:
        assert reason in str(caught.value)


def test_bad_ske_and_certificate_bodies() -> None:
    hello = golden.handshake(2, golden.SERVER_HELLO_12)
    for body, reason in [
        (b"\x03\x00", "truncated ServerKeyExchange"),
        (b"\x03\x00\x1d\x00", "empty ECDH public key"),
    ]:
        with pytest.raises(WireError, match=reason):
            parse_server_flight(golden.record(22, hello + golden.handshake(12, body)))
    for body, reason in [
        (b"\x00\x00\x03\x00\x00\x00", "empty certificate entry"),
        (b"\x00\x00\x09\x00\x00\x05ab", "truncated Certificate"),
    ]:
        with pytest.raises(WireError, match=reason):
            parse_server_flight(golden.record(22, hello + golden.handshake(11, body)))


def test_buffering_is_bounded() -> None:
    parser = ServerFlightParser(max_buffered=4096)
    hello = golden.record(22, golden.handshake(2, golden.SERVER_HELLO_12))
    parser.feed(hello)
    # A Certificate message claiming 4000 bytes, delivered in 1000-byte records: over the limit on the 5th.
    parser.feed(golden.record(22, b"\x0b\x00\x0f\xa0" + bytes(996)))
    with pytest.raises(WireError, match="over 4096 bytes"):
        for _ in range(5):
            parser.feed(golden.record(22, bytes(1000)))
    reader_limit = ServerFlightParser(max_buffered=100)
    with pytest.raises(WireError, match="buffered"):
        reader_limit.feed(b"\x16\x03\x03\x40\x00" + bytes(200))


def test_the_limit_is_on_buffered_bytes_not_on_chunk_size() -> None:
    warnings = golden.record(21, b"\x01\x70") * 50_000  # 350 KB of complete records in one chunk
    parser = parse_server_flight(warnings + golden.FLIGHT_12)
    assert parser.server_hello_done
