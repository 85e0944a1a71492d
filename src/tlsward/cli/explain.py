"""``tlsward explain FINDING-ID``: the runbook for a finding (what it means, why it matters on call, how it is
detected, the command that confirms it, the fix), the same text as docs/findings.md."""

from __future__ import annotations

import difflib
import json
from typing import Annotated

import typer

from tlsward.model.errors import UsageError


def explain(finding_id: Annotated[str, typer.Argument(help="A finding id, e.g. chain.incomplete (`tlsward explain "
                                                      "--list` lists them)", show_default=False)] = "",
            list_ids: Annotated[bool, typer.Option("--list", help="List every finding id with its title")] = False,
            as_json: Annotated[bool, typer.Option("--json", help="One JSON object: id, severity, title, what, why, "
                                                  "how, confirm, fix, runbook")] = False) -> None:
    """Print the runbook for a finding: symptoms, the confirm command and the fix (nginx, HAProxy, Apache,
    certbot, cert-manager where they differ)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from tlsward.model.findings import FINDING_CATALOGUE
    from tlsward.report.runbooks import runbook

    out = Console()
    if list_ids:
        if as_json:
            print(json.dumps([{"id": s.id, "severity": s.severity.name.lower(), "title": s.title}
                              for s in FINDING_CATALOGUE.values()], indent=2))
            return
        for spec in FINDING_CATALOGUE.values():
            out.print(f"{spec.id:<34} {spec.severity.name.lower():<8} {spec.title}", highlight=False)
        return
    if not finding_id:
        raise UsageError("name a finding id (e.g. `tlsward explain chain.incomplete`), or --list")
    book = runbook(finding_id)
    found = FINDING_CATALOGUE.get(finding_id)
    if book is None or found is None:
        close = difflib.get_close_matches(finding_id, list(FINDING_CATALOGUE), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `tlsward explain --list` lists them"
        raise UsageError(f"{finding_id!r} is not a finding id{hint}")
    if as_json:
        print(json.dumps({"id": book.id, "severity": book.severity, "title": found.title, "what": book.what,
                          "why": book.why, "how": book.how, "confirm": book.confirm, "fix": book.fix,
                          "runbook": book.link}, indent=2))
        return
    out.print(Markdown(f"# `{book.id}` ({book.severity}): {found.title}\n\n"
                       f"**What it means:** {book.what}\n\n**Why it matters on call:** {book.why}\n\n"
                       f"**How tlsward detects it:** {book.how}\n\n**Confirm:** {book.confirm}\n\n"
                       f"**Fix:** {book.fix}\n\n*Runbook: {book.link}*"))
