"""``tlsward scan``: scan and diagnose endpoints; human blocks or versioned JSON; CI-friendly exit codes."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tlsward.cli.console import LazyConsole
from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.startup import resume_gc
from tlsward.model.certificate import REVOCATION_MODES, RevocationStatus
from tlsward.model.deep import DeepScan
from tlsward.model.errors import StorageError, UsageError
from tlsward.model.findings import Severity
from tlsward.model.grade import Grade
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.progress import Progress

    from tlsward.engine import ScanOptions
    from tlsward.report import Summary
    from tlsward.storage import Store
    from tlsward.x509.trust import TrustStore

SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
                  Severity.LOW: "cyan", Severity.INFO: "dim"}
out = LazyConsole()   # rich loads on first output: --json prints without it
err = LazyConsole(stderr=True)


def read_targets(args: list[str], file: Path | None, sni: str | None,
                 connect: str | None) -> tuple[list[Target], int]:
    """Targets from arguments, ``-f FILE`` and ``-`` (stdin). A bad line is reported (one stderr line naming
    ``FILE:LINE``) and skipped; with no valid target left it is a usage error (a single bad input is that error)."""
    lines: list[tuple[str, str]] = [(text, "argument") for text in args if text != "-"]
    if "-" in args:
        lines += [(line, "stdin") for line in sys.stdin.read().splitlines()]
    if file is not None:
        try:
            content = file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"-f {file}: cannot read ({exc})") from None
        lines += [(line, f"{file}:{n}") for n, line in enumerate(content.splitlines(), 1)]
    targets: list[Target] = []
    skipped: list[str] = []
    for text, origin in lines:
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            targets.append(Target.parse(text, sni=sni, connect=connect))
        except UsageError as exc:
            skipped.append(str(exc) if origin == "argument" else f"{origin}: {exc}")
    if not targets and len(skipped) == 1:
        raise UsageError(skipped[0])
    for message in skipped:
        err.print(f"[red]skipped[/] {message}", highlight=False, soft_wrap=True)
    if not targets:
        raise UsageError(f"no valid targets: all {len(skipped)} were skipped" if skipped
                         else "no targets: pass host[:port], a URL, -f FILE or -")
    return targets, len(skipped)


def print_result(result: ScanResult) -> None:
    title = f"[bold]{result.target}[/]" + (f" ({result.address})" if result.address else "")
    out.rule(title, align="left")
    t = result.timings
    phases = [f"{name} {value:.1f} ms" for name, value in (("dns", t.dns_ms), ("connect", t.connect_ms),
              ("starttls", t.starttls_ms), ("handshake", t.handshake_ms)) if value is not None]
    if phases:
        out.print("timings: " + ", ".join(phases), highlight=False)
    if result.session is not None:
        s = result.session
        how = "negotiated" if s.completed else "accepted (hand-made ClientHello; no handshake completed)"
        out.print(f"{how}: {s.version} {s.cipher} group={s.group or '-'} alpn={s.alpn or '-'} "
                  f"ocsp-staple={'yes' if s.ocsp_stapled else 'no'}", highlight=False)
    for index, cert in enumerate(result.chain):
        names = ", ".join([*cert.dns_names, *cert.ip_addresses][:4])
        out.print(f"  #{index} {cert.subject}\n     issuer {cert.issuer}; {cert.key_type}-{cert.key_bits}; "
                  f"{cert.signature_algorithm}; expires {cert.not_after:%Y-%m-%d} "
                  f"({cert.days_left(result.scanned_at):.1f} d){'; SAN ' + names if names else ''}", highlight=False)
    if result.analysis is not None:
        for verdict in result.analysis.verdicts:
            mark = "[green]trusted[/]" if verdict.trusted else f"[red]not trusted[/]: {verdict.reason}"
            out.print(f"  trust {verdict.store}: {mark}", highlight=False)
    if result.revocation is not None:
        out.print(revocation_line(result.revocation), highlight=False)
    if result.http is not None:
        out.print(f"http: {result.http.status} hsts={result.http.hsts or '-'} location={result.http.location or '-'}",
                  highlight=False)
    if result.deep is not None:
        print_deep(result.deep)
    if result.grade is not None:
        print_grade(result.grade)
    if not result.findings:
        out.print("[green]no findings[/]")
    for f in result.findings:
        out.print(f"[{SEVERITY_STYLE[f.severity]}]{f.severity.name:<8}[/] {f.id}: {f.title}", highlight=False)
        out.print(f"         {f.evidence}", highlight=False)
        out.print(f"         fix: {f.remediation.fix}", highlight=False)
        out.print(f"         confirm: {f.remediation.confirm}", highlight=False)
    for note in result.notes:
        out.print(f"  note: {note}", highlight=False)


def _tri(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "inconclusive" if value is None else yes if value else no


def print_deep(deep: DeepScan) -> None:
    """Every version with its suites in the server's order, the groups, the features, and the cost."""
    from rich.table import Table

    table = Table(title=f"deep scan: {deep.connections} connections, {deep.elapsed_ms:.0f} ms", title_justify="left")
    for column in ("version", "accepted", "suites (server order)" , "kx"):
        table.add_column(column, overflow="fold")
    for v in deep.versions:
        order = "" if not v.suites else " [server order]" if v.server_order else " [client order]" \
            if v.server_order is False else ""
        suites = "\n".join(f"{'[red]' if s.weak else ''}{s.name}{'[/]' if s.weak else ''}" for s in v.suites)
        kx = "\n".join(s.kx_group or (f"DH {s.dh_bits}" if s.dh_bits else "-") for s in v.suites)
        table.add_row(v.version, _tri(v.accepted) + order + (f" ({v.note})" if v.note else ""), suites or "-", kx)
    out.print(table)
    accepted = [g.name + (" (PQ)" if g.post_quantum else "") for g in deep.groups if g.accepted]
    out.print(f"groups: {', '.join(accepted) or '-'}", highlight=False)
    f = deep.features
    out.print(f"fallback SCSV: {_tri(f.fallback_scsv)}; secure renegotiation: {_tri(f.secure_renegotiation)}; "
              f"compression: {_tri(f.compression)}; session IDs: {_tri(f.session_ids)}; tickets: "
              f"{_tri(f.session_tickets)}; ALPN: {', '.join(f.alpn) or '-'}; OCSP stapling: {_tri(f.ocsp_stapling)}",
              highlight=False)
    if deep.rate_limited:
        out.print(f"[yellow]rate limited:[/] {deep.rate_limited}", highlight=False)
    for note in deep.notes:
        out.print(f"  deep: {note}", highlight=False)


def print_grade(grade: Grade) -> None:
    style = "green" if grade.letter.startswith("A") else "yellow" if grade.letter in ("B", "C") else "red"
    trust = f" (configuration alone: {grade.letter_without_trust})" if grade.letter_without_trust else ""
    out.print(f"grade: [bold {style}]{grade.letter}[/]{trust}  score {grade.score} = protocol "
              f"{grade.protocol_score} x 0.3 + key exchange {grade.key_exchange_score} x 0.3 + cipher "
              f"{grade.cipher_score} x 0.4", highlight=False)
    for cap in grade.caps:
        out.print(f"  cap: {cap}", highlight=False)
    for warning in grade.warnings:
        out.print(f"  why not A+: {warning}", highlight=False)


def revocation_line(status: RevocationStatus) -> str:
    """``revocation: good (crl http://...)``; ``revocation: unavailable: <why>`` when nothing settled it."""
    if status.established:
        where = "stapled" if status.source == "stapled-ocsp" else f"{status.source} {status.url}".strip()
        since = f" since {status.revoked_at:%Y-%m-%d}" if status.revoked_at else ""
        return f"revocation: {status.status}{since} ({where})"
    return f"revocation: {status.status}: {status.reason}"


def scan(
    targets: Annotated[list[str] | None, typer.Argument(help="host, host:port, [v6]:port, URL (https://, smtp://, "
                                                        "imap://, postgres:// ...), or - for stdin")] = None,
    file: Annotated[Path | None, typer.Option("-f", "--file", help="One target per line; # comments")] = None,
    sni: Annotated[str | None, typer.Option(help="Server name to send (and check the certificate against)")] = None,
    connect: Annotated[str | None, typer.Option(help="Connect to this IP instead of resolving the host")] = None,
    ca_file: Annotated[list[Path] | None, typer.Option("--ca-file", help="Extra trust store (internal CA bundle)")]
    = None,
    cert: Annotated[Path | None, typer.Option(help="Client certificate chain (PEM) for mTLS")] = None,
    key: Annotated[Path | None, typer.Option(help="Client private key (PEM)")] = None,
    all_stores: Annotated[bool, typer.Option("--all-stores", help="Validate the served chain against every trust "
                                             "store found on this host (system, each JDK, certifi, Node, NSS): "
                                             "which clients here would fail")] = False,
    store_search: Annotated[list[Path] | None, typer.Option("--store-search", help="--all-stores: also look for "
                                                            "certifi and NSS databases under this directory")]
    = None,
    store_extra: Annotated[list[Path] | None, typer.Option("--store", help="--all-stores: also check against this "
                                                           "store (PEM bundle, Java keystore, NSS directory)")]
    = None,
    all_ips: Annotated[bool, typer.Option("--all-ips", help="Scan every A/AAAA record of each name and flag "
                                          "backends that serve different certificates")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per phase")] = 5.0,
    per_host: Annotated[int, typer.Option(help="Connections at once to one address (a --deep scan's too, unless "
                                                "--delay or STARTTLS: then one at a time)")] = 4,
    expiry_days: Annotated[str | None, typer.Option(help="Days-left thresholds for cert.expiring, decreasing; the "
                                                    "last is critical, the one before high (capped by the "
                                                    "certificate's lifetime) [default: the policy's, else "
                                                    "30,14,7,3]")] = None,
    deep: Annotated[bool, typer.Option("--deep", help="Also enumerate every version, cipher suite and group with "
                                       "crafted ClientHellos, check protocol features, and grade")] = False,
    delay: Annotated[float, typer.Option(help="--deep: seconds between connections to one endpoint")] = 0.0,
    policy: Annotated[str | None, typer.Option(help="Check against a policy profile: mozilla-modern, "
                                               "mozilla-intermediate, mozilla-old, or a TOML/YAML file "
                                               "(`tlsward policy list`)")] = None,
    concurrency: Annotated[int, typer.Option(help="Endpoints scanned at once")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines, one object per endpoint "
                                          "(docs/json-schema.md)")] = False,
    fail_on: Annotated[str, typer.Option(help="Exit 1 when a finding reaches this severity")] = "high",
    revocation: Annotated[str, typer.Option(help="Check the leaf's OCSP/CRL status: off, soft (unreachable "
                                            "responder: a note) or hard (unreachable: a finding)")] = "soft",
    save: Annotated[bool, typer.Option("--save", help="Record each result in the inventory (tlsward inventory)")]
    = False,
    db: Annotated[str | None, typer.Option("--db", metavar="URL", help="--save: sqlite:///PATH or "
                                           "postgresql+psycopg://USER@HOST/DB [default: $TLSWARD_DB or "
                                           "~/.local/share/tlsward/inventory.db]")] = None,
) -> None:
    """Scan endpoints and diagnose what is wrong, with the fix and the command that confirms it."""
    try:
        threshold = Severity.parse(fail_on)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None
    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together")
    if revocation not in REVOCATION_MODES:
        raise UsageError(f"--revocation {revocation!r}: expected one of {', '.join(REVOCATION_MODES)}")
    if delay < 0:
        raise UsageError("--delay must be >= 0")
    if timeout <= 0 or concurrency < 1 or per_host < 1:
        raise UsageError("--timeout must be > 0, --concurrency and --per-host >= 1")
    # The engine, pyOpenSSL, the probes and the report load when a scan runs, not for every tlsward command
    # (this module is imported by the CLI entry point): ~0.15 s off `tlsward inventory ...`.
    from tlsward.engine import ScanOptions
    from tlsward.net.tls import ClientIdentity
    from tlsward.probes.enumerate import DeepOptions
    from tlsward.report import Summary
    from tlsward.rules.certificate import ExpiryPolicy

    profile = None
    if policy is not None:
        from tlsward.policy import load_policy  # only --policy needs it

        profile = load_policy(policy)
    try:
        expiry = ExpiryPolicy.parse(expiry_days) if expiry_days is not None else (
            ExpiryPolicy(profile.expiry_thresholds) if profile is not None and profile.expiry_thresholds
            else ExpiryPolicy())
    except ValueError as exc:
        raise UsageError(f"--expiry-days {exc}") from None
    parsed, skipped = read_targets(targets or [], file, sni, connect)
    options = ScanOptions(timeout=timeout, concurrency=concurrency, all_ips=all_ips, revocation=revocation,
                          per_host=per_host, expiry=expiry, policy=profile,
                          deep=DeepOptions(timeout=min(timeout, 3.0), delay=delay, parallel=per_host) if deep else None,
                          ca_files=tuple(str(p) for p in ca_file or ()),
                          system=not all_stores, host_stores=host_trust_stores(store_search, store_extra) if all_stores
                          else (),
                          client=ClientIdentity(str(cert), str(key)) if cert and key else None)
    summary = Summary()
    rows: list[tuple[tuple[int, int], SummaryRow]] = []
    saver = Saver(db) if save else None
    try:
        asyncio.run(_run(parsed, options, as_json, summary, rows, saver))
    except KeyboardInterrupt:
        err.print(f"interrupted: {summary.endpoints} of {len(parsed)} endpoints scanned (their results are above)")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        if saver is not None:
            saver.close()
    if not as_json and len(parsed) > 1:
        print_summary(summary, rows, len(parsed))
    if summary.unscannable or skipped:
        raise typer.Exit(ExitCode.UNSCANNABLE)
    if saver is not None and saver.failed:
        raise typer.Exit(ExitCode.ENVIRONMENT)
    worst = summary.worst
    if worst is not None and worst >= threshold:
        raise typer.Exit(ExitCode.FINDINGS)


def host_trust_stores(search: Sequence[Path] | None, extra: Sequence[Path] | None) -> tuple[TrustStore, ...]:
    """Every readable trust store of this host, named by its label (what the verdicts print)."""
    from tlsward.discovery.truststores import discover_stores

    found = discover_stores(tuple(search or ()), extra=tuple(extra or ()))
    stores = []
    for info in found.host.stores:
        trust = found.trust(info.id)
        if trust is not None:
            stores.append(trust)
        else:
            err.print(f"[yellow]warning:[/] {info.label} ({info.path}): {info.problem or 'no roots'}; not checked",
                      highlight=False, soft_wrap=True)
    return tuple(stores)


SUMMARY_ROWS = 200
SummaryRow = tuple[Severity | None, str, str]


def print_summary(summary: Summary, rows: list[tuple[tuple[int, int], SummaryRow]], total: int) -> None:
    """The worst endpoints first (at most SUMMARY_ROWS), then totals: what an on-call engineer reads first."""
    from rich.table import Table

    table = Table(title=f"{summary.endpoints} of {total} endpoints scanned, {summary.unscannable} unscannable")
    for column in ("worst", "endpoint", "findings"):
        table.add_column(column, overflow="fold")
    for _, (severity, endpoint, ids) in sorted(rows, key=lambda item: (-item[0][0], item[0][1])):
        label = "ok" if severity is None else f"[{SEVERITY_STYLE[severity]}]{severity.name.lower()}[/]"
        table.add_row(label, endpoint, ids or "-")
    out.print(table)
    if summary.endpoints > len(rows):
        out.print(f"... and {summary.endpoints - len(rows)} more endpoints, no worse than these (--json for all)")
    counts = ", ".join(f"{summary.findings[s]} {s.name.lower()}" for s in sorted(Severity, reverse=True)
                       if summary.findings[s])
    out.print(f"findings: {counts or 'none'}")


class Saver:
    """``--save``: records results in the inventory. A storage problem is one stderr line (once for opening,
    once per result that could not be written); the scan goes on and its output is unaffected."""

    def __init__(self, db: str | None) -> None:
        from tlsward.storage import open_store  # SQLAlchemy and Alembic cost ~0.3 s: only with --save

        self.failed = 0
        self.store: Store | None = None
        try:
            self.store = open_store(db)   # a malformed URL is a UsageError: exit 2 before scanning
        except StorageError as exc:
            self._fail(f"--save: cannot open the inventory: {exc}")

    def _fail(self, message: str) -> None:
        self.failed += 1
        err.print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)

    def save(self, result: ScanResult) -> None:
        if self.store is None:
            return
        try:
            self.store.record_scan(result)
        except StorageError as exc:
            self._fail(f"--save {result.target}: {exc}")

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


async def _run(targets: list[Target], options: ScanOptions, as_json: bool, summary: Summary,
               rows: list[tuple[tuple[int, int], SummaryRow]], saver: Saver | None = None) -> None:
    """Stream results as they complete; ``summary`` and ``rows`` stay readable after an interrupt."""
    from tlsward.engine import Scanner
    from tlsward.report import result_to_dict

    scanner = Scanner(options)
    # One target never shows a progress bar: rich's Progress (and with --json, rich) is not even loaded then.
    progress: Progress | None = None
    if len(targets) >= 2:
        from rich.progress import Progress

        progress = Progress(console=err.console, transient=True, disable=not err.is_terminal)
    with progress if progress is not None else contextlib.nullcontext():
        task = progress.add_task("scanning", total=len(targets)) if progress is not None else None
        async for result in scanner.scan(targets):
            resume_gc()   # start-up ends with the first result (tlsward.cli.startup); later calls do nothing
            if progress is not None and task is not None:
                progress.advance(task)
            if as_json:
                print(json.dumps(result_to_dict(result)), flush=True)
            else:
                print_result(result)
                worst = max((f.severity for f in result.findings), default=None)
                where = f"{result.target} ({result.address})" if result.address else str(result.target)
                row = (worst, where, ", ".join(f.id for f in result.findings))
                # Keep only the worst SUMMARY_ROWS rows (a min-heap by severity): memory stays flat.
                rank = (-1 if worst is None else int(worst), summary.endpoints)
                if len(rows) < SUMMARY_ROWS:
                    heapq.heappush(rows, (rank, row))
                else:
                    heapq.heappushpop(rows, (rank, row))
            if saver is not None:
                saver.save(result)
            summary.add(result)
