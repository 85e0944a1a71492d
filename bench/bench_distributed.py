"""Distributed probing: probes per second with 1 and 2 worker processes over 10,000 lab endpoints, the queue's cost
per probe next to the single-machine monitor, and a capacity model for 1,000,000 endpoints every 5 minutes.

The endpoints are distinct SNI names (``d0.wild.lab.tlsward.test:PORT`` ...) on the lab's ``wildcard`` case,
imported with ``connect`` = 127.0.0.1 into a fresh PostgreSQL database (the machine's, 127.0.0.1:5432) for every
run; the probes trust the lab root, so each is a real handshake that validates (a run with any failure is not
published). The lab is one separate process (``common.Lab``). ``[probes] per_host = 64`` as in bench_monitor.

* Single machine (the baseline): ``tlsward monitor --once`` over the 10,000 endpoints, PostgreSQL: the rate between
  its "monitoring" and "stopped" log lines, and the CPU of its process (wait4, start-up included).
* Distributed, Redis broker (``redis://127.0.0.1:6379/13``, flushed first): ``tlsward worker --concurrency N``
  (N = 1 and 2 pool processes, started and ready beforehand), then ``tlsward monitor --distributed --once``: the
  rate between its "monitoring" and "stopped" lines (it stops once it has seen every probe written), and the CPU
  of everything distribution involves: the scheduler process (wait4), the worker's main and pool processes and
  the Redis server over the run (from /proc). Every run must have written 10,000 successful observations, one
  per endpoint, and sent none again.
* Queue overhead per probe: (CPU per probe of scheduler + worker + broker) / (CPU per probe of the single-machine
  monitor) - 1, with 1 worker process (the same single core of probing as the baseline). Goal: <= 15 %.
* Capacity model: from the measured CPU per probe of each part, what 1,000,000 endpoints at a 5-minute interval
  (3,333 probes/s) need: worker cores, the scheduler's share of its one core, broker and database load.

``--rabbitmq`` also runs the 2-process measurement on RabbitMQ (``amqp://guest:guest@127.0.0.1:5672//``, a fresh
vhost). ``--from-results`` re-renders the report from the last run's raw numbers. Results on stdout and in
``bench/results/distributed.json``; the section "Distributed probing" of
BENCHMARKS.md is refreshed unless ``--no-publish`` is given. Reproduce: ``make bench BENCH=distributed``.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import common
import psycopg
from bench_monitor import cpu_seconds, lab_pid, parse_log, tail, write_csv
from common import HOST, BenchError, Lab

NAME = "distributed"
TITLE = "## Distributed probing: worker processes, queue overhead, capacity"
CASE = "wildcard"
ENDPOINTS = 10_000
PER_HOST = 64
CONCURRENCY = 200                    # the single-machine monitor's probes in flight
BATCH = 100                          # probes per task (distributed.batch_size) in this benchmark
REPEATS = 3
PROCESSES = (1, 2)
PG_ADMIN = os.environ.get("TLSWARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = "redis://127.0.0.1:6379/13"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
GOAL_OVERHEAD = 0.15
TARGET_ENDPOINTS = 1_000_000
TARGET_INTERVAL_S = 300.0
RUN_TIMEOUT = 600.0
DISTRIBUTED = re.compile(r"distributed: (\d+) probes sent, (\d+) seen written, (\d+) sent again, (\d+) abandoned")


@dataclass
class Run:
    """One --once run over ENDPOINTS endpoints: single-machine (processes 0) or distributed."""

    processes: int
    broker: str
    seconds: float                   # "monitoring" -> "stopped"
    wall: float                      # the monitor/scheduler process
    monitor_cpu: float               # the monitor (single) or the scheduler (distributed), wait4
    worker_cpu: float = 0.0          # worker main + pool processes over the run
    broker_cpu: float = 0.0          # redis-server / beam.smp over the run
    lab_cpu: float = 0.0
    resent: int = 0

    @property
    def rate(self) -> float:
        return ENDPOINTS / self.seconds

    @property
    def cpu(self) -> float:
        return self.monitor_cpu + self.worker_cpu + self.broker_cpu

    def ms(self, cpu: float) -> float:
        return 1000 * cpu / ENDPOINTS


@dataclass
class Results(common.RunInfo):
    port: int = 0
    domain: str = ""
    batch: int = BATCH
    single_startup_cpu: float = 0.0          # `monitor --once` over an empty inventory: start-up and exit
    scheduler_startup_cpu: float = 0.0       # `monitor --distributed --once` over an empty inventory
    single: list[Run] = field(default_factory=list)
    distributed: dict[str, list[Run]] = field(default_factory=dict)      # "redis-1", "redis-2", "rabbitmq-2"


def median(runs: list[Run]) -> Run:
    """The runs' medians, field by field (time, each part's CPU): what the table and the goal report."""
    first = runs[0]
    return Run(first.processes, first.broker, statistics.median(run.seconds for run in runs),
               statistics.median(run.wall for run in runs), statistics.median(run.monitor_cpu for run in runs),
               statistics.median(run.worker_cpu for run in runs), statistics.median(run.broker_cpu for run in runs),
               statistics.median(run.lab_cpu for run in runs), max(run.resent for run in runs))


# --- helpers ----------------------------------------------------------------------------------------------


def fresh_db(label: str) -> str:
    name = f"tlsward_bench_{label}_{uuid.uuid4().hex[:6]}".replace("-", "_")
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_db(url: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def check_written(db: str) -> None:
    with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute("SELECT count(*), count(*) FILTER (WHERE success), count(DISTINCT endpoint_id), "
                           "count(DISTINCT probe_id) FROM observation").fetchone()
    if row != (ENDPOINTS,) * 4:
        raise BenchError(f"the database holds {row} (observations, successful, endpoints, probe ids), not "
                         f"{ENDPOINTS:,} of each")


def write_config(path: Path, ca_file: Path, broker: str) -> None:
    path.write_text(f'[probes]\nca_files = ["{ca_file}"]\nconcurrency = {CONCURRENCY}\nper_host = {PER_HOST}\n'
                    'batch_size = 500\ninterval = "1h"\njitter = 0.0\ndeep_interval = "off"\n'
                    f'[distributed]\nbroker = "{broker}"\nbatch_size = {BATCH}\nheartbeat = "1s"\n', encoding="utf-8")


def import_endpoints(work: Path, db: str, r: Results, label: str) -> None:
    csv_path = work / "endpoints.csv"
    if not csv_path.exists():
        write_csv(csv_path, ENDPOINTS, r.domain, r.port)
    out = work / f"import-{label}.out"
    with out.open("wb") as handle:
        m = common.run_measured([common.tlsward_exe(), "inventory", "import", csv_path, "--db", db], timeout=300,
                                stdout=handle, stderr=handle, env=common.python_env(work))
    if m.returncode != 0:
        raise BenchError(f"inventory import failed: {tail(out)}")


def broker_pid(kind: str) -> int:
    name = "redis-server" if kind == "redis" else "beam.smp"
    found = subprocess.run(["pgrep", "-o", "-x", name], capture_output=True, text=True, check=False).stdout.split()
    if not found:
        raise BenchError(f"{name} is not running (the machine's broker is required)")
    return int(found[0])


def tree_cpu(pid: int) -> float:
    """CPU of a process and its children (the worker's pool), from /proc."""
    total = cpu_seconds(pid)
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True,
                                check=False).stdout.split():
        try:
            total += cpu_seconds(int(child))
        except OSError:
            continue
    return total


def run_single(work: Path, lab: Lab, r: Results, index: int) -> Run:
    db = fresh_db(f"single{index}")
    try:
        import_endpoints(work, db, r, f"single-{index}")
        config = work / "single.toml"
        write_config(config, lab.ca_file, REDIS_URL)
        log = work / f"single-{index}.log"
        lab_before = cpu_seconds(lab_pid(lab))
        with log.open("wb") as handle:
            m = common.run_measured([common.tlsward_exe(), "monitor", "--once", "--config", config, "--db", db],
                                    timeout=RUN_TIMEOUT, stderr=handle, env=common.python_env(work))
        lab_cpu = cpu_seconds(lab_pid(lab)) - lab_before
        if m.returncode != 0:
            raise BenchError(f"tlsward monitor --once failed: {tail(log)}")
        parsed = parse_log(log)
        if parsed.probes != ENDPOINTS or parsed.failed:
            raise BenchError(f"monitor --once: {parsed.probes} probes, {parsed.failed} failed: {tail(log)}")
        check_written(db)
    finally:
        drop_db(db)
    run = Run(0, "-", parsed.seconds, m.wall, m.cpu, lab_cpu=lab_cpu)
    print(f"single machine: {run.rate:,.0f} probes/s, {run.ms(run.cpu):.3f} ms CPU per probe", flush=True)
    return run


def flush_broker(kind: str) -> str:
    if kind == "redis":
        subprocess.run(["redis-cli", "-n", REDIS_URL.rsplit("/", 1)[1], "flushdb"], capture_output=True, check=True)
        return REDIS_URL
    vhost = f"tlsward-bench-{uuid.uuid4().hex[:6]}"
    common.quiet(["rabbitmqctl", "add_vhost", vhost], timeout=120)
    common.quiet(["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"], timeout=120)
    return AMQP_URL + vhost


def run_distributed(work: Path, lab: Lab, r: Results, kind: str, processes: int, index: int) -> Run:
    label = f"{kind}-{processes}-{index}"
    db = fresh_db(label.replace("-", "_"))
    broker = flush_broker(kind)
    worker: subprocess.Popen[bytes] | None = None
    try:
        import_endpoints(work, db, r, label)
        config = work / f"{label}.toml"
        write_config(config, lab.ca_file, broker)
        worker = start_worker(work, config, db, processes, work / f"worker-{label}.log")
        log = work / f"scheduler-{label}.log"
        lab_before, worker_before = cpu_seconds(lab_pid(lab)), tree_cpu(worker.pid)
        broker_before = cpu_seconds(broker_pid(kind))
        with log.open("wb") as handle:
            m = common.run_measured([common.tlsward_exe(), "monitor", "--distributed", "--once", "--config", config,
                                     "--db", db], timeout=RUN_TIMEOUT, stderr=handle, env=common.python_env(work))
        worker_cpu = tree_cpu(worker.pid) - worker_before
        broker_cpu = cpu_seconds(broker_pid(kind)) - broker_before
        lab_cpu = cpu_seconds(lab_pid(lab)) - lab_before
        if m.returncode != 0:
            raise BenchError(f"monitor --distributed --once failed: {tail(log)}")
        parsed = parse_log(log)
        found = DISTRIBUTED.search(log.read_text(errors="replace"))
        if found is None:
            raise BenchError(f"no 'distributed:' line in the scheduler's log: {tail(log)}")
        sent, written, resent, abandoned = map(int, found.groups())
        if (sent, written, abandoned) != (ENDPOINTS, ENDPOINTS, 0):
            raise BenchError(f"distributed run {label}: {sent} sent, {written} written, {abandoned} abandoned")
        check_written(db)
    finally:
        if worker is not None:
            stop_worker(worker)
        drop_db(db)
        if kind == "rabbitmq":
            subprocess.run(["rabbitmqctl", "delete_vhost", broker.rsplit("/", 1)[1]], capture_output=True,
                           timeout=120, check=False)
    run = Run(processes, kind, parsed.seconds, m.wall, m.cpu, worker_cpu, broker_cpu, lab_cpu, resent)
    print(f"distributed ({kind}, {processes} worker processes): {run.rate:,.0f} probes/s, CPU per probe "
          f"{run.ms(run.cpu):.3f} ms (scheduler {run.ms(run.monitor_cpu):.3f}, worker {run.ms(worker_cpu):.3f}, "
          f"broker {run.ms(broker_cpu):.3f})", flush=True)
    return run


def wait_ready(db: str, worker: subprocess.Popen[bytes], log: Path, processes: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise BenchError(f"the worker exited: {tail(log)}")
        with psycopg.connect(db.replace("postgresql+psycopg://", "postgresql://")) as conn:
            try:
                beat = conn.execute("SELECT count(*) FROM probe_worker WHERE last_seen > started_at").fetchone()
            except psycopg.errors.UndefinedTable:
                beat = (0,)
        children = subprocess.run(["pgrep", "-P", str(worker.pid)], capture_output=True, text=True,
                                  check=False).stdout.split()
        if beat and beat[0] and len(children) >= processes:
            return
        time.sleep(0.2)
    raise BenchError(f"the worker did not report ready within 120 s: {tail(log)}")


def startup_cpu(work: Path, lab: Lab, distributed: bool) -> float:
    """CPU of a --once run over an inventory of one endpoint (``monitor --once`` never ends on an empty one): what
    start-up and exit cost, median of 3."""
    from tlsward.model.inventory import EndpointRecord
    from tlsward.storage import open_store

    costs = []
    worker = None
    for index in range(3):
        db = fresh_db(f"empty{index}")
        try:
            with open_store(db) as store:
                name = f"one.{lab.names[CASE].split('.', 1)[1]}"
                store.import_endpoints([EndpointRecord(target=f"{name}:{lab.ports[CASE]}", host=name,
                                                       port=lab.ports[CASE], connect=HOST)])
            config = work / "empty.toml"
            write_config(config, lab.ca_file, flush_broker("redis"))
            if distributed:
                worker = start_worker(work, config, db, 1, work / "worker-startup.log")
            command = [common.tlsward_exe(), "monitor", *(["--distributed"] if distributed else []), "--once",
                       "--config", config, "--db", db]
            m = common.run_measured(command, timeout=120, env=common.python_env(work))
            if m.returncode != 0:
                raise BenchError(f"{' '.join(map(str, command))} failed with status {m.returncode}")
            costs.append(m.cpu)
        finally:
            if worker is not None:
                stop_worker(worker)
                worker = None
            drop_db(db)
    return statistics.median(costs)


def start_worker(work: Path, config: Path, db: str, processes: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as handle:
        worker = subprocess.Popen([sys.executable, "-m", "tlsward.cli.worker", "worker", "--zone", "default",
                                   "--concurrency", str(processes), "--config", config, "--db", db, "--log-level",
                                   "warning"], stdin=subprocess.DEVNULL, stdout=handle, stderr=handle,
                                  env=common.python_env(work), start_new_session=True)
    wait_ready(db, worker, log, processes)
    return worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(30)


def measure(work: Path, r: Results, rabbitmq: bool) -> None:
    with Lab(work / "lab", [CASE]) as lab:
        r.port = lab.ports[CASE]
        r.domain = lab.names[CASE].split(".", 1)[1]
        r.single_startup_cpu = startup_cpu(work, lab, distributed=False)
        r.scheduler_startup_cpu = startup_cpu(work, lab, distributed=True)
        print(f"start-up and exit: monitor {r.single_startup_cpu:.2f} s CPU, scheduler {r.scheduler_startup_cpu:.2f} "
              "s CPU", flush=True)
        for index in range(REPEATS):
            r.single.append(run_single(work, lab, r, index))
            for processes in PROCESSES:
                r.distributed.setdefault(f"redis-{processes}", []).append(
                    run_distributed(work, lab, r, "redis", processes, index))
        if rabbitmq:
            r.distributed["rabbitmq-2"] = [run_distributed(work, lab, r, "rabbitmq", 2, 0)]
        lab.alive()


# --- the report -------------------------------------------------------------------------------------------


def steady_cpu(r: Results, run: Run) -> float:
    """The run's CPU without the monitor's or scheduler's start-up and exit (measured on an empty inventory)."""
    return run.cpu - (r.single_startup_cpu if run.processes == 0 else r.scheduler_startup_cpu)


def overhead(r: Results) -> float:
    return steady_cpu(r, median(r.distributed["redis-1"])) / steady_cpu(r, median(r.single)) - 1


@dataclass
class Capacity:
    probes_per_s: float
    worker_ms: float
    scheduler_ms: float
    broker_ms: float
    worker_cores: float
    scheduler_core_share: float
    broker_cores: float
    tasks_per_s: float
    rows_per_day: float


def capacity(r: Results) -> Capacity:
    runs = r.distributed["redis-2"] + r.distributed["redis-1"]
    worker_ms = statistics.median(run.ms(run.worker_cpu) for run in runs)
    scheduler_ms = statistics.median(run.ms(run.monitor_cpu - r.scheduler_startup_cpu) for run in runs)
    broker_ms = statistics.median(run.ms(run.broker_cpu) for run in runs)
    rate = TARGET_ENDPOINTS / TARGET_INTERVAL_S
    return Capacity(rate, worker_ms, scheduler_ms, broker_ms, rate * worker_ms / 1000, rate * scheduler_ms / 1000,
                    rate * broker_ms / 1000, rate / BATCH, rate * 86400)


def machines(cores: float) -> str:
    count = max(1, math.ceil(cores / (8 * 0.7)))
    return f"{count} machine{'s' if count > 1 else ''}"


def load_results() -> Results:
    """The last run's raw numbers (bench/results/distributed.json), to re-render the report."""
    raw = json.loads((common.RESULTS_DIR / f"{NAME}.json").read_text(encoding="utf-8"))
    names = {f.name for f in fields(Results)} - {"single", "distributed"}
    r = Results(**{name: raw[name] for name in names if name in raw})
    r.single = [Run(**run) for run in raw["single"]]
    r.distributed = {key: [Run(**run) for run in runs] for key, runs in raw["distributed"].items()}
    return r


def goals(r: Results) -> list[common.Goal]:
    value = overhead(r)
    return [(f"queue overhead per probe against the single-machine engine <= {GOAL_OVERHEAD:.0%} (CPU per probe of "
             "scheduler + 1 worker process + broker vs the monitor)", value <= GOAL_OVERHEAD, f"{value:+.1%}")]


HEADER = ["run", "probes", "s", "probes/s", "CPU ms per probe, whole processes (sched + workers + broker)",
          "CPU ms per probe, start-up excluded", "lab CPU ms per probe", "vs single machine (start-up excluded)"]


def rows(r: Results) -> list[list[str]]:
    single = median(r.single)
    table = [[f"**single machine** `monitor --once`, concurrency {CONCURRENCY} (median of {len(r.single)})",
              f"{ENDPOINTS:,}", f"{single.seconds:.1f}", f"**{single.rate:,.0f}**", f"{single.ms(single.cpu):.3f}",
              f"{single.ms(steady_cpu(r, single)):.3f}", f"{single.ms(single.lab_cpu):.3f}", "1.00"]]
    for runs in r.distributed.values():
        run = median(runs)
        plural = "es" if run.processes > 1 else ""
        table.append([f"**distributed**, {run.broker}, {run.processes} worker process{plural}, batches of {BATCH} "
                      f"(median of {len(runs)})", f"{ENDPOINTS:,}", f"{run.seconds:.1f}", f"**{run.rate:,.0f}**",
                      f"{run.ms(run.cpu):.3f} ({run.ms(run.monitor_cpu):.3f} + {run.ms(run.worker_cpu):.3f} + "
                      f"{run.ms(run.broker_cpu):.3f})", f"{run.ms(steady_cpu(r, run)):.3f}",
                      f"{run.ms(run.lab_cpu):.3f}", f"{run.rate / single.rate:.2f}x rate, "
                      f"{steady_cpu(r, run) / steady_cpu(r, single):.2f}x CPU"])
    return table


def markdown(r: Results) -> str:
    c = capacity(r)
    one, two = median(r.distributed["redis-1"]), median(r.distributed["redis-2"])
    notes = [
        f"- Every run wrote {ENDPOINTS:,} successful observations, one per endpoint and probe id; "
        f"{max((run.resent for runs in r.distributed.values() for run in runs), default=0)} probes were sent twice "
        "(resent after `resend_after`). Runs: single " + ", ".join(f"{run.rate:,.0f}" for run in r.single) +
        "; 1 process " +
        ", ".join(f"{run.rate:,.0f}" for run in r.distributed["redis-1"]) + "; 2 processes " +
        ", ".join(f"{run.rate:,.0f}" for run in r.distributed["redis-2"]) + " probes/s.",
        f"- 1 to 2 worker processes: {two.rate / one.rate:.2f}x the rate. The machine has 2 cores for the lab, the "
        "scheduler, Redis, PostgreSQL and the workers: the second process competes with the lab (which spent "
        f"{two.ms(two.lab_cpu):.2f} ms of CPU per handshake), so this is a floor for what a second machine adds.",
        f"- Queue overhead: {overhead(r):+.1%} CPU per probe (scheduler, worker main and pool, Redis) with 1 worker "
        "process, against the single-machine monitor doing the same probes and writes. What it pays for: JSON "
        f"messages of {BATCH} probe orders, the broker round trips, the worker's write per batch (a transaction of "
        f"{BATCH} observations where the monitor writes 500), the scheduler's look for written probes every second.",
    ]
    model = [
        f"Capacity model for {TARGET_ENDPOINTS:,} endpoints every {TARGET_INTERVAL_S / 60:.0f} minutes: "
        f"**{c.probes_per_s:,.0f} probes/s**. From the CPU per probe measured above (median over the distributed "
        f"runs) and the lab's fast, loopback handshakes (real endpoints add network waits, not CPU: they need more "
        "probes in flight, i.e. larger batches or more processes, not more cores):",
        f"- Workers: {c.worker_ms:.3f} ms of CPU per probe -> **{c.worker_cores:.1f} cores** busy: "
        f"{machines(c.worker_cores)} of 8 cores at most 70% busy (`tlsward worker --concurrency 8` on each), or "
        "more, smaller workers spread over the zones as the endpoints are.",
        f"- Scheduler: {c.scheduler_ms:.3f} ms of CPU per probe -> **{c.scheduler_core_share:.0%} of its one core** "
        "(one asyncio process, one active; a standby costs nothing). Its memory is the monitor's: 253 MB at "
        "100,000 endpoints (bench_monitor), so about 2.5 GB at 1,000,000.",
        f"- Broker: {c.tasks_per_s:,.0f} tasks/s of {BATCH} probes (a few KB each) -> Redis at {c.broker_ms:.3f} ms "
        f"of CPU per probe, **{c.broker_cores:.2f} core**; RabbitMQ with durable queues and publisher confirms "
        "costs more per message, still well under one core at this message rate.",
        f"- PostgreSQL: {c.probes_per_s:,.0f} observation rows/s in transactions of {BATCH} "
        f"({c.probes_per_s / BATCH:,.0f} commits/s), {c.rows_per_day / 1e6:,.0f} million rows a day: raw retention "
        "must be short at this scale (`[retention] raw_days = 2`, then hourly and daily roll-ups), about "
        "200 bytes a row with its indexes, so ~60 GB of raw history a day before roll-up.",
    ]
    blocks = [
        f"{TITLE} (`bench/bench_distributed.py`)", "",
        f"{ENDPOINTS:,} distinct SNI names on the lab's `{CASE}` case (`connect` = {HOST}, `[probes] per_host = "
        f"{PER_HOST}`), a fresh PostgreSQL database for every run, every probe a validated handshake. Single "
        "machine: `tlsward monitor --once`. Distributed: `tlsward worker --concurrency N` (ready beforehand) and "
        f"`tlsward monitor --distributed --once` (batches of {BATCH}, Redis without persistence), which stops once "
        "it has seen every probe written. Rates are between the monitor's \"monitoring\" and \"stopped\" log lines; "
        "CPU is the monitor's or scheduler's process (start-up included), the worker's main and pool processes "
        "and the Redis server over the run.", "",
        *common.md_table(HEADER, rows(r)), "",
        *notes, "",
        *model, "",
        *common.goal_lines(goals(r)), "",
        common.measured_on(r, common.tlsward_version(), NAME, "rates"), "",
    ]
    return "\n".join(common.wrap(block) for block in blocks)


def main(argv: list[str]) -> int:
    global ENDPOINTS, REPEATS
    if "--quick" in argv:                # a smoke run: not published
        ENDPOINTS, REPEATS = 2_000, 1
        argv = [*argv, "--no-publish"]
    if "--from-results" in argv:         # re-render the report from the last run's raw numbers
        r = load_results()
    else:
        r = Results()
        if not common.measure_in(NAME, r, lambda work: measure(work, r, "--rabbitmq" in argv)):
            return 1
    print()
    common.print_rows(HEADER, rows(r))
    common.print_goals(goals(r))
    c = capacity(r)
    print(f"capacity for {TARGET_ENDPOINTS:,} endpoints / {TARGET_INTERVAL_S:.0f} s: {c.worker_cores:.1f} worker "
          f"cores, scheduler {c.scheduler_core_share:.0%} of a core, broker {c.broker_cores:.2f} core")
    if "--no-publish" in argv:
        return 0
    raw = {**asdict(r), "overhead": overhead(r), "capacity": asdict(capacity(r)), "goals": common.goals_json(goals(r))}
    common.publish(NAME, TITLE, raw, markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
