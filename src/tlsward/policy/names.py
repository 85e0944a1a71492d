"""Canonical spellings for what a policy names: versions, suites, groups, key types, curves, signatures.

Each ``canonical_*`` function returns the canonical name, or None when the name is unknown (the loader turns
that into a one-line error naming the file and the key).
"""

from __future__ import annotations

import re

from tlsward.model.registry import cipher_by_name, group_by_name

VERSION = re.compile(r"^(ssl|tls)\s*v?\s*(\d)(?:[._](\d))?$")


def canonical_version(name: str) -> str | None:
    """``TLSv1``, ``tls1.0``, ``TLS1_2``, ``TLSv1.3``, ``SSLv3`` ... → ``TLSv1.0`` ... ``SSLv3``."""
    match = VERSION.match(name.strip().lower())
    if match is None:
        return None
    family, major, minor = match.group(1), int(match.group(2)), int(match.group(3) or 0)
    if family == "ssl" and major in (2, 3) and minor == 0:
        return f"SSLv{major}"
    if family == "tls" and major == 1 and minor <= 3:
        return f"TLSv1.{minor}"
    return None


def canonical_suite(name: str) -> str | None:
    """The IANA name of a cipher suite given by IANA, Java (``SSL_``) or OpenSSL name; None for unknown
    names and for signalling values (SCSVs), which are not ciphers."""
    suite = cipher_by_name(name)
    return suite.name if suite is not None and not suite.signaling else None


def canonical_group(name: str) -> str | None:
    """The IANA name of a named group given by IANA name or alias (``prime256v1``, ``P-256``, ``X25519``)."""
    group = group_by_name(name)
    return group.name if group is not None else None


def canonical_curve(name: str) -> str | None:
    """An elliptic curve for a certificate key: an ECDHE group of the registry (``prime256v1`` → ``secp256r1``)."""
    group = group_by_name(name)
    return group.name if group is not None and group.kind == "ecdhe" else None


KEY_TYPES = {"rsa": "RSA", "ec": "EC", "ecdsa": "EC", "dsa": "DSA", "ed25519": "Ed25519", "ed448": "Ed448"}


def canonical_key_type(name: str) -> str | None:
    """``rsa`` → ``RSA``, ``ecdsa``/``ec`` → ``EC``, ``ed25519`` → ``Ed25519`` (``CertificateFacts.key_type``)."""
    return KEY_TYPES.get(name.strip().lower())


# X.509 signature algorithm names as tlsward's certificate facts spell them (pyca/cryptography's OID names).
X509_SIGNATURES = (
    "md5WithRSAEncryption", "sha1WithRSAEncryption", "sha224WithRSAEncryption", "sha256WithRSAEncryption",
    "sha384WithRSAEncryption", "sha512WithRSAEncryption", "rsassaPss", "ecdsa-with-SHA1", "ecdsa-with-SHA224",
    "ecdsa-with-SHA256", "ecdsa-with-SHA384", "ecdsa-with-SHA512", "dsa-with-sha1", "dsa-with-sha224",
    "dsa-with-sha256", "ed25519", "ed448", "ML-DSA-44", "ML-DSA-65", "ML-DSA-87",
)
_X509_BY_KEY = {name.lower(): name for name in X509_SIGNATURES} | {"rsassa-pss": "rsassaPss"}

# TLS SignatureScheme names (RFC 8446 4.2.3) → the X.509 algorithm and hash a leaf signed that way carries.
SIGNATURE_SCHEMES: dict[str, tuple[str, str | None]] = {
    "rsa_pkcs1_sha1": ("sha1WithRSAEncryption", "sha1"),
    "rsa_pkcs1_sha256": ("sha256WithRSAEncryption", "sha256"),
    "rsa_pkcs1_sha384": ("sha384WithRSAEncryption", "sha384"),
    "rsa_pkcs1_sha512": ("sha512WithRSAEncryption", "sha512"),
    "ecdsa_sha1": ("ecdsa-with-SHA1", "sha1"),
    "ecdsa_secp256r1_sha256": ("ecdsa-with-SHA256", "sha256"),
    "ecdsa_secp384r1_sha384": ("ecdsa-with-SHA384", "sha384"),
    "ecdsa_secp521r1_sha512": ("ecdsa-with-SHA512", "sha512"),
    "rsa_pss_rsae_sha256": ("rsassaPss", "sha256"),
    "rsa_pss_rsae_sha384": ("rsassaPss", "sha384"),
    "rsa_pss_rsae_sha512": ("rsassaPss", "sha512"),
    "rsa_pss_pss_sha256": ("rsassaPss", "sha256"),
    "rsa_pss_pss_sha384": ("rsassaPss", "sha384"),
    "rsa_pss_pss_sha512": ("rsassaPss", "sha512"),
    "ed25519": ("ed25519", None),
    "ed448": ("ed448", None),
}


def canonical_signature(name: str) -> str | None:
    """An X.509 signature algorithm name (canonical spelling) or a TLS SignatureScheme name (lower case)."""
    key = name.strip().lower()
    return _X509_BY_KEY.get(key) or (key if key in SIGNATURE_SCHEMES else None)


def signature_allowed(allowed: tuple[str, ...], algorithm: str, hash_name: str | None) -> bool:
    """Does a leaf signed with ``algorithm`` (X.509 name) and ``hash_name`` match one of the allowed names?"""
    algorithm_key = _X509_BY_KEY.get(algorithm.lower(), algorithm).lower()
    for name in allowed:
        scheme = SIGNATURE_SCHEMES.get(name.lower())
        if scheme is None:
            if name.lower() == algorithm_key:
                return True
        elif scheme[0].lower() == algorithm_key and (scheme[1] is None or scheme[1] == (hash_name or "").lower()):
            return True
    return False


_ATTRIBUTE_ALIASES = {"COMMONNAME": "CN", "ORGANIZATIONNAME": "O", "ORGANIZATIONALUNITNAME": "OU",
                      "COUNTRYNAME": "C", "LOCALITYNAME": "L", "STATEORPROVINCENAME": "ST",
                      "DOMAINCOMPONENT": "DC", "2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.6": "C"}


def dn_attributes(text: str) -> set[tuple[str, str]] | None:
    """An RFC 4514 distinguished name as a set of (TYPE, value) pairs, types upper-cased and aliased
    (``organizationName`` → ``O``), values case-folded; multi-valued RDNs (``+``) are split. None when the
    text is not a DN (a part without ``=``)."""
    pairs: set[tuple[str, str]] = set()
    for part in _split_unescaped(text, ",+"):
        if "=" not in part:
            return None
        kind, _, value = part.partition("=")
        kind = kind.strip().upper()
        if not kind:
            return None
        pairs.add((_ATTRIBUTE_ALIASES.get(kind, kind), _unescape(value.strip()).casefold()))
    return pairs or None


def issuer_allowed(patterns: tuple[str, ...], issuer: str) -> bool:
    """Is ``issuer`` (an RFC 4514 string) matched by one pattern? A pattern that parses as a DN matches when
    all its attributes are in the issuer (``O=Let's Encrypt`` matches ``CN=R11,O=Let's Encrypt,C=US``);
    any other pattern is a case-insensitive substring."""
    issuer_pairs = dn_attributes(issuer) or set()
    for pattern in patterns:
        wanted = dn_attributes(pattern)
        if wanted is not None and wanted <= issuer_pairs:
            return True
        if pattern.casefold() in issuer.casefold():
            return True
    return False


def _split_unescaped(text: str, separators: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in separators:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)
