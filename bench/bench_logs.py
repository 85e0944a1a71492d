"""Access-log ingest: ``tlsward logs ingest`` over a 2,000,000-line nginx log (tlsward's documented log_format),
side by side with awk (mawk, Debian's awk, and gawk when installed) counting requests per hour, protocol, cipher
and endpoint over the same file, and GoAccess 1.7 (Debian) reading the TLS version and cipher (``%K %k``) into
its report. Goal (issue 11): at least 200,000 lines a second, one process.

Every tool must count exactly the requests per protocol the generator wrote, or the run fails. tlsward's time is
the whole command (start-up, a fresh SQLite inventory, every batch committed); it also itemises the clients of
every non-TLS-1.3 request and validates each line, which awk does not.
"""

from __future__ import annotations

import collections
import json
import random
import shutil
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

from common import (
    BenchError,
    Goal,
    Measured,
    RunInfo,
    goal_lines,
    goals_json,
    md_table,
    measure_in,
    measured_on,
    print_goals,
    print_rows,
    publish,
    python_env,
    quiet,
    run_measured,
    tlsward_exe,
    tlsward_version,
    wrap,
)

NAME = "logs"
TITLE = "## Access-log ingest (`bench/bench_logs.py`)"
LINES = 2_000_000
RUNS = 3
GOAL_RATE = 200_000
SEED = 11
T0 = 1_772_323_200                      # 2026-03-01T00:00:00Z; the log covers 24 hours
ENDPOINTS = [f"svc{i}.example.com" for i in range(20)]
MIX = ([("TLSv1.3", "TLS_AES_128_GCM_SHA256")] * 40 + [("TLSv1.3", "TLS_AES_256_GCM_SHA384")] * 20
       + [("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")] * 25 + [("TLSv1.2", "ECDHE-RSA-AES256-SHA384")] * 5
       + [("TLSv1.2", "AES128-SHA")] * 3 + [("TLSv1.1", "ECDHE-RSA-AES128-SHA")] * 2
       + [("TLSv1", "ECDHE-RSA-AES256-SHA")] * 3 + [("-", "-")] * 2)
NORMAL = {"TLSv1": "TLSv1.0", "-": "plain"}
AWK_SCRIPT = r"""
# requests per (hour, protocol, cipher, SNI:port): the fields tlsward's nginx log_format ends with
NF < 5 || $(NF-3) !~ /^(TLSv1(\.[0-3])?|SSLv3|-)$/ { bad++; next }
{ c[substr($2, 2, 13) " " $(NF-3) " " $(NF-2) " " $(NF-1) ":" $NF]++ }
END { for (k in c) print c[k], k; print bad + 0, "malformed" }
"""
GOACCESS_FORMAT = '%h [%dT%t+%^] "%r" %s "%u" %K %k %v %^'


@dataclass
class Row:
    """One tool's measurement (median wall-clock over its runs)."""

    version: str
    wall: float
    rss_mib: float
    command: str
    inner: float = 0.0          # tlsward: the seconds its own summary reports (reading, folding, committing)


def generate(path: Path) -> collections.Counter[str]:
    """LINES lines in tlsward's nginx format; a client pool of 50,000 addresses used with a long tail, 154 user
    agents, 1 line in 10,000 garbage. Returns requests per protocol (tlsward's names, "plain")."""
    rng = random.Random(SEED)
    agents = [f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{100 + i}.0.0.0 "
              "Safari/537.36" for i in range(150)] + ["curl/7.88.1", "python-requests/2.31.0", "Java/1.8.0_151",
                                                      "okhttp/3.12.1"]
    clients = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
               for _ in range(50_000)]
    counted: collections.Counter[str] = collections.Counter()
    with path.open("w", encoding="utf-8") as handle:
        chunk: list[str] = []
        for i in range(LINES):
            if i % 10_000 == 9_999:
                chunk.append("GET /favicon.ico garbage \\x16\\x03\\x01 from a scanner\n")
                counted["malformed"] += 1
            else:
                moment = T0 + i * 86_400 // LINES
                hh, mm, ss = moment % 86_400 // 3600, moment % 3600 // 60, moment % 60
                protocol, cipher = rng.choice(MIX)
                plain = protocol == "-"
                client = clients[min(int(rng.paretovariate(1.1)) - 1, len(clients) - 1) if rng.random() < 0.5
                                 else rng.randrange(len(clients))]
                chunk.append(f'{client} [2026-03-01T{hh:02d}:{mm:02d}:{ss:02d}+00:00] "GET /api/v1/items/{i % 1000} '
                             f'HTTP/1.1" 200 "{rng.choice(agents)}" {protocol} {cipher} '
                             f'{"-" if plain else rng.choice(ENDPOINTS)} {80 if plain else 443}\n')
                counted[NORMAL.get(protocol, protocol)] += 1
            if len(chunk) >= 50_000:
                handle.writelines(chunk)
                chunk = []
        handle.writelines(chunk)
    return counted


def logs_command() -> tuple[list[str | Path], str]:
    """``tlsward logs`` once the CLI registers it, else the same sub-app as a module."""
    exe = tlsward_exe()
    if quiet([exe, "logs", "--help"], timeout=60).returncode == 0:
        return [exe, "logs"], "tlsward logs ingest"
    return [sys.executable, "-m", "tlsward.cli.logs"], "python -m tlsward.cli.logs ingest"


def check(tool: str, got: collections.Counter[str], expected: collections.Counter[str], tls_only: bool = False) -> None:
    wanted = {k: v for k, v in expected.items() if k != "malformed" and not (tls_only and k == "plain")}
    found = {k: v for k, v in got.items() if k != "malformed" and not (tls_only and k == "plain")}
    if found != wanted:
        raise BenchError(f"{tool} counted {dict(sorted(found.items()))}, the log holds {dict(sorted(wanted.items()))}")


def run_tlsward(command: list[str | Path], log: Path, work: Path, run: int) -> tuple[Measured, dict[str, object]]:
    out = work / f"tlsward-{run}.json"
    with out.open("wb") as handle, (work / "tlsward.stderr").open("wb") as stderr:
        m = run_measured([*command, "ingest", log, "--json", "--db", f"sqlite:///{work / f'run{run}.db'}"],
                         timeout=600, stdout=handle, stderr=stderr, env=python_env(work))
    if m.returncode != 0:
        raise BenchError(f"tlsward exited {m.returncode}: {(work / 'tlsward.stderr').read_text()[-400:]}")
    return m, json.loads(out.read_text())


def run_awk(awk: str, log: Path, work: Path) -> tuple[Measured, collections.Counter[str]]:
    script = work / "count.awk"
    script.write_text(AWK_SCRIPT)
    out = work / f"{awk}.out"
    with out.open("wb") as handle:
        m = run_measured([awk, "-f", script, log], timeout=600, stdout=handle)
    if m.returncode != 0:
        raise BenchError(f"{awk} exited {m.returncode}")
    counted: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        count, *key = line.split()
        protocol = "malformed" if key == ["malformed"] else NORMAL.get(key[1], key[1])
        counted[protocol] += int(count)
    return m, counted


def run_goaccess(log: Path, work: Path) -> tuple[Measured, collections.Counter[str]]:
    report = work / "goaccess.json"
    with (work / "goaccess.stderr").open("wb") as stderr:
        m = run_measured(["goaccess", log, "--no-global-config", "--no-progress", f"--log-format={GOACCESS_FORMAT}",
                          "--date-format=%Y-%m-%d", "--time-format=%H:%M:%S", "-o", report], timeout=900,
                         stderr=stderr)
    if m.returncode != 0 or not report.exists():
        raise BenchError(f"goaccess exited {m.returncode}: {(work / 'goaccess.stderr').read_text()[-400:]}")
    panel = json.loads(report.read_text())["tls_type"]["data"]
    return m, collections.Counter({NORMAL.get(item["data"], item["data"]): item["hits"]["count"] for item in panel})


def main() -> None:
    info = RunInfo()
    rows: dict[str, Row] = {}
    extra: dict[str, object] = {}

    def measure(work: Path) -> None:
        log = work / "access.log"
        expected = generate(log)
        extra.update(size_mib=round(log.stat().st_size / 2**20), expected=dict(expected))
        command, shown = logs_command()
        extra["tlsward_command"] = shown
        walls, inner, rss = [], [], []
        for run in range(RUNS):
            m, summary = run_tlsward(command, log, work, run)
            by_protocol = collections.Counter({str(k): int(v) for k, v in dict(summary["by_protocol"]).items()})
            check("tlsward", by_protocol, expected)
            if summary["malformed"] != expected["malformed"]:
                raise BenchError(f"tlsward counted {summary['malformed']} malformed lines, the log holds "
                                 f"{expected['malformed']}")
            walls.append(m.wall)
            inner.append(float(str(summary["seconds"])))
            rss.append(m.max_rss_kib / 1024)
        rows["tlsward"] = Row(tlsward_version(), statistics.median(walls), max(rss),
                              f"`{shown} FILE --json --db sqlite:///NEW.db`", statistics.median(inner))
        for awk in ("mawk", "gawk"):       # mawk is Debian's awk (priority: required); gawk when installed
            if shutil.which(awk) is None:
                if awk == "gawk":
                    continue
                raise BenchError(f"{awk} is not installed (it is Debian's default awk)")
            walls, rss = [], []
            for _ in range(RUNS):
                m, counted = run_awk(awk, log, work)
                check(awk, counted, expected)
                walls.append(m.wall)
                rss.append(m.max_rss_kib / 1024)
            version = quiet([awk, "-W", "version"] if awk == "mawk" else [awk, "--version"], timeout=30)
            rows[awk] = Row((version.stdout or version.stderr).splitlines()[0].split(",")[0].strip(),
                            statistics.median(walls), max(rss), f"`{awk} -f count.awk FILE`")
        if shutil.which("goaccess") is None:
            raise BenchError("goaccess is not installed (`make bench` installs it: BENCH_PACKAGES)")
        m, counted = run_goaccess(log, work)          # one run: it is slow, and its time varies little
        check("goaccess", counted, expected, tls_only=True)
        version = quiet(["goaccess", "--version"], timeout=30).stdout.splitlines()[0].strip()   # "GoAccess - 1.7."
        version = "GoAccess " + version.rpartition(" ")[2].rstrip(".")
        rows["goaccess"] = Row(version, m.wall, m.max_rss_kib / 1024,
                               f"`goaccess FILE --log-format='{GOACCESS_FORMAT}' -o report.json`")

    if not measure_in(NAME, info, measure):
        raise SystemExit(1)
    mine = LINES / rows["tlsward"].wall
    table = []
    for tool, row in rows.items():
        rate = LINES / row.wall
        table.append([f"**{tool}**" if tool == "tlsward" else tool, row.version, f"{row.wall:.2f}", f"{rate:,.0f}",
                      f"{row.rss_mib:.0f}", "1.00" if tool == "tlsward" else f"**{mine / rate:.2f}x**", row.command])
    inner_rate = LINES / rows["tlsward"].inner
    goals: list[Goal] = [(f"`logs ingest` at least {GOAL_RATE:,} lines/s on this machine, one process",
                          mine >= GOAL_RATE, f"{mine:,.0f} lines/s end to end; {inner_rate:,.0f} lines/s reading, "
                                             "folding and committing")]
    header = ["tool", "version", "wall s", "lines/s", "peak RSS MiB", "speed: tlsward / tool", "command"]
    print_rows(header, table)
    print_goals(goals)
    section = "\n\n".join(wrap(block) for block in [
        TITLE,
        f"One nginx access log of {LINES:,} lines ({extra['size_mib']} MiB) in tlsward's documented log_format "
        "(`docs/logs.md`): 24 hours, 20 endpoints, TLS 1.3 60% / 1.2 33% / 1.1 2% / 1.0 3%, 2% plain HTTP, a pool "
        "of 50,000 client addresses used with a long tail, 154 user agents, 1 line in 10,000 garbage. Each tool "
        "reads the same file from the page cache; its wall-clock is the whole process, measured with wait4 "
        f"(median of {RUNS} runs; GoAccess runs once). Every tool must count exactly the requests per protocol the "
        "generator wrote, or the run fails (GoAccess leaves plain HTTP out of its TLS panel). What each does: "
        "tlsward folds every line into hourly counts per endpoint, protocol and cipher, itemises the user agent and "
        "/24 of every non-TLS-1.3 request (top 20 per key, plus \"other\"), counts and samples the malformed "
        "lines, and commits it all with the file's checkpoint into a new SQLite inventory (start-up included); "
        "awk counts lines per (hour, protocol, cipher, SNI:port) in an associative array and prints it "
        "(`count.awk` is in the benchmark); GoAccess builds its whole report (visitors, requests, hosts, browsers, "
        "TLS panel ...), which is more work than the TLS counts alone. Speed ratio: the tool's wall-clock / "
        "tlsward's (above 1: tlsward is faster).",
        "\n".join(md_table(header, table)),
        f"tlsward's own summary puts its reading, folding and committing at {inner_rate:,.0f} lines/s (median of "
        "the runs); the rest of its wall-clock is interpreter start-up, imports and opening the inventory.",
        *goal_lines(goals),
        measured_on(info, rows["tlsward"].version, NAME, "rates"),
    ]) + "\n"
    publish(NAME, TITLE, {"info": info.__dict__, "results": {tool: row.__dict__ for tool, row in rows.items()},
                          "lines": LINES, **extra, "goals": goals_json(goals)}, section)


if __name__ == "__main__":
    main()
