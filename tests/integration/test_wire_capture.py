"""The wire parser against what a real server sends: ``openssl s_server`` on loopback, a hand-built ClientHello.

Every server listens on 127.0.0.1 only, on a port the kernel picks (``-accept 127.0.0.1:0``), is told to take
one connection (``-naccept 1``) and is always terminated; every socket operation has a timeout.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tlsward.wire import ServerFlightParser

pytestmark = pytest.mark.integration

TIMEOUT = 5.0
ECDHE_ECDSA_AES128_GCM = 0xC02B
RSA_RC4_SHA = 0x0005
TLS_AES_128_GCM_SHA256 = 0x1301
X25519, SECP256R1 = 0x001D, 0x0017
SIGNATURE_ALGORITHMS = (0x0403, 0x0804, 0x0401, 0x0503)  # ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256, ...


# --- a ClientHello, byte by byte (RFC 5246 7.4.1.2, RFC 8446 4.1.2) -----------------------------------------
def _u16(value: int) -> bytes:
    return value.to_bytes(2, "big")


def _vec16(body: bytes) -> bytes:
    return _u16(len(body)) + body


def _extension(ext_type: int, body: bytes) -> bytes:
    return _u16(ext_type) + _vec16(body)


def client_hello(
    suites: Sequence[int],
    groups: Sequence[int],
    *,
    tls13: bool = False,
    key_share_group: int | None = None,
) -> bytes:
    extensions = (
        _extension(0x000A, _vec16(b"".join(_u16(g) for g in groups)))             # supported_groups
        + _extension(0x000B, b"\x01\x00")                                           # ec_point_formats
        + _extension(0x000D, _vec16(b"".join(_u16(a) for a in SIGNATURE_ALGORITHMS)))  # signature_algorithms
    )
    if tls13:
        extensions += _extension(0x002B, b"\x02\x03\x04")                            # supported_versions
    if key_share_group is not None:
        share = _u16(key_share_group) + _vec16(os.urandom(32))                      # a random X25519 key
        extensions += _extension(0x0033, _vec16(share))                             # key_share
    body = (
        b"\x03\x03" + os.urandom(32)
        + b"\x20" + os.urandom(32)                                                  # session id (middlebox compat)
        + _vec16(b"".join(_u16(s) for s in suites))
        + b"\x01\x00"                                                               # compression: null
        + _vec16(extensions)
    )
    message = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + _u16(len(message)) + message


# --- openssl s_server ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ec_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("wire-capture")
    key, cert = directory / "k.pem", directory / "c.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-subj", "/CN=t", "-keyout", str(key), "-out", str(cert), "-days", "1"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=30, check=True,
    )
    return key, cert


@contextmanager
def s_server(key: Path, cert: Path, *extra: str) -> Iterator[int]:
    """Start ``openssl s_server`` on 127.0.0.1 with a kernel-chosen port; yield the port; always stop it."""
    proc = subprocess.Popen(
        ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1", "-key", str(key), "-cert", str(cert),
         *extra],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        bufsize=0,  # unbuffered: a second line already read into a buffer would hide from select()
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + TIMEOUT
        output = b""
        port = None
        while port is None:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"s_server did not start: {output!r}"
            ready, _, _ = select.select([proc.stdout], [], [], remaining)
            if not ready:
                continue
            line = proc.stdout.readline()
            assert line, f"s_server exited: {output!r}"
            output += line
            if line.startswith(b"ACCEPT "):
                port = int(line.rsplit(b":", 1)[1])
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=TIMEOUT)


def capture(port: int, hello: bytes) -> ServerFlightParser:
    """Send ``hello`` and feed the answer to the parser until it has seen the whole plaintext flight."""
    parser = ServerFlightParser()
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(hello)
        while not parser.complete:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "server flight did not complete in time"
            sock.settimeout(remaining)
            data = sock.recv(65536)
            if not data:
                parser.feed_eof()
                break
            parser.feed(data)
    return parser


# --- the tests ----------------------------------------------------------------------------------------------
def test_tls12_ecdhe_ecdsa_flight(ec_cert: tuple[Path, Path]) -> None:
    key, cert = ec_cert
    with s_server(key, cert) as port:
        # secp256r1 too: in TLS 1.2 the client's groups also bound the curve of an ECDSA certificate (RFC 8422).
        parser = capture(port, client_hello([ECDHE_ECDSA_AES128_GCM], [X25519, SECP256R1]))
    hello = parser.server_hello
    assert hello is not None
    assert hello.cipher_suite == ECDHE_ECDSA_AES128_GCM
    assert hello.version == 0x0303 and not hello.tls13
    assert parser.certificate_chain == (ssl.PEM_cert_to_DER_cert(cert.read_text()),)
    ske = parser.server_key_exchange
    assert ske is not None
    assert ske.kind == "ecdhe" and ske.named_group == X25519 and ske.group_name == "x25519"
    assert ske.signature_scheme == 0x0403
    assert parser.server_hello_done and not parser.encrypted and parser.alert is None


def test_tls13_server_hello_then_encryption(ec_cert: tuple[Path, Path]) -> None:
    key, cert = ec_cert
    with s_server(key, cert) as port:
        parser = capture(port, client_hello([TLS_AES_128_GCM_SHA256], [X25519], tls13=True, key_share_group=X25519))
    hello = parser.server_hello
    assert hello is not None
    assert hello.version == 0x0304 and hello.legacy_version == 0x0303
    assert hello.cipher_suite == TLS_AES_128_GCM_SHA256
    assert hello.key_share_group == X25519 and not hello.is_hello_retry_request
    assert parser.encrypted and parser.certificate_chain is None


def test_hello_retry_request_for_another_group(ec_cert: tuple[Path, Path]) -> None:
    key, cert = ec_cert
    with s_server(key, cert, "-groups", "P-256") as port:
        hello = client_hello([TLS_AES_128_GCM_SHA256], [X25519, SECP256R1], tls13=True, key_share_group=X25519)
        parser = capture(port, hello)
    assert parser.server_hello is not None
    assert parser.hello_retry_request
    assert parser.server_hello.key_share_group == SECP256R1
    assert not parser.encrypted


def test_no_shared_cipher_is_a_handshake_failure_alert(ec_cert: tuple[Path, Path]) -> None:
    key, cert = ec_cert
    with s_server(key, cert) as port:
        parser = capture(port, client_hello([RSA_RC4_SHA], [X25519]))
    assert parser.server_hello is None
    assert parser.alert is not None and parser.alert.fatal
    assert parser.alert.name == "handshake_failure"
