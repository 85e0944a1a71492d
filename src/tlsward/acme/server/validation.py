"""Challenge validation (RFC 8555 section 8, RFC 8737 tls-alpn-01, RFC 8738 IP identifiers).

Ports, the DNS resolver and the address to connect to are settings, not constants: tests and labs run on
loopback with unprivileged ports (``validation_address`` is like pebble's ``-dnsserver``: connect there for every
name instead of resolving it; real deployments leave it unset). Every attempt is bounded in time and size."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass

import dns.asyncresolver
import dns.exception
import dns.resolver
from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from tlsward.acme.server.jws import b64e
from tlsward.acme.server.problems import AcmeProblem
from tlsward.model.acme import AcmeIdentifier

ACME_IDENTIFIER_OID = ObjectIdentifier("1.3.6.1.5.5.7.1.31")
ALPN = "acme-tls/1"


@dataclass(frozen=True)
class ValidationSettings:
    http_port: int = 80
    tls_port: int = 443
    dns_resolver: tuple[str, int] | None = None     # None: the system resolver
    validation_address: str | None = None           # connect here instead of resolving the name (tests, labs)
    timeout_s: float = 10.0
    max_body: int = 8192
    always_valid: bool = False                      # skip validation entirely (benchmarks of the CA path only)


def key_authorization(token: str, thumbprint: str) -> str:
    return f"{token}.{thumbprint}"


def _host(identifier: AcmeIdentifier, settings: ValidationSettings) -> str:
    host = settings.validation_address or identifier.value
    return f"[{host}]" if ":" in host else host


class Validator:
    """Validates challenges; one call per challenge, any number at once."""

    def __init__(self, settings: ValidationSettings) -> None:
        self.settings = settings

    async def close(self) -> None:
        """Nothing is kept open between validations (kept for callers that close what they open)."""

    async def validate(self, kind: str, identifier: AcmeIdentifier, token: str, thumbprint: str) -> None:
        """Return when the challenge is met; raise :class:`AcmeProblem` (the challenge's error) otherwise."""
        if self.settings.always_valid:
            return
        keyauth = key_authorization(token, thumbprint)
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                if kind == "http-01":
                    await self._http01(identifier, token, keyauth)
                elif kind == "dns-01":
                    await self._dns01(identifier, keyauth)
                elif kind == "tls-alpn-01":
                    await self._tls_alpn01(identifier, keyauth)
                else:
                    raise AcmeProblem("malformed", f"unknown challenge type {kind}")
        except TimeoutError:
            raise AcmeProblem("connection", f"{kind} for {identifier.value}: timed out after "
                              f"{self.settings.timeout_s:g} s") from None

    async def _http01(self, identifier: AcmeIdentifier, token: str, keyauth: str) -> None:
        """One GET on a fresh connection (``Connection: close``): every validation is to another host in real
        life, and a kept-alive connection meets Nagle's algorithm on servers that write head and body apart
        (Python's http.server, which certbot's standalone mode uses): 40 ms of delayed ACK per validation."""
        port = self.settings.http_port
        host = self.settings.validation_address or identifier.value
        authority = identifier.value if identifier.type == "dns" else _host(identifier, ValidationSettings())
        path = f"/.well-known/acme-challenge/{token}"
        where = f"http-01 for {identifier.value}: http://{authority}:{port}{path}"
        request = (f"GET {path} HTTP/1.1\r\nHost: {authority if port == 80 else f'{authority}:{port}'}\r\n"
                   "User-Agent: tlsward-acme-validator\r\nAccept: */*\r\nConnection: close\r\n\r\n").encode()
        limit = self.settings.max_body + 16384   # the body plus room for the status line and headers
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise AcmeProblem("connection", f"{where}: {exc.strerror or exc}") from None
        try:
            writer.write(request)
            data = b""
            while chunk := await reader.read(65536):
                data += chunk
                if len(data) > limit:
                    raise AcmeProblem("unauthorized", f"{where}: response larger than {self.settings.max_body} "
                                      "bytes")
        except OSError as exc:
            raise AcmeProblem("connection", f"{where}: {exc.strerror or exc}") from None
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        status, body = _parse_http_response(data, where)
        if status != 200:
            raise AcmeProblem("unauthorized", f"{where}: answered {status}")
        if body.strip() != keyauth.encode():
            raise AcmeProblem("incorrectResponse", f"{where}: the key authorization does not match")

    async def _dns01(self, identifier: AcmeIdentifier, keyauth: str) -> None:
        if identifier.type != "dns":
            raise AcmeProblem("malformed", "dns-01 is for DNS identifiers only")
        name = "_acme-challenge." + identifier.value.removeprefix("*.")
        expected = b64e(hashlib.sha256(keyauth.encode()).digest())
        resolver = dns.asyncresolver.Resolver(configure=self.settings.dns_resolver is None)
        if self.settings.dns_resolver is not None:
            resolver.nameservers = [self.settings.dns_resolver[0]]
            resolver.port = self.settings.dns_resolver[1]
        resolver.lifetime = self.settings.timeout_s
        try:
            answer = await resolver.resolve(name, "TXT")
        except dns.resolver.NXDOMAIN:
            raise AcmeProblem("dns", f"dns-01: {name} does not exist") from None
        except dns.resolver.NoAnswer:
            raise AcmeProblem("unauthorized", f"dns-01: {name} has no TXT record") from None
        except dns.exception.DNSException as exc:
            raise AcmeProblem("dns", f"dns-01: {name}: {type(exc).__name__}: {str(exc)[:200]}") from None
        found = {b"".join(record.strings).decode("ascii", "replace") for record in answer}
        if expected not in found:
            raise AcmeProblem("incorrectResponse", f"dns-01: no TXT record at {name} matches")

    async def _tls_alpn01(self, identifier: AcmeIdentifier, keyauth: str) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols([ALPN])
        sni = (identifier.value if identifier.type == "dns"
               else ipaddress.ip_address(identifier.value).reverse_pointer)
        host = self.settings.validation_address or identifier.value
        try:
            _reader, writer = await asyncio.open_connection(host, self.settings.tls_port, ssl=context,
                                                           server_hostname=sni)
        except (OSError, ssl.SSLError) as exc:
            raise AcmeProblem("tls", f"tls-alpn-01 for {identifier.value}: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from None
        try:
            tls = writer.get_extra_info("ssl_object")
            if tls is None or tls.selected_alpn_protocol() != ALPN:
                raise AcmeProblem("unauthorized", f"tls-alpn-01 for {identifier.value}: {ALPN} not negotiated")
            der = tls.getpeercert(binary_form=True)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError):
                await writer.wait_closed()
        _check_alpn_certificate(der, identifier, keyauth)


def _check_alpn_certificate(der: bytes | None, identifier: AcmeIdentifier, keyauth: str) -> None:
    where = f"tls-alpn-01 for {identifier.value}"
    if not der:
        raise AcmeProblem("unauthorized", f"{where}: no certificate")
    try:
        certificate = x509.load_der_x509_certificate(der)
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        extension = certificate.extensions.get_extension_for_oid(ACME_IDENTIFIER_OID)
    except (ValueError, x509.ExtensionNotFound) as exc:
        raise AcmeProblem("unauthorized", f"{where}: {str(exc)[:200]}") from None
    if identifier.type == "dns":
        ok = list(names) == [x509.DNSName(identifier.value)]
    else:
        ok = list(names) == [x509.IPAddress(ipaddress.ip_address(identifier.value))]
    if not ok:
        raise AcmeProblem("unauthorized", f"{where}: the certificate must name exactly {identifier.value}")
    if not extension.critical:
        raise AcmeProblem("unauthorized", f"{where}: the acmeIdentifier extension must be critical")
    raw = extension.value.value if isinstance(extension.value, x509.UnrecognizedExtension) else b""
    if raw != b"\x04\x20" + hashlib.sha256(keyauth.encode()).digest():
        raise AcmeProblem("incorrectResponse", f"{where}: acmeIdentifier does not match the key authorization")


def _parse_http_response(data: bytes, where: str) -> tuple[int, bytes]:
    """Status and body of a complete HTTP/1.x response (Content-Length, chunked, or up to the close)."""
    head, separator, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise AcmeProblem("connection", f"{where}: not an HTTP/1.x response")
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        body = b""
        while True:
            size_line, crlf, rest = rest.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip() or b"x", 16)
            except ValueError:
                raise AcmeProblem("connection", f"{where}: malformed chunked body") from None
            if not crlf or size == 0:
                break
            body, rest = body + rest[:size], rest[size + 2:]
        return int(parts[1]), body
    length = headers.get(b"content-length")
    if length is not None and length.isdigit():
        return int(parts[1]), rest[:int(length)]
    return int(parts[1]), rest
