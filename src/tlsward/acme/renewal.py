"""When to renew: ask ARI (RFC 9773) first, else renew once two thirds of the lifetime have passed.

Pure functions: time is a parameter, nothing here touches the network or the clock.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509

from tlsward.acme.errors import AcmeError

RENEW_AT_FRACTION = 2 / 3
"""Renew when this fraction of the lifetime has passed (one third remains): the mature-client default."""


@dataclass(frozen=True)
class RenewalDecision:
    """Whether a certificate is due for renewal at ``now``, the moment it becomes due, and why."""

    due: bool
    at: datetime
    reason: str


def _require_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (UTC), got {value.isoformat()}")


def _window_fraction(seed: str, start: datetime, end: datetime) -> float:
    """A uniform fraction in [0, 1) fixed per certificate and window, so repeated runs agree on one moment."""
    digest = hashlib.sha256(f"{seed}|{start.isoformat()}|{end.isoformat()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def renewal_due(
    not_before: datetime,
    not_after: datetime,
    now: datetime,
    ari_window: tuple[datetime, datetime] | None = None,
    *,
    cert_id: str = "",
) -> RenewalDecision:
    """Decide renewal for one certificate.

    With an ARI suggested window, the moment is a uniformly chosen point inside it (RFC 9773 §4.2), derived from
    ``cert_id`` (use :func:`ari_cert_id`) so every run for the same certificate picks the same point; a window
    that has already ended means renew now. Without ARI, the moment is ``not_before + 2/3 * lifetime``.
    An expired certificate is always due.
    """
    _require_aware(not_before=not_before, not_after=not_after, now=now)
    if not_after <= not_before:
        raise ValueError(f"not_after {not_after.isoformat()} is not after not_before {not_before.isoformat()}")
    if now >= not_after:
        return RenewalDecision(True, not_after, "expired")
    if ari_window is not None:
        start, end = ari_window
        _require_aware(ari_start=start, ari_end=end)
        if end < start:
            raise ValueError(f"ARI window ends ({end.isoformat()}) before it starts ({start.isoformat()})")
        if now >= end:
            return RenewalDecision(True, end, "ari-window-passed")
        at = start + (end - start) * _window_fraction(cert_id, start, end)
        return RenewalDecision(now >= at, at, "ari-window")
    lifetime = not_after - not_before
    at = not_before + timedelta(seconds=lifetime.total_seconds() * RENEW_AT_FRACTION)
    return RenewalDecision(now >= at, at, "two-thirds-lifetime")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def serial_der_bytes(serial: int) -> bytes:
    """The content octets of the DER INTEGER ``serial``: two's complement, 0x00 first when the top bit is set."""
    length = (serial.bit_length() + 8) // 8  # one spare bit for the sign
    return serial.to_bytes(length, "big", signed=True)


def ari_cert_id(cert: x509.Certificate) -> str:
    """The RFC 9773 certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial DER content octets)."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        aki = None
    if aki is None or aki.key_identifier is None:
        raise AcmeError("", "config", f"certificate serial {cert.serial_number:x} has no authority key identifier")
    return f"{_b64url(aki.key_identifier)}.{_b64url(serial_der_bytes(cert.serial_number))}"
