"""Key generation, encrypted key files, and the PKCS#11 signer for a root kept in a token.

cryptography's builders sign only with its own key objects, so a token-held key signs this way: the builder signs
once with a throw-away key of the same algorithm (which fixes the to-be-signed bytes, the algorithm identifier
included), the token signs those bytes, and the signature is put in place of the throw-away one. Only the root
signs like this (itself, the intermediate and the root CRL), so the extra work costs nothing that matters.
"""

from __future__ import annotations

import functools
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes, PublicKeyTypes
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tlsward.model.ca import CaError

KEY_TYPES: tuple[str, ...] = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096", "ed25519")
CA_KEY_TYPES: tuple[str, ...] = ("ecdsa-p256", "ecdsa-p384", "rsa-3072", "rsa-4096")
PKCS11_KEY_TYPES: tuple[str, ...] = ("ecdsa-p256", "ecdsa-p384", "rsa-3072", "rsa-4096")
CURVES: dict[str, ec.EllipticCurve] = {"ecdsa-p256": ec.SECP256R1(), "ecdsa-p384": ec.SECP384R1()}

PrivateKey = CertificateIssuerPrivateKeyTypes


def check_key_type(key_type: str, allowed: tuple[str, ...] = KEY_TYPES, flag: str = "--key-type") -> str:
    if key_type not in allowed:
        raise CaError(f"{flag} {key_type!r}: not one of {', '.join(allowed)}")
    return key_type


def generate_key(key_type: str) -> PrivateKey:
    """A fresh private key of a ``KEY_TYPES`` name."""
    check_key_type(key_type)
    if key_type in CURVES:
        return ec.generate_private_key(CURVES[key_type])
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    return ed25519.Ed25519PrivateKey.generate()


def key_type_of(key: PublicKeyTypes) -> str:
    """The ``KEY_TYPES``-style name of a public key (``rsa-2048``, ``ecdsa-p256``; other sizes and curves are named
    as they are, so that policy checks can refuse them by name)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ecdsa-p256", "secp384r1": "ecdsa-p384", "secp521r1": "ecdsa-p521"}.get(
            key.curve.name, f"ecdsa-{key.curve.name}")
    if isinstance(key, rsa.RSAPublicKey):
        return f"rsa-{key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519"
    return type(key).__name__.removesuffix("PublicKey").lower() or "unknown"


SignatureHash = hashes.SHA256 | hashes.SHA384


def signature_hash(key_type: str) -> SignatureHash | None:
    """The hash a CA key of this type signs with (None for Ed25519, which hashes itself)."""
    if key_type == "ed25519":
        return None
    if key_type == "ecdsa-p384":
        return hashes.SHA384()
    return hashes.SHA256()


# -- files ---------------------------------------------------------------------------------------------------------


def write_atomic(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``: a reader sees
    the old file or the new one, never half of one; the mode is set before the content arrives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def private_key_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def write_private_key(path: Path, key: PrivateKey, passphrase: bytes | None) -> None:
    """PKCS#8 PEM, encrypted (AES-256-CBC, scrypt/PBKDF2 as cryptography chooses) when a passphrase is given; 0600."""
    write_atomic(path, private_key_pem(key, passphrase), mode=0o600)


def load_private_key(path: Path, passphrase: bytes | None, *, what: str) -> PrivateKey:
    """A CA key file; CaError naming the file for a missing file, a wrong or missing passphrase, or garbage."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaError(f"{what} key {path}: cannot read it ({exc.strerror or exc})") from None
    encrypted = b"ENCRYPTED" in data
    if encrypted and not passphrase:
        raise CaError(f"{what} key {path} is encrypted: give its passphrase (--passphrase-file or "
                      "$TLSWARD_CA_PASSPHRASE)")
    try:
        key = serialization.load_pem_private_key(data, passphrase if encrypted else None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        if encrypted:
            raise CaError(f"{what} key {path}: wrong passphrase") from None
        raise CaError(f"{what} key {path}: not a PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise CaError(f"{what} key {path}: a {type(key).__name__} cannot sign certificates here")
    return key


def load_certificate(path: Path, *, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise CaError(f"{what} certificate {path}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:
        raise CaError(f"{what} certificate {path}: not a PEM certificate") from None


# -- PKCS#11 -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pkcs11Config:
    """Where a token-held root key lives: the PKCS#11 module, the token's label, the key's label, and the user PIN
    (never written to ca.toml: from ``--pkcs11-pin-file`` or ``$TLSWARD_CA_PKCS11_PIN``)."""

    module: str
    token_label: str
    key_label: str = "tlsward-root"
    pin: str | None = field(default=None, repr=False)


@functools.cache
def _pkcs11_lib(module: str) -> Any:
    """One loaded module per process (a PKCS#11 module may be initialised once)."""
    import pkcs11

    try:
        return pkcs11.lib(module)
    except Exception as exc:   # the binding raises its own and OS errors alike
        raise CaError(f"PKCS#11 module {module}: cannot load it ({exc or type(exc).__name__})") from None


class Pkcs11Signer:
    """A private key inside a PKCS#11 token. ``sign(data)`` returns the X.509 encoding of the signature (DER
    ECDSA-Sig-Value for EC, the raw block for RSA PKCS#1 v1.5)."""

    def __init__(self, config: Pkcs11Config, key_type: str) -> None:
        self.config = config
        self.key_type = check_key_type(key_type, PKCS11_KEY_TYPES)
        self._public: PublicKeyTypes | None = None

    def _session(self) -> Any:
        import pkcs11

        lib = _pkcs11_lib(self.config.module)
        try:
            token = lib.get_token(token_label=self.config.token_label)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise CaError(f"PKCS#11 token {self.config.token_label!r} in {self.config.module}: not found "
                          f"({type(exc).__name__})") from None
        try:
            return token.open(user_pin=self.config.pin, rw=True)
        except pkcs11.exceptions.PKCS11Error as exc:
            raise CaError(f"PKCS#11 token {self.config.token_label!r}: cannot log in ({type(exc).__name__}; "
                          "is the PIN right? --pkcs11-pin-file or $TLSWARD_CA_PKCS11_PIN)") from None

    def generate(self) -> None:
        """Create the key pair in the token (refused if a key with this label exists: never overwrite a root)."""
        import pkcs11
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        with self._session() as session:
            existing = list(session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY,
                                                 Attribute.LABEL: self.config.key_label}))
            if existing:
                raise CaError(f"PKCS#11 token {self.config.token_label!r} already holds a key labelled "
                              f"{self.config.key_label!r}; choose another --pkcs11-key-label")
            try:
                if self.key_type in CURVES:
                    curve = "secp256r1" if self.key_type == "ecdsa-p256" else "secp384r1"
                    params = session.create_domain_parameters(
                        KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
                    params.generate_keypair(store=True, label=self.config.key_label)
                else:
                    session.generate_keypair(KeyType.RSA, int(self.key_type[4:]), store=True,
                                             label=self.config.key_label)
            except pkcs11.exceptions.PKCS11Error as exc:
                raise CaError(f"PKCS#11 token {self.config.token_label!r}: cannot generate a {self.key_type} key "
                              f"({type(exc).__name__})") from None

    def public_key(self) -> PublicKeyTypes:
        if self._public is None:
            from pkcs11 import KeyType, ObjectClass
            from pkcs11.util.ec import encode_ec_public_key
            from pkcs11.util.rsa import encode_rsa_public_key

            with self._session() as session:
                key = self._find(session, ObjectClass.PUBLIC_KEY)
                der = (encode_ec_public_key(key) if key.key_type == KeyType.EC else encode_rsa_public_key(key))
            self._public = serialization.load_der_public_key(der)
        return self._public

    def _find(self, session: Any, object_class: Any) -> Any:
        import pkcs11

        try:
            return session.get_key(object_class=object_class, label=self.config.key_label)
        except (pkcs11.exceptions.NoSuchKey, pkcs11.exceptions.MultipleObjectsReturned) as exc:
            raise CaError(f"PKCS#11 token {self.config.token_label!r}: no single key labelled "
                          f"{self.config.key_label!r} ({type(exc).__name__})") from None

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism, ObjectClass

        digest_algorithm = signature_hash(self.key_type)
        assert digest_algorithm is not None
        with self._session() as session:
            key = self._find(session, ObjectClass.PRIVATE_KEY)
            if self.key_type in CURVES:
                digest = hashes.Hash(digest_algorithm)
                digest.update(data)
                raw = bytes(key.sign(digest.finalize(), mechanism=Mechanism.ECDSA))
                half = len(raw) // 2
                return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
            mechanism = Mechanism.SHA384_RSA_PKCS if isinstance(digest_algorithm, hashes.SHA384) \
                else Mechanism.SHA256_RSA_PKCS
            return bytes(key.sign(data, mechanism=mechanism))


Signer = PrivateKey | Pkcs11Signer


@functools.cache
def _stand_in(key_type: str) -> PrivateKey:
    """A throw-away key whose signature is replaced at once. Its size never shows (the to-be-signed bytes name the
    algorithm, not the key length), so an RSA stand-in is small: generating a 3072-bit one costs seconds."""
    if key_type.startswith("rsa-"):
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (never published; see above)
    return generate_key(key_type)


def _tlv(data: bytes, offset: int) -> tuple[int, int]:
    """(start of the value, end of the element) of the DER element at ``offset``."""
    length = data[offset + 1]
    start = offset + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start:start + count], "big")
        start += count
    return start, start + length


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _resign(der: bytes, tbs: bytes, signer: Pkcs11Signer) -> bytes:
    """``der`` (a certificate or CRL signed by a stand-in key) with its signature replaced by ``signer``'s."""
    outer_start, _ = _tlv(der, 0)
    _, tbs_end = _tlv(der, outer_start)
    _, algorithm_end = _tlv(der, tbs_end)
    algorithm = der[tbs_end:algorithm_end]
    signature = signer.sign(tbs)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    body = tbs + algorithm + bit_string
    return b"\x30" + _der_length(len(body)) + body


def sign_certificate(builder: x509.CertificateBuilder, signer: Signer, key_type: str) -> x509.Certificate:
    """``builder`` signed by a key object or a token."""
    algorithm = signature_hash(key_type)
    if not isinstance(signer, Pkcs11Signer):
        return builder.sign(signer, algorithm)
    stand_in = builder.sign(_stand_in(key_type), algorithm)
    return x509.load_der_x509_certificate(_resign(stand_in.public_bytes(serialization.Encoding.DER),
                                                  stand_in.tbs_certificate_bytes, signer))


def sign_crl(builder: x509.CertificateRevocationListBuilder, signer: Signer,
             key_type: str) -> x509.CertificateRevocationList:
    algorithm = signature_hash(key_type)
    if not isinstance(signer, Pkcs11Signer):
        return builder.sign(signer, algorithm)
    stand_in = builder.sign(_stand_in(key_type), algorithm)
    return x509.load_der_x509_crl(_resign(stand_in.public_bytes(serialization.Encoding.DER),
                                          stand_in.tbs_certlist_bytes, signer))


def verify_signed_by(cert: x509.Certificate, issuer_key: PublicKeyTypes) -> bool:
    """Whether ``issuer_key`` made ``cert``'s signature (a sanity check after a token signed it)."""
    try:
        if isinstance(issuer_key, ec.EllipticCurvePublicKey):
            assert cert.signature_hash_algorithm is not None
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        elif isinstance(issuer_key, rsa.RSAPublicKey):
            assert cert.signature_hash_algorithm is not None
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                              cert.signature_hash_algorithm)
        elif isinstance(issuer_key, ed25519.Ed25519PublicKey):
            issuer_key.verify(cert.signature, cert.tbs_certificate_bytes)
        else:
            return False
    except Exception:
        return False
    return True
