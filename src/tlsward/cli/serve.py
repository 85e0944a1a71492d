"""``tlsward serve``: the dashboards, the JSON API (``/api/v1``) and ``/metrics`` from one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

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
    app = create_app(WebSettings(db_url=db or default_url(), https=tls_cert is not None,
                                 anonymous_read=anonymous_read, ca_files=tuple(str(p) for p in ca_file or ())))
    scheme = "https" if tls_cert is not None else "http"

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("tlsward.serve").info("serving %s://%s:%d/ (API /api/v1, /metrics)", scheme, *address)
        await serve_asgi(app, address, stop, tls=(str(tls_cert), str(tls_key)) if tls_cert and tls_key else None)

    asyncio.run(run())
