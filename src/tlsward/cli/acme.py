"""``tlsward acme serve|eab``: the ACME server (RFC 8555) over the internal CA, alone; and External Account
Binding keys for it. ``tlsward serve --acme`` mounts the same app at ``/acme`` (docs/acme-server.md)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tlsward.cli.inventory import Db, open_store
from tlsward.model.errors import UsageError

if TYPE_CHECKING:
    from tlsward.acme.server import IdentifierPolicy, ValidationSettings
    from tlsward.storage import Store

app = typer.Typer(help="The ACME server (RFC 8555) over the internal CA: serve it, manage EAB keys.",
                  no_args_is_help=True)
eab_app = typer.Typer(help="External Account Binding keys: add (the HMAC key is shown once), list.",
                      no_args_is_help=True)
app.add_typer(eab_app, name="eab")
out = Console(soft_wrap=True, highlight=False)

CaDir = Annotated[Path | None, typer.Option("--ca-dir", help="The internal CA's directory (`tlsward ca init`) "
                                            "[default: $TLSWARD_CA_DIR, else ~/.local/share/tlsward/ca]")]
PassphraseFile = Annotated[Path | None, typer.Option(
    "--passphrase-file", help="File holding the intermediate key's passphrase (default: $TLSWARD_CA_PASSPHRASE)")]


def read_passphrase(path: Path | None) -> bytes | None:
    if path is not None:   # the first line, as `tlsward ca` reads it
        try:
            lines = path.read_bytes().splitlines()
        except OSError as exc:
            raise UsageError(f"--passphrase-file {path}: {exc.strerror}") from None
        return lines[0] if lines else None
    value = os.environ.get("TLSWARD_CA_PASSPHRASE")
    return value.encode() if value else None


def parse_host_port(value: str, option: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} {value!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


def load_policy(path: Path | None) -> IdentifierPolicy:
    from tlsward.acme.server import IdentifierPolicy

    if path is None:
        return IdentifierPolicy()
    try:
        return IdentifierPolicy.load(path)
    except OSError as exc:
        raise UsageError(f"--policy {path}: {exc.strerror}") from None
    except ValueError as exc:   # tomllib.TOMLDecodeError is a ValueError
        raise UsageError(f"--policy {path}: {exc}") from None


def validation_settings(http_port: int, tls_alpn_port: int, dns_resolver: str | None,
                        validation_address: str | None) -> ValidationSettings:
    from tlsward.acme.server import ValidationSettings

    return ValidationSettings(http_port=http_port, tls_port=tls_alpn_port,
                              dns_resolver=parse_host_port(dns_resolver, "--dns-resolver") if dns_resolver else None,
                              validation_address=validation_address)


def build_acme_apps(ca_dir: Path | None, store: Store, passphrase: bytes | None, policy: IdentifierPolicy,
                    validation: ValidationSettings, *, require_eab: bool, base_url: str | None
                    ) -> tuple[Any, Any | None]:
    """The ACME app and, when ``tlsward.ca.http`` provides it, the CA's CRL/OCSP app, over one open CA."""
    import importlib

    from tlsward.ca.authority import CertificateAuthority
    from tlsward.cli.ca import default_ca_dir
    from tlsward.lifecycle.acme_service import create_acme_service

    ca_dir = ca_dir or default_ca_dir()

    try:
        ca = CertificateAuthority.open(ca_dir, store, passphrase=passphrase)
    except Exception as exc:
        raise UsageError(f"--ca-dir {ca_dir}: {exc}") from None
    acme = create_acme_service(ca_dir, store, ca=ca, policy=policy, base_url=base_url, validation=validation,
                               require_eab=require_eab)
    try:
        ca_http = importlib.import_module("tlsward.ca.http")
    except ImportError:
        return acme, None
    return acme, ca_http.create_ca_app(ca)


class _CoalescingTransport:
    """Writes made in one event-loop turn go out as one: uvicorn writes a response's head and body separately,
    which over TLS is two records and two ``send`` calls; ACME responses are small and many (clients poll), and
    the system call is dearer than the rest of the response (``bench/bench_acme.py``)."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _coalescing_protocol() -> type[asyncio.Protocol]:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class CoalescingH11Protocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(_CoalescingTransport(transport, asyncio.get_running_loop()))  # type: ignore[arg-type]

    return CoalescingH11Protocol


@app.command()
def serve(
    ca_dir: CaDir = None,
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:14000",
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate chain "
                                                  "(ACME clients expect HTTPS)")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The private key for --tls-cert")] = None,
    policy: Annotated[Path | None, typer.Option("--policy", help="Identifier policy (TOML): which names and IP "
                                                "addresses accounts may get; default: any valid name")] = None,
    http_port: Annotated[int, typer.Option("--http-port", help="Port http-01 validation connects to")] = 80,
    tls_alpn_port: Annotated[int, typer.Option("--tls-alpn-port", help="Port tls-alpn-01 connects to")] = 443,
    dns_resolver: Annotated[str | None, typer.Option("--dns-resolver", metavar="HOST:PORT",
                                                     help="Resolver for dns-01 (default: the system's)")] = None,
    validation_address: Annotated[str | None, typer.Option(
        "--validation-address", help="Connect here for every name instead of resolving it (tests, labs)")] = None,
    require_eab: Annotated[bool, typer.Option("--require-eab", help="New accounts need an External Account "
                                              "Binding (`tlsward acme eab add`)")] = False,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Public URL of /acme when behind a proxy "
                                                 "(default: from each request)")] = None,
    passphrase_file: PassphraseFile = None,
    db: Db = None,
) -> None:
    """Run the ACME server alone: the directory is at /acme/directory, CRL and OCSP under /ca."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from tlsward.cli.monitor import parse_listen, serve_asgi

    address = parse_listen(listen)
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (tls_cert, tls_key):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such file")
    loaded = load_policy(policy)
    validation = validation_settings(http_port, tls_alpn_port, dns_resolver, validation_address)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open_store(db) as store:
        acme, ca_http = build_acme_apps(ca_dir, store, read_passphrase(passphrase_file), loaded, validation,
                                        require_eab=require_eab, base_url=base_url)
        routes = [Mount("/acme", app=acme)] + ([Mount("/ca", app=ca_http)] if ca_http is not None else [])
        root = Starlette(routes=routes)
        scheme = "https" if tls_cert else "http"

        async def run() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stop.set)
            logging.getLogger("tlsward.acme").info("ACME directory at %s://%s:%d/acme/directory", scheme, *address)
            try:
                await serve_asgi(root, address, stop, tls=(str(tls_cert), str(tls_key))
                                 if tls_cert and tls_key else None, http=_coalescing_protocol())
            finally:
                await acme.state.acme.aclose()

        asyncio.run(run())


@eab_app.command("add")
def eab_add(
    label: Annotated[str, typer.Option(help="Who the key is for (shown in `eab list`)")] = "",
    kid: Annotated[str | None, typer.Option(help="The key id (default: random); an [accounts.KID] table in the "
                                            "--policy file gives accounts bound with it their own names")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    db: Db = None,
) -> None:
    """Create an EAB key id and HMAC key for one account to bind; the HMAC key is shown once."""
    from tlsward.model.acme import AcmeEabKey
    from tlsward.storage.acme import AcmeStore

    key_id = kid or secrets.token_urlsafe(12)
    if not key_id or len(key_id) > 128:
        raise UsageError("--kid: 1 to 128 characters")
    mac = secrets.token_bytes(32)
    encoded = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with open_store(db) as store:
        acme = AcmeStore(store)
        if acme.eab_key(key_id) is not None:
            raise UsageError(f"--kid {key_id}: exists already")
        acme.add_eab_key(AcmeEabKey(kid=key_id, hmac_key=mac, label=label, created_at=dt.datetime.now(dt.UTC)))
    if as_json:
        print(json.dumps({"kid": key_id, "hmac_key": encoded, "label": label}))
        return
    out.print(f"EAB key id:  {key_id}")
    out.print(f"HMAC key:    {encoded}")
    out.print("certbot: --eab-kid KID --eab-hmac-key KEY; lego: --eab --kid KID --hmac KEY. Shown once.")


@eab_app.command("list")
def eab_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False, db: Db = None) -> None:
    """Every EAB key: id, label, created, the account it is bound to."""
    from tlsward.storage.acme import AcmeStore

    with open_store(db) as store:
        keys = AcmeStore(store).eab_keys()
    for key in keys:
        if as_json:
            print(json.dumps({"kid": key.kid, "label": key.label, "created_at": key.created_at.isoformat(),
                              "account": key.account_id}))
        else:
            out.print(f"{key.kid}\t{key.label or '-'}\t{key.created_at:%Y-%m-%d %H:%M}\t"
                      f"{key.account_id or 'unbound'}")
