"""The lab catalogue: every endpoint the lab serves, the real situation it reproduces, and the ground
truth a correct scanner must report there.

Ground truth, per case (ids from :data:`tlsward.model.findings.FINDING_CATALOGUE`):

* ``expect``: a ``tlsward scan`` of ``case.target`` (with the lab root as ``--ca-file``) must report
  every one of these ids;
* ``expect_deep``: a deep scan (version / cipher enumeration) must report these as well;
* ``allow``: ids (``fnmatch`` patterns) a scan may report or not;
* every other catalogue id is *forbidden* there (:meth:`LabCase.forbidden`): reporting it is a false positive.

The behaviour fields (``versions``, ``client_cert``, ``hsts`` ...) describe what any TLS client,
``openssl s_client`` or ``curl``, sees; the integration tests check them with those clients.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from tlsward.lab.pki import DAY, LAB_DOMAIN, LeafSpec
from tlsward.model.findings import FINDING_CATALOGUE

Kind = Literal[
    "tls",             # TLS with a tiny HTTP responder behind it
    "legacy_3des",     # hand-written TLS 1.0-1.2 responder that accepts only 3DES (OpenSSL 3 cannot serve it)
    "plain_http",      # plain HTTP on a port the target says is TLS
    "http",            # plain-HTTP site port (redirects to HTTPS or not)
    "smtp",            # SMTP, with or without STARTTLS
    "postgres",        # PostgreSQL SSLRequest then TLS
    "blackhole",       # accepts TCP, never answers
    "reset",           # accepts TCP, then resets it
    "closed",          # nothing listens: connection refused
    "truncated",       # a TLS record cut short, then the connection closes
    "imap", "pop3", "ftp", "ldap", "xmpp", "mysql",   # STARTTLS dialogues, then TLS
]
STARTTLS_KINDS = ("smtp", "postgres", "imap", "pop3", "ftp", "ldap", "xmpp", "mysql")
ChainLayout = Literal["full", "leaf_only", "wrong_order"]
ClientCert = Literal["none", "optional", "required"]

TLS12_13 = ("TLSv1.2", "TLSv1.3")
# Mozilla "intermediate" TLS 1.2 suites (ECDHE only): the healthy cases are healthy under that policy.
MODERN_CIPHERS = (
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
)
LEGACY_CIPHERS = "ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES128-SHA:AES128-SHA:@SECLEVEL=0"


@dataclass(frozen=True, slots=True)
class LabCase:
    """One lab endpoint."""

    name: str
    situation: str
    kind: Kind = "tls"
    leaf: LeafSpec | None = None
    chain: ChainLayout = "full"
    versions: tuple[str, ...] = TLS12_13
    ciphers: str = MODERN_CIPHERS
    client_cert: ClientCert = "none"
    hsts: bool = True
    starttls: bool = True
    redirect: bool = False
    weak_dh: bool = False              # serve DHE with the 1024-bit RFC 2409 group
    sni_name: str = ""
    scheme: str = ""
    expect: frozenset[str] = frozenset()
    expect_deep: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    @property
    def sni(self) -> str:
        """The name a client asks for (SNI and Host)."""
        return self.sni_name or f"{self.name}.{LAB_DOMAIN}"

    @property
    def is_tls(self) -> bool:
        """Whether a TLS handshake can complete here with a stock OpenSSL client."""
        return (self.kind == "tls" or self.kind in STARTTLS_KINDS) and (self.kind != "smtp" or self.starttls)

    def target(self, port: int) -> str:
        """The target string a user passes to ``tlsward scan`` (connect to the lab host with ``--connect``)."""
        hostport = f"{self.sni}:{port}"
        return f"{self.scheme}://{hostport}" if self.scheme else hostport

    def forbidden(self) -> frozenset[str]:
        """Catalogue ids a scan must not report here."""
        permitted = self.expect | self.expect_deep
        return frozenset(
            fid for fid in FINDING_CATALOGUE
            if fid not in permitted and not any(fnmatch.fnmatchcase(fid, pat) for pat in self.allow)
        )


def _ids(*ids: str) -> frozenset[str]:
    unknown = [i for i in ids if i not in FINDING_CATALOGUE and "*" not in i]
    if unknown:
        raise ValueError(f"lab catalogue names unknown finding ids: {unknown}")
    return frozenset(ids)


def _leaf(name: str, **kw: object) -> LeafSpec:
    return LeafSpec(names=(f"{name}.{LAB_DOMAIN}",), **kw)  # type: ignore[arg-type]


LEGACY_DEEP = _ids("cipher.no_forward_secrecy", "cipher.cbc_only")

CASES: tuple[LabCase, ...] = (
    LabCase("healthy-rsa", "Healthy RSA-2048 site: TLS 1.2 + 1.3, full chain, HSTS",
            leaf=_leaf("healthy-rsa", key="rsa2048")),
    LabCase("healthy-ecdsa", "Healthy ECDSA P-256 site: TLS 1.2 + 1.3, full chain, HSTS",
            leaf=_leaf("healthy-ecdsa")),
    LabCase("expired", "Certificate expired two days ago (renewal silently failed)",
            leaf=_leaf("expired", not_before=-92 * DAY, not_after=-2 * DAY), expect=_ids("cert.expired")),
    LabCase("not-yet-valid", "Certificate valid from two days in the future (clock skew at issuance)",
            leaf=_leaf("not-yet-valid", not_before=2 * DAY, not_after=92 * DAY),
            expect=_ids("cert.not_yet_valid")),
    LabCase("expiring-5d", "90-day certificate with 5 days left: page someone",
            leaf=_leaf("expiring-5d", not_before=-85 * DAY, not_after=5 * DAY), expect=_ids("cert.expiring")),
    LabCase("expiring-20d", "90-day certificate with 20 days left: open a ticket",
            leaf=_leaf("expiring-20d", not_before=-70 * DAY, not_after=20 * DAY), expect=_ids("cert.expiring")),
    LabCase("valid-40d", "90-day certificate with 40 days left: nothing to do yet (no false alarm)",
            leaf=_leaf("valid-40d", not_before=-50 * DAY, not_after=40 * DAY)),
    LabCase("short-lived", "6-day certificate with 1.5 days left: less than a third of its lifetime",
            leaf=_leaf("short-lived", not_before=-4.5 * DAY, not_after=1.5 * DAY), expect=_ids("cert.expiring")),
    LabCase("name-mismatch", "Another service's certificate deployed here",
            leaf=LeafSpec(names=(f"other-service.{LAB_DOMAIN}",)), expect=_ids("name.mismatch")),
    LabCase("wildcard-too-deep", "Wildcard certificate used one label too deep",
            leaf=LeafSpec(names=(f"*.wild.{LAB_DOMAIN}",)), sni_name=f"a.b.wild.{LAB_DOMAIN}",
            expect=_ids("name.mismatch")),
    LabCase("wildcard", "Wildcard certificate used correctly",
            leaf=LeafSpec(names=(f"*.wild.{LAB_DOMAIN}",)), sni_name=f"www.wild.{LAB_DOMAIN}"),
    LabCase("self-signed", "Self-signed certificate left over from testing",
            leaf=_leaf("self-signed", self_signed=True), chain="leaf_only", expect=_ids("cert.self_signed")),
    LabCase("untrusted-root", "Chain leads to a root nobody trusts",
            leaf=_leaf("untrusted-root", issuer="untrusted-root"), chain="leaf_only",
            expect=_ids("chain.untrusted")),
    LabCase("missing-intermediate", "Server sends only the leaf; browsers may cope, curl and Java fail",
            leaf=_leaf("missing-intermediate"), chain="leaf_only", expect=_ids("chain.incomplete")),
    LabCase("wrong-order", "Intermediates sent in the wrong order (sub-intermediate after its issuer)",
            leaf=_leaf("wrong-order", issuer="sub-intermediate"), chain="wrong_order",
            expect=_ids("chain.order")),
    LabCase("expired-intermediate", "Valid leaf under an intermediate that expired ten days ago",
            leaf=_leaf("expired-intermediate", issuer="expired-intermediate"),
            expect=_ids("chain.expired_intermediate")),
    LabCase("rsa-1024", "Leaf with a 1024-bit RSA key",
            leaf=_leaf("rsa-1024", key="rsa1024"), ciphers=MODERN_CIPHERS + ":@SECLEVEL=0",
            expect=_ids("cert.weak_key")),
    LabCase("sha1-signature", "Leaf signed with SHA-1",
            leaf=_leaf("sha1-signature", key="rsa2048", signature_hash="sha1"),
            ciphers=MODERN_CIPHERS + ":@SECLEVEL=0", expect=_ids("cert.weak_signature")),
    LabCase("revoked", "Leaf revoked by its CA (listed in the lab CRL)",
            leaf=_leaf("revoked", revoked=True), expect=_ids("cert.revoked")),
    LabCase("tls10-only", "Legacy box that speaks only TLS 1.0",
            leaf=_leaf("tls10-only", key="rsa2048"), versions=("TLSv1",), ciphers=LEGACY_CIPHERS,
            expect=_ids("protocol.tls10", "protocol.no_tls12", "protocol.no_tls13"), expect_deep=LEGACY_DEEP),
    LabCase("tls10-11", "TLS 1.0 and 1.1 only",
            leaf=_leaf("tls10-11", key="rsa2048"), versions=("TLSv1", "TLSv1.1"), ciphers=LEGACY_CIPHERS,
            expect=_ids("protocol.tls11", "protocol.no_tls12", "protocol.no_tls13"),
            expect_deep=_ids("protocol.tls10") | LEGACY_DEEP),
    LabCase("tls12-only", "TLS 1.2 only (no TLS 1.3)",
            leaf=_leaf("tls12-only"), versions=("TLSv1.2",), expect=_ids("protocol.no_tls13")),
    LabCase("static-rsa", "Only static-RSA key exchange (no forward secrecy), TLS 1.2",
            leaf=_leaf("static-rsa", key="rsa2048"), versions=("TLSv1.2",),
            ciphers="AES128-GCM-SHA256:AES256-SHA:@SECLEVEL=0",
            expect=_ids("cipher.no_forward_secrecy", "protocol.no_tls13")),
    LabCase("weak-dh", "DHE with 1024-bit parameters (Logjam era), TLS 1.2 only",
            leaf=_leaf("weak-dh", key="rsa2048"), versions=("TLSv1.2",),
            ciphers="DHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0", weak_dh=True,
            expect=_ids("protocol.no_tls13"), expect_deep=_ids("group.weak_dh")),
    LabCase("legacy-3des", "Old appliance that accepts only TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            kind="legacy_3des", leaf=_leaf("legacy-3des", key="rsa2048"), versions=("TLSv1", "TLSv1.1", "TLSv1.2"),
            ciphers="TLS_RSA_WITH_3DES_EDE_CBC_SHA",
            expect=_ids("cipher.weak"),
            expect_deep=_ids("cipher.no_forward_secrecy", "cipher.cbc_only", "protocol.tls10", "protocol.tls11",
                             "fallback_scsv.missing",
                             "protocol.no_tls13"),
            allow=_ids("conn.no_shared_cipher")),
    LabCase("mtls-required", "Server requires a client certificate (issued by intermediate-2)",
            leaf=_leaf("mtls-required"), client_cert="required", expect=_ids("mtls.required")),
    LabCase("mtls-optional", "Server asks for a client certificate but does not require it",
            leaf=_leaf("mtls-optional"), client_cert="optional", expect=_ids("mtls.optional")),
    LabCase("plain-http-on-tls-port", "Plain HTTP answering on the port the target says is TLS",
            kind="plain_http", expect=_ids("conn.plaintext_http")),
    LabCase("https-no-hsts", "HTTPS site without Strict-Transport-Security",
            leaf=_leaf("https-no-hsts"), hsts=False, scheme="https", expect=_ids("http.no_hsts")),
    LabCase("https-hsts", "HTTPS site with HSTS (max-age one year, includeSubDomains)",
            leaf=_leaf("https-hsts"), scheme="https"),
    LabCase("http-redirect", "Plain-HTTP port that redirects to HTTPS (on the https-hsts case's name and port)",
            kind="http", redirect=True, scheme="http", expect=_ids("http.redirect_other_host")),
    LabCase("http-no-redirect", "Plain-HTTP port that serves the site in clear text",
            kind="http", redirect=False, scheme="http", expect=_ids("http.no_https_redirect")),
    LabCase("smtp-starttls", "SMTP server offering STARTTLS",
            kind="smtp", leaf=_leaf("smtp-starttls"), scheme="smtp"),
    LabCase("smtp-no-starttls", "SMTP server that does not offer STARTTLS",
            kind="smtp", starttls=False, scheme="smtp", expect=_ids("starttls.not_offered")),
    LabCase("postgres", "PostgreSQL-protocol server: SSLRequest, then TLS",
            kind="postgres", leaf=_leaf("postgres"), scheme="postgres"),
    LabCase("imap-starttls", "IMAP server offering STARTTLS",
            kind="imap", leaf=_leaf("imap-starttls"), scheme="imap"),
    LabCase("pop3-starttls", "POP3 server offering STLS",
            kind="pop3", leaf=_leaf("pop3-starttls"), scheme="pop3"),
    LabCase("ftp-auth-tls", "FTP server offering AUTH TLS",
            kind="ftp", leaf=_leaf("ftp-auth-tls"), scheme="ftp"),
    LabCase("ldap-starttls", "LDAP server answering the StartTLS extended operation",
            kind="ldap", leaf=_leaf("ldap-starttls"), scheme="ldap"),
    LabCase("xmpp-starttls", "XMPP server requiring STARTTLS",
            kind="xmpp", leaf=_leaf("xmpp-starttls"), scheme="xmpp"),
    LabCase("mysql-tls", "MySQL-protocol server advertising CLIENT_SSL",
            kind="mysql", leaf=_leaf("mysql-tls"), scheme="mysql"),
    LabCase("truncated-hello", "Broken TLS terminator: a truncated ServerHello, then the connection closes",
            kind="truncated", expect=_ids("conn.protocol_error")),
    LabCase("blackhole", "Accepts TCP and never answers (hung process, firewall tarpit)",
            kind="blackhole", expect=_ids("conn.timeout")),
    LabCase("reset", "Accepts TCP, then resets the connection (crashed TLS terminator)",
            kind="reset", expect=_ids("conn.reset")),
    LabCase("closed", "Nothing listens on the port (service down)",
            kind="closed", expect=_ids("conn.refused")),
)

CLIENT_LEAF = "lab-client"
CLIENT_SPEC = LeafSpec(names=(f"client.{LAB_DOMAIN}",), issuer="intermediate-2", client=True)


def case_named(name: str, cases: Iterable[LabCase] = CASES) -> LabCase:
    for case in cases:
        if case.name == name:
            return case
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class PortPlan:
    """Which port each case listens on: ``base`` serves the lab PKI (CRLs, CA certs), cases follow."""

    host: str
    base: int
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def for_base(cls, host: str, base: int, cases: Iterable[LabCase] = CASES) -> PortPlan:
        return cls(host, base, {case.name: base + 1 + i for i, case in enumerate(cases)})

    @property
    def pki_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.base}"
