"""``tlsward inventory discover network|files|configs``: fill the inventory from what exists, not from what
someone remembered to write down."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.inventory import SEVERITY_STYLE, Db, open_store
from tlsward.model.discovery import ConfiguredListener, FileProblem, NetworkListener
from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointFileRecord, EndpointRecord, clean_tags
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target

if TYPE_CHECKING:
    from tlsward.storage import Store

app = typer.Typer(help="Find endpoints and certificates: network ranges, certificate files, server configs.",
                  no_args_is_help=True)
out = Console(highlight=False, soft_wrap=True)   # paths and evidence must stay greppable: never wrap
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



FailOn = Annotated[str, typer.Option("--fail-on", help="Exit 1 when a problem reaches this severity")]


def _severity(text: str) -> Severity:
    try:
        return Severity.parse(text)
    except ValueError as exc:
        raise UsageError(f"--fail-on: {exc}") from None


def _show(problem: FileProblem) -> None:
    severity = problem.finding.severity.name.lower()
    out.print(f"[{SEVERITY_STYLE[problem.finding.severity]}]{severity}[/] {problem}", markup=True)
    if problem.finding.remediation.fix:
        out.print(f"    fix: {problem.finding.remediation.fix}", markup=False)


@app.command()
def files(
    paths: Annotated[list[Path], typer.Argument(help="Directories to walk and files to read")],
    password: Annotated[list[str] | None, typer.Option("--password", help="Password for PKCS#12 files and "
                                                       "keystores; repeat to try several")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", metavar="VAR",
                                                     help="Read one more password from this variable")] = None,
    follow_symlinks: Annotated[bool, typer.Option("--follow-symlinks", help="Descend into symlinked "
                                                  "directories (symlinked files are always read)")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report; store nothing")] = False,
    fail_on: FailOn = "high",
    db: Db = None,
) -> None:
    """Walk certificate files on disk (PEM, DER, PKCS#12, JKS/JCEKS): store every certificate with where it
    lives, and report unreadable or broken files, keys that do not match their certificate and keys others
    can read. Exit 1 when a problem reaches --fail-on."""
    from tlsward.discovery.files import pair_keys, scan_paths

    threshold = _severity(fail_on)
    passwords = list(password or ())
    if password_env is not None:
        if password_env not in os.environ:
            raise UsageError(f"--password-env {password_env}: the variable is not set")
        passwords.append(os.environ[password_env])
    roots = [str(path.absolute()) for path in paths]
    scan = scan_paths(roots, passwords=passwords, follow_symlinks=follow_symlinks)
    for problem in scan.problems:
        _show(problem)
    paired = sum(1 for pairing in pair_keys(scan) if pairing.certificates)
    summary = (f"{scan.files_seen} files: {len(scan.certificates)} certificates, {len(scan.keys)} private keys "
               f"({paired} paired with a certificate), {len(scan.problems)} problems")
    if dry_run:
        out.print(f"{summary}; nothing written", markup=False)
    else:
        with open_store(db) as store:
            added = store.record_files(scan, roots)
        out.print(f"{summary}; {added} certificates new to the inventory", markup=False)
    if any(problem.finding.severity >= threshold for problem in scan.problems):
        raise typer.Exit(ExitCode.FINDINGS)


def _endpoints(listener: ConfiguredListener, connect: str | None) -> list[EndpointRecord]:
    """The endpoints a listener serves: one per server name (wildcards, regexes and catch-alls are names no
    client sends), else one for the listen address itself."""
    address = listener.address if listener.address not in (None, "0.0.0.0", "::") else connect  # noqa: S104
    names = [name for name in listener.server_names
             if name not in ("_", "localhost", "") and not name.startswith(("~", "*")) and "*" not in name
             and not name.startswith(".")]
    records = []
    for name in names:
        try:
            target = Target.parse(f"{name}:{listener.port}", connect=address)
        except UsageError:
            continue
        records.append(EndpointRecord(target=str(target), host=target.host, port=target.port, sni=target.sni,
                                      connect=target.connect))
    if not records and address is not None:
        target = Target.parse(f"[{address}]:{listener.port}" if ":" in address else f"{address}:{listener.port}")
        records.append(EndpointRecord(target=str(target), host=target.host, port=target.port))
    return records


@app.command()
def configs(
    paths: Annotated[list[Path], typer.Argument(help="Main config files (nginx.conf, apache2.conf, haproxy.cfg)")],
    server: Annotated[str | None, typer.Option(help="nginx, apache or haproxy [default: detected]")] = None,
    connect: Annotated[str | None, typer.Option(help="Address to reach listeners that bind every address "
                                                "(e.g. this host's IP) [default: resolve the server name]")]
    = None,
    check: Annotated[bool, typer.Option("--check", help="Scan each endpoint now and report certificates "
                                        "renewed on disk but not deployed")] = False,
    ca_file: Annotated[list[Path] | None, typer.Option("--ca-file", help="Extra trust anchors for --check")]
    = None,
    owner: Owner = None, team: Team = None, env: Env = None, tag: Tags = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report; store nothing")] = False,
    fail_on: FailOn = "high",
    db: Db = None,
) -> None:
    """Read nginx, Apache and HAProxy configs (includes followed): add an endpoint per TLS server name and
    link it to the certificate files its config names. Exit 1 when a problem reaches --fail-on."""
    from tlsward.configs import read_config

    threshold = _severity(fail_on)
    if server is not None and server not in ("nginx", "apache", "haproxy"):
        raise UsageError(f"--server {server!r}: expected nginx, apache or haproxy")
    if connect is not None:
        Target.parse("x.invalid", connect=connect)   # a one-line usage error when it is not an IP
    tags = clean_tags((*(tag or ()), "discovered"))
    plan: dict[str, tuple[EndpointRecord, list[EndpointFileRecord]]] = {}
    worst: Severity | None = None
    for path in paths:
        scan = read_config(path, server=server)  # type: ignore[arg-type]
        for problem in scan.problems:
            _show(problem)
            worst = max(worst or problem.finding.severity, problem.finding.severity)
        for listener in scan.listeners:
            links = [EndpointFileRecord(target="", server=listener.server, config_path=listener.config_path,
                                        config_line=listener.line, certificate_path=cert,
                                        key_path=listener.key_paths[i] if i < len(listener.key_paths) else None)
                     for i, cert in enumerate(listener.certificate_paths)]
            for record in _endpoints(listener, connect):
                record = EndpointRecord(target=record.target, host=record.host, port=record.port, sni=record.sni,
                                        connect=record.connect, owner=owner, team=team, environment=env, tags=tags)
                known = plan.setdefault(record.target, (record, []))
                known[1].extend(link for link in links if link.certificate_path not in
                                {k.certificate_path for k in known[1]})
    for target, (_, links) in sorted(plan.items()):
        files_text = ", ".join(link.certificate_path for link in links) or "no certificate file"
        out.print(f"{target}  <- {files_text}", markup=False)
    out.print(f"{len(plan)} TLS endpoints in {len(paths)} config(s)" + ("; nothing written" if dry_run else ""),
              markup=False)
    if dry_run:
        if worst is not None and worst >= threshold:
            raise typer.Exit(ExitCode.FINDINGS)
        return
    with open_store(db) as store:
        for record, links in plan.values():
            store.link_endpoint_files(record, links)
        if check and plan:
            worst = max(worst or Severity.INFO, _check(store, [record for record, _ in plan.values()],
                                                       [str(p) for p in ca_file or ()]) or Severity.INFO)
    if worst is not None and worst >= threshold:
        raise typer.Exit(ExitCode.FINDINGS)


def _check(store: Store, records: list[EndpointRecord], ca_files: list[str]) -> Severity | None:
    """Scan the endpoints, record the scans, and print deploy.not_deployed findings; the worst severity."""
    from tlsward.engine import Scanner, ScanOptions
    from tlsward.monitor.deployment import check_deployment

    async def scan_all() -> list[ScanResult]:
        scanner = Scanner(ScanOptions(timeout=5.0, ca_files=tuple(ca_files), revocation="off"))
        return [result async for result in scanner.scan(
            [Target.parse(record.target, sni=record.sni, connect=record.connect) for record in records])]

    worst: Severity | None = None
    for result in asyncio.run(scan_all()):
        if result.failure is not None:
            out.print(f"[red]unreachable[/] {result.target}: {result.failure.message}")
            continue
        store.record_scan(result)
        for finding in check_deployment(store, result):
            worst = max(worst or finding.severity, finding.severity)
            out.print(f"[{SEVERITY_STYLE[finding.severity]}]{finding.severity.name.lower()}[/] {result.target}: "
                      f"{finding.id}: {finding.evidence}", markup=True, highlight=False)
            out.print(f"    fix: {finding.remediation.fix}", markup=False)
    return worst
