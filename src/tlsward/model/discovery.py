"""What discovery finds outside a live handshake: certificates and keys in files on disk, and the TLS
listeners that nginx, Apache and HAProxy configs declare.

Plain frozen data. ``tlsward.x509.files`` and ``tlsward.configs`` produce it, ``tlsward.discovery`` walks
directories into it, and the inventory stores it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding

FileFormat = Literal["pem", "der", "pkcs12", "jks"]
ServerKind = Literal["nginx", "apache", "haproxy"]


@dataclass(frozen=True, slots=True)
class FileProblem:
    """Something wrong with one input item, located to its file (and line, when there is one)."""

    path: str
    line: int | None
    finding: Finding

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.finding.id}: {self.finding.evidence}"


@dataclass(frozen=True, slots=True)
class FoundCertificate:
    """One certificate in a file; a PEM bundle, a PKCS#12 file or a keystore holds several (``index``)."""

    path: str
    format: FileFormat
    index: int
    facts: CertificateFacts
    der: bytes
    alias: str | None = None         # keystore alias or PKCS#12 friendly name


@dataclass(frozen=True, slots=True)
class FoundKey:
    """One private key in a file, identified by its public key so it can be paired with a certificate."""

    path: str
    format: FileFormat
    index: int
    spki_sha256: str                 # same form as CertificateFacts.spki_sha256
    key_type: str                    # RSA, EC, Ed25519, Ed448, DSA
    key_bits: int
    mode: int | None = None          # the file's permission bits (st_mode & 0o777) when known


@dataclass(frozen=True, slots=True)
class FileScan:
    """The result of walking files: what was found, and a problem per item that was not."""

    certificates: tuple[FoundCertificate, ...] = ()
    keys: tuple[FoundKey, ...] = ()
    problems: tuple[FileProblem, ...] = ()
    files_seen: int = 0


@dataclass(frozen=True, slots=True)
class ConfiguredListener:
    """A TLS listener declared by a server config: where it listens, the names it answers, what it serves."""

    server: ServerKind
    config_path: str                 # the file holding the listen/bind directive
    line: int
    address: str | None              # bind address; None means every address
    port: int
    server_names: tuple[str, ...] = ()
    certificate_paths: tuple[str, ...] = ()   # absolute paths (HAProxy: a crt may name a directory)
    key_paths: tuple[str, ...] = ()
    chain_paths: tuple[str, ...] = ()         # Apache SSLCertificateChainFile and the like


@dataclass(frozen=True, slots=True)
class ConfigScan:
    """Every listener of one config tree, the files read (the root and its includes), and the problems."""

    server: ServerKind
    root: str
    listeners: tuple[ConfiguredListener, ...] = ()
    files_read: tuple[str, ...] = ()
    problems: tuple[FileProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class NetworkListener:
    """An open TCP port found by a network sweep, and whether it answered our ClientHello with TLS."""

    address: str
    port: int
    tls: bool
    detail: str                      # "TLS handshake (0x0303)", "TLS alert handshake_failure", "plaintext HTTP"

    @property
    def hostport(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"
