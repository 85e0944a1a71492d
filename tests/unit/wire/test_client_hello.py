"""Golden bytes for the ClientHello builder: every byte spelled out, with the layout in the comments.

``random`` and ``session_id`` are fixed so the output is reproducible; everything else is what the deep scan
sends: an SSL 3.0 hello, DEFLATE compression, TLS_FALLBACK_SCSV, a TLS 1.3-only hello with no key share.
"""

from __future__ import annotations

import pytest

from tlsward.wire.client_hello import (
    DEFLATE,
    NULL_COMPRESSION,
    SECP256R1,
    SSL3,
    TLS11,
    TLS12,
    TLS13,
    ClientHelloSpec,
    build_client_hello,
)
from tlsward.wire.server_messages import parse_server_hello

RANDOM = bytes(range(32))
RANDOM_HEX = RANDOM.hex()
# Everything a TLS extension can be switched off with, so a golden hello carries only what the test is about.
BARE = {"groups": (), "signature_algorithms": (), "status_request": False, "renegotiation_info": False,
        "session_ticket": False, "extended_master_secret": False, "random": RANDOM, "session_id": b""}


def golden(hex_text: str) -> bytes:
    return bytes.fromhex("".join(hex_text.split()))


def test_compression_methods_are_sent_as_given() -> None:
    hello = build_client_hello(ClientHelloSpec(
        [0x002F], max_version=TLS12, compression_methods=(DEFLATE, NULL_COMPRESSION), **BARE))  # type: ignore[arg-type]
    assert hello == golden(
        "16 0301 0030"             # record: handshake, TLS 1.0 record version, 48 bytes
        "01 00002C"                # ClientHello, 44 bytes
        "0303" + RANDOM_HEX +      # legacy_version TLS 1.2, random
        "00"                       # session id: empty
        "0002 002F"                # cipher suites: TLS_RSA_WITH_AES_128_CBC_SHA
        "02 01 00"                 # compression methods: DEFLATE, null
        "0000"                     # extensions: none
    )


def test_default_compression_is_null_only() -> None:
    hello = build_client_hello(ClientHelloSpec([0x002F], **BARE))  # type: ignore[arg-type]
    assert hello.endswith(golden("0002 002F" "01 00" "0000"))


def test_ssl3_hello_carries_only_server_name() -> None:
    hello = build_client_hello(ClientHelloSpec(
        [0x000A, 0x002F], max_version=SSL3, min_version=SSL3, server_name="a.test", random=RANDOM, session_id=b"",
        record_version=SSL3))
    assert hello == golden(
        "16 0300 0040"             # record: handshake, SSL 3.0 record version, 64 bytes
        "01 00003C"                # ClientHello, 60 bytes
        "0300" + RANDOM_HEX +      # client_version SSL 3.0, random
        "00"                       # session id: empty
        "0004 000A 002F"           # cipher suites: 3DES-EDE-CBC-SHA, AES128-SHA
        "01 00"                    # compression: null
        "000F"                     # extensions: 15 bytes
        "0000 000B 0009 00 0006 612E74657374"  # server_name: host_name "a.test"
    )


def test_ssl3_hello_never_carries_tls_extensions_and_its_record_version_follows() -> None:
    # Defaults would add status_request, supported_groups, EMS, tickets, renegotiation_info: none of it for SSL 3.0,
    # and with nothing to extend there is no extensions block at all. The record version is never above 3.0.
    hello = build_client_hello(ClientHelloSpec([0x000A], max_version=SSL3, random=RANDOM, session_id=b""))
    assert hello == golden(
        "16 0300 002D"             # record: SSL 3.0 (capped from the TLS 1.0 default), 45 bytes
        "01 000029"                # ClientHello, 41 bytes
        "0300" + RANDOM_HEX +
        "00"
        "0002 000A"
        "01 00"                    # compression: null; then nothing
    )


def test_fallback_scsv_is_the_last_suite() -> None:
    hello = build_client_hello(ClientHelloSpec([0xC02F], max_version=TLS11, fallback_scsv=True, **BARE))  # type: ignore[arg-type]
    assert hello == golden(
        "16 0301 0031"
        "01 00002D"
        "0302" + RANDOM_HEX +      # legacy_version TLS 1.1: the downgraded retry
        "00"
        "0004 C02F 5600"           # ECDHE-RSA-AES128-GCM-SHA256, then TLS_FALLBACK_SCSV (RFC 7507)
        "01 00"
        "0000"
    )


def test_tls13_only_hello_with_an_empty_key_share() -> None:
    hello = build_client_hello(ClientHelloSpec(
        [0x1301], max_version=TLS13, min_version=TLS13, **{**BARE, "groups": (SECP256R1,)},  # type: ignore[arg-type]
        key_share_groups=()))
    assert hello == golden(
        "16 0301 0050"
        "01 00004C"
        "0303" + RANDOM_HEX +      # legacy_version TLS 1.2, as RFC 8446 wants
        "00"
        "0002 1301"                # TLS_AES_128_GCM_SHA256
        "01 00"
        "0021"                     # extensions: 33 bytes
        "000A 0004 0002 0017"      # supported_groups: secp256r1
        "000B 0002 0100"           # ec_point_formats: uncompressed
        "002B 0003 02 0304"        # supported_versions: TLS 1.3 only
        "0033 0002 0000"           # key_share: no shares (the server must HelloRetryRequest for a group)
        "002D 0002 0101"           # psk_key_exchange_modes: psk_dhe_ke
    )


def test_default_tls12_hello_is_unchanged() -> None:
    """The extension set and order every existing caller gets (the legacy probe, the lab checks)."""
    hello = build_client_hello(ClientHelloSpec([0xC02F], server_name="a.test", random=RANDOM,
                                               session_id=bytes(range(0xA0, 0xC0))))
    assert hello == golden(
        "16 0301 00C2"
        "01 0000BE"
        "0303" + RANDOM_HEX +
        "20" + bytes(range(0xA0, 0xC0)).hex() +      # a 32-byte session id
        "0002 C02F"
        "01 00"
        "0073"                                      # extensions: 115 bytes
        "0000 000B 0009 00 0006 612E74657374"        # server_name
        "0005 0005 01 0000 0000"                     # status_request: OCSP, no responder ids, no extensions
        "000A 0010 000E 001D 0017 0018 0019 001E 0100 0101"  # supported_groups
        "000B 0002 0100"                             # ec_point_formats
        "000D 0030 002E"                             # signature_algorithms: 23 schemes
        "0403 0503 0603 0807 0808 0804 0805 0806 0809 080A 080B 0401 0501 0601 0303 0301 0302 0402 0502 0602"
        "0203 0201 0202"
        "0017 0000"                                  # extended_master_secret
        "0023 0000"                                  # session_ticket
        "FF01 0001 00"                               # renegotiation_info: empty
    )


@pytest.mark.parametrize("bad", [
    {"compression_methods": ()},
    {"random": b"short"},
    {"session_id": bytes(33)},
])
def test_malformed_specs_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_client_hello(ClientHelloSpec([0x002F], **bad))  # type: ignore[arg-type]


def test_the_compression_a_server_picks_is_parsed() -> None:
    """The other half of the CRIME question: a ServerHello choosing DEFLATE reads as compression 1."""
    body = golden("0303") + RANDOM + golden("00 002F 01")
    assert parse_server_hello(body).compression == DEFLATE
