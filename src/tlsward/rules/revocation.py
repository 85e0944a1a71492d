"""Revocation rules: a revoked leaf, and (when revocation is required) a status nobody could establish."""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence

from tlsward.model.certificate import CertificateFacts, RevocationStatus
from tlsward.model.findings import Finding
from tlsward.rules.base import Context, finding

REPLACE_KEY = ("deploy a newly issued certificate (the revoked key must be replaced: generate a new key and CSR), "
               "then reload")


def revocation_rules(status: RevocationStatus | None, chain: Sequence[CertificateFacts], ctx: Context, *,
                     required: bool = False) -> Iterator[Finding]:
    """``cert.revoked`` whenever the leaf is revoked; ``cert.revocation_unknown`` when ``required`` (hard mode)
    and no source established the status."""
    if status is None:
        return
    if status.status == "revoked":
        yield finding("cert.revoked", status.reason, fix=REPLACE_KEY, confirm=_confirm_revoked(status, chain, ctx))
    elif required and not status.established:
        urls = status.checked_urls
        yield finding("cert.revocation_unknown", status.reason or f"revocation status {status.status}",
                      fix="make the CA's OCSP responder and CRL reachable from where clients run (allow egress "
                          "to " + (", ".join(urls) if urls else "the URLs in the certificate") + "), or staple "
                          "OCSP responses: nginx `ssl_stapling on; ssl_stapling_verify on;`, HAProxy "
                          "`ocsp-update on`",
                      confirm=f"curl -sS -o /dev/null -w '%{{http_code}}\\n' {shlex.quote(urls[0])}" if urls
                      else f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -ext authorityInfoAccess,"
                           "crlDistributionPoints")


def _confirm_revoked(status: RevocationStatus, chain: Sequence[CertificateFacts], ctx: Context) -> str:
    if status.source == "crl" and status.url and chain:
        serial = chain[0].serial.upper()
        serial = "0" + serial if len(serial) % 2 else serial      # openssl prints whole bytes
        return (f"openssl crl -inform DER -in <(curl -s {shlex.quote(status.url)}) -noout -text "
                f"| grep -A1 'Serial Number: {serial}'")
    if status.source == "ocsp" and status.url:
        return (f"{ctx.show_certs()} 2>/dev/null | awk '/BEGIN CERT/{{n++}} {{print > (\"cert\" n \".pem\")}}'; "
                f"openssl ocsp -issuer cert2.pem -cert cert1.pem -url {shlex.quote(status.url)} -noverify")
    return f"{ctx.s_client.replace(' </dev/null', ' -status </dev/null')} 2>/dev/null | grep -i 'Cert Status'"
