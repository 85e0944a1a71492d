"""``check_policy``: one ``policy.violation`` finding per rule of a profile that the endpoint breaks.

What the server offers comes from the deep scan when there is one (every accepted version, suite and group,
the server's order, OCSP stapling), else from the quick scan's one negotiated session, which proves only what
it negotiated; the evidence says which. Certificate rules read the leaf; HSTS rules read the HTTPS answer.
A rule the scan has no facts for (no HTTP answer, no deep scan for server order) is not a violation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding, Remediation, spec_for
from tlsward.model.policy import PolicyProfile, hsts_max_age
from tlsward.model.registry import cipher_by_code, cipher_by_name, group_by_name
from tlsward.model.scan import ScanResult
from tlsward.policy.names import (
    canonical_curve,
    canonical_group,
    canonical_suite,
    canonical_version,
    issuer_allowed,
    signature_allowed,
)

FINDING_ID = "policy.violation"
QUICK = " (quick scan: --deep lists everything the server accepts)"
OPENSSL_GROUP_NAMES = {"secp256r1": "prime256v1", "x25519": "X25519", "x448": "X448"}
OPENSSL_VERSION_NAMES = {"TLSv1.0": "TLSv1"}


def check_policy(result: ScanResult, profile: PolicyProfile, now: dt.datetime) -> tuple[Finding, ...]:
    """Every rule of ``profile`` that ``result`` violates, in the profile's rule order. ``now`` is accepted for
    the rules' common signature (no policy rule depends on the time: expiry is ``cert.expiring``'s job)."""
    del now
    checker = _Checker(result, _canonical(profile))
    return tuple(checker.run())


def _canonical(profile: PolicyProfile) -> PolicyProfile:
    """Profiles from the loader are canonical already; one built in code may say ``prime256v1`` or an OpenSSL
    suite name, and still means the same."""
    def names(values: tuple[str, ...], canonical: Callable[[str], str | None]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(canonical(v) or v for v in values))

    return replace(profile, versions=names(profile.versions, canonical_version),
                   suites=names(profile.suites, canonical_suite),
                   forbidden_suites=names(profile.forbidden_suites, canonical_suite),
                   groups=names(profile.groups, canonical_group), curves=names(profile.curves, canonical_curve))


def _join(names: tuple[str, ...] | list[str], limit: int = 8) -> str:
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def _days(seconds: float) -> str:
    """``730 days``; short spans in hours or minutes, so ``max-age=600`` does not read as "0 days"."""
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.0f} hours"
    return f"{seconds / 60:.0f} minutes"


class _Checker:
    def __init__(self, result: ScanResult, profile: PolicyProfile) -> None:
        self.result = result
        self.profile = profile
        self.deep = result.deep
        self.session = result.session
        self.leaf: CertificateFacts | None = result.chain[0] if result.chain else None
        target = result.target
        host = result.address or target.host
        self.hostport = f"[{host}]:{target.port}" if ":" in host else f"{host}:{target.port}"
        extra = (f" -servername {target.sni}" if target.sni else "") + \
                (f" -starttls {target.starttls}" if target.starttls is not None else "")
        self.s_client = f"openssl s_client -connect {self.hostport}{extra}"
        self.nmap = f"nmap --script ssl-enum-ciphers -p {target.port} {host}"
        self.show_leaf = f"{self.s_client} </dev/null 2>/dev/null | openssl x509 -noout -text"

    # what the server offers -------------------------------------------------------------------------------

    def versions(self) -> tuple[tuple[str, ...], bool]:
        """Accepted versions, and whether that is the full (deep) picture."""
        if self.deep is not None:
            return self.deep.accepted_versions, True
        return ((self.session.version,) if self.session is not None else ()), False

    def suites(self) -> tuple[list[tuple[str, str]], bool]:
        """(IANA name, version) of each accepted suite, first occurrence only."""
        if self.deep is not None:
            seen: dict[str, str] = {}
            for support in self.deep.versions:
                if support.accepted:
                    for suite in support.suites:
                        seen.setdefault(suite.name, support.version)
            return list(seen.items()), True
        if self.session is None:
            return [], False
        known = cipher_by_code(self.session.cipher_code)
        return [(known.name if known is not None else self.session.cipher, self.session.version)], False

    def groups(self) -> tuple[list[str], bool]:
        names: list[str] = []

        def add(name: str | None) -> None:
            if name:
                group = group_by_name(name)
                canonical = group.name if group is not None else name
                if canonical not in names:
                    names.append(canonical)

        if self.deep is not None:
            for group_support in self.deep.groups:
                if group_support.accepted:
                    add(group_support.name)
            for support in self.deep.versions:
                if support.accepted:
                    for suite in support.suites:
                        add(suite.kx_group)
            return names, True
        if self.session is not None:
            add(self.session.group)
        return names, False

    def dh_sizes(self) -> list[tuple[int, str]]:
        """(bits, where) for each finite-field DH key exchange seen."""
        sizes: list[tuple[int, str]] = []
        groups, _ = self.groups()
        sizes += [(int(g[len("ffdhe"):]), g) for g in groups if g.startswith("ffdhe") and g[5:].isdigit()]
        if self.deep is not None:
            sizes += [(s.dh_bits, s.name) for s in self.deep.all_suites if s.dh_bits]
        return sizes

    # the rules ------------------------------------------------------------------------------------------

    def violation(self, rule: str, evidence: str, *, fix: str, confirm: str) -> Finding:
        spec = spec_for(FINDING_ID)
        return Finding(spec.id, spec.severity, spec.title, f"policy {self.profile.name}: {rule} {evidence}",
                       Remediation(confirm=confirm, fix=fix))

    def run(self) -> Iterator[Finding]:
        yield from self.protocol_rules()
        yield from self.certificate_rules()
        yield from self.http_rules()

    def protocol_rules(self) -> Iterator[Finding]:
        p = self.profile
        versions, deep = self.versions()
        how = "accepts" if deep else "negotiated"
        tail = "" if deep else QUICK
        if p.versions and (bad := [v for v in versions if v not in p.versions]):
            allowed = " ".join(OPENSSL_VERSION_NAMES.get(v, v) for v in p.versions)
            yield self.violation("versions", f"allows {_join(p.versions)}; the server {how} {_join(bad)}{tail}",
                                 fix=f"nginx: `ssl_protocols {allowed};`; Apache: `SSLProtocol -all "
                                     + " ".join("+" + OPENSSL_VERSION_NAMES.get(v, v) for v in p.versions) + "`",
                                 confirm=self.nmap)
        suites, _ = self.suites()
        if p.suites and (bad_suites := [name for name, _ in suites if name not in p.suites]):
            yield self.violation("suites", f"allows {len(p.suites)} suites (`tlsward policy show {p.name}`); the "
                                 f"server {how} {_join(bad_suites)}, not among them{tail}",
                                 fix=self.cipher_fix(bad_suites), confirm=self.nmap)
        if p.forbidden_suites and (banned := [name for name, _ in suites if name in p.forbidden_suites]):
            yield self.violation("forbidden_suites", f"forbids {_join(p.forbidden_suites)}; the server {how} "
                                 f"{_join(banned)}{tail}",
                                 fix="remove them from the server's cipher list: nginx `ssl_ciphers ...:"
                                     + ":".join("!" + _openssl(n) for n in banned) + ";`", confirm=self.nmap)
        if p.forward_secrecy_required and (static := [n for n, _ in suites if not _fs(n)]):
            yield self.violation("forward_secrecy_required", f"is true; the server {how} {_join(static)} "
                                 f"(no forward secrecy){tail}",
                                 fix="offer only ECDHE/DHE suites: nginx `ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;`",
                                 confirm=self.nmap)
        if p.aead_required and (cbc := [n for n, _ in suites if not _aead(n)]):
            yield self.violation("aead_required", f"is true; the server {how} {_join(cbc)} (not AEAD){tail}",
                                 fix="offer only AES-GCM and ChaCha20-Poly1305 suites: nginx "
                                     "`ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;`", confirm=self.nmap)
        groups, _ = self.groups()
        if p.groups and (bad_groups := [g for g in groups if g not in p.groups]):
            curve_list = ":".join(OPENSSL_GROUP_NAMES.get(g, g) for g in p.groups)
            yield self.violation("groups", f"allows {_join(p.groups)}; the server {how} {_join(bad_groups)}{tail}",
                                 fix=f"nginx: `ssl_ecdh_curve {curve_list};`; Apache: "
                                     f"`SSLOpenSSLConfCmd Groups {curve_list}`",
                                 confirm=f"{self.s_client} -groups "
                                         f"{OPENSSL_GROUP_NAMES.get(bad_groups[0], bad_groups[0])} </dev/null")
        if p.min_dh_bits and (weak_dh := [(bits, where) for bits, where in self.dh_sizes() if bits < p.min_dh_bits]):
            bits, where = min(weak_dh)
            yield self.violation("min_dh_bits", f"is {p.min_dh_bits}; the server uses {bits}-bit DH ({where})",
                                 fix=f"use {p.min_dh_bits}-bit or larger DH parameters (nginx: `ssl_dhparam` with the "
                                     "RFC 7919 ffdhe2048 file), or drop the DHE suites",
                                 confirm=self.nmap)
        if p.server_preference_required and self.deep is not None:
            follows = [v.version for v in self.deep.versions if v.accepted and v.server_order is False
                       and len(v.suites) > 1]
            if follows:
                yield self.violation("server_preference_required", f"is true; with {_join(follows)} the server "
                                     "follows the client's suite order",
                                     fix="nginx: `ssl_prefer_server_ciphers on;`; Apache: `SSLHonorCipherOrder on`",
                                     confirm=self.nmap)
        if p.ocsp_stapling_required and self.leaf is not None and self.leaf.ocsp_urls:
            stapled = None
            if self.deep is not None:
                stapled = self.deep.features.ocsp_stapling
            if stapled is None and self.session is not None:
                stapled = self.session.ocsp_stapled
            if stapled is False:
                yield self.violation("ocsp_stapling_required", "is true; the server staples no OCSP response "
                                     f"although the leaf names the responder {self.leaf.ocsp_urls[0]}",
                                     fix="nginx: `ssl_stapling on; ssl_stapling_verify on;` with a `resolver`; "
                                         "Apache: `SSLUseStapling on` and `SSLStaplingCache`",
                                     confirm=f"{self.s_client} -status </dev/null 2>/dev/null | grep -A2 'OCSP'")

    def cipher_fix(self, offending: list[str]) -> str:
        """``ssl_ciphers`` with exactly the allowed TLS <= 1.2 suites; the TLS 1.3 line only when a TLS 1.3 suite
        is among the offenders (OpenSSL's TLS 1.3 default is usually what a profile allows)."""
        openssl = [_openssl(s) for s in self.profile.suites if not _tls13(s)]
        tls13 = [s for s in self.profile.suites if _tls13(s)]
        fixes = []
        if any(not _tls13(s) for s in offending):
            fixes.append(f"nginx: `ssl_ciphers {':'.join(openssl)};`" if openssl else
                         "disable TLS 1.2 and older (this profile allows TLS 1.3 suites only)")
        if any(_tls13(s) for s in offending):
            fixes.append(f"nginx: `ssl_conf_command Ciphersuites {':'.join(tls13)};`" if tls13 else
                         "disable TLS 1.3 (this profile allows no TLS 1.3 suite)")
        return "; ".join(fixes)

    def certificate_rules(self) -> Iterator[Finding]:
        p, leaf = self.profile, self.leaf
        if leaf is None:
            return
        key = f"{leaf.key_type} {leaf.key_bits} bits" + (f" on {leaf.curve}" if leaf.curve else "")
        reissue = "issue a new certificate: "
        new_key = ("`openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 ...`"
                   if not p.key_types or "EC" in p.key_types
                   else f"`openssl req -new -newkey rsa:{max(p.min_rsa_bits, 2048)} ...`")
        if p.key_types and leaf.key_type not in p.key_types:
            yield self.violation("key_types", f"allows {_join(p.key_types)}; the leaf key is {key}",
                                 fix=reissue + new_key, confirm=self.show_leaf + " | grep 'Public Key'")
        if p.curves and leaf.key_type == "EC" and leaf.curve and _curve(leaf.curve) not in p.curves:
            yield self.violation("curves", f"allows {_join(p.curves)}; the leaf key is on {leaf.curve}",
                                 fix=reissue + new_key, confirm=self.show_leaf + " | grep 'NIST CURVE\\|ASN1 OID'")
        if p.min_rsa_bits and leaf.key_type in ("RSA", "DSA") and leaf.key_bits < p.min_rsa_bits:
            yield self.violation("min_rsa_bits", f"is {p.min_rsa_bits}; the leaf key is {key}",
                                 fix=reissue + f"`openssl req -new -newkey rsa:{p.min_rsa_bits} ...` or an ECDSA key",
                                 confirm=self.show_leaf + " | grep 'Public-Key'")
        if p.min_ec_bits and leaf.key_type == "EC" and leaf.key_bits < p.min_ec_bits:
            yield self.violation("min_ec_bits", f"is {p.min_ec_bits}; the leaf key is {key}",
                                 fix=reissue + new_key, confirm=self.show_leaf + " | grep 'Public-Key'")
        if p.signature_algorithms and not signature_allowed(p.signature_algorithms, leaf.signature_algorithm,
                                                            leaf.signature_hash):
            yield self.violation("signature_algorithms", f"allows {_join(p.signature_algorithms)}; the leaf is "
                                 f"signed with {leaf.signature_algorithm}",
                                 fix="reissue the certificate from a CA (or CA key) that signs with an allowed "
                                     "algorithm", confirm=self.show_leaf + " | grep 'Signature Algorithm'")
        lifetime = leaf.lifetime.total_seconds()
        # RFC 5280 validity is inclusive: a 90-day certificate runs notBefore .. notBefore + 90 days - 1 s.
        if p.max_cert_lifetime_days and lifetime > p.max_cert_lifetime_days * 86400 + 1:
            yield self.violation("max_cert_lifetime_days", f"is {p.max_cert_lifetime_days}; the leaf is valid for "
                                 f"{_days(lifetime)} ({leaf.not_before:%Y-%m-%d} to {leaf.not_after:%Y-%m-%d})",
                                 fix=f"issue certificates valid for at most {p.max_cert_lifetime_days} days and renew "
                                     "them automatically (ACME: certbot, cert-manager)",
                                 confirm=f"{self.s_client} </dev/null 2>/dev/null | openssl x509 -noout -dates")
        if p.allowed_issuers and not issuer_allowed(p.allowed_issuers, leaf.issuer):
            yield self.violation("allowed_issuers", f"allows {_join([repr(i) for i in p.allowed_issuers])}; the "
                                 f"leaf is issued by {leaf.issuer}",
                                 fix="replace the certificate with one from an approved CA",
                                 confirm=f"{self.s_client} </dev/null 2>/dev/null | openssl x509 -noout -issuer")

    def http_rules(self) -> Iterator[Finding]:
        p, http, target = self.profile, self.result.http, self.result.target
        if http is None or not target.speaks_tls or not (p.hsts_required or p.hsts_min_max_age):
            return
        url = f"https://{target.name}:{target.port}/"
        confirm = f"curl -sI {url} | grep -i strict-transport-security"
        age = hsts_max_age(http.hsts)
        wanted = max(p.hsts_min_max_age, 1)
        header = f'add_header Strict-Transport-Security "max-age={max(p.hsts_min_max_age, 31536000)}" always;'
        if p.hsts_required and http.status < 400 and age is None:
            got = "without Strict-Transport-Security" if http.hsts is None else \
                  f"with a Strict-Transport-Security header that has no valid max-age ({http.hsts!r})"
            yield self.violation("hsts_required", f"is true; GET / answered {http.status} {got}",
                                 fix=f"nginx: `{header}`", confirm=confirm)
        elif p.hsts_min_max_age and age is not None and age < wanted:
            yield self.violation("hsts_min_max_age", f"is {p.hsts_min_max_age} s ({_days(p.hsts_min_max_age)}); "
                                 f"the header says max-age={age} ({_days(age)})",
                                 fix=f"nginx: `{header}`", confirm=confirm)


def _tls13(name: str) -> bool:
    suite = cipher_by_name(name)
    return suite is not None and suite.tls13


def _fs(name: str) -> bool:
    suite = cipher_by_name(name)
    return suite is None or suite.forward_secrecy or suite.tls13


def _aead(name: str) -> bool:
    suite = cipher_by_name(name)
    return suite is None or suite.aead


def _openssl(name: str) -> str:
    suite = cipher_by_name(name)
    return suite.openssl_name if suite is not None and suite.openssl_name else name


def _curve(name: str) -> str:
    group = group_by_name(name)
    return group.name if group is not None else name
