"""``tlsward lab up|list|check|down``: the built-in lab from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.exit_codes import ExitCode
from tlsward.lab.state import DEFAULT_HOST, LabState, default_base_port, default_state_dir
from tlsward.model.errors import LabNotRunningError

app = typer.Typer(help="The built-in lab: loopback endpoints that reproduce real TLS failures.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True, soft_wrap=True)

StateDir = Annotated[Path | None, typer.Option("--state-dir", help="Lab files and pid file "
                                               "[default: $TLSWARD_LAB_DIR or ~/.local/state/tlsward/lab]")]


def _dir(state_dir: Path | None) -> Path:
    return state_dir or default_state_dir()


def _print_state(state: LabState) -> None:
    table = Table(title=f"tlsward lab on {state.host} (pid {state.pid}, base port {state.base_port})")
    for column in ("case", "port", "target", "situation"):
        table.add_column(column, overflow="fold")
    for ep in state.endpoints:
        table.add_row(ep.name, str(ep.port), ep.target, ep.situation)
    out.print(table)
    out.print(f"trust the lab root with [bold]--ca-file {state.ca_file}[/]; "
              f"connect with [bold]--connect {state.host}[/]; client cert: {state.client_cert}")


@app.command()
def up(
    state_dir: StateDir = None,
    base_port: Annotated[int | None, typer.Option(help="First port; cases follow it "
                                                  "[default: $TLSWARD_LAB_BASE_PORT or 18400]")] = None,
    host: Annotated[str, typer.Option(help="Loopback address to listen on")] = DEFAULT_HOST,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run here until Ctrl-C")] = False,
) -> None:
    """Generate a fresh lab PKI and serve every case (in the background unless --foreground)."""
    from tlsward.lab.control import serve_foreground, start_background

    directory, port = _dir(state_dir), base_port if base_port is not None else default_base_port()
    if foreground:
        serve_foreground(directory, host, port, on_ready=_print_state)
        return
    _print_state(start_background(directory, host, port))
    out.print("stop it with [bold]tlsward lab down[/]")


@app.command("list")
def list_(
    state_dir: StateDir = None,
    targets: Annotated[bool, typer.Option("--targets", help="Only the scan targets, one per line "
                                          "(for `tlsward scan -`)")] = False,
) -> None:
    """List the cases: ports and targets of the running lab, or the catalogue when none runs."""
    from tlsward.lab.catalogue import CASES
    from tlsward.lab.control import running_pid

    directory = _dir(state_dir)
    if targets:
        if running_pid(directory) is None:
            raise LabNotRunningError(f"no lab is running from {directory}; start one with `tlsward lab up`")
        for ep in LabState.read(directory).endpoints:
            print(ep.target)
        return
    if running_pid(directory) is not None:
        _print_state(LabState.read(directory))
        return
    table = Table(title="tlsward lab catalogue (not running: `tlsward lab up`)")
    for column in ("case", "kind", "expected findings", "situation"):
        table.add_column(column, overflow="fold")
    for case in CASES:
        table.add_row(case.name, case.kind, ", ".join(sorted(case.expect)) or "-", case.situation)
    out.print(table)


@app.command()
def check(state_dir: StateDir = None) -> None:
    """Connect to every case of the running lab and confirm it behaves as declared."""
    from tlsward.lab.catalogue import case_named
    from tlsward.lab.check import check_lab_sync
    from tlsward.lab.control import running_pid

    directory = _dir(state_dir)
    if running_pid(directory) is None:
        err.print(f"[red]error:[/] no lab is running from {directory}; start one with `tlsward lab up`")
        raise typer.Exit(ExitCode.ENVIRONMENT)
    results = check_lab_sync(directory)
    table = Table(title="tlsward lab check")
    for column in ("case", "port", "result", "observed", "declared findings"):
        table.add_column(column, overflow="fold")
    for r in results:
        verdict = "[green]as declared[/]" if r.ok else "[red]MISMATCH[/]"
        table.add_row(r.name, str(r.port), verdict, r.observed, ", ".join(sorted(case_named(r.name).expect)) or "-")
    out.print(table)
    failed = [r.name for r in results if not r.ok]
    if failed:
        out.print(f"[red]{len(failed)} case(s) do not behave as declared:[/] {', '.join(failed)}")
        raise typer.Exit(ExitCode.ENVIRONMENT)
    out.print(f"all {len(results)} cases behave as declared")


@app.command()
def down(state_dir: StateDir = None) -> None:
    """Stop the lab started with `tlsward lab up` and wait until its process is gone."""
    from tlsward.lab.control import stop_background

    pid = stop_background(_dir(state_dir))
    out.print(f"lab stopped (pid {pid})")
