"""``tlsward worker`` (a distributed probe worker for one zone) and ``tlsward workers`` (workers, zones, queue
depths and lag); docs/distributed.md.

Both are plain functions registered by ``tlsward.cli.main``; ``app`` holds the two for tests and for
``python -m tlsward.cli.worker``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from tlsward.cli.inventory import Db
from tlsward.model.distributed import DEFAULT_ZONE, WorkerRecord, ZoneState
from tlsward.model.errors import UsageError

Broker = Annotated[str | None, typer.Option("--broker", metavar="URL", help="redis://HOST:6379/0 or "
                                            "amqp://USER:PASS@HOST:5672// [default: $TLSWARD_BROKER or the "
                                            "config's [distributed] broker]")]
Config = Annotated[Path | None, typer.Option("--config", "-c", help="The monitor's config file: [probes] (timeouts, "
                                             "CA files, deep scans) and [distributed] (docs/distributed.md)")]


def _logging(level_name: str) -> None:
    level = getattr(logging, level_name.upper(), None)
    if not isinstance(level, int):
        raise UsageError(f"--log-level {level_name!r}: expected debug, info, warning or error")
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def worker(
    zone: Annotated[str, typer.Option("--zone", "-z", help="The zone whose probes this worker runs (endpoints carry "
                                      "a zone; `default` unless set)")] = DEFAULT_ZONE,
    concurrency: Annotated[int, typer.Option("--concurrency", "-n", min=1, max=512,
                                             help="Worker processes (each runs one batch of probes at a time)")] = 2,
    config: Config = None,
    broker: Broker = None,
    name: Annotated[str | None, typer.Option(help="Worker name [default: tlsward-ZONE@HOST-PID]")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
    db: Db = None,
) -> None:
    """Run a probe worker: consume the zone's queue, probe each batch as `tlsward monitor` would, write the
    results to the inventory. SIGTERM: running batches finish and are acknowledged, then it exits."""
    from tlsward.distributed.settings import load_settings
    from tlsward.distributed.worker import run_worker
    from tlsward.model.distributed import check_zone
    from tlsward.monitor.config import load_config

    _logging(log_level)
    check_zone(zone, "--zone")
    loaded = load_config(config)
    settings = load_settings(config, broker=broker)
    settings.broker_url()
    code = run_worker(db, loaded.config, settings, zone=zone, concurrency=concurrency, name=name,
                      log_level=log_level)
    if code:
        raise typer.Exit(code)


def workers(
    broker: Broker = None,
    config: Config = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document (zones, workers, lease)")] = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also workers stopped or silent for more than a day")]
    = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 1 when a zone with endpoints has no live worker")]
    = False,
    db: Db = None,
) -> None:
    """List the probe workers, the zones with their queue depth, pending and outstanding probes and lag (due to
    written), and the active scheduler. With a broker (flag, env or config), queue depths are read live."""
    from tlsward.distributed.settings import load_settings
    from tlsward.distributed.status import read_status

    settings = load_settings(config, broker=broker)
    status = read_status(db, settings, live_depths=settings.broker is not None)
    now = status.now
    shown = [w for w in status.workers
             if show_all or (w.stopped_at is None and (now - w.last_seen).total_seconds() < 86400)]
    if as_json:
        print(json.dumps(status.to_json(shown), indent=2))
    else:
        _print(status, shown, settings.worker_stale_after_s)
    if check and status.down_zones():
        raise typer.Exit(1)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _print(status: Any, shown: list[WorkerRecord], stale_after: float) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(soft_wrap=True)
    now: dt.datetime = status.now
    lease = status.lease
    if lease is None or lease.expires_at <= now:
        out.print("scheduler: [yellow]none active[/] (no `tlsward monitor --distributed` holds the lease)")
    else:
        out.print(f"scheduler: {lease.holder} (since {lease.acquired_at:%Y-%m-%d %H:%M:%S} UTC, lease for "
                  f"{_age((lease.expires_at - now).total_seconds())})", highlight=False)
    zones = Table(title="zones", title_justify="left")
    for column in ("zone", "state", "endpoints", "workers", "slots", "queued", "pending", "outstanding",
                   "oldest due", "lag p50", "lag p95", "done", "resent", "abandoned"):
        zones.add_column(column, justify="left" if column in ("zone", "state") else "right")
    state: ZoneState
    for state in status.zones:
        up = status.zone_up(state.zone)
        label = "[green]up[/]" if up else ("[red]DOWN[/]" if state.endpoints else "idle")
        stale = state.updated_at is None or (now - state.updated_at).total_seconds() > 30
        zones.add_row(state.zone, label + (" [dim](stale)[/]" if stale and state.updated_at else ""),
                      str(state.endpoints), str(status.live_workers(state.zone)), str(state.slots),
                      str(status.depths.get(state.zone, state.queue_depth)), str(state.pending),
                      str(state.outstanding), _age(state.oldest_due_s), f"{state.lag_p50_s:.1f}s",
                      f"{state.lag_p95_s:.1f}s", str(state.done), str(state.resent), str(state.abandoned))
    out.print(zones)
    table = Table(title="workers", title_justify="left")
    for column in ("worker", "zone", "host", "pid", "processes", "heartbeat", "state", "probes", "failed"):
        table.add_column(column, justify="right" if column in ("pid", "processes", "probes", "failed") else "left")
    for record in shown:
        age = (now - record.last_seen).total_seconds()
        label = "stopped" if record.stopped_at is not None else (
            "[green]alive[/]" if record.alive(now, stale_after) else "[red]silent[/]")
        table.add_row(record.name, record.zone, record.hostname, str(record.pid), str(record.concurrency),
                      f"{_age(age)} ago", label, str(record.probes), str(record.failures))
    out.print(table)
    if status.depth_error:
        out.print(f"[yellow]queue depths from the scheduler's last look: {status.depth_error}[/]", highlight=False)


app = typer.Typer(help="Distributed probe workers (docs/distributed.md).", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.command("worker")(worker)
app.command("workers")(workers)


def main() -> None:
    """``python -m tlsward.cli.worker worker|workers ...``, with tlsward's error handling."""
    from tlsward.cli.main import exit_code_for
    from tlsward.model.errors import Error

    try:
        app()
    except Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exit_code_for(exc))


if __name__ == "__main__":
    main()
