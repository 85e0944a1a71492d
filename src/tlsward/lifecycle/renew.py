"""The renewal run: for each managed certificate, lock -> recover -> decide -> obtain -> deploy -> reload ->
verify, and on any failure after the files changed: restore the previous files, reload again, record why.

A certificate is only ever "renewed" when its endpoints were seen serving it: a renewal that sits on disk while
the server keeps the old one is the classic expiry outage this exists to prevent. Every attempt (not "not due")
is recorded in the inventory (``storage.lifecycle``); the monitor raises ``cert.deploy_failed`` or
``cert.renewal_failed`` from the newest record of each certificate, and resolves it once a later run succeeds.
One certificate failing never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from tlsward.acme.renewal import ari_cert_id, renewal_due
from tlsward.ca.keys import generate_key, private_key_pem
from tlsward.lifecycle.config import LifecycleConfig, ManagedCertificate
from tlsward.lifecycle.errors import LifecycleError, LockHeldError
from tlsward.lifecycle.files import FileSpec, deploy_files, recover, restore_previous
from tlsward.lifecycle.lock import certificate_lock
from tlsward.lifecycle.reload import reload_server
from tlsward.lifecycle.verify import EndpointCheck, verify_endpoints
from tlsward.model.errors import Error
from tlsward.model.lifecycle import Outcome, RenewalEvent

if TYPE_CHECKING:
    from tlsward.storage.store import Store

log = logging.getLogger("tlsward.lifecycle")


@dataclass(frozen=True, slots=True)
class Material:
    """What an issuer hands back: PEM bytes for each deployed file, and the leaf's facts."""

    key_pem: bytes
    cert_pem: bytes
    chain_pem: bytes
    fullchain_pem: bytes
    trust_pem: bytes | None = None        # roots the chain must validate against (the internal CA's bundle)

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.leaf.public_bytes(serialization.Encoding.DER)).hexdigest()


@dataclass(frozen=True, slots=True)
class Current:
    """The certificate on disk now (None fields: missing or unreadable, with ``problem`` saying why)."""

    leaf: x509.Certificate | None
    sha256: str | None
    problem: str = ""


# An issuer: (certificate config, the leaf on disk or None, the inventory) -> new material. Tests inject their own.
Obtainer = Callable[[ManagedCertificate, "x509.Certificate | None", "Store | None"], Material]


@dataclass
class CertResult:
    """What one run did for one certificate. ``status``: not_due | due (dry run) | busy | an Outcome value."""

    name: str
    status: str
    lines: list[str] = field(default_factory=list)
    event: RenewalEvent | None = None
    next_at: dt.datetime | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("not_due", "due", Outcome.VERIFIED.value, Outcome.DEPLOYED.value)


def key_pem(key: PrivateKeyTypes) -> bytes:
    """A key as deployed: PKCS#8 PEM, unencrypted (the file mode protects it, as every server expects)."""
    return private_key_pem(key, None)  # type: ignore[arg-type]


def key_matches(key_pem_bytes: bytes, cert: x509.Certificate) -> bool:
    try:
        key = serialization.load_pem_private_key(key_pem_bytes, password=None)
    except (ValueError, TypeError):
        return False
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return bool(key.public_key().public_bytes(*spki) == cert.public_key().public_bytes(*spki))


def read_current(cert: ManagedCertificate) -> Current:
    path = cert.deploy.leaf_file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Current(None, None, f"{path} does not exist")
    except OSError as exc:
        return Current(None, None, f"{path}: {exc.strerror}")
    try:
        leaf = x509.load_pem_x509_certificates(data)[0]
    except (ValueError, IndexError):
        return Current(None, None, f"{path} holds no PEM certificate")
    return Current(leaf, hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest())


def _names_of(leaf: x509.Certificate) -> set[str]:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)} | \
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def decide(cert: ManagedCertificate, current: Current, now: dt.datetime, *, force: bool,
           ari: Callable[[x509.Certificate], tuple[dt.datetime, dt.datetime] | None] | None = None,
           ) -> tuple[bool, str, dt.datetime | None]:
    """(due, why, when it is due). Missing files, changed names and a key that does not fit are due now."""
    if current.leaf is None:
        return True, f"no certificate deployed yet: {current.problem}", now
    wanted = {n.lower() for n in cert.names}
    if wanted != _names_of(current.leaf):
        return True, "the configured names differ from the deployed certificate's", now
    if cert.deploy.key is not None:
        try:
            fits = key_matches(cert.deploy.key.read_bytes(), current.leaf)
        except OSError:
            fits = False
        if not fits:
            return True, f"the key in {cert.deploy.key} does not match the deployed certificate", now
    not_before, not_after = current.leaf.not_valid_before_utc, current.leaf.not_valid_after_utc
    if cert.renew_before_s is not None:
        at = not_after - dt.timedelta(seconds=cert.renew_before_s)
        reason = f"within renew_before of its expiry ({not_after:%Y-%m-%d %H:%M} UTC)"
    else:
        window = None
        if ari is not None:
            try:
                window = ari(current.leaf)
            except Exception as exc:   # ARI is advice: an unreachable CA must not stop the 2/3 rule
                log.warning("%s: ARI unavailable (%s); using the 2/3-lifetime rule", cert.name, exc)
        try:
            cert_id = ari_cert_id(current.leaf)
        except Error:
            cert_id = cert.name
        decision = renewal_due(not_before, not_after, now, window, cert_id=cert_id)
        at, reason = decision.at, {"expired": "expired", "ari-window": "inside the CA's ARI renewal window",
                                   "ari-window-passed": "the CA's ARI renewal window has passed",
                                   "two-thirds-lifetime": "2/3 of its lifetime has passed"}.get(decision.reason,
                                                                                               decision.reason)
    if force:
        return True, "forced", now
    return now >= at, reason, at


# -- issuers ----------------------------------------------------------------------------------------------------


def _passphrase(cert: ManagedCertificate) -> bytes | None:
    assert cert.ca is not None
    if cert.ca.passphrase_file is not None:
        try:
            return cert.ca.passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise LifecycleError(f"{cert.ca.passphrase_file}: cannot read the CA passphrase: {exc.strerror}") from None
    if cert.ca.passphrase_env is not None:
        value = os.environ.get(cert.ca.passphrase_env)
        if value is None:
            raise LifecycleError(f"{cert.name}: ${cert.ca.passphrase_env} (the CA passphrase) is not set")
        return value.encode()
    return None


def obtain_from_ca(cert: ManagedCertificate, current: x509.Certificate | None, store: Store | None) -> Material:
    """Issue from tlsward's internal CA with a fresh key."""
    from tlsward.ca.authority import CertificateAuthority

    assert cert.ca is not None
    if store is None:
        raise LifecycleError(f"{cert.name}: the internal CA needs the inventory database (--db)")
    authority = CertificateAuthority.open(cert.ca.directory, store, passphrase=_passphrase(cert))
    key = generate_key(cert.key_type)
    lifetime = dt.timedelta(seconds=cert.ca.lifetime_s) if cert.ca.lifetime_s else None
    issued = authority.issue(names=list(cert.names), public_key=key.public_key(), profile=cert.ca.profile,
                             lifetime=lifetime, requester=f"lifecycle:{cert.name}")
    return Material(key_pem=key_pem(key), cert_pem=issued.cert_pem(), chain_pem=issued.chain_pem(),
                    fullchain_pem=issued.fullchain_pem(), trust_pem=authority.ca_bundle_pem())


def _acme_client(cert: ManagedCertificate) -> object:
    from tlsward.acme.client import AcmeAccountSettings, AcmeClient

    assert cert.acme is not None
    acme = cert.acme
    return AcmeClient(AcmeAccountSettings(directory_url=acme.directory, account_dir=acme.account_dir,
                                          email=acme.email, ca_bundle=acme.ca_bundle, eab_kid=acme.eab_kid,
                                          eab_hmac_key=acme.eab_hmac_key))


def obtain_from_acme(cert: ManagedCertificate, current: x509.Certificate | None, store: Store | None) -> Material:
    """Order from an ACME CA, answering the configured challenge; ``replaces`` the current one (ARI)."""
    from tlsward.acme.client import AcmeClient
    from tlsward.acme.solvers import ChallengeSolver, Dns01Rfc2136, Http01Listener, Http01Webroot

    assert cert.acme is not None
    acme = cert.acme
    solver: ChallengeSolver
    if acme.challenge == "http-01-webroot":
        assert acme.webroot is not None
        solver = Http01Webroot(acme.webroot)
    elif acme.challenge == "http-01-listener":
        solver = Http01Listener(acme.listen_host, acme.listen_port)
    else:
        assert acme.dns is not None
        dns = acme.dns
        solver = Dns01Rfc2136(dns.server, dns.port, dns.zone, tsig_name=dns.tsig_name, tsig_secret=dns.tsig_secret,
                              tsig_algorithm=dns.tsig_algorithm)
    client = _acme_client(cert)
    assert isinstance(client, AcmeClient)
    got = client.obtain(list(cert.names), solver, key_type=cert.key_type, replaces=current)
    return Material(key_pem=got.key_pem, cert_pem=got.cert_pem, chain_pem=got.chain_pem,
                    fullchain_pem=got.fullchain_pem)


def default_obtainer(cert: ManagedCertificate, current: x509.Certificate | None, store: Store | None) -> Material:
    return (obtain_from_ca if cert.source == "ca" else obtain_from_acme)(cert, current, store)


def _ari(cert: ManagedCertificate) -> Callable[[x509.Certificate], tuple[dt.datetime, dt.datetime] | None] | None:
    if cert.source != "acme":
        return None

    def ask(leaf: x509.Certificate) -> tuple[dt.datetime, dt.datetime] | None:
        from tlsward.acme.client import AcmeClient

        client = _acme_client(cert)
        assert isinstance(client, AcmeClient)
        return client.renewal_info(leaf)

    return ask


# -- the run ----------------------------------------------------------------------------------------------------


class _Steps:
    def __init__(self) -> None:
        self.timings: list[tuple[str, float]] = []

    def timed(self, name: str, started: float) -> None:
        self.timings.append((name, round((time.monotonic() - started) * 1000, 1)))


def _specs(cert: ManagedCertificate, material: Material) -> list[FileSpec]:
    deploy = cert.deploy
    content = {"cert": material.cert_pem, "chain": material.chain_pem, "fullchain": material.fullchain_pem,
               "key": material.key_pem}
    return [FileSpec(path, content[kind], 0o600 if kind == "key" else deploy.mode, deploy.owner, deploy.group)
            for kind, path in deploy.paths()]


def _trust_file(config: LifecycleConfig, cert: ManagedCertificate, material: Material) -> Path | None:
    if cert.verify.trust is not None:
        return cert.verify.trust
    if material.trust_pem is None:
        return None
    path = config.state_dir / f"{cert.name}.trust.pem"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(material.trust_pem)
    tmp.replace(path)
    return path


def _served(checks: Sequence[EndpointCheck]) -> str:
    return ", ".join(f"{c.endpoint} serves {(c.served_sha256 or '')[:8]}…" for c in checks)


def renew_one(config: LifecycleConfig, cert: ManagedCertificate, *, store: Store | None, now: dt.datetime,
              force: bool = False, dry_run: bool = False, obtain: Obtainer | None = None,
              lock_wait: float = 0.0) -> CertResult:
    """One certificate, under its lock. Never raises for a problem of this certificate: the result says it."""
    try:
        with certificate_lock(config.state_dir, cert.name, wait=lock_wait):
            return _renew_locked(config, cert, store=store, now=now, force=force, dry_run=dry_run,
                                 obtain=obtain or default_obtainer)
    except LockHeldError as exc:
        return CertResult(cert.name, "busy", [f"{cert.name}: skipped, {exc}"])
    except Error as exc:
        return _failed_outside(cert, store, str(exc), f"{cert.name}: FAILED: {exc}")
    except Exception as exc:           # a bug for one certificate must not stop the batch
        log.exception("%s: renewal failed unexpectedly", cert.name)
        return _failed_outside(cert, store, repr(exc), f"{cert.name}: FAILED unexpectedly: {exc!r}")


def _failed_outside(cert: ManagedCertificate, store: Store | None, reason: str, line: str) -> CertResult:
    """A failure outside the steps (the lock file, an unreadable journal): recorded too, so that it alerts."""
    moment = dt.datetime.now(dt.UTC)
    event = RenewalEvent(certificate=cert.name, source=cert.source, outcome=Outcome.FAILED, started_at=moment,
                         finished_at=moment, reason=reason, endpoints=tuple(str(e) for e in cert.verify.endpoints))
    if store is not None:
        from tlsward.storage.lifecycle import LifecycleStore

        with contextlib.suppress(Error):
            event = LifecycleStore(store).record(event)
    return CertResult(cert.name, Outcome.FAILED.value, [line], event)


def _renew_locked(config: LifecycleConfig, cert: ManagedCertificate, *, store: Store | None, now: dt.datetime,
                  force: bool, dry_run: bool, obtain: Obtainer) -> CertResult:
    lines: list[str] = []
    journal = config.state_dir / f"{cert.name}.journal"
    recovered = recover(journal)
    if recovered:
        lines.append(f"{cert.name}: an interrupted deploy was found and {recovered}")
    current = read_current(cert)
    due, why, at = decide(cert, current, now, force=force, ari=None if force else _ari(cert))
    if not due:
        when = f"{at:%Y-%m-%d %H:%M} UTC" if at else "later"
        return CertResult(cert.name, "not_due", [*lines, f"{cert.name}: not due (renews {when}: {why})"], next_at=at)
    if dry_run:
        return CertResult(cert.name, "due", [*lines, f"{cert.name}: due ({why}); dry run, nothing changed"])
    started_at = dt.datetime.now(dt.UTC)
    steps = _Steps()
    endpoints = tuple(str(e) for e in cert.verify.endpoints)

    def finish(outcome: Outcome, reason: str, material: Material | None) -> CertResult:
        leaf = material.leaf if material is not None else None
        event = RenewalEvent(certificate=cert.name, source=cert.source, outcome=outcome, started_at=started_at,
                             finished_at=dt.datetime.now(dt.UTC), reason=reason, old_sha256=current.sha256,
                             new_sha256=material.sha256 if material is not None else None,
                             new_not_after=leaf.not_valid_after_utc if leaf is not None else None,
                             endpoints=endpoints, steps=tuple(steps.timings))
        if store is not None:
            from tlsward.storage.lifecycle import LifecycleStore

            try:
                event = LifecycleStore(store).record(event)
            except Error as exc:
                lines.append(f"{cert.name}: warning: could not record the outcome in the inventory: {exc}")
        if not outcome.ok:
            log.error("%s: %s: %s", cert.name, outcome, reason)
        return CertResult(cert.name, outcome.value, lines, event)

    clock = time.monotonic()
    try:
        material = obtain(cert, current.leaf, store)
    except Error as exc:
        steps.timed("obtain", clock)
        lines.append(f"{cert.name}: FAILED to obtain a new certificate ({why}): {exc}")
        return finish(Outcome.FAILED, f"obtain: {exc}", None)
    steps.timed("obtain", clock)
    if not key_matches(material.key_pem, material.leaf):
        lines.append(f"{cert.name}: FAILED: the issued certificate does not match its key; nothing deployed")
        return finish(Outcome.FAILED, "the issued certificate does not match its key", material)
    new = material.sha256
    try:
        trust = _trust_file(config, cert, material)
    except OSError as exc:
        lines.append(f"{cert.name}: FAILED: cannot write the CA bundle for verification: {exc}; nothing deployed")
        return finish(Outcome.FAILED, f"trust bundle: {exc}", material)
    if cert.verify.endpoints and trust is None:
        lines.append(f"{cert.name}: FAILED: endpoints to verify but no trust ([certificate.verify] trust); "
                     "nothing deployed")
        return finish(Outcome.FAILED, "verify endpoints configured without trust", material)
    done = [f"renewed ({why})"]
    specs = _specs(cert, material)
    clock = time.monotonic()
    try:
        deploy_files(specs, journal)
    except Error as exc:
        steps.timed("deploy", clock)
        lines.append(f"{cert.name}: FAILED to deploy; the previous files are untouched: {exc}")
        return finish(Outcome.FAILED, f"deploy: {exc}", material)
    steps.timed("deploy", clock)
    done.append("deployed")
    reason = ""
    clock = time.monotonic()
    try:
        done.append(reload_server(cert.deploy.reload))
    except Error as exc:
        reason = f"reload failed: {exc}"
    steps.timed("reload", clock)
    if not reason and cert.verify.endpoints:
        clock = time.monotonic()
        try:
            checks = verify_endpoints(cert.verify.endpoints, new, trust, cert.verify.timeout_s) if trust else []
        except Exception as exc:       # whatever goes wrong here, the files have changed: roll back
            log.exception("%s: verify failed unexpectedly", cert.name)
            reason, checks = f"verify could not run: {exc}", []
        steps.timed("verify", clock)
        failed = [c for c in checks if not c.ok]
        if failed:
            reason = "verify failed: " + "; ".join(f"{c.endpoint} {c.reason}" for c in failed)
        elif checks:
            done.append(f"verified {_served(checks)}")
    if not reason:
        lines.append(f"{cert.name}: {', '.join(done)}")
        return finish(Outcome.VERIFIED if cert.verify.endpoints else Outcome.DEPLOYED, "", material)
    lines.append(f"{cert.name}: {', '.join(done)}; {reason}")
    clock = time.monotonic()
    back = _rollback(cert, journal, current, trust)
    steps.timed("rollback", clock)
    lines.append(f"{cert.name}: ROLLED BACK: {back}")
    return finish(Outcome.ROLLED_BACK, f"{reason}; {back}", material)


def _rollback(cert: ManagedCertificate, journal: Path, current: Current, trust: Path | None) -> str:
    """Previous files back, reload, and check the old certificate is served again; what happened, in words."""
    try:
        restore_previous([path for _, path in cert.deploy.paths()], journal,
                         {cert.deploy.key: 0o600} if cert.deploy.key else None)
    except Error as exc:
        return f"restoring the previous files FAILED: {exc}"
    said = ["previous files restored"]
    try:
        said.append(reload_server(cert.deploy.reload) + " again")
    except Error as exc:
        said.append(f"reload after restore FAILED: {exc}")
        return ", ".join(said)
    if current.sha256 is not None and cert.verify.endpoints and trust is not None:
        checks = verify_endpoints(cert.verify.endpoints, current.sha256, trust,
                                  min(cert.verify.timeout_s, 10.0))
        if all(c.ok for c in checks):
            said.append(f"the previous certificate {current.sha256[:8]}… is served again")
        else:
            said.append("the previous certificate is NOT served: " + "; ".join(c.reason for c in checks if not c.ok))
    return ", ".join(said)


def renew_certificates(config: LifecycleConfig, names: Sequence[str] = (), *, store: Store | None,
                       now: dt.datetime | None = None, force: bool = False, dry_run: bool = False,
                       obtain: Obtainer | None = None, lock_wait: float = 0.0) -> list[CertResult]:
    """Every named certificate (all when ``names`` is empty), one after the other; each reports for itself."""
    chosen = [config.named(name) for name in names] if names else list(config.certificates)
    moment = now or dt.datetime.now(dt.UTC)
    return [renew_one(config, cert, store=store, now=moment, force=force, dry_run=dry_run, obtain=obtain,
                      lock_wait=lock_wait) for cert in chosen]
