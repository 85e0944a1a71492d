"""A policy profile: what a TLS endpoint is allowed to offer, as plain data.

Profiles are built by ``tlsward.policy`` (the shipped Mozilla guidelines, or a user's TOML/YAML file) and
checked by ``tlsward.policy.evaluate.check_policy``. Every field is one rule; an empty tuple, ``0`` or
``False`` means "no rule", so a profile states only what it cares about.

Names are canonical: versions as tlsward prints them (``TLSv1.2``), cipher suites by IANA name, groups by
IANA name (``x25519``, ``secp256r1``), leaf key types as ``CertificateFacts.key_type`` (``RSA``, ``EC``,
``Ed25519``...), curves as ``CertificateFacts.curve`` (``secp256r1``). Signature algorithms are X.509 names
(``sha256WithRSAEncryption``, ``ecdsa-with-SHA256``) or TLS SignatureScheme names (``rsa_pss_rsae_sha256``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields


@dataclass(frozen=True, slots=True)
class PolicyProfile:
    """One named set of rules. ``source`` says where it comes from (a URL or a file path)."""

    name: str
    description: str = ""
    source: str = ""
    versions: tuple[str, ...] = ()              # allowed protocol versions
    suites: tuple[str, ...] = ()                # allowed cipher suites (TLS 1.3 ones too), IANA names
    forbidden_suites: tuple[str, ...] = ()      # never allowed, whatever ``suites`` says
    groups: tuple[str, ...] = ()                # allowed key-exchange groups, IANA names
    key_types: tuple[str, ...] = ()             # allowed leaf key types: RSA, EC, Ed25519, Ed448, DSA
    curves: tuple[str, ...] = ()                # allowed curves of an EC leaf key
    min_rsa_bits: int = 0                       # leaf RSA (and DSA) key
    min_ec_bits: int = 0                        # leaf EC key
    min_dh_bits: int = 0                        # DHE parameters (explicit primes and ffdhe groups)
    signature_algorithms: tuple[str, ...] = ()  # allowed signature on the leaf
    max_cert_lifetime_days: int = 0             # notAfter - notBefore of the leaf
    expiry_thresholds: tuple[float, ...] = ()   # days-left thresholds for cert.expiring; () = the scan's own
    hsts_required: bool = False                 # HTTPS answers carry Strict-Transport-Security
    hsts_min_max_age: int = 0                   # seconds; checked when the header is present
    ocsp_stapling_required: bool = False        # when the leaf names an OCSP responder
    allowed_issuers: tuple[str, ...] = ()       # substring of, or RFC 4514 attributes in, the leaf's issuer
    server_preference_required: bool = False    # the server imposes its own suite order
    forward_secrecy_required: bool = False      # every accepted suite has forward secrecy
    aead_required: bool = False                 # every accepted suite is AEAD

    @classmethod
    def rule_names(cls) -> tuple[str, ...]:
        """The fields that are rules (everything but name, description and source), in declaration order."""
        return tuple(f.name for f in fields(cls) if f.name not in ("name", "description", "source"))


MAX_AGE = re.compile(r'^\s*max-age\s*=\s*"?(\d+)"?\s*$', re.IGNORECASE)


def hsts_max_age(header: str | None) -> int | None:
    """The ``max-age`` of a Strict-Transport-Security header in seconds; None when absent or malformed (RFC 6797
    6.1: exactly one max-age, each directive at most once; browsers ignore a header that breaks this).

    The same reading as ``tlsward.rules.http.hsts_max_age`` (a test keeps them in step); it lives here too
    because ``tlsward.policy`` may import only the model."""
    if header is None:
        return None
    parts = header.split(";")
    ages = [m.group(1) for part in parts if (m := MAX_AGE.match(part))]
    directives = [part.split("=", 1)[0].strip().lower() for part in parts if part.strip()]
    if len(ages) != 1 or len(set(directives)) != len(directives):
        return None
    return int(ages[0])
