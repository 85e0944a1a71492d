"""HTTP rules: HSTS on HTTPS answers, and plain-HTTP ports that should redirect."""

from __future__ import annotations

from collections.abc import Iterator

from tlsward.model.findings import Finding
from tlsward.model.scan import HttpFacts
from tlsward.rules.base import Context, finding

HSTS_FIX = ("nginx: `add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;`; "
            "Apache: `Header always set Strict-Transport-Security \"max-age=31536000; includeSubDomains\"`")


def http_rules(facts: HttpFacts, ctx: Context, *, over_tls: bool) -> Iterator[Finding]:
    target = ctx.target
    url = f"{'https' if over_tls else 'http'}://{target.name}:{target.port}/"
    if over_tls and facts.hsts is None and facts.status < 400:
        yield finding("http.no_hsts", f"GET / answered {facts.status} without Strict-Transport-Security",
                      fix=HSTS_FIX, confirm=f"curl -sI {url} | grep -i strict")
    if not over_tls and not (300 <= facts.status < 400 and (facts.location or "").lower().startswith("https://")):
        yield finding("http.no_https_redirect", f"GET / answered {facts.status} in clear text"
                      + (f" (Location: {facts.location})" if facts.location else ""),
                      fix="redirect every plain-HTTP request: nginx `return 301 https://$host$request_uri;`",
                      confirm=f"curl -sI {url}")
