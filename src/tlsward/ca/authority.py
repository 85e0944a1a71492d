"""``CertificateAuthority``: an offline-able root and an online intermediate that issues, renews and revokes, with
the CRL and OCSP answers made from the inventory.

The CA directory holds ``ca.toml`` (settings; no secrets), ``root.pem``, ``root.key`` (encrypted with the root
passphrase; absent when the root key is in a PKCS#11 token), ``intermediate.pem``, ``intermediate.key``
(encrypted with the CA passphrase when one is given, else 0600 in the clear: the ACME server and the renewal
workers must sign unattended), ``root.crl`` and the current ``crl.der`` / ``crl.pem``. The intermediate key is
decrypted once when the CA is opened and kept in memory, so issuing is a signature and one INSERT.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import threading
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPublicKeyTypes
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from tlsward.ca import profiles
from tlsward.ca.crl import INTERMEDIATE_CRL_VALIDITY, ROOT_CRL_VALIDITY, build_crl, crl_number
from tlsward.ca.keys import (
    CA_KEY_TYPES,
    Pkcs11Config,
    Pkcs11Signer,
    PrivateKey,
    Signer,
    check_key_type,
    generate_key,
    key_type_of,
    load_certificate,
    load_private_key,
    sign_certificate,
    signature_hash,
    verify_signed_by,
    write_atomic,
    write_private_key,
)
from tlsward.ca.ocsp import OcspResponder
from tlsward.model.ca import CaError, CrlState, IssuedRecord, RevocationRecord
from tlsward.model.policy import PolicyProfile
from tlsward.storage.ca import CaStore
from tlsward.storage.store import Store

__all__ = ["CaConfig", "CertificateAuthority", "IssueRequest", "IssuedCertificate", "Pkcs11Config"]

CONFIG = "ca.toml"
ROOT_LIFETIME = dt.timedelta(days=3650)
INTERMEDIATE_LIFETIME = dt.timedelta(days=730)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER


@dataclass(frozen=True)
class IssuedCertificate:
    """A leaf as issued: the certificate, the chain up to (not including) the root, and its profile."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    profile: str

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(PEM)

    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(PEM) for c in self.chain)

    def fullchain_pem(self) -> bytes:
        return self.cert_pem() + self.chain_pem()


@dataclass(frozen=True)
class IssueRequest:
    """One leaf to issue (``issue`` takes the same fields as keywords)."""

    names: tuple[str, ...] = ()
    public_key: CertificateIssuerPublicKeyTypes | None = None
    csr: x509.CertificateSigningRequest | None = None
    profile: str = "server"
    lifetime: dt.timedelta | None = None
    requester: str = "cli"
    replaces: int | None = None


@dataclass(frozen=True)
class CaConfig:
    """``ca.toml``: everything needed to reopen the CA but the passphrases and the PIN."""

    name: str
    key_type: str
    key_id: str
    policy: str | None = None
    crl_url: str | None = None
    ocsp_url: str | None = None
    permitted: tuple[str, ...] = ()
    crl_validity_hours: float = INTERMEDIATE_CRL_VALIDITY.total_seconds() / 3600
    root_storage: str = "file"          # or "pkcs11"
    root_key_type: str = "ecdsa-p256"
    pkcs11_module: str | None = None
    pkcs11_token: str | None = None
    pkcs11_key_label: str | None = None
    lifetimes: dict[str, float] = field(default_factory=dict)   # profile -> days, overriding the defaults

    def to_toml(self) -> str:
        lines = ["# tlsward internal CA (docs/ca.md). No secrets here: passphrases come from files or the environment."]
        for key, value in self.__dict__.items():
            if value is None or key == "lifetimes":
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        if self.lifetimes:
            lines += ["", "[lifetimes]"] + [f"{k} = {_toml_value(v)}" for k, v in sorted(self.lifetimes.items())]
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: Path) -> CaConfig:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CaError(f"CA directory {path.parent}: no {CONFIG} (create the CA with `tlsward ca init`)") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CaError(f"{path}: not a readable CA configuration ({exc})") from None
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise CaError(f"{path}: unknown setting {unknown[0]!r}")
        try:
            data["permitted"] = tuple(data.get("permitted", ()))
            config = cls(**data)
        except TypeError as exc:
            raise CaError(f"{path}: {exc}") from None
        for required in ("name", "key_type", "key_id"):
            if not isinstance(getattr(config, required), str) or not getattr(config, required):
                raise CaError(f"{path}: {required} must be a non-empty string")
        return config


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))   # a JSON string is a valid TOML basic string


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _moment(now: dt.datetime | None) -> dt.datetime:
    """``now`` (default: the clock) in UTC, whole seconds (what X.509 times hold). A naive time is refused: it
    would silently be read in the wrong zone."""
    if now is None:
        now = _now()
    elif now.tzinfo is None:
        raise CaError(f"naive datetime {now.isoformat()}: the CA takes timezone-aware times only")
    return now.astimezone(dt.UTC).replace(microsecond=0)


def _key_id(public_key: CertificateIssuerPublicKeyTypes) -> str:
    return x509.SubjectKeyIdentifier.from_public_key(public_key).digest.hex()


def _load_policy(policy: str | None) -> PolicyProfile | None:
    if policy is None:
        return None
    from tlsward.policy.load import load_policy

    return load_policy(policy)


def _policy_reference(policy: str | None) -> str | None:
    """A shipped profile's name as is; a file as an absolute path (ca.toml outlives the current directory)."""
    if policy is None:
        return None
    from tlsward.policy.load import shipped_profiles

    return policy if policy in shipped_profiles() else str(Path(policy).expanduser().resolve())


class CertificateAuthority:
    """The internal CA over its directory and the inventory. Thread-safe for issuing and answering OCSP (the
    ASGI app calls it from a thread pool); CRL publication is serialised by the database row lock."""

    def __init__(self, directory: Path, store: Store, config: CaConfig, root: x509.Certificate,
                 intermediate: x509.Certificate, intermediate_key: PrivateKey,
                 policy: PolicyProfile | None) -> None:
        self.directory, self.store, self.config = directory, store, config
        self.root, self.intermediate = root, intermediate
        self.policy = policy
        self.ca_store = CaStore(store)
        self.key_id = config.key_id
        self._key = intermediate_key
        self._hash = signature_hash(config.key_type)
        self._permitted = profiles.parse_permitted(config.permitted)
        self._lock = threading.Lock()
        self._crl: tuple[int, x509.CertificateRevocationList] | None = None
        self._ocsp = OcspResponder(intermediate, intermediate_key, self._hash,
                                   lambda serial: self.ca_store.status(self.key_id, serial))
        self._issuer_name = intermediate.subject
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
        self._common = self._common_extensions()
        self._chain = (intermediate,)
        self._expires = intermediate.not_valid_after_utc

    # -- creating and opening --------------------------------------------------------------------------------------

    @classmethod
    def init(cls, directory: Path, store: Store, *, name: str, passphrase: bytes | None,
             root_passphrase: bytes | None = None, pkcs11: Pkcs11Config | None = None,
             key_type: str = "ecdsa-p256", permitted_names: Sequence[str] = (), crl_url: str | None = None,
             ocsp_url: str | None = None, now: dt.datetime | None = None, policy: str | None = None,
             lifetimes: dict[str, float] | None = None,
             crl_validity: dt.timedelta = INTERMEDIATE_CRL_VALIDITY) -> CertificateAuthority:
        """Create a root and an intermediate in ``directory`` (which must not hold a CA yet) and register the
        intermediate in the inventory. The root key is encrypted with ``root_passphrase`` (default: ``passphrase``)
        or generated inside the PKCS#11 token; one of them is required."""
        directory = Path(directory).expanduser()
        check_key_type(key_type, CA_KEY_TYPES)
        if not name.strip():
            raise CaError("a CA needs a name (--name)")
        if (directory / CONFIG).exists():
            raise CaError(f"CA directory {directory}: already holds a CA ({CONFIG}); choose another --ca-dir")
        root_passphrase = root_passphrase or passphrase
        if pkcs11 is None and not root_passphrase:
            raise CaError("the root key must be encrypted on disk: give a root passphrase (--root-passphrase-file "
                          "or $TLSWARD_CA_ROOT_PASSPHRASE) or keep it in a PKCS#11 token (--pkcs11-module)")
        permitted = profiles.parse_permitted(permitted_names)
        if crl_validity < dt.timedelta(seconds=1):
            raise CaError(f"a CRL validity of {crl_validity} is too short")
        loaded_policy = _load_policy(policy)
        for profile_name, days in (lifetimes or {}).items():
            profiles.profile(profile_name)
            profiles.check_lifetime(dt.timedelta(days=days), loaded_policy, None)
        moment = _moment(now)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)

        root_signer: Signer
        if pkcs11 is not None:
            token_signer = Pkcs11Signer(pkcs11, key_type)
            token_signer.generate()
            root_public = token_signer.public_key()
            root_signer = token_signer
        else:
            root_key = generate_key(key_type)
            root_public = root_key.public_key()
            root_signer = root_key
        root_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                               x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Root CA")])
        ski = x509.SubjectKeyIdentifier.from_public_key(root_public)  # type: ignore[arg-type]
        root = sign_certificate(
            x509.CertificateBuilder().subject_name(root_name).issuer_name(root_name)
            .public_key(root_public).serial_number(x509.random_serial_number())  # type: ignore[arg-type]
            .not_valid_before(moment - profiles.BACKDATE).not_valid_after(moment + ROOT_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(ski, critical=False), root_signer, key_type)
        if not verify_signed_by(root, root_public):
            raise CaError("the root certificate's signature does not verify (PKCS#11 token signed with another key?)")

        intermediate_key = generate_key(key_type)
        intermediate_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                                       x509.NameAttribute(NameOID.COMMON_NAME, f"{name} Intermediate CA")])
        builder = (x509.CertificateBuilder().subject_name(intermediate_name).issuer_name(root_name)
                   .public_key(intermediate_key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(moment - profiles.BACKDATE).not_valid_after(moment + INTERMEDIATE_LIFETIME)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                   .add_extension(_ca_key_usage(), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()),
                                  critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                                  critical=False))
        constraints = profiles.name_constraints(permitted)
        if constraints is not None:
            builder = builder.add_extension(constraints, critical=True)
        intermediate = sign_certificate(builder, root_signer, key_type)
        if not verify_signed_by(intermediate, root_public):
            raise CaError("the intermediate's signature does not verify against the root key")

        config = CaConfig(
            name=name, key_type=key_type, key_id=_key_id(intermediate_key.public_key()),
            policy=_policy_reference(policy), crl_url=crl_url, ocsp_url=ocsp_url,
            permitted=tuple(str(p) for p in permitted), root_key_type=key_type,
            root_storage="pkcs11" if pkcs11 else "file",
            pkcs11_module=pkcs11.module if pkcs11 else None, pkcs11_token=pkcs11.token_label if pkcs11 else None,
            pkcs11_key_label=pkcs11.key_label if pkcs11 else None, lifetimes=dict(lifetimes or {}),
            crl_validity_hours=crl_validity.total_seconds() / 3600)
        if not isinstance(root_signer, Pkcs11Signer):
            write_private_key(directory / "root.key", root_signer, root_passphrase)
        write_private_key(directory / "intermediate.key", intermediate_key, passphrase)
        write_atomic(directory / "root.pem", root.public_bytes(PEM))
        write_atomic(directory / "intermediate.pem", intermediate.public_bytes(PEM))
        store_ca = CaStore(store)
        store_ca.ensure_authority(config.key_id, name=name, subject=intermediate.subject.rfc4514_string(),
                                  now=moment)
        ca = cls(directory, store, config, root, intermediate, intermediate_key, loaded_policy)
        ca._write_root_crl(root_signer, moment)
        ca.publish_crl(now=moment)
        write_atomic(directory / CONFIG, config.to_toml().encode())   # last: its presence means "a whole CA"
        return ca

    @classmethod
    def open(cls, directory: Path, store: Store, *, passphrase: bytes | None) -> CertificateAuthority:
        """Reopen a CA: read ca.toml and the certificates, decrypt the intermediate key once, check that key and
        certificate belong together, and register the intermediate in this inventory if it is new there."""
        directory = Path(directory).expanduser()
        if not directory.is_dir():
            raise CaError(f"CA directory {directory}: does not exist (create it with `tlsward ca init`)")
        config = CaConfig.load(directory / CONFIG)
        root = load_certificate(directory / "root.pem", what="root")
        intermediate = load_certificate(directory / "intermediate.pem", what="intermediate")
        key = load_private_key(directory / "intermediate.key", passphrase, what="intermediate")
        public = key.public_key()
        if public.public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
                intermediate.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise CaError(f"{directory / 'intermediate.key'}: does not belong to {directory / 'intermediate.pem'}")
        if _key_id(public) != config.key_id:
            raise CaError(f"{directory / CONFIG}: key_id does not match the intermediate key")
        if not verify_signed_by(intermediate, root.public_key()):
            raise CaError(f"{directory / 'intermediate.pem'}: not signed by {directory / 'root.pem'}")
        CaStore(store).ensure_authority(config.key_id, name=config.name,
                                        subject=intermediate.subject.rfc4514_string(), now=_now())
        return cls(directory, store, config, root, intermediate, key, _load_policy(config.policy))

    # -- issuing ---------------------------------------------------------------------------------------------------

    def _common_extensions(self) -> list[x509.Extension[x509.ExtensionType]]:
        """Extensions every leaf carries, built once."""
        values: list[tuple[x509.ExtensionType, bool]] = [
            (x509.BasicConstraints(ca=False, path_length=None), True), (self._aki, False)]
        if self.config.ocsp_url:
            values.append((x509.AuthorityInformationAccess([x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(self.config.ocsp_url))]),
                False))
        if self.config.crl_url:
            values.append((x509.CRLDistributionPoints([x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(self.config.crl_url)], relative_name=None, reasons=None,
                crl_issuer=None)]), False))
        return [x509.Extension(value.oid, critical, value) for value, critical in values]

    def default_lifetime(self, profile: str) -> dt.timedelta:
        days = self.config.lifetimes.get(profile)
        return dt.timedelta(days=days) if days else profiles.profile(profile).default_lifetime

    def issue(self, *, names: Sequence[str], public_key: CertificateIssuerPublicKeyTypes | None = None,
              csr: x509.CertificateSigningRequest | None = None, profile: str = "server",
              lifetime: dt.timedelta | None = None, requester: str = "cli", now: dt.datetime | None = None,
              replaces: int | None = None) -> IssuedCertificate:
        """Sign a leaf for ``names`` (DNS names or IP literals; with a CSR and no names, the CSR's subjectAltName)
        for exactly one of ``public_key`` and ``csr``, and record it before returning it (a certificate the
        inventory does not know could not be revoked). CaError, one line, when the request or the policy refuses."""
        request = IssueRequest(names=tuple(names), public_key=public_key, csr=csr, profile=profile, lifetime=lifetime,
                               requester=requester, replaces=replaces)
        moment = _moment(now)
        with self.ca_store.issuing():   # concurrent issue() calls share one commit (group commit)
            issued, record = self._sign(request, moment, self._check(request, moment))
            self.ca_store.record_issued(record)
        return issued

    def issue_many(self, requests: Sequence[IssueRequest], *, now: dt.datetime | None = None
                   ) -> list[IssuedCertificate]:
        """Several leaves recorded in one transaction (bulk renewals, the ACME server's queue): all are checked
        before any is signed, so a refusal issues none."""
        moment = _moment(now)
        checked = [(request, self._check(request, moment)) for request in requests]
        signed = [self._sign(request, moment, valid) for request, valid in checked]
        self.ca_store.record_issued(*(record for _, record in signed))
        return [issued for issued, _ in signed]

    def _check(self, request: IssueRequest, moment: dt.datetime) -> tuple[
            CertificateIssuerPublicKeyTypes, tuple[profiles.Name, ...], dt.timedelta]:
        if (request.public_key is None) == (request.csr is None):
            raise CaError("give exactly one of a public key or a CSR")
        names = request.names
        public_key = request.public_key
        if request.csr is not None:
            if not request.csr.is_signature_valid:
                raise CaError("the CSR's signature does not verify (was it edited after signing?)")
            public_key = request.csr.public_key()  # type: ignore[assignment]
            if not names:
                names = _csr_names(request.csr)
        assert public_key is not None
        profiles.profile(request.profile)
        parsed = profiles.parse_names(names)
        for name in parsed:
            if not profiles.within(name, self._permitted):
                raise CaError(f"--name {name}: outside this CA's name constraints "
                              f"({', '.join(self.config.permitted)})")
        profiles.check_key(public_key, self.policy)
        span = request.lifetime if request.lifetime is not None else self.default_lifetime(request.profile)
        profiles.check_lifetime(span, self.policy, self._expires - (moment - profiles.BACKDATE))
        return public_key, parsed, span

    def _sign(self, request: IssueRequest, moment: dt.datetime,
              checked: tuple[CertificateIssuerPublicKeyTypes, tuple[profiles.Name, ...], dt.timedelta]
              ) -> tuple[IssuedCertificate, IssuedRecord]:
        """Build and sign a leaf ``_check`` has accepted (``moment`` whole seconds, UTC)."""
        public_key, parsed, span = checked
        spec = profiles.PROFILE_TABLE[request.profile]
        not_before = moment - profiles.BACKDATE
        not_after = not_before + span
        first = str(parsed[0])
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, first)]) if len(first) <= 64 else x509.Name([])
        encipher = isinstance(public_key, rsa.RSAPublicKey) and request.profile != "client"
        # The builder is made in one call with the extensions as a list: its fluent setters copy the builder and
        # re-check every extension each time, which cost as much as the signature. The values set here are the
        # ones the setters would have checked (aware UTC times made naive, a 159-bit positive serial).
        extensions = [
            _RSA_SERVER_USAGE if encipher else _SIGNING_USAGE, spec_extension(spec),
            x509.Extension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, not len(subject),
                           x509.SubjectAlternativeName(profiles.general_names(parsed))),
            x509.Extension(ExtensionOID.SUBJECT_KEY_IDENTIFIER, False,
                           x509.SubjectKeyIdentifier.from_public_key(public_key)),
            *self._common]
        builder = x509.CertificateBuilder(
            issuer_name=self._issuer_name, subject_name=subject, public_key=public_key,
            serial_number=_serial_number(), not_valid_before=not_before.replace(tzinfo=None),
            not_valid_after=not_after.replace(tzinfo=None), extensions=extensions)
        cert = builder.sign(self._key, self._hash)
        der = cert.public_bytes(DER)
        record = IssuedRecord(
            authority=self.key_id, serial=cert.serial_number, subject=f"CN={first}" if len(subject) else "",
            names=tuple(str(n) for n in parsed), profile=request.profile, key_type=key_type_of(public_key),
            not_before=not_before, not_after=not_after, issued_at=moment, requester=request.requester,
            sha256=hashlib.sha256(der).hexdigest(), der=der, replaces=request.replaces)
        return IssuedCertificate(cert, self._chain, request.profile), record

    def renew(self, serial: int, *, public_key: CertificateIssuerPublicKeyTypes | None = None,
              lifetime: dt.timedelta | None = None, requester: str = "cli",
              now: dt.datetime | None = None) -> IssuedCertificate:
        """Reissue a certificate's names and profile, for ``public_key`` (None: the same key as before). The old
        certificate stays valid until it expires or is revoked."""
        record = self.record(serial)
        if public_key is None:
            public_key = x509.load_der_x509_certificate(record.der).public_key()  # type: ignore[assignment]
        return self.issue(names=record.names, public_key=public_key, profile=record.profile, lifetime=lifetime,
                          requester=requester, now=now, replaces=serial)

    def record(self, serial: int) -> IssuedRecord:
        """The inventory's record of a serial this CA issued; CaError if none."""
        record = self.ca_store.get(self.key_id, serial)
        if record is None:
            raise CaError(f"serial {serial:x}: not issued by this CA (see `tlsward ca list`)")
        return record

    def is_revoked(self, serial: int) -> bool:
        """Whether this CA revoked ``serial`` (by any path: `tlsward ca revoke`, ACME, a mass revocation); the ACME
        server's renewal information opens the window at once for those (RFC 9773)."""
        record = self.ca_store.get(self.key_id, serial)
        return record is not None and record.revoked

    def certificates(self, *, include_revoked: bool = True, include_expired: bool = False, name: str | None = None,
                     now: dt.datetime | None = None) -> list[IssuedRecord]:
        return self.ca_store.certificates(self.key_id, include_revoked=include_revoked,
                                          include_expired=include_expired, name=name, now=now)

    # -- revocation, CRL, OCSP -------------------------------------------------------------------------------------

    def revoke(self, serial: int, *, reason: x509.ReasonFlags = x509.ReasonFlags.unspecified,
               now: dt.datetime | None = None) -> None:
        """Record the revocation and publish a new CRL at once (so ``crl.pem`` is current when this returns)."""
        if reason == x509.ReasonFlags.remove_from_crl:
            raise CaError("--reason removeFromCRL is only for delta CRLs; it cannot revoke")
        moment = _moment(now)
        self.ca_store.revoke(self.key_id, serial, reason=reason.value, now=moment)
        self.publish_crl(now=moment)

    def publish_crl(self, *, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """Sign the next CRL number now (whatever the schedule), keep it in the inventory and write the files."""
        moment = _moment(now)
        validity = dt.timedelta(hours=self.config.crl_validity_hours)

        def build(number: int, revocations: Sequence[RevocationRecord]) -> tuple[bytes, dt.datetime, dt.datetime]:
            crl = build_crl(self.intermediate, self._key, self.config.key_type, number=number,
                            revocations=revocations, this_update=moment, next_update=moment + validity)
            return crl.public_bytes(DER), moment, moment + validity

        state = self.ca_store.publish_crl(self.key_id, build, now=moment)
        crl = self._remember(state)
        self._write_crl_files(crl)
        return crl

    def crl(self, *, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """The current CRL: the inventory's, or a new one once half of its validity has passed."""
        moment = _moment(now)
        state = self.ca_store.crl_state(self.key_id)
        validity = dt.timedelta(hours=self.config.crl_validity_hours)
        if state.der is None or state.next_update is None or moment >= state.next_update - validity / 2:
            return self.publish_crl(now=moment)
        return self._remember(state)

    def crl_is_stale(self, *, now: dt.datetime | None = None) -> bool:
        state = self.ca_store.crl_state(self.key_id)
        validity = dt.timedelta(hours=self.config.crl_validity_hours)
        return state.next_update is None or (now or _now()) >= state.next_update - validity / 2

    def _remember(self, state: CrlState) -> x509.CertificateRevocationList:
        with self._lock:
            if self._crl is None or self._crl[0] != state.number:
                assert state.der is not None
                self._crl = (state.number, x509.load_der_x509_crl(state.der))
            return self._crl[1]

    def _write_crl_files(self, crl: x509.CertificateRevocationList) -> None:
        write_atomic(self.directory / "crl.der", crl.public_bytes(DER))
        write_atomic(self.directory / "crl.pem", crl.public_bytes(PEM) + self.root_crl().public_bytes(PEM))

    def root_crl(self) -> x509.CertificateRevocationList:
        """The root's CRL as last signed (``tlsward ca crl --root`` re-signs it with the root key)."""
        path = self.directory / "root.crl"
        try:
            return x509.load_der_x509_crl(path.read_bytes())
        except (OSError, ValueError):
            raise CaError(f"{path}: missing or not a DER CRL (re-sign it: `tlsward ca crl --root`)") from None

    def _write_root_crl(self, signer: Signer, moment: dt.datetime) -> x509.CertificateRevocationList:
        previous = 0
        if (self.directory / "root.crl").exists():
            previous = crl_number(self.root_crl())
        crl = build_crl(self.root, signer, self.config.root_key_type, number=previous + 1, revocations=(),
                        this_update=moment, next_update=moment + ROOT_CRL_VALIDITY)
        write_atomic(self.directory / "root.crl", crl.public_bytes(DER))
        return crl

    def resign_root_crl(self, *, root_passphrase: bytes | None = None, pkcs11_pin: str | None = None,
                        now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """Re-sign the root CRL (it lists no intermediates: this CA never revokes its own intermediate yet)."""
        moment = _moment(now)
        crl = self._write_root_crl(self.root_signer(root_passphrase=root_passphrase, pkcs11_pin=pkcs11_pin), moment)
        self._write_crl_files(self.crl(now=moment))
        return crl

    def root_signer(self, *, root_passphrase: bytes | None = None, pkcs11_pin: str | None = None) -> Signer:
        """The root key: decrypted from ``root.key`` or found in the token."""
        if self.config.root_storage == "pkcs11":
            assert self.config.pkcs11_module and self.config.pkcs11_token and self.config.pkcs11_key_label
            return Pkcs11Signer(Pkcs11Config(self.config.pkcs11_module, self.config.pkcs11_token,
                                             self.config.pkcs11_key_label, pkcs11_pin), self.config.root_key_type)
        return load_private_key(self.directory / "root.key", root_passphrase, what="root")

    def ocsp_response(self, request_der: bytes, *, now: dt.datetime | None = None) -> bytes:
        """RFC 6960 response bytes for request bytes; malformed input gives malformedRequest, never an exception."""
        return self._ocsp.respond(request_der, now=now)

    def ca_bundle_pem(self) -> bytes:
        """The root, PEM: what relying parties trust."""
        return self.root.public_bytes(PEM)

    def chain_pem(self) -> bytes:
        """Intermediate then root, PEM."""
        return self.intermediate.public_bytes(PEM) + self.root.public_bytes(PEM)


def _serial_number() -> int:
    """A leaf's serial: the microseconds since the epoch (51 bits today), then 100 bits from the CSPRNG; positive
    and far under 2**159 (20 octets). More than the 64 random bits the
    CA/Browser Forum asks for, unpredictable, and growing with time: the inventory's primary key (authority,
    serial) takes each new record at its end (one page appended per commit, where a fully random serial writes a
    random page of the index, and most commits a page the last ones did not touch)."""
    return (time.time_ns() // 1000) << 100 | secrets.randbits(100)


def _key_usage(*, signature: bool, encipherment: bool = False, ca: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=signature, content_commitment=False, key_encipherment=encipherment,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                         encipher_only=False, decipher_only=False)


# A TLS 1.2 server with an RSA key may be asked for RSA key transport: keyEncipherment (RFC 5246 7.4.2).
_SIGNING_USAGE = x509.Extension(ExtensionOID.KEY_USAGE, True, _key_usage(signature=True))
_RSA_SERVER_USAGE = x509.Extension(ExtensionOID.KEY_USAGE, True, _key_usage(signature=True, encipherment=True))
_EKU = {name: x509.Extension(ExtensionOID.EXTENDED_KEY_USAGE, False, spec.extended_usage)
        for name, spec in profiles.PROFILE_TABLE.items()}


def spec_extension(spec: profiles.Profile) -> x509.Extension[x509.ExtensionType]:
    return _EKU[spec.name]


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                         encipher_only=False, decipher_only=False)


def _csr_names(csr: x509.CertificateSigningRequest) -> tuple[str, ...]:
    """The DNS names and IP addresses a CSR asks for (its subjectAltName; else its common name)."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        found: list[str] = [*san.get_values_for_type(x509.DNSName),
                            *(str(ip) for ip in san.get_values_for_type(x509.IPAddress))]
        if found:
            return tuple(found)
    except x509.ExtensionNotFound:
        pass
    except ValueError:
        raise CaError("the CSR's extensions cannot be parsed") from None
    common = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    return tuple(str(c) for c in common)


def load_csr(data: bytes, source: str) -> x509.CertificateSigningRequest:
    """A PEM or DER CSR; CaError naming ``source`` for anything else."""
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise CaError(f"{source}: not a PEM or DER certificate signing request") from None
