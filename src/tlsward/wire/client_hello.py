"""Build ClientHellos byte by byte, for any version, suite list, group list and extension set.

This is how tlsward asks questions the local OpenSSL cannot: offering 3DES, RC4, export or NULL suites,
SSL 3.0, or exactly one suite at a time. Sans I/O: it returns bytes; the caller sends them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from tlsward.model.registry.cipher_suites import CIPHER_SUITES

SSL3, TLS10, TLS11, TLS12, TLS13 = 0x0300, 0x0301, 0x0302, 0x0303, 0x0304
X25519, SECP256R1, SECP384R1, SECP521R1, X448 = 0x001D, 0x0017, 0x0018, 0x0019, 0x001E
FFDHE2048, FFDHE3072 = 0x0100, 0x0101
TLS_FALLBACK_SCSV = 0x5600          # RFC 7507: "this is a downgraded retry"
NULL_COMPRESSION, DEFLATE = 0, 1    # RFC 3749 compression methods

# Signature schemes a broad client offers (RFC 8446 4.2.3 and the TLS 1.2 hash/sign pairs).
DEFAULT_SIGNATURE_ALGORITHMS = (
    0x0403, 0x0503, 0x0603, 0x0807, 0x0808, 0x0804, 0x0805, 0x0806, 0x0809, 0x080A, 0x080B,
    0x0401, 0x0501, 0x0601, 0x0303, 0x0301, 0x0302, 0x0402, 0x0502, 0x0602, 0x0203, 0x0201, 0x0202,
)
DEFAULT_GROUPS = (X25519, SECP256R1, SECP384R1, SECP521R1, X448, FFDHE2048, FFDHE3072)

# Valid public values for key_share: any 32 bytes are an X25519 public key, and the curve generator
# points are valid NIST points. We never finish a TLS 1.3 handshake, so no private key is needed.
_P256_G = bytes.fromhex(
    "046B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
    "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")
_P384_G = bytes.fromhex(
    "04AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7"
    "3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F")


def key_share_value(group: int) -> bytes | None:
    """A public value the server will accept for ``group``, or None when we cannot offer one."""
    if group in (X25519,):
        return os.urandom(32)
    if group == X448:
        return os.urandom(56)
    if group == SECP256R1:
        return _P256_G
    if group == SECP384R1:
        return _P384_G
    return None


def legacy_suites() -> tuple[int, ...]:
    """Every assigned pre-TLS-1.3 suite (signalling values excluded), strongest registry order kept."""
    return tuple(s.code for s in CIPHER_SUITES if not s.tls13 and not s.signaling)


def tls13_suites() -> tuple[int, ...]:
    return tuple(s.code for s in CIPHER_SUITES if s.tls13)


def _vec(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _ext(ext_type: int, body: bytes) -> bytes:
    return struct.pack(">H", ext_type) + _vec(body, 2)


def _u16s(values: Sequence[int]) -> bytes:
    return b"".join(struct.pack(">H", v) for v in values)


@dataclass(frozen=True, slots=True)
class ClientHelloSpec:
    """What to offer. ``max_version`` is the highest version; TLS 1.3 adds supported_versions.

    ``max_version=SSL3`` builds an SSL 3.0 hello: only server_name (and ``extra_extensions``) go out, since
    SSL 3.0 has no extensions and old servers choke on TLS ones. The record version is never above the hello's
    version. ``fallback_scsv`` appends TLS_FALLBACK_SCSV (RFC 7507) to the suites; ``compression_methods`` is
    sent as given (``(DEFLATE, NULL_COMPRESSION)`` asks for CRIME-prone compression). ``random`` and
    ``session_id`` default to fresh random bytes; fix them only for reproducible (golden) bytes.
    """

    cipher_suites: Sequence[int]
    max_version: int = TLS12
    min_version: int = TLS10
    server_name: str | None = None
    groups: Sequence[int] = DEFAULT_GROUPS
    signature_algorithms: Sequence[int] = DEFAULT_SIGNATURE_ALGORITHMS
    key_share_groups: Sequence[int] = (X25519,)
    alpn: Sequence[str] = ()
    status_request: bool = True
    renegotiation_info: bool = True
    session_ticket: bool = True
    extended_master_secret: bool = True
    extra_extensions: Sequence[tuple[int, bytes]] = field(default_factory=tuple)
    record_version: int = TLS10
    fallback_scsv: bool = False
    compression_methods: Sequence[int] = (NULL_COMPRESSION,)
    random: bytes | None = None
    session_id: bytes | None = None


def build_client_hello(spec: ClientHelloSpec) -> bytes:
    """One TLS record carrying the ClientHello described by ``spec``."""
    legacy_version = min(spec.max_version, TLS12)
    random = os.urandom(32) if spec.random is None else spec.random
    session_id = os.urandom(32) if spec.session_id is None else spec.session_id
    if len(random) != 32 or len(session_id) > 32:
        raise ValueError("ClientHello random must be 32 bytes and its session id at most 32")
    if not spec.compression_methods or len(spec.compression_methods) > 255:
        raise ValueError("ClientHello needs 1 to 255 compression methods")
    suites = [*spec.cipher_suites, TLS_FALLBACK_SCSV] if spec.fallback_scsv else list(spec.cipher_suites)
    extensions = b""
    if spec.server_name:
        name = spec.server_name.encode("idna")
        extensions += _ext(0x0000, _vec(b"\x00" + _vec(name, 2), 2))
    if spec.max_version < TLS10:
        extensions += b"".join(_ext(ext_type, body) for ext_type, body in spec.extra_extensions)
    else:
        extensions += _tls_extensions(spec)
    body = (struct.pack(">H", legacy_version) + random + _vec(session_id, 1)
            + _vec(_u16s(suites), 2) + _vec(bytes(spec.compression_methods), 1))
    if extensions or spec.max_version >= TLS10:  # an SSL 3.0 hello with nothing to extend has no block at all
        body += _vec(extensions, 2)
    handshake = b"\x01" + _vec(body, 3)
    if len(handshake) > 0x4000:
        raise ValueError("ClientHello larger than one record")
    return struct.pack(">BH", 22, min(spec.record_version, legacy_version)) + _vec(handshake, 2)


def _tls_extensions(spec: ClientHelloSpec) -> bytes:
    """Every extension after server_name, for TLS 1.0 and later hellos."""
    extensions = b""
    if spec.status_request:
        extensions += _ext(0x0005, b"\x01\x00\x00\x00\x00")
    if spec.groups:
        extensions += _ext(0x000A, _vec(_u16s(spec.groups), 2))
        extensions += _ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
    if spec.signature_algorithms and spec.max_version >= TLS12:
        extensions += _ext(0x000D, _vec(_u16s(spec.signature_algorithms), 2))
    if spec.alpn:
        protocols = b"".join(_vec(p.encode(), 1) for p in spec.alpn)
        extensions += _ext(0x0010, _vec(protocols, 2))
    if spec.extended_master_secret:
        extensions += _ext(0x0017, b"")
    if spec.session_ticket:
        extensions += _ext(0x0023, b"")
    if spec.max_version >= TLS13:
        versions = [v for v in (TLS13, TLS12, TLS11, TLS10) if spec.min_version <= v <= spec.max_version]
        extensions += _ext(0x002B, _vec(_u16s(versions), 1))
        shares = b""
        for group in spec.key_share_groups:
            value = key_share_value(group)
            if value is not None:
                shares += struct.pack(">H", group) + _vec(value, 2)
        extensions += _ext(0x0033, _vec(shares, 2))
        extensions += _ext(0x002D, b"\x01\x01")  # psk_key_exchange_modes: psk_dhe_ke
    if spec.renegotiation_info:
        extensions += _ext(0xFF01, b"\x00")
    for ext_type, body in spec.extra_extensions:
        extensions += _ext(ext_type, body)
    return extensions
