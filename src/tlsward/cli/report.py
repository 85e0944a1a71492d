"""``tlsward report slo``: handshake SLIs over the inventory's probe history, per owner or team, against an
optional target. Definitions and the ``--json`` shape: docs/slo.md."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table

from tlsward.cli.exit_codes import ExitCode
from tlsward.model.errors import UsageError
from tlsward.model.slo import GroupBy, GroupSli, SloReport, parse_target, parse_window
from tlsward.report.slo_json import report_json

if TYPE_CHECKING:
    from tlsward.storage import Store

app = typer.Typer(help="Reports over the inventory's probe history.", no_args_is_help=True)
out = Console(soft_wrap=True)

TOP_VERSIONS = 3
MAX_PIPED_WIDTH = 400
Db = Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://"
                                        "USER@HOST/DB [default: $TLSWARD_DB or ~/.local/share/tlsward/"
                                        "inventory.db]")]


def open_store(db: str | None) -> Store:
    """SQLAlchemy takes ~0.3 s to import: load it when a report runs, not for every tlsward command."""
    from tlsward.storage import open_store as open_inventory

    return open_inventory(db)


@app.command()
def slo(
    window: Annotated[str, typer.Option(metavar="N{d|h|m}", help="How far back from now: 30d, 12h or 90m")]
    = "30d",
    by: Annotated[str, typer.Option("--by", metavar="owner|team", help="Group endpoints by owner or team")]
    = "owner",
    target: Annotated[str | None, typer.Option("--target", metavar="PCT",
                                               help="Handshake success target in %, such as 99.9; exit 1 "
                                                    "when a group misses it")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object (schema tlsward.slo/1)")] = False,
    db: Db = None,
) -> None:
    """Handshake success, valid certificates, TLS versions, ciphers and latency per owner or team."""
    span = parse_window(window)
    if by not in ("owner", "team"):
        raise UsageError(f"--by {by!r}: expected owner or team")
    group_by: GroupBy = "owner" if by == "owner" else "team"
    target_pct = parse_target(target) if target is not None else None
    until = dt.datetime.now(dt.UTC)
    from tlsward.storage.reports import slo_report

    with open_store(db) as store:
        report = slo_report(store, until - span, until, by=group_by, target=target_pct)
    if as_json:
        print(json.dumps(report_json(report, window)))
    else:
        _print(report, window)
    if report.missed:
        raise typer.Exit(ExitCode.FINDINGS)   # 1: a group missed --target (docs/slo.md)


# -- the table ----------------------------------------------------------------------------------------------


def _print(report: SloReport, window: str) -> None:
    title = (f"TLS SLIs by {report.by}, last {window} ({report.since:%Y-%m-%d %H:%M} .. "
             f"{report.until:%Y-%m-%d %H:%M} UTC)")
    if not report.overall.probes and not report.overall.unprobed_endpoints:
        out.print(f"{title}: no endpoints and no probes in the window", highlight=False)
        return
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column(report.by, overflow="fold", min_width=min(12, max(len(g.key or "(no x)") for g in
                                                                       (report.overall, *report.groups))))
    for column in ("endpoints", "probes", "success", "valid\ncert", "p50\nms", "p95\nms"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("TLS\nversions", overflow="fold", min_width=8)
    if report.target_pct is not None:
        table.add_column(f"SLO\n{_pct(report.target_pct)}", no_wrap=True)
        table.add_column("budget\nleft", justify="right", no_wrap=True)
    for number, group in enumerate(report.groups, 1):
        table.add_row(*_cells(group, group.key or f"(no {report.by})"), end_section=number == len(report.groups))
    table.add_row(*_cells(report.overall, "all"), style="bold")
    if out.is_terminal:
        out.print(table)
    else:
        # Piped to a file or a CI log, the table keeps its natural width instead of the 80 columns rich
        # assumes, which would fold numbers over several lines.
        natural = Measurement.get(out, out.options.update_width(MAX_PIPED_WIDTH), table).maximum
        Console(width=max(natural, out.width), soft_wrap=True).print(table)
    worst = report.overall.worst_endpoints
    if worst:
        out.print("worst endpoints: " + "; ".join(
            f"{e.target} {_pct(e.success_pct)} ({e.probes - e.successes} of {e.probes} failed)" for e in worst),
            highlight=False)
    if report.overall.unprobed_endpoints:
        out.print(f"{report.overall.unprobed_endpoints} enabled endpoint(s) had no probe in the window: their "
                  "success is unknown, not 100%", highlight=False)


def _cells(group: GroupSli, label: str) -> list[str]:
    endpoints = str(group.endpoints) + (f" (+{group.unprobed_endpoints} unprobed)"
                                        if group.unprobed_endpoints else "")
    cells = [label, endpoints, f"{group.probes:,}", _pct(group.success_pct), _pct(group.valid_certificate_pct),
             _ms(group.latency.p50_ms), _ms(group.latency.p95_ms),
             ", ".join(f"{share.name.removeprefix('TLSv')} {_pct(share.pct)}"
                       for share in group.versions[:TOP_VERSIONS]) or "-"]
    if group.slo is not None:
        verdict = group.slo
        cells.append("no data" if verdict.met is None else "[green]met[/]" if verdict.met else "[red]missed[/]")
        budget = verdict.budget_remaining_pct
        cells.append("-" if budget is None else _pct(budget) if budget > -1000 else f"{budget:.0f}%")
    return cells


def _pct(value: float | None) -> str:
    """Up to three decimals, no trailing zeros: 75%, 99.95%, 66.667%."""
    if value is None:
        return "-"
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return ">99.999%" if text == "100" and value < 100 else f"{text}%"   # never round a failure away


def _ms(value: float | None) -> str:
    return f"{value:g}" if value is not None else "-"
