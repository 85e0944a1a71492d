"""Chain rules: trust, completeness, order, expired intermediates, hostname. Root causes first: a chain
that fails only because the leaf expired or is self-signed is not also reported as untrusted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from tlsward.model.certificate import CertificateFacts, ChainAnalysis
from tlsward.model.findings import Finding
from tlsward.rules.base import Context, finding

FULLCHAIN = ("serve the full chain: nginx `ssl_certificate /etc/letsencrypt/live/NAME/fullchain.pem;` "
             "(not cert.pem); HAProxy: put leaf, intermediates and key in one PEM; Apache 2.4.8+: "
             "`SSLCertificateFile fullchain.pem`")


def chain_rules(chain: Sequence[CertificateFacts], analysis: ChainAnalysis, ctx: Context,
                now: dt.datetime, *, leaf_revoked: bool = False) -> Iterator[Finding]:
    if not chain:
        return
    leaf = chain[0]
    if not analysis.hostname_matches:
        names = ", ".join([*leaf.dns_names, *leaf.ip_addresses][:8]) or "(no subjectAltName)"
        yield finding("name.mismatch", f"asked for {analysis.hostname}; the certificate covers {names}",
                      fix=f"serve a certificate whose subjectAltName includes {analysis.hostname} (check which "
                          "server block answers this SNI name: nginx `server_name`, then `ssl_certificate`)",
                      confirm=f"{ctx.s_client} -verify_hostname {analysis.hostname} 2>&1 | grep -i verif")
    expired_ints = [chain[i] for i in analysis.expired_intermediates if i < len(chain)]
    for cert in expired_ints:
        yield finding("chain.expired_intermediate",
                      f"intermediate {cert.subject} expired {cert.not_after:%Y-%m-%d} UTC, so the chain fails "
                      f"although the leaf is valid",
                      fix="download the current intermediate from your CA and rebuild the chain file; "
                          + FULLCHAIN, confirm=ctx.show_certs())
    leaf_invalid = not leaf.is_valid_at(now)
    if analysis.incomplete:
        via_aia = any(v.completed_via_aia for v in analysis.verdicts)
        repair = ("the AIA caIssuers URL in the leaf does serve the missing issuer, so browsers cope, but curl, "
                  "Java, Go and Python clients fail") if via_aia else "and no AIA caIssuers URL repairs it"
        yield finding("chain.incomplete", f"the server sends {len(chain)} certificate(s) and omits the issuer of "
                      f"{chain[-1].subject} ({chain[-1].issuer}); {repair}",
                      fix=FULLCHAIN, confirm=ctx.show_certs())
    elif not analysis.in_order:
        yield finding("chain.order", "the certificates after the leaf are not in issuing order: "
                      + " -> ".join(c.subject for c in chain),
                      fix="order the chain file leaf first, then each issuer in turn (leaf, intermediate, ...); "
                          + FULLCHAIN, confirm=ctx.show_certs())
    if analysis.contains_root:
        yield finding("chain.contains_root", f"the chain includes the self-signed root {chain[-1].subject}",
                      fix="drop the root from the chain file; clients use their own copy",
                      confirm=ctx.show_certs())
    # A chain that fails only for a reason reported above is not "untrusted" on top of it.
    explained = (leaf_invalid or leaf.self_signed or leaf_revoked or analysis.incomplete or bool(expired_ints)
                 or bool(analysis.weak_signatures))
    if not analysis.trusted and not explained:
        reasons = "; ".join(f"{v.store}: {v.reason}" for v in analysis.verdicts) or "no trust store configured"
        yield finding("chain.untrusted", reasons,
                      fix="use a certificate from a CA your clients trust, or distribute your internal root to "
                          "every client (then scan with --ca-file ROOT.pem)",
                      confirm=f"{ctx.s_client} -verify_return_error 2>&1 | grep -i verif")
