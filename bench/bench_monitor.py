"""The monitor at scale: sustained probe rate over 10,000 lab endpoints, peak RSS with 100,000 endpoints in the
inventory, and Prometheus' blackbox_exporter probing the same lab side by side.

The endpoints are distinct SNI names (``e0.wild.lab.tlsward.test:PORT`` ...) on the lab's ``wildcard`` case
(certificate ``*.wild.lab.tlsward.test``), imported with ``tlsward inventory import`` with ``connect`` =
127.0.0.1 into a fresh SQLite inventory; the monitor trusts the lab root (``[probes] ca_files``), so every
probe is a real handshake that validates, and a run with any failure is not published. The lab is one
separate process on the same machine (``common.Lab``).

* Rate: ``tlsward monitor --once --config CFG --db URL`` over 10,000 endpoints, a fresh process measured with
  wait4, 3 times (each on a fresh inventory; the median is reported). The rate is the probes over the time
  between its "monitoring" and "stopped" log lines (interpreter start-up, imports and config excluded; the
  inventory read, every probe and every write included); the whole-process rate is reported too. Each run
  must have written 10,000 observations, all successful. ``--sweep`` also runs ``[probes] concurrency`` 100
  and 400 (once each: how the default was chosen; listed in the report when given).
* Memory: 100,000 endpoints imported, then ``tlsward monitor`` in its normal continuous mode (interval 5m, so
  it works through the initial backlog) for 30 s, stopped with SIGTERM: its peak RSS (wait4's ru_maxrss), the
  probes it did (its final log line), and its own exit status (must be 0, every probe written).
* Peer: ``prometheus-blackbox-exporter`` (Debian package; ``make bench-deps``) on a free loopback port with a
  ``tcp`` prober module with ``tls: true``, the lab CA and server_name ``www.wild.lab.tlsward.test`` (blackbox
  sets SNI per module, not per request), driven with 10,000 ``GET /probe?module=tls_connect&target=
  127.0.0.1:PORT`` at the same concurrency from a plain asyncio HTTP/1.1 keep-alive client (0.1 ms of CPU a
  request), and with 2,000 through httpx for reference (several ms of CPU a request: with httpx the client,
  not the exporter, sets the pace on 2 cores); every answer must say ``probe_success 1``. Its rate is
  compared with the monitor's rate without start-up (the exporter is already running).

Results on stdout and in ``bench/results/monitor.json``; the section "Monitor: sustained probe rate and
memory" of BENCHMARKS.md is refreshed unless ``--no-publish`` is given. Reproduce: ``make bench BENCH=monitor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common
import httpx
from common import HOST, BenchError, Lab, Measured
from sqlalchemy import func
from sqlalchemy import select as sql_select

from tlsward.storage import open_store
from tlsward.storage.tables import Endpoint, Observation

NAME = "monitor"
TITLE = "## Monitor: sustained probe rate and memory"
CASE = "wildcard"
ENDPOINTS = 10_000
BIG_ENDPOINTS = 100_000
PER_HOST = 64                 # [probes] per_host: see write_config
CONCURRENCY = 200             # [probes] concurrency: the monitor's default; 100 and 400 were no faster (--sweep)
REPEATS = 3                   # --once runs at CONCURRENCY; the median is reported
SWEEP = (100, 400)            # --sweep: the other values tried, once each
RUN_SECONDS = 30.0            # the continuous run, before SIGTERM
DRAIN_TIMEOUT = 60.0          # SIGTERM -> exit: in-flight probes finish, results are written, receivers drain
ONCE_TIMEOUT = 300.0
GOAL_RATE = 500.0             # probes/s
GOAL_RSS_MB = 300.0
BLACKBOX = "prometheus-blackbox-exporter"
BLACKBOX_MODULE = "tls_connect"
BLACKBOX_TIMEOUT = 300.0      # one whole drive
HTTPX_PROBES = 2_000          # blackbox through httpx (reference: that client is the bottleneck)
BLACKBOX_SUCCESS = b"\nprobe_success 1\n"

# ``%(asctime)s %(levelname)s %(name)s: %(message)s``, as ``tlsward monitor`` logs.
LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO tlsward\.monitor: (.*)$", re.MULTILINE)
STOPPED = re.compile(r"stopped: (\d+) probes \((\d+) failed\), (\d+) written, (\d+) notifications")


@dataclass
class MonitorLog:
    """What a monitor run says about itself: when it started monitoring and stopped (epoch seconds, from the
    log's local timestamps) and its final counters."""

    started: float = 0.0
    stopped: float = 0.0
    probes: int = 0
    failed: int = 0
    written: int = 0
    notifications: int = 0

    @property
    def seconds(self) -> float:
        return self.stopped - self.started


@dataclass
class OnceRun:
    concurrency: int
    wall: float
    cpu: float
    max_rss_kib: int
    log: MonitorLog
    lab_cpu: float
    observations: int                 # successful, one per endpoint (checked in the inventory)

    @property
    def rate(self) -> float:
        """Probes per second between the "monitoring" and "stopped" lines (start-up excluded)."""
        return self.log.probes / self.log.seconds

    @property
    def process_rate(self) -> float:
        return self.log.probes / self.wall


@dataclass
class BlackboxRun:
    """Probes driven through blackbox_exporter by one HTTP client: CPU of the exporter, of the client (this
    process) and of the lab over the run."""

    client: str
    probes: int
    wall: float
    exporter_cpu: float
    client_cpu: float
    lab_cpu: float

    @property
    def rate(self) -> float:
        return self.probes / self.wall


@dataclass
class Results(common.RunInfo):
    port: int = 0
    domain: str = ""
    sni: str = ""                       # the lab's own name for the case: blackbox's server_name
    concurrency: int = CONCURRENCY
    once_runs: list[OnceRun] = field(default_factory=list)
    once: OnceRun | None = None                  # the median of once_runs (by rate)
    sweep: list[OnceRun] = field(default_factory=list)
    big_endpoints: int = 0
    big_import_s: float = 0.0
    big_wall: float = 0.0
    big_cpu: float = 0.0
    big_max_rss_kib: int = 0
    big_signalled_after: float = 0.0
    big_log: MonitorLog = field(default_factory=MonitorLog)
    blackbox_version: str = ""
    blackbox: BlackboxRun | None = None          # through the plain asyncio client: the comparison
    blackbox_httpx: BlackboxRun | None = None    # through httpx, for reference
    blackbox_max_rss_kib: int = 0


# --- helpers ----------------------------------------------------------------------------------------------


def write_csv(path: Path, count: int, domain: str, port: int) -> None:
    """``count`` endpoints ``e{i}.DOMAIN:PORT``, connected to through 127.0.0.1."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", "sni", "connect", "owner", "team", "environment", "tags", "probe_interval",
                         "enabled"])
        for i in range(count):
            writer.writerow([f"e{i}.{domain}:{port}", "", HOST, f"owner{i % 50}", f"team{i % 10}",
                             ("prod", "staging")[i % 2], "bench", "", "true"])


def write_config(path: Path, ca_file: Path, concurrency: int) -> None:
    """Every lab endpoint shares one address, where a fleet has thousands: ``per_host`` lifts the default cap
    of 4 connections to one address (kept for production: one load balancer, many names), so the benchmark
    measures the monitor, not that cap."""
    path.write_text(f'[probes]\nca_files = ["{ca_file}"]\nconcurrency = {concurrency}\nper_host = {PER_HOST}\n'
                    'batch_size = 500\ninterval = "5m"\njitter = 0.1\nrefresh = "30s"\n', encoding="utf-8")


def import_endpoints(work: Path, db: str, count: int, domain: str, port: int) -> float:
    """``tlsward inventory import`` of ``count`` endpoints into ``db``: its wall-clock (checked in the db)."""
    csv_path = work / f"endpoints-{count}.csv"
    write_csv(csv_path, count, domain, port)
    out = work / f"import-{count}.out"
    with out.open("wb") as handle:
        m = common.run_measured([common.tlsward_exe(), "inventory", "import", csv_path, "--db", db], timeout=300,
                                stdout=handle, stderr=handle, env=common.python_env(work))
    if m.returncode != 0:
        raise BenchError(f"inventory import failed (status {m.returncode}): {tail(out)}")
    with open_store(db) as store, store.engine.connect() as connection:
        stored = connection.scalar(sql_select(func.count()).select_from(Endpoint)) or 0
    if stored != count:
        raise BenchError(f"inventory import stored {stored:,} endpoints, not {count:,}")
    return m.wall


def tail(path: Path, lines: int = 3) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return " | ".join(text[-lines:]) or "(no output)"


def parse_log(path: Path) -> MonitorLog:
    """The "monitoring" and "stopped" lines of a monitor's stderr (BenchError when either is missing)."""
    parsed = MonitorLog()
    for match in LOG_LINE.finditer(path.read_text(errors="replace")):
        at = dt.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        message = match.group(2)
        if message.startswith("monitoring "):
            parsed.started = at
        elif stopped := STOPPED.match(message):
            parsed.stopped = at
            parsed.probes, parsed.failed, parsed.written, parsed.notifications = map(int, stopped.groups())
    if not parsed.started or not parsed.stopped:
        raise BenchError(f"no 'monitoring' and 'stopped' lines in the monitor's log: {tail(path)}")
    return parsed


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process (its peak RSS so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def lab_pid(lab: Lab) -> int:
    if lab.proc is None:
        raise BenchError("the lab is not running")
    return lab.proc.pid


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def run_then_terminate(cmd: list[str | Path], after: float, stderr: Path, work: Path) -> tuple[Measured, float]:
    """Run ``cmd`` in a process group of its own, send its process SIGTERM ``after`` seconds, and measure it
    (wait4) once it has exited by itself: (the measurement, seconds from start to SIGTERM). BenchError when it
    exits before the signal or does not exit within DRAIN_TIMEOUT of it (the group is then killed)."""
    start = time.perf_counter()
    with stderr.open("wb") as handle:
        proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                                env=common.python_env(work), start_new_session=True)
    pidfd = os.pidfd_open(proc.pid)
    reaped = False
    try:
        ready, _, _ = select.select([pidfd], [], [], after)
        if ready:
            _, status, _ = os.wait4(proc.pid, 0)
            reaped = True
            proc.returncode = os.waitstatus_to_exitcode(status)
            raise BenchError(f"the monitor exited before SIGTERM (status {proc.returncode}): {tail(stderr)}")
        os.kill(proc.pid, signal.SIGTERM)
        signalled = time.perf_counter() - start
        ready, _, _ = select.select([pidfd], [], [], DRAIN_TIMEOUT)
        if not ready:
            raise BenchError(f"the monitor did not exit within {DRAIN_TIMEOUT:.0f}s of SIGTERM: {tail(stderr)}")
        _, status, usage = os.wait4(proc.pid, 0)
        reaped = True
    finally:
        if not reaped:
            os.killpg(proc.pid, signal.SIGKILL)   # our own unreaped child's group: not recycled
            os.wait4(proc.pid, 0)
        os.close(pidfd)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, time.perf_counter() - start, usage.ru_utime + usage.ru_stime,
                    usage.ru_maxrss), signalled


# --- the three measurements -------------------------------------------------------------------------------


def once_run(work: Path, lab: Lab, r: Results, concurrency: int, label: str) -> OnceRun:
    """Import ENDPOINTS endpoints into a fresh inventory, run ``tlsward monitor --once`` over them and check
    what it wrote: one successful observation per endpoint."""
    db = f"sqlite:///{work / f'{label}.db'}"
    import_endpoints(work, db, ENDPOINTS, r.domain, r.port)
    config = work / f"{label}.toml"
    write_config(config, lab.ca_file, concurrency)
    log = work / f"{label}.log"
    lab_before = cpu_seconds(lab_pid(lab))
    with log.open("wb") as handle:
        m = common.run_measured([common.tlsward_exe(), "monitor", "--once", "--config", config, "--db", db],
                                timeout=ONCE_TIMEOUT, stderr=handle, env=common.python_env(work))
    lab_cpu = cpu_seconds(lab_pid(lab)) - lab_before
    lab.alive()
    if m.returncode != 0:
        raise BenchError(f"tlsward monitor --once failed (status {m.returncode}): {tail(log)}")
    parsed = parse_log(log)
    if parsed.probes != ENDPOINTS or parsed.failed or parsed.written != ENDPOINTS:
        raise BenchError(f"tlsward monitor --once at concurrency {concurrency}: {parsed.probes:,} probes, "
                         f"{parsed.failed:,} failed, {parsed.written:,} written (expected {ENDPOINTS:,}, 0, "
                         f"{ENDPOINTS:,}): {tail(log)}")
    with open_store(db) as store, store.engine.connect() as connection:
        row = connection.execute(sql_select(func.count(), func.count().filter(Observation.success),
                                            func.count(func.distinct(Observation.endpoint_id)))).one()
    observations, successes, endpoints = int(row[0]), int(row[1]), int(row[2])
    if (observations, successes, endpoints) != (ENDPOINTS,) * 3:
        raise BenchError(f"the inventory holds {observations:,} observations ({successes:,} successful, "
                         f"{endpoints:,} endpoints), not {ENDPOINTS:,} successful ones, one each")
    run = OnceRun(concurrency, m.wall, m.cpu, m.max_rss_kib, parsed, lab_cpu, observations)
    print(f"monitor --once, concurrency {concurrency}: {run.rate:,.0f} probes/s ({parsed.seconds:.1f} s), "
          f"{run.process_rate:,.0f} probes/s whole process ({m.wall:.1f} s), {m.max_rss_kib / 1024:.0f} MiB",
          flush=True)
    return run


def measure_rate(work: Path, lab: Lab, r: Results, sweep: bool) -> None:
    r.once_runs = [once_run(work, lab, r, CONCURRENCY, f"once-{CONCURRENCY}-{i}") for i in range(REPEATS)]
    r.once = sorted(r.once_runs, key=lambda run: run.rate)[len(r.once_runs) // 2]
    if sweep:
        r.sweep = [r.once, *(once_run(work, lab, r, n, f"once-{n}") for n in SWEEP)]


def measure_memory(work: Path, lab: Lab, r: Results) -> None:
    db = f"sqlite:///{work / 'big.db'}"
    r.big_import_s = import_endpoints(work, db, BIG_ENDPOINTS, r.domain, r.port)
    r.big_endpoints = BIG_ENDPOINTS
    config = work / "big.toml"
    write_config(config, lab.ca_file, CONCURRENCY)
    log = work / "big.log"
    m, r.big_signalled_after = run_then_terminate(
        [common.tlsward_exe(), "monitor", "--config", config, "--db", db], RUN_SECONDS, log, work)
    lab.alive()
    if m.returncode != 0:
        raise BenchError(f"tlsward monitor exited with status {m.returncode} after SIGTERM (expected 0): "
                         f"{tail(log)}")
    r.big_wall, r.big_cpu, r.big_max_rss_kib = m.wall, m.cpu, m.max_rss_kib
    r.big_log = parse_log(log)
    if not r.big_log.probes or r.big_log.failed or r.big_log.written != r.big_log.probes:
        raise BenchError(f"tlsward monitor over {BIG_ENDPOINTS:,} endpoints: {r.big_log.probes:,} probes, "
                         f"{r.big_log.failed:,} failed, {r.big_log.written:,} written: {tail(log)}")
    print(f"monitor, {BIG_ENDPOINTS:,} endpoints, SIGTERM after {r.big_signalled_after:.0f} s: "
          f"{r.big_log.probes:,} probes, peak RSS {r.big_max_rss_kib / 1024:.0f} MiB, exit {m.returncode}",
          flush=True)


def blackbox_exe() -> Path:
    found = shutil.which(BLACKBOX) or shutil.which("blackbox_exporter")
    if found is None:
        raise BenchError(f"{BLACKBOX} is not installed (Debian package {BLACKBOX}: `make bench-deps`)")
    return Path(found)


class Tally:
    """Answers from the exporter: how many, how many said ``probe_success 1``, the first few that did not."""

    def __init__(self) -> None:
        self.answers = 0
        self.successes = 0
        self.errors: list[str] = []

    def answer(self, status: int, body: bytes) -> None:
        self.answers += 1
        if status == 200 and BLACKBOX_SUCCESS in body:
            self.successes += 1
        else:
            self.error(f"HTTP {status}: {body[-300:]!r}")

    def error(self, text: str) -> None:
        if len(self.errors) < 3:
            self.errors.append(text)


async def drive_httpx(port: int, path: str, total: int, concurrency: int, tally: Tally) -> None:
    """``total`` GET ``path`` through an httpx AsyncClient, ``concurrency`` at a time."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    remaining = iter(range(total))
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            for _ in remaining:
                try:
                    response = await client.get(path)
                except httpx.HTTPError as exc:
                    tally.error(f"{type(exc).__name__}: {exc}")
                    continue
                tally.answer(response.status_code, response.content)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def drive_raw(port: int, path: str, total: int, concurrency: int, tally: Tally) -> None:
    """The same with ``concurrency`` plain HTTP/1.1 keep-alive connections on asyncio streams: a client that
    costs far less CPU per request than httpx, so that the exporter, not its client, sets the pace."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: tlsward-bench\r\n\r\n".encode()
    remaining = iter(range(total))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for _ in remaining:
                writer.write(request)
                head = (await reader.readuntil(b"\r\n\r\n")).lower()
                status = int(head.split(b" ", 2)[1])
                length = re.search(rb"\r\ncontent-length: *(\d+)", head)
                if length is not None:
                    body = await reader.readexactly(int(length.group(1)))
                elif b"\r\ntransfer-encoding: chunked" in head:
                    body = b""
                    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                        body += (await reader.readexactly(size + 2))[:-2]
                    await reader.readuntil(b"\r\n")
                else:
                    raise BenchError(f"blackbox_exporter answered without a length: {head[:300]!r}")
                tally.answer(status, body)
                if b"\r\nconnection: close" in head:
                    raise BenchError("blackbox_exporter closed a keep-alive connection")
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


Driver = Callable[[int, str, int, int, Tally], Awaitable[None]]


def drive(client: str, driver: Driver, exporter: subprocess.Popen[bytes], port: int, target: int, total: int,
          lab: Lab) -> BlackboxRun:
    """``total`` probes of the lab port ``target`` through the exporter on ``port`` with ``driver``, measured
    (every one must succeed), after a warm-up of 200 with the same client."""
    path = f"/probe?module={BLACKBOX_MODULE}&target={HOST}:{target}"
    try:
        asyncio.run(asyncio.wait_for(driver(port, path, 200, CONCURRENCY, Tally()), BLACKBOX_TIMEOUT))
        tally = Tally()
        exporter_before, lab_before = cpu_seconds(exporter.pid), cpu_seconds(lab_pid(lab))
        driver_before, start = time.process_time(), time.perf_counter()
        asyncio.run(asyncio.wait_for(driver(port, path, total, CONCURRENCY, tally), BLACKBOX_TIMEOUT))
    except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            httpx.HTTPError) as exc:
        raise BenchError(f"driving blackbox_exporter with {client} failed: {type(exc).__name__}: {exc}") from exc
    run = BlackboxRun(client, tally.successes, time.perf_counter() - start, cpu_seconds(exporter.pid) - exporter_before,
                      time.process_time() - driver_before, cpu_seconds(lab_pid(lab)) - lab_before)
    lab.alive()
    if exporter.poll() is not None:
        raise BenchError(f"blackbox_exporter exited (status {exporter.returncode})")
    if tally.successes != total:
        raise BenchError(f"blackbox_exporter through {client}: {tally.successes:,} of {total:,} probes succeeded "
                         f"({tally.answers:,} answers): {'; '.join(tally.errors)}")
    print(f"blackbox_exporter through {client}: {run.rate:,.0f} probes/s ({run.wall:.1f} s)", flush=True)
    return run


def measure_blackbox(work: Path, lab: Lab, r: Results) -> None:
    exe = blackbox_exe()
    version = common.quiet([exe, "--version"], timeout=30)
    found = re.search(r"version (\S+)", version.stdout + version.stderr)
    r.blackbox_version = found.group(1) if found else "?"
    config = work / "blackbox.yml"
    config.write_text(
        "modules:\n"
        f"  {BLACKBOX_MODULE}:\n"
        "    prober: tcp\n"
        "    timeout: 5s\n"
        "    tcp:\n"
        "      preferred_ip_protocol: ip4\n"
        "      tls: true\n"
        "      tls_config:\n"
        f"        ca_file: {lab.ca_file}\n"
        f"        server_name: {r.sni}\n", encoding="utf-8")
    port = free_port()
    log = work / "blackbox.log"
    with log.open("wb") as handle:
        exporter = subprocess.Popen([str(exe), f"--config.file={config}", f"--web.listen-address={HOST}:{port}",
                                     "--log.level=warn"], stdin=subprocess.DEVNULL, stdout=handle, stderr=handle)
    try:
        try:
            common.wait_listening(port)
        except BenchError as exc:
            raise BenchError(f"{exc}: blackbox_exporter: {tail(log)}") from None
        try:
            sample = httpx.get(f"http://{HOST}:{port}/probe", timeout=30.0,
                               params={"module": BLACKBOX_MODULE, "target": f"{HOST}:{r.port}"})
        except httpx.HTTPError as exc:
            raise BenchError(f"blackbox_exporter did not answer: {exc}") from exc
        if sample.status_code != 200 or BLACKBOX_SUCCESS not in sample.content:
            raise BenchError(f"blackbox_exporter's probe of {HOST}:{r.port} did not succeed: {sample.text[-800:]!r}")
        r.blackbox = drive("plain asyncio HTTP/1.1", drive_raw, exporter, port, r.port, ENDPOINTS, lab)
        r.blackbox_httpx = drive("httpx", drive_httpx, exporter, port, r.port, HTTPX_PROBES, lab)
        r.blackbox_max_rss_kib = peak_rss_kib(exporter.pid)
    finally:
        exporter.terminate()
        try:
            exporter.wait(10)
        except subprocess.TimeoutExpired:
            exporter.kill()
            exporter.wait(10)


def measure(work: Path, r: Results, sweep: bool) -> None:
    blackbox_exe()                       # fail before the long runs when the peer is missing
    with Lab(work / "lab", [CASE]) as lab:
        r.port = lab.ports[CASE]
        r.sni = lab.names[CASE]
        r.domain = r.sni.split(".", 1)[1]
        measure_rate(work, lab, r, sweep)
        measure_memory(work, lab, r)
        measure_blackbox(work, lab, r)


# --- the report -------------------------------------------------------------------------------------------


def mb(kib: int) -> float:
    return kib * 1024 / 1e6


def per_1k(cpu: float, probes: int) -> str:
    return f"{1000 * cpu / probes:.2f}" if probes else "-"


def goals(r: Results) -> list[common.Goal]:
    """The issue's goals. The ratio to blackbox_exporter is asked for, not given a threshold: the table has it."""
    assert r.once is not None
    return [
        (f"sustained probe rate over {ENDPOINTS:,} lab endpoints >= {GOAL_RATE:.0f} probes/s (lab on the same "
         "machine)", r.once.rate >= GOAL_RATE,
         f"{r.once.rate:,.0f} probes/s without start-up, {r.once.process_rate:,.0f} with it"),
        (f"peak RSS with {BIG_ENDPOINTS:,} endpoints in the inventory <= {GOAL_RSS_MB:.0f} MB",
         mb(r.big_max_rss_kib) <= GOAL_RSS_MB,
         f"{mb(r.big_max_rss_kib):.0f} MB = {r.big_max_rss_kib / 1024:.0f} MiB"),
    ]


HEADER = ["run", "endpoints", "probes", "wall s", "probes/s", "CPU ms per probe", "peak RSS", "tlsward / peer"]


def rows(r: Results) -> list[list[str]]:
    assert r.once is not None
    once = r.once
    table = [
        [f"**tlsward** `monitor --once`, concurrency {once.concurrency}, \"monitoring\" to \"stopped\" (median "
         f"of {len(r.once_runs)})",
         f"{ENDPOINTS:,}", f"{once.log.probes:,}", f"{once.log.seconds:.1f}", f"**{once.rate:,.0f}**", "-", "-",
         "1.00"],
        ["tlsward, the same run, whole process (start-up included)", f"{ENDPOINTS:,}", f"{once.log.probes:,}",
         f"{once.wall:.1f}", f"{once.process_rate:,.0f}", per_1k(once.cpu, once.log.probes),
         f"{once.max_rss_kib / 1024:.0f} MiB", "-"],
        [f"tlsward `monitor` (continuous), SIGTERM after {r.big_signalled_after:.0f} s, whole process",
         f"{r.big_endpoints:,}", f"{r.big_log.probes:,}", f"{r.big_wall:.1f}", f"{r.big_log.probes / r.big_wall:,.0f}",
         per_1k(r.big_cpu, r.big_log.probes), f"**{mb(r.big_max_rss_kib):.0f} MB** ({r.big_max_rss_kib / 1024:.0f} "
         "MiB)", "-"],
    ]
    for run in (r.blackbox, r.blackbox_httpx):
        if run is not None:
            table.append([f"blackbox_exporter {r.blackbox_version} `tcp` + TLS, {CONCURRENCY} `GET /probe` at once "
                          f"({run.client} client)", f"1 (`{HOST}:{r.port}`)", f"{run.probes:,}", f"{run.wall:.1f}",
                          f"{run.rate:,.0f}", f"{per_1k(run.exporter_cpu, run.probes)} + "
                          f"{per_1k(run.client_cpu, run.probes)} client", f"{r.blackbox_max_rss_kib / 1024:.0f} MiB",
                          f"**{once.rate / run.rate:.2f}x**"])
    return table


def markdown(r: Results) -> str:
    assert r.once is not None and r.blackbox is not None
    once, blackbox = r.once, r.blackbox
    notes = [
        f"- CPU: the monitor process was busy {100 * once.cpu / once.wall:.0f}% of a core over its whole --once "
        f"run ({per_1k(once.cpu, once.log.probes)} ms per probe, start-up included), blackbox_exporter "
        f"{100 * blackbox.exporter_cpu / blackbox.wall:.0f}% ({per_1k(blackbox.exporter_cpu, blackbox.probes)} ms "
        f"per probe, Go using both cores). The lab spent {per_1k(once.lab_cpu, once.log.probes)} ms per handshake "
        f"with tlsward ({100 * once.lab_cpu / once.log.seconds:.0f}% of a core), "
        f"{per_1k(blackbox.lab_cpu, blackbox.probes)} ms with blackbox_exporter "
        f"({100 * blackbox.lab_cpu / blackbox.wall:.0f}% of a core).",
        f"- Concurrency: every lab endpoint connects to {HOST}; the monitor caps connections to one address "
        f"(`[probes] per_host`, 4 by default, for the load balancer in front of many names), so the benchmark "
        f"sets per_host = {PER_HOST}: a fleet of {ENDPOINTS:,} endpoints spreads over many addresses.",
        f"- Each --once run wrote {ENDPOINTS:,} observations, all successful, one per endpoint; the {REPEATS} runs: "
        f"{', '.join(f'{run.rate:,.0f}' for run in r.once_runs)} probes/s (the median is in the table).",
        f"- The {BIG_ENDPOINTS:,}-endpoint run (imported in {r.big_import_s:.1f} s) did {r.big_log.probes:,} probes "
        f"({r.big_log.failed} failed, {r.big_log.written:,} written) and exited 0 "
        f"{r.big_wall - r.big_signalled_after:.1f} s after SIGTERM; its {RUN_SECONDS:.0f} s include start-up and "
        f"the first read of the {BIG_ENDPOINTS:,} endpoints.",
    ]
    if r.blackbox_httpx is not None:
        httpx_run = r.blackbox_httpx
        notes.append(
            "- The HTTP client matters for blackbox_exporter: httpx spent "
            f"{per_1k(httpx_run.client_cpu, httpx_run.probes)} ms of CPU per request ({httpx_run.rate:,.0f} "
            f"probes/s over {httpx_run.probes:,}), a plain asyncio HTTP/1.1 client "
            f"{per_1k(blackbox.client_cpu, blackbox.probes)} ms; the comparison uses the plain client, so that the "
            "exporter, not its client, sets the pace.")
    if r.sweep:
        notes.append("- `[probes] concurrency` sweep (`--sweep`, one run each, start-up excluded): " + ", ".join(
            f"{run.concurrency}: {run.rate:,.0f} probes/s" for run in r.sweep) + ".")
    blocks = [
        f"{TITLE} (`bench/bench_monitor.py`)", "",
        f"`tlsward monitor` over distinct SNI names (`e0.{r.domain}` ...) on the lab's `{CASE}` case (certificate "
        f"`*.{r.domain}`, one port, `connect` = {HOST}), imported with `tlsward inventory import` into a fresh "
        f"SQLite inventory; `[probes] concurrency = {CONCURRENCY}` and the lab root in `ca_files`, so every "
        "probe is a real handshake that validates (a run with any failure is not published). The rate is "
        "measured between the monitor's \"monitoring\" and \"stopped\" log lines (interpreter start-up "
        "excluded; reading the inventory, every probe and every batched write included); memory is the peak "
        f"RSS (wait4) of a continuous monitor (interval 5m) over {BIG_ENDPOINTS:,} endpoints, stopped with "
        f"SIGTERM after {RUN_SECONDS:.0f} s. Peer: blackbox_exporter (Debian `{BLACKBOX}`), one `tcp` module "
        f"with `tls: true`, the lab CA and `server_name: {r.sni}` (it sets SNI per module, not per request), "
        f"asked {ENDPOINTS:,} times for `GET /probe?module={BLACKBOX_MODULE}&target={HOST}:{r.port}`, "
        f"{CONCURRENCY} at a time over keep-alive connections, by a client in the benchmark process; every "
        "answer had to say `probe_success 1`. Its rate is compared with the monitor's without start-up (the "
        "exporter was already running). What differs: blackbox_exporter does a TCP connect and a TLS handshake "
        "with Go's chain and name verification on every probe, returns metrics and keeps nothing; tlsward's "
        "probe also extracts the certificate facts, judges the chain against Mozilla's and the system's stores "
        "as well as the CA file (once per served chain per 60 s, then only the name per endpoint: here every "
        "endpoint serves the same chain), applies the findings rules, writes every observation to the "
        "inventory (batches of 500) and evaluates alerts. All of it shares the machine's 2 cores with the lab "
        "(blackbox_exporter also with its HTTP client).", "",
        *common.md_table(HEADER, rows(r)), "",
        *notes, "",
        *common.goal_lines(goals(r)), "",
        common.measured_on(r, common.tlsward_version(), NAME, "rates"), "",
    ]
    return "\n".join(common.wrap(block) for block in blocks)


def main(argv: list[str]) -> int:
    r = Results()
    if not common.measure_in(NAME, r, lambda work: measure(work, r, "--sweep" in argv)):
        return 1
    print()
    common.print_rows(HEADER, rows(r))
    for run in r.sweep:
        print(f"sweep: concurrency {run.concurrency}: {run.rate:,.0f} probes/s ({run.process_rate:,.0f} whole "
              "process)")
    common.print_goals(goals(r))
    if "--no-publish" in argv:
        return 0
    common.publish(NAME, TITLE, {**asdict(r), "goals": common.goals_json(goals(r))}, markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
