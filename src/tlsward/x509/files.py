"""The bytes of one file → the certificates and private keys in it, or a :class:`FileProblem` saying why not.

Why here: discovery walks directories full of material in every format that tools have ever written (PEM
bundles, traditional and PKCS#8 keys, encrypted keys, DER, PKCS#12, Java keystores), and nothing outside this
ring should know pyca/cryptography's or pyjks's loaders and their exceptions. The format is read from the
content, never trusted from the extension (``.crt`` files are PEM as often as DER; ``.pem`` files hold keys).

Nothing here raises: a broken PEM block, garbage, a truncated DER or a wrong password each become a
:class:`FileProblem` that names the path (and the line of the PEM block where there is one). Keys are
identified by the SHA-256 of their SubjectPublicKeyInfo, in the form of ``CertificateFacts.spki_sha256``, so
that a key and its certificate pair by plain equality.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shlex
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_private_key,
    load_pem_private_key,
    pkcs7,
    pkcs12,
)
from cryptography.utils import CryptographyDeprecationWarning

from tlsward.model.certificate import CertificateFacts
from tlsward.model.discovery import FileFormat, FileProblem, FoundCertificate, FoundKey
from tlsward.model.errors import CertificateError
from tlsward.model.findings import Finding, Remediation, spec_for
from tlsward.x509.facts import facts_from_der

try:  # pyjks reads JKS and JCEKS keystores; without it those files are reported, not parsed.
    import jks as _jks  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - pyjks is a declared dependency
    _jks = None

__all__ = [
    "JAVA_DEFAULT_PASSWORD",
    "ParsedFile",
    "der_end",
    "der_header",
    "file_problem",
    "parse_file",
    "sniff_format",
    "spki_sha256",
]

JAVA_DEFAULT_PASSWORD = "changeit"  # noqa: S105 - the JDK's cacerts password, tried on keystores when none is given

_JKS_MAGIC = b"\xfe\xed\xfe\xed"
_JCEKS_MAGIC = b"\xce\xce\xce\xce"
_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 #]{1,64})-----")
_CERTIFICATE_LABELS = frozenset({b"CERTIFICATE", b"X509 CERTIFICATE", b"TRUSTED CERTIFICATE"})
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"DSA PRIVATE KEY",
                         b"ENCRYPTED PRIVATE KEY"})
_PKCS7_LABELS = frozenset({b"PKCS7", b"PKCS #7 SIGNED DATA", b"CMS"})
_REASON_LIMIT = 160


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """Everything one file holds. ``format`` is None when the content is none of the formats we read.

    ``holds_private_key`` is true as soon as the file contains private key material, also when it could not
    be opened (encrypted with a password we do not have): exposure matters either way.
    """

    path: str
    format: FileFormat | None
    certificates: tuple[FoundCertificate, ...] = ()
    keys: tuple[FoundKey, ...] = ()
    problems: tuple[FileProblem, ...] = ()
    holds_private_key: bool = False


@dataclass(slots=True)
class _Collector:
    """What parsing one file accumulates before it is frozen into a :class:`ParsedFile`."""

    path: str
    mode: int | None
    format: FileFormat | None = None
    certificates: list[FoundCertificate] = field(default_factory=list)
    keys: list[FoundKey] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    holds_private_key: bool = False

    def certificate(self, fmt: FileFormat, index: int, der: bytes, alias: str | None = None,
                    line: int | None = None, confirm: str = "") -> None:
        try:
            facts: CertificateFacts = facts_from_der(der)
        except CertificateError as exc:
            what = f"certificate {index + 1}" + (f" ({alias})" if alias else "")
            self.unparseable(f"{what} cannot be parsed: {exc}", line=line,
                             confirm=confirm or _confirm_certificate(self.path, fmt))
            return
        self.certificates.append(FoundCertificate(self.path, fmt, index, facts, der, alias))

    def key(self, fmt: FileFormat, index: int, key: PrivateKeyTypes) -> None:
        self.holds_private_key = True
        key_type, key_bits = _key_type(key)
        self.keys.append(FoundKey(self.path, fmt, index, spki_sha256(key), key_type, key_bits, self.mode))

    def unparseable(self, what: str, *, line: int | None = None, confirm: str = "") -> None:
        self.problems.append(file_problem(
            "file.unparseable", self.path, what, line=line,
            confirm=confirm or f"file {_q(self.path)}",
            fix="replace the file with an intact copy from where it came from (the CA's download, the ACME "
                "client's archive, the keystore backup), or remove it if nothing uses it",
        ))

    def wrong_password(self, what: str, *, confirm: str, line: int | None = None) -> None:
        self.problems.append(file_problem(
            "file.wrong_password", self.path, what, line=line, confirm=confirm,
            fix="give discovery the file's password (its password options), or re-export the file with a "
                "password that your deployment records",
        ))

    def freeze(self) -> ParsedFile:
        return ParsedFile(self.path, self.format, tuple(self.certificates), tuple(self.keys),
                          tuple(self.problems), self.holds_private_key)


def file_problem(finding_id: str, path: str, what: str, *, confirm: str, fix: str,
                 line: int | None = None) -> FileProblem:
    """A catalogued finding about one file: severity and title from the catalogue, the path in the evidence."""
    spec = spec_for(finding_id)
    where = f"{path} line {line}" if line is not None else path
    finding = Finding(spec.id, spec.severity, spec.title, f"{where}: {what}", Remediation(confirm=confirm, fix=fix))
    return FileProblem(path, line, finding)


def spki_sha256(key: PrivateKeyTypes) -> str:
    """Base64 SHA-256 of the key's SubjectPublicKeyInfo: the form of ``CertificateFacts.spki_sha256``."""
    spki = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def sniff_format(data: bytes) -> FileFormat | None:
    """The format the content claims, from its first bytes; None when it claims none we read.

    Cheap on purpose (no parsing): for callers deciding whether bytes are worth a full :func:`parse_file`.
    """
    head = data[:4]
    if head in (_JKS_MAGIC, _JCEKS_MAGIC):
        return "jks"
    if b"-----BEGIN " in data:
        return "pem"
    if data[:1] == b"\x30":
        return "pkcs12" if _der_kind(data) == "pkcs12" else "der"
    return None


def parse_file(path: str, data: bytes, *, passwords: Sequence[str | bytes] = (), mode: int | None = None,
               hint: str | None = None) -> ParsedFile:
    """Every certificate and private key in ``data`` (the bytes of ``path``), and a problem per item that failed.

    ``passwords`` are tried in order on encrypted keys, PKCS#12 files and keystores. With none given a
    PKCS#12 file is tried with no password and with the empty one, a Java keystore with ``changeit``.
    ``mode`` (the file's permission bits) is copied onto each :class:`FoundKey`. ``hint`` is the file's
    extension (``.p12``), used only when DER content does not say what it is: the content decides.
    """
    out = _Collector(path, mode)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            _parse(out, data, tuple(passwords), (hint or "").lower())
    except Exception as exc:   # the contract is "never raises": one odd file must not stop a walk of 100,000
        out.unparseable(f"cannot be parsed ({_reason(exc)})")
    return out.freeze()


def _parse(out: _Collector, data: bytes, passwords: tuple[str | bytes, ...], hint: str) -> None:
    if not data.strip():
        out.unparseable(f"the file is empty ({len(data)} bytes), no certificate or key in it")
        return
    head = data[:4]
    if head in (_JKS_MAGIC, _JCEKS_MAGIC):
        out.format = "jks"
        _parse_keystore(out, data, passwords, "jks" if head == _JKS_MAGIC else "jceks")
    elif b"-----BEGIN " in data:
        out.format = "pem"
        _parse_pem(out, data, passwords)
    elif data[:1] == b"\x30":
        _parse_der(out, data, passwords, hint)
    else:
        out.unparseable(f"neither PEM, DER, PKCS#12 nor a Java keystore (starts with bytes {data[:8].hex()})")


# --- PEM -------------------------------------------------------------------------------------------------------


def _parse_pem(out: _Collector, data: bytes, passwords: tuple[str | bytes, ...]) -> None:
    """Each BEGIN/END block in turn; a broken block is reported at its BEGIN line and the rest still read."""
    position = counted = 0
    line = 1
    certificate_index = key_index = 0
    while (begin := _BEGIN.search(data, position)) is not None:
        label = begin.group(1)
        end_marker = b"-----END " + label + b"-----"
        end = data.find(end_marker, begin.end())
        following = _BEGIN.search(data, begin.end())
        line += data.count(b"\n", counted, begin.start())   # counted on from the last block: linear in the file
        counted = begin.start()
        name = label.decode("ascii")
        if end < 0 or (following is not None and following.start() < end):
            if label in _CERTIFICATE_LABELS or label in _KEY_LABELS or label in _PKCS7_LABELS:
                if label in _KEY_LABELS:
                    out.holds_private_key = True
                out.unparseable(f"the {name} block has no END line (the file is cut short or blocks are mixed up)",
                                line=line, confirm=_confirm_pem(out.path, label))
            position = begin.end()
            continue
        position = end + len(end_marker)
        block = data[begin.start():position]
        if label in _CERTIFICATE_LABELS:
            _pem_certificate(out, block, begin.end() - begin.start(), label, certificate_index, line)
            certificate_index += 1
        elif label in _KEY_LABELS:
            _pem_key(out, block, label, key_index, line, passwords)
            key_index += 1
        elif label in _PKCS7_LABELS:
            try:
                certificates = pkcs7.load_pem_pkcs7_certificates(block)
            except (ValueError, UnsupportedAlgorithm) as exc:
                out.unparseable(f"the {name} block cannot be parsed ({_reason(exc)})", line=line,
                                confirm=f"openssl pkcs7 -in {_q(out.path)} -print_certs -noout")
                continue
            for certificate in certificates:
                out.certificate("pem", certificate_index, certificate.public_bytes(Encoding.DER), line=line)
                certificate_index += 1
        # Other blocks (PUBLIC KEY, CERTIFICATE REQUEST, X509 CRL, EC PARAMETERS...) hold no certificate or key.


def _pem_certificate(out: _Collector, block: bytes, header_length: int, label: bytes, index: int, line: int) -> None:
    body = block[header_length:block.rindex(b"-----END ")]
    try:
        der = binascii.a2b_base64(b"".join(body.split()), strict_mode=True)
    except binascii.Error as exc:
        out.unparseable(f"certificate {index + 1}: the {label.decode()} block is not valid base64 ({exc})",
                        line=line, confirm=_confirm_pem(out.path, label))
        return
    if label == b"TRUSTED CERTIFICATE":   # OpenSSL's trusted form: the certificate, then its trust settings
        der = der[:der_end(der) or len(der)]
    out.certificate("pem", index, der, line=line, confirm=_confirm_pem(out.path, label))


def _pem_key(out: _Collector, block: bytes, label: bytes, index: int, line: int,
             passwords: tuple[str | bytes, ...]) -> None:
    out.holds_private_key = True
    confirm = _confirm_pem(out.path, label)
    encrypted = label == b"ENCRYPTED PRIVATE KEY" or b"Proc-Type: 4,ENCRYPTED" in block
    if not encrypted:
        try:
            out.key("pem", index, load_pem_private_key(block, None, unsafe_skip_rsa_key_validation=True))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            out.unparseable(f"private key {index + 1}: the {label.decode()} block cannot be parsed ({_reason(exc)})",
                            line=line, confirm=confirm)
        return
    if not passwords:
        out.wrong_password(f"private key {index + 1} is encrypted and no password was given", line=line,
                           confirm=confirm)
        return
    failure: BaseException | None = None
    for password in passwords:
        try:
            key = load_pem_private_key(block, _bytes(password), unsafe_skip_rsa_key_validation=True)
        except (ValueError, TypeError) as exc:
            failure = failure or exc
            continue
        except UnsupportedAlgorithm as exc:
            out.unparseable(f"private key {index + 1} is encrypted with an algorithm we cannot read "
                            f"({_reason(exc)})", line=line, confirm=confirm)
            return
        out.key("pem", index, key)
        return
    if _looks_malformed(failure):
        out.unparseable(f"private key {index + 1}: the {label.decode()} block cannot be parsed ({_reason(failure)})",
                        line=line, confirm=confirm)
    else:
        out.wrong_password(f"private key {index + 1} is encrypted and does not open {_with_given(passwords)}",
                           line=line, confirm=confirm)


# --- DER and PKCS#12 --------------------------------------------------------------------------------------------


def _parse_der(out: _Collector, data: bytes, passwords: tuple[str | bytes, ...], hint: str) -> None:
    """One DER object: a certificate, a private key (PKCS#8 or traditional), a PKCS#7 bundle or PKCS#12."""
    end = der_end(data)
    if end is None:
        out.format = "der"
        out.unparseable("starts like DER but its header is malformed", confirm=_openssl_asn1parse(out.path))
        return
    kind = _der_kind(data) or _kind_from_hint(hint)
    out.format = "pkcs12" if kind == "pkcs12" else "der"
    if end > len(data):
        out.unparseable(f"truncated: its DER header announces {end} bytes but the file has {len(data)}",
                        confirm=_openssl_asn1parse(out.path))
        if kind in ("pkcs8", "encrypted_pkcs8", "rsa", "ec", "pkcs12"):
            out.holds_private_key = True
        return
    der = data[:end]
    if kind == "pkcs12":
        _parse_pkcs12(out, der, passwords)
    elif kind in ("pkcs8", "rsa", "ec", "encrypted_pkcs8"):
        _der_key(out, der, passwords, kind == "encrypted_pkcs8")
    elif kind == "pkcs7":
        try:
            certificates = pkcs7.load_der_pkcs7_certificates(der)
        except (ValueError, UnsupportedAlgorithm) as exc:
            out.unparseable(f"a DER PKCS#7 bundle that cannot be parsed ({_reason(exc)})",
                            confirm=f"openssl pkcs7 -inform DER -in {_q(out.path)} -print_certs -noout")
            return
        for index, certificate in enumerate(certificates):
            out.certificate("der", index, certificate.public_bytes(Encoding.DER))
    elif kind == "certificate":
        if _is_crl_or_request(der):
            return   # signed like a certificate, but a CRL or CSR: nothing to inventory, nothing wrong
        out.certificate("der", 0, der, confirm=_confirm_certificate(out.path, "der"))
    else:
        out.unparseable("DER data that is neither a certificate, a private key, PKCS#7 nor PKCS#12",
                        confirm=_openssl_asn1parse(out.path))


def _der_key(out: _Collector, der: bytes, passwords: tuple[str | bytes, ...], encrypted: bool) -> None:
    out.holds_private_key = True
    confirm = f"openssl pkey -inform DER -in {_q(out.path)} -noout"
    if not encrypted:
        try:
            out.key("der", 0, load_der_private_key(der, None, unsafe_skip_rsa_key_validation=True))
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            out.unparseable(f"a DER private key that cannot be parsed ({_reason(exc)})", confirm=confirm)
        return
    if not passwords:
        out.wrong_password("the DER private key is encrypted and no password was given", confirm=confirm)
        return
    for password in passwords:
        try:
            out.key("der", 0, load_der_private_key(der, _bytes(password), unsafe_skip_rsa_key_validation=True))
        except (ValueError, TypeError, UnsupportedAlgorithm):
            continue
        return
    out.wrong_password(f"the DER private key is encrypted and does not open {_with_given(passwords)}", confirm=confirm)


def _parse_pkcs12(out: _Collector, der: bytes, passwords: tuple[str | bytes, ...]) -> None:
    """PKCS#12 from OpenSSL, Windows or Java's keytool. cryptography cannot tell a wrong password from damaged
    content; the outer structure has already been checked, so a failure with every password is the password."""
    confirm = f"openssl pkcs12 -info -in {_q(out.path)} -noout"
    candidates: tuple[bytes | None, ...] = tuple(_bytes(p) for p in passwords) or (None, b"")
    failure: BaseException | None = None
    for password in candidates:
        try:
            bundle = pkcs12.load_pkcs12(der, password)
        except (ValueError, TypeError) as exc:
            failure = failure or exc
            continue
        except UnsupportedAlgorithm as exc:
            out.holds_private_key = True
            out.unparseable(f"PKCS#12 encrypted with an algorithm we cannot read ({_reason(exc)})", confirm=confirm)
            return
        items = ([bundle.cert] if bundle.cert is not None else []) + list(bundle.additional_certs)
        for index, item in enumerate(items):
            alias = item.friendly_name.decode("utf-8", "replace") if item.friendly_name else None
            out.certificate("pkcs12", index, item.certificate.public_bytes(Encoding.DER), alias, confirm=confirm)
        if bundle.key is not None:
            out.key("pkcs12", 0, bundle.key)
        return
    out.holds_private_key = True   # cannot tell; PKCS#12 files exist to carry keys
    if passwords:
        out.wrong_password(f"the PKCS#12 file does not open {_with_given(passwords)}", confirm=confirm)
    else:
        detail = f" ({_reason(failure)})" if failure is not None and "password" not in str(failure).lower() else ""
        out.wrong_password(f"the PKCS#12 file is protected by a password and none was given{detail}",
                           confirm=confirm)


# --- Java keystores ---------------------------------------------------------------------------------------------


def _parse_keystore(out: _Collector, data: bytes, passwords: tuple[str | bytes, ...], store_type: str) -> None:
    """JKS and JCEKS through pyjks. Trusted certificates are stored in clear, so they are read even when no
    password verifies the store; private key entries need their password."""
    confirm = f"keytool -list -v -storetype {store_type.upper()} -keystore {_q(out.path)}"
    if _jks is None:
        out.unparseable(f"a {store_type.upper()} keystore, and the pyjks library that reads them is not installed",
                        confirm=confirm)
        return
    candidates = tuple(_text(p) for p in passwords) or (JAVA_DEFAULT_PASSWORD,)
    store: Any = None
    for password in candidates:   # the integrity check is one SHA-1: cheap, unlike decrypting a JCEKS key
        try:
            store = _jks.KeyStore.loads(data, password, try_decrypt_keys=False)
        except _jks.KeystoreSignatureException:
            continue
        except Exception as exc:
            out.unparseable(f"a {store_type.upper()} keystore that cannot be parsed ({_reason(exc)})",
                            confirm=confirm)
            return
        candidates = (password, *(p for p in candidates if p != password))   # key passwords usually match it
        break
    verified = store is not None
    if store is None:
        try:
            store = _jks.KeyStore.loads(data, None, try_decrypt_keys=False)
        except Exception as exc:
            out.unparseable(f"a {store_type.upper()} keystore that cannot be parsed ({_reason(exc)})",
                            confirm=confirm)
            return
    certificate_index = key_index = 0
    locked: list[str] = []
    for alias, entry in store.entries.items():
        if isinstance(entry, _jks.PrivateKeyEntry):
            out.holds_private_key = True
            if not entry.is_decrypted():
                for password in candidates:
                    try:
                        entry.decrypt(password)
                    except Exception:   # noqa: S112 - a wrong password is the expected failure; try the next
                        continue
                    break
            for cert_type, cert_der in _chain(entry):
                if cert_type == "X.509":
                    out.certificate("jks", certificate_index, bytes(cert_der), str(alias), confirm=confirm)
                    certificate_index += 1
            if entry.is_decrypted():
                try:
                    key = load_der_private_key(bytes(entry.pkey_pkcs8), None, unsafe_skip_rsa_key_validation=True)
                except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                    out.unparseable(f"the private key of entry {alias!r} cannot be parsed ({_reason(exc)})",
                                    confirm=confirm)
                else:
                    out.key("jks", key_index, key)
            else:
                locked.append(str(alias))
            key_index += 1
        elif isinstance(entry, _jks.TrustedCertEntry) and entry.type == "X.509":
            out.certificate("jks", certificate_index, bytes(entry.cert), str(alias), confirm=confirm)
            certificate_index += 1
    if locked:
        names = ", ".join(repr(a) for a in locked)
        given = "no password was given" if not passwords else f"it does not open {_with_given(passwords)}"
        out.wrong_password(f"the private key of entry {names} stays locked: {given}", confirm=confirm)
    elif not verified and passwords:
        out.wrong_password(f"the keystore does not verify {_with_given(passwords)} "
                           "(its certificates were read without the integrity check)", confirm=confirm)


def _chain(entry: Any) -> list[tuple[str, bytes]]:
    """A private key entry's certificate chain; pyjks hides every attribute of a still-locked entry."""
    try:
        chain = entry.cert_chain
    except Exception:
        return []
    return [(str(t), bytes(d)) for t, d in chain or ()]


# --- helpers ----------------------------------------------------------------------------------------------------


def der_header(data: bytes, offset: int) -> tuple[int, int, int] | None:
    """(tag, content start, content end) of the DER element at ``offset``; None when the header is cut or
    malformed. Indefinite lengths (BER, from some PKCS#12 writers) run to the end of the data."""
    if offset + 2 > len(data):
        return None
    tag, length = data[offset], data[offset + 1]
    offset += 2
    if length == 0x80:
        return tag, offset, len(data)
    if length & 0x80:
        size = length & 0x7F
        if size > 4 or offset + size > len(data):
            return None
        length = int.from_bytes(data[offset:offset + size], "big")
        offset += size
    return tag, offset, offset + length


def der_end(data: bytes) -> int | None:
    """Where the outer DER element ends (possibly past the data: truncated), None if its header is malformed."""
    header = der_header(data, 0)
    return header[2] if header is not None and header[0] == 0x30 else None


def _der_kind(data: bytes) -> str | None:
    """What an outer SEQUENCE holds, from the tags of its first two elements (no parsing)."""
    outer = der_header(data, 0)
    if outer is None or outer[0] != 0x30:
        return None
    first = der_header(data, outer[1])
    if first is None:
        return None
    tag, start, end = first
    second = der_header(data, end)
    second_tag = second[0] if second is not None else None
    if tag == 0x30:
        return "encrypted_pkcs8" if second_tag == 0x04 else "certificate"
    if tag == 0x06:
        return "pkcs7"
    if tag == 0x02 and end - start == 1:
        version = data[start]
        if version == 3 and second_tag == 0x30:
            return "pkcs12"
        if version in (0, 1) and second_tag == 0x30:
            return "pkcs8"
        if version == 0 and second_tag == 0x02:
            return "rsa"   # or a traditional DSA key: the same loader reads both
        if version == 1 and second_tag == 0x04:
            return "ec"
    return None


def _kind_from_hint(hint: str) -> str | None:
    return {".p12": "pkcs12", ".pfx": "pkcs12", ".key": "pkcs8", ".p7b": "pkcs7", ".p7c": "pkcs7"}.get(hint)


def _is_crl_or_request(der: bytes) -> bool:
    for loader in (x509.load_der_x509_crl, x509.load_der_x509_csr):
        try:
            loader(der)
        except ValueError:
            continue
        return True
    return False


def _key_type(key: PrivateKeyTypes) -> tuple[str, int]:
    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "EC", key.curve.key_size
    if isinstance(key, dsa.DSAPrivateKey):
        return "DSA", key.key_size
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PrivateKey):
        return "Ed448", 456
    if isinstance(key, x25519.X25519PrivateKey):
        return "X25519", 256
    if isinstance(key, x448.X448PrivateKey):
        return "X448", 448
    return type(key).__name__, 0


def _looks_malformed(exc: BaseException | None) -> bool:
    """cryptography says "Bad decrypt. Incorrect password?" for a wrong password; anything else is damage."""
    text = str(exc).lower() if exc is not None else ""
    return bool(text) and "password" not in text and "decrypt" not in text


def _with_given(passwords: Sequence[str | bytes]) -> str:
    """How many passwords were tried, never which."""
    return "with the password given" if len(passwords) == 1 else f"with any of the {len(passwords)} passwords given"


def _bytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else password


def _text(password: str | bytes) -> str:
    return password if isinstance(password, str) else password.decode("utf-8", "replace")


def _q(path: str) -> str:
    return shlex.quote(path)


def _confirm_certificate(path: str, fmt: FileFormat) -> str:
    inform = " -inform DER" if fmt == "der" else ""
    return f"openssl x509{inform} -in {_q(path)} -noout -subject -enddate"


def _confirm_pem(path: str, label: bytes) -> str:
    if label in _KEY_LABELS:
        return f"openssl pkey -in {_q(path)} -noout"
    if label in _PKCS7_LABELS:
        return f"openssl pkcs7 -in {_q(path)} -print_certs -noout"
    return f"openssl storeutl -noout -certs {_q(path)}"


def _openssl_asn1parse(path: str) -> str:
    return f"openssl asn1parse -inform DER -in {_q(path)}"


def _reason(exc: BaseException | None) -> str:
    """A library message cut down to one short line (no FAQ links, no Rust debug structures)."""
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" See https://", 1)[0].split(" {", 1)[0]
    return text if len(text) <= _REASON_LIMIT else text[:_REASON_LIMIT - 3] + "..."
