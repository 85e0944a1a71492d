"""HTTP rules: HSTS on HTTPS answers (present, max-age, well-formed), and plain-HTTP ports that should
redirect to HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from tlsward.model.findings import Finding
from tlsward.model.policy import hsts_max_age
from tlsward.model.scan import HttpFacts
from tlsward.rules.base import Context, finding

HSTS_FIX = ("nginx: `add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;`; "
            "Apache: `Header always set Strict-Transport-Security \"max-age=31536000; includeSubDomains\"`")
HSTS_MIN_AGE = 180 * 86400   # SSL Labs and Mozilla: at least six months


def http_rules(facts: HttpFacts, ctx: Context, *, over_tls: bool) -> Iterator[Finding]:
    target = ctx.target
    url = f"{'https' if over_tls else 'http'}://{target.name}:{target.port}/"
    if over_tls and facts.status < 400:
        yield from _hsts(facts, url)
    if not over_tls:
        location = facts.location or ""
        if not (300 <= facts.status < 400 and location.lower().startswith("https://")):
            yield finding("http.no_https_redirect", f"GET / answered {facts.status} in clear text"
                          + (f" (Location: {location})" if location else ""),
                          fix="redirect every plain-HTTP request: nginx `return 301 https://$host$request_uri;`",
                          confirm=f"curl -sI {url}")
        elif (urlsplit(location).hostname or "").lower() != target.name.lower():
            yield finding("http.redirect_other_host", f"http://{target.name}/ redirects to {location}",
                          fix="fine if intended (e.g. apex to www); otherwise redirect to the same host first so "
                              "HSTS can be set for it: `return 301 https://$host$request_uri;`",
                          confirm=f"curl -sI {url}")


def _hsts(facts: HttpFacts, url: str) -> Iterator[Finding]:
    confirm = f"curl -sI {url} | grep -i strict"
    if facts.hsts is None:
        yield finding("http.no_hsts", f"GET / answered {facts.status} without Strict-Transport-Security",
                      fix=HSTS_FIX, confirm=confirm)
        return
    age = hsts_max_age(facts.hsts)
    if age is None:
        yield finding("http.no_hsts", f"Strict-Transport-Security is malformed, so browsers ignore it: "
                      f"{facts.hsts!r}", fix=HSTS_FIX, confirm=confirm)
    elif age < HSTS_MIN_AGE:
        yield finding("http.hsts_short", f"max-age={age} ({age / 86400:.0f} days) in {facts.hsts!r}",
                      fix=HSTS_FIX, confirm=confirm)
