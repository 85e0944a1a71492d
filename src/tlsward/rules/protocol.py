"""Protocol and cipher rules from the negotiated session. A client offering everything up to TLS 1.3
that ends up on TLS 1.1 proves the server supports nothing newer."""

from __future__ import annotations

from collections.abc import Iterator

from tlsward.model.findings import Finding
from tlsward.model.registry import cipher_by_code
from tlsward.model.scan import Session
from tlsward.rules.base import Context, finding

NGINX_PROTOCOLS = "nginx: `ssl_protocols TLSv1.2 TLSv1.3;`; Apache: `SSLProtocol -all +TLSv1.2 +TLSv1.3`; " \
                  "HAProxy: `ssl-default-bind-options ssl-min-ver TLSv1.2`"
ORDER = {"SSLv3": 0, "TLSv1.0": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}


def protocol_rules(session: Session, ctx: Context) -> Iterator[Finding]:
    rank = ORDER.get(session.version, 4)
    confirm = ctx.s_client.replace("openssl s_client", "openssl s_client -brief")
    if session.version == "SSLv3":
        yield finding("protocol.ssl3", "the server negotiated SSL 3.0", fix=NGINX_PROTOCOLS, confirm=confirm)
    if session.version == "TLSv1.0":
        yield finding("protocol.tls10", "the server negotiated TLS 1.0 although the client offered up to TLS 1.3",
                      fix=NGINX_PROTOCOLS, confirm=confirm.replace("-brief", "-brief -tls1"))
    if session.version == "TLSv1.1":
        yield finding("protocol.tls11", "the server negotiated TLS 1.1 although the client offered up to TLS 1.3",
                      fix=NGINX_PROTOCOLS, confirm=confirm.replace("-brief", "-brief -tls1_1"))
    if rank < ORDER["TLSv1.2"]:
        yield finding("protocol.no_tls12", f"best version the server accepts is {session.version}; clients that "
                      "require TLS 1.2 (most since 2020) cannot connect", fix=NGINX_PROTOCOLS,
                      confirm=confirm.replace("-brief", "-brief -tls1_2"))
    if rank < ORDER["TLSv1.3"] and session.completed:  # a hand-made legacy hello offered only up to TLS 1.2
        yield finding("protocol.no_tls13", f"best version the server accepts is {session.version}",
                      fix="enable TLS 1.3 (OpenSSL 1.1.1+): " + NGINX_PROTOCOLS,
                      confirm=confirm.replace("-brief", "-brief -tls1_3"))
    suite = cipher_by_code(session.cipher_code)
    if suite is None:
        return
    # OpenSSL 3 cannot offer most weak suites, so nmap (which crafts its own ClientHellos) confirms them.
    host = ctx.address or ctx.target.host
    confirm = f"nmap --script ssl-enum-ciphers -p {ctx.target.port} {host}"
    ciphers_fix = ("nginx: `ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                   "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;` (Mozilla intermediate)")
    if suite.weak:
        yield finding("cipher.weak", f"negotiated {suite.name}", fix=ciphers_fix, confirm=confirm)
    if not suite.tls13 and not suite.forward_secrecy:
        yield finding("cipher.no_forward_secrecy", f"negotiated {suite.name}: static key exchange, so a stolen "
                      "server key decrypts recorded traffic", fix=ciphers_fix, confirm=confirm)
    if not suite.aead and rank >= ORDER["TLSv1.2"]:
        yield finding("cipher.cbc_only", f"negotiated {suite.name} (CBC) although the client offered AEAD suites",
                      fix=ciphers_fix, confirm=confirm)
