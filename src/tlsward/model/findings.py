"""Findings: what a scan says is wrong, how bad it is, and what to do about it.

Finding ids are a public contract (JSON output, alert rules, the lab's ground truth), so every id
lives in one catalogue here and is documented in docs/findings.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Severity(IntEnum):
    """Ordered so that ``--fail-on`` is a plain comparison."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r}; expected one of {names}") from None


@dataclass(frozen=True, slots=True)
class FindingSpec:
    """The stable part of a finding: its id, default severity and a one-line title."""

    id: str
    severity: Severity
    title: str


@dataclass(frozen=True, slots=True)
class Remediation:
    """What a person types: the command that confirms the problem and the fix."""

    confirm: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem found on one endpoint, with its evidence."""

    id: str
    severity: Severity
    title: str
    evidence: str
    remediation: Remediation = field(default_factory=Remediation)


def _spec(id_: str, severity: Severity, title: str) -> FindingSpec:
    return FindingSpec(id_, severity, title)


S = Severity
FINDING_CATALOGUE: dict[str, FindingSpec] = {
    spec.id: spec
    for spec in (
        # certificate
        _spec("cert.expired", S.CRITICAL, "Certificate has expired"),
        _spec("cert.not_yet_valid", S.CRITICAL, "Certificate is not valid yet"),
        _spec("cert.expiring", S.HIGH, "Certificate expires soon"),
        _spec("cert.self_signed", S.HIGH, "Server certificate is self-signed"),
        _spec("cert.weak_key", S.HIGH, "Certificate key is too weak"),
        _spec("cert.weak_signature", S.HIGH, "Certificate is signed with a broken hash (SHA-1 or MD5)"),
        _spec("cert.revoked", S.CRITICAL, "Certificate has been revoked by its CA"),
        _spec("cert.revocation_unknown", S.HIGH, "Revocation status could not be established"),
        # names
        _spec("name.mismatch", S.CRITICAL, "Certificate does not cover the requested name"),
        _spec("name.backends_differ", S.HIGH, "Backends behind one name serve different certificates"),
        # chain
        _spec("chain.untrusted", S.CRITICAL, "Chain does not lead to a trusted root"),
        _spec("chain.incomplete", S.HIGH, "Server does not send the intermediate certificate(s)"),
        _spec("chain.order", S.LOW, "Server sends its chain in the wrong order"),
        _spec("chain.expired_intermediate", S.CRITICAL, "An intermediate certificate in the chain has expired"),
        _spec("chain.contains_root", S.INFO, "Server sends the root certificate (wasted bytes)"),
        # protocol
        _spec("protocol.tls10", S.HIGH, "TLS 1.0 is enabled"),
        _spec("protocol.tls11", S.HIGH, "TLS 1.1 is enabled"),
        _spec("protocol.ssl3", S.CRITICAL, "SSL 3.0 is enabled"),
        _spec("protocol.no_tls13", S.LOW, "TLS 1.3 is not supported"),
        _spec("protocol.no_tls12", S.HIGH, "TLS 1.2 is not supported"),
        # ciphers
        _spec("cipher.weak", S.HIGH, "Weak cipher suites are accepted (3DES, RC4, DES, NULL, export)"),
        _spec("cipher.no_forward_secrecy", S.MEDIUM, "Key exchange without forward secrecy (static RSA)"),
        _spec("cipher.cbc_only", S.LOW, "Only CBC (non-AEAD) cipher suites are used"),
        _spec("group.weak_dh", S.HIGH, "Diffie-Hellman parameters are weaker than 2048 bits"),
        # protocol features (deep scan)
        _spec("reneg.insecure", S.HIGH, "Secure renegotiation (RFC 5746) is not supported"),
        _spec("fallback_scsv.missing", S.LOW, "TLS_FALLBACK_SCSV is not honoured (downgrade protection)"),
        _spec("compression.enabled", S.HIGH, "TLS compression is enabled (CRIME)"),
        # mutual TLS
        _spec("mtls.required", S.INFO, "Server requires a client certificate"),
        _spec("mtls.optional", S.INFO, "Server asks for an optional client certificate"),
        # HTTP on top of TLS
        _spec("http.no_hsts", S.LOW, "HTTPS response has no Strict-Transport-Security header"),
        _spec("http.hsts_short", S.LOW, "HSTS max-age is shorter than 180 days"),
        _spec("http.redirect_other_host", S.INFO, "Plain-HTTP port redirects to HTTPS on another host"),
        _spec("http.no_https_redirect", S.MEDIUM, "Plain-HTTP port serves content instead of redirecting"),
        # policy profiles (--policy)
        _spec("policy.violation", S.MEDIUM, "Configuration violates the policy profile"),
        # connection-level failures
        _spec("conn.dns", S.CRITICAL, "Name does not resolve"),
        _spec("conn.refused", S.CRITICAL, "Connection refused"),
        _spec("conn.reset", S.CRITICAL, "Connection reset by the server"),
        _spec("conn.timeout", S.CRITICAL, "Connection or handshake timed out"),
        _spec("conn.plaintext_http", S.CRITICAL, "Plain HTTP answers on the TLS port"),
        _spec("conn.tls_alert", S.CRITICAL, "Server aborted the handshake with a TLS alert"),
        _spec("conn.rate_limited", S.MEDIUM, "The server refused us for making too many connections"),
        _spec("conn.protocol_error", S.CRITICAL, "The server's answer is not valid TLS (truncated or garbage)"),
        _spec("conn.no_shared_cipher", S.CRITICAL, "No protocol version or cipher suite in common"),
        _spec("starttls.not_offered", S.CRITICAL, "Server does not offer STARTTLS"),
        # files and configs on disk (tlsward inventory discover)
        _spec("file.unreadable", S.MEDIUM, "A certificate, key or config file cannot be read"),
        _spec("file.unparseable", S.MEDIUM, "A file looks like certificate material but cannot be parsed"),
        _spec("file.wrong_password", S.MEDIUM, "A PKCS#12 file or keystore cannot be opened with the password given"),
        _spec("file.key_mismatch", S.CRITICAL, "Private key does not match the certificate it is paired with"),
        _spec("file.key_exposed", S.HIGH, "Private key file is readable by other users"),
        _spec("config.syntax", S.MEDIUM, "Server config cannot be parsed"),
        _spec("config.missing_file", S.HIGH, "Server config names a certificate or key file that does not exist"),
        _spec("deploy.not_deployed", S.HIGH, "Certificate renewed on disk but the endpoint still serves the old one"),
        # managed certificates (tlsward renew, monitor [renewal]): alert rules from the renewal history
        _spec("cert.deploy_failed", S.HIGH, "A renewed certificate could not be deployed and was rolled back"),
        _spec("cert.renewal_failed", S.HIGH, "A managed certificate could not be renewed"),
        # trust stores on a host (tlsward truststore, scan --all-stores)
        _spec("trust.store_fails", S.HIGH, "Some trust stores on this host do not trust the endpoint"),
        _spec("truststore.unreadable", S.MEDIUM, "A trust store exists but cannot be read"),
        _spec("truststore.internal_ca_missing", S.HIGH, "The internal CA is missing from a trust store"),
        _spec("truststore.distrusted_root", S.MEDIUM, "A trust store still holds roots the browsers distrust"),
        _spec("truststore.root_expired", S.LOW, "A trust store holds expired roots"),
        _spec("truststore.root_expiring", S.MEDIUM, "A root in a trust store expires soon"),
        _spec("truststore.stale", S.LOW, "A trust store lacks roots of the current Mozilla list"),
    )
}


def spec_for(finding_id: str) -> FindingSpec:
    """The catalogue entry for an id; an unknown id is a programming error."""
    return FINDING_CATALOGUE[finding_id]
