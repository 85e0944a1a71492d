"""A passive parser for the plaintext start of a server's handshake flight, sans I/O.

Feed it whatever the server sent, in chunks of any size. It understands what a server says in the clear:
ServerHello (or HelloRetryRequest), and for TLS 1.2 and older the Certificate, CertificateStatus,
ServerKeyExchange, CertificateRequest and ServerHelloDone messages, plus alerts. Once the server switches to
encryption (a TLS 1.3 ServerHello, or a ChangeCipherSpec) it sets ``encrypted`` and ignores the rest.

Hostile or truncated input raises :class:`~tlsward.model.errors.WireError` with a one-line reason, never
IndexError or struct.error; buffering is bounded, and every loop consumes input, so it always terminates.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from tlsward.model.errors import WireError
from tlsward.model.registry.alerts import Alert
from tlsward.model.registry.cipher_suites import CipherSuite, cipher_by_code
from tlsward.model.registry.groups import group_name
from tlsward.model.registry.versions import TlsVersion, is_tls13, version_name
from tlsward.wire.records import (
    DEFAULT_MAX_BUFFERED,
    RECORD_HEADER_LENGTH,
    ContentType,
    NotTls,
    RecordReader,
    sniff_not_tls,
)


class HandshakeType(IntEnum):
    HELLO_REQUEST = 0
    CLIENT_HELLO = 1
    SERVER_HELLO = 2
    HELLO_VERIFY_REQUEST = 3
    NEW_SESSION_TICKET = 4
    END_OF_EARLY_DATA = 5
    ENCRYPTED_EXTENSIONS = 8
    CERTIFICATE = 11
    SERVER_KEY_EXCHANGE = 12
    CERTIFICATE_REQUEST = 13
    SERVER_HELLO_DONE = 14
    CERTIFICATE_VERIFY = 15
    CLIENT_KEY_EXCHANGE = 16
    FINISHED = 20
    CERTIFICATE_URL = 21
    CERTIFICATE_STATUS = 22
    SUPPLEMENTAL_DATA = 23
    KEY_UPDATE = 24
    MESSAGE_HASH = 254


class ExtensionType(IntEnum):
    """The extensions this parser reads; every other type is kept as a number in ``ServerHello.extensions``."""

    SERVER_NAME = 0
    STATUS_REQUEST = 5
    EC_POINT_FORMATS = 11
    ALPN = 16
    EXTENDED_MASTER_SECRET = 23
    SESSION_TICKET = 35
    SUPPORTED_VERSIONS = 43
    KEY_SHARE = 51
    RENEGOTIATION_INFO = 0xFF01


# RFC 8446 4.1.3: a HelloRetryRequest is a ServerHello with this random (SHA-256 of "HelloRetryRequest").
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")
# RFC 8446 4.1.3: a TLS 1.3 server negotiating an older version ends its random with one of these.
DOWNGRADE_TLS12 = b"DOWNGRD\x01"
DOWNGRADE_TLS11 = b"DOWNGRD\x00"


@dataclass(frozen=True, slots=True)
class ServerHello:
    legacy_version: int
    version: int                   # negotiated: supported_versions if present, else legacy_version
    random: bytes
    session_id: bytes
    cipher_suite: int
    compression: int
    extensions: tuple[int, ...]    # extension types, in the order the server sent them
    key_share_group: int | None    # TLS 1.3 key_share group (for a HelloRetryRequest: the group asked for)
    is_hello_retry_request: bool
    alpn: str | None               # the protocol the server selected, if it sent ALPN

    @property
    def cipher(self) -> CipherSuite | None:
        return cipher_by_code(self.cipher_suite)

    @property
    def version_name(self) -> str:
        return version_name(self.version)

    @property
    def tls13(self) -> bool:
        return is_tls13(self.version)

    @property
    def key_share_group_name(self) -> str | None:
        return None if self.key_share_group is None else group_name(self.key_share_group)

    @property
    def secure_renegotiation(self) -> bool:
        return ExtensionType.RENEGOTIATION_INFO in self.extensions

    @property
    def downgrade_sentinel(self) -> str | None:
        """``"TLSv1.2"`` or ``"TLSv1.1"`` when a TLS 1.3-capable server marked its random as a downgrade."""
        tail = self.random[-8:]
        return "TLSv1.2" if tail == DOWNGRADE_TLS12 else "TLSv1.1" if tail == DOWNGRADE_TLS11 else None


@dataclass(frozen=True, slots=True)
class ServerKeyExchange:
    """The parts of a TLS <= 1.2 ServerKeyExchange a scan cares about; ``raw`` is the whole message body."""

    kind: str                          # "ecdhe", "dhe", "rsa" (export RSA key), "psk", "srp", "unknown"
    raw: bytes
    curve_type: int | None = None      # ECParameters.curve_type: 3 named_curve, 1 explicit prime, 2 explicit char2
    named_group: int | None = None     # the ECDHE named curve
    dh_prime: bytes | None = None      # DHE p, big-endian, leading zeros stripped
    dh_prime_bits: int | None = None
    rsa_modulus_bits: int | None = None
    signature_scheme: int | None = None  # TLS 1.2 SignatureAndHashAlgorithm, when signed

    @property
    def group_name(self) -> str | None:
        return None if self.named_group is None else group_name(self.named_group)


@dataclass(frozen=True, slots=True)
class CertificateRequest:
    """A TLS <= 1.2 CertificateRequest (TLS 1.3's is encrypted, so it is never seen here)."""

    certificate_types: tuple[int, ...]
    signature_algorithms: tuple[int, ...]  # TLS 1.2 only; empty before
    authorities: tuple[bytes, ...]         # DER DistinguishedName entries, as sent


class _Reader:
    """Bounds-checked reads over one message body; every shortfall is a WireError naming the message."""

    def __init__(self, data: bytes, what: str) -> None:
        self._data = data
        self._pos = 0
        self._what = what

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def take(self, n: int) -> bytes:
        if n > self.remaining:
            raise WireError(f"truncated {self._what}: needs {n} bytes at offset {self._pos}, has {self.remaining}")
        chunk = self._data[self._pos:self._pos + n]
        self._pos += n
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        return self.take(self.uint(length_size))

    def rest(self) -> bytes:
        return self.take(self.remaining)

    def expect_end(self) -> None:
        if self.remaining:
            raise WireError(f"{self.remaining} unexpected trailing bytes in {self._what}")


def parse_server_hello(body: bytes) -> ServerHello:
    """Parse a ServerHello (or HelloRetryRequest) message body, i.e. without the 4-byte handshake header."""
    r = _Reader(body, "ServerHello")
    legacy_version = r.uint(2)
    random = r.take(32)
    session_id = r.vector(1)
    if len(session_id) > 32:
        raise WireError(f"ServerHello session id of {len(session_id)} bytes (at most 32)")
    cipher_suite = r.uint(2)
    compression = r.uint(1)
    is_hrr = random == HELLO_RETRY_REQUEST_RANDOM
    types: list[int] = []
    selected_version: int | None = None
    key_share_group: int | None = None
    alpn: str | None = None
    if r.remaining:  # SSL 3.0 and some TLS 1.0 servers send no extensions block at all
        block = _Reader(r.vector(2), "ServerHello extensions")
        r.expect_end()
        while block.remaining:
            ext_type = block.uint(2)
            data = block.vector(2)
            if ext_type in types:
                raise WireError(f"ServerHello repeats extension {ext_type}")
            types.append(ext_type)
            ext = _Reader(data, f"ServerHello extension {ext_type}")
            if ext_type == ExtensionType.SUPPORTED_VERSIONS:
                selected_version = ext.uint(2)
            elif ext_type == ExtensionType.KEY_SHARE:
                key_share_group = ext.uint(2)
                if not is_hrr and not ext.vector(2):
                    raise WireError("ServerHello key_share with an empty key")
            elif ext_type == ExtensionType.ALPN:
                names = _Reader(ext.vector(2), "ServerHello ALPN list")
                alpn = names.vector(1).decode("ascii", "backslashreplace")
                names.expect_end()
            else:
                continue
            ext.expect_end()
    return ServerHello(
        legacy_version=legacy_version,
        version=selected_version if selected_version is not None else legacy_version,
        random=random,
        session_id=session_id,
        cipher_suite=cipher_suite,
        compression=compression,
        extensions=tuple(types),
        key_share_group=key_share_group,
        is_hello_retry_request=is_hrr,
        alpn=alpn,
    )


def parse_certificate_chain(body: bytes) -> tuple[bytes, ...]:
    """A TLS <= 1.2 Certificate message body: the DER certificates, leaf first, as sent."""
    r = _Reader(body, "Certificate")
    entries = _Reader(r.vector(3), "Certificate list")
    r.expect_end()
    return _nonempty_vectors(entries, 3, "Certificate message with an empty certificate entry")


def _nonempty_vectors(reader: _Reader, length_bytes: int, empty_error: str) -> tuple[bytes, ...]:
    """Every length-prefixed item left in ``reader``; an empty item is malformed."""
    items: list[bytes] = []
    while reader.remaining:
        item = reader.vector(length_bytes)
        if not item:
            raise WireError(empty_error)
        items.append(item)
    return tuple(items)


def _strip_zeros(value: bytes) -> bytes:
    return value.lstrip(b"\x00")


def parse_server_key_exchange(body: bytes, suite: CipherSuite | None, version: int) -> ServerKeyExchange:
    """A TLS <= 1.2 ServerKeyExchange body; its layout depends on the negotiated suite's key exchange."""
    if suite is None:
        return ServerKeyExchange(kind="unknown", raw=body)
    kx = suite.key_exchange
    r = _Reader(body, f"ServerKeyExchange ({kx})")
    signed = suite.authentication not in ("anon", "PSK")
    if kx in ("PSK", "RSA_PSK"):
        r.vector(2)  # psk_identity_hint
        r.expect_end()
        return ServerKeyExchange(kind="psk", raw=body)
    if kx in ("DHE_PSK", "ECDHE_PSK"):
        r.vector(2)  # psk_identity_hint, then the (EC)DH parameters, unsigned
        signed = False
    fields: dict[str, int | bytes | None] = {}
    if kx in ("ECDHE", "ECDHE_PSK"):
        kind = "ecdhe"
        curve_type = r.uint(1)
        fields["curve_type"] = curve_type
        if curve_type == 3:
            fields["named_group"] = r.uint(2)
        elif curve_type == 1:  # explicit prime curve: p, a, b, base point, order, cofactor
            for _ in range(6):
                r.vector(1)
        else:  # explicit char2 curves (or worse): nothing a scan needs lies beyond
            return ServerKeyExchange(kind=kind, raw=body, curve_type=curve_type)
        if not r.vector(1):
            raise WireError("ServerKeyExchange with an empty ECDH public key")
    elif kx in ("DHE", "DHE_PSK"):
        kind = "dhe"
        prime = _strip_zeros(r.vector(2))
        if not prime:
            raise WireError("ServerKeyExchange with a zero DH prime")
        r.vector(2)  # g
        r.vector(2)  # Ys
        fields["dh_prime"] = prime
        fields["dh_prime_bits"] = int.from_bytes(prime, "big").bit_length()
    elif kx == "RSA":  # export RSA: a temporary RSA key signed by the certificate's key
        kind = "rsa"
        modulus = _strip_zeros(r.vector(2))
        r.vector(2)  # exponent
        fields["rsa_modulus_bits"] = int.from_bytes(modulus, "big").bit_length()
    elif kx == "SRP":
        kind = "srp"
        r.vector(2)  # N
        r.vector(2)  # g
        r.vector(1)  # s
        r.vector(2)  # B
    else:
        return ServerKeyExchange(kind="unknown", raw=body)
    if signed and version >= TlsVersion.TLSv1_2 and r.remaining >= 2:
        fields["signature_scheme"] = r.uint(2)
    return ServerKeyExchange(
        kind=kind,
        raw=body,
        curve_type=_opt_int(fields.get("curve_type")),
        named_group=_opt_int(fields.get("named_group")),
        dh_prime=_opt_bytes(fields.get("dh_prime")),
        dh_prime_bits=_opt_int(fields.get("dh_prime_bits")),
        rsa_modulus_bits=_opt_int(fields.get("rsa_modulus_bits")),
        signature_scheme=_opt_int(fields.get("signature_scheme")),
    )


def _opt_int(value: int | bytes | None) -> int | None:
    return value if isinstance(value, int) else None


def _opt_bytes(value: int | bytes | None) -> bytes | None:
    return value if isinstance(value, bytes) else None


def parse_certificate_request(body: bytes, version: int) -> CertificateRequest:
    """A TLS <= 1.2 CertificateRequest body (signature algorithms only from TLS 1.2 on)."""
    r = _Reader(body, "CertificateRequest")
    certificate_types = tuple(r.vector(1))
    algorithms: list[int] = []
    if version >= TlsVersion.TLSv1_2:
        algs = _Reader(r.vector(2), "CertificateRequest signature algorithms")
        if algs.remaining % 2:
            raise WireError("CertificateRequest signature algorithm list of odd length")
        while algs.remaining:
            algorithms.append(algs.uint(2))
    names = _Reader(r.vector(2), "CertificateRequest authorities")
    r.expect_end()
    authorities = _nonempty_vectors(names, 2, "CertificateRequest with an empty distinguished name")
    return CertificateRequest(certificate_types, tuple(algorithms), authorities)


def parse_certificate_status(body: bytes) -> bytes | None:
    """A CertificateStatus body: the DER OCSP response for status_type ocsp(1), None for other types."""
    r = _Reader(body, "CertificateStatus")
    if r.uint(1) != 1:
        return None
    response = r.vector(3)
    r.expect_end()
    return response


def _handshake_name(msg_type: int) -> str:
    if msg_type in HandshakeType._value2member_map_:
        return HandshakeType(msg_type).name
    return f"handshake message {msg_type}"


class ServerFlightParser:
    """Incremental parser for what a server sends in the clear after a ClientHello.

    ``feed()`` bytes as they arrive; read the attributes at any time. ``complete`` turns True once nothing
    more can be learned (ServerHelloDone, encryption, a HelloRetryRequest, a fatal alert, or not TLS);
    bytes fed after that are ignored. ``feed_eof()`` tells it the peer closed the connection.
    """

    def __init__(self, max_buffered: int = DEFAULT_MAX_BUFFERED) -> None:
        self._max_buffered = max_buffered
        self._prefix = bytearray()  # the first bytes, until they are known to be TLS
        self._is_tls = False
        self._records = RecordReader(max_buffered)
        self._handshake = bytearray()
        self._stopped = False
        self.server_hello: ServerHello | None = None
        self.certificate_chain: tuple[bytes, ...] | None = None
        self.ocsp_response: bytes | None = None
        self.server_key_exchange: ServerKeyExchange | None = None
        self.certificate_request: CertificateRequest | None = None
        self.server_hello_done = False
        self.alert: Alert | None = None
        self.encrypted = False
        self.not_tls: str | None = None
        self.looks_like_http = False
        self.handshake_types: list[int] = []  # every handshake message type seen, in order

    # -- what the caller asks -------------------------------------------------------------------------------
    @property
    def complete(self) -> bool:
        return self._stopped or self.server_hello_done

    @property
    def hello_retry_request(self) -> bool:
        return self.server_hello is not None and self.server_hello.is_hello_retry_request

    @property
    def certificate_requested(self) -> bool:
        return self.certificate_request is not None

    @property
    def negotiated_group(self) -> int | None:
        """The key-exchange group: TLS 1.3 key_share, or the TLS 1.2 ECDHE named curve."""
        if self.server_hello is not None and self.server_hello.key_share_group is not None:
            return self.server_hello.key_share_group
        if self.server_key_exchange is not None:
            return self.server_key_exchange.named_group
        return None

    # -- input ----------------------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self._stopped or not data:
            return
        if not self._is_tls:
            self._prefix += data
            verdict = sniff_not_tls(bytes(self._prefix[:64]))
            if verdict is not None:
                self._give_up(verdict)
                return
            if len(self._prefix) < RECORD_HEADER_LENGTH:
                return
            self._is_tls = True
            data = bytes(self._prefix)
            self._prefix.clear()
        self._consume(data)

    def feed_eof(self) -> None:
        """The server closed the connection. Raises WireError if it did so in the middle of a message."""
        if self._stopped:
            return
        if not self._is_tls:
            if self._prefix:
                verdict = sniff_not_tls(bytes(self._prefix), final=True)
                if verdict is None:
                    raise WireError(f"connection closed after {len(self._prefix)} bytes, inside a record header")
                self._give_up(verdict)
            return
        self._records.check_eof()
        if self._handshake:
            raise WireError(f"connection closed inside a handshake message ({len(self._handshake)} bytes of it)")

    # -- internals ------------------------------------------------------------------------------------------
    def _give_up(self, verdict: NotTls) -> None:
        self.not_tls = verdict.description
        self.looks_like_http = verdict.http
        self._stop()

    def _stop(self) -> None:
        self._stopped = True
        self._prefix.clear()
        self._handshake.clear()
        self._records = RecordReader(0)

    def _consume(self, data: bytes) -> None:
        for record in self._records.feed(data):
            if self._stopped:
                return
            if record.content_type == ContentType.CHANGE_CIPHER_SPEC:
                self.encrypted = True
                self._stop()
            elif record.content_type == ContentType.ALERT:
                self._on_alert(record.fragment)
            elif record.content_type == ContentType.HANDSHAKE:
                self._on_handshake(record.fragment)
            elif record.content_type == ContentType.APPLICATION_DATA:
                raise WireError("application data record before the handshake was encrypted")
            # heartbeat records carry nothing for us

    def _on_alert(self, fragment: bytes) -> None:
        if len(fragment) < 2 or len(fragment) % 2:
            raise WireError(f"alert record of {len(fragment)} bytes (alerts are 2 bytes)")
        self.alert = Alert(fragment[0], fragment[1])
        if self.alert.fatal or self.alert.description == 0:  # fatal, or close_notify
            self._stop()

    def _on_handshake(self, fragment: bytes) -> None:
        if not fragment:
            raise WireError("empty handshake record")
        if len(self._handshake) + len(fragment) > self._max_buffered:
            raise WireError(f"handshake messages over {self._max_buffered} bytes")
        self._handshake += fragment
        while len(self._handshake) >= 4 and not self._stopped:
            msg_type = self._handshake[0]
            length = int.from_bytes(self._handshake[1:4], "big")
            if length > self._max_buffered:
                raise WireError(f"{_handshake_name(msg_type)} claims {length} bytes (limit {self._max_buffered})")
            if len(self._handshake) < 4 + length:
                return
            body = bytes(self._handshake[4:4 + length])
            del self._handshake[:4 + length]
            self._on_message(msg_type, body)

    def _on_message(self, msg_type: int, body: bytes) -> None:
        self.handshake_types.append(msg_type)
        if msg_type == HandshakeType.HELLO_REQUEST:
            return
        hello = self.server_hello
        if msg_type == HandshakeType.SERVER_HELLO:
            if hello is not None:
                raise WireError("second ServerHello in one flight")
            hello = self.server_hello = parse_server_hello(body)
            if hello.is_hello_retry_request:
                self._stop()  # the server now waits for a second ClientHello
            elif hello.tls13:
                self.encrypted = True  # everything after a TLS 1.3 ServerHello is encrypted
                self._stop()
            return
        if hello is None:
            raise WireError(f"{_handshake_name(msg_type)} before ServerHello")
        if self.server_hello_done:
            raise WireError(f"{_handshake_name(msg_type)} after ServerHelloDone")
        if msg_type == HandshakeType.CERTIFICATE:
            if self.certificate_chain is not None:
                raise WireError("second Certificate message in one flight")
            self.certificate_chain = parse_certificate_chain(body)
        elif msg_type == HandshakeType.CERTIFICATE_STATUS:
            self.ocsp_response = parse_certificate_status(body)
        elif msg_type == HandshakeType.SERVER_KEY_EXCHANGE:
            if self.server_key_exchange is not None:
                raise WireError("second ServerKeyExchange in one flight")
            self.server_key_exchange = parse_server_key_exchange(body, hello.cipher, hello.version)
        elif msg_type == HandshakeType.CERTIFICATE_REQUEST:
            self.certificate_request = parse_certificate_request(body, hello.version)
        elif msg_type == HandshakeType.SERVER_HELLO_DONE:
            if body:
                raise WireError(f"ServerHelloDone with a {len(body)}-byte body")
            self.server_hello_done = True


def parse_server_flight(data: bytes, *, eof: bool = False) -> ServerFlightParser:
    """Parse a whole captured flight at once (``eof``: the capture ended because the server closed)."""
    parser = ServerFlightParser()
    parser.feed(data)
    if eof:
        parser.feed_eof()
    return parser


__all__ = [
    "HELLO_RETRY_REQUEST_RANDOM",
    "CertificateRequest",
    "ExtensionType",
    "HandshakeType",
    "ServerFlightParser",
    "ServerHello",
    "ServerKeyExchange",
    "parse_certificate_chain",
    "parse_certificate_request",
    "parse_certificate_status",
    "parse_server_flight",
    "parse_server_hello",
    "parse_server_key_exchange",
]
