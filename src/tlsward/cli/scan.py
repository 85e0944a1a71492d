"""``tlsward scan``: scan and diagnose endpoints; human blocks or versioned JSON; CI-friendly exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from dataclasses import asdict, is_dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from tlsward.cli.exit_codes import ExitCode
from tlsward.engine import Scanner, ScanOptions
from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.net.tls import ClientIdentity

SCHEMA_VERSION = "0.1"
SEVERITY_STYLE = {Severity.CRITICAL: "bold red", Severity.HIGH: "red", Severity.MEDIUM: "yellow",
                  Severity.LOW: "cyan", Severity.INFO: "dim"}
out = Console()
err = Console(stderr=True)


def read_targets(args: list[str], file: Path | None, sni: str | None, connect: str | None) -> list[Target]:
    """Targets from arguments, ``-f FILE`` and ``-`` (stdin). A bad line is reported and skipped."""
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
    for text, origin in lines:
        text = text.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            targets.append(Target.parse(text, sni=sni, connect=connect))
        except UsageError as exc:
            err.print(f"[red]skipped[/] {origin}: {exc}", highlight=False)
    if not targets and not lines:
        raise UsageError("no targets: pass host[:port], a URL, -f FILE or -")
    return targets


def to_jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in asdict(value).items() if k != "chain_der"}
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items() if k != "chain_der"}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Severity):
        return value.name.lower()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def result_json(result: ScanResult) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(result)
    data["target"] = {"input": str(result.target), **to_jsonable(result.target)}
    for facts, cert in zip(data["chain"], result.chain, strict=True):
        facts["days_left"] = round(cert.days_left(result.scanned_at), 2)
    return data


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
    if result.http is not None:
        out.print(f"http: {result.http.status} hsts={result.http.hsts or '-'} location={result.http.location or '-'}",
                  highlight=False)
    if not result.findings:
        out.print("[green]no findings[/]")
    for f in result.findings:
        out.print(f"[{SEVERITY_STYLE[f.severity]}]{f.severity.name:<8}[/] {f.id}: {f.title}", highlight=False)
        out.print(f"         {f.evidence}", highlight=False)
        out.print(f"         fix: {f.remediation.fix}", highlight=False)
        out.print(f"         confirm: {f.remediation.confirm}", highlight=False)
    for note in result.notes:
        out.print(f"  note: {note}", highlight=False)


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
    all_ips: Annotated[bool, typer.Option("--all-ips", help="Scan every A/AAAA record of each name and flag "
                                          "backends that serve different certificates")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds per phase")] = 5.0,
    concurrency: Annotated[int, typer.Option(help="Endpoints scanned at once")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, one object per endpoint")] = False,
    fail_on: Annotated[str, typer.Option(help="Exit 1 when a finding reaches this severity")] = "high",
) -> None:
    """Scan endpoints and diagnose what is wrong, with the fix and the command that confirms it."""
    try:
        threshold = Severity.parse(fail_on)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None
    if (cert is None) != (key is None):
        raise UsageError("--cert and --key go together")
    if timeout <= 0 or concurrency < 1:
        raise UsageError("--timeout must be > 0 and --concurrency >= 1")
    parsed = read_targets(targets or [], file, sni, connect)
    options = ScanOptions(timeout=timeout, concurrency=concurrency, all_ips=all_ips,
                          ca_files=tuple(str(p) for p in ca_file or ()),
                          client=ClientIdentity(str(cert), str(key)) if cert and key else None)
    worst, unscannable = asyncio.run(_run(parsed, options, as_json))
    if unscannable:
        raise typer.Exit(ExitCode.UNSCANNABLE)
    if worst is not None and worst >= threshold:
        raise typer.Exit(ExitCode.FINDINGS)


async def _run(targets: list[Target], options: ScanOptions, as_json: bool) -> tuple[Severity | None, int]:
    scanner = Scanner(options)
    worst: Severity | None = None
    unscannable = 0
    with Progress(console=err, transient=True, disable=len(targets) < 2 or not err.is_terminal) as progress:
        task = progress.add_task("scanning", total=len(targets))
        async for result in scanner.scan(targets):
            progress.advance(task)
            if as_json:
                print(json.dumps({"schema_version": SCHEMA_VERSION, **result_json(result)}), flush=True)
            else:
                print_result(result)
            unscannable += result.failure is not None and result.session is None and result.http is None
            for f in result.findings:
                worst = f.severity if worst is None or f.severity > worst else worst
    return worst, unscannable
