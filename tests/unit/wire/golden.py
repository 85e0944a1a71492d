"""Hand-assembled server flights, byte by byte, with the layout spelled out.

Each message body is literal hex; ``record()`` and ``handshake()`` only add the 5-byte record header and the
4-byte handshake header, whose layout is itself checked once against a literal in test_server_messages.py.
"""

from __future__ import annotations

HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
RANDOM = bytes(range(0x40, 0x60))           # 32 bytes
SESSION_ID = bytes(range(0xA0, 0xC0))       # 32 bytes
X25519_KEY = bytes(range(0x01, 0x21))       # a 32-byte X25519 public key (any bytes do, for parsing)
CERT_LEAF = bytes.fromhex("3003020101")     # tiny stand-ins for DER certificates: SEQUENCE { INTEGER 1 }
CERT_CA = bytes.fromhex("3003020102")


def record(content_type: int, body: bytes, version: int = 0x0303) -> bytes:
    return bytes([content_type]) + version.to_bytes(2, "big") + len(body).to_bytes(2, "big") + body


def handshake(msg_type: int, body: bytes) -> bytes:
    return bytes([msg_type]) + len(body).to_bytes(3, "big") + body


# --- TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256 (0xC02F), x25519 ----------------------------------------------------
SERVER_HELLO_12 = (
    bytes.fromhex("0303")                    # legacy_version TLS 1.2
    + RANDOM
    + bytes.fromhex("20") + SESSION_ID       # session id, 32 bytes
    + bytes.fromhex("C02F")                  # cipher suite
    + bytes.fromhex("00")                    # compression: null
    + bytes.fromhex(
        "0018"                               # extensions: 24 bytes
        "FF01" "0001" "00"                   # renegotiation_info, empty
        "000B" "0002" "0100"                 # ec_point_formats: uncompressed
        "0017" "0000"                        # extended_master_secret
        "0010" "0005" "0003" "02" "6832"     # ALPN: "h2"
    )
)
CERTIFICATE_12 = (
    bytes.fromhex("000010")                  # certificate_list: 16 bytes
    + bytes.fromhex("000005") + CERT_LEAF
    + bytes.fromhex("000005") + CERT_CA
)
SERVER_KEY_EXCHANGE_ECDHE = (
    bytes.fromhex("03" "001D")               # curve_type named_curve, x25519
    + bytes.fromhex("20") + X25519_KEY       # public point, 32 bytes
    + bytes.fromhex("0804")                  # signature scheme rsa_pss_rsae_sha256
    + bytes.fromhex("0004" "DEADBEEF")       # signature (stand-in)
)
FLIGHT_12 = record(
    22,
    handshake(2, SERVER_HELLO_12)
    + handshake(11, CERTIFICATE_12)
    + handshake(12, SERVER_KEY_EXCHANGE_ECDHE)
    + handshake(14, b""),
)

# --- TLS 1.2, DHE-RSA-AES128-GCM-SHA256 (0x009E), 2048-bit prime, client certificate requested ----------------
SERVER_HELLO_DHE = bytes.fromhex("0303") + RANDOM + bytes.fromhex("00" "009E" "00")  # no session id, no extensions
DH_PRIME_2048 = bytes.fromhex("FF") * 256
SERVER_KEY_EXCHANGE_DHE = (
    bytes.fromhex("0100") + DH_PRIME_2048    # dh_p, 256 bytes
    + bytes.fromhex("0001" "02")             # dh_g = 2
    + bytes.fromhex("0002" "1234")           # dh_Ys
    + bytes.fromhex("0401" "0002" "ABCD")    # rsa_pkcs1_sha256 signature
)
DN = bytes.fromhex("300C310A300806035504030C0161")  # SEQUENCE { SET { SEQUENCE { CN, UTF8String "a" } } }
CERTIFICATE_REQUEST_12 = (
    bytes.fromhex("02" "0140")               # certificate_types: rsa_sign, ecdsa_sign
    + bytes.fromhex("0004" "0403" "0804")    # signature algorithms
    + bytes.fromhex("0010" "000E") + DN      # authorities: one DN of 14 bytes
)
FLIGHT_DHE = record(
    22,
    handshake(2, SERVER_HELLO_DHE)
    + handshake(11, CERTIFICATE_12)
    + handshake(12, SERVER_KEY_EXCHANGE_DHE)
    + handshake(13, CERTIFICATE_REQUEST_12)
    + handshake(14, b""),
)

# --- TLS 1.3 ------------------------------------------------------------------------------------------------
SERVER_HELLO_13 = (
    bytes.fromhex("0303") + RANDOM + bytes.fromhex("20") + SESSION_ID
    + bytes.fromhex("1301" "00")             # TLS_AES_128_GCM_SHA256, null compression
    + bytes.fromhex(
        "002E"                               # extensions: 46 bytes
        "002B" "0002" "0304"                 # supported_versions: TLS 1.3
        "0033" "0024" "001D" "0020"          # key_share: x25519, 32-byte key
    )
    + X25519_KEY
)
FLIGHT_13 = (
    record(22, handshake(2, SERVER_HELLO_13))
    + record(20, b"\x01")                    # middlebox-compatibility ChangeCipherSpec
    + record(23, bytes(range(200)))          # EncryptedExtensions... as application data
)

HELLO_RETRY_REQUEST = (
    bytes.fromhex("0303") + HRR_RANDOM + bytes.fromhex("20") + SESSION_ID
    + bytes.fromhex("1302" "00")
    + bytes.fromhex(
        "000C"
        "002B" "0002" "0304"                 # supported_versions: TLS 1.3
        "0033" "0002" "0017"                 # key_share: please send secp256r1
    )
)
FLIGHT_HRR = record(22, handshake(2, HELLO_RETRY_REQUEST)) + record(20, b"\x01")

# --- alerts -------------------------------------------------------------------------------------------------
ALERT_HANDSHAKE_FAILURE = bytes.fromhex("15" "0303" "0002" "02" "28")
