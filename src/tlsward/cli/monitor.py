"""``tlsward monitor``: the long-running prober and alerter over the inventory (docs/monitor.md)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tlsward.cli.inventory import Db
from tlsward.model.errors import UsageError


def monitor(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Monitor config (TOML or YAML): probes, "
                                                "alerts, routes, receivers, retention (docs/monitor.md)")] = None,
    once: Annotated[bool, typer.Option("--once", help="Probe every enabled endpoint once, alert, and exit "
                                       "(for cron and CI)")] = False,
    deep: Annotated[bool, typer.Option("--deep", help="Make every probe of this run a deep scan (all versions, "
                                       "suites, groups; the policy): with --once, a full audit round")] = False,
    check_config: Annotated[bool, typer.Option("--check-config", help="Validate the config and exit")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    listen: Annotated[str | None, typer.Option(help="Serve Prometheus /metrics (inventory state and this "
                                               "monitor's live probe statistics) on HOST:PORT")] = None,
    distributed: Annotated[bool, typer.Option("--distributed", help="Be the scheduler of `tlsward worker`s: send "
                                              "due probes to each endpoint's zone queue instead of probing here "
                                              "(docs/distributed.md)")] = False,
    broker: Annotated[str | None, typer.Option("--broker", metavar="URL", help="With --distributed: "
                                               "redis://HOST:6379/0 or amqp://USER:PASS@HOST:5672// [default: "
                                               "$TLSWARD_BROKER or the config's [distributed] broker]")] = None,
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
    settings = None
    if distributed or broker is not None:
        from tlsward.distributed.settings import load_settings

        settings = load_settings(config, broker=broker)
        if distributed:
            settings.broker_url()           # a usage error now, not after start-up
        else:
            raise UsageError("--broker is for --distributed")
    if check_config:
        routes = len(loaded.config.routes)
        print(f"{loaded.config.source}: ok ({len(loaded.receivers)} receivers, {routes} routes)")
        return
    address = parse_listen(listen) if listen is not None else None
    if not loaded.receivers:
        logging.getLogger("tlsward.monitor").warning("no receivers configured: alerts are recorded, not sent")
    asyncio.run(_run(db, loaded, once, address, deep, settings))


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT`` -> (host, port); a one-line usage error naming the input."""
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9108")
    return host, int(port)


GRACEFUL_SHUTDOWN_S = 5       # requests in flight get this long to finish after SIGTERM


async def serve_asgi(app: Any, address: tuple[str, int], stop: asyncio.Event,
                     tls: tuple[str, str] | None = None, *, http: Any = "auto") -> None:
    """Run an ASGI app with uvicorn in this event loop until ``stop`` is set. Uvicorn's own signal handling is
    switched off: SIGTERM must stop the monitor (which then stops the server), not only the server. Shutdown is
    bounded (:data:`GRACEFUL_SHUTDOWN_S`): an idle keep-alive TLS client that never closes must not keep the
    process alive after SIGTERM. ``http``: uvicorn's HTTP protocol (a class, or "auto")."""
    import contextlib

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=address[0], port=address[1], log_level="warning",
                                           lifespan="on", access_log=False, http=http,
                                           timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
                                           ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task


async def _run(db: str | None, loaded: object, once: bool, address: tuple[str, int] | None, deep: bool,
               settings: object = None) -> None:
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
    if settings is not None:
        from tlsward.distributed.scheduler import DistributedScheduler
        from tlsward.distributed.settings import DistributedSettings, redact

        assert isinstance(settings, DistributedSettings)
        monitor: Monitor = DistributedScheduler(db, loaded.config, settings, submit=dispatcher.submit,
                                                receivers=dispatcher.receivers, force_deep=deep)
        log.info("distributed: probes go to the zone queues on %s", redact(settings.broker_url()))
    else:
        monitor = Monitor(db, loaded.config, submit=dispatcher.submit, receivers=dispatcher.receivers,
                          force_deep=deep)
    log.info("monitoring %s with %s", db or "the default inventory", loaded.config.source)
    metrics: asyncio.Task[None] | None = None
    if address is not None:
        from tlsward.exporter.app import metrics_app
        from tlsward.storage import default_url

        exporter = metrics_app(db or default_url(), monitor.probe_stats)
        if settings is not None:
            from tlsward.distributed.metrics import DistributedCollector

            exporter.registry.register(DistributedCollector(lambda: exporter.store,
                                                            stale_after_s=settings.worker_stale_after_s))
        metrics = asyncio.create_task(serve_asgi(exporter, address, stop))
        log.info("serving /metrics on http://%s:%d/metrics", *address)
    try:
        stats = await monitor.run(stop, once=once)
    finally:
        stop.set()
        if metrics is not None:
            await metrics
        drained = await dispatcher.close(15.0)
    for name, receiver in dispatcher.stats().items():
        log.info("receiver %s: %d sent, %d failed, %d retried, %d dropped", name, receiver.sent, receiver.failed,
                 receiver.retried, receiver.dropped)
    sent = getattr(stats, "enqueued", None)
    if sent is not None:        # --distributed: the workers probed and wrote
        log.info("distributed: %d probes sent, %d seen written, %d sent again, %d abandoned, %d broker outages",
                 sent, getattr(stats, "done", 0), getattr(stats, "resent", 0), getattr(stats, "abandoned", 0),
                 getattr(stats, "broker_outages", 0))
    log.info("stopped: %d probes (%d failed), %d written, %d notifications%s", stats.probes, stats.failures,
             stats.written, stats.notifications, "" if drained else " (some notifications not delivered)")
