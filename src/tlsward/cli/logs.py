"""``tlsward logs ingest|show|prune|formats``: client TLS telemetry from servers' access logs.

``ingest`` folds access logs (files, followed across rotation and resumed from their checkpoints, or ``-`` for
stdin) into hourly buckets in the inventory database; ``show`` prints the protocol and cipher mix per endpoint
and the clients still on TLS 1.0/1.1 or weak suites; ``prune`` drops old buckets; ``formats`` prints the log
format lines to configure (docs/logs.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from tlsward.cli.exit_codes import ExitCode
from tlsward.model.clientlogs import OTHER_CLIENTS, PLAIN, TOP_CLIENTS, Checkpoint, IngestBatch, legacy_reason
from tlsward.model.errors import Error, UsageError

if TYPE_CHECKING:
    from tlsward.logs.follow import IngestReport, Source
    from tlsward.storage import Store

app = typer.Typer(help="Client TLS telemetry from access logs: which protocols and ciphers clients really "
                       "negotiate, and who is still on TLS 1.0/1.1 or weak suites.", no_args_is_help=True)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

Db = Annotated[str | None, typer.Option("--db", metavar="URL", help="sqlite:///PATH or postgresql+psycopg://"
                                        "USER@HOST/DB [default: $TLSWARD_DB or ~/.local/share/tlsward/"
                                        "inventory.db]")]
BATCH_LINES = 500_000   # tlsward.logs.ingest.BATCH_LINES, without importing the fold for every command
PROTOCOL_COLUMNS = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1.0", "SSLv3")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([mhdw])", re.ASCII)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Format(StrEnum):
    nginx = "nginx"
    haproxy = "haproxy"
    apache = "apache"
    envoy = "envoy"


def open_store(db: str | None) -> Store:
    """SQLAlchemy loads on use, not when the CLI starts."""
    from tlsward.storage import open_store as open_inventory

    return open_inventory(db)


def _protocol_label(protocol: str) -> str:
    return "plain" if protocol == PLAIN else protocol


def _percent(part: int, whole: int) -> str:
    if not part:
        return "-"
    share = 100 * part / whole
    return f"{share:.1f}%" if share >= 0.1 else "<0.1%"


# -- ingest ------------------------------------------------------------------------------------------------------------


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGTERM and Ctrl-C set ``stop`` (the ingester then commits what it read and returns); the signals
    received are listed in what is yielded."""
    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    previous: dict[signal.Signals, Any] = {}
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:          # not the main thread: the caller stops us some other way
        pass
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _open_sources(files: Sequence[str], store_checkpoint: Any) -> tuple[
        list[Source], dict[str, Checkpoint | None], list[dict[str, Any]]]:
    from tlsward.logs.follow import FileSource, StreamSource

    sources: list[Source] = []
    previous: dict[str, Checkpoint | None] = {}
    failed: list[dict[str, Any]] = []
    for given in files:
        if given == "-":
            sources.append(StreamSource(sys.stdin.buffer))
            continue
        path = Path(given).absolute()
        if path.is_dir():
            err.print(f"[red]error:[/] {given}: is a directory, not a log file", highlight=False)
            failed.append({"source": str(path), "error": "is a directory"})
            continue
        mark = store_checkpoint(str(path))
        try:
            source = FileSource(path, mark)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            err.print(f"[red]error:[/] {given}: {reason}", highlight=False)
            failed.append({"source": str(path), "error": reason})
            continue
        if source.name in previous:
            source.close()
            continue
        previous[source.name] = mark
        sources.append(source)
    return sources, previous, failed


def _summary_json(report: IngestReport, log_format: str, follow: bool, failed: list[dict[str, Any]],
                  interrupted: bool) -> dict[str, Any]:
    stats = report.fold.stats
    sources: list[dict[str, Any]] = []
    for source in report.sources:
        mark = source.checkpoint
        sources.append({"source": source.source, "lines": source.lines, "malformed": source.malformed,
                        "rotations": source.rotations, "notes": source.notes, "error": None,
                        "checkpoint": None if mark is None else {"inode": mark.inode, "offset": mark.offset,
                                                                 "line": mark.line}})
    sources += [{"source": f["source"], "lines": 0, "malformed": 0, "rotations": 0, "notes": [],
                 "error": f["error"], "checkpoint": None} for f in failed]
    return {"format": log_format, "follow": follow, "lines": stats.lines, "requests": stats.requests,
            "malformed": stats.malformed, "blank": stats.blank,
            "by_protocol": {_protocol_label(p): n for p, n in sorted(stats.by_protocol.items(),
                                                                     key=lambda item: -item[1])},
            "endpoints": len(stats.endpoints), "batches": report.batches, "seconds": round(report.seconds, 3),
            "lines_per_second": round(stats.lines / report.seconds) if report.seconds > 0 else None,
            "stopped": report.stopped, "interrupted": interrupted, "sources": sources}


def _print_summary(report: IngestReport) -> None:
    stats = report.fold.stats
    for source in report.sources:
        line = f"{source.source}: {source.lines:,} lines"
        if source.malformed:
            line += f", {source.malformed:,} malformed"
        if source.rotations:
            line += f", {source.rotations} rotation{'s' if source.rotations > 1 else ''}"
        if source.checkpoint is not None:
            line += f" (now at line {source.checkpoint.line:,})"
        out.print(line, highlight=False)
        for note in source.notes:
            out.print(f"  note: {note}", highlight=False)
    mix = ", ".join(f"{_protocol_label(protocol)} {_percent(n, stats.requests)}"
                    for protocol, n in sorted(stats.by_protocol.items(), key=lambda item: -item[1]))
    rate = f" ({stats.lines / report.seconds:,.0f} lines/s)" if report.seconds > 0 and stats.lines else ""
    out.print(f"{stats.requests:,} requests to {len(stats.endpoints)} endpoint"
              f"{'' if len(stats.endpoints) == 1 else 's'}{': ' + mix if mix else ''}; "
              f"{stats.malformed:,} malformed lines; {report.seconds:.1f} s{rate}", highlight=False)


@app.command()
def ingest(
    files: Annotated[list[str], typer.Argument(metavar="FILE...", help="Access logs; - reads stdin")],
    log_format: Annotated[Format, typer.Option("--format", "-f", help="How the server writes its log (see "
                                               "`tlsward logs formats`)")] = Format.nginx,
    follow: Annotated[bool, typer.Option("--follow", help="Keep reading as the logs grow and rotate, until "
                                         "SIGTERM or Ctrl-C (or --for)")] = False,
    for_seconds: Annotated[float | None, typer.Option("--for", metavar="SECONDS", help="Stop after this many "
                                                      "seconds")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON summary on stdout")] = False,
    batch_lines: Annotated[int, typer.Option("--batch-lines", metavar="N", help="Lines per database transaction")]
    = BATCH_LINES,
    db: Db = None,
) -> None:
    """Fold access logs into per-endpoint, hourly protocol/cipher counts. Each file resumes where the last run
    stopped (exactly once, also across rotation); a missing file is one error line and the others go on."""
    if files.count("-") > 1:
        raise UsageError("stdin (-) can be read only once")
    if for_seconds is not None and for_seconds <= 0:
        raise UsageError("--for must be a positive number of seconds")
    if batch_lines < 1:
        raise UsageError("--batch-lines must be >= 1")
    from tlsward.logs.follow import run
    from tlsward.logs.ingest import Fold
    from tlsward.storage.clientlogs import ClientLogStore

    with open_store(db) as store:
        telemetry = ClientLogStore(store)
        sources, previous, failed = _open_sources(files, telemetry.checkpoint)
        if not sources:
            if as_json:
                from tlsward.logs.follow import IngestReport

                nothing = IngestReport(sources=[], fold=Fold(log_format.value))
                print(json.dumps(_summary_json(nothing, log_format.value, follow, failed, False)))
            raise typer.Exit(ExitCode.USAGE)

        def commit(batch: IngestBatch, marks: Sequence[Checkpoint], before: Mapping[str, Checkpoint | None]) -> None:
            telemetry.record(batch, marks, previous=before)

        stop = threading.Event()
        try:
            with _stop_on_signals(stop) as received:
                report = run(sources, Fold(log_format.value), commit, follow=follow, seconds=for_seconds, stop=stop,
                             previous=previous, batch_lines=batch_lines)
        except OSError as exc:      # an I/O error while reading: what was committed stays, the rest is read next time
            err.print(f"[red]error:[/] reading {exc.filename or 'the logs'}: {exc.strerror or exc}", highlight=False)
            raise typer.Exit(ExitCode.ENVIRONMENT) from None
        finally:
            for source in sources:
                source.close()
    interrupted = bool(received) and not follow
    if as_json:
        print(json.dumps(_summary_json(report, log_format.value, follow, failed, interrupted)))
    else:
        _print_summary(report)
    if failed:
        raise typer.Exit(ExitCode.USAGE)
    if interrupted:
        raise typer.Exit(ExitCode.INTERRUPTED)


# -- show --------------------------------------------------------------------------------------------------------------


def parse_moment(text: str, now: dt.datetime, flag: str) -> dt.datetime:
    """``30m``, ``24h``, ``7d``, ``2w`` (that long before ``now``) or an ISO date/time (UTC unless it says
    otherwise). Raises UsageError naming ``flag``."""
    if (match := _DURATION.fullmatch(text.strip())) is not None:
        return now - dt.timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give a duration (30m, 24h, 7d, 2w) or an ISO date/time") from None
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _show_data(store: Store, endpoint: str | None, since: dt.datetime, until: dt.datetime,
               clients: int) -> dict[str, Any]:
    from tlsward.storage.clientlogs import ClientLogStore

    telemetry = ClientLogStore(store)
    mix = telemetry.mix(endpoint, since, until, by_bucket=False)
    endpoints: dict[str, dict[str, Any]] = {}
    for row in mix.rows:
        entry = endpoints.setdefault(row.endpoint, {"endpoint": row.endpoint, "requests": 0, "protocols": {},
                                                    "legacy_requests": 0, "ciphers": []})
        reason = legacy_reason(row.protocol, row.cipher)
        entry["requests"] += row.requests
        label = _protocol_label(row.protocol)
        entry["protocols"][label] = entry["protocols"].get(label, 0) + row.requests
        entry["legacy_requests"] += row.requests if reason else 0
        entry["ciphers"].append({"protocol": label, "cipher": row.cipher or None, "requests": row.requests,
                                 "legacy": reason})
    for entry in endpoints.values():
        tls = entry["requests"] - entry["protocols"].get("plain", 0)
        entry["legacy_share"] = round(entry["legacy_requests"] / tls, 6) if tls else 0.0
        entry["ciphers"].sort(key=lambda c: (-c["requests"], c["protocol"], c["cipher"] or ""))
    legacy: list[dict[str, Any]] = []
    unnamed = 0                   # legacy requests of the clients past the top K per key (the OTHER rows)
    for client in mix.clients:
        reason = legacy_reason(client.protocol, client.cipher)
        if reason is None:
            continue
        if client.network == OTHER_CLIENTS:
            unnamed += client.requests
            continue
        legacy.append({"endpoint": client.endpoint, "protocol": client.protocol, "cipher": client.cipher,
                       "user_agent": client.user_agent, "network": client.network, "requests": client.requests,
                       "reason": reason})
    legacy.sort(key=lambda c: (-c["requests"], c["endpoint"], c["protocol"], c["cipher"], c["user_agent"],
                               c["network"]))
    malformed = [{"source": m.source, "count": m.count, "samples": [{"line": n, "text": t} for n, t in m.samples]}
                 for m in telemetry.malformed()]
    ordered = sorted(endpoints.values(), key=lambda e: (-e["requests"], e["endpoint"]))
    return {"since": mix.since.isoformat(), "until": mix.until.isoformat(), "endpoint": endpoint,
            "requests": mix.requests, "endpoints": ordered, "legacy_clients": legacy[:clients],
            "legacy_clients_total": len(legacy), "legacy_other_requests": unnamed, "malformed": malformed}


@app.command()
def show(
    endpoint: Annotated[str | None, typer.Option("--endpoint", "-e", help="Only this endpoint (name:port, as "
                                                 "ingested)")] = None,
    since: Annotated[str, typer.Option(help="Start: a duration back from now (30m, 24h, 7d) or an ISO "
                                            "date/time")] = "7d",
    until: Annotated[str | None, typer.Option(help="End (default: now); same forms as --since")] = None,
    clients: Annotated[int, typer.Option("--clients", help="Legacy clients listed at most")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object")] = False,
    db: Db = None,
) -> None:
    """The protocol and cipher mix per endpoint, and the clients still on TLS 1.0/1.1 or weak suites."""
    now = dt.datetime.now(dt.UTC)
    start = parse_moment(since, now, "--since")
    end = parse_moment(until, now, "--until") if until is not None else now + dt.timedelta(seconds=1)
    if end <= start:
        raise UsageError(f"--until must be after --since ({start.isoformat()})")
    if clients < 0:
        raise UsageError("--clients must be >= 0")
    with open_store(db) as store:
        data = _show_data(store, endpoint, start, end, clients)
    if as_json:
        print(json.dumps(data))
        return
    _print_show(data)


def _print_show(data: dict[str, Any]) -> None:
    window = f"{data['since'][:16].replace('T', ' ')} to {data['until'][:16].replace('T', ' ')} UTC"
    if not data["endpoints"]:
        out.print(f"no client-log data {window}" + (f" for {data['endpoint']}" if data["endpoint"] else "")
                  + " (fill it with `tlsward logs ingest`)", highlight=False)
    else:
        versions = Table(title=f"TLS versions per endpoint, {window}")
        for column in ("endpoint", "requests", *PROTOCOL_COLUMNS, "plain", "legacy"):
            versions.add_column(column, justify="left" if column == "endpoint" else "right",
                                overflow="fold" if column == "endpoint" else "ellipsis")
        for entry in data["endpoints"]:
            total = entry["requests"]
            versions.add_row(entry["endpoint"], f"{total:,}",
                             *(_percent(entry["protocols"].get(p, 0), total) for p in (*PROTOCOL_COLUMNS, "plain")),
                             f"{100 * entry['legacy_share']:.1f}%" if entry["legacy_requests"] else "-")
        out.print(versions)
        ciphers = Table(title="Ciphers")
        for column in ("endpoint", "protocol", "cipher", "requests", "share", "legacy"):
            ciphers.add_column(column, justify="right" if column in ("requests", "share") else "left",
                               overflow="fold")
        for entry in data["endpoints"]:
            for cipher in entry["ciphers"]:
                ciphers.add_row(entry["endpoint"], cipher["protocol"], cipher["cipher"] or "-",
                                f"{cipher['requests']:,}", _percent(cipher["requests"], entry["requests"]),
                                cipher["legacy"] or "", style="yellow" if cipher["legacy"] else None)
        out.print(ciphers)
        legacy = data["legacy_clients"]
        if legacy:
            table = Table(title=f"Legacy clients (TLS 1.0/1.1, weak suites): {len(legacy)} of "
                                f"{data['legacy_clients_total']}")
            for column in ("endpoint", "protocol", "cipher", "user agent", "network", "requests"):
                table.add_column(column, overflow="fold", justify="right" if column == "requests" else "left")
            for client in legacy:
                table.add_row(client["endpoint"], client["protocol"], client["cipher"], client["user_agent"] or "-",
                              client["network"], f"{client['requests']:,}")
            out.print(table)
        elif not data["legacy_other_requests"]:
            out.print("no legacy clients in this window", highlight=False)
        if data["legacy_other_requests"]:
            out.print(f"plus {data['legacy_other_requests']:,} legacy requests from clients past the busiest "
                      f"{TOP_CLIENTS} per endpoint, hour, protocol and cipher (not itemised)", highlight=False)
    for entry in data["malformed"]:
        first = entry["samples"][0] if entry["samples"] else None
        example = f" (first: line {first['line']}: {first['text'][:80]!r})" if first else ""
        out.print(f"{entry['source']}: {entry['count']:,} malformed lines{example}", highlight=False)


# -- prune, formats ----------------------------------------------------------------------------------------------------


@app.command()
def prune(
    older_than: Annotated[float, typer.Option("--older-than", metavar="DAYS", help="Delete the buckets that "
                                              "started more than DAYS ago")] = 400.0,
    db: Db = None,
) -> None:
    """Delete old buckets (counts and clients); checkpoints stay."""
    if older_than < 0:
        raise UsageError("--older-than must be >= 0 days")
    from tlsward.storage.clientlogs import ClientLogStore

    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=older_than)
    with open_store(db) as store:
        removed = ClientLogStore(store).prune(cutoff)
    out.print(f"removed {removed:,} bucket rows from before {cutoff.isoformat(timespec='seconds')}", highlight=False)


@app.command()
def formats(
    log_format: Annotated[Format | None, typer.Argument(metavar="[FORMAT]", help="nginx, haproxy, apache or "
                                                        "envoy (default: all)")] = None,
) -> None:
    """The access-log format lines to configure so that `logs ingest` can read the server's logs."""
    from tlsward.logs import parsers

    lines = {"nginx": f"{parsers.NGINX_LOG_FORMAT}\naccess_log /var/log/nginx/tls.log tlsward;",
             "haproxy": f"http-request capture req.hdr(User-Agent) len 200\n{parsers.HAPROXY_LOG_FORMAT}",
             "apache": f"{parsers.APACHE_LOG_FORMAT}\nCustomLog ${{APACHE_LOG_DIR}}/tls.log tlsward",
             "envoy": parsers.ENVOY_LOG_FORMAT}
    chosen = [log_format.value] if log_format is not None else list(lines)
    for name in chosen:
        if len(chosen) > 1:
            print(f"# {name}")
        print(lines[name])
        if len(chosen) > 1 and name != chosen[-1]:
            print()


def main() -> None:
    """``python -m tlsward.cli.logs``: this sub-app alone, with tlsward's one-line errors and exit codes."""
    try:
        app()
    except Error as exc:
        from tlsward.cli.main import exit_code_for

        err.print(f"[red]error:[/] {exc}", highlight=False)
        sys.exit(exit_code_for(exc))


if __name__ == "__main__":
    main()
