"""``tlsward serve``: the HTTP side of tlsward. Today: Prometheus ``/metrics`` over the inventory."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from typing import Annotated

import typer

from tlsward.cli.inventory import Db
from tlsward.cli.monitor import parse_listen, serve_asgi


def serve(
    listen: Annotated[str, typer.Option(help="HOST:PORT to listen on")] = "127.0.0.1:9108",
    db: Db = None,
) -> None:
    """Serve /metrics for Prometheus: certificate expiry (leaf and effective chain), probe results, versions,
    ciphers, findings and alerts, read from the inventory at every scrape (docs/metrics.md)."""
    from tlsward.exporter.app import metrics_app
    from tlsward.storage import default_url

    address = parse_listen(listen)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = metrics_app(db or default_url())

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        logging.getLogger("tlsward.serve").info("serving http://%s:%d/metrics", *address)
        await serve_asgi(app, address, stop)

    asyncio.run(run())
