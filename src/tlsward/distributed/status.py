"""What ``tlsward workers`` shows: workers (heartbeats), zones (the scheduler's last view, with live queue depths
from the broker when one is configured) and the scheduler lease, read in one go."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from tlsward.distributed.settings import DistributedSettings
from tlsward.model.distributed import Lease, WorkerRecord, ZoneState
from tlsward.storage import open_store
from tlsward.storage.workers import DistributedStore


@dataclass
class Status:
    now: dt.datetime
    stale_after_s: float
    workers: list[WorkerRecord]
    zones: list[ZoneState]
    lease: Lease | None
    depths: dict[str, int] = field(default_factory=dict)
    depth_error: str = ""

    def live_workers(self, zone: str) -> int:
        return sum(1 for w in self.workers if w.zone == zone and w.alive(self.now, self.stale_after_s))

    def zone_up(self, zone: str) -> bool:
        return self.live_workers(zone) > 0

    def down_zones(self) -> list[str]:
        return [state.zone for state in self.zones if state.endpoints and not self.zone_up(state.zone)]

    def to_json(self, workers: list[WorkerRecord]) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "now": when(self.now),
            "scheduler": None if self.lease is None or self.lease.expires_at <= self.now else {
                "holder": self.lease.holder, "since": when(self.lease.acquired_at),
                "expires": when(self.lease.expires_at)},
            "zones": [{"zone": s.zone, "up": self.zone_up(s.zone), "endpoints": s.endpoints,
                       "workers": self.live_workers(s.zone), "slots": s.slots,
                       "queue_depth": self.depths.get(s.zone, s.queue_depth), "pending": s.pending,
                       "outstanding": s.outstanding, "oldest_due_s": round(s.oldest_due_s, 3),
                       "lag_p50_s": round(s.lag_p50_s, 3), "lag_p95_s": round(s.lag_p95_s, 3),
                       "enqueued": s.enqueued, "done": s.done, "resent": s.resent, "abandoned": s.abandoned,
                       "down_since": when(s.down_since), "updated_at": when(s.updated_at)} for s in self.zones],
            "workers": [{"name": w.name, "zone": w.zone, "host": w.hostname, "pid": w.pid,
                         "concurrency": w.concurrency, "alive": w.alive(self.now, self.stale_after_s),
                         "started_at": when(w.started_at), "last_seen": when(w.last_seen),
                         "stopped_at": when(w.stopped_at), "probes": w.probes, "failures": w.failures}
                        for w in workers],
        }


def read_status(db_url: str | None, settings: DistributedSettings, *, live_depths: bool) -> Status:
    """Read workers, zones and the lease; with ``live_depths``, ask the broker for each zone's queue depth (a
    broker that does not answer leaves the scheduler's last reading, and says why in ``depth_error``)."""
    from tlsward.distributed.scheduler import LEASE_NAME

    with open_store(db_url) as store:
        data = DistributedStore(store)
        now = data.now()
        workers, zones, lease = data.workers(), data.zone_states(), data.lease(LEASE_NAME)
        endpoints = data.zone_endpoints()
    known = {state.zone for state in zones}
    extra = sorted((set(endpoints) | {w.zone for w in workers}) - known)
    zones = sorted([*zones, *(ZoneState(zone=name, endpoints=endpoints.get(name, 0)) for name in extra)],
                   key=lambda state: state.zone)
    zones = [state if state.endpoints == endpoints.get(state.zone, 0) else _with_endpoints(state, endpoints)
             for state in zones]
    status = Status(now, settings.worker_stale_after_s, workers, zones, lease)
    if live_depths and zones:
        from tlsward.distributed.broker import BrokerError, Publisher

        try:
            publisher = Publisher(settings)
            try:
                status.depths = publisher.depths([state.zone for state in zones])
            finally:
                publisher.close()
        except (BrokerError, OSError) as exc:
            status.depth_error = f"broker unavailable: {exc}"
    return status


def _with_endpoints(state: ZoneState, endpoints: dict[str, int]) -> ZoneState:
    from dataclasses import replace

    return replace(state, endpoints=endpoints.get(state.zone, 0))
