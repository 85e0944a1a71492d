"""Findings for endpoints that could not be scanned: each failure kind is one plain-words finding."""

from __future__ import annotations

from tlsward.model.findings import Finding
from tlsward.model.scan import Failure, FailureKind
from tlsward.rules.base import Context, finding

K = FailureKind


def failure_finding(failure: Failure, ctx: Context) -> Finding:
    target = ctx.target
    where = f"[{target.host}]:{target.port}" if ":" in target.host else f"{target.host}:{target.port}"
    evidence = failure.message
    if failure.kind is K.DNS:
        return finding("conn.dns", evidence, fix=f"check the DNS record of {target.host} (`dig +short "
                       f"{target.host} A {target.host} AAAA`) or pass --connect IP", confirm=f"dig {target.host}")
    if failure.kind is K.REFUSED:
        return finding("conn.refused", evidence, fix=f"start the service or fix its listen directive for port "
                       f"{target.port} (`ss -ltnp 'sport = :{target.port}'` on the host)",
                       confirm=f"nc -vz {target.host} {target.port}")
    if failure.kind is K.RESET:
        return finding("conn.reset", evidence, fix="look at the TLS terminator's error log at the scan time; a reset "
                       "on ClientHello is usually a crashed worker, a firewall/IPS, or a non-TLS service",
                       confirm=ctx.s_client)
    if failure.kind in (K.CONNECT_TIMEOUT, K.HANDSHAKE_TIMEOUT, K.UNREACHABLE):
        return finding("conn.timeout", evidence, fix="check firewalls and security groups between here and the "
                       "host, and whether the process is alive but hung (it accepts TCP but never answers)",
                       confirm=f"timeout 10 {ctx.s_client}")
    if failure.kind is K.PLAINTEXT_HTTP:
        return finding("conn.plaintext_http", evidence, fix=f"enable TLS on the listener: nginx `listen {target.port} "
                       "ssl;` with ssl_certificate/ssl_certificate_key; or scan the right port",
                       confirm=f"curl -sI http://{where}/")
    if failure.kind is K.STARTTLS_NOT_OFFERED:
        return finding("starttls.not_offered", evidence, fix="enable STARTTLS (Postfix: `smtpd_tls_security_level = "
                       "may` with smtpd_tls_chain_files; Dovecot: `ssl = yes`; PostgreSQL: `ssl = on`)",
                       confirm=ctx.s_client)
    if failure.kind is K.NO_SHARED_CIPHER:
        return finding("conn.no_shared_cipher", evidence, fix="the server only accepts versions or suites modern "
                       "clients no longer offer; enable TLS 1.2+ with ECDHE-AEAD suites (Mozilla intermediate)",
                       confirm=ctx.s_client)
    if failure.kind is K.RATE_LIMITED:
        return finding("conn.rate_limited", evidence, fix="not a TLS problem: the server limits connections per "
                       "client (Postfix `smtpd_client_connection_count_limit`, anvil); scan again later, or pace "
                       "tlsward with --per-host 1 and --delay", confirm=ctx.s_client)
    if failure.kind is K.TLS_ALERT:
        return finding("conn.tls_alert", evidence, fix=_alert_fix(failure.alert), confirm=ctx.s_client)
    return finding("conn.protocol_error", evidence,
                   fix="the listener on this port is not a working TLS endpoint: check that the right service "
                       "answers here (`ss -ltnp`), that no middlebox truncates the handshake, and read the "
                       "server's error log at the scan time", confirm=f"{ctx.s_client} -msg")


def _alert_fix(alert: str | None) -> str:
    fixes = {
        "unrecognized_name": "the server has no certificate for this SNI name: add it to a server block or pass --sni",
        "protocol_version": "the server refuses every version offered: enable TLS 1.2 and 1.3",
        "handshake_failure": "no common cipher/group or a client certificate is required: compare with the server "
                             "config (ssl_ciphers, ssl_ecdh_curve, ssl_verify_client)",
        "certificate_required": "the server requires a client certificate: pass --cert and --key",
        "internal_error": "the server failed internally: read its error log",
    }
    return fixes.get(alert or "", "read the server's error log at the scan time for the alert's cause")
