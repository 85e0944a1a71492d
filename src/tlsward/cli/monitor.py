"""``tlsward monitor``: the long-running prober and alerter over the inventory (docs/monitor.md)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from tlsward.cli.inventory import Db
from tlsward.model.errors import UsageError


def monitor(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Monitor config (TOML or YAML): probes, "
                                                "alerts, routes, receivers, retention (docs/monitor.md)")] = None,
    once: Annotated[bool, typer.Option("--once", help="Probe every enabled endpoint once, alert, and exit "
                                       "(for cron and CI)")] = False,
    check_config: Annotated[bool, typer.Option("--check-config", help="Validate the config and exit")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    db: Db = None,
) -> None:
    """Probe the inventory's endpoints on their intervals, record every probe, raise and resolve alerts, and
    notify the receivers. SIGTERM or Ctrl-C: in-flight probes finish, results are written, then it exits."""
    from tlsward.monitor.config import load_config

    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"--log-level {log_level!r}: expected debug, info, warning or error")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    loaded = load_config(config)
    if check_config:
        routes = len(loaded.config.routes)
        print(f"{loaded.config.source}: ok ({len(loaded.receivers)} receivers, {routes} routes)")
        return
    if not loaded.receivers:
        logging.getLogger("tlsward.monitor").warning("no receivers configured: alerts are recorded, not sent")
    asyncio.run(_run(db, loaded, once))


async def _run(db: str | None, loaded: object, once: bool) -> None:
    from tlsward.monitor.config import LoadedConfig
    from tlsward.monitor.notify import Dispatcher
    from tlsward.monitor.scheduler import Monitor

    assert isinstance(loaded, LoadedConfig)
    log = logging.getLogger("tlsward.monitor")
    dispatcher = Dispatcher.from_configs(loaded.receivers)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    monitor = Monitor(db, loaded.config, submit=dispatcher.submit, receivers=dispatcher.receivers)
    log.info("monitoring %s with %s", db or "the default inventory", loaded.config.source)
    try:
        stats = await monitor.run(stop, once=once)
    finally:
        drained = await dispatcher.close(15.0)
    for name, receiver in dispatcher.stats().items():
        log.info("receiver %s: %d sent, %d failed, %d retried, %d dropped", name, receiver.sent, receiver.failed,
                 receiver.retried, receiver.dropped)
    log.info("stopped: %d probes (%d failed), %d written, %d notifications%s", stats.probes, stats.failures,
             stats.written, stats.notifications, "" if drained else " (some notifications not delivered)")
