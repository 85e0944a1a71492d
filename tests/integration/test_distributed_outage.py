"""The broker stops for 30 s while the workers are saturated (tasks waiting in the queue): the scheduler and the
workers stay up, log the outage, reconnect by themselves, and no probe is lost: every probe the scheduler sent is
recorded, once. Redis runs without persistence here (as in CI), so the tasks waiting in it die with it: the
scheduler sends those again; RabbitMQ keeps its durable queue across the stop."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.distributed_support import (
    REDIS_HOST,
    REDIS_PORT,
    DelayProxy,
    add_endpoints,
    answers,
    duplicates,
    ensure_rabbitmq,
    ensure_redis,
    execute,
    isolated_broker,
    observations,
    pg_database,
    query,
    redis_up,
    start_scheduler,
    start_worker,
    wait_for,
    write_config,
)
from tlsward.lab import LabState

# The broker tests share (and the outage test stops) the machine's Redis and RabbitMQ: one process runs them all.
pytestmark = [pytest.mark.integration, pytest.mark.brokers]

ENDPOINTS = 6
OUTAGE_S = 30.0
SENT = re.compile(r"sent to zone default: (.*)$", re.MULTILINE)


def _stop_broker(kind: str) -> None:
    if kind == "redis":
        subprocess.run(["redis-cli", "-h", REDIS_HOST, "-p", str(REDIS_PORT), "shutdown", "nosave"],
                       capture_output=True, timeout=30, check=False)
        wait_for(lambda: not redis_up(), 30, "Redis to stop")
    else:
        subprocess.run(["rabbitmqctl", "stop_app"], capture_output=True, timeout=120, check=True)
        wait_for(lambda: not answers("127.0.0.1", 5672), 60, "RabbitMQ to stop")


def _zone_state(db: str) -> tuple[int, int, int, int, int]:
    rows = query(db, "SELECT pending, outstanding, queue_depth, resent, abandoned FROM probe_zone "
                     "WHERE zone = 'default'")
    return rows[0] if rows else (-1, -1, -1, -1, -1)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("broker_kind", ["redis", "rabbitmq"])
def test_the_system_recovers_from_a_30s_broker_outage_without_losing_a_probe(lab: LabState, tmp_path: Path,
                                                                           broker_kind: str) -> None:
    wildcard = lab.endpoint("wildcard")
    domain = wildcard.sni.split(".", 1)[1]
    ensure = ensure_redis if broker_kind == "redis" else ensure_rabbitmq
    with DelayProxy(("127.0.0.1", wildcard.port), 1.0) as proxy, pg_database() as db, \
            isolated_broker(broker_kind) as broker:
        # 6 endpoints every 2 s, probes of 1 s, one worker process: demand is 3 probes/s, the worker drains 1/s, so
        # tasks wait in the queue (the scheduler holds the rest) when the broker goes.
        config = write_config(tmp_path / "monitor.toml", broker=broker, ca_files=[lab.ca_file], interval="2s",
                              batch_size=1, resend_after="15s", visibility_timeout="30s", worker_stale_after="8s")
        add_endpoints(db, [(f"o{i}.{domain}:{proxy.port}", "127.0.0.1", "default") for i in range(ENDPOINTS)])
        worker = start_worker(tmp_path, "w1", zone="default", config=config, db=db, concurrency=1)
        scheduler = start_scheduler(tmp_path, "scheduler", config=config, db=db, extra=["--log-level", "debug"])
        processes = (scheduler, worker)

        def explain() -> str:
            return "\n".join(process.tail(30) for process in processes) + f"\nzone: {_zone_state(db)}"

        try:
            wait_for(lambda: len(observations(db)) >= ENDPOINTS and _zone_state(db)[2] >= 1, 60,
                     "a saturated queue", explain=explain)
            try:
                _stop_broker(broker_kind)
                stopped_at = time.monotonic()
                time.sleep(OUTAGE_S)
                assert scheduler.popen.poll() is None and worker.popen.poll() is None, explain()
                assert "unavailable" in scheduler.text(), explain()
            finally:
                ensure()
            print(f"broker down for {time.monotonic() - stopped_at:.0f} s")
            before = len(observations(db))
            wait_for(lambda: "broker back" in scheduler.text(), 60, "the scheduler to notice the broker is back",
                     explain=explain)
            wait_for(lambda: len(observations(db)) >= before + 2 * ENDPOINTS, 90, "probes after the outage",
                     explain=explain)

            # No new probes from now on; everything sent must get written.
            execute(db, "UPDATE endpoint SET enabled = false")
            wait_for(lambda: _zone_state(db)[:2] == (0, 0), 120, "the scheduler to see every probe written",
                     explain=explain)
            sent = {probe_id for line in SENT.findall(scheduler.text()) for probe_id in line.split()}
            written = {probe_id for _, probe_id, *_ in observations(db)}
            assert sent and sent <= written, f"sent and never written: {sorted(sent - written)}"
            assert not duplicates(db)
            *_, resent, abandoned = _zone_state(db)
            assert abandoned == 0, explain()
            if broker_kind == "redis":
                assert resent > 0, "Redis lost its queue: the scheduler should have sent those probes again"
            assert scheduler.stop() == 0, scheduler.tail()
            assert worker.stop() == 0, worker.tail()
        finally:
            for process in processes:
                process.stop()
            ensure()
