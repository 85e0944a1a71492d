"""All rules over one result, in a stable order (most severe first)."""

from __future__ import annotations

import datetime as dt

from tlsward.model.findings import Finding
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.rules.base import Context, finding
from tlsward.rules.certificate import ExpiryPolicy, leaf_rules
from tlsward.rules.chain import chain_rules
from tlsward.rules.connection import failure_finding
from tlsward.rules.deep import deep_rules
from tlsward.rules.http import http_rules
from tlsward.rules.protocol import protocol_rules
from tlsward.rules.revocation import revocation_rules

PRESENTED: dict[bool | None, str] = {True: "; the certificate given with --cert was accepted",
             False: "; the certificate given with --cert was REFUSED (check it chains to an acceptable CA)"}


def evaluate(result: ScanResult, now: dt.datetime, expiry: ExpiryPolicy | None = None, *,
             revocation_required: bool = False) -> tuple[Finding, ...]:
    """``revocation_required`` (``--revocation hard``): a status nobody could establish is a finding."""
    ctx = Context(result.target, result.address)
    found: list[Finding] = []
    if result.failure is not None:
        found.append(failure_finding(result.failure, ctx))
    if result.deep is not None:   # the enumeration is authoritative about versions and suites
        found.extend(deep_rules(result.deep, ctx))
    elif result.session is not None:
        found.extend(protocol_rules(result.session, ctx))
    if result.session is not None:
        auth = result.session.client_auth
        if auth.requested:
            cas = "; ".join(auth.acceptable_cas) or "no CA names sent"
            found.append(finding("mtls.required" if auth.required else "mtls.optional",
                                 f"the server {'requires' if auth.required else 'asks for'} a client certificate "
                                 f"(acceptable CAs: {cas})" + PRESENTED.get(auth.presented_accepted, ""),
                                 fix="present one with --cert CERT.pem --key KEY.pem" if auth.required else
                                 "nothing to fix unless clients are meant to authenticate",
                                 confirm=ctx.s_client.replace(" </dev/null", " -cert client.pem -key client.key "
                                                              "</dev/null")))
    found.extend(leaf_rules(result.chain, ctx, now, expiry or ExpiryPolicy()))
    if result.analysis is not None:
        found.extend(chain_rules(result.chain, result.analysis, ctx, now,
                                 leaf_revoked=result.revocation is not None and result.revocation.status == "revoked"))
    found.extend(revocation_rules(result.revocation, result.chain, ctx, required=revocation_required))
    if result.http is not None:
        found.extend(http_rules(result.http, ctx, over_tls=result.target.speaks_tls))
    found.sort(key=lambda f: (-f.severity, f.id))
    return tuple(found)


def backends_differ_finding(target: Target, described: str) -> Finding:
    """One name, several addresses, different certificates: some clients get the old one."""
    ctx = Context(target, None)
    return finding("name.backends_differ", described,
                   fix="deploy the same certificate to every backend (a renewal that reached only some nodes); "
                       "list them with `dig +short NAME A NAME AAAA` and reload each",
                   confirm=f"for ip in $(dig +short {target.host}); do {ctx.s_client.replace(target.host, '$ip', 1)}"
                           " 2>/dev/null | openssl x509 -noout -fingerprint -sha256; done")
