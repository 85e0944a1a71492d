"""ACME Renewal Information (RFC 9773): the certificate identifier and the suggested renewal window.

The identifier is ``base64url(AKI keyIdentifier) "." base64url(serial DER INTEGER content)``. The window starts
when two thirds of the lifetime has passed and lasts a twelfth of it (a 90-day certificate: days 60 to 67.5),
which matches what mature clients do without ARI; a revoked certificate gets a window that is already open."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

from tlsward.acme.server.jws import b64d, b64e
from tlsward.acme.server.problems import malformed

RETRY_AFTER_S = 6 * 3600


@dataclass(frozen=True)
class CertId:
    aki: str       # lower-case hex
    serial: str    # lower-case hex, no leading zeros

    def __str__(self) -> str:
        return f"{b64e(bytes.fromhex(self.aki))}.{b64e(serial_bytes(int(self.serial, 16)))}"


def serial_bytes(serial: int) -> bytes:
    """The DER INTEGER content octets of a positive serial (a leading zero when the high bit is set)."""
    return serial.to_bytes(serial.bit_length() // 8 + 1, "big")


def parse_cert_id(value: str) -> CertId:
    parts = value.split(".")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise malformed("a certificate identifier is base64url(AKI).base64url(serial)")
    aki, serial = b64d(parts[0], "AKI keyIdentifier"), b64d(parts[1], "serial")
    if not serial or serial[0] & 0x80:
        raise malformed("the serial must be a positive DER INTEGER")
    return CertId(aki.hex(), format(int.from_bytes(serial, "big"), "x"))


def cert_id_of(certificate: x509.Certificate) -> CertId:
    try:
        aki = certificate.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        aki = None
    return CertId((aki or b"").hex(), format(certificate.serial_number, "x"))


def suggested_window(not_before: dt.datetime, not_after: dt.datetime, *, revoked: bool,
                     now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if revoked:
        return now - dt.timedelta(hours=1), now
    lifetime = not_after - not_before
    start = not_before + lifetime * 2 / 3
    return start, start + lifetime / 12


def renewal_info(not_before: dt.datetime, not_after: dt.datetime, *, revoked: bool,
                 now: dt.datetime) -> dict[str, object]:
    start, end = suggested_window(not_before, not_after, revoked=revoked, now=now)
    doc: dict[str, object] = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}
    if revoked:
        doc["explanationURL"] = "https://datatracker.ietf.org/doc/html/rfc9773"
    return doc


def rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
