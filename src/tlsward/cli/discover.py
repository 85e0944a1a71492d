"""``tlsward inventory discover network|files|configs``: fill the inventory from what exists, not from what
someone remembered to write down."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from tlsward.cli.inventory import Db, open_store
from tlsward.model.discovery import NetworkListener
from tlsward.model.inventory import EndpointRecord, clean_tags

app = typer.Typer(help="Find endpoints and certificates: network ranges, certificate files, server configs.",
                  no_args_is_help=True)
out = Console(highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

Owner = Annotated[str | None, typer.Option(help="Owner of the endpoints added")]
Team = Annotated[str | None, typer.Option(help="Team of the endpoints added")]
Env = Annotated[str | None, typer.Option("--env", help="Environment of the endpoints added")]
Tags = Annotated[list[str] | None, typer.Option("--tag", help="Tag for the endpoints added; repeat for several")]


@app.command()
def network(
    cidr: Annotated[list[str], typer.Option("--cidr", help="Range to sweep, e.g. 10.1.2.0/24; repeat for several")],
    ports: Annotated[str, typer.Option("--ports", help="Ports and ranges: 443,8443,9000-9010")] = "443",
    rate: Annotated[float, typer.Option(help="New connections per second at most")] = 500.0,
    concurrency: Annotated[int, typer.Option(help="Connections open at once at most")] = 128,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a connect and for the first answer")] = 1.5,
    max_probes: Annotated[int, typer.Option("--max-probes", help="Refuse sweeps of more address x port "
                                            "pairs than this")] = 65_536,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what answers; add nothing")] = False,
    owner: Owner = None, team: Team = None, env: Env = None, tag: Tags = None,
    db: Db = None,
) -> None:
    """Sweep address ranges for TLS listeners (one ClientHello per open port) and add them as endpoints.
    Known endpoints are left as they are; non-TLS open ports are listed, not added."""
    from tlsward.discovery.network import parse_ports, sweep

    port_list = parse_ports(ports)
    tags = clean_tags((*(tag or ()), "discovered"))

    def show(listener: NetworkListener) -> None:
        mark = "[green]TLS[/]" if listener.tls else "[dim]open[/]"
        out.print(f"{mark} {listener.hostport}  {listener.detail}")

    found = asyncio.run(sweep(cidr, port_list, rate=rate, concurrency=concurrency, timeout=timeout,
                              max_probes=max_probes, on_result=show))
    tls = [listener for listener in found if listener.tls]
    records = [EndpointRecord(target=listener.hostport, host=listener.address, port=listener.port, owner=owner,
                              team=team, environment=env, tags=tags) for listener in tls]
    summary = f"{len(tls)} TLS listeners, {len(found) - len(tls)} other open ports"
    if dry_run or not records:
        out.print(f"{summary}; nothing written" if dry_run else summary)
        return
    with open_store(db) as store:
        changes = store.ensure_endpoints(records)
    added = sum(1 for change in changes if change.kind == "added")
    out.print(f"{summary}; {added} added to the inventory, {len(changes) - added} already known")

