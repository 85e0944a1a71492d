"""At-least-once delivery, recorded exactly once: SIGKILL a worker in the middle of its probes (the endpoints hold
every connection for seconds, through a delaying proxy) and the broker redelivers them (RabbitMQ at once, Redis
after the visibility timeout) to another worker, which records each probe once. Killing only the pool processes
gets their tasks requeued by the worker itself (reject_on_worker_lost)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.integration.distributed_support import (
    DelayProxy,
    add_endpoints,
    duplicates,
    isolated_broker,
    observations,
    pg_database,
    query,
    start_scheduler,
    start_worker,
    wait_for,
    write_config,
)
from tlsward.lab import LabState

# The broker tests share (and the outage test stops) the machine's Redis and RabbitMQ: one process runs them all.
pytestmark = [pytest.mark.integration, pytest.mark.brokers]

ENDPOINTS = 3
DELAY_S = 4.0


def _children(pid: int) -> list[int]:
    done = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(line) for line in done.stdout.split()]


@pytest.mark.parametrize(("broker_kind", "kill"), [("redis", "worker"), ("rabbitmq", "worker"), ("redis", "pool")])
def test_a_worker_killed_mid_probe_has_its_probes_redelivered_and_recorded_once(
        lab: LabState, tmp_path: Path, broker_kind: str, kill: str) -> None:
    wildcard = lab.endpoint("wildcard")
    domain = wildcard.sni.split(".", 1)[1]
    with DelayProxy(("127.0.0.1", wildcard.port), DELAY_S) as proxy, pg_database() as db, \
            isolated_broker(broker_kind) as broker:
        # One probe per endpoint (1h interval), one probe per task; the broker, not the scheduler, must redeliver.
        config = write_config(tmp_path / "monitor.toml", broker=broker, ca_files=[lab.ca_file], interval="1h",
                              batch_size=1, visibility_timeout="8s", resend_after="600s")
        targets = add_endpoints(db, [(f"k{i}.{domain}:{proxy.port}", "127.0.0.1", "default")
                                     for i in range(ENDPOINTS)])
        first = start_worker(tmp_path, "w-first", zone="default", config=config, db=db, concurrency=2)
        scheduler = start_scheduler(tmp_path, "scheduler", config=config, db=db)
        processes = [scheduler, first]

        def explain() -> str:
            return "\n".join(process.tail(30) for process in processes) + f"\nproxy: {proxy.accepted} accepted"

        try:
            wait_for(lambda: proxy.accepted >= 2, 60, "the first worker to be in the middle of two probes",
                     every=0.05, explain=explain)
            assert proxy.relayed == 0 and not observations(db), "the probes finished before the kill"
            if kill == "worker":
                first.kill()                         # the main process and its pool: nothing acknowledged
                survivor = start_worker(tmp_path, "w-second", zone="default", config=config, db=db, concurrency=2)
                processes.append(survivor)
            else:
                children = _children(first.pid)
                assert len(children) == 2, children
                for pid in children:
                    subprocess.run(["kill", f"-{int(signal.SIGKILL)}", str(pid)], check=True)
                survivor = first
            wait_for(lambda: len(observations(db)) >= ENDPOINTS, 60, "every probe recorded", explain=explain)
            assert sorted(target for target, *_ in observations(db)) == sorted(targets)
            assert all(success for _, _, success, _, _ in observations(db)), observations(db)
            assert not duplicates(db)
            assert proxy.accepted >= ENDPOINTS + 2          # the two killed probes did run again
            assert scheduler.stop() == 0, scheduler.tail()
            resent = query(db, "SELECT resent, abandoned FROM probe_zone WHERE zone = 'default'")
            assert resent == [(0, 0)], f"the scheduler had to resend: the broker did not redeliver ({resent})"
            assert survivor.stop() == 0, survivor.tail()
            written = dict(query(db, "SELECT name, probes FROM probe_worker"))
            if kill == "worker":
                assert written == {"w-first": 0, "w-second": ENDPOINTS}, written
            else:
                assert written == {"w-first": ENDPOINTS}, written
                assert "WorkerLostError" in survivor.text() or "exited with" in survivor.text(), survivor.tail()
        finally:
            for process in processes:
                process.stop()
