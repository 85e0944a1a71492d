"""``tlsward serve``: the dashboards, the JSON API (``/api/v1``) and ``/metrics`` from one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tlsward.cli.inventory import Db
from tlsward.cli.monitor import parse_listen, serve_asgi
from tlsward.model.errors import UsageError


def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on (loopback unless you say otherwise)")]
    = "127.0.0.1:8443",
    tls_cert: Annotated[Path | None, typer.Option("--tls-cert", help="Serve HTTPS with this certificate chain "
                                                  "(PEM); then cookies are Secure and HSTS is sent")] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="The private key for --tls-cert")] = None,
    anonymous_read: Annotated[bool, typer.Option("--anonymous-read", help="Let anyone who can reach it read "
                                                 "(viewer role) without a token")] = False,
    ca_file: Annotated[list[Path] | None, typer.Option("--ca-file", help="Extra trust store (internal CA bundle) "
                                                       "for scans started from the web or the API")] = None,
    acme: Annotated[bool, typer.Option("--acme", help="Also serve the ACME server at /acme (and the CA's CRL and "
                                       "OCSP at /ca) over the CA in --ca-dir (docs/acme-server.md)")] = False,
    ca_dir: Annotated[Path | None, typer.Option("--ca-dir", help="The internal CA's directory, for --acme "
                                                  "[default: $TLSWARD_CA_DIR, else ~/.local/share/tlsward/ca]")] = None,
    acme_policy: Annotated[Path | None, typer.Option("--acme-policy", help="Identifier policy (TOML) for --acme")]
    = None,
    acme_require_eab: Annotated[bool, typer.Option("--acme-require-eab", help="ACME accounts need an External "
                                                   "Account Binding")] = False,
    passphrase_file: Annotated[Path | None, typer.Option("--passphrase-file", help="The CA intermediate key's "
                                                         "passphrase (default: $TLSWARD_CA_PASSPHRASE)")] = None,
    db: Db = None,
) -> None:
    """Serve the web dashboards, the JSON API and Prometheus /metrics over the inventory (docs/web.md)."""
    from tlsward.storage import default_url
    from tlsward.web.app import create_app
    from tlsward.web.settings import WebSettings

    address = parse_listen(listen)
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for path in (tls_cert, tls_key, *(ca_file or ())):
        if path is not None and not path.is_file():
            raise UsageError(f"{path}: no such file")
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = WebSettings(db_url=db or default_url(), https=tls_cert is not None,
                           anonymous_read=anonymous_read, ca_files=tuple(str(p) for p in ca_file or ()))
    mounts: list[tuple[str, Any]] = []
    acme_app: Any = None
    if acme:
        from tlsward.cli.acme import build_acme_apps, load_policy, read_passphrase, validation_settings
        from tlsward.storage import open_store

        acme_store = open_store(settings.db_url)
        acme_app, ca_app = build_acme_apps(ca_dir, acme_store, read_passphrase(passphrase_file),
                                           load_policy(acme_policy), validation_settings(80, 443, None, None),
                                           require_eab=acme_require_eab, base_url=None)
        mounts = [("/acme", acme_app)] + ([("/ca", ca_app)] if ca_app is not None else [])
    app = create_app(settings, mounts=mounts)
    scheme = "https" if tls_cert is not None else "http"

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("tlsward.serve").info("serving %s://%s:%d/ (API /api/v1, /metrics)", scheme, *address)
        try:
            await serve_asgi(app, address, stop, tls=(str(tls_cert), str(tls_key)) if tls_cert and tls_key else None)
        finally:
            if acme_app is not None:
                await acme_app.state.acme.aclose()

    asyncio.run(run())
