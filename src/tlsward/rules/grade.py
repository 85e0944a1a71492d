"""An SSL Labs-style grade for a deep-scanned endpoint, with every reason it is not A+.

Source: Qualys SSL Labs, *SSL Server Rating Guide*, revision 2009r (May 2025), as summarised in the project's
field notes and docs/policy.md:

* score = 30 % protocol + 30 % key exchange + 40 % cipher strength, each 0-100;
* protocol: the average of the best and the worst accepted protocol (SSL 2.0 0, SSL 3.0 80, TLS 1.0 90,
  TLS 1.1 95, TLS 1.2 100, TLS 1.3 100);
* key exchange: by the weakest key exchange a client can end up with, in RSA-equivalent bits (the leaf key,
  DH parameters, ECDHE groups; EC sizes converted by NIST SP 800-57: 256-bit EC ≈ 3072-bit RSA): anonymous 0,
  < 512 20, < 1024 40, < 2048 80, < 4096 90, else 100;
* cipher strength: the average of the best and the worst accepted suite's strength (0 bits 0, < 128 20,
  < 256 80, else 100);
* letter: A ≥ 80, B ≥ 65, C ≥ 50, D ≥ 35, E ≥ 20, else F; then the caps (F, C, B), then A → A+ / A- by
  warnings, then T (trust) and M (name mismatch) replace the letter, keeping it in ``letter_without_trust``.

The score is rounded half up before the letter is read from it, so the printed score and letter agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from tlsward.model.certificate import CertificateFacts
from tlsward.model.deep import AcceptedSuite, DeepScan
from tlsward.model.grade import Grade
from tlsward.model.policy import hsts_max_age
from tlsward.model.registry import CipherSuite, cipher_by_code, cipher_by_name, group_by_name
from tlsward.model.scan import ScanResult
from tlsward.rules.http import HSTS_MIN_AGE

PROTOCOL_SCORES = {"SSLv2": 0, "SSLv3": 80, "TLSv1.0": 90, "TLSv1.1": 95, "TLSv1.2": 100, "TLSv1.3": 100}
LEGACY_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2")   # renegotiation exists up to TLS 1.2
LETTERS = ("A", "B", "C", "D", "E", "F")                       # best first; caps take the worse of two
# Findings that mean "not trusted" (T), for results whose certificate facts were not kept: id → (cause, sentence).
TRUST_FINDINGS = {
    "cert.expired": ("expired", "the certificate has expired"),
    "cert.not_yet_valid": ("not_yet_valid", "the certificate is not valid yet"),
    "cert.self_signed": ("self_signed", "the certificate is self-signed"),
    "cert.revoked": ("revoked", "the certificate has been revoked"),
    "chain.expired_intermediate": ("expired_intermediate", "an intermediate certificate in the chain has expired"),
    "chain.untrusted": ("untrusted", "the chain does not lead to a trusted root"),
}


def protocol_score(versions: Iterable[str]) -> int:
    """Average of the best and the worst accepted protocol; 0 when none is known."""
    scores = [PROTOCOL_SCORES[v] for v in versions if v in PROTOCOL_SCORES]
    return round((max(scores) + min(scores)) / 2) if scores else 0


def key_exchange_score(bits: int) -> int:
    """From the weakest key exchange, in RSA-equivalent bits."""
    if bits < 512:
        return 20
    if bits < 1024:
        return 40
    if bits < 2048:
        return 80
    if bits < 4096:
        return 90
    return 100


def strength_score(bits: int) -> int:
    """One cipher's symmetric strength."""
    if bits <= 0:
        return 0
    if bits < 128:
        return 20
    if bits < 256:
        return 80
    return 100


def cipher_score(strengths: Iterable[int]) -> int:
    """Average of the best and the worst accepted suite's score; 0 when none is known."""
    scores = [strength_score(bits) for bits in strengths]
    return round((max(scores) + min(scores)) / 2) if scores else 0


def letter_for(score: int) -> str:
    for letter, floor in (("A", 80), ("B", 65), ("C", 50), ("D", 35), ("E", 20)):
        if score >= floor:
            return letter
    return "F"


def ec_rsa_equivalent(bits: int) -> int:
    """NIST SP 800-57 Part 1, table 2: the RSA modulus as strong as an EC key of ``bits``."""
    if bits >= 512:
        return 15360
    if bits >= 384:
        return 7680
    if bits >= 256:
        return 3072
    if bits >= 224:
        return 2048
    if bits >= 160:
        return 1024
    return 512


GROUP_BITS = re.compile(r"(?:secp|sect|brainpoolP|GC)(\d{3})", re.IGNORECASE)
MLKEM_RSA = {"512": 3072, "768": 7680, "1024": 15360}   # ML-KEM-512/768/1024 ≈ AES-128/192/256


def group_rsa_equivalent(name: str) -> int | None:
    """RSA-equivalent bits of a key-exchange group; None when unknown. ffdhe groups are their modulus size;
    hybrids count their stronger half."""
    group = group_by_name(name)
    canonical = group.name if group is not None else name
    lower = canonical.lower()
    if lower.startswith("ffdhe") and lower[5:].isdigit():
        return int(lower[5:])
    if level := re.search(r"(?:mlkem|kyber)(\d+)", lower):
        # ML-KEM alone, or a hybrid, which is as strong as its stronger half: the ML-KEM one in every
        # registered hybrid (X25519MLKEM768: 3072 classical, 7680 post-quantum).
        return MLKEM_RSA.get(level.group(1), 3072)
    if lower in ("x25519", "curve25519"):
        return ec_rsa_equivalent(256)
    if lower in ("x448", "curve448"):
        return ec_rsa_equivalent(448)
    if lower == "curvesm2":
        return ec_rsa_equivalent(256)
    match = GROUP_BITS.search(canonical)
    return ec_rsa_equivalent(int(match.group(1))) if match else None


def leaf_rsa_equivalent(leaf: CertificateFacts) -> int | None:
    if leaf.key_type in ("RSA", "DSA"):
        return leaf.key_bits
    if leaf.key_type == "EC":
        return ec_rsa_equivalent(leaf.key_bits)
    if leaf.key_type == "Ed25519":
        return ec_rsa_equivalent(256)
    if leaf.key_type == "Ed448":
        return ec_rsa_equivalent(448)
    return None


@dataclass(frozen=True, slots=True)
class _KeyExchange:
    bits: int          # RSA-equivalent
    what: str          # "RSA 1024-bit certificate key", "1024-bit DH parameters (TLS_DHE_...)"


def _registry(suite: AcceptedSuite) -> CipherSuite | None:
    return cipher_by_code(suite.code) or cipher_by_name(suite.name)


def _accepted(deep: DeepScan) -> list[tuple[str, AcceptedSuite]]:
    return [(v.version, s) for v in deep.versions if v.accepted for s in v.suites]


def _key_exchanges(result: ScanResult, deep: DeepScan) -> list[_KeyExchange]:
    found: list[_KeyExchange] = []
    if result.chain and (bits := leaf_rsa_equivalent(result.chain[0])) is not None:
        leaf = result.chain[0]
        found.append(_KeyExchange(bits, f"{leaf.key_type} {leaf.key_bits}-bit certificate key"))
    for _, suite in _accepted(deep):
        if suite.dh_bits:
            found.append(_KeyExchange(suite.dh_bits, f"{suite.dh_bits}-bit DH parameters ({suite.name})"))
        if suite.kx_group and (bits := group_rsa_equivalent(suite.kx_group)) is not None:
            found.append(_KeyExchange(bits, f"the {suite.kx_group} group ({suite.name})"))
    for group in deep.groups:
        if group.accepted and (bits := group_rsa_equivalent(group.name)) is not None:
            found.append(_KeyExchange(bits, f"the {group.name} group"))
    return found


def _trust_problems(result: ScanResult) -> list[str]:
    """Why clients would not trust the certificate, from the facts and from the findings the rules gave."""
    causes: dict[str, str] = {}
    leaf = result.chain[0] if result.chain else None
    if leaf is not None and result.scanned_at > leaf.not_after:
        causes["expired"] = f"the certificate expired on {leaf.not_after:%Y-%m-%d}"
    elif leaf is not None and result.scanned_at < leaf.not_before:
        causes["not_yet_valid"] = f"the certificate is valid only from {leaf.not_before:%Y-%m-%d}"
    if leaf is not None and leaf.self_signed:
        causes["self_signed"] = "the certificate is self-signed"
    if result.revocation is not None and result.revocation.status == "revoked":
        causes["revoked"] = "the certificate has been revoked"
    analysis = result.analysis
    if analysis is not None and analysis.expired_intermediates:
        causes["expired_intermediate"] = "an intermediate certificate in the chain has expired"
    for finding in result.findings:
        if finding.id in TRUST_FINDINGS:
            cause, text = TRUST_FINDINGS[finding.id]
            causes.setdefault(cause, text)
    if analysis is not None and not analysis.trusted and not causes:
        reasons = "; ".join(f"{v.store}: {v.reason}" for v in analysis.verdicts if v.reason)
        causes["untrusted"] = "the chain does not lead to a trusted root" + (f" ({reasons})" if reasons else "")
    return list(causes.values())


def _worse(a: str, b: str) -> str:
    return a if LETTERS.index(a) >= LETTERS.index(b) else b


def _names(suites: Iterable[str], limit: int = 4) -> str:
    unique = list(dict.fromkeys(suites))
    more = f" and {len(unique) - limit} more" if len(unique) > limit else ""
    return ", ".join(unique[:limit]) + more


def grade(result: ScanResult) -> Grade | None:
    """The grade of a deep-scanned endpoint; None without ``result.deep`` or when no version was accepted."""
    deep = result.deep
    if deep is None or not deep.accepted_versions:
        return None
    versions = deep.accepted_versions
    accepted = _accepted(deep)
    registry = [(version, suite, _registry(suite)) for version, suite in accepted]
    strengths = [known.strength_bits for _, _, known in registry if known is not None]
    if not registry and result.session is not None and (negotiated := cipher_by_code(result.session.cipher_code)):
        strengths = [negotiated.strength_bits]
    exchanges = _key_exchanges(result, deep)
    weakest = min(exchanges, key=lambda k: k.bits) if exchanges else None
    # The guide: anonymous key exchange scores 0; export key exchange is limited to 512 bits.
    anonymous = [s.name for _, s, known in registry if known is not None and known.authentication == "anon"]
    export = [s.name for _, s, known in registry if known is not None and known.export]
    kx_bits = min([k.bits for k in exchanges] + ([512] if export else []), default=None)
    p_score = protocol_score(versions)
    k_score = 0 if anonymous else key_exchange_score(kx_bits) if kx_bits is not None else 0
    c_score = cipher_score(strengths)
    score = math.floor(0.3 * p_score + 0.3 * k_score + 0.4 * c_score + 0.5)

    caps: list[tuple[str, str]] = []
    # F
    if "SSLv2" in versions:
        caps.append(("F", "SSL 2.0 is supported"))
    if export:
        caps.append(("F", f"export cipher suites are accepted: {_names(export)}"))
    if weakest is not None and weakest.bits < 1024:
        caps.append(("F", f"the weakest key exchange is below 1024 bits: {weakest.what}"))
    if deep.features.secure_renegotiation is False and any(v in LEGACY_VERSIONS for v in versions):
        caps.append(("F", "insecure renegotiation: the server does not support RFC 5746 secure renegotiation"))
    if registry and all(known is not None and known.encryption.startswith("RC4") for _, _, known in registry):
        caps.append(("F", "RC4 is the only cipher the server accepts"))
    # C
    if "TLSv1.2" not in versions and "TLSv1.3" not in versions:
        caps.append(("C", "neither TLS 1.2 nor TLS 1.3 is supported"))
    modern_weak = [f"{s.name} ({v})" for v, s, known in registry if known is not None and v in
                   ("TLSv1.1", "TLSv1.2", "TLSv1.3") and known.encryption.startswith(("RC4", "3DES"))]
    if modern_weak:
        caps.append(("C", f"3DES or RC4 is accepted with TLS 1.1 or newer: {_names(modern_weak)}"))
    # B
    for version, label in (("SSLv3", "SSL 3.0"), ("TLSv1.0", "TLS 1.0"), ("TLSv1.1", "TLS 1.1")):
        if version in versions:
            caps.append(("B", f"{label} is supported"))
    if weakest is not None and 1024 <= weakest.bits < 2048:
        caps.append(("B", f"a key or DH parameters below 2048 bits: {weakest.what}"))
    if accepted and not any(s.forward_secrecy for _, s in accepted):
        caps.append(("B", "no cipher suite with forward secrecy is accepted"))
    if accepted and not any(s.aead for _, s in accepted):
        caps.append(("B", "no AEAD cipher suite (GCM, ChaCha20-Poly1305) is accepted"))
    if result.analysis is not None and result.analysis.incomplete:
        caps.append(("B", "the chain is incomplete (the server does not send its intermediates)"))

    letter = letter_for(score)
    for cap_letter, _ in caps:
        letter = _worse(letter, cap_letter)

    warnings: list[str] = []
    if "TLSv1.3" not in versions:
        warnings.append("TLS 1.3 is not supported")
    warnings.extend(_hsts_warnings(result))
    if letter == "A":
        letter = "A-" if warnings else "A+"

    trust = _trust_problems(result)
    mismatch = (result.analysis is not None and not result.analysis.hostname_matches) or \
        any(f.id == "name.mismatch" for f in result.findings)
    reasons = [f"capped at {cap}: {text}" for cap, text in caps]
    reasons += [f"T (not trusted): {text}" for text in trust]
    if mismatch:
        name = result.analysis.hostname if result.analysis is not None else result.target.name
        reasons.append(f"M (name mismatch): the certificate does not cover {name}")
    without_trust = ""
    if trust or mismatch:
        without_trust, letter = letter, "T" if trust else "M"
    return Grade(letter=letter, score=score, protocol_score=p_score, key_exchange_score=k_score,
                 cipher_score=c_score, caps=tuple(reasons), warnings=tuple(warnings),
                 letter_without_trust=without_trust)


def _hsts_warnings(result: ScanResult) -> list[str]:
    """HSTS matters on HTTPS targets: missing, malformed or shorter than 180 days is a warning."""
    target, http = result.target, result.http
    if not target.speaks_tls or not target.checks_http:
        return []
    if http is None:
        return ["HSTS could not be checked: no HTTP answer over TLS"]
    if http.hsts is None:
        return ["no Strict-Transport-Security (HSTS) header"]
    age = hsts_max_age(http.hsts)
    if age is None:
        return [f"the Strict-Transport-Security header is malformed: {http.hsts!r}"]
    if age < HSTS_MIN_AGE:
        span = f"{age / 86400:.0f} days" if age >= 2 * 86400 else f"{age} seconds"
        return [f"HSTS max-age is {span} (less than 180 days)"]
    return []
