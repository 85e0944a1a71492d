"""``tlsward impact --policy NAME [--endpoint X]``: before turning TLS 1.0 off or dropping a suite, who would break.

It reads what clients really negotiated (``tlsward logs ingest``) and answers with the share of requests and the
clients (user agent, source network) that the stricter policy would refuse. Exit 1 when any request would fail,
so a change pipeline can gate on it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from tlsward.cli.exit_codes import ExitCode
from tlsward.model.errors import UsageError
from tlsward.report.impact_json import IMPACT_SCHEMA, impact_json


def impact(policy: Annotated[str, typer.Option(help="The stricter policy: mozilla-modern, mozilla-intermediate, "
                                               "mozilla-old, or a TOML/YAML file")],
           endpoint: Annotated[str | None, typer.Option(help="One endpoint as the logs name it (SNI name, with "
                                                        ":port when logged); default: all")] = None,
           days: Annotated[float, typer.Option(help="Look at this many days of traffic, up to now")] = 7.0,
           as_json: Annotated[bool, typer.Option("--json", help=f"One JSON object ({IMPACT_SCHEMA})")] = False,
           db: Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or "
                                                  "postgresql+psycopg://USER@HOST/DB [default: $TLSWARD_DB or "
                                                  "~/.local/share/tlsward/inventory.db]")] = None) -> None:
    """What breaks if: the share of requests, and the clients, the policy would refuse, from the access logs
    ingested with `tlsward logs ingest`. Exit 1 when any request would fail."""
    from rich.console import Console
    from rich.table import Table

    from tlsward.cli.inventory import open_store
    from tlsward.policy import load_policy
    from tlsward.policy.impact import impact as compute
    from tlsward.storage.clientlogs import ClientLogStore

    if not 0 < days <= 3650:
        raise UsageError("--days must be more than 0 and at most 3650")
    profile = load_policy(policy)
    until = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        mix = ClientLogStore(store).mix(endpoint, until - dt.timedelta(days=days), until, by_bucket=False)
    if not mix.rows:
        where = f"for {endpoint}" if endpoint else "at all"
        raise UsageError(f"no client traffic {where} in the last {days:g} days: ingest access logs first "
                         "(`tlsward logs ingest`, docs/logs.md)")
    report = compute(mix, profile)
    if as_json:
        print(json.dumps(impact_json(report), indent=2))
    else:
        out = Console()
        scope = endpoint or "all endpoints"
        out.print(f"[bold]{profile.name}[/] on {scope}, last {days:g} days: {report.failing:,} of {report.requests:,} "
                  f"TLS requests ({report.share:.2%}) would fail", highlight=False)
        if report.by_reason:
            table = Table(title="why")
            table.add_column("reason", overflow="fold")
            table.add_column("requests", justify="right")
            for reason, n in report.by_reason:
                table.add_row(reason, f"{n:,}")
            out.print(table)
        if report.clients:
            table = Table(title="clients that would break (most requests first)")
            for column in ("user agent", "network", "protocol", "cipher", "requests"):
                table.add_column(column, overflow="fold")
            for client in report.clients:
                table.add_row(client.user_agent or "-", client.network, client.protocol, client.cipher,
                              f"{client.requests:,}")
            out.print(table)
    if report.failing:
        raise typer.Exit(ExitCode.FINDINGS)
