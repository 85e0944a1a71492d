"""``tlsward inventory add|list|show|rm``: the endpoints tlsward keeps, their certificates and scan history."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import CertificateRecord, EndpointRecord, ObservationRecord
from tlsward.model.target import Target
from tlsward.storage import Store, open_store

app = typer.Typer(help="The inventory: endpoints, their owners, certificates and scan history.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)

SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
                  Severity.LOW: "cyan", Severity.INFO: "dim"}
Db = Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://"
                                        "USER@HOST/DB [default: $TLSWARD_DB or ~/.local/share/tlsward/"
                                        "inventory.db]")]


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
    interval: Annotated[int | None, typer.Option("--interval", help="Seconds between probes")] = None,
    db: Db = None,
) -> None:
    """Add an endpoint, or update its owner, team, environment and tags."""
    parsed = Target.parse(target, sni=sni)
    if interval is not None and interval < 1:
        raise UsageError("--interval must be >= 1 second")
    with open_store(db) as store:
        record = store.upsert_endpoint(EndpointRecord(
            target=str(parsed), host=parsed.host, port=parsed.port, scheme=parsed.scheme, sni=parsed.sni,
            owner=owner, team=team, environment=env, tags=tuple(dict.fromkeys(tag or ())),
            probe_interval_s=interval))
    out.print(f"added {record.target}", highlight=False)


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
        records = store.list_endpoints(owner=owner, team=team, tag=tag, issuer=issuer, days_left_max=days_left,
                                       failing=True if failing else None, now=now)
        rows = [(record, *store.latest(record.target)) for record in records]
    if as_json:
        print(json.dumps([_endpoint_json(r, o, leaf, now) for r, o, leaf in rows], indent=2))
        return
    table = Table(title=f"{len(rows)} endpoints")
    for column in ("target", "owner", "team", "last result", "worst finding", "leaf expiry"):
        table.add_column(column, overflow="fold")
    for record, observation, leaf in rows:
        table.add_row(record.target, record.owner or "-", record.team or "-", _last_result(observation),
                      _worst(observation), _expiry(leaf, now))
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
              f"tags {', '.join(record.tags) or '-'}; sni {record.sni or '-'}; "
              f"{'enabled' if record.enabled else 'disabled'}", highlight=False)
    for position, cert in certificates:
        out.print(f"  #{position if position is not None else '?'} {cert.subject}\n     issuer {cert.issuer}; "
                  f"{cert.key_type}-{cert.key_bits}; {cert.signature_algorithm}; {_expiry(cert, now)}; "
                  f"sha256 {cert.sha256}", highlight=False)
    table = Table(title="last observations")
    for column in ("time (UTC)", "result", "version", "cipher", "handshake", "findings"):
        table.add_column(column, overflow="fold")
    for o in observations:
        table.add_row(f"{o.observed_at:%Y-%m-%d %H:%M:%S}", _last_result(o), o.version or "-", o.cipher or "-",
                      f"{o.handshake_ms:.1f} ms" if o.handshake_ms is not None else "-",
                      ", ".join(o.finding_ids) or "-")
    out.print(table)


@app.command()
def rm(target: Annotated[str, typer.Argument(help="The endpoint to forget")], db: Db = None) -> None:
    """Remove an endpoint and its history (certificates stay)."""
    with open_store(db) as store:
        record = _find(store, target)
        store.remove_endpoint(record.target)
    out.print(f"removed {record.target}", highlight=False)


def _last_result(o: ObservationRecord | None) -> str:
    if o is None:
        return "never scanned"
    return "[green]ok[/]" if o.success else f"[red]failed[/] ({o.failure_kind or '?'})"


def _worst(o: ObservationRecord | None) -> str:
    if o is None or o.worst_severity is None:
        return "-"
    more = f" (+{len(o.finding_ids) - 1})" if len(o.finding_ids) > 1 else ""
    return f"[{SEVERITY_STYLE[o.worst_severity]}]{o.worst_severity.name.lower()}[/] {o.finding_ids[0]}{more}"


def _expiry(leaf: CertificateRecord | None, now: dt.datetime) -> str:
    if leaf is None:
        return "-"
    return f"{leaf.not_after:%Y-%m-%d} ({leaf.days_left(now):.1f} d)"


def _endpoint_json(record: EndpointRecord, o: ObservationRecord | None, leaf: CertificateRecord | None,
                   now: dt.datetime) -> dict[str, Any]:
    return {
        "target": record.target, "owner": record.owner, "team": record.team, "environment": record.environment,
        "tags": list(record.tags), "enabled": record.enabled,
        "last_observation": None if o is None else {
            "time": o.observed_at.isoformat(), "success": o.success, "failure_kind": o.failure_kind,
            "version": o.version, "cipher": o.cipher, "findings": list(o.finding_ids),
            "worst_finding": o.finding_ids[0] if o.finding_ids else None,
            "worst_severity": o.worst_severity.name.lower() if o.worst_severity is not None else None},
        "leaf": None if leaf is None else {
            "sha256": leaf.sha256, "subject": leaf.subject, "issuer": leaf.issuer,
            "not_after": leaf.not_after.isoformat(), "days_left": round(leaf.days_left(now), 2)},
    }

