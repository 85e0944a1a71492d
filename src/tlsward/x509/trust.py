"""Trust stores: named sets of root certificates that path validation anchors to.

Why a type of our own: a verdict is only meaningful with the store it was reached against ("trusted by
Mozilla, not by this host's system bundle"), so a store carries a name fit for a report. Loading parses
every root (certifi holds ~150, about 10 ms), so loaded stores are cached for the life of the process;
a CA file is reloaded when its size or modification time changes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.x509.verification import Store

from tlsward.model.errors import UsageError
from tlsward.x509.facts import load_certificates

__all__ = ["SYSTEM_BUNDLES", "TrustStore", "ca_file_store", "mozilla_store", "system_store"]

SYSTEM_BUNDLES: tuple[Path, ...] = (
    Path("/etc/ssl/certs/ca-certificates.crt"),   # Debian, Ubuntu, Alpine, Arch
    Path("/etc/pki/tls/certs/ca-bundle.crt"),     # Fedora, RHEL
    Path("/etc/ssl/cert.pem"),                    # macOS, OpenBSD
)


@dataclass(frozen=True)
class TrustStore:
    """A named, non-empty set of trusted roots."""

    name: str
    roots: tuple[x509.Certificate, ...]
    _by_subject: dict[x509.Name, tuple[x509.Certificate, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )
    _store: Store | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        by_subject: dict[x509.Name, list[x509.Certificate]] = {}
        for root in self.roots:
            by_subject.setdefault(root.subject, []).append(root)
        object.__setattr__(self, "_by_subject", {name: tuple(certs) for name, certs in by_subject.items()})
        object.__setattr__(self, "_store", Store(list(self.roots)) if self.roots else None)

    @property
    def verification_store(self) -> Store | None:
        """The store in cryptography's form; None when there are no roots (nothing can be trusted)."""
        return self._store

    def with_subject(self, subject: x509.Name) -> tuple[x509.Certificate, ...]:
        """Roots whose subject is ``subject`` (candidates to have issued a certificate with that issuer)."""
        return self._by_subject.get(subject, ())

    def __contains__(self, cert: object) -> bool:
        return isinstance(cert, x509.Certificate) and cert in self.with_subject(cert.subject)


@functools.lru_cache(maxsize=1)
def mozilla_store() -> TrustStore:
    """The Mozilla root program, as packaged by certifi."""
    path = Path(certifi.where())
    roots = load_certificates(path.read_bytes(), str(path))
    return TrustStore(f"mozilla (certifi {certifi.__version__})", tuple(roots))


def system_store() -> TrustStore:
    """The operating system's bundle: the first of :data:`SYSTEM_BUNDLES` that exists."""
    for path in SYSTEM_BUNDLES:
        if path.is_file():
            return _load_bundle(f"system ({path})", path)
    raise UsageError(f"no system trust store found (looked for {', '.join(str(p) for p in SYSTEM_BUNDLES)})")


def ca_file_store(path: str | Path) -> TrustStore:
    """A user's PEM (or single DER) file of roots; any problem is a one-line :class:`UsageError`."""
    return _load_bundle(f"ca-file {path}", Path(path))


def _load_bundle(name: str, path: Path) -> TrustStore:
    try:
        stat = path.stat()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the CA file ({exc.strerror or exc})") from None
    if not path.is_file():
        raise UsageError(f"{path}: not a file")
    return _load_cached(name, path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _load_cached(name: str, path: Path, mtime_ns: int, size: int) -> TrustStore:
    """Keyed by modification time and size as well, so an edited file is read again."""
    del mtime_ns, size
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the CA file ({exc.strerror or exc})") from None
    roots = load_certificates(data, str(path))
    if not roots:
        raise UsageError(f"{path}: no certificates in it")
    return TrustStore(name, tuple(roots))
