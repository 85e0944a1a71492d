"""Rules over the deep scan's enumeration: what the server *accepts*, not just what one handshake chose.

Only definite answers produce findings: an inconclusive verdict (None) is reported in the notes, never as
"supported" or "not supported".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from tlsward.model.deep import AcceptedSuite, DeepScan
from tlsward.model.findings import Finding
from tlsward.rules.base import Context, finding
from tlsward.rules.protocol import NGINX_PROTOCOLS

CIPHERS_FIX = ("use Mozilla's intermediate list: nginx `ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-"
               "GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
               "ECDHE-RSA-CHACHA20-POLY1305;` (HAProxy: `ssl-default-bind-ciphers`; Apache: `SSLCipherSuite`)")
LISTED = 6


def _names(suites: Sequence[AcceptedSuite]) -> str:
    unique = list(dict.fromkeys(s.name for s in suites))
    more = f" and {len(unique) - LISTED} more" if len(unique) > LISTED else ""
    return ", ".join(unique[:LISTED]) + more


def deep_rules(deep: DeepScan, ctx: Context) -> Iterator[Finding]:
    host = ctx.address or ctx.target.host
    nmap = f"nmap --script ssl-enum-ciphers -p {ctx.target.port} {host}"
    accepted = {v.version: v.accepted for v in deep.versions}
    for version, fid in (("SSLv3", "protocol.ssl3"), ("TLSv1.0", "protocol.tls10"), ("TLSv1.1", "protocol.tls11")):
        if accepted.get(version):
            support = deep.version(version)
            count = len(support.suites) if support else 0
            yield finding(fid, f"the server accepts {version} ({count} cipher suites)", fix=NGINX_PROTOCOLS,
                          confirm=nmap)
    if accepted.get("TLSv1.2") is False:
        yield finding("protocol.no_tls12", "the server refuses TLS 1.2", fix=NGINX_PROTOCOLS, confirm=nmap)
    if accepted.get("TLSv1.3") is False:
        yield finding("protocol.no_tls13", "the server refuses TLS 1.3",
                      fix="enable TLS 1.3 (OpenSSL 1.1.1+): " + NGINX_PROTOCOLS, confirm=nmap)
    suites = deep.all_suites
    if weak := [s for s in suites if s.weak]:
        yield finding("cipher.weak", f"accepted: {_names(weak)}", fix=CIPHERS_FIX, confirm=nmap)
    if static := [s for s in suites if not s.forward_secrecy]:
        yield finding("cipher.no_forward_secrecy", f"accepted without forward secrecy: {_names(static)}",
                      fix=CIPHERS_FIX, confirm=nmap)
    if suites and not any(s.aead for s in suites):
        yield finding("cipher.cbc_only", f"no AEAD suite is accepted; CBC only: {_names(suites)}",
                      fix=CIPHERS_FIX, confirm=nmap)
    if weak_dh := [s for s in suites if s.dh_bits is not None and s.dh_bits < 2048]:
        bits = min(s.dh_bits for s in weak_dh if s.dh_bits is not None)
        yield finding("group.weak_dh", f"DHE with {bits}-bit parameters ({_names(weak_dh)}); Logjam territory",
                      fix="drop DHE suites or use `ssl_dhparam` with 2048+ bits (RFC 7919 ffdhe2048 or larger)",
                      confirm=nmap)
    features = deep.features
    s_client = ctx.s_client.replace(" </dev/null", "")
    if features.secure_renegotiation is False:
        yield finding("reneg.insecure", "the ServerHello carries no renegotiation_info (RFC 5746)",
                      fix="upgrade the TLS library (every maintained OpenSSL supports RFC 5746)",
                      confirm=f"{s_client} -tls1_2 </dev/null 2>&1 | grep -i renegotiation")
    if features.fallback_scsv is False:
        yield finding("fallback_scsv.missing", "a retry at a lower version with TLS_FALLBACK_SCSV was accepted "
                      "instead of refused with inappropriate_fallback",
                      fix="upgrade the TLS library or disable the old versions it would fall back to",
                      confirm=f"{s_client} -fallback_scsv -tls1_1 </dev/null")
    if features.compression:
        yield finding("compression.enabled", "the server accepted DEFLATE compression (CRIME)",
                      fix="disable TLS compression (nginx/OpenSSL 1.1+ have it off; check old builds and "
                          "`SSLCompression off` in Apache)", confirm=nmap)
