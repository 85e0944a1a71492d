"""``tlsward alerts list|ack|silence|silences|unsilence``: what the monitor raised, and muting it on purpose."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.inventory import SEVERITY_STYLE, Db, open_store
from tlsward.model.alerts import AlertStatus
from tlsward.model.errors import UsageError
from tlsward.model.monitor import Silence
from tlsward.report.alerts_json import alert_json

app = typer.Typer(help="Alerts raised by `tlsward monitor`, acknowledgements, silences and maintenance windows.",
                  no_args_is_help=True)
out = Console(soft_wrap=True, highlight=False)


def _when(text: str | None, what: str) -> dt.datetime | None:
    if text is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected an ISO 8601 time like 2026-12-01T22:00+00:00") from None
    if moment.tzinfo is None:
        raise UsageError(f"{what} {text!r}: give a UTC offset (e.g. +00:00 or Z), times are not guessed")
    return moment.astimezone(dt.UTC)


@app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Resolved alerts too (newest first)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array")] = False,
    db: Db = None,
) -> None:
    """Firing alerts, worst first."""
    from tlsward.storage.alerts import AlertStore

    with open_store(db) as store:
        records = AlertStore(store).load(status=None if all_ else AlertStatus.FIRING, limit=500 if all_ else None)
    records.sort(key=lambda r: (r.alert.status is not AlertStatus.FIRING, -r.alert.severity))
    if as_json:
        print(json.dumps([alert_json(r) for r in records], indent=2))
        return
    table = Table(title=f"{len(records)} alerts (keys in full: --json; `alerts ack` takes a key prefix)")
    table.add_column("severity / route", no_wrap=True)
    table.add_column("summary", overflow="fold", min_width=36)
    table.add_column("team", overflow="fold")
    table.add_column("since (UTC)", no_wrap=True)
    table.add_column("key", overflow="ellipsis", no_wrap=True, max_width=18)
    for r in records:
        severity = r.alert.severity
        state = "" if r.alert.status is AlertStatus.FIRING else f" {r.alert.status}"
        table.add_row(f"[{SEVERITY_STYLE[severity]}]{severity.name.lower()}[/] {r.alert.route}{state}"
                      f"{' (acked)' if r.acked_at else ''}", r.alert.summary, r.alert.team or "-",
                      f"{r.alert.starts_at:%m-%d %H:%M}" if r.alert.starts_at else "-", r.alert.key)
    out.print(table)


@app.command()
def ack(key: Annotated[str, typer.Argument(help="Alert key, or the start of it")],
        by: Annotated[str | None, typer.Option(help="Who acknowledges [default: $USER]")] = None,
        db: Db = None) -> None:
    """Acknowledge: no reminders until the alert resolves or escalates."""
    from tlsward.storage.alerts import AlertStore

    with open_store(db) as store:
        count = AlertStore(store).ack(key, by or getpass.getuser(), dt.datetime.now(dt.UTC))
    if not count:
        raise UsageError(f"no firing alert has a key starting with {key!r} (`tlsward alerts list`)")
    out.print(f"acknowledged {count} alert(s)")


@app.command()
def silence(
    match: Annotated[list[str], typer.Option("--match", help="label=value (owner, team, environment, rule, "
                                             "severity, route, alert_key); repeat: all must match")],
    for_: Annotated[str | None, typer.Option("--for", help="How long from now (2h, 30m, 1d)")] = None,
    start: Annotated[str | None, typer.Option(help="Maintenance window start, ISO 8601 with offset")] = None,
    end: Annotated[str | None, typer.Option(help="Maintenance window end, ISO 8601 with offset")] = None,
    comment: Annotated[str, typer.Option(help="Why (shown to whoever wonders where the alerts went)")] = "",
    by: Annotated[str | None, typer.Option(help="Who [default: $USER]")] = None,
    db: Db = None,
) -> None:
    """Hold back notifications of matching alerts for a while, or during a maintenance window."""
    from tlsward.model.durations import parse_duration
    from tlsward.storage.alerts import AlertStore

    matchers = []
    for item in match:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--match {item!r}: expected label=value")
        matchers.append((name.strip(), value.strip()))
    now = dt.datetime.now(dt.UTC)
    starts = _when(start, "--start") or now
    if for_ is not None and end is not None:
        raise UsageError("give --for or --end, not both")
    if for_ is not None:
        ends = starts + dt.timedelta(seconds=parse_duration(for_, "--for"))
    else:
        ends_given = _when(end, "--end")
        if ends_given is None:
            raise UsageError("give --for DURATION or --end TIME")
        ends = ends_given
    if ends <= starts:
        raise UsageError("the silence ends before it starts")
    with open_store(db) as store:
        saved = AlertStore(store).add_silence(Silence(tuple(sorted(matchers)), starts, ends,
                                                      by or getpass.getuser(), comment), now)
    out.print(f"silence {saved.id}: {', '.join(f'{k}={v}' for k, v in saved.matchers)} from "
              f"{saved.starts_at:%Y-%m-%d %H:%M} to {saved.ends_at:%Y-%m-%d %H:%M} UTC")


@app.command()
def silences(db: Db = None) -> None:
    """Silences and maintenance windows that are active or scheduled."""
    from tlsward.storage.alerts import AlertStore

    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        found = AlertStore(store).silences(active_at=now)
    for s in found:
        state = "active" if s.active(now) else "scheduled"
        out.print(f"{s.id}  {state}  {', '.join(f'{k}={v}' for k, v in s.matchers)}  "
                  f"{s.starts_at:%Y-%m-%d %H:%M} .. {s.ends_at:%Y-%m-%d %H:%M} UTC  {s.created_by}: {s.comment}")
    if not found:
        out.print("no active or scheduled silences")


@app.command()
def unsilence(silence_id: Annotated[int, typer.Argument(help="The silence id (`tlsward alerts silences`)")],
              db: Db = None) -> None:
    """End a silence now."""
    from tlsward.storage.alerts import AlertStore

    with open_store(db) as store:
        if not AlertStore(store).expire_silence(silence_id, dt.datetime.now(dt.UTC)):
            raise UsageError(f"no active or scheduled silence {silence_id}")
    out.print(f"silence {silence_id} ended")
