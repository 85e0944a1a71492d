"""Real ACME peers on loopback for the ACME client tests: Debian's pebble, and BIND's named as its DNS.

named serves ``example.test`` (every name there resolves to 127.0.0.1) and accepts TSIG-signed RFC 2136 updates,
so pebble resolves both the http-01 host and the dns-01 TXT records from it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ZONE = "example.test"
TSIG_NAME = "tlsward-acme-test"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_tcp(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s: {log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@dataclass(frozen=True)
class ServerTLS:
    ca: Path
    cert: Path
    key: Path


def make_server_tls(directory: Path) -> ServerTLS:
    """A throwaway CA and a localhost/127.0.0.1 certificate for pebble's HTTPS listeners (Debian ships none)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsward test ACME server CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    tls = ServerTLS(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return tls


@dataclass(frozen=True)
class Named:
    port: int
    tsig_secret: str
    directory: Path


@contextlib.contextmanager
def running_named(directory: Path) -> Iterator[Named]:
    """BIND 9 as an unprivileged primary for example.test on a free loopback port, updatable with a TSIG key."""
    port = free_port()
    secret = base64.b64encode(secrets.token_bytes(32)).decode()
    (directory / f"{ZONE}.zone").write_text(
        "$TTL 60\n"
        f"@ IN SOA ns.{ZONE}. admin.{ZONE}. ( 1 60 60 600 60 )\n"
        f"@ IN NS ns.{ZONE}.\n"
        "ns IN A 127.0.0.1\n"
        "@ IN A 127.0.0.1\n"
        "* IN A 127.0.0.1\n"
    )
    (directory / "named.conf").write_text(
        "options {\n"
        f'  directory "{directory}";\n'
        f'  pid-file "{directory}/named.pid";\n'
        f'  session-keyfile "{directory}/session.key";\n'
        f'  managed-keys-directory "{directory}";\n'
        f"  listen-on port {port} {{ 127.0.0.1; }};\n"
        "  listen-on-v6 { none; };\n"
        "  recursion no;\n"
        "  dnssec-validation no;\n"
        "  allow-query { any; };\n"
        "};\n"
        f'key "{TSIG_NAME}" {{ algorithm hmac-sha256; secret "{secret}"; }};\n'
        f'zone "{ZONE}" {{ type primary; file "{directory}/{ZONE}.zone"; allow-update {{ key "{TSIG_NAME}"; }}; }};\n'
    )
    log = directory / "named.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(["named", "-g", "-c", str(directory / "named.conf")], stdout=out, stderr=out)
    try:
        wait_tcp(port, proc, "named", log)
        yield Named(port=port, tsig_secret=secret, directory=directory)
    finally:
        stop(proc)


@dataclass(frozen=True)
class Pebble:
    directory_url: str
    management_url: str
    http_port: int
    ca_bundle: Path

    def cert_status(self, serial: int) -> str:
        response = requests.get(f"{self.management_url}/cert-status-by-serial/{serial:x}",
                                verify=str(self.ca_bundle), timeout=5)
        response.raise_for_status()
        return str(response.json()["Status"])


@contextlib.contextmanager
def running_pebble(directory: Path, tls: ServerTLS, dns_port: int, *, nonce_reject: int = 0) -> Iterator[Pebble]:
    """Debian's pebble on free loopback ports, resolving names through named, validating without sleeping."""
    listen, management, http_port, tls_port = free_port(), free_port(), free_port(), free_port()
    config = {
        "pebble": {
            "listenAddress": f"127.0.0.1:{listen}",
            "managementListenAddress": f"127.0.0.1:{management}",
            "certificate": str(tls.cert),
            "privateKey": str(tls.key),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": False,
        }
    }
    (directory / "pebble.json").write_text(json.dumps(config))
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
           "PEBBLE_AUTHZREUSE": "0"}
    log = directory / "pebble.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["pebble", "-config", str(directory / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}",
             "-strict=false"],
            stdout=out, stderr=out, env=env, cwd=directory,
        )
    try:
        wait_tcp(listen, proc, "pebble", log)
        wait_tcp(management, proc, "pebble management", log)
        yield Pebble(f"https://127.0.0.1:{listen}/dir", f"https://127.0.0.1:{management}", http_port, tls.ca)
    finally:
        stop(proc)
