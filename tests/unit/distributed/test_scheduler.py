"""The distributed scheduler's decisions, step by step, on an SQLite inventory with a fake broker: backpressure per
live worker slot, nothing sent to a zone without workers (and its zone.down alert), one pending probe per endpoint,
written probes found and timed, overdue probes sent again then abandoned, a broker outage holding probes, the
lease keeping a second scheduler idle, and a --once run that ends when everything is written."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from tests.unit.storage.builders import scan_result
from tlsward.distributed.broker import BrokerError
from tlsward.distributed.scheduler import DistributedScheduler
from tlsward.distributed.settings import DistributedSettings
from tlsward.model.alerts import AlertStatus
from tlsward.model.distributed import WorkerRecord, decode_batch
from tlsward.model.inventory import EndpointRecord
from tlsward.model.monitor import MonitorConfig, ProbeSettings
from tlsward.storage import open_store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.workers import DistributedStore


class FakePublisher:
    """Records what would be published; ``depth`` is what the queues report; ``fail`` makes the broker vanish."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str]]] = []
        self.depth: dict[str, int] = {}
        self.fail = False

    def send(self, zone: str, body: dict[str, Any], *, soft_limit: float, hard_limit: float) -> None:
        if self.fail:
            raise BrokerError("connection refused")
        assert hard_limit > soft_limit > 0
        _, orders = decode_batch(body)
        self.sent.append((zone, [order.probe_id for order in orders]))

    def depths(self, zones: list[str]) -> dict[str, int]:
        if self.fail:
            raise BrokerError("connection refused")
        return {zone: self.depth.get(zone, 0) for zone in zones}

    def close(self) -> None:
        pass

    @property
    def probe_ids(self) -> list[str]:
        return [probe_id for _, ids in self.sent for probe_id in ids]


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inventory.db'}"


def _add(db: str, count: int, zone: str = "default", prefix: str = "h") -> None:
    with open_store(db) as store:
        store.import_endpoints([EndpointRecord(target=f"{prefix}{i}.test:443", host=f"{prefix}{i}.test", port=443,
                                               zone=zone) for i in range(count)])


def _worker(db: str, zone: str = "default", concurrency: int = 1, name: str = "w1") -> None:
    now = dt.datetime.now(dt.UTC)
    with open_store(db) as store:
        DistributedStore(store).heartbeat(WorkerRecord(name=name, zone=zone, hostname="h", pid=1,
                                                       concurrency=concurrency, started_at=now, last_seen=now))


def _scheduler(db: str, publisher: FakePublisher, **settings: Any) -> DistributedScheduler:
    values: dict[str, Any] = {"broker": "redis://127.0.0.1:1/0", "batch_size": 1, "queue_per_slot": 2,
                              "zone_down_after_s": 0.05, **settings}
    config = MonitorConfig(probes=ProbeSettings(interval_s=60, jitter=0.0, deep_interval_s=0))
    return DistributedScheduler(db, config, DistributedSettings(**values), submit=lambda _n: None, receivers=(),
                                publisher=publisher, holder=f"test-{id(publisher)}")  # type: ignore[arg-type]


async def _cycle(scheduler: DistributedScheduler, *, once: bool = True) -> None:
    """One turn of the scheduler's loop (what ``run`` does between two waits)."""
    await scheduler._lease()
    if not scheduler._leader:
        return
    if not scheduler._due:
        await scheduler._refresh(once=once)
    if not scheduler._bootstrapped and scheduler._due:
        await scheduler._bootstrap()
    await scheduler._status(once=once)
    scheduler._collect_due(once=once)
    await scheduler._send_pending()
    await scheduler._poll_written()
    await scheduler._resend_overdue()


def _close(scheduler: DistributedScheduler) -> None:
    if scheduler._store is not None:
        scheduler._store.close()


def test_backpressure_sends_at_most_queue_per_slot_tasks_per_live_worker_slot(db: str) -> None:
    _add(db, 10)
    _worker(db, concurrency=1)
    publisher = FakePublisher()
    scheduler = _scheduler(db, publisher)

    async def scenario() -> None:
        await _cycle(scheduler)
        assert len(publisher.sent) == 2                    # 2 tasks per slot, 1 slot
        publisher.depth["default"] = 2                     # nothing drained yet
        await _cycle(scheduler)
        assert len(publisher.sent) == 2
        publisher.depth["default"] = 0                     # drained
        await _cycle(scheduler)
        assert len(publisher.sent) == 4
        [state] = scheduler.zone_states()
        assert (state.pending, state.outstanding, state.workers, state.slots) == (6, 4, 1, 1)
        _worker(db, concurrency=3, name="w2")              # more slots: more may wait
        await _cycle(scheduler)
        assert len(publisher.sent) == 10                   # (1 + 3) * 2 = 8 may wait: the 6 left go
        assert len(set(publisher.probe_ids)) == len(publisher.probe_ids)

    asyncio.run(scenario())
    _close(scheduler)


def test_a_zone_without_live_workers_gets_nothing_and_raises_zone_down(db: str) -> None:
    _add(db, 3, zone="dmz")
    _add(db, 2, zone="default", prefix="d")
    _worker(db, zone="default", concurrency=4)
    publisher = FakePublisher()
    scheduler = _scheduler(db, publisher)

    async def scenario() -> None:
        await _cycle(scheduler, once=False)
        await asyncio.sleep(0.1)
        for endpoint_id in list(scheduler._due):
            scheduler._push(endpoint_id, time.monotonic() - 1)
        await _cycle(scheduler, once=False)
        assert {zone for zone, _ in publisher.sent} == {"default"}
        states = {state.zone: state for state in scheduler.zone_states()}
        assert states["dmz"].down_since is not None and states["dmz"].pending == 3 and states["dmz"].workers == 0

    asyncio.run(scenario())
    with open_store(db) as store:
        firing = {record.alert.key: record for record in AlertStore(store).load(status=AlertStatus.FIRING)}
        assert "zone.down:dmz" in firing, firing
        assert "3 endpoints" in firing["zone.down:dmz"].alert.summary
        states = {state.zone: state for state in DistributedStore(store).zone_states()}
        assert states["dmz"].down_since is not None and states["default"].workers == 1
    _close(scheduler)


def test_an_endpoint_has_one_pending_probe_however_late_the_zone_is(db: str) -> None:
    _add(db, 1)
    publisher = FakePublisher()
    scheduler = _scheduler(db, publisher)                 # no worker: nothing can be sent

    async def scenario() -> None:
        await _cycle(scheduler, once=False)
        for _ in range(3):
            [endpoint_id] = scheduler._due
            scheduler._push(endpoint_id, time.monotonic() - 1)
            scheduler._collect_due(once=False)
        [state] = scheduler.zone_states()
        assert state.pending == 1 and publisher.sent == []

    asyncio.run(scenario())
    _close(scheduler)


def test_written_probes_are_found_timed_and_evaluated(db: str) -> None:
    _add(db, 2)
    _worker(db, concurrency=2)
    publisher = FakePublisher()
    scheduler = _scheduler(db, publisher)

    async def scenario() -> None:
        await _cycle(scheduler)
        assert len(publisher.sent) == 2
        first = publisher.probe_ids[0]
        with open_store(db) as store:
            target = {record.id: record.target for record in store.list_endpoints()}[int(first.split(":")[0])]
            assert store.record_scans([(scan_result(target), first)]) == 1
        await scheduler._poll_written()
        [state] = scheduler.zone_states()
        assert (state.done, state.outstanding, state.enqueued) == (1, 1, 2)
        assert 0 <= state.lag_p50_s < 5

    asyncio.run(scenario())
    _close(scheduler)


def test_overdue_probes_are_sent_again_then_abandoned(db: str) -> None:
    _add(db, 1)
    _worker(db)
    publisher = FakePublisher()
    scheduler = _scheduler(db, publisher, resend_after_s=0.05, max_resends=1)

    async def scenario() -> None:
        await _cycle(scheduler)
        assert len(publisher.sent) == 1
        await asyncio.sleep(0.1)
        await scheduler._resend_overdue()
        assert publisher.probe_ids == [publisher.probe_ids[0]] * 2     # the same probe id: written once at most
        await asyncio.sleep(0.1)
        await scheduler._resend_overdue()
        [state] = scheduler.zone_states()
        assert (state.resent, state.abandoned, state.outstanding) == (1, 1, 0)

    asyncio.run(scenario())
    _close(scheduler)


def test_a_broker_outage_holds_the_probes_until_it_is_back(db: str, caplog: pytest.LogCaptureFixture) -> None:
    _add(db, 3)
    _worker(db, concurrency=4)
    publisher = FakePublisher()
    publisher.fail = True
    scheduler = _scheduler(db, publisher)

    async def scenario() -> None:
        await _cycle(scheduler)
        assert publisher.sent == [] and scheduler.stats.broker_outages == 1
        [state] = scheduler.zone_states()
        assert state.pending == 3
        publisher.fail = False
        scheduler._broker_retry_at = 0.0
        await _cycle(scheduler)
        assert len(publisher.sent) == 3

    asyncio.run(scenario())
    assert "unavailable" in caplog.text and "broker back" in caplog.text
    _close(scheduler)


def test_the_lease_keeps_a_second_scheduler_from_sending(db: str) -> None:
    _add(db, 2)
    _worker(db, concurrency=4)
    first, second = FakePublisher(), FakePublisher()
    active, standby = _scheduler(db, first), _scheduler(db, second)

    async def scenario() -> None:
        await _cycle(active)
        await _cycle(standby)
        assert len(first.sent) == 2 and second.sent == [] and not standby._leader

    asyncio.run(scenario())
    _close(active)
    _close(standby)


def test_a_once_run_ends_when_every_probe_is_written(db: str) -> None:
    _add(db, 5)
    _worker(db, concurrency=2)

    class Worker(FakePublisher):
        """Writes each probe as it is sent, as a worker would."""

        def send(self, zone: str, body: dict[str, Any], *, soft_limit: float, hard_limit: float) -> None:
            super().send(zone, body, soft_limit=soft_limit, hard_limit=hard_limit)
            _, orders = decode_batch(body)
            with open_store(db) as store:
                store.record_scans([(scan_result(order.target), order.probe_id) for order in orders])

    publisher = Worker()
    scheduler = _scheduler(db, publisher, poll_every_s=0.05, status_every_s=0.05)
    stats = asyncio.run(asyncio.wait_for(scheduler.run(asyncio.Event(), once=True), 30))
    assert (stats.enqueued, stats.done, stats.abandoned) == (5, 5, 0)  # type: ignore[attr-defined]
    with open_store(db) as store:
        assert store.count_observations() == 5
        assert DistributedStore(store).lease("scheduler") is None      # released on the way out
