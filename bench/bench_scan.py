"""Quick scan of 1,000 loopback endpoints: ``tlsward scan`` next to sslyze and openssl, in one run, on the
same target list, against one lab process on 127.0.0.1.

The targets are 1,000 distinct SNI names (``host0001.wild.lab.tlsward.test`` ...) on the lab's ``wildcard``
case, whose certificate is ``*.wild.lab.tlsward.test``: every name is valid, every tool validates against the
lab root, and every tool must succeed on every target (the run fails otherwise, it does not publish numbers).

* tlsward: ``tlsward scan -f LIST --connect 127.0.0.1 --ca-file CA --json --concurrency N`` for N in 50/100/200
  (median of 3 runs each; the best N is reported), with ``--per-host N`` too when tlsward has that option (the
  names stand for N endpoints that share an address only because the lab is on loopback; the best N is also
  run with the default per-host gate, for reference), then once with 4,000 targets at the best N to show that
  peak RSS stays flat. Wall-clock, CPU time and peak RSS come from ``wait4`` on the tlsward process itself.
* sslyze (latest from PyPI, in its own venv ``bench/.venv-peers``): ``sslyze --certinfo --certinfo_ca_file CA
  --targets_in LIST --json_out OUT`` with ``host:port{127.0.0.1}`` lines; its CLI has no concurrency flag
  (defaults: 10 servers at once, 5 connections each). A 100-target pilot decides whether the full list fits
  in the budget; otherwise a documented subset is scanned and throughputs (targets/s) are compared.
* openssl: an ``openssl s_client -connect 127.0.0.1:PORT -servername NAME -CAfile CA -verify_hostname NAME``
  loop over the same list, sequential and 8 in parallel; and ``openssl s_time -new -time 5`` against the same
  port (taken before and after the tlsward runs; the higher rate is used) as the handshake-rate reference.

Results: a table on stdout, raw numbers in ``bench/results/scan.json``, and the section "Quick scan of 1,000
loopback endpoints" of BENCHMARKS.md refreshed. A py-spy profile of one tlsward run is taken when py-spy is
installed (``.venv/bin/pip install py-spy``; investigation only, not a dependency).
Reproduce: ``make bench`` (just this one: ``make bench BENCH=scan``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import common
from common import HOST, BenchError, Lab, Measured

from tlsward.lab.catalogue import case_named

CASE = "wildcard"
TARGETS = 1000
BIG_TARGETS = 4000            # memory check: peak RSS at 4x the targets
CONCURRENCY = (50, 100, 200)
REPEATS = 3
OPENSSL_PARALLEL = 8
S_TIME_SECONDS = 5
SSLYZE_PILOT = 100
SSLYZE_BUDGET = 180.0         # seconds the full sslyze run may be projected to take; beyond it, a subset
SSLYZE_SUBSET_MIN = 200
GOAL_VS_S_TIME = 0.70         # tlsward handshakes/s >= 70% of openssl s_time's
GOAL_VS_SSLYZE = 10.0         # tlsward targets/s >= 10x sslyze's
CLIENT_TIMEOUT = 10.0         # one openssl s_client

SECTION_TITLE = "## Quick scan of 1,000 loopback endpoints"

# py-spy samples are put in the first matching bucket, checked in this order against the whole stack.
PROFILE_BUCKETS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("start-up (imports, trust stores)", re.compile(r"<frozen importlib|Scanner\.__init__|trust_stores")),
    ("revocation (CRL/OCSP checks)", re.compile(r"tlsward/\w+/revocation\.py")),
    ("chain validation (x509/validate.py)", re.compile(r"tlsward/x509/validate\.py")),
    ("TLS handshake (connect, pyOpenSSL)", re.compile(r"tlsward/net/|tlsward/probes/")),
    ("certificate facts (x509/facts.py)", re.compile(r"tlsward/x509/")),
    ("findings rules", re.compile(r"tlsward/rules/")),
    ("JSON output", re.compile(r"tlsward/report/|json/encoder\.py|json/__init__\.py")),
)


@dataclass
class TlswardRun:
    targets: int
    concurrency: int
    wall: float
    cpu: float
    max_rss_kib: int
    per_host: int | None = None   # --per-host given, or None for tlsward's default

    @property
    def rate(self) -> float:
        return self.targets / self.wall


@dataclass
class Results(common.RunInfo):
    port: int = 0
    domain: str = ""
    tlsward_version: str = ""
    sslyze_version: str = ""
    startup_s: float = 0.0
    startup_cpu: float = 0.0
    per_host_option: bool = False   # whether this tlsward has --per-host (then the sweep sets it to N)
    sweep: list[TlswardRun] = field(default_factory=list)
    default_gate: list[TlswardRun] = field(default_factory=list)   # best N with the default --per-host
    best_concurrency: int = 0
    best_wall: float = 0.0
    best_cpu: float = 0.0
    rss_1k_kib: int = 0
    big: TlswardRun | None = None
    s_time_rates: list[float] = field(default_factory=list)
    openssl_sequential_rate: float = 0.0
    openssl_parallel_rate: float = 0.0
    sslyze_targets: int = 0
    sslyze_wall: float = 0.0
    sslyze_max_rss_kib: int = 0
    sslyze_note: str = ""
    profile: dict[str, float] = field(default_factory=dict)
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    profile_note: str = ""

    def gate(self, concurrency: int) -> int | None:
        """``--per-host`` for a sweep run: N as well, since the names stand for N distinct endpoints that share
        127.0.0.1 only because the lab is on loopback (None when this tlsward has no such option)."""
        return concurrency if self.per_host_option else None

    def flags(self, concurrency: int) -> str:
        per_host = self.gate(concurrency)
        return f"--concurrency {concurrency}" + ("" if per_host is None else f" --per-host {per_host}")

    @property
    def tlsward_rate(self) -> float:
        return TARGETS / self.best_wall

    @property
    def tlsward_steady_rate(self) -> float:
        return TARGETS / max(self.best_wall - self.startup_s, 1e-9)

    @property
    def s_time_rate(self) -> float:
        return max(self.s_time_rates)

    @property
    def sslyze_rate(self) -> float:
        return self.sslyze_targets / self.sslyze_wall


# --- tlsward ----------------------------------------------------------------------------------------------


def tlsward_cmd(listfile: Path, ca: Path, concurrency: int, per_host: int | None) -> list[str | Path]:
    cmd: list[str | Path] = [common.tlsward_exe(), "scan", "-f", listfile, "--connect", HOST, "--ca-file", ca,
                             "--json", "--concurrency", str(concurrency)]
    return cmd if per_host is None else [*cmd, "--per-host", str(per_host)]


def check_tlsward_output(path: Path, names: Sequence[str], returncode: int) -> None:
    """Every line is JSON, one result per name, none failed, no finding the lab forbids on this case."""
    forbidden = case_named(CASE).forbidden()
    seen: collections.Counter[str] = collections.Counter()
    failed: list[str] = []
    wrong: collections.Counter[str] = collections.Counter()
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchError(f"tlsward --json line {number} is not JSON ({exc}): {line[:120]!r}") from None
            if not isinstance(obj, dict) or "target" not in obj:
                continue   # e.g. an end-of-run summary object
            host = str(obj["target"].get("host") or obj["target"].get("input"))
            seen[host] += 1
            if obj.get("failure") or not obj.get("session"):
                failed.append(f"{host}: {obj.get('failure')}")
            wrong.update(f.get("id", "?") for f in obj.get("findings") or () if f.get("id") in forbidden)
    missing = set(names) - set(seen)
    extra = {h: n for h, n in seen.items() if n > 1 or h not in set(names)}
    problems = []
    if returncode != 0:
        problems.append(f"exit status {returncode}")
    if missing:
        problems.append(f"{len(missing)} targets have no result (e.g. {sorted(missing)[0]})")
    if extra:
        problems.append(f"unexpected or duplicate results: {list(extra)[:3]}")
    if failed:
        problems.append(f"{len(failed)} endpoints failed, e.g. {failed[0]}")
    if wrong:
        problems.append(f"findings the lab forbids on {CASE!r}: {dict(wrong)}")
    if problems:
        raise BenchError(f"tlsward scan of {len(names)} targets: " + "; ".join(problems))


def tlsward_scan(work: Path, listfile: Path, names: Sequence[str], ca: Path, concurrency: int,
                 per_host: int | None = None) -> TlswardRun:
    out = work / f"tlsward-{len(names)}-{concurrency}.jsonl"
    with out.open("wb") as stdout, (work / "tlsward.stderr").open("ab") as stderr:
        m = common.run_measured(tlsward_cmd(listfile, ca, concurrency, per_host), timeout=60 + len(names) / 10,
                                stdout=stdout, stderr=stderr, env=common.python_env(work))
    check_tlsward_output(out, names, m.returncode)
    out.unlink()
    return TlswardRun(len(names), concurrency, m.wall, m.cpu, m.max_rss_kib, per_host)


def profile_tlsward(work: Path, listfile: Path, ca: Path, concurrency: int, per_host: int | None,
                    results: Results) -> None:
    """One py-spy run (not timed): where tlsward's CPU goes, in buckets and top self-time frames."""
    common.py_spy_profile(results, common.find_py_spy(), work, tlsward_cmd(listfile, ca, concurrency, per_host), 200,
                          profile_bucket, "scan", f"one scan of {TARGETS:,} targets")


def profile_bucket(frames: Sequence[str]) -> str:
    """The first of PROFILE_BUCKETS that matches a frame of the stack."""
    return next((name for name, pattern in PROFILE_BUCKETS if any(pattern.search(f) for f in frames)),
                "event loop, sockets, engine, other")


# --- openssl ----------------------------------------------------------------------------------------------


def s_time(port: int) -> float:
    """Handshakes per second reached by ``openssl s_time -new`` against 127.0.0.1:port."""
    out = common.quiet(["openssl", "s_time", "-connect", f"{HOST}:{port}", "-new", "-time", str(S_TIME_SECONDS)],
                       timeout=S_TIME_SECONDS * 6).stdout
    match = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
    if not match:
        raise BenchError(f"could not read openssl s_time output:\n{out}")
    return int(match.group(1)) / float(match.group(2))


def s_client(name: str, port: int, ca: Path) -> bool:
    """One full handshake with SNI, chain and name verified against the lab root; True when it verified."""
    try:
        done = subprocess.run(
            ["openssl", "s_client", "-connect", f"{HOST}:{port}", "-servername", name, "-CAfile", str(ca),
             "-verify_hostname", name, "-verify_return_error"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=CLIENT_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and b"Verify return code: 0 (ok)" in done.stdout


def openssl_loop(names: Sequence[str], port: int, ca: Path, workers: int) -> float:
    """targets/s of an ``openssl s_client`` loop over ``names`` with ``workers`` at once."""
    start = time.perf_counter()
    if workers == 1:
        oks = [s_client(name, port, ca) for name in names]
    else:
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            oks = list(pool.map(lambda name: s_client(name, port, ca), names))
    wall = time.perf_counter() - start
    if not all(oks):
        raise BenchError(f"openssl s_client failed on {oks.count(False)} of {len(names)} targets ({workers} at once)")
    return len(names) / wall


# --- sslyze -----------------------------------------------------------------------------------------------


def sslyze_scan(work: Path, sslyze: Path, names: Sequence[str], port: int, ca: Path, timeout: float) -> Measured:
    listfile = work / f"sslyze-{len(names)}.txt"
    listfile.write_text("".join(f"{name}:{port}{{{HOST}}}\n" for name in names))
    out = work / f"sslyze-{len(names)}.json"
    cmd: list[str | Path] = [sslyze, "--quiet", "--certinfo", "--certinfo_ca_file", ca, "--targets_in", listfile,
                             "--json_out", out]
    with (work / "sslyze.stderr").open("ab") as stderr:
        m = common.run_measured(cmd, timeout=timeout, stderr=stderr, env=common.python_env(work))
    if m.returncode != 0 or not out.exists():
        raise BenchError(f"sslyze exited with status {m.returncode} (stderr in {work / 'sslyze.stderr'})")
    check_sslyze_output(out, names)
    out.unlink()
    return m


def check_sslyze_output(path: Path, names: Sequence[str]) -> None:
    """Every target scanned, certinfo completed, and the chain validated against the supplied lab root."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    results = data.get("server_scan_results") or []
    bad: list[str] = []
    hosts: set[str] = set()
    for result in results:
        host = result["server_location"]["hostname"]
        hosts.add(host)
        certinfo = (result.get("scan_result") or {}).get("certificate_info") or {}
        deployments = (certinfo.get("result") or {}).get("certificate_deployments") or []
        validated = any(path_result.get("was_validation_successful")
                        for deployment in deployments for path_result in deployment["path_validation_results"])
        if result.get("scan_status") != "COMPLETED" or certinfo.get("status") != "COMPLETED" or not validated:
            bad.append(host)
    if data.get("invalid_server_strings") or bad or hosts != set(names) or len(results) != len(names):
        raise BenchError(f"sslyze: {len(results)} results for {len(names)} targets, {len(bad)} not completed or not "
                         f"validated (e.g. {bad[:1]}), invalid strings {data.get('invalid_server_strings')}")


# --- report -----------------------------------------------------------------------------------------------


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def goals(r: Results) -> list[common.Goal]:
    vs_sslyze = r.tlsward_rate / r.sslyze_rate
    vs_s_time = r.tlsward_steady_rate / r.s_time_rate   # s_time counts no start-up either
    return [
        (f"tlsward >= {GOAL_VS_SSLYZE:.0f}x sslyze's targets/s", vs_sslyze >= GOAL_VS_SSLYZE, f"{vs_sslyze:.1f}x"),
        (f"tlsward handshakes/s (start-up excluded, as s_time's) >= {GOAL_VS_S_TIME:.0%} of openssl s_time's",
         vs_s_time >= GOAL_VS_S_TIME,
         f"{vs_s_time:.0%}; {r.tlsward_rate / r.s_time_rate:.0%} with tlsward's start-up counted"),
    ]


def per_host_cap() -> int | None:
    """tlsward's per-address connection cap (``ScanOptions.per_host``) if the engine has one."""
    try:
        from tlsward.engine import ScanOptions

        cap = getattr(ScanOptions(), "per_host", None)
    except Exception:
        return None
    return cap if isinstance(cap, int) else None


def bottleneck(r: Results) -> list[str]:
    """Why a goal is missed: from tlsward's own CPU time, and the profile buckets when there is one."""
    scan_cpu = max(r.best_cpu - r.startup_cpu, 1e-9)
    scan_wall = max(r.best_wall - r.startup_s, 1e-9)
    busy = scan_cpu / scan_wall
    lines = [
        f"Start-up excluded (a 1-target run: {r.startup_s:.2f} s wall, {r.startup_cpu:.2f} s CPU), tlsward spent "
        f"{1000 * scan_cpu / TARGETS:.2f} ms of CPU (user+sys) per target for {1000 * scan_wall / TARGETS:.2f} ms "
        f"of wall-clock: its one event-loop thread was busy {busy:.0%} of the scan"
        + (", so it is CPU-bound on the client side, not waiting on the lab." if busy >= 0.8 else
           ", so it is partly waiting (on the lab, the machine, or its own per-host gate)."),
        f"openssl s_time reached {r.s_time_rate:.0f} handshakes/s with one connection at a time and a C client; "
        f"tlsward and the lab share the machine's {os.cpu_count()} cores.",
    ]
    cap = per_host_cap()
    if not r.per_host_option and cap is not None and cap < min(CONCURRENCY):
        lines.append(
            f"tlsward's engine lets at most {cap} connections run per address (`ScanOptions.per_host`, not a CLI "
            "option), and every target here connects to 127.0.0.1: `--concurrency` 50/100/200 all mean "
            f"{cap} handshakes in flight, so the sweep's differences are noise.")
    if r.profile:
        parts = ", ".join(f"{name} {share:.0f}%" for name, share in r.profile.items())
        lines.append(f"Where tlsward's CPU goes ({r.profile_note}): {parts}.")
        top = ", ".join(f"`{frame}` {share:.1f}%" for frame, share in r.profile_top[:6])
        lines.append(f"Top self-time frames: {top}.")
    elif r.profile_note:
        lines.append(r.profile_note + ".")
    return lines


def table_rows(r: Results) -> list[tuple[str, str, str, str, str, str]]:
    """(tool, targets, wall s, rate, peak RSS, tlsward ratio)"""
    rate = r.tlsward_rate
    return [
        (f"**tlsward** `{r.flags(r.best_concurrency)}` (best N of {'/'.join(map(str, CONCURRENCY))}, "
         f"median of {REPEATS})", f"{TARGETS:,}", f"{r.best_wall:.2f}", f"{rate:.0f} targets/s",
         mib(r.rss_1k_kib), "1.00"),
        (f"sslyze {r.sslyze_version} `--certinfo`", f"{r.sslyze_targets:,}", f"{r.sslyze_wall:.2f}",
         f"{r.sslyze_rate:.1f} targets/s", mib(r.sslyze_max_rss_kib), f"**{rate / r.sslyze_rate:.1f}x**"),
        ("openssl s_client loop, sequential", f"{TARGETS:,}", f"{TARGETS / r.openssl_sequential_rate:.2f}",
         f"{r.openssl_sequential_rate:.0f} targets/s", "-", f"**{rate / r.openssl_sequential_rate:.2f}x**"),
        (f"openssl s_client loop, {OPENSSL_PARALLEL} in parallel", f"{TARGETS:,}",
         f"{TARGETS / r.openssl_parallel_rate:.2f}", f"{r.openssl_parallel_rate:.0f} targets/s", "-",
         f"**{rate / r.openssl_parallel_rate:.2f}x**"),
        (f"openssl s_time -new -time {S_TIME_SECONDS} (same port, no SNI, no verification)", "-", "-",
         f"{r.s_time_rate:.0f} handshakes/s", "-",
         f"{rate / r.s_time_rate:.2f}x; **{r.tlsward_steady_rate / r.s_time_rate:.2f}x** without start-up"),
    ]


TABLE_HEADER = ("tool", "targets", "wall s", "throughput", "peak RSS", "tlsward / tool")


def markdown(r: Results) -> str:
    sweep = ", ".join(
        f"{c}: {statistics.median(x.rate for x in r.sweep if x.concurrency == c):.0f} targets/s"
        for c in CONCURRENCY)
    big = r.big
    assert big is not None
    missed = not all(ok for _, ok, _ in goals(r))
    blocks = [
        f"{SECTION_TITLE} (`bench/bench_scan.py`)",
        "",
        f"{TARGETS:,} distinct SNI names (`host0001.{r.domain}` ... `host{TARGETS:04d}.{r.domain}`) on the lab's "
        f"`{CASE}` case (one port, certificate `*.{r.domain}`), served by one lab process on 127.0.0.1; every "
        "tool validates the chain against the lab root and must succeed on every target, or the run fails. "
        "tlsward: `tlsward scan -f LIST --connect 127.0.0.1 --ca-file CA --json --concurrency N"
        + (" --per-host N` (the names stand for N distinct endpoints: they share one address only because the "
           "lab is on loopback; one TLS handshake per target)." if r.per_host_option else
           "` (one TLS handshake per target).")
        + " sslyze: `sslyze --certinfo --certinfo_ca_file CA --targets_in LIST --json_out "
        "OUT` with `host:port{127.0.0.1}` lines (its CLI has no concurrency option: 10 servers at once). "
        "openssl: `openssl s_client -connect 127.0.0.1:PORT -servername NAME -CAfile CA -verify_hostname NAME "
        "</dev/null` per target. Wall-clock includes each tool's start-up (Python tools with their bytecode "
        "cached, as installed). Two things to read the numbers by: every target serves the same certificate "
        "chain, so per-chain work a tool caches (tlsward does) is paid once, where a fleet of distinct "
        "certificates costs more per target; and `openssl s_time` makes one connection at a time, so its rate is "
        "one client's handshake latency, not the lab's capacity, which concurrent clients can exceed.",
        "",
        *common.md_table(TABLE_HEADER, table_rows(r)),
        "",
        f"- tlsward concurrency sweep (median of {REPEATS} runs, {TARGETS:,} targets): {sweep}.",
        *([f"- With tlsward's default per-address gate (no `--per-host`; all {TARGETS:,} targets share 127.0.0.1) "
           f"at `--concurrency {r.best_concurrency}`: {statistics.median(x.rate for x in r.default_gate):.0f} "
           "targets/s."] if r.default_gate else []),
        f"- Peak RSS of the tlsward process: **{mib(r.rss_1k_kib)} at {TARGETS:,} targets, {mib(big.max_rss_kib)} "
        f"at {big.targets:,}** ({big.rate:.0f} targets/s): memory stays flat.",
        f"- sslyze: {r.sslyze_note}",
        *common.goal_lines(goals(r)),
        "",
        *(["Why the goals are not met (likely bottleneck):", "", *(f"- {line}" for line in bottleneck(r)), ""]
          if missed else ["Where the time goes: " + " ".join(bottleneck(r)), ""]),
        common.measured_on(r, r.tlsward_version, "scan", "rates"),
        "",
    ]
    return "\n".join(common.wrap(block) for block in blocks)


def print_table(r: Results) -> None:
    common.print_rows(("tool", "targets", "wall s", "throughput", "peak RSS", "tlsward/tool"), table_rows(r))
    assert r.big is not None
    print(f"peak RSS tlsward: {mib(r.rss_1k_kib)} at {TARGETS:,} targets, {mib(r.big.max_rss_kib)} at "
          f"{r.big.targets:,}")
    common.print_goals(goals(r))
    for line in bottleneck(r):
        print(f"  {line}")


# --- the run ----------------------------------------------------------------------------------------------


def names_for(domain: str, count: int) -> list[str]:
    return [f"host{i:04d}.{domain}" for i in range(1, count + 1)]


def write_list(path: Path, names: Sequence[str], port: int) -> Path:
    path.write_text("".join(f"{name}:{port}\n" for name in names))
    return path


def measure(work: Path, r: Results) -> None:
    sslyze, r.sslyze_version = common.ensure_sslyze()
    r.tlsward_version = common.tlsward_version()
    r.per_host_option = "--per-host" in common.quiet([common.tlsward_exe(), "scan", "--help"], timeout=60).stdout
    r.domain = case_named(CASE).sni.split(".", 1)[1]
    names = names_for(r.domain, TARGETS)
    big_names = names_for(r.domain, BIG_TARGETS)
    with Lab(work / "lab", (CASE,)) as lab:
        r.port = port = lab.ports[CASE]
        ca = lab.ca_file
        listfile = write_list(work / "targets-1k.txt", names, port)
        big_list = write_list(work / "targets-4k.txt", big_names, port)
        one = write_list(work / "targets-1.txt", names[:1], port)

        print(f"lab on {HOST}:{port} ({CASE}); warming up", flush=True)
        tlsward_scan(work, write_list(work / "warm.txt", names[:50], port), names[:50], ca, CONCURRENCY[0])
        singles = [tlsward_scan(work, one, names[:1], ca, 1) for _ in range(3)]
        r.startup_s = statistics.median(x.wall for x in singles)
        r.startup_cpu = statistics.median(x.cpu for x in singles)
        r.s_time_rates.append(s_time(port))
        print(f"openssl s_time: {r.s_time_rates[-1]:.0f} handshakes/s; tlsward start-up {r.startup_s:.2f} s",
              flush=True)

        for repeat in range(REPEATS):
            for concurrency in CONCURRENCY:
                run = tlsward_scan(work, listfile, names, ca, concurrency, r.gate(concurrency))
                r.sweep.append(run)
                print(f"tlsward run {repeat + 1}/{REPEATS} {r.flags(concurrency)}: {run.wall:.2f} s "
                      f"({run.rate:.0f} targets/s, cpu {run.cpu:.2f} s, rss {mib(run.max_rss_kib)})", flush=True)
                lab.alive()
        medians = {c: statistics.median(x.wall for x in r.sweep if x.concurrency == c) for c in CONCURRENCY}
        r.best_concurrency = min(medians, key=lambda c: medians[c])
        r.best_wall = medians[r.best_concurrency]
        best_runs = [x for x in r.sweep if x.concurrency == r.best_concurrency]
        r.best_cpu = statistics.median(x.cpu for x in best_runs)
        r.rss_1k_kib = max(x.max_rss_kib for x in best_runs)
        if r.per_host_option:   # the same, with tlsward's default per-address gate: all 1,000 share 127.0.0.1
            r.default_gate = [tlsward_scan(work, listfile, names, ca, r.best_concurrency) for _ in range(REPEATS)]
            print(f"tlsward --concurrency {r.best_concurrency} with the default --per-host: "
                  f"{statistics.median(x.rate for x in r.default_gate):.0f} targets/s", flush=True)

        r.big = tlsward_scan(work, big_list, big_names, ca, r.best_concurrency, r.gate(r.best_concurrency))
        print(f"tlsward {BIG_TARGETS:,} targets: {r.big.wall:.2f} s, rss {mib(r.big.max_rss_kib)}", flush=True)
        r.s_time_rates.append(s_time(port))

        r.openssl_sequential_rate = openssl_loop(names, port, ca, 1)
        r.openssl_parallel_rate = openssl_loop(names, port, ca, OPENSSL_PARALLEL)
        print(f"openssl s_client loop: {r.openssl_sequential_rate:.0f} targets/s sequential, "
              f"{r.openssl_parallel_rate:.0f} with {OPENSSL_PARALLEL} in parallel", flush=True)
        lab.alive()

        pilot = sslyze_scan(work, sslyze, names[:SSLYZE_PILOT], port, ca, timeout=SSLYZE_BUDGET)
        projected = pilot.wall * TARGETS / SSLYZE_PILOT
        if projected <= SSLYZE_BUDGET:
            count = TARGETS
            r.sslyze_note = (f"the whole list ({TARGETS:,} targets; a {SSLYZE_PILOT}-target pilot projected "
                             f"{projected:.0f} s, within the {SSLYZE_BUDGET:.0f} s budget).")
        else:
            affordable = int(SSLYZE_PILOT / pilot.wall * SSLYZE_BUDGET / 2) // 100 * 100
            count = max(SSLYZE_SUBSET_MIN, min(TARGETS, affordable))
            r.sslyze_note = (f"a subset: the first {count:,} of the {TARGETS:,} targets (a {SSLYZE_PILOT}-target pilot "
                             f"projected {projected:.0f} s for all of them, over the {SSLYZE_BUDGET:.0f} s budget); "
                             "throughputs (targets/s) are compared.")
        print(f"sslyze pilot: {SSLYZE_PILOT} targets in {pilot.wall:.2f} s; scanning {count:,}", flush=True)
        full = sslyze_scan(work, sslyze, names[:count], port, ca, timeout=max(2 * SSLYZE_BUDGET, 3 * projected))
        r.sslyze_targets, r.sslyze_wall, r.sslyze_max_rss_kib = count, full.wall, full.max_rss_kib
        print(f"sslyze: {count:,} targets in {full.wall:.2f} s ({r.sslyze_rate:.1f} targets/s)", flush=True)

        profile_tlsward(work, listfile, ca, r.best_concurrency, r.gate(r.best_concurrency), r)
        lab.alive()


def main() -> int:
    if shutil.which("openssl") is None:
        print("bench_scan: openssl is not installed (make system-deps)", file=sys.stderr)
        return 1
    r = Results()
    if not common.measure_in("scan", r, lambda work: measure(work, r)):
        return 1
    print()
    print_table(r)
    raw = {**asdict(r), "tlsward_rate": r.tlsward_rate, "tlsward_steady_rate": r.tlsward_steady_rate,
           "s_time_rate": r.s_time_rate, "sslyze_rate": r.sslyze_rate, "goals": common.goals_json(goals(r))}
    common.publish("scan", SECTION_TITLE, raw, markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
