"""RFC 5280 path validation of a presented chain, per trust store, with the cause said in plain English.

Why not just call cryptography's verifier: it answers "no" with one message that mixes causes (a name
mismatch, an expired intermediate and a missing root all read "validation failed"). A person fixing a
server needs the root cause, so validation is split into separate questions:

* **Name.** :mod:`tlsward.x509.hostname` decides ``hostname_matches``. The verifier is built for a name
  the leaf does cover (its first usable SAN), so a wrong certificate does not also read as "untrusted".
* **Time.** Validation runs at ``now``; when it fails and the chain reaches a trusted root, it runs again at
  a moment inside every certificate's validity. Passing then means time is the cause ("expired leaf"...).
  When no such moment exists (an intermediate expired before the leaf began), time is the cause too.
* **Path.** A small path builder of our own (issuer name + signature, verified by hand so SHA-1 chains can
  be diagnosed) walks from the leaf through the presented certificates and says where the chain stops:
  at a self-signed certificate the store does not hold, or at an issuer nobody sent.

Reason strings (``TrustVerdict.reason``, empty when trusted):

* ``self-signed leaf`` / ``root <subject> is not in this store``
* ``unable to find the issuer <issuer> (incomplete chain?)``
* ``expired leaf`` / ``leaf not yet valid`` / ``expired intermediate <subject>`` /
  ``intermediate <subject> not yet valid`` / ``expired root <subject>`` / ``root <subject> not yet valid``
* ``SHA-1 signed leaf`` / ``SHA-1 signed intermediate <subject>`` (also MD5...): forbidden by the verifier
* ``leaf is not for TLS servers (no serverAuth extended key usage)``
* ``leaf has no subjectAltName (names in the Common Name are ignored)``
* otherwise the verifier's own message, cut to one line

``incomplete`` (the server forgot an intermediate) is decided from the presented certificates alone:
follow issuers from the leaf through what was sent. If that reaches a self-signed certificate, the chain is
complete. Otherwise look at the last certificate's missing issuer: it is a *root the server may omit* when a
self-signed certificate with that subject which verifies the signature is in any given store or among
``extra_issuers``; it is an *intermediate* when only non-self-signed certificates like that are known; and
when nothing is known about it, it is taken for a root if its name contains the word "root" (how CAs name
roots; a leaf issued directly by a root is rare and forbidden for public CAs) and for an intermediate
otherwise. ``incomplete`` is True exactly when the missing issuer is judged an intermediate.

The other shape verdicts, all by index into the presented chain: ``in_order`` (each certificate is issued by
the next, by name and signature, up to the first self-signed one; anything after a root is ignored),
``contains_root`` (a self-signed certificate after the leaf), ``expired_intermediates`` (CA certificates
after the leaf, roots included, not valid at ``now``), ``weak_keys`` (RSA/DSA under 2048 bits, EC under
224) and ``weak_signatures`` (MD2/MD4/MD5/SHA-1 signatures on certificates that are not self-signed, whose
own signature no client checks).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, ServerVerifier, Subject, VerificationError

from tlsward.model.certificate import CertificateFacts, ChainAnalysis, TrustVerdict
from tlsward.model.errors import CertificateError
from tlsward.x509.facts import (
    facts_from_der,
    is_self_signed,
    parse_der,
    sha256_fingerprint,
    signature_hash_name,
    signature_verifies,
)
from tlsward.x509.hostname import matches, to_a_labels
from tlsward.x509.trust import TrustStore

__all__ = ["analyse_chain", "issued_by"]

MAX_DEPTH = 8            # cryptography's default maximum chain depth
WEAK_HASHES = frozenset({"md2", "md4", "md5", "sha1"})
_HASH_LABELS = {"md2": "MD2", "md4": "MD4", "md5": "MD5", "sha1": "SHA-1"}
_ROOT_WORD = re.compile(r"\broot\b", re.IGNORECASE)
_ENCOUNTERED = re.compile(r"\s*\(encountered processing <Certificate\(subject=<Name\((.*?)\)>, \.\.\.\)>\)")
_DEBUG_STRUCT = re.compile(r":?\s*\w+ \{.*\}")


@dataclass(frozen=True, slots=True)
class _Cert:
    cert: x509.Certificate
    facts: CertificateFacts


@dataclass(frozen=True, slots=True)
class _Path:
    """Where our own path building from the leaf ended."""

    certs: tuple[x509.Certificate, ...]          # leaf first; includes the trust anchor when one was reached
    end: Literal["anchor", "untrusted-root", "missing-issuer"]


def analyse_chain(
    presented: Sequence[bytes],
    hostname: str,
    stores: Sequence[TrustStore],
    now: dt.datetime,
    extra_issuers: Sequence[bytes] = (),
) -> ChainAnalysis:
    """Verdicts about a chain as the server sent it (DER, leaf first) and against each trust store.

    ``extra_issuers`` are certificates the caller fetched from AIA caIssuers URLs; a store that trusts the
    chain only with them gets ``completed_via_aia=True``. Raises :class:`CertificateError` when no
    certificate was presented or one cannot be parsed.
    """
    if not presented:
        raise CertificateError("no certificates were presented")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    chain = [_Cert(parse_der(der), facts_from_der(der)) for der in presented]
    extras = [parse_der(der) for der in extra_issuers]
    leaf = chain[0]
    certs = [c.cert for c in chain]
    known = [root for store in stores for root in store.roots] + extras

    return ChainAnalysis(
        hostname=hostname,
        hostname_matches=matches(hostname, leaf.facts.dns_names, leaf.facts.ip_addresses),
        leaf_self_signed=leaf.facts.self_signed,
        in_order=_in_order(chain),
        incomplete=_incomplete(certs, known),
        contains_root=any(c.facts.self_signed for c in chain[1:]),
        expired_intermediates=tuple(
            i for i, c in enumerate(chain) if i > 0 and c.facts.is_ca and not c.facts.is_valid_at(now)
        ),
        weak_keys=tuple(i for i, c in enumerate(chain) if _weak_key(c.facts)),
        weak_signatures=tuple(
            i for i, c in enumerate(chain) if c.facts.signature_hash in WEAK_HASHES and not c.facts.self_signed
        ),
        verdicts=tuple(_verdict(store, certs, extras, known, leaf.facts, hostname, now) for store in stores),
    )


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """``issuer``'s subject is ``cert``'s issuer and its key verifies ``cert``'s signature. Never raises."""
    if cert.issuer != issuer.subject:
        return False
    try:
        key = issuer.public_key()
    except Exception:
        return False
    return signature_verifies(cert, key)


# --- chain shape ------------------------------------------------------------------------------------------


def _in_order(chain: Sequence[_Cert]) -> bool:
    """Each certificate is issued by the next one; whatever follows a self-signed root is ignored."""
    for current, following in pairwise(chain):
        if current.facts.self_signed:
            break
        if not issued_by(current.cert, following.cert):
            return False
    return True


def _incomplete(presented: Sequence[x509.Certificate], known: Sequence[x509.Certificate]) -> bool:
    path = _build_path(presented[0], presented[1:], None, None)
    if path.end != "missing-issuer":
        return False
    return not _missing_issuer_is_root(path.certs[-1], known)


def _missing_issuer_is_root(cert: x509.Certificate, known: Iterable[x509.Certificate]) -> bool:
    """Is the issuer nobody sent a root (fine to omit) rather than an intermediate (the server forgot it)?"""
    candidates = [k for k in known if issued_by(cert, k)]
    if candidates:
        return any(is_self_signed(k) for k in candidates)
    return bool(_ROOT_WORD.search(cert.issuer.rfc4514_string()))


def _weak_key(facts: CertificateFacts) -> bool:
    if facts.key_type in ("RSA", "DSA"):
        return facts.key_bits < 2048
    if facts.key_type == "EC":
        return facts.key_bits < 224
    return False


def _build_path(
    leaf: x509.Certificate, pool: Sequence[x509.Certificate], store: TrustStore | None, now: dt.datetime | None
) -> _Path:
    """Follow issuers from the leaf: store roots first (an anchor ends the path), then ``pool``.

    Among several candidate issuers, one valid at ``now`` is preferred (cross-signed intermediates).
    """
    path = [leaf]
    current = leaf
    while len(path) <= MAX_DEPTH:
        if store is not None:
            if current in store:
                return _Path(tuple(path), "anchor")
            anchors = [r for r in store.with_subject(current.issuer) if issued_by(current, r)]
            if anchors:
                return _Path((*path, anchors[0]), "anchor")
        if is_self_signed(current):
            return _Path(tuple(path), "untrusted-root")
        candidates = [c for c in pool if c not in path and issued_by(current, c)]
        if not candidates:
            break
        if now is not None:
            candidates.sort(key=lambda c: not _valid_at(c, now))
        current = candidates[0]
        path.append(current)
    return _Path(tuple(path), "missing-issuer")


def _valid_at(cert: x509.Certificate, when: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= when <= cert.not_valid_after_utc


# --- verdicts ---------------------------------------------------------------------------------------------


def _verdict(
    store: TrustStore,
    presented: Sequence[x509.Certificate],
    extras: Sequence[x509.Certificate],
    known: Sequence[x509.Certificate],
    leaf_facts: CertificateFacts,
    hostname: str,
    now: dt.datetime,
) -> TrustVerdict:
    leaf, intermediates = presented[0], list(presented[1:])
    subjects = _subjects(leaf_facts, hostname)
    result = _verify(store, subjects, now, leaf, intermediates)
    if isinstance(result, list):
        return _trusted(store, result, completed_via_aia=False)
    if extras:
        with_extras = _verify(store, subjects, now, leaf, intermediates + list(extras))
        if isinstance(with_extras, list):
            return _trusted(store, with_extras, completed_via_aia=True)
        intermediates += extras
    reason = _diagnose(store, leaf, intermediates, known, subjects, now, result)
    return TrustVerdict(store=store.name, trusted=False, reason=reason)


def _trusted(store: TrustStore, chain: Sequence[x509.Certificate], *, completed_via_aia: bool) -> TrustVerdict:
    return TrustVerdict(
        store=store.name,
        trusted=True,
        reason="",
        path=tuple(sha256_fingerprint(c) for c in chain),
        effective_expiry=min(c.not_valid_after_utc for c in chain),
        completed_via_aia=completed_via_aia,
    )


def _subjects(leaf: CertificateFacts, hostname: str) -> list[Subject]:
    """Names to build the verifier for: the leaf's own SANs first (so the name is never the failure),
    then the requested host (when the leaf has no usable SAN, the verifier's complaint is the cause)."""
    subjects: list[Subject] = []
    for name in leaf.dns_names:
        # A wildcard SAN is not a host name; any single label in its place is covered by it.
        subjects.append(x509.DNSName("wildcard" + name[1:] if name.startswith("*.") else name))
    for ip in leaf.ip_addresses:
        subjects.append(x509.IPAddress(ipaddress.ip_address(ip)))
    try:
        subjects.append(x509.IPAddress(ipaddress.ip_address(hostname)))
    except ValueError:
        labels = to_a_labels(hostname)
        if labels:
            subjects.append(x509.DNSName(".".join(labels)))
    subjects.append(x509.DNSName("invalid.invalid"))   # last resort: a name the verifier accepts
    return subjects


def _verifier(store: TrustStore, subjects: Sequence[Subject], when: dt.datetime) -> ServerVerifier | str:
    roots = store.verification_store
    if roots is None:
        return "the store holds no roots"
    builder = PolicyBuilder().store(roots).time(when)
    for subject in subjects:
        try:
            return builder.build_server_verifier(subject)
        except ValueError:   # a SAN the verifier will not take as a subject (IDN U-label, underscore...)
            continue
    return "no usable name to validate for"


def _verify(
    store: TrustStore,
    subjects: Sequence[Subject],
    when: dt.datetime,
    leaf: x509.Certificate,
    intermediates: Sequence[x509.Certificate],
) -> list[x509.Certificate] | str:
    """The validated chain (leaf → root), or the verifier's message cut to one line."""
    verifier = _verifier(store, subjects, when)
    if isinstance(verifier, str):
        return verifier
    try:
        return verifier.verify(leaf, list(intermediates))
    except VerificationError as exc:
        return _clean(str(exc))


def _clean(message: str) -> str:
    message = " ".join(message.split())
    message = message.removeprefix("validation failed: ").removeprefix("candidates exhausted: ")
    message = _ENCOUNTERED.sub(r" (\1)", message)
    message = _DEBUG_STRUCT.sub("", message)
    return message if len(message) <= 200 else message[:197] + "..."


def _diagnose(
    store: TrustStore,
    leaf: x509.Certificate,
    pool: Sequence[x509.Certificate],
    known: Sequence[x509.Certificate],
    subjects: Sequence[Subject],
    now: dt.datetime,
    message: str,
) -> str:
    path = _build_path(leaf, pool, store, now)
    last = path.certs[-1]
    if path.end == "untrusted-root":
        return "self-signed leaf" if len(path.certs) == 1 else f"root {_name(last.subject)} is not in this store"
    if path.end == "missing-issuer":
        if _missing_issuer_is_root(last, known):
            return f"root {_name(last.issuer)} is not in this store"
        return f"unable to find the issuer {_name(last.issuer)} (incomplete chain?)"
    stale = [c for c in path.certs if not _valid_at(c, now)]
    if stale:
        start = max(c.not_valid_before_utc for c in path.certs)
        end = min(c.not_valid_after_utc for c in path.certs)
        if start > end:
            return _time_reason(path, stale[0], now)
        retry = _verify(store, subjects, start + (end - start) / 2, leaf, pool)
        if isinstance(retry, list):
            return _time_reason(path, stale[0], now)
        message = retry
    return _explain(message, path)


def _time_reason(path: _Path, cert: x509.Certificate, now: dt.datetime) -> str:
    index = path.certs.index(cert)
    if index == 0:
        who = "leaf"
    elif index == len(path.certs) - 1:
        who = f"root {_name(cert.subject)}"
    else:
        who = f"intermediate {_name(cert.subject)}"
    return f"expired {who}" if now > cert.not_valid_after_utc else f"{who} not yet valid"


def _explain(message: str, path: _Path) -> str:
    """Name the culprit for verifier messages that do not."""
    if message.lower().startswith("forbidden signature algorithm"):
        for index, cert in enumerate(path.certs[:-1]):   # the anchor's own signature is never checked
            hash_name = signature_hash_name(cert)
            if hash_name in WEAK_HASHES:
                label = _HASH_LABELS[hash_name]
                return f"{label} signed leaf" if index == 0 else f"{label} signed intermediate {_name(cert.subject)}"
        return message
    if message.startswith("required EKU not found") and not _serves_tls(path.certs[0]):
        return "leaf is not for TLS servers (no serverAuth extended key usage)"
    if "no subjectAltName" in message and not _has_san(path.certs[0]):
        return "leaf has no subjectAltName (names in the Common Name are ignored)"
    return message


def _has_san(cert: x509.Certificate) -> bool:
    try:
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (x509.ExtensionNotFound, ValueError):
        return False
    return True


def _serves_tls(cert: x509.Certificate) -> bool:
    """No EKU extension means any usage; otherwise serverAuth (or anyExtendedKeyUsage) must be listed."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    except ValueError:
        return False
    return any(oid in (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE) for oid in eku)


def _name(name: x509.Name) -> str:
    return name.rfc4514_string()
