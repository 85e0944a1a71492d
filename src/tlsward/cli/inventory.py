"""``tlsward inventory add|list|show|rm|import|export``: the endpoints tlsward keeps, their certificates and
scan history."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.inventory_io import format_for, import_file, render
from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import (
    EndpointRecord,
    EndpointSummary,
    RetentionPolicy,
    clean_tags,
)
from tlsward.model.target import Target
from tlsward.report.inventory_json import summary_json

if TYPE_CHECKING:
    from tlsward.storage import Store

app = typer.Typer(help="The inventory: endpoints, their owners, certificates and scan history.",
                  no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

PLAIN_TABLE_ROWS = 500
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
                  Severity.LOW: "cyan", Severity.INFO: "dim"}
Db = Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://"
                                        "USER@HOST/DB [default: $TLSWARD_DB or ~/.local/share/tlsward/"
                                        "inventory.db]")]


def open_store(db: str | None) -> Store:
    """SQLAlchemy and Alembic take ~0.3 s to import: load them when an inventory command runs, not for
    every tlsward command (this module is imported by the CLI entry point)."""
    from tlsward.storage import open_store as open_inventory

    return open_inventory(db)


def _canonical(target: str) -> Target:
    return Target.parse(target)


def _find(store: Store, target: str) -> EndpointRecord:
    """The stored endpoint for ``target`` as typed (canonicalised); a usage error naming it when absent."""
    record = store.get_endpoint(str(_canonical(target)))
    if record is None:
        raise UsageError(f"{target!r} is not in the inventory ({store.url})")
    return record


@app.command()
def add(
    target: Annotated[str, typer.Argument(help="host[:port] or scheme://host[:port]")],
    owner: Annotated[str | None, typer.Option(help="Who answers for it")] = None,
    team: Annotated[str | None, typer.Option(help="Team that owns it")] = None,
    env: Annotated[str | None, typer.Option("--env", help="Environment (prod, staging ...)")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeat for several")] = None,
    sni: Annotated[str | None, typer.Option(help="Server name to send")] = None,
    connect: Annotated[str | None, typer.Option(help="IP address to connect to instead of resolving the host")]
    = None,
    interval: Annotated[int | None, typer.Option("--interval", help="Seconds between probes")] = None,
    zone: Annotated[str | None, typer.Option(help="Network zone whose workers probe it (`tlsward worker --zone`, "
                                             "docs/distributed.md) [default: keep, or 'default' when new]")] = None,
    db: Db = None,
) -> None:
    """Add an endpoint, or update its owner, team, environment and tags."""
    parsed = Target.parse(target, sni=sni, connect=connect)
    if interval is not None and interval < 1:
        raise UsageError("--interval must be >= 1 second")
    if zone is not None:
        from tlsward.model.distributed import check_zone

        check_zone(zone, "--zone")
    with open_store(db) as store:
        record = store.upsert_endpoint(EndpointRecord(
            target=str(parsed), host=parsed.host, port=parsed.port, scheme=parsed.scheme, sni=parsed.sni,
            connect=parsed.connect, owner=owner, team=team, environment=env, tags=clean_tags(tag or ()),
            probe_interval_s=interval, zone=zone))
    out.print(f"added {record.target}" + (f" (zone {zone})" if zone else ""), highlight=False)


@app.command("list")
def list_(
    owner: Annotated[str | None, typer.Option(help="Only this owner")] = None,
    team: Annotated[str | None, typer.Option(help="Only this team")] = None,
    tag: Annotated[str | None, typer.Option(help="Only endpoints with this tag")] = None,
    issuer: Annotated[str | None, typer.Option(help="Only leaves whose issuer contains this text")] = None,
    days_left: Annotated[float | None, typer.Option("--days-left", help="Only leaves expiring within N days")]
    = None,
    failing: Annotated[bool, typer.Option("--failing", help="Only endpoints whose last scan failed")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array")] = False,
    db: Db = None,
) -> None:
    """List endpoints with their last result, worst finding and leaf expiry."""
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        rows = store.endpoint_summaries(owner=owner, team=team, tag=tag, issuer=issuer, days_left_max=days_left,
                                        failing=True if failing else None, now=now)
    if as_json:
        # Compact: the C encoder is ~10x faster than indent=2 (pipe through `jq` to read it).
        print(json.dumps([summary_json(row, now) for row in rows]))
        return
    header = ("target", "owner", "team", "last result", "worst finding", "leaf expiry")
    if len(rows) > PLAIN_TABLE_ROWS:
        # Rich measures every cell: ~1 ms a row. Past a screenful, aligned plain columns say the same thing.
        cells = [header, *((r.endpoint.target, r.endpoint.owner or "-", r.endpoint.team or "-",
                            _plain(_last_result(r)), _plain(_worst(r)), _expiry(r.leaf_not_after, now))
                           for r in rows)]
        widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
        sys.stdout.write(f"{len(rows)} endpoints\n")
        sys.stdout.writelines("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
                              .rstrip() + "\n" for row in cells)
        sys.stdout.flush()
        return
    table = Table(title=f"{len(rows)} endpoints")
    for column in header:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.endpoint.target, row.endpoint.owner or "-", row.endpoint.team or "-", _last_result(row),
                      _worst(row), _expiry(row.leaf_not_after, now))
    out.print(table)


@app.command()
def show(target: Annotated[str, typer.Argument(help="The endpoint, as added or scanned")], db: Db = None) -> None:
    """An endpoint, its certificates and its last 10 observations."""
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        record = _find(store, target)
        certificates = store.certificates(record.target)
        observations = store.observations(record.target, limit=10)
    out.rule(f"[bold]{record.target}[/]", align="left")
    out.print(f"owner {record.owner or '-'}; team {record.team or '-'}; env {record.environment or '-'}; "
              f"tags {', '.join(record.tags) or '-'}; sni {record.sni or '-'}; connect {record.connect or '-'}; "
              f"zone {record.zone or 'default'}; {'enabled' if record.enabled else 'disabled'}", highlight=False)
    for position, cert in certificates:
        out.print(f"  #{position if position is not None else '?'} {cert.subject}\n     issuer {cert.issuer}; "
                  f"{cert.key_type}-{cert.key_bits}; {cert.signature_algorithm}; {_expiry(cert.not_after, now)}; "
                  f"sha256 {cert.sha256}", highlight=False)
    table = Table(title="last observations")
    for column in ("time (UTC)", "result", "version", "cipher", "handshake", "findings"):
        table.add_column(column, overflow="fold")
    for o in observations:
        result = "[green]ok[/]" if o.success else f"[red]failed[/] ({o.failure_kind or '?'})"
        if o.samples > 1:
            result += f" ({o.successes}/{o.samples} ok, {o.resolution})"
        table.add_row(f"{o.observed_at:%Y-%m-%d %H:%M:%S}", result, o.version or "-", o.cipher or "-",
                      f"{o.handshake_ms:.1f} ms" if o.handshake_ms is not None else "-",
                      ", ".join(o.finding_ids) or "-")
    out.print(table)


@app.command()
def cert(sha256: Annotated[str, typer.Argument(help="SHA-256 fingerprint of the certificate, or its start "
                                                "(at least 8 hex digits)")], db: Db = None) -> None:
    """A certificate and every place it was seen: endpoints (chain position) and files on disk."""
    prefix = sha256.strip().lower().replace(":", "")
    if len(prefix) < 8 or any(ch not in "0123456789abcdef" for ch in prefix):
        raise UsageError(f"{sha256!r}: give at least 8 hex digits of a SHA-256 fingerprint")
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        found = store.certificate_places(prefix)
    if not found:
        raise UsageError(f"no certificate in the inventory has a fingerprint starting with {prefix}")
    for record, places in found:
        out.rule(f"[bold]{record.subject}[/]", align="left")
        out.print(f"issuer {record.issuer}; {record.key_type}-{record.key_bits}; {_expiry(record.not_after, now)}; "
                  f"sha256 {record.sha256}", highlight=False)
        for place, position, first, last in places:
            where = f"#{position}" if position is not None else ""
            out.print(f"  {place} {where}  (seen {first:%Y-%m-%d} .. {last:%Y-%m-%d %H:%M} UTC)", highlight=False)


@app.command()
def rm(target: Annotated[str, typer.Argument(help="The endpoint to forget")], db: Db = None) -> None:
    """Remove an endpoint and its history (certificates stay)."""
    with open_store(db) as store:
        record = _find(store, target)
        store.remove_endpoint(record.target)
    out.print(f"removed {record.target}", highlight=False)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV (header row) or YAML (a list of mappings) with the columns "
                                         "target, owner, team, environment, tags, probe_interval, enabled")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv or yaml [default: from the file name]")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing")] = False,
    atomic: Annotated[bool, typer.Option("--atomic", help="All or nothing: write nothing if any row is bad")]
    = False,
    db: Db = None,
) -> None:
    """Add or update endpoints from a file, in one transaction. A bad row is one stderr line (FILE:LINE)."""
    kind = format_for(file, fmt)
    with open_store(db) as store:
        outcome = import_file(store, file, kind, dry_run=dry_run, atomic=atomic)
    for message in outcome.rejected:
        err.print(message, highlight=False, markup=False)
    would = "" if outcome.written else "would be "
    # Plain writes: rich costs ~0.2 ms a line, 20 s for an import of 100,000 endpoints. Unchanged rows are
    # only counted.
    for change in outcome.changes:
        if change.kind != "unchanged":
            fields = f" ({', '.join(change.fields)})" if change.fields else ""
            sys.stdout.write(f"{would}{change.kind} {change.target}{fields}\n")
    sys.stdout.flush()
    counts = {kind_: sum(c.kind == kind_ for c in outcome.changes) for kind_ in ("added", "updated", "unchanged")}
    note = "" if outcome.written else (" (dry run: nothing written)" if dry_run else
                                       " (--atomic: nothing written)")
    out.print(f"{counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged, "
              f"{len(outcome.rejected)} rejected{note}", highlight=False, markup=False)
    if outcome.rejected:
        raise typer.Exit(ExitCode.USAGE if atomic or not outcome.changes else ExitCode.UNSCANNABLE)


@app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="csv, yaml or json")] = "csv",
    db: Db = None,
) -> None:
    """Write every endpoint to stdout with the import columns (export, then import, round-trips)."""
    if fmt not in ("csv", "yaml", "json"):
        raise UsageError(f"--format {fmt!r}: expected csv, yaml or json")
    with open_store(db) as store:
        records = store.list_endpoints()
    print(render(records, fmt), end="")


@app.command()
def prune(
    raw_days: Annotated[float, typer.Option("--raw-days", help="Keep every probe this many days")] = 14,
    hourly_days: Annotated[float, typer.Option("--hourly-days", help="Then one row per hour and outcome")] = 90,
    daily_days: Annotated[float, typer.Option("--daily-days", help="Then one per day; older is deleted")] = 400,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; write nothing")] = False,
    db: Db = None,
) -> None:
    """Apply the retention policy to scan history (the monitor does this every hour by itself)."""
    policy = RetentionPolicy(raw_days=raw_days, hourly_days=hourly_days, daily_days=daily_days)
    with open_store(db) as store:
        report = store.prune(policy, dry_run=dry_run)
    verb = "would " if dry_run else ""
    out.print(f"{verb}delete {report.deleted_expired} observations older than {daily_days:g} days; "
              f"{verb}fold {report.folded_daily} into daily and {report.folded_hourly} into hourly rows; "
              f"{report.kept} {'would ' if dry_run else ''}remain", highlight=False)


def _last_result(row: EndpointSummary) -> str:
    if row.observed_at is None:
        return "never scanned"
    return "[green]ok[/]" if row.success else f"[red]failed[/] ({row.failure_kind or '?'})"



def _worst(row: EndpointSummary) -> str:
    if row.worst_severity is None:
        return "-"
    more = f" (+{len(row.finding_ids) - 1})" if len(row.finding_ids) > 1 else ""
    return f"[{SEVERITY_STYLE[row.worst_severity]}]{row.worst_severity.name.lower()}[/] {row.finding_ids[0]}{more}"


def _plain(marked_up: str) -> str:
    """Drop the rich markup this module writes ([red]...[/])."""
    return re.sub(r"\[/?[a-z ]*\]", "", marked_up)


def _expiry(not_after: dt.datetime | None, now: dt.datetime) -> str:
    if not_after is None:
        return "-"
    return f"{not_after:%Y-%m-%d} ({(not_after - now).total_seconds() / 86400:.1f} d)"
