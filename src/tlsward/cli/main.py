"""The ``tlsward`` entry point: sub-command wiring and the one place errors become exit codes.

Start-up is most of what one ``tlsward scan HOST`` costs, so :func:`run` builds only the sub-command the
command line names (``tlsward scan ...`` imports the scan module, not the inventory, alerts, discovery and
trust-store commands and their dependencies, and typer builds one command instead of every one of them).
Anything else (no sub-command, ``--help``, a mistyped name) gets the whole tree, so help, errors and
suggestions read exactly as before. ``app``, the whole tree, is built on first use. ``tlsward --version``
alone prints the version without loading typer.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tlsward import __version__
from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.startup import pause_gc
from tlsward.model.errors import Error, LabError, StorageError, UsageError

if TYPE_CHECKING:
    import typer
    from rich.console import Console

__all__ = ["SUBCOMMANDS", "build_app", "exit_code_for", "full_app", "run"]

# Every top-level sub-command; build_app registers them in this order: commands, then groups, as typer lists them.
SUBCOMMANDS = ("scan", "monitor", "serve", "explain", "worker", "workers", "impact", "renew", "lab", "policy",
               "inventory", "report", "alerts", "token", "truststore", "drill", "logs", "ca", "acme", "cert")


def _print_version() -> None:
    print(f"tlsward {__version__}")


def build_app(only: str | None = None) -> typer.Typer:
    """The command tree: every sub-command, or with ``only`` just that one."""
    import typer

    def _version(value: bool) -> None:
        if value:
            _print_version()
            raise typer.Exit()

    app = typer.Typer(help="tlsward keeps TLS from quietly breaking production.", no_args_is_help=True,
                      pretty_exceptions_enable=False, add_completion=False)

    @app.callback()
    def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")) -> None:
        """tlsward: scan, diagnose, inventory and monitor TLS endpoints."""

    def wanted(name: str) -> bool:
        return only is None or only == name

    if wanted("lab"):
        from tlsward.cli import lab
        app.add_typer(lab.app, name="lab")
    if wanted("policy"):
        from tlsward.cli import policy
        app.add_typer(policy.app, name="policy")
    if wanted("inventory"):
        from tlsward.cli import discover, inventory
        if not any(group.typer_instance is discover.app for group in inventory.app.registered_groups):
            inventory.app.add_typer(discover.app, name="discover")
        app.add_typer(inventory.app, name="inventory")
    if wanted("report"):
        from tlsward.cli import report
        app.add_typer(report.app, name="report")
    if wanted("scan"):
        from tlsward.cli import scan
        app.command("scan")(scan.scan)
    if wanted("monitor"):
        from tlsward.cli.monitor import monitor
        app.command("monitor")(monitor)
    if wanted("serve"):
        from tlsward.cli.serve import serve
        app.command("serve")(serve)
    if wanted("explain"):
        from tlsward.cli.explain import explain
        app.command("explain")(explain)
    if wanted("worker"):
        from tlsward.cli.worker import worker
        app.command("worker")(worker)
    if wanted("workers"):
        from tlsward.cli.worker import workers
        app.command("workers")(workers)
    if wanted("impact"):
        from tlsward.cli.impact import impact
        app.command("impact")(impact)
    if wanted("renew"):
        from tlsward.cli.renew import renew
        app.command("renew")(renew)
    if wanted("alerts"):
        from tlsward.cli import alerts
        app.add_typer(alerts.app, name="alerts")
    if wanted("token"):
        from tlsward.cli import token
        app.add_typer(token.app, name="token")
    if wanted("truststore"):
        from tlsward.cli import truststore
        app.add_typer(truststore.app, name="truststore")
    if wanted("drill"):
        from tlsward.cli import drill
        app.add_typer(drill.app, name="drill")
    if wanted("logs"):
        from tlsward.cli import logs
        app.add_typer(logs.app, name="logs")
    if wanted("ca"):
        from tlsward.cli import ca
        app.add_typer(ca.app, name="ca")
    if wanted("acme"):
        from tlsward.cli import acme
        app.add_typer(acme.app, name="acme")
    if wanted("cert"):
        from tlsward.cli import cert
        app.add_typer(cert.app, name="cert")
    return app


_app: typer.Typer | None = None


def full_app() -> typer.Typer:
    """The whole command tree, built once."""
    global _app
    if _app is None:
        _app = build_app()
    return _app


def __getattr__(name: str) -> typer.Typer:
    """``app``: :func:`full_app`, built on first use (tests drive it with typer's CliRunner)."""
    if name == "app":
        return full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def exit_code_for(exc: Error) -> ExitCode:
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, LabError | StorageError):
        return ExitCode.ENVIRONMENT
    return ExitCode.UNSCANNABLE


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def run() -> None:
    """Console-script entry: one line on stderr and a documented exit code, never a traceback for
    an error we expect. Typer handles its own usage errors (exit 2) and ``typer.Exit`` codes."""
    args = sys.argv[1:]
    if args == ["--version"]:   # what the root's eager --version option does, without building the tree
        _print_version()
        return
    if args and args[0] in SUBCOMMANDS:
        if args[0] == "scan":
            pause_gc()   # until the scan's imports are done (tlsward.cli.startup): the scan resumes it
        cli = build_app(args[0])
    else:
        cli = full_app()
    try:
        cli()
    except Error as exc:
        _stderr().print(f"[red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        _stderr().print("interrupted")
        sys.exit(ExitCode.INTERRUPTED)
