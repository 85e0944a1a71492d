"""``tlsward truststore list|diff|matrix|plan|export|import``: which trust stores this host has, how they differ,
who breaks when a CA changes, and the same data for the fleet.

Discovery and the readers load lazily (this module is imported by every ``tlsward`` command).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.exit_codes import ExitCode
from tlsward.model.errors import UsageError
from tlsward.model.findings import Finding, Severity
from tlsward.model.truststores import HostStores, RootInfo, StoreInfo

if TYPE_CHECKING:
    from tlsward.discovery.truststores import Discovered

app = typer.Typer(help="Trust stores on this host (system bundle, each JDK's cacerts, certifi, Node, NSS): list, "
                       "compare, audit, plan a root rotation (docs/truststores.md).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

REFERENCE = "mozilla"   # the name that means "Mozilla's current list as shipped with tlsward (certifi)"

Search = Annotated[list[Path] | None, typer.Option("--search", help="Also look for certifi copies and NSS databases "
                                                   "under this directory (repeatable)")]
Extra = Annotated[list[Path] | None, typer.Option("--store", help="A store file or directory to include (PEM/DER "
                                                  "bundle, Java keystore, NSS directory, hashed directory)")]
NoHome = Annotated[bool, typer.Option("--no-home", help="Do not look in home directories (~/.pki/nssdb, "
                                      "~/.mozilla, virtualenvs)")]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON document (docs/truststores.md)")]


def _discover(search: Sequence[Path] | None, extra: Sequence[Path] | None, no_home: bool) -> Discovered:
    from tlsward.discovery.truststores import discover_stores

    return discover_stores(tuple(search or ()), extra=tuple(extra or ()), home_dirs=not no_home)


def _age(store: StoreInfo, now: dt.datetime) -> str:
    days = store.age_days(now)
    return "-" if days is None else f"{days:.0f} d"


@app.command("list")
def list_(search: Search = None, extra: Extra = None, no_home: NoHome = False, as_json: AsJson = False) -> None:
    """Every trust store found on this host: path, kind, who reads it, number of roots, age; problems reported."""
    found = _discover(search, extra, no_home)
    if as_json:
        from tlsward.report.truststores_json import host_stores_to_json

        print(json.dumps(host_stores_to_json(found.host), indent=2))
        return
    now = dt.datetime.now(dt.UTC)
    table = Table(title=f"trust stores on {found.host.host}")
    for column in ("id", "kind", "store", "roots", "age", "used by / problem"):
        table.add_column(column, overflow="fold")
    for store in found.host.stores:
        table.add_row(store.id, store.kind, store.label, str(len(store.roots)) if store.readable else "-",
                      _age(store, now), f"[red]{store.problem}[/]" if store.problem else store.clients)
    out.print(table)


def _reference() -> StoreInfo:
    from tlsward.x509.trust import mozilla_store
    from tlsward.x509.truststores import root_info

    trust = mozilla_store()
    return StoreInfo(id=REFERENCE, kind="file", path="certifi (bundled with tlsward)", label=trust.name,
                     clients="Mozilla's root program (Firefox, and what certifi ships)",
                     roots=tuple(root_info(c) for c in trust.roots))


def _pick(name: str, found: Discovered) -> StoreInfo:
    """A store by id, by a unique part of its id or label, ``mozilla``, or a path read as a store."""
    if name == REFERENCE:
        return _reference()
    stores = found.host.stores
    exact = [s for s in stores if s.id == name]
    if exact:
        return exact[0]
    partial = [s for s in stores if name in s.id or name.casefold() in s.label.casefold()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise UsageError(f"{name!r} matches {len(partial)} stores ({', '.join(s.id for s in partial[:6])}); "
                         "give the whole id from `tlsward truststore list`")
    if Path(name).exists():
        from tlsward.discovery.truststores import discover_stores

        extra = discover_stores((), extra=(Path(name),), home_dirs=False, node=None, system=False)
        match = [s for s in extra.host.stores if s.path == str(Path(name).resolve()) or s.path == name]
        if match:
            return match[0]
        if extra.host.stores:
            return extra.host.stores[-1]
    raise UsageError(f"{name!r}: no such store (ids: `tlsward truststore list`; or `mozilla`, or a path)")


def _usable(store: StoreInfo) -> StoreInfo:
    if not store.readable:
        raise UsageError(f"{store.label} ({store.path}): {store.problem}")
    return store


def _short(subject: str) -> str:
    for part in subject.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return subject


@app.command("diff")
def diff(a: Annotated[str, typer.Argument(help="A store id (or unique part of it), `mozilla`, or a path")],
         b: Annotated[str, typer.Argument(help="The other store")],
         search: Search = None, extra: Extra = None, no_home: NoHome = False, as_json: AsJson = False) -> None:
    """Roots in one store and not the other (the same CA key in another certificate counts as present).
    Exit 1 when they differ."""
    from tlsward.rules.truststores import diff_stores

    found = _discover(search, extra, no_home)
    store_a, store_b = _usable(_pick(a, found)), _usable(_pick(b, found))
    result = diff_stores(store_a, store_b)
    if as_json:
        from tlsward.report.truststore_analysis_json import diff_json

        print(json.dumps(diff_json(result, store_a.label, store_b.label), indent=2))
    else:
        out.print(f"A: {store_a.label} ({store_a.id}), {len(store_a.roots)} roots", highlight=False)
        out.print(f"B: {store_b.label} ({store_b.id}), {len(store_b.roots)} roots", highlight=False)
        out.print(f"{result.common} roots in both", highlight=False)
        for title, roots in ((f"only in A ({len(result.only_a)})", result.only_a),
                             (f"only in B ({len(result.only_b)})", result.only_b)):
            if not roots:
                continue
            table = Table(title=title)
            for column in ("root", "expires", "sha256"):
                table.add_column(column, overflow="fold")
            for root in roots:
                table.add_row(_short(root.subject), f"{root.not_after:%Y-%m-%d}", root.sha256[:16] + "…")
            out.print(table)
        if result.same_key_other_cert:
            out.print(f"{len(result.same_key_other_cert)} roots are the same CA key in a different certificate "
                      "(re-issued): clients accept the same chains", highlight=False)
    if not result.identical:
        raise typer.Exit(ExitCode.FINDINGS)


def _ca_roots(path: Path, flag: str) -> tuple[RootInfo, ...]:
    """The anchors in a CA file: its self-signed certificates, else every certificate in it."""
    from tlsward.model.errors import Error
    from tlsward.x509.facts import is_self_signed, load_certificates
    from tlsward.x509.truststores import root_info

    try:
        certs = load_certificates(path.read_bytes(), str(path))
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None
    except Error as exc:   # the message names the file already
        raise UsageError(f"{flag}: {exc}" if str(path) in str(exc) else f"{flag} {path}: {exc}") from None
    if not certs:
        raise UsageError(f"{flag} {path}: no certificates in it")
    roots = [c for c in certs if is_self_signed(c)] or certs
    return tuple(root_info(c) for c in roots)


def _matrix(found: Discovered, internal: Sequence[RootInfo], now: dt.datetime
            ) -> tuple[list[dict[str, Any]], list[tuple[StoreInfo, Finding]], StoreInfo]:
    from tlsward.rules.truststores import audit_store, summarize

    reference = _reference()
    rows: list[dict[str, Any]] = []
    findings: list[tuple[StoreInfo, Finding]] = []
    for store in found.host.stores:
        summary = summarize(store, now=now, reference=reference, internal=internal)
        rows.append({
            "store": store.id, "kind": store.kind, "label": store.label, "path": store.path,
            "readable": store.readable, "problem": store.problem, "roots": len(store.roots),
            "age_days": None if store.age_days(now) is None else round(store.age_days(now) or 0.0, 1),
            "missing_vs_reference": summary.missing_vs_reference, "extra_vs_reference": summary.extra_vs_reference,
            "expired": summary.expired, "expiring": summary.expiring,
            "distrusted": tuple(r for r, _ in summary.distrusted),
            "internal_ca_present": [not any(ca == m for m in summary.internal_missing) for ca in internal],
        })
        findings.extend((store, f) for f in audit_store(summary, now=now, reference_label=reference.label))
    return rows, findings, reference


def _fail_on(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


@app.command("matrix")
def matrix(internal_ca: Annotated[list[Path] | None, typer.Option("--internal-ca", help="An internal CA (PEM) every "
                                                                  "store should hold (repeatable)")] = None,
           search: Search = None, extra: Extra = None, no_home: NoHome = False, as_json: AsJson = False,
           fail_on: Annotated[str, typer.Option(help="Exit 1 when a finding reaches this severity")] = "high",
           ) -> None:
    """The whole host at a glance: every store against Mozilla's current list and your internal CAs; expired,
    expiring and distrusted roots; with the finding and the fix command for each store."""
    threshold = _fail_on(fail_on)
    internal = [root for path in internal_ca or () for root in _ca_roots(path, "--internal-ca")]
    found = _discover(search, extra, no_home)
    now = dt.datetime.now(dt.UTC)
    rows, findings, reference = _matrix(found, internal, now)
    if as_json:
        from tlsward.report.truststore_analysis_json import (
            ANALYSIS_SCHEMA,
            finding_json,
            matrix_row_json,
            root_json,
        )

        doc = {"schema": ANALYSIS_SCHEMA, "kind": "matrix", "host": found.host.host,
               "collected_at": found.host.collected_at.isoformat(), "reference": reference.label,
               "internal_cas": [root_json(r) for r in internal],
               "stores": [matrix_row_json(r) for r in rows],
               "findings": [{"store": store.id, **finding_json(f)} for store, f in findings]}
        print(json.dumps(doc, indent=2))
    else:
        table = Table(title=f"trust stores on {found.host.host} against {reference.label}")
        columns = ["store", "roots", "missing vs Mozilla", "extra", "expired", "expiring", "distrusted"]
        columns += [f"has {_short(ca.subject)}" for ca in internal]
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            if not row["readable"]:
                table.add_row(row["label"], f"[red]{row['problem']}[/]", *[""] * (len(columns) - 2))
                continue
            marks = ["[green]yes[/]" if ok else "[red]NO[/]" for ok in row["internal_ca_present"]]
            table.add_row(f"{row['label']}\n[dim]{row['store']}[/]", str(row["roots"]),
                          str(len(row["missing_vs_reference"])), str(len(row["extra_vs_reference"])),
                          str(len(row["expired"])), str(len(row["expiring"])), str(len(row["distrusted"])), *marks)
        out.print(table)
        for _store, item in sorted(findings, key=lambda pair: (-pair[1].severity, pair[0].id)):
            out.print(f"[bold]{item.severity.name.lower()}[/] {item.id}: {item.evidence}", highlight=False,
                      soft_wrap=True)
            out.print(f"  fix: {item.remediation.fix}", highlight=False, soft_wrap=True)
    worst = max((f.severity for _, f in findings), default=None)
    if worst is not None and worst >= threshold:
        raise typer.Exit(ExitCode.FINDINGS)


@app.command("plan")
def plan(old: Annotated[Path, typer.Option("--old", help="The CA in use today (PEM: its root, and intermediates)")],
         new: Annotated[Path, typer.Option("--new", help="The CA to move to (PEM)")],
         cross_signed: Annotated[bool, typer.Option("--cross-signed", help="Servers will serve the new issuer "
                                                    "cross-signed by the old root during the switch")] = False,
         search: Search = None, extra: Extra = None, no_home: NoHome = False, as_json: AsJson = False) -> None:
    """Root rotation, step by step: the stores on this host that break when you add the new root, switch the
    issuer, and remove the old root, with the command that fixes each. Exit 1 when any store would break."""
    from tlsward.rules.truststores import rotation_plan

    old_roots, new_roots = _ca_roots(old, "--old"), _ca_roots(new, "--new")
    found = _discover(search, extra, no_home)
    result = rotation_plan(found.host.stores, old_roots, new_roots, new_pem=str(new), cross_signed=cross_signed)
    if as_json:
        from tlsward.report.truststore_analysis_json import plan_json

        print(json.dumps({**plan_json(result), "host": found.host.host}, indent=2))
    else:
        labels = {s.id: s.label for s in found.host.stores}
        out.print(f"rotation from {_short(result.old_root.subject)} to {_short(result.new_root.subject)} on "
                  f"{found.host.host}", highlight=False)
        for number, step in enumerate(result.steps, 1):
            out.print(f"\n[bold]{number}. {step.name}[/]: {step.description}", highlight=False, soft_wrap=True)
            if not step.breaks:
                out.print("   [green]nothing breaks[/]")
            for item in step.breaks:
                out.print(f"   [red]breaks[/] {item.store_label} ({item.store_id}): {item.reason}", highlight=False,
                          soft_wrap=True)
                out.print(f"     fix: {item.fix}", highlight=False, soft_wrap=True)
            if step.safe:
                out.print("   safe: " + ", ".join(labels.get(s, s) for s in step.safe), highlight=False,
                          soft_wrap=True)
        for store_id in result.unreadable:
            out.print(f"[yellow]unreadable, no prediction:[/] {store_id}", highlight=False)
    if any(step.breaks for step in result.steps):
        raise typer.Exit(ExitCode.FINDINGS)


def _write_atomic(path: Path, text: str) -> None:
    """Write beside the target and rename: a reader never sees half a document."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path())
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@app.command("export")
def export(output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (atomically) instead "
                                                       "of stdout")] = None,
           search: Search = None, extra: Extra = None, no_home: NoHome = False) -> None:
    """This host's trust-store inventory as JSON (schema tlsward.truststores/1), for `truststore import` on the
    machine that keeps the inventory."""
    from tlsward.report.truststores_json import host_stores_to_json

    found = _discover(search, extra, no_home)
    text = json.dumps(host_stores_to_json(found.host), indent=2) + "\n"
    if output is None:
        print(text, end="")
        return
    try:
        _write_atomic(output, text)
    except OSError as exc:
        raise UsageError(f"{output}: cannot write it ({exc.strerror or exc})") from None
    err.print(f"{len(found.host.stores)} stores of {found.host.host} written to {output}", highlight=False)


@app.command("import")
def import_(files: Annotated[list[Path], typer.Argument(help="Documents from `tlsward truststore export`")],
            db: Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or "
                                                   "postgresql+psycopg://USER@HOST/DB [default: $TLSWARD_DB or "
                                                   "~/.local/share/tlsward/inventory.db]")] = None,
            force: Annotated[bool, typer.Option("--force", help="Import even when the inventory holds a newer "
                                                "snapshot of that host")] = False) -> None:
    """Record hosts' trust stores in the inventory (a host's stores are replaced as a whole). A bad file, or one
    older than what the inventory holds for its host, is reported on one line and the others are still imported;
    exit 2 if any was refused."""
    from tlsward.cli.inventory import open_store
    from tlsward.report.truststores_json import host_stores_from_json
    from tlsward.storage.truststores import TrustStoreInventory

    docs: list[tuple[Path, HostStores]] = []
    refused = 0
    for path in files:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            docs.append((path, host_stores_from_json(data, str(path))))
        except OSError as exc:
            err.print(f"[red]error:[/] {path}: cannot read it ({exc.strerror or exc})", highlight=False)
            refused += 1
        except json.JSONDecodeError as exc:
            err.print(f"[red]error:[/] {path}: not a JSON document from `tlsward truststore export` ({exc})",
                      highlight=False, soft_wrap=True)
            refused += 1
        except (ValueError, UsageError) as exc:
            err.print(f"[red]error:[/] {path}: {exc}" if str(path) not in str(exc) else f"[red]error:[/] {exc}",
                      highlight=False, soft_wrap=True)
            refused += 1
    store = open_store(db)
    try:
        inventory = TrustStoreInventory(store)
        for path, host in docs:
            try:
                inventory.import_host(host, force=force)
            except UsageError as exc:   # StaleSnapshotError: an older export must not overwrite a newer one
                err.print(f"[red]error:[/] {path}: {exc}", highlight=False, soft_wrap=True)
                refused += 1
                continue
            out.print(f"{path}: {host.host}, {len(host.stores)} stores", highlight=False)
    finally:
        store.close()
    if refused:
        raise typer.Exit(ExitCode.USAGE)
