"""Distributed probing end to end, on real Redis and real RabbitMQ, real PostgreSQL and real worker processes: the
lab's endpoints in two zones go from the scheduler (``tlsward monitor --distributed``) through each zone's queue
to that zone's workers and into the database, once per probe; each worker runs only its zone's probes; the probe
is the single-machine monitor's (same findings); alerts fire; ``tlsward workers`` and /metrics show the fleet; a
zone whose workers stop raises ``zone.down``."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.distributed_support import (
    ENV,
    TLSWARD,
    add_endpoints,
    duplicates,
    free_port,
    isolated_broker,
    observations,
    pg_database,
    query,
    start_scheduler,
    start_worker,
    wait_for,
    workers_status,
    write_config,
)
from tlsward.lab import LabState

# The broker tests share (and the outage test stops) the machine's Redis and RabbitMQ: one process runs them all.
pytestmark = [pytest.mark.integration, pytest.mark.brokers]

DEFAULT_ZONE_CASES = ("healthy-rsa", "expired", "expiring-20d", "closed", "name-mismatch")
EDGE_ZONE_CASES = ("healthy-ecdsa", "tls12-only")


def _metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    except httpx.HTTPError:
        return ""


def _firing(db: str) -> set[str]:
    return {key for (key,) in query(db, "SELECT key FROM alert WHERE status = 'firing'")}


@pytest.mark.parametrize("broker_kind", ["redis", "rabbitmq"])
def test_lab_probes_flow_from_the_scheduler_through_zone_workers_to_the_database(
        lab: LabState, tmp_path: Path, broker_kind: str) -> None:
    with pg_database() as db, pg_database() as single_db, isolated_broker(broker_kind) as broker:
        config = write_config(tmp_path / "monitor.toml", broker=broker, ca_files=[lab.ca_file], interval="2s")
        rows = [(lab.endpoint(name).target, "127.0.0.1", "default") for name in DEFAULT_ZONE_CASES] + \
               [(lab.endpoint(name).target, "127.0.0.1", "edge") for name in EDGE_ZONE_CASES]
        targets = add_endpoints(db, rows)
        zone_of = {target: zone for target, (_, _, zone) in zip(targets, rows, strict=True)}
        port = free_port()
        default = start_worker(tmp_path, "w-default", zone="default", config=config, db=db, concurrency=2)
        edge = start_worker(tmp_path, "w-edge", zone="edge", config=config, db=db, concurrency=1)
        scheduler = start_scheduler(tmp_path, "scheduler", config=config, db=db, listen=f"127.0.0.1:{port}")
        processes = (scheduler, default, edge)

        def explain() -> str:
            return "\n".join(process.tail() for process in processes)

        try:
            def twice_each() -> bool:
                seen = Counter(target for target, *_ in observations(db))
                return all(seen[target] >= 2 for target in targets)

            wait_for(twice_each, 90, "two observations of every endpoint", explain=explain)
            assert not duplicates(db)

            # The dashboards' view: alerts from what the workers wrote, evaluated by the scheduler.
            closed = lab.endpoint("closed").target
            wait_for(lambda: f"probe.failing:{closed}" in _firing(db), 30, "probe.failing for the closed port",
                     explain=explain)
            firing = _firing(db)
            assert any(key.startswith("cert.expiring:") for key in firing), firing
            assert f"name.mismatch:{lab.endpoint('name-mismatch').target}" in firing, firing

            # tlsward workers: both workers alive, both zones up, the scheduler holds the lease.
            listed = workers_status(db, "--json")
            assert listed.returncode == 0, listed.stderr
            status = json.loads(listed.stdout)
            assert {w["name"]: w["alive"] for w in status["workers"]} == {"w-default": True, "w-edge": True}
            assert {z["zone"]: z["up"] for z in status["zones"]} == {"default": True, "edge": True}
            assert status["scheduler"] is not None and status["zones"][0]["done"] > 0
            table = workers_status(db)
            assert "w-default" in table.stdout and "edge" in table.stdout, table.stdout

            # Prometheus: queue depth, lag, heartbeats.
            text = wait_for(lambda: (t := _metrics(port)) and 'tlsward_zone_up{zone="edge"} 1.0' in t and t,
                            30, "zone metrics", explain=explain)
            for needle in ('tlsward_zone_up{zone="default"} 1.0', 'tlsward_zone_queue_depth{zone="default"}',
                           'tlsward_zone_probe_lag_seconds{quantile="0.95",zone="default"}',
                           'tlsward_worker_up{worker="w-edge",zone="edge"} 1.0',
                           "tlsward_worker_heartbeat_timestamp_seconds", "tlsward_scheduler_lease_expiry"):
                assert needle in text, f"{needle} missing from /metrics:\n{text[-3000:]}"

            # A zone whose only worker stops: nothing is sent there any more, and it pages.
            assert edge.stop() == 0, edge.tail()
            wait_for(lambda: "zone.down:edge" in _firing(db), 30, "the zone.down alert of zone edge", explain=explain)
            wait_for(lambda: 'tlsward_zone_up{zone="edge"} 0.0' in _metrics(port), 15, "tlsward_zone_up 0 for edge")
            assert workers_status(db, "--check").returncode == 1

            assert scheduler.stop() == 0, scheduler.tail()
            assert "stopped:" in scheduler.text().splitlines()[-1], scheduler.tail()
            assert query(db, "SELECT count(*) FROM scheduler_lease") == [(0,)], "the lease was not released"
            assert default.stop() == 0, default.tail()
        finally:
            for process in processes:
                process.stop()

        # Each worker wrote exactly its zone's observations, and every probe once.
        written = Counter(zone_of[target] for target, *_ in observations(db))
        per_worker = dict(query(db, "SELECT name, probes FROM probe_worker"))
        assert per_worker == {"w-default": written["default"], "w-edge": written["edge"]}, (per_worker, written)
        assert all(stopped is not None for (stopped,) in query(db, "SELECT stopped_at FROM probe_worker"))
        assert not duplicates(db)

        # The same engine call as the single-machine monitor: same outcome and findings for every endpoint.
        add_endpoints(single_db, [(target, connect, "default") for target, connect, _ in rows])
        single = subprocess.run([str(TLSWARD), "monitor", "--once", "--config", str(config), "--db", single_db],
                                capture_output=True, text=True, timeout=120, env=ENV, check=False)
        assert single.returncode == 0, single.stderr[-2000:]
        newest = {target: (success, sorted(findings)) for target, _, success, findings, _ in observations(db)}
        alone = {target: (success, sorted(findings)) for target, _, success, findings, _ in observations(single_db)}
        assert alone == newest
