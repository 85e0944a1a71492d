"""Read one trust store of any kind a host carries into a :class:`LoadedStore`: the report's
:class:`~tlsward.model.truststores.StoreInfo` and the :class:`~tlsward.x509.trust.TrustStore` that path
validation anchors to.

Why one module for every format: comparing stores ("works with curl, fails from Java") only means something if
each is read the way its clients read it. A PEM bundle is all or nothing (OpenSSL refuses a CAfile with one broken
block); a hashed directory is read entry by entry (OpenSSL looks each CA up lazily, so one bad link costs only that
CA); a Java keystore anchors only its ``trustedCertEntry`` entries; an NSS database holds certificates and, apart
from them, trust objects, and only those marked as trusted delegators for TLS servers are anchors.

Nothing here raises on bad input: a missing, unreadable, corrupt, empty or wrong-password store becomes
``StoreInfo.problem``, one line that names the path. Parsing ~150 roots costs ~10 ms, so parsed stores are cached
by path, modification time and size, as :mod:`tlsward.x509.trust` does.
"""

from __future__ import annotations

import binascii
import contextlib
import datetime as dt
import functools
import hashlib
import os
import re
import sqlite3
import stat
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID

from tlsward.model.truststores import RootInfo, StoreInfo, StoreKind
from tlsward.x509.files import JAVA_DEFAULT_PASSWORD, der_end, der_header, sniff_format
from tlsward.x509.trust import TrustStore

try:  # pyjks reads JKS and JCEKS keystores (a declared dependency, as for tlsward.x509.files)
    import jks as _jks  # type: ignore[import-untyped, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover
    _jks = None

__all__ = [
    "CLIENTS",
    "LoadedStore",
    "loaded_store",
    "node_extra_store",
    "node_store",
    "read_bundle",
    "read_hashed_dir",
    "read_java_keystore",
    "read_nss_db",
    "read_store",
    "root_info",
]

# Who reads each kind of store, in plain words (discovery refines these per store: which JDKs, which venv).
CLIENTS: dict[StoreKind, str] = {
    "system-bundle": "curl, wget, git, Python ssl (OpenSSL's default CA file)",
    "system-dir": "OpenSSL's default CA directory: openssl s_client, Ruby, PHP, libpq",
    "java": "Java apps on the default truststore: Tomcat, Maven, Gradle, Jenkins",
    "certifi": "Python requests, httpx (certifi) in that environment",
    "node": "Node.js programs (https, fetch) without their own ca option",
    "nss": "NSS clients: Chrome/Chromium (~/.pki/nssdb), Firefox (its profile)",
    "file": "clients given it as their CA (CAfile, truststore, NSS -d)",
}

MAX_STORE_BYTES = 64 * 1024 * 1024   # the largest real bundle is ~300 KB, a big keystore a few MB
_PEM_CERT = re.compile(
    rb"-----BEGIN (TRUSTED |X509 )?CERTIFICATE-----(.*?)-----END (?:TRUSTED |X509 )?CERTIFICATE-----", re.DOTALL)
_PEM_BEGIN = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----")
_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")
_JKS_MAGIC = (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce")   # JKS, JCEKS
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)

# NSS (pkcs11n.h): object class, attribute types and trust values, as stored in cert9.db's nssPublic table.
CKO_CERTIFICATE = 0x1
CKO_NSS_TRUST = 0xCE534353
CKA_CLASS = 0x0
CKA_VALUE = 0x11
CKA_ISSUER = 0x81
CKA_SERIAL_NUMBER = 0x82
CKA_TRUST_SERVER_AUTH = 0xCE536358
CKA_CERT_SHA1_HASH = 0xCE5363B4
CKT_NSS_TRUSTED_DELEGATOR = 0xCE534352
CKT_NSS_NOT_TRUSTED = 0xCE53435A
_NSS_NULL = b"\xa5\x00\x5a"   # sdb's marker for an attribute present with an empty value


# --- the result ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadedStore:
    """A store as the report sees it (``info``) and as validation uses it (``trust``: None when the store is
    unreadable or holds no anchor, since nothing can be trusted through it)."""

    info: StoreInfo
    trust: TrustStore | None

    @property
    def roots(self) -> tuple[x509.Certificate, ...]:
        return self.trust.roots if self.trust is not None else ()


def root_info(cert: x509.Certificate) -> RootInfo:
    """The report's view of one anchor: fingerprints of the certificate and of its key, subject, expiry, operator."""
    return _root_info(cert)


@functools.lru_cache(maxsize=8192)
def _root_info(cert: x509.Certificate) -> RootInfo:
    """Cached per certificate: the Mozilla list is reused by every NSS database and compared across stores."""
    der = cert.public_bytes(Encoding.DER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            subject = cert.subject.rfc4514_string()
            organization = next((str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)),
                                "")
        except ValueError:   # a subject cryptography cannot render: still an anchor, named by its fingerprint
            subject, organization = "", ""
        not_after = cert.not_valid_after_utc
    return RootInfo(sha256=hashlib.sha256(der).hexdigest(), spki_sha256=hashlib.sha256(_spki_der(cert)).hexdigest(),
                    subject=subject, not_after=not_after, organization=organization)


def loaded_store(*, store_id: str, kind: StoreKind, path: str, label: str,
                 certificates: Iterable[x509.Certificate] = (), version: str = "", clients: str | None = None,
                 modified: dt.datetime | None = None, notes: Sequence[str] = (), problem: str = "") -> LoadedStore:
    """A store from its anchors (deduplicated by fingerprint, first occurrence kept). With a ``problem`` the
    anchors are dropped: a store that cannot be read as a whole trusts nothing (the model's contract)."""
    unique: dict[str, x509.Certificate] = {}
    if not problem:
        for cert in certificates:
            unique.setdefault(root_info(cert).sha256, cert)
    roots = tuple(unique.values())
    trust: TrustStore | None = None
    if roots:
        try:
            trust = TrustStore(label, roots)
        except Exception as exc:   # cryptography refusing a root for verification: the store cannot anchor
            roots, problem = (), f"{path}: its roots cannot be used for validation ({_reason(exc)})"
    info = StoreInfo(id=store_id, kind=kind, path=path, label=label, version=version,
                     clients=CLIENTS[kind] if clients is None else clients,
                     roots=tuple(root_info(c) for c in roots), modified=modified, problem=problem,
                     notes=tuple(notes))
    return LoadedStore(info, trust)


# --- readers ------------------------------------------------------------------------------------------------------


class _Problem(Exception):
    """A store that cannot be read: the message is the one line ``StoreInfo.problem`` shows."""


@dataclass(frozen=True)
class _Parsed:
    """What a reader extracted, cached by the file's identity: anchors and remarks."""

    certificates: tuple[x509.Certificate, ...]
    notes: tuple[str, ...] = ()
    problem: str = ""


@dataclass(frozen=True)
class _Meta:
    store_id: str
    kind: StoreKind
    path: str
    label: str
    version: str
    clients: str | None

    def store(self, parsed: _Parsed, modified: dt.datetime | None, notes: Sequence[str] = ()) -> LoadedStore:
        return loaded_store(store_id=self.store_id, kind=self.kind, path=self.path, label=self.label,
                            certificates=parsed.certificates, version=self.version, clients=self.clients,
                            modified=modified, notes=(*parsed.notes, *notes), problem=parsed.problem)

    def failed(self, problem: str, modified: dt.datetime | None = None) -> LoadedStore:
        return self.store(_Parsed((), problem=problem), modified)


def _meta(path: Path | str, kind: StoreKind, store_id: str | None, label: str | None, version: str,
          clients: str | None) -> _Meta:
    return _Meta(store_id or f"{kind}:{path}", kind, str(path), label or f"{kind} {path}", version, clients)


def read_bundle(path: Path | str, *, kind: StoreKind = "file", store_id: str | None = None, label: str | None = None,
                version: str = "", clients: str | None = None) -> LoadedStore:
    """A PEM bundle (the OS CA file, certifi's ``cacert.pem``, a CAfile) or a single DER certificate."""
    meta = _meta(path, kind, store_id, label, version, clients)
    try:
        st = _stat_file(Path(path))
    except _Problem as exc:
        return meta.failed(str(exc))
    return meta.store(_bundle_cached(str(path), _identity(st)), _mtime(st))


@functools.lru_cache(maxsize=64)
def _bundle_cached(path: str, identity: tuple[int, ...]) -> _Parsed:
    """Keyed by the file's identity too (see :func:`_identity`), so an edited or replaced file is read again."""
    del identity
    try:
        return _Parsed(tuple(_bundle_certificates(path, _read(Path(path)))))
    except _Problem as exc:
        return _Parsed((), problem=str(exc))


def _bundle_certificates(path: str, data: bytes) -> list[x509.Certificate]:
    """All or nothing, as OpenSSL and Python's ``load_verify_locations`` read a CAfile."""
    if not data.strip():
        raise _Problem(f"{path}: empty ({len(data)} bytes), no certificate in it")
    if b"-----BEGIN " not in data:
        if data[:1] != b"\x30":
            raise _Problem(f"{path}: neither a PEM bundle nor a DER certificate (starts with bytes {data[:8].hex()})")
        return [_load_der(data, f"{path}: the DER certificate")]
    blocks = list(_PEM_CERT.finditer(data))
    begins = len(_PEM_BEGIN.findall(data))
    if not blocks:
        raise _Problem(f"{path}: PEM data without any CERTIFICATE block")
    if begins != len(blocks):
        raise _Problem(f"{path}: certificate {len(blocks) + 1} of {begins} has no END line "
                       "(the file is cut short); OpenSSL refuses the whole file")
    certificates: list[x509.Certificate] = []
    for number, block in enumerate(blocks, start=1):
        what = f"{path}: certificate {number} of {len(blocks)}"
        try:
            der = binascii.a2b_base64(b"".join(block.group(2).split()), strict_mode=True)
        except binascii.Error:
            raise _Problem(f"{what} is not valid base64; OpenSSL refuses the whole file") from None
        if block.group(1) == b"TRUSTED ":   # OpenSSL's trusted form: the certificate, then its trust settings
            der = der[:der_end(der) or len(der)]
        certificates.append(_load_der(der, what))
    return certificates


def read_hashed_dir(path: Path | str, *, kind: StoreKind = "system-dir", store_id: str | None = None,
                    label: str | None = None, version: str = "", clients: str | None = None) -> LoadedStore:
    """An OpenSSL CApath directory: the ``<subject hash>.<n>`` entries, deduplicated by fingerprint. A broken entry
    is a note (OpenSSL only misses that CA); an unreadable directory, or one without entries, is the problem."""
    meta = _meta(path, kind, store_id, label, version, clients)
    directory = Path(path)
    try:
        st = directory.stat()
        if not stat.S_ISDIR(st.st_mode):
            return meta.failed(f"{directory}: not a directory")
        names = sorted(e.name for e in os.scandir(directory) if _HASHED_NAME.fullmatch(e.name))
        stamps: list[tuple[str, int, int]] = []
        for name in names:
            try:
                entry = (directory / name).stat()
            except OSError:
                stamps.append((name, -1, -1))
            else:
                stamps.append((name, entry.st_mtime_ns, entry.st_size))
    except OSError as exc:
        return meta.failed(f"{directory}: cannot read the directory ({exc.strerror or exc})")
    if not names:
        return meta.failed(f"{directory}: no hashed certificate entries (<subject hash>.<n>) in it", _mtime(st))
    return meta.store(_hashed_cached(str(directory), st.st_mtime_ns, tuple(stamps)), _mtime(st))


@functools.lru_cache(maxsize=16)
def _hashed_cached(directory: str, mtime_ns: int, stamps: tuple[tuple[str, int, int], ...]) -> _Parsed:
    del mtime_ns
    certificates: list[x509.Certificate] = []
    broken: list[str] = []
    for name, _, _ in stamps:
        try:
            certificates.extend(_bundle_certificates(f"{directory}/{name}", _read(Path(directory, name))))
        except _Problem as exc:
            broken.append(str(exc))
    notes = [f"{len(stamps)} hashed entries"]
    if broken:
        notes.append(f"{len(broken)} unreadable entries skipped (OpenSSL misses only those CAs), first: {broken[0]}")
    if not certificates:
        return _Parsed((), problem=f"{directory}: none of its {len(stamps)} hashed entries holds a readable "
                                   f"certificate ({broken[0] if broken else 'empty'})")
    return _Parsed(tuple(certificates), tuple(notes))


def read_java_keystore(path: Path | str, *, password: str | None = None, kind: StoreKind = "java",
                       store_id: str | None = None, label: str | None = None, version: str = "",
                       clients: str | None = None) -> LoadedStore:
    """A JKS, JCEKS or PKCS#12 keystore used as a truststore (Java's ``cacerts``). Passwords tried: ``password``,
    then ``changeit``, then the empty one and none. Only trusted-certificate entries are anchors: the chain of a
    private key entry is what the application presents, not what it trusts."""
    meta = _meta(path, kind, store_id, label, version, clients)
    try:
        st = _stat_file(Path(path))
    except _Problem as exc:
        return meta.failed(str(exc))
    parsed = _keystore_cached(str(path), _identity(st), password)
    return meta.store(parsed, _mtime(st))


@functools.lru_cache(maxsize=32)
def _keystore_cached(path: str, identity: tuple[int, ...], password: str | None) -> _Parsed:
    del identity
    try:
        data = _read(Path(path))
        if not data.strip():
            raise _Problem(f"{path}: empty ({len(data)} bytes), not a keystore")
        candidates = tuple(dict.fromkeys(p for p in (password, JAVA_DEFAULT_PASSWORD, "") if p is not None))
        if data[:4] in _JKS_MAGIC:
            return _jks_anchors(path, data, candidates)
        if sniff_format(data) == "pkcs12":
            return _pkcs12_anchors(path, data, candidates)
        raise _Problem(f"{path}: not a Java keystore (JKS, JCEKS or PKCS#12; starts with bytes {data[:8].hex()})")
    except _Problem as exc:
        return _Parsed((), problem=str(exc))


def _jks_anchors(path: str, data: bytes, passwords: tuple[str, ...]) -> _Parsed:
    """Trusted entries are stored in clear, so Java (and we) read them even when no password checks the store."""
    store_type = "JCEKS" if data[:4] == _JKS_MAGIC[1] else "JKS"
    if _jks is None:   # pragma: no cover - pyjks is a declared dependency
        raise _Problem(f"{path}: a {store_type} keystore, and pyjks (which reads them) is not installed")
    store: Any = None
    notes: list[str] = []
    for candidate in passwords:
        try:
            store = _jks.KeyStore.loads(data, candidate, try_decrypt_keys=False)
        except _jks.KeystoreSignatureException:
            continue
        except Exception as exc:
            raise _Problem(f"{path}: a {store_type} keystore that cannot be parsed ({_reason(exc)})") from None
        break
    if store is None:
        try:
            store = _jks.KeyStore.loads(data, None, try_decrypt_keys=False)
        except Exception as exc:
            raise _Problem(f"{path}: a {store_type} keystore that cannot be parsed ({_reason(exc)})") from None
        notes.append(f"integrity not verified: it does not open with {_tried(passwords)}; Java reads it like this "
                     "when no trustStorePassword is set")
    anchors: list[x509.Certificate] = []
    keys = 0
    for alias, entry in store.entries.items():
        if isinstance(entry, _jks.TrustedCertEntry) and entry.type == "X.509":
            anchors.append(_load_der(bytes(entry.cert), f"{path}: trusted entry {alias!r}"))
        elif isinstance(entry, _jks.PrivateKeyEntry | _jks.SecretKeyEntry):
            keys += 1
    if keys:
        notes.append(f"{keys} key entries not counted: only trustedCertEntry entries are anchors")
    if not anchors:
        raise _Problem(f"{path}: a {store_type} keystore without any trusted certificate entry")
    return _Parsed(tuple(anchors), (f"{store_type} keystore", *notes))


def _pkcs12_anchors(path: str, data: bytes, passwords: tuple[str, ...]) -> _Parsed:
    """Java writes trusted entries as named certificate bags; the chain of a key entry is the key's certificate
    and unnamed bags, which are not anchors."""
    end = der_end(data)
    if end is None or end > len(data):
        raise _Problem(f"{path}: a PKCS#12 keystore that is truncated or malformed")
    candidates: tuple[bytes | None, ...] = (*(p.encode() for p in passwords), None)
    bundle: Any = None
    for candidate in candidates:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CryptographyDeprecationWarning)
                bundle = pkcs12.load_pkcs12(data[:end], candidate)
        except (ValueError, TypeError):
            continue
        except Exception as exc:
            raise _Problem(f"{path}: a PKCS#12 keystore that cannot be read ({_reason(exc)})") from None
        break
    if bundle is None:
        raise _Problem(f"{path}: the PKCS#12 keystore does not open with {_tried(passwords)} "
                       "(wrong password, or damaged)")
    notes = ["PKCS#12 keystore"]
    items = list(bundle.additional_certs)
    if bundle.key is not None:
        items = [item for item in items if item.friendly_name]
        notes.append("a private key entry and its chain not counted: only trusted certificate entries are anchors")
    elif bundle.cert is not None:   # no key: a lone certificate is a trusted one
        items.insert(0, bundle.cert)
    anchors = [item.certificate for item in items]
    if not anchors:
        raise _Problem(f"{path}: a PKCS#12 keystore without any trusted certificate entry")
    return _Parsed(tuple(anchors), tuple(notes))


def _tried(passwords: tuple[str, ...]) -> str:
    """The passwords tried, named without revealing a given one."""
    names = ["the given password" if p not in (JAVA_DEFAULT_PASSWORD, "") else p or "an empty password"
             for p in passwords]
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]


def read_nss_db(path: Path | str, *, builtins: TrustStore | None = None, kind: StoreKind = "nss",
                store_id: str | None = None, label: str | None = None, version: str = "",
                clients: str | None = None) -> LoadedStore:
    """An NSS ``sql:`` database directory (cert9.db), read with sqlite directly (no NSS library needed).

    Anchors are the certificates whose NSS trust object says "trusted delegator" for TLS server auth (certutil
    ``-t C,,``). The database never holds the built-in roots (libnssckbi): pass Mozilla's list as ``builtins`` and
    the anchors are those plus the database's own, minus the ones the database explicitly distrusts (``-t p,,``).
    ``path`` may also name the cert9.db file itself.
    """
    directory = Path(path)
    if directory.name == "cert9.db":
        directory = directory.parent
    meta = _meta(directory, kind, store_id, label, version, clients)
    database = directory / "cert9.db"
    try:
        st = _stat_file(database)
    except _Problem as exc:
        if not directory.is_dir():
            return meta.failed(f"{directory}: not an NSS database directory ({_missing(directory)})")
        if (directory / "cert8.db").exists():
            return meta.failed(f"{directory}: a legacy NSS database (cert8.db, dbm format); only the sql: format "
                               f"(cert9.db) is read (certutil -L -d sql:{directory} converts it)")
        if not database.exists():
            return meta.failed(f"{directory}: no cert9.db in it, not an NSS sql: database")
        return meta.failed(str(exc))
    parsed = _nss_cached(str(database), _identity(st))
    if parsed.problem:
        return meta.store(_Parsed((), problem=parsed.problem), _mtime(st))
    anchors = list(parsed.anchors)
    notes = [f"{parsed.certificates} certificates in the database: {len(parsed.anchors)} trusted as CAs for TLS "
             f"servers, {parsed.distrusted} explicitly distrusted"]
    if builtins is not None:
        kept = [root for root in builtins.roots if not parsed.distrusts(root)]
        anchors = kept + anchors
        dropped = len(builtins.roots) - len(kept)
        notes.append(f"NSS built-in roots (libnssckbi) counted from Mozilla's list ({builtins.name}): "
                     f"{len(kept)} roots" + (f", {dropped} distrusted by the database left out" if dropped else ""))
    else:
        notes.append("NSS built-in roots (libnssckbi) not counted: only the database's own anchors")
    return meta.store(_Parsed(tuple(anchors)), _mtime(st), notes)


@dataclass(frozen=True)
class _NssParsed:
    anchors: tuple[x509.Certificate, ...] = ()
    distrusted_sha1: frozenset[bytes] = frozenset()
    distrusted_issuer_serial: frozenset[tuple[bytes, bytes]] = frozenset()
    distrusted: int = 0
    certificates: int = 0
    problem: str = ""

    def distrusts(self, cert: x509.Certificate) -> bool:
        """Matched as NSS matches trust to certificates: by SHA-1 of the DER, or by issuer and serial number."""
        if not self.distrusted_sha1 and not self.distrusted_issuer_serial:
            return False
        if hashlib.sha1(cert.public_bytes(Encoding.DER), usedforsecurity=False).digest() in self.distrusted_sha1:
            return True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CryptographyDeprecationWarning)
            return (cert.issuer.public_bytes(), _der_integer(cert.serial_number)) in self.distrusted_issuer_serial


_NSS_COLUMNS = {"class": CKA_CLASS, "value": CKA_VALUE, "issuer": CKA_ISSUER, "serial": CKA_SERIAL_NUMBER,
                "server": CKA_TRUST_SERVER_AUTH, "sha1": CKA_CERT_SHA1_HASH}


@functools.lru_cache(maxsize=16)
def _nss_cached(database: str, identity: tuple[int, ...]) -> _NssParsed:
    del identity
    try:
        rows = _nss_rows(database)
    except _Problem as exc:
        return _NssParsed(problem=str(exc))
    certificates: list[tuple[bytes, bytes, bytes]] = []   # (DER, issuer, serial) as NSS stored them
    trust: list[tuple[int | None, bytes | None, bytes | None, bytes | None]] = []
    for row in rows:
        cls = _ulong(row["class"])
        if cls == CKO_CERTIFICATE and _blob(row["value"]):
            certificates.append((_blob(row["value"]) or b"", _blob(row["issuer"]) or b"", _blob(row["serial"]) or b""))
        elif cls == CKO_NSS_TRUST:
            trust.append((_ulong(row["server"]), _blob(row["sha1"]), _blob(row["issuer"]), _blob(row["serial"])))
    trusted_sha1: set[bytes] = set()
    trusted_issuer_serial: set[tuple[bytes, bytes]] = set()
    distrusted_sha1: set[bytes] = set()
    distrusted_issuer_serial: set[tuple[bytes, bytes]] = set()
    for server, sha1, issuer, serial in trust:
        if server == CKT_NSS_TRUSTED_DELEGATOR:
            sha1s, pairs = trusted_sha1, trusted_issuer_serial
        elif server == CKT_NSS_NOT_TRUSTED:
            sha1s, pairs = distrusted_sha1, distrusted_issuer_serial
        else:
            continue
        if sha1:
            sha1s.add(sha1)
        if issuer and serial:
            pairs.add((issuer, serial))
    anchors: list[x509.Certificate] = []
    for der, issuer, serial in certificates:
        sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
        if sha1 in distrusted_sha1 or (issuer, serial) in distrusted_issuer_serial:
            continue
        if sha1 in trusted_sha1 or (issuer, serial) in trusted_issuer_serial:
            with contextlib.suppress(_Problem):   # an unparseable row is no anchor for NSS either
                anchors.append(_load_der(der, database))
    return _NssParsed(tuple(anchors), frozenset(distrusted_sha1), frozenset(distrusted_issuer_serial),
                      sum(1 for t in trust if t[0] == CKT_NSS_NOT_TRUSTED), len(certificates))


def _nss_rows(database: str) -> list[dict[str, Any]]:
    """The objects of cert9.db's nssPublic table; the database is opened read-only (a running browser keeps it)."""
    uri = f"file:{quote(database)}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=2.0)
    except sqlite3.Error as exc:
        raise _Problem(f"{database}: cannot open the NSS database ({_reason(exc)})") from None
    try:
        columns = {row[1] for row in connection.execute("PRAGMA table_info(nssPublic)")}
        if not columns:
            raise _Problem(f"{database}: not an NSS database (no nssPublic table)")
        names = {name: f"a{attribute:x}" for name, attribute in _NSS_COLUMNS.items()}
        missing = [column for column in (names["class"], names["value"]) if column not in columns]
        if missing:
            raise _Problem(f"{database}: not an NSS database (nssPublic has no column {missing[0]})")
        select = ", ".join(f"{column} AS {name}" if column in columns else f"NULL AS {name}"
                           for name, column in names.items())
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(f"SELECT {select} FROM nssPublic")]  # noqa: S608
    except sqlite3.Error as exc:
        raise _Problem(f"{database}: cannot read the NSS database ({_reason(exc)})") from None
    finally:
        connection.close()


def _blob(value: object) -> bytes | None:
    if isinstance(value, bytes | memoryview) and bytes(value) != _NSS_NULL:
        return bytes(value)
    return None


def _ulong(value: object) -> int | None:
    """NSS stores CK_ULONG attributes as 4 bytes, big-endian."""
    data = _blob(value)
    return int.from_bytes(data, "big") if data is not None and len(data) in (4, 8) else None


def node_store(roots: Sequence[str], *, node_path: str, version: str = "", store_id: str | None = None,
               label: str | None = None, clients: str | None = None,
               modified: dt.datetime | None = None) -> LoadedStore:
    """Node's compiled-in roots, as ``require('tls').rootCertificates`` listed them (PEM strings)."""
    meta = _Meta(store_id or f"node:{node_path}", "node", node_path,
                 label or f"Node {version} built-in roots".replace("  ", " "), version, clients)
    certificates: list[x509.Certificate] = []
    skipped = 0
    for pem in roots:
        try:
            certificates.extend(_bundle_certificates(node_path, pem.encode("ascii", "replace")))
        except _Problem:
            skipped += 1
    if not certificates:
        return meta.failed(f"{node_path}: node listed no readable root certificate ({len(roots)} entries)", modified)
    notes = (f"{skipped} of {len(roots)} listed roots could not be parsed",) if skipped else ()
    return meta.store(_Parsed(tuple(certificates), notes), modified)


def node_extra_store(base: LoadedStore, extra_file: Path | str, *, store_id: str | None = None,
                     label: str | None = None) -> LoadedStore:
    """Node with ``NODE_EXTRA_CA_CERTS``: its built-in roots plus the file's. Node only warns about a missing or
    broken file and goes on without it, so that is this store's problem (the CA the file was meant to add is
    not trusted)."""
    info = base.info
    meta = _Meta(store_id or f"{info.id}+NODE_EXTRA_CA_CERTS", "node", info.path,
                 label or f"{info.label} + NODE_EXTRA_CA_CERTS={extra_file}", info.version, info.clients)
    if base.trust is None:
        return meta.failed(info.problem or f"{info.path}: no built-in roots", info.modified)
    extra = read_bundle(extra_file)
    modified = max((m for m in (info.modified, extra.info.modified) if m is not None), default=None)
    if extra.info.problem:
        return meta.failed(f"NODE_EXTRA_CA_CERTS: {extra.info.problem}; Node warns and ignores the file, so its "
                           "CAs are not trusted", modified)
    notes = (*info.notes, f"{len(extra.roots)} extra CAs from NODE_EXTRA_CA_CERTS={extra_file}")
    return meta.store(_Parsed((*base.roots, *extra.roots)), modified, notes)


def read_store(path: Path | str, *, password: str | None = None, builtins: TrustStore | None = None,
               kind: StoreKind | None = None, store_id: str | None = None, label: str | None = None,
               version: str = "", clients: str | None = None) -> LoadedStore:
    """Any store named by path, its kind read from the content: a directory is an NSS database (cert9.db) or a
    hashed directory; a file is a Java keystore (JKS/JCEKS magic, PKCS#12), NSS's cert9.db, or a PEM/DER bundle.
    Without ``kind``, keystores are ``java`` and NSS databases ``nss`` (so the fix printed for them is keytool's or
    certutil's), anything else ``file``."""
    target = Path(path)
    try:
        st = target.stat()
    except OSError as exc:
        return _meta(target, kind or "file", store_id, label, version, clients).failed(
            f"{target}: cannot read ({exc.strerror or exc})")
    if stat.S_ISDIR(st.st_mode) or target.name == "cert9.db":
        if target.name == "cert9.db" or (target / "cert9.db").exists() or (target / "cert8.db").exists():
            return read_nss_db(target, builtins=builtins, kind=kind or "nss", store_id=store_id, version=version,
                               label=label or f"NSS database {target.parent if target.name == 'cert9.db' else target}",
                               clients=clients)
        return read_hashed_dir(target, kind=kind or "file", store_id=store_id,
                               label=label or f"CA directory {target}", version=version, clients=clients)
    head = b""
    with contextlib.suppress(_Problem):
        head = _read(target, limit=64)
    if head[:4] in _JKS_MAGIC or sniff_format(head) == "pkcs12":
        return read_java_keystore(target, password=password, kind=kind or "java", store_id=store_id,
                                  version=version, label=label or f"keystore {target}", clients=clients)
    return read_bundle(target, kind=kind or "file", store_id=store_id, label=label or f"CA file {target}",
                       version=version, clients=clients)


# --- helpers ------------------------------------------------------------------------------------------------------


def _identity(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is edited, replaced or has its permissions changed: the cache key."""
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev


def _stat_file(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except OSError as exc:
        raise _Problem(f"{path}: cannot read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise _Problem(f"{path}: not a regular file")
    return st


def _read(path: Path, limit: int | None = None) -> bytes:
    """One descriptor, non-blocking (a FIFO never hangs the read), regular files only, size-capped. With a
    ``limit``, only the first bytes (to sniff the format)."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise _Problem(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Problem(f"{path}: not a regular file")
        if limit is None and st.st_size > MAX_STORE_BYTES:
            raise _Problem(f"{path}: {st.st_size} bytes, too large for a trust store (limit {MAX_STORE_BYTES})")
        chunks: list[bytes] = []
        remaining = MAX_STORE_BYTES if limit is None else limit
        while remaining > 0 and (chunk := os.read(fd, min(remaining, 1 << 20))):
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise _Problem(f"{path}: cannot read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def _missing(path: Path) -> str:
    try:
        path.stat()
    except OSError as exc:
        return exc.strerror or str(exc)
    return "not a directory"


def _mtime(st: os.stat_result) -> dt.datetime:
    return dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)


def _load_der(der: bytes, what: str) -> x509.Certificate:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        try:
            cert = x509.load_der_x509_certificate(der)
            cert.not_valid_after_utc   # noqa: B018 - parsed lazily by cryptography: fail here, not in a report
        except ValueError as exc:
            raise _Problem(f"{what} cannot be parsed ({_reason(exc)})") from None
    return cert


def _spki_der(cert: x509.Certificate) -> bytes:
    """The SubjectPublicKeyInfo as encoded in the certificate, cut out of the TBS bytes: works for key types
    cryptography cannot load (old DSA parameters, GOST), and is the exact bytes that pin-sha256 hashes."""
    tbs = cert.tbs_certificate_bytes
    outer = der_header(tbs, 0)
    if outer is not None:
        offset, fields = outer[1], 0
        while offset < outer[2] and (element := der_header(tbs, offset)) is not None:
            if element[0] == 0xA0:          # [0] version: not one of the six fields counted below
                offset = element[2]
                continue
            fields += 1
            if fields == 6:                 # serial, signature, issuer, validity, subject, subjectPublicKeyInfo
                return tbs[offset:element[2]]
            offset = element[2]
    try:
        return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    except Exception:   # a TBS we cannot walk and a key cryptography cannot load: the DER stands in, unique
        return cert.public_bytes(Encoding.DER)


def _der_integer(value: int) -> bytes:
    """A DER INTEGER (tag, length, two's complement), the form NSS stores CKA_SERIAL_NUMBER in."""
    body = value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)
    length = len(body)
    if length < 0x80:
        return bytes((0x02, length)) + body
    size = (length.bit_length() + 7) // 8
    return bytes((0x02, 0x80 | size)) + length.to_bytes(size, "big") + body


def _reason(exc: BaseException) -> str:
    """A library message cut down to one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = text.split(" See https://", 1)[0].split(" {", 1)[0]
    return text if len(text) <= 160 else text[:157] + "..."

