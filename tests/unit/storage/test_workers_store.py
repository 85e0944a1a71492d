"""Distributed probing in the database, on SQLite and PostgreSQL: the scheduler lease (one holder, renewals,
expiry, release), worker heartbeats and counters, zone states, endpoint zones (kept by writes that do not name
one, set by imports that do), and which probes are written."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.unit.storage.builders import scan_result
from tlsward.cli.inventory_io import parse_text, render
from tlsward.model.distributed import WorkerRecord, ZoneState
from tlsward.model.errors import UsageError
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store
from tlsward.storage.workers import DistributedStore

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def _endpoint(target: str, zone: str | None = None, enabled: bool = True) -> EndpointRecord:
    host, port = target.rsplit(":", 1)
    return EndpointRecord(target=target, host=host, port=int(port), zone=zone, enabled=enabled)


def test_the_lease_has_one_holder_until_it_expires_or_is_released(store: Store) -> None:
    data = DistributedStore(store)
    first = data.acquire_lease("scheduler", "a", 0.6)
    assert first.held and first.holder == "a"
    other = data.acquire_lease("scheduler", "b", 0.6)
    assert not other.held and other.holder == "a" and other.expires_at == first.expires_at
    renewed = data.acquire_lease("scheduler", "a", 0.6)
    assert renewed.held and renewed.expires_at > first.expires_at and renewed.acquired_at == first.acquired_at
    time.sleep(0.7)
    taken = data.acquire_lease("scheduler", "b", 5)
    assert taken.held and taken.holder == "b" and taken.acquired_at > first.acquired_at
    assert not data.acquire_lease("scheduler", "a", 5).held
    assert not data.release_lease("scheduler", "a")          # not a's to release
    assert data.release_lease("scheduler", "b")
    assert data.lease("scheduler") is None
    assert data.acquire_lease("scheduler", "a", 5).held


def test_heartbeats_keep_the_counters_and_record_a_clean_stop(store: Store) -> None:
    data = DistributedStore(store)
    record = WorkerRecord(name="w1", zone="dmz", hostname="h", pid=10, concurrency=4, started_at=NOW, last_seen=NOW)
    data.heartbeat(record)
    data.count_probes("w1", 7, 2)
    data.count_probes("w1", 3, 0)
    later = NOW + dt.timedelta(seconds=30)
    data.heartbeat(WorkerRecord(name="w1", zone="dmz", hostname="h", pid=10, concurrency=4, started_at=NOW,
                                last_seen=later, stopped_at=later))
    [stored] = data.workers()
    assert (stored.probes, stored.failures, stored.last_seen, stored.stopped_at) == (10, 2, later, later)
    assert not stored.alive(later, 60)
    assert data.forget_workers(later) == 0 and data.forget_workers(later + dt.timedelta(seconds=1)) == 1
    assert data.workers() == []


def test_zone_states_round_trip_and_are_replaced(store: Store) -> None:
    data = DistributedStore(store)
    data.save_zone_states([ZoneState(zone="default", endpoints=3, workers=1, slots=2, queue_depth=4, pending=5,
                                     outstanding=6, oldest_due_s=7.5, lag_p50_s=0.5, lag_p95_s=1.5, enqueued=10,
                                     done=9, resent=1, abandoned=0, updated_at=NOW),
                           ZoneState(zone="dmz", down_since=NOW, updated_at=NOW)])
    data.save_zone_states([ZoneState(zone="dmz", endpoints=2, updated_at=NOW)])
    default, dmz = data.zone_states()
    assert (default.queue_depth, default.pending, default.oldest_due_s, default.enqueued) == (4, 5, 7.5, 10)
    assert (dmz.endpoints, dmz.down_since) == (2, None)
    data.forget_zones(["dmz"])
    assert [state.zone for state in data.zone_states()] == ["dmz"]


def test_endpoint_zones_are_kept_unless_a_write_names_one(store: Store) -> None:
    data = DistributedStore(store)
    store.upsert_endpoint(_endpoint("a.test:443", zone="dmz"))
    store.upsert_endpoint(_endpoint("b.test:443"))
    store.upsert_endpoint(_endpoint("c.test:443", enabled=False))
    assert store.get_endpoint("b.test:443").zone == "default"          # type: ignore[union-attr]
    store.upsert_endpoint(_endpoint("a.test:443"))                       # e.g. `inventory add` without a zone
    store.record_scans([(scan_result("a.test:443"), "1:1")])             # a scan writes the endpoint too
    assert store.get_endpoint("a.test:443").zone == "dmz"               # type: ignore[union-attr]
    assert data.zone_endpoints() == {"dmz": 1, "default": 1}
    assert data.set_zone(["b.test:443", "missing.test:443"], "edge") == 1
    assert {record.target: record.zone for record in store.list_endpoints()} == {
        "a.test:443": "dmz", "b.test:443": "edge", "c.test:443": "default"}


def test_imports_set_zones_when_the_file_has_the_column(store: Store) -> None:
    parsed = parse_text("target,owner,zone\na.test:443,ana,dmz\nb.test:443,bo,\n", "csv", "x.csv")
    assert [record.zone for record in parsed.records] == ["dmz", None]
    changes = store.import_endpoints(parsed.records)
    assert [change.kind for change in changes] == ["added", "added"]
    zones = {record.target: record.zone for record in store.list_endpoints()}
    assert zones == {"a.test:443": "dmz", "b.test:443": "default"}
    # A file without zones leaves them; one that moves an endpoint says so.
    again = store.import_endpoints(parse_text("target,owner\na.test:443,ana\n", "csv", "y.csv").records)
    assert [change.kind for change in again] == ["unchanged"]
    moved = store.import_endpoints(parse_text("- target: a.test:443\n  owner: ana\n  zone: edge\n", "yaml",
                                              "z.yaml").records)
    assert [(change.kind, change.fields) for change in moved] == [("updated", ("zone",))]
    exported = render(store.list_endpoints(), "csv")
    assert exported.splitlines()[0].endswith(",enabled,zone") and "a.test:443" in exported
    assert ",edge" in exported
    bad = parse_text("target,zone\na.test:443,Bad Zone\n", "csv", "bad.csv")
    assert bad.records == [] and "zone 'Bad Zone'" in bad.rejected[0]


def test_exports_of_a_single_zone_inventory_keep_the_usual_columns(store: Store) -> None:
    store.upsert_endpoint(_endpoint("a.test:443"))
    assert render(store.list_endpoints(), "csv").splitlines()[0].endswith(",probe_interval,enabled")
    assert "zone" not in render(store.list_endpoints(), "yaml")


def test_written_probes_by_id_and_by_endpoint(store: Store) -> None:
    data = DistributedStore(store)
    store.record_scans([(scan_result("a.test:443", at=NOW), "1:1000"),
                        (scan_result("b.test:443", at=NOW), "2:1000:192.0.2.7:deep")])
    assert data.written(["1:1000", "1:2000", "2:1000"]) == {"1:1000"}
    ids = [record.id for record in store.list_endpoints() if record.id is not None]
    assert data.written_since(ids, NOW - dt.timedelta(seconds=1)) == {"1:1000", "2:1000:deep"}
    assert data.written_since(ids, NOW + dt.timedelta(seconds=1)) == set()


def test_zone_names_are_checked() -> None:
    from tlsward.model.distributed import check_zone, queue_name

    assert queue_name("dmz-1") == "tlsward.zone.dmz-1"
    for bad in ("", "DMZ", "a b", "-x", "x" * 64, "a.b"):
        with pytest.raises(UsageError):
            check_zone(bad)
