"""``tlsward workers`` and the distributed metrics, over an SQLite inventory with heartbeats, zone states and a
lease as the scheduler and workers write them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from typer.testing import CliRunner

from tlsward.cli.worker import app
from tlsward.distributed.metrics import METRICS, DistributedCollector
from tlsward.model.distributed import WorkerRecord, ZoneState
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import open_store
from tlsward.storage.workers import DistributedStore


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'inventory.db'}"
    now = dt.datetime.now(dt.UTC)
    with open_store(url) as store:
        store.import_endpoints([EndpointRecord(target="a.test:443", host="a.test", port=443, zone="default"),
                                EndpointRecord(target="b.test:443", host="b.test", port=443, zone="dmz")])
        data = DistributedStore(store)
        data.heartbeat(WorkerRecord(name="w-default", zone="default", hostname="h1", pid=11, concurrency=4,
                                    started_at=now, last_seen=now))
        data.count_probes("w-default", 120, 3)
        data.heartbeat(WorkerRecord(name="w-dmz", zone="dmz", hostname="h2", pid=12, concurrency=2,
                                    started_at=now, last_seen=now - dt.timedelta(minutes=5)))
        data.save_zone_states([ZoneState(zone="default", endpoints=1, workers=1, slots=4, queue_depth=3, pending=2,
                                         outstanding=5, oldest_due_s=12.5, lag_p50_s=0.4, lag_p95_s=2.5, enqueued=130,
                                         done=120, resent=1, updated_at=now),
                               ZoneState(zone="dmz", endpoints=1, pending=1, oldest_due_s=300, down_since=now,
                                         updated_at=now)])
        data.acquire_lease("scheduler", "sched-host:42:abcd", 15)
    return url


def _scrape(db: str) -> str:
    with open_store(db) as store:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(DistributedCollector(lambda: store))
        return generate_latest(registry).decode()


def test_metrics_show_queues_lag_heartbeats_and_down_zones(db: str) -> None:
    text = _scrape(db)
    for line in ('tlsward_distributed_up 1.0', 'tlsward_zone_up{zone="default"} 1.0', 'tlsward_zone_up{zone="dmz"} 0.0',
                 'tlsward_zone_queue_depth{zone="default"} 3.0', 'tlsward_zone_pending_probes{zone="dmz"} 1.0',
                 'tlsward_zone_oldest_due_seconds{zone="dmz"} 300.0',
                 'tlsward_zone_probe_lag_seconds{quantile="0.95",zone="default"} 2.5',
                 'tlsward_zone_probes_enqueued_total{zone="default"} 130.0',
                 'tlsward_worker_up{worker="w-dmz",zone="dmz"} 0.0',
                 'tlsward_worker_probes_total{worker="w-default",zone="default"} 120.0',
                 'tlsward_zone_worker_slots{zone="default"} 4.0',
                 'tlsward_scheduler_lease_expiry_timestamp_seconds{holder="sched-host:42:abcd"}'):
        assert line in text, f"{line}\n{text}"
    exposed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert exposed <= {name.removesuffix("_total") if kind == "counter" else name
                       for name, (kind, _, _) in METRICS.items()} | set(METRICS)


def test_metrics_say_so_when_the_database_is_unreadable(tmp_path: Path) -> None:
    from tlsward.model.errors import StorageError

    def broken() -> object:
        raise StorageError("database down")

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DistributedCollector(broken))  # type: ignore[arg-type]
    assert "tlsward_distributed_up 0.0" in generate_latest(registry).decode()


def test_the_metric_list_is_documented() -> None:
    docs = (Path(__file__).parents[3] / "docs" / "distributed.md").read_text()
    missing = [name for name in METRICS if name not in docs]
    assert not missing, f"docs/distributed.md does not describe {missing}"


def test_workers_lists_zones_workers_and_the_scheduler(db: str) -> None:
    result = CliRunner().invoke(app, ["workers", "--db", db], env={"COLUMNS": "250", "TLSWARD_BROKER": ""})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "scheduler: sched-host:42:abcd" in out
    assert "w-default" in out and "alive" in out and "silent" in out and "DOWN" in out
    listed = CliRunner().invoke(app, ["workers", "--db", db, "--json"], env={"TLSWARD_BROKER": ""})
    status = json.loads(listed.output)
    zones = {zone["zone"]: zone for zone in status["zones"]}
    assert zones["default"]["up"] and not zones["dmz"]["up"] and zones["default"]["queue_depth"] == 3
    assert {w["name"]: w["alive"] for w in status["workers"]} == {"w-default": True, "w-dmz": False}
    assert status["scheduler"]["holder"] == "sched-host:42:abcd"
    checked = CliRunner().invoke(app, ["workers", "--db", db, "--check", "--json"], env={"TLSWARD_BROKER": ""})
    assert checked.exit_code == 1


def test_worker_refuses_bad_zones_and_a_missing_broker(db: str) -> None:
    from tlsward.model.errors import UsageError

    result = CliRunner().invoke(app, ["worker", "--zone", "Bad Zone", "--db", db], env={"TLSWARD_BROKER": ""})
    assert isinstance(result.exception, UsageError) and "--zone" in str(result.exception)
    result = CliRunner().invoke(app, ["worker", "--db", db], env={"TLSWARD_BROKER": ""})
    assert isinstance(result.exception, UsageError) and "needs a broker" in str(result.exception)
