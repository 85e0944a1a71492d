"""Leaf certificate rules: validity, expiry (absolute and lifetime-relative), key and signature strength."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding, Severity
from tlsward.rules.base import Context, finding

RENEW = ("renew it now: `certbot renew --cert-name NAME` (or `kubectl cert-manager renew NAME` with "
         "cert-manager), then reload the server: `systemctl reload nginx` / `haproxy -sf`")


@dataclass(frozen=True, slots=True)
class ExpiryPolicy:
    """Days-left thresholds, 30/14/7/3 by default (ticket, ticket, page, page): the last is critical,
    the one before it high, the others medium.

    Each threshold is capped by a share of the certificate's own lifetime (a third for the first, a
    twelfth for the last, a quarter between), so short-lived certificates are judged at their own pace:
    a 6-day certificate with 1.5 days left is flagged, a 47-day one is not flagged for half its life, and
    a 90-day certificate with 40 days left is not news."""

    thresholds: tuple[float, ...] = (30, 14, 7, 3)

    def __post_init__(self) -> None:
        if not self.thresholds or any(t <= 0 for t in self.thresholds) or \
                list(self.thresholds) != sorted(self.thresholds, reverse=True):
            raise ValueError("expiry thresholds must be positive days in decreasing order, e.g. 30,14,7,3")

    @classmethod
    def parse(cls, text: str) -> ExpiryPolicy:
        try:
            return cls(tuple(float(part) for part in text.split(",")))
        except ValueError as exc:
            raise ValueError(f"{text!r}: {exc}") from None

    def _levels(self) -> list[tuple[float, float, Severity]]:
        count = len(self.thresholds)
        levels = []
        for index, days in enumerate(self.thresholds):
            share = 1 / 3 if index == 0 else 1 / 12 if index == count - 1 else 1 / 4
            severity = (Severity.CRITICAL if index == count - 1 and count > 1
                        else Severity.HIGH if index == count - 2 and count > 2 else Severity.MEDIUM)
            levels.append((days, share, severity))
        return levels

    def severity(self, days_left: float, lifetime_days: float) -> Severity | None:
        worst: Severity | None = None
        for days, share, severity in self._levels():
            if days_left <= min(days, lifetime_days * share):
                worst = severity if worst is None else max(worst, severity)
        return worst


def _days(value: float) -> str:
    return f"{value:.1f} days" if value < 3 else f"{value:.0f} days"


def leaf_rules(chain: Sequence[CertificateFacts], ctx: Context, now: dt.datetime,
               expiry: ExpiryPolicy) -> Iterator[Finding]:
    if not chain:
        return
    leaf = chain[0]
    left = leaf.days_left(now)
    lifetime = leaf.lifetime.total_seconds() / 86400
    if now > leaf.not_after:
        yield finding("cert.expired",
                      f"{leaf.subject} expired {_days(-left)} ago ({leaf.not_after:%Y-%m-%d %H:%M} UTC)",
                      fix=RENEW, confirm=f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -enddate")
    elif now < leaf.not_before:
        yield finding("cert.not_yet_valid",
                      f"{leaf.subject} is valid only from {leaf.not_before:%Y-%m-%d %H:%M} UTC "
                      f"({_days((leaf.not_before - now).total_seconds() / 86400)} from now)",
                      fix="check the clock of the issuing machine and of this server (`timedatectl`), then "
                          "reissue the certificate with a correct notBefore",
                      confirm=f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -startdate")
    elif (severity := expiry.severity(left, lifetime)) is not None:
        yield finding("cert.expiring",
                      f"{leaf.subject} expires in {_days(left)} ({leaf.not_after:%Y-%m-%d} UTC; "
                      f"lifetime {lifetime:.0f} days)",
                      severity=severity, fix=RENEW + "; then find out why automatic renewal did not run "
                      "(`certbot renew --dry-run`, cert-manager Certificate events)",
                      confirm=f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -enddate")
    if leaf.self_signed:
        yield finding("cert.self_signed", f"{leaf.subject} is signed by its own key; no client can trust it",
                      fix="replace it with a certificate from a public CA (`certbot certonly`) or your internal "
                          "CA; in nginx: `ssl_certificate /etc/ssl/example/fullchain.pem;`",
                      confirm=ctx.show_certs())
    if weak := _weak_key(leaf):
        yield finding("cert.weak_key", f"{leaf.subject}: {weak}",
                      fix="issue a new certificate with an ECDSA P-256 or RSA-2048+ key: "
                          "`openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...`",
                      confirm=f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -text | grep 'Public-Key'")
    if leaf.signature_hash in ("sha1", "md5", "md2", "md4"):
        yield finding("cert.weak_signature",
                      f"{leaf.subject} is signed with {leaf.signature_algorithm}; clients reject it",
                      fix="reissue the certificate (any current CA signs with SHA-256 or better)",
                      confirm=f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -text | grep 'Signature Algorithm'")


def _weak_key(cert: CertificateFacts) -> str | None:
    if cert.key_type in ("RSA", "DSA") and cert.key_bits < 2048:
        return f"{cert.key_type} key of {cert.key_bits} bits (minimum 2048)"
    if cert.key_type == "EC" and cert.key_bits < 224:
        return f"EC key of {cert.key_bits} bits (minimum 224)"
    return None
