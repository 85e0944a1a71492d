"""``tlsward cert obtain|renew|list``: managed certificates (certificates.toml), from the internal CA or ACME,
deployed, reloaded and verified (docs/lifecycle.md)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.inventory import Db, open_store
from tlsward.cli.renew import EXIT_OK, Config, renew, run_renewals

app = typer.Typer(help="Managed certificates: obtain, renew (deploy, reload, verify, roll back) and list.",
                  no_args_is_help=True)
out = Console(soft_wrap=True, highlight=False)


@app.command()
def obtain(
    name: Annotated[str, typer.Argument(help="The managed certificate's name in the certificates file")],
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for another run renewing it")] = 0.0,
    config: Config = Path("certificates.toml"),
    db: Db = None,
) -> None:
    """First issuance: obtain NAME now (whatever is on disk), deploy, reload and verify it."""
    raise typer.Exit(run_renewals(config, [name], all_=False, force=True, dry_run=False, wait=wait, as_json=False,
                                  db=db))


# `tlsward cert renew` is `tlsward renew`: one command, registered twice.
app.command("renew")(renew)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array")] = False,
    config: Config = Path("certificates.toml"),
    db: Db = None,
) -> None:
    """Every managed certificate: source, names, the certificate on disk (fingerprint, expiry), when it renews
    next, and the last renewal outcome."""
    from tlsward.lifecycle.config import load_lifecycle_config
    from tlsward.lifecycle.renew import decide, read_current
    from tlsward.storage.lifecycle import LifecycleStore

    loaded = load_lifecycle_config(config)
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        latest = LifecycleStore(store).latest()
    rows: list[dict[str, Any]] = []
    for cert in loaded.certificates:
        current = read_current(cert)
        due, why, at = decide(cert, current, now, force=False)
        last = latest.get(cert.name)
        rows.append({
            "name": cert.name, "source": cert.source, "names": list(cert.names),
            "sha256": current.sha256, "problem": current.problem or None,
            "not_after": current.leaf.not_valid_after_utc.isoformat() if current.leaf is not None else None,
            "due": due, "due_reason": why, "next_renewal": at.isoformat() if at else None,
            "last_outcome": str(last.outcome) if last else None,
            "last_attempt": last.finished_at.isoformat() if last else None,
            "last_reason": last.reason if last else None})
    if as_json:
        print(json.dumps(rows))
        raise typer.Exit(EXIT_OK)
    table = Table(show_edge=False)
    for column in ("name", "source", "on disk", "expires", "next renewal", "last outcome"):
        table.add_column(column)
    for row in rows:
        disk = (row["sha256"] or "")[:16] + "…" if row["sha256"] else f"[red]{row['problem']}[/]"
        nxt = "[yellow]due now[/]" if row["due"] else (row["next_renewal"] or "")[:16].replace("T", " ")
        outcome = row["last_outcome"] or "-"
        if row["last_outcome"] in ("rolled_back", "failed"):
            outcome = f"[red]{outcome}[/]: {row['last_reason']}"
        table.add_row(row["name"], row["source"], disk, (row["not_after"] or "-")[:16].replace("T", " "), nxt,
                      outcome)
    out.print(table)
