"""The ``tlsward`` entry point: sub-command wiring and the one place errors become exit codes."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from tlsward import __version__
from tlsward.cli import alerts, discover, inventory, lab, policy, report, scan, token, truststore
from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.monitor import monitor
from tlsward.cli.serve import serve
from tlsward.model.errors import Error, LabError, StorageError, UsageError

app = typer.Typer(help="tlsward keeps TLS from quietly breaking production.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
app.add_typer(lab.app, name="lab")
app.add_typer(policy.app, name="policy")
app.add_typer(inventory.app, name="inventory")
app.add_typer(report.app, name="report")
inventory.app.add_typer(discover.app, name="discover")
app.command("scan")(scan.scan)
app.command("monitor")(monitor)
app.command("serve")(serve)
app.add_typer(alerts.app, name="alerts")
app.add_typer(token.app, name="token")
app.add_typer(truststore.app, name="truststore")
err = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"tlsward {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """tlsward: scan, diagnose, inventory and monitor TLS endpoints."""


def exit_code_for(exc: Error) -> ExitCode:
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, LabError | StorageError):
        return ExitCode.ENVIRONMENT
    return ExitCode.UNSCANNABLE


def run() -> None:
    """Console-script entry: one line on stderr and a documented exit code, never a traceback for
    an error we expect. Typer handles its own usage errors (exit 2) and ``typer.Exit`` codes."""
    try:
        app()
    except Error as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
