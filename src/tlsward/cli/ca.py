"""``tlsward ca init|issue|renew|revoke|list|crl``: the internal CA (docs/ca.md).

Passphrases and the PKCS#11 PIN come from files or the environment, never from a flag's value (it would sit in
the shell history and in ``ps``). cryptography and the CA load when a command runs, not when the CLI starts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tlsward.cli.console import LazyConsole
from tlsward.cli.inventory import Db, open_store
from tlsward.model.ca import PROFILES, REVOCATION_REASONS, IssuedRecord
from tlsward.model.errors import Error, UsageError

if TYPE_CHECKING:
    from tlsward.ca.authority import CertificateAuthority, IssuedCertificate
    from tlsward.storage import Store

app = typer.Typer(help="The internal CA: a root and an intermediate that issue short-lived server, client (mTLS) "
                       "and dual-use certificates, revoke them, and publish CRLs (docs/ca.md).",
                  no_args_is_help=True)
out = LazyConsole()
err = LazyConsole(stderr=True)

PASSPHRASE_ENV = "TLSWARD_CA_PASSPHRASE"  # noqa: S105 (the name of a variable, not a secret)
ROOT_PASSPHRASE_ENV = "TLSWARD_CA_ROOT_PASSPHRASE"  # noqa: S105
PIN_ENV = "TLSWARD_CA_PKCS11_PIN"
CA_DIR_ENV = "TLSWARD_CA_DIR"


def default_ca_dir() -> Path:
    """``$TLSWARD_CA_DIR``, else ``$XDG_DATA_HOME/tlsward/ca``, else ``~/.local/share/tlsward/ca``."""
    if env := os.environ.get(CA_DIR_ENV):
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tlsward" / "ca"


CaDir = Annotated[Path | None, typer.Option("--ca-dir", metavar="DIR", help=f"The CA directory [default: "
                                            f"${CA_DIR_ENV} or ~/.local/share/tlsward/ca]")]
PassFile = Annotated[Path | None, typer.Option("--passphrase-file", metavar="FILE", help=f"The CA passphrase (the "
                                               f"intermediate key's) is this file's first line [default: "
                                               f"${PASSPHRASE_ENV}]")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document on stdout")]
Days = Annotated[float | None, typer.Option("--days", help="Lifetime in days [default: the profile's: server 30, "
                                            "client 7, both 7]")]
Hours = Annotated[float | None, typer.Option("--hours", help="Lifetime in hours (instead of --days)")]
OutDir = Annotated[Path, typer.Option("--out-dir", metavar="DIR", help="Where to write NAME.pem, NAME.key, "
                                      "NAME.chain.pem, NAME.fullchain.pem")]


def _secret(path: Path | None, env: str, flag: str) -> str | None:
    """A secret from a file's first line, else from the environment; None when neither is given."""
    if path is not None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{flag} {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
        if not lines or not lines[0]:
            raise UsageError(f"{flag} {path}: the first line is empty")
        return lines[0]
    value = os.environ.get(env)
    return value or None


def _passphrase(path: Path | None) -> bytes | None:
    value = _secret(path, PASSPHRASE_ENV, "--passphrase-file")
    return None if value is None else value.encode()


def _open(ca_dir: Path | None, store: Store, passphrase_file: Path | None) -> CertificateAuthority:
    from tlsward.ca.authority import CertificateAuthority

    return CertificateAuthority.open(ca_dir or default_ca_dir(), store, passphrase=_passphrase(passphrase_file))


def _serial(text: str) -> int:
    """A serial as ``tlsward ca list`` and ``openssl x509 -serial`` print it: hex, colons and ``0x`` allowed."""
    cleaned = text.strip().lower().removeprefix("serial=").removeprefix("0x").replace(":", "")
    try:
        value = int(cleaned, 16)
    except ValueError:
        raise UsageError(f"serial {text!r}: not a hexadecimal serial number (see `tlsward ca list`)") from None
    if value <= 0:
        raise UsageError(f"serial {text!r}: serials are positive")
    return value


def _lifetime(days: float | None, hours: float | None) -> dt.timedelta | None:
    if days is not None and hours is not None:
        raise UsageError("give --days or --hours, not both")
    if days is not None:
        return dt.timedelta(days=days)
    if hours is not None:
        return dt.timedelta(hours=hours)
    return None


def _stem(name: str) -> str:
    return name.replace("*", "wildcard").replace(":", "_").replace("/", "_")


def _write_issued(issued: IssuedCertificate, out_dir: Path, key_pem: bytes | None) -> dict[str, str]:
    """cert, chain and fullchain (0644) and the key (0600), each written atomically; what was written."""
    from cryptography.x509 import DNSName, IPAddress, SubjectAlternativeName

    from tlsward.ca.keys import write_atomic

    san = issued.certificate.extensions.get_extension_for_class(SubjectAlternativeName).value
    first = [*san.get_values_for_type(DNSName), *(str(ip) for ip in san.get_values_for_type(IPAddress))][0]
    stem = out_dir / _stem(first)
    files = {"cert": f"{stem}.pem", "chain": f"{stem}.chain.pem", "fullchain": f"{stem}.fullchain.pem"}
    try:
        if key_pem is not None:
            files["key"] = f"{stem}.key"
            write_atomic(Path(files["key"]), key_pem, mode=0o600)
        write_atomic(Path(files["cert"]), issued.cert_pem())
        write_atomic(Path(files["chain"]), issued.chain_pem())
        write_atomic(Path(files["fullchain"]), issued.fullchain_pem())
    except OSError as exc:
        raise UsageError(f"--out-dir {out_dir}: cannot write there ({exc.strerror or exc})") from None
    return files


def _record_json(record: IssuedRecord, now: dt.datetime) -> dict[str, Any]:
    return {"serial": f"{record.serial:x}", "subject": record.subject, "names": list(record.names),
            "profile": record.profile, "key_type": record.key_type, "not_before": record.not_before.isoformat(),
            "not_after": record.not_after.isoformat(), "issued_at": record.issued_at.isoformat(),
            "requester": record.requester, "sha256": record.sha256,
            "replaces": None if record.replaces is None else f"{record.replaces:x}",
            "status": "revoked" if record.revoked else "expired" if record.expired(now) else "valid",
            "revoked_at": None if record.revoked_at is None else record.revoked_at.isoformat(),
            "revocation_reason": record.revocation_reason}


def _issued_json(issued: IssuedCertificate, files: dict[str, str]) -> dict[str, Any]:
    cert = issued.certificate
    return {"serial": f"{issued.serial:x}", "profile": issued.profile, "subject": cert.subject.rfc4514_string(),
            "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
            "files": files}


def _report_issued(issued: IssuedCertificate, files: dict[str, str], as_json: bool, verb: str) -> None:
    if as_json:
        print(json.dumps(_issued_json(issued, files), indent=2))
        return
    cert = issued.certificate
    out.print(f"{verb} serial {issued.serial:x} ({issued.profile}), valid until "
              f"{cert.not_valid_after_utc:%Y-%m-%d %H:%M}Z", highlight=False)
    for kind, path in files.items():
        out.print(f"  {kind:9} {path}", highlight=False)


@app.command("init")
def init(
    name: Annotated[str, typer.Option("--name", help="The CA's name (organisation; the CNs are NAME Root CA and "
                                      "NAME Intermediate CA)")],
    ca_dir: CaDir = None,
    key_type: Annotated[str, typer.Option("--key-type", help="CA key type: ecdsa-p256, ecdsa-p384, rsa-3072, "
                                          "rsa-4096")] = "ecdsa-p256",
    permit: Annotated[list[str] | None, typer.Option("--permit", help="Name constraint: a DNS suffix or an IP "
                                                     "network the CA may issue for (repeatable)")] = None,
    crl_url: Annotated[str | None, typer.Option("--crl-url", help="CRL distribution point put in every leaf, e.g. "
                                                "http://ca.internal:8080/ca/crl")] = None,
    ocsp_url: Annotated[str | None, typer.Option("--ocsp-url", help="OCSP responder put in every leaf (AIA), e.g. "
                                                 "http://ca.internal:8080/ca/ocsp")] = None,
    policy: Annotated[str | None, typer.Option("--policy", help="A policy profile or file whose key types, sizes "
                                               "and max_cert_lifetime_days bind every issuance")] = None,
    lifetime: Annotated[list[str] | None, typer.Option("--lifetime", metavar="PROFILE=DAYS",
                                                       help="Default lifetime of a profile (repeatable)")] = None,
    crl_validity_hours: Annotated[float, typer.Option("--crl-validity-hours", help="nextUpdate of the "
                                                      "intermediate's CRL; republished at half of it")] = 24.0,
    passphrase_file: PassFile = None,
    root_passphrase_file: Annotated[Path | None, typer.Option(
        "--root-passphrase-file", metavar="FILE", help=f"The root key's passphrase [default: ${ROOT_PASSPHRASE_ENV}, "
        "else the CA passphrase]")] = None,
    pkcs11_module: Annotated[str | None, typer.Option("--pkcs11-module", metavar="SO", help="Keep the root key in "
                                                      "a PKCS#11 token (e.g. /usr/lib/softhsm/libsofthsm2.so)")] = None,
    pkcs11_token: Annotated[str | None, typer.Option("--pkcs11-token", help="The token's label")] = None,
    pkcs11_key_label: Annotated[str, typer.Option("--pkcs11-key-label", help="The root key's label in the token")
                                ] = "tlsward-root",
    pkcs11_pin_file: Annotated[Path | None, typer.Option("--pkcs11-pin-file", metavar="FILE",
                                                         help=f"The token's user PIN [default: ${PIN_ENV}]")] = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Create a root and an intermediate, register the CA in the inventory, publish the first CRLs."""
    from tlsward.ca.authority import CertificateAuthority
    from tlsward.ca.keys import Pkcs11Config

    root_secret = _secret(root_passphrase_file, ROOT_PASSPHRASE_ENV, "--root-passphrase-file")
    pkcs11 = None
    if pkcs11_module is not None:
        if not pkcs11_token:
            raise UsageError("--pkcs11-module needs --pkcs11-token (the token's label)")
        pkcs11 = Pkcs11Config(pkcs11_module, pkcs11_token, pkcs11_key_label,
                              _secret(pkcs11_pin_file, PIN_ENV, "--pkcs11-pin-file"))
    lifetimes: dict[str, float] = {}
    for item in lifetime or ():
        profile, _, days = item.partition("=")
        try:
            lifetimes[profile.strip()] = float(days)
        except ValueError:
            raise UsageError(f"--lifetime {item!r}: expected PROFILE=DAYS ({', '.join(PROFILES)})") from None
    directory = ca_dir or default_ca_dir()
    with open_store(db) as store:
        ca = CertificateAuthority.init(
            directory, store, name=name, passphrase=_passphrase(passphrase_file),
            root_passphrase=None if root_secret is None else root_secret.encode(), pkcs11=pkcs11, key_type=key_type,
            permitted_names=tuple(permit or ()), crl_url=crl_url, ocsp_url=ocsp_url, policy=policy,
            lifetimes=lifetimes, crl_validity=dt.timedelta(hours=crl_validity_hours))
        summary = {"ca_dir": str(directory), "name": name, "key_id": ca.key_id,
                   "root": str(directory / "root.pem"), "intermediate": str(directory / "intermediate.pem"),
                   "root_key": "pkcs11" if pkcs11 else str(directory / "root.key"),
                   "crl": str(directory / "crl.pem"), "policy": ca.config.policy}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    out.print(f"CA {name!r} created in {directory} (intermediate key id {ca.key_id[:16]}…)", highlight=False)
    out.print(f"  trust this root: {summary['root']}", highlight=False)
    if not _passphrase(passphrase_file):
        out.print("  the intermediate key is stored unencrypted (0600): give --passphrase-file or "
                  f"${PASSPHRASE_ENV} to encrypt it", highlight=False)


@app.command("issue")
def issue(
    name: Annotated[list[str] | None, typer.Option("--name", help="A DNS name or IP address (repeatable; the first "
                                                   "is the subject CN)")] = None,
    profile: Annotated[str, typer.Option("--profile", help="server, client (mTLS) or both")] = "server",
    days: Days = None,
    hours: Hours = None,
    key_type: Annotated[str, typer.Option("--key-type", help="Key to generate: ecdsa-p256, ecdsa-p384, rsa-2048, "
                                          "rsa-3072, rsa-4096, ed25519")] = "ecdsa-p256",
    csr: Annotated[Path | None, typer.Option("--csr", metavar="FILE", help="Sign this CSR (PEM or DER) instead of "
                                             "generating a key; its subjectAltName gives the names when --name "
                                             "is absent")] = None,
    out_dir: OutDir = Path(),
    ca_dir: CaDir = None,
    passphrase_file: PassFile = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Issue a certificate: a new key (0600) or a CSR's, the certificate, its chain and full chain."""
    from tlsward.ca.authority import load_csr
    from tlsward.ca.keys import check_key_type, generate_key, private_key_pem

    lifetime = _lifetime(days, hours)
    request = None
    if csr is not None:
        try:
            request = load_csr(csr.read_bytes(), f"--csr {csr}")
        except OSError as exc:
            raise UsageError(f"--csr {csr}: cannot read it ({exc.strerror or exc})") from None
    elif not name:
        raise UsageError("give at least one --name (or --csr FILE)")
    key = None if request is not None else generate_key(check_key_type(key_type))
    with open_store(db) as store:
        ca = _open(ca_dir, store, passphrase_file)
        issued = ca.issue(names=tuple(name or ()), public_key=None if key is None else key.public_key(),
                          csr=request, profile=profile, lifetime=lifetime)
    files = _write_issued(issued, out_dir, None if key is None else private_key_pem(key, None))
    _report_issued(issued, files, as_json, "issued")


@app.command("renew")
def renew(
    serial: Annotated[str | None, typer.Argument(help="The serial to renew (hex, as `tlsward ca list` prints)")] = None,
    cert: Annotated[Path | None, typer.Option("--cert", metavar="FILE", help="The certificate to renew, instead of "
                                              "its serial")] = None,
    reuse_key: Annotated[bool, typer.Option("--reuse-key", help="Certify the same public key again (no key file is "
                                            "written)")] = False,
    key_type: Annotated[str | None, typer.Option("--key-type", help="Type of the new key [default: the old key's "
                                                 "type]")] = None,
    days: Days = None,
    hours: Hours = None,
    out_dir: OutDir = Path(),
    ca_dir: CaDir = None,
    passphrase_file: PassFile = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Reissue a certificate's names and profile with a new key (or the same with --reuse-key)."""
    from tlsward.ca.keys import KEY_TYPES, check_key_type, generate_key, private_key_pem

    if (serial is None) == (cert is None):
        raise UsageError("give the SERIAL to renew or --cert FILE (one of them)")
    with open_store(db) as store:
        ca = _open(ca_dir, store, passphrase_file)
        number = _serial(serial) if serial is not None else _serial_of_file(cert, ca)  # type: ignore[arg-type]
        record = ca.record(number)
        key = None
        if not reuse_key:
            wanted = key_type or (record.key_type if record.key_type in KEY_TYPES else "ecdsa-p256")
            key = generate_key(check_key_type(wanted))
        issued = ca.renew(number, public_key=None if key is None else key.public_key(),
                          lifetime=_lifetime(days, hours))
    files = _write_issued(issued, out_dir, None if key is None else private_key_pem(key, None))
    _report_issued(issued, files, as_json, f"renewed {number:x} as")


def _serial_of_file(path: Path, ca: CertificateAuthority) -> int:
    from cryptography import x509

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--cert {path}: cannot read it ({exc.strerror or exc})") from None
    try:
        cert = x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError:
        raise UsageError(f"--cert {path}: not a PEM or DER certificate") from None
    if cert.issuer != ca.intermediate.subject:
        raise UsageError(f"--cert {path}: issued by {cert.issuer.rfc4514_string()}, not by this CA")
    return cert.serial_number


@app.command("revoke")
def revoke(
    serial: Annotated[str, typer.Argument(help="The serial to revoke (hex)")],
    reason: Annotated[str, typer.Option("--reason", help=f"RFC 5280 reason: {', '.join(REVOCATION_REASONS[:-1])}")
                      ] = "unspecified",
    ca_dir: CaDir = None,
    passphrase_file: PassFile = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Revoke a certificate and publish a new CRL at once (crl.der / crl.pem in the CA directory)."""
    from cryptography import x509

    try:
        flag = x509.ReasonFlags(reason)
    except ValueError:
        raise UsageError(f"--reason {reason!r}: not one of {', '.join(REVOCATION_REASONS[:-1])}") from None
    number = _serial(serial)
    with open_store(db) as store:
        ca = _open(ca_dir, store, passphrase_file)
        ca.revoke(number, reason=flag)
        crl = ca.crl()
    from tlsward.ca.crl import crl_number

    if as_json:
        print(json.dumps({"serial": f"{number:x}", "reason": reason, "crl_number": crl_number(crl),
                          "crl": str(ca.directory / "crl.pem")}, indent=2))
        return
    out.print(f"revoked {number:x} ({reason}); CRL {crl_number(crl)} written to {ca.directory / 'crl.pem'}",
              highlight=False)


@app.command("list")
def list_(
    include_expired: Annotated[bool, typer.Option("--all", help="Include expired certificates")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Only certificates for this name")] = None,
    ca_dir: CaDir = None,
    passphrase_file: PassFile = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Certificates this CA issued, newest first: serial, names, profile, validity, revocation."""
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        ca = _open(ca_dir, store, passphrase_file)
        records = ca.certificates(include_expired=include_expired, name=name, now=now)
    if as_json:
        print(json.dumps([_record_json(r, now) for r in records], indent=2))
        return
    from rich.table import Table

    table = Table(title=f"certificates issued by {ca.config.name} ({len(records)})")
    for column in ("serial", "names", "profile", "key", "not after", "status"):
        table.add_column(column, overflow="fold")
    for r in records:
        status = (f"[red]revoked {r.revoked_at:%Y-%m-%d} ({r.revocation_reason})[/]" if r.revoked_at
                  else "[yellow]expired[/]" if r.expired(now) else "valid")
        table.add_row(f"{r.serial:x}", ", ".join(r.names), r.profile, r.key_type, f"{r.not_after:%Y-%m-%d %H:%M}Z",
                      status)
    out.print(table)


@app.command("crl")
def crl(
    out_file: Annotated[Path | None, typer.Option("--out", metavar="FILE", help="Write the CRL here instead of "
                                                  "printing it")] = None,
    der: Annotated[bool, typer.Option("--der", help="DER instead of PEM")] = False,
    bundle: Annotated[bool, typer.Option("--bundle", help="Root CRL + intermediate CRL, PEM (what nginx's ssl_crl "
                                         "needs with ssl_verify_depth 2)")] = False,
    publish: Annotated[bool, typer.Option("--publish", help="Sign a new CRL now, even if the current one is "
                                          "fresh")] = False,
    root: Annotated[bool, typer.Option("--root", help="Re-sign the root CRL (needs the root key: "
                                       "--root-passphrase-file or the PKCS#11 PIN)")] = False,
    root_passphrase_file: Annotated[Path | None, typer.Option("--root-passphrase-file", metavar="FILE")] = None,
    pkcs11_pin_file: Annotated[Path | None, typer.Option("--pkcs11-pin-file", metavar="FILE")] = None,
    ca_dir: CaDir = None,
    passphrase_file: PassFile = None,
    db: Db = None,
) -> None:
    """The current CRL (republished when half of its validity has passed), as PEM on stdout or to --out."""
    from cryptography.hazmat.primitives import serialization

    from tlsward.ca.keys import write_atomic

    if der and bundle:
        raise UsageError("--bundle is PEM only; drop --der")
    with open_store(db) as store:
        ca = _open(ca_dir, store, passphrase_file)
        if root:
            secret = _secret(root_passphrase_file, ROOT_PASSPHRASE_ENV, "--root-passphrase-file")
            secret = secret or (None if (p := _passphrase(passphrase_file)) is None else p.decode())
            ca.resign_root_crl(root_passphrase=None if secret is None else secret.encode(),
                               pkcs11_pin=_secret(pkcs11_pin_file, PIN_ENV, "--pkcs11-pin-file"))
        current = ca.publish_crl() if publish else ca.crl()
        encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
        data = current.public_bytes(encoding)
        if bundle:
            data = data + ca.root_crl().public_bytes(serialization.Encoding.PEM)
    if out_file is None:
        if der:
            sys.stdout.buffer.write(data)
        else:
            sys.stdout.write(data.decode())
        return
    try:
        write_atomic(out_file, data)
    except OSError as exc:
        raise UsageError(f"--out {out_file}: cannot write it ({exc.strerror or exc})") from None


def main() -> None:
    """``python -m tlsward.cli.ca``: this sub-app alone, with tlsward's one-line errors and exit codes."""
    try:
        app()
    except Error as exc:
        from tlsward.cli.main import exit_code_for

        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))


if __name__ == "__main__":
    main()
