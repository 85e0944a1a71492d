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
    """Days-left thresholds, each capped by a share of the certificate's lifetime, so a 6-day certificate
    is judged at its own pace: warn below a third of the lifetime left (when renewal should long have
    happened), high below a quarter, critical below a twelfth. A 90-day certificate with 40 days left is
    not news; one with 20 days left is a ticket; 5 days left is a page."""

    warn_days: float = 30
    high_days: float = 7
    critical_days: float = 3

    def severity(self, days_left: float, lifetime_days: float) -> Severity | None:
        if days_left <= min(self.critical_days, lifetime_days / 12):
            return Severity.CRITICAL
        if days_left <= min(self.high_days, lifetime_days / 4):
            return Severity.HIGH
        if days_left <= min(self.warn_days, lifetime_days / 3):
            return Severity.MEDIUM
        return None


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
