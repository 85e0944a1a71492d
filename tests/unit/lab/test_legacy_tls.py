"""The hand-written 3DES responder: golden bytes for its answers, and no crash on hostile input."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from tlsward.lab import legacy_tls
from tlsward.lab.check import client_hello_3des

DES3 = 0x000A


def _hello_body(record: bytes) -> bytes:
    return record[5 + 4:]


def test_parses_the_client_hello_it_will_be_sent() -> None:
    version, suites, extensions = legacy_tls.parse_client_hello(_hello_body(client_hello_3des("a.test")))
    assert version == 0x0303
    assert suites == [DES3]
    assert extensions == [0]  # server_name


def test_answers_with_server_hello_certificate_and_done() -> None:
    flight = legacy_tls.server_flight(_hello_body(client_hello_3des("a.test")), [DES3], [b"CERT1", b"CERT22"])
    content_type, version, length = struct.unpack(">BHH", flight[:5])
    assert (content_type, version, length) == (22, 0x0303, len(flight) - 5)
    body = flight[5:]
    # ServerHello: type 2, 3-byte length 38 = version(2) random(32) sid_len(1) suite(2) compression(1)
    assert body[:4] == b"\x02\x00\x00\x26"
    assert body[4:6] == b"\x03\x03"
    assert body[38:42] == b"\x00\x00\x0a\x00"  # empty session id, 3DES, null compression
    cert_msg = body[42:]
    assert cert_msg[:1] == b"\x0b"
    assert cert_msg[4:7] == (3 + 5 + 3 + 6).to_bytes(3, "big")
    assert cert_msg[7:] .startswith(b"\x00\x00\x05CERT1\x00\x00\x06CERT22")
    assert body.endswith(b"\x0e\x00\x00\x00")  # ServerHelloDone


def test_renegotiation_info_is_echoed_when_asked_for() -> None:
    record = bytearray(client_hello_3des("a.test"))
    body = bytes(record[9:])
    # Offer the SCSV as well as 3DES: the server must answer with an empty renegotiation_info.
    patched = body.replace(struct.pack(">HH", 2, DES3), struct.pack(">HHH", 4, DES3, 0x00FF), 1)
    flight = legacy_tls.server_flight(patched, [DES3], [b"C"])
    assert b"\xff\x01\x00\x01\x00" in flight


def test_alerts_when_no_suite_is_shared_or_version_too_old() -> None:
    body = _hello_body(client_hello_3des("a.test"))
    assert legacy_tls.server_flight(body, [0x002F], [b"C"]) == b"\x15\x03\x01\x00\x02\x02\x28"
    ssl3 = b"\x03\x00" + body[2:]
    assert legacy_tls.server_flight(ssl3, [DES3], [b"C"]) == b"\x15\x03\x01\x00\x02\x02\x46"


def test_truncated_hello_is_a_decode_error_alert() -> None:
    body = _hello_body(client_hello_3des("a.test"))
    for cut in (0, 1, 10, 34, 36, 38, 40):
        assert legacy_tls.server_flight(body[:cut], [DES3], [b"C"])[-1] in (
            legacy_tls.ALERT_DECODE_ERROR, legacy_tls.ALERT_HANDSHAKE_FAILURE, legacy_tls.ALERT_PROTOCOL_VERSION)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_hostile_hello_bodies_never_crash(data: bytes) -> None:
    flight = legacy_tls.server_flight(data, [DES3], [b"C"])
    assert flight[0] in (21, 22)
