"""``tlsward renew``: renew, deploy, reload and verify every managed certificate that is due (the same as
``tlsward cert renew``), written for cron: quiet about nothing, one line per certificate, and an exit code a
wrapper can act on.

Exit codes (docs/lifecycle.md): 0 every certificate is fine (renewed and verified, or not due); 1 at least one
failed, was rolled back, or was being renewed by another run (busy); 2 bad usage or a malformed certificates file;
4 the inventory database cannot be opened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tlsward.cli.inventory import Db, open_store
from tlsward.model.errors import UsageError

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)

EXIT_OK = 0
EXIT_FAILED = 1          # some certificate failed, was rolled back, or was busy

Config = Annotated[Path, typer.Option("--config", "-c", envvar="TLSWARD_CERTIFICATES",
                                      help="The managed-certificates file (docs/lifecycle.md)")]


def run_renewals(config: Path, names: list[str], *, all_: bool, force: bool, dry_run: bool, wait: float,
                 as_json: bool, db: str | None) -> int:
    """The shared body of `tlsward renew` and `tlsward cert renew`; the exit code."""
    from tlsward.lifecycle.config import load_lifecycle_config
    from tlsward.lifecycle.renew import renew_certificates

    if not names and not all_:
        raise UsageError("name the certificates to renew, or give --all")
    if names and all_:
        raise UsageError("give certificate names or --all, not both")
    if wait < 0:
        raise UsageError("--wait must be >= 0 seconds")
    loaded = load_lifecycle_config(config)
    for name in names:
        loaded.named(name)                        # an unknown name is a usage error before anything runs
    with open_store(db) as store:
        results = renew_certificates(loaded, names, store=store, force=force, dry_run=dry_run,
                                     lock_wait=wait)
    if as_json:
        print(json.dumps([{"name": r.name, "status": r.status, "ok": r.ok, "lines": r.lines,
                           "next_renewal": r.next_at.isoformat() if r.next_at else None,
                           "new_sha256": r.event.new_sha256 if r.event else None,
                           "reason": r.event.reason if r.event else None} for r in results]))
    else:
        for result in results:
            for line in result.lines:
                (out if result.ok else err).print(line)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def renew(
    names: Annotated[list[str] | None, typer.Argument(help="Managed certificate names (see `tlsward cert list`)",
                                                      show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every managed certificate that is due")] = False,
    force: Annotated[bool, typer.Option("--force", help="Renew even when not due")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what is due and why; change nothing")] = False,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait for a certificate another run is "
                                        "renewing (default: skip it and exit 1)")] = 0.0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array, one object per certificate")] = False,
    config: Config = Path("certificates.toml"),
    db: Db = None,
) -> None:
    """Renew -> deploy -> reload -> verify each due managed certificate; roll back and record an alert when the
    endpoints do not serve the new one. Safe from cron: exit 0 when all is well or nothing is due."""
    code = run_renewals(config, list(names or []), all_=all_, force=force, dry_run=dry_run, wait=wait,
                        as_json=as_json, db=db)
    raise typer.Exit(code)
