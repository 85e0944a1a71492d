"""``tlsward token create|list|revoke``: API tokens for ``tlsward serve`` (the secret is shown once)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.inventory import Db, open_store
from tlsward.model.access import Role
from tlsward.model.errors import UsageError

app = typer.Typer(help="API tokens for `tlsward serve`: create (the secret is shown once), list, revoke.",
                  no_args_is_help=True)
out = Console(soft_wrap=True, highlight=False)


@app.command()
def create(
    name: Annotated[str, typer.Option(help="Who or what uses it (a person, a CI job)")],
    role: Annotated[str, typer.Option(help="viewer (read), operator (scan, ack, silence), admin (tokens, "
                                      "inventory edits)")] = "viewer",
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d, 12h; default: no expiry")] = "90d",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    db: Db = None,
) -> None:
    """Create a token and print its secret: store it now, it is not shown again."""
    from tlsward.model.durations import parse_duration
    from tlsward.storage.access import AccessStore

    try:
        parsed = Role.parse(role)
    except ValueError as exc:
        raise UsageError(f"--role: {exc}") from None
    now = dt.datetime.now(dt.UTC)
    expires_at = None if expires in (None, "", "never") else now + dt.timedelta(
        seconds=parse_duration(expires, "--expires"))
    with open_store(db) as store:
        access = AccessStore(store)
        secret, token = access.create_token(name, parsed, now, expires_at)
        access.audit("cli", "token.create", f"token {token.id}", f"{token.name} ({parsed.label})", now)
    if as_json:
        print(json.dumps({"id": token.id, "name": token.name, "role": parsed.label, "token": secret,
                          "expires_at": expires_at.isoformat() if expires_at else None}))
        return
    out.print(f"token {token.id} for {token.name} ({parsed.label}), "
              f"{'expires ' + f'{expires_at:%Y-%m-%d %H:%M} UTC' if expires_at else 'never expires'}:")
    print(secret)
    out.print("Store it now: it is not shown again (only its hash is kept).")


@app.command("list")
def list_(db: Db = None) -> None:
    """Every token: id, prefix, name, role, expiry, last use, revoked."""
    from tlsward.storage.access import AccessStore

    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        tokens = AccessStore(store).tokens()
    table = Table(title=f"{len(tokens)} tokens")
    for column in ("id", "prefix", "name", "role", "expires", "last used", "state"):
        table.add_column(column)
    for token in tokens:
        state = "revoked" if token.revoked_at else "expired" if not token.usable(now) else "active"
        table.add_row(str(token.id), token.prefix, token.name, token.role.label,
                      f"{token.expires_at:%Y-%m-%d}" if token.expires_at else "never",
                      f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "-", state)
    out.print(table)


@app.command()
def revoke(token: Annotated[str, typer.Argument(help="Token id, or the prefix `token list` shows")],
           db: Db = None) -> None:
    """Revoke a token now; its browser sessions end with it."""
    from tlsward.storage.access import AccessStore

    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        access = AccessStore(store)
        revoked = access.revoke(token, now)
        access.audit("cli", "token.revoke", f"token {revoked.id}", revoked.name, now)
    out.print(f"token {revoked.id} ({revoked.name}) revoked")
