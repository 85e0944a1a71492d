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
import datetime as dt
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from tlsward.lab.catalogue import case_named
from tlsward.lab.server import find_free_plan

HOST = "127.0.0.1"            # the only address this benchmark ever talks to
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
LAB_START_TIMEOUT = 60.0
CLIENT_TIMEOUT = 10.0         # one openssl s_client

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_DIR = ROOT / "bench" / "results"
PEERS_VENV = ROOT / "bench" / ".venv-peers"
SECTION_TITLE = "## Quick scan of 1,000 loopback endpoints"
WRAP = 110                    # BENCHMARKS.md prose width

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


class BenchError(Exception):
    """The benchmark cannot produce honest numbers (a tool failed, timed out, or is missing)."""


@dataclass
class Measured:
    """One process, measured on itself (``wait4``): wall-clock, CPU (user+sys) and peak RSS."""

    returncode: int
    wall: float
    cpu: float
    max_rss_kib: int


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
class Results:
    date: str = ""
    machine: str = ""
    load_before: float = 0.0
    load_after: float = 0.0
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


# --- processes --------------------------------------------------------------------------------------------


def python_env(work: Path) -> dict[str, str]:
    """The environment of the Python tools measured (tlsward, sslyze): bytecode is cached, as in a normal
    install, but in the work directory (an editable tlsward would otherwise compile its sources at every start
    where PYTHONDONTWRITEBYTECODE is set; and nothing is written under src/)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def run_measured(cmd: Sequence[str | Path], timeout: float, stdout: IO[bytes] | int = subprocess.DEVNULL,
                 stderr: IO[bytes] | int = subprocess.DEVNULL, env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` and measure that process alone; killed (and BenchError raised) after ``timeout`` seconds."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env)
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        timed_out = not ready
        if timed_out:
            proc.kill()   # still our unreaped child: the pid cannot have been recycled
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        os.close(pidfd)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if timed_out:
        raise BenchError(f"{Path(str(cmd[0])).name} did not finish within {timeout:.0f}s: {' '.join(map(str, cmd))}")
    return Measured(proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def quiet(cmd: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def tlsward_exe() -> Path:
    beside = Path(sys.executable).parent / "tlsward"
    if beside.exists():
        return beside
    found = shutil.which("tlsward")
    if found is None:
        raise BenchError("the tlsward command is not installed (run `make install`)")
    return Path(found)


# --- the lab ----------------------------------------------------------------------------------------------


class Lab:
    """``python -m tlsward.lab`` as a separate process on free loopback ports; always stopped on exit."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        plan, sockets = find_free_plan(HOST)
        for sock in sockets.values():
            sock.close()
        self.port = plan.ports[CASE]
        self.base = plan.base
        self.log_path = state_dir.parent / "lab.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca-bundle.pem"

    def __enter__(self) -> Lab:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tlsward.lab", "--state-dir", str(self.state_dir), "--host", HOST,
                 "--base-port", str(self.base)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while not (self.state_dir / "lab.json").exists():
            if self.proc.poll() is not None:
                raise BenchError(f"the lab exited with status {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the lab did not publish lab.json within {LAB_START_TIMEOUT:.0f}s")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"the lab died (status {self.proc.returncode}): {self.log_tail()}")

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(empty log)"


# --- tlsward ----------------------------------------------------------------------------------------------


def tlsward_cmd(listfile: Path, ca: Path, concurrency: int, per_host: int | None) -> list[str | Path]:
    cmd: list[str | Path] = [tlsward_exe(), "scan", "-f", listfile, "--connect", HOST, "--ca-file", ca, "--json",
                             "--concurrency", str(concurrency)]
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
        m = run_measured(tlsward_cmd(listfile, ca, concurrency, per_host), timeout=60 + len(names) / 10,
                         stdout=stdout, stderr=stderr, env=python_env(work))
    check_tlsward_output(out, names, m.returncode)
    out.unlink()
    return TlswardRun(len(names), concurrency, m.wall, m.cpu, m.max_rss_kib, per_host)


def profile_tlsward(work: Path, listfile: Path, ca: Path, concurrency: int, per_host: int | None,
                    results: Results) -> None:
    """One py-spy run (not timed): where tlsward's CPU goes, in buckets and top self-time frames."""
    spy = Path(sys.executable).parent / "py-spy"
    if not spy.exists():
        found = shutil.which("py-spy")
        if found is None:
            results.profile_note = "py-spy not installed: no profile (`.venv/bin/pip install py-spy`)"
            return
        spy = Path(found)
    raw = work / "profile.txt"
    cmd: list[str | Path] = [spy, "record", "--format", "raw", "--rate", "200", "--output", raw, "--",
                             sys.executable, *tlsward_cmd(listfile, ca, concurrency, per_host)]
    with (work / "py-spy.stderr").open("wb") as stderr:
        m = run_measured(cmd, timeout=300, stderr=stderr, env=python_env(work))
    if m.returncode != 0 or not raw.exists():
        results.profile_note = f"py-spy failed (status {m.returncode}); see its stderr"
        return
    buckets: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        bucket = next((name for name, pattern in PROFILE_BUCKETS if any(pattern.search(f) for f in frames)),
                      "event loop, sockets, engine, other")
        buckets[bucket] += samples
        own[re.sub(r"^.*/site-packages/|^.*/src/", "", frames[-1])] += samples
    if not total:
        results.profile_note = "py-spy recorded no samples"
        return
    results.profile = {name: round(100 * n / total, 1) for name, n in buckets.most_common()}
    results.profile_top = [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(12)]
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, RESULTS_DIR / "scan-profile.txt")
    results.profile_note = (f"py-spy, {total} samples at 200 Hz over one scan of {TARGETS:,} targets; raw stacks "
                            "in bench/results/scan-profile.txt")


# --- openssl ----------------------------------------------------------------------------------------------


def s_time(port: int) -> float:
    """Handshakes per second reached by ``openssl s_time -new`` against 127.0.0.1:port."""
    out = quiet(["openssl", "s_time", "-connect", f"{HOST}:{port}", "-new", "-time", str(S_TIME_SECONDS)],
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


def ensure_sslyze() -> tuple[Path, str]:
    """The latest sslyze from PyPI in bench/.venv-peers (created with the system python3 if missing)."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        system_python = shutil.which("python3") or "/usr/bin/python3"
        print(f"creating {PEERS_VENV.relative_to(ROOT)} with {system_python}", flush=True)
        made = quiet([system_python, "-m", "venv", PEERS_VENV], timeout=180)
        if made.returncode != 0:
            raise BenchError(f"cannot create {PEERS_VENV}: {made.stderr.strip()[-500:]}")
    upgrade = quiet([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "sslyze"],
                    timeout=600)
    sslyze = PEERS_VENV / "bin" / "sslyze"
    if upgrade.returncode != 0:
        if not sslyze.exists():
            raise BenchError(f"cannot install sslyze: {upgrade.stderr.strip()[-500:]}")
        print("warning: could not upgrade sslyze; using the installed one", flush=True)
    version = quiet([python, "-c", "import importlib.metadata as m; print(m.version('sslyze'))"], timeout=60)
    return sslyze, version.stdout.strip()


def sslyze_scan(work: Path, sslyze: Path, names: Sequence[str], port: int, ca: Path, timeout: float) -> Measured:
    listfile = work / f"sslyze-{len(names)}.txt"
    listfile.write_text("".join(f"{name}:{port}{{{HOST}}}\n" for name in names))
    out = work / f"sslyze-{len(names)}.json"
    cmd: list[str | Path] = [sslyze, "--quiet", "--certinfo", "--certinfo_ca_file", ca, "--targets_in", listfile,
                             "--json_out", out]
    with (work / "sslyze.stderr").open("ab") as stderr:
        m = run_measured(cmd, timeout=timeout, stderr=stderr, env=python_env(work))
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


def machine() -> str:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        if line.startswith("model name"):
            cpu = " ".join(line.split(":", 1)[1].split())
            break
    distro = platform.platform(terse=True)
    os_release = Path("/etc/os-release")
    if os_release.exists():
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', os_release.read_text(), re.MULTILINE)
        distro = match.group(1) if match else distro
    memory_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:")), 0)
    openssl = quiet(["openssl", "version"], timeout=30).stdout.split(" (")[0].strip()
    return (f"{os.cpu_count()} cores ({cpu or platform.machine()}), {memory_kib / 2**20:.0f} GiB, {distro}, "
            f"{openssl}, Python {platform.python_version()}")


def mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def goals(r: Results) -> list[tuple[str, bool, str]]:
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


def wrap(block: str) -> str:
    """Wrap one paragraph or ``- `` bullet to the width of BENCHMARKS.md (tables and blanks untouched)."""
    if not block or block.startswith("|") or block.startswith("#"):
        return block
    bullet = block.startswith("- ")
    return textwrap.fill(block.removeprefix("- ") if bullet else block, WRAP, initial_indent="- " if bullet else "",
                         subsequent_indent="  " if bullet else "", break_long_words=False, break_on_hyphens=False)


def markdown(r: Results) -> str:
    header = ("| tool | targets | wall s | throughput | peak RSS | tlsward / tool |", "|---|---|---|---|---|---|")
    rows = [f"| {' | '.join(row)} |" for row in table_rows(r)]
    sweep = ", ".join(
        f"{c}: {statistics.median(x.rate for x in r.sweep if x.concurrency == c):.0f} targets/s"
        for c in CONCURRENCY)
    big = r.big
    assert big is not None
    goal_lines = [f"- {text}: **{'met' if ok else 'NOT met'}** ({value})" for text, ok, value in goals(r)]
    missed = not all(ok for _, ok, _ in goals(r))
    load = (f" The machine was shared during the run (load average {r.load_before:.1f} before, "
            f"{r.load_after:.1f} after): absolute rates are noisy, the ratios come from the same run."
            if max(r.load_before, r.load_after) >= 0.5 else "")
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
        *header,
        *rows,
        "",
        f"- tlsward concurrency sweep (median of {REPEATS} runs, {TARGETS:,} targets): {sweep}.",
        *([f"- With tlsward's default per-address gate (no `--per-host`; all {TARGETS:,} targets share 127.0.0.1) "
           f"at `--concurrency {r.best_concurrency}`: {statistics.median(x.rate for x in r.default_gate):.0f} "
           "targets/s."] if r.default_gate else []),
        f"- Peak RSS of the tlsward process: **{mib(r.rss_1k_kib)} at {TARGETS:,} targets, {mib(big.max_rss_kib)} "
        f"at {big.targets:,}** ({big.rate:.0f} targets/s): memory stays flat.",
        f"- sslyze: {r.sslyze_note}",
        *goal_lines,
        "",
        *(["Why the goals are not met (likely bottleneck):", "", *(f"- {line}" for line in bottleneck(r)), ""]
          if missed else ["Where the time goes: " + " ".join(bottleneck(r)), ""]),
        f"Measured {r.date} on {r.machine}; tlsward {r.tlsward_version}.{load} Reproduce: `make bench` "
        "(only this benchmark: `make bench BENCH=scan`); raw numbers in `bench/results/scan.json`.",
        "",
    ]
    return "\n".join(wrap(block) for block in blocks)


def refresh_section(text: str) -> None:
    """Replace this benchmark's section of BENCHMARKS.md (or append it)."""
    doc = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(SECTION_TITLE)), None)
    if start is None:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        doc = "".join(lines[:start]) + text + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    BENCHMARKS_MD.write_text(doc, encoding="utf-8")


def print_table(r: Results) -> None:
    rows = [("tool", "targets", "wall s", "throughput", "peak RSS", "tlsward/tool"), *table_rows(r)]
    rows = [tuple(cell.replace("**", "").replace("`", "") for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    assert r.big is not None
    print(f"peak RSS tlsward: {mib(r.rss_1k_kib)} at {TARGETS:,} targets, {mib(r.big.max_rss_kib)} at "
          f"{r.big.targets:,}")
    for text, ok, value in goals(r):
        print(f"goal {text}: {'met' if ok else 'NOT met'} ({value})")
    for line in bottleneck(r):
        print(f"  {line}")


# --- the run ----------------------------------------------------------------------------------------------


def names_for(domain: str, count: int) -> list[str]:
    return [f"host{i:04d}.{domain}" for i in range(1, count + 1)]


def write_list(path: Path, names: Sequence[str], port: int) -> Path:
    path.write_text("".join(f"{name}:{port}\n" for name in names))
    return path


def measure(work: Path, r: Results) -> None:
    sslyze, r.sslyze_version = ensure_sslyze()
    r.tlsward_version = quiet([tlsward_exe(), "--version"], timeout=60).stdout.strip().removeprefix("tlsward ")
    r.per_host_option = "--per-host" in quiet([tlsward_exe(), "scan", "--help"], timeout=60).stdout
    r.domain = case_named(CASE).sni.split(".", 1)[1]
    names = names_for(r.domain, TARGETS)
    big_names = names_for(r.domain, BIG_TARGETS)
    with Lab(work / "lab") as lab:
        r.port = lab.port
        ca = lab.ca_file
        listfile = write_list(work / "targets-1k.txt", names, lab.port)
        big_list = write_list(work / "targets-4k.txt", big_names, lab.port)
        one = write_list(work / "targets-1.txt", names[:1], lab.port)

        print(f"lab on {HOST}:{lab.port} ({CASE}); warming up", flush=True)
        tlsward_scan(work, write_list(work / "warm.txt", names[:50], lab.port), names[:50], ca, CONCURRENCY[0])
        singles = [tlsward_scan(work, one, names[:1], ca, 1) for _ in range(3)]
        r.startup_s = statistics.median(x.wall for x in singles)
        r.startup_cpu = statistics.median(x.cpu for x in singles)
        r.s_time_rates.append(s_time(lab.port))
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
        r.s_time_rates.append(s_time(lab.port))

        r.openssl_sequential_rate = openssl_loop(names, lab.port, ca, 1)
        r.openssl_parallel_rate = openssl_loop(names, lab.port, ca, OPENSSL_PARALLEL)
        print(f"openssl s_client loop: {r.openssl_sequential_rate:.0f} targets/s sequential, "
              f"{r.openssl_parallel_rate:.0f} with {OPENSSL_PARALLEL} in parallel", flush=True)
        lab.alive()

        pilot = sslyze_scan(work, sslyze, names[:SSLYZE_PILOT], lab.port, ca, timeout=SSLYZE_BUDGET)
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
        full = sslyze_scan(work, sslyze, names[:count], lab.port, ca, timeout=max(2 * SSLYZE_BUDGET, 3 * projected))
        r.sslyze_targets, r.sslyze_wall, r.sslyze_max_rss_kib = count, full.wall, full.max_rss_kib
        print(f"sslyze: {count:,} targets in {full.wall:.2f} s ({r.sslyze_rate:.1f} targets/s)", flush=True)

        profile_tlsward(work, listfile, ca, r.best_concurrency, r.gate(r.best_concurrency), r)
        lab.alive()


def main() -> int:
    if shutil.which("openssl") is None:
        print("bench_scan: openssl is not installed (make system-deps)", file=sys.stderr)
        return 1
    r = Results(date=dt.date.today().isoformat(), machine=machine(), load_before=os.getloadavg()[0])
    try:
        with tempfile.TemporaryDirectory(prefix="tlsward-bench-scan-") as tmp:
            measure(Path(tmp), r)
        r.load_after = os.getloadavg()[0]
    except BenchError as exc:
        print(f"bench_scan: FAILED: {exc}", file=sys.stderr)
        return 1
    print()
    print_table(r)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = {**asdict(r), "tlsward_rate": r.tlsward_rate, "tlsward_steady_rate": r.tlsward_steady_rate,
           "s_time_rate": r.s_time_rate, "sslyze_rate": r.sslyze_rate,
           "goals": [{"goal": text, "met": ok, "value": value} for text, ok, value in goals(r)]}
    (RESULTS_DIR / "scan.json").write_text(json.dumps(raw, indent=2) + "\n")
    refresh_section(markdown(r))
    print(f"\nwrote the section {SECTION_TITLE[3:]!r} of {BENCHMARKS_MD.name} and bench/results/scan.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
