"""Prometheus metrics of distributed probing, read from the database at each scrape: queue depth, probes pending
and outstanding, probe lag (due to written), worker heartbeats and the scheduler lease. Registered next to the
inventory collector by ``tlsward monitor --distributed --listen`` (any process with the database can serve them:
they come from what the scheduler and the workers write, not from this process's memory).

Labels are ``zone`` and ``worker`` (a worker's name: zone, host and pid), bounded by the fleet's size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tlsward.model.errors import StorageError
from tlsward.storage import Store
from tlsward.storage.workers import DistributedStore

log = logging.getLogger(__name__)

# name -> (type, labels, help); docs/distributed.md lists them, a test checks the list.
METRICS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "tlsward_distributed_up": ("gauge", (), "1 if the distributed state could be read at this scrape, 0 if not."),
    "tlsward_zone_up": ("gauge", ("zone",),
                        "1 while the zone has a live worker (or no endpoints), 0 while its probes go undone."),
    "tlsward_zone_endpoints": ("gauge", ("zone",), "Enabled endpoints in the zone."),
    "tlsward_zone_workers": ("gauge", ("zone",), "Live workers of the zone (a heartbeat within worker_stale_after)."),
    "tlsward_zone_worker_slots": ("gauge", ("zone",), "Total concurrency (processes) of the zone's live workers."),
    "tlsward_zone_queue_depth": ("gauge", ("zone",), "Tasks (probe batches) waiting in the zone's broker queue."),
    "tlsward_zone_pending_probes": ("gauge", ("zone",),
                                    "Probes due and held by the scheduler (backpressure, zone or broker down)."),
    "tlsward_zone_outstanding_probes": ("gauge", ("zone",), "Probes sent to the zone and not yet written."),
    "tlsward_zone_oldest_due_seconds": ("gauge", ("zone",),
                                        "Age of the oldest probe of the zone that is due and not yet written."),
    "tlsward_zone_probe_lag_seconds": ("gauge", ("zone", "quantile"),
                                       "Due to written, over the probes written in the scheduler's last look."),
    "tlsward_zone_probes_enqueued_total": ("counter", ("zone",), "Probes sent to the zone by the active scheduler."),
    "tlsward_zone_probes_written_total": ("counter", ("zone",), "Probes of the zone seen written."),
    "tlsward_zone_probes_resent_total": ("counter", ("zone",), "Probes sent again (not written in time)."),
    "tlsward_zone_probes_abandoned_total": ("counter", ("zone",), "Probes given up after too many resends."),
    "tlsward_zone_state_timestamp_seconds": ("gauge", ("zone",), "When the scheduler last wrote the zone's state."),
    "tlsward_worker_heartbeat_timestamp_seconds": ("gauge", ("worker", "zone"), "The worker's last heartbeat."),
    "tlsward_worker_up": ("gauge", ("worker", "zone"), "1 while the worker's heartbeat is fresh."),
    "tlsward_worker_processes": ("gauge", ("worker", "zone"), "The worker's concurrency."),
    "tlsward_worker_probes_total": ("counter", ("worker", "zone"), "Probes the worker wrote."),
    "tlsward_worker_probe_failures_total": ("counter", ("worker", "zone"), "Of which the endpoint failed."),
    "tlsward_scheduler_lease_expiry_timestamp_seconds": ("gauge", ("holder",),
                                                         "When the active scheduler's lease expires unless renewed."),
}


def _family(name: str) -> GaugeMetricFamily | CounterMetricFamily:
    kind, labels, help_ = METRICS[name]
    if kind == "counter":
        return CounterMetricFamily(name.removesuffix("_total"), help_, labels=list(labels))
    return GaugeMetricFamily(name, help_, labels=list(labels))


class DistributedCollector:
    """A prometheus_client collector over the inventory database (``store_of()`` gives the open store)."""

    def __init__(self, store_of: Callable[[], Store], *, stale_after_s: float = 20.0) -> None:
        self.store_of = store_of
        self.stale_after_s = stale_after_s

    def describe(self) -> Iterator[Metric]:
        for name in METRICS:
            yield _family(name)

    def collect(self) -> Iterator[Metric]:
        from tlsward.distributed.scheduler import LEASE_NAME

        up = GaugeMetricFamily("tlsward_distributed_up", METRICS["tlsward_distributed_up"][2])
        try:
            data = DistributedStore(self.store_of())
            now = data.now()
            workers, zones, lease, endpoints = data.workers(), data.zone_states(), data.lease(LEASE_NAME), \
                data.zone_endpoints()
        except StorageError as exc:
            log.warning("distributed metrics not read: %s", exc)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        families = {name: _family(name) for name in METRICS if name != "tlsward_distributed_up"}
        live: dict[str, list[float]] = {}
        for worker in workers:
            alive = worker.alive(now, self.stale_after_s)
            labels = [worker.name, worker.zone]
            if alive:
                live.setdefault(worker.zone, []).append(worker.concurrency)
            if (worker.stopped_at is not None and not alive) or (now - worker.last_seen).total_seconds() > 86400:
                continue                     # a clean stop (gone, not down), or long gone (the scheduler forgets it)
            families["tlsward_worker_heartbeat_timestamp_seconds"].add_metric(labels, worker.last_seen.timestamp())
            families["tlsward_worker_up"].add_metric(labels, 1.0 if alive else 0.0)
            families["tlsward_worker_processes"].add_metric(labels, worker.concurrency)
            families["tlsward_worker_probes_total"].add_metric(labels, worker.probes)
            families["tlsward_worker_probe_failures_total"].add_metric(labels, worker.failures)
        names = sorted({*endpoints, *live, *(state.zone for state in zones)})
        states = {state.zone: state for state in zones}
        for zone in names:
            count = endpoints.get(zone, 0)
            families["tlsward_zone_up"].add_metric([zone], 1.0 if live.get(zone) or not count else 0.0)
            families["tlsward_zone_endpoints"].add_metric([zone], count)
            families["tlsward_zone_workers"].add_metric([zone], len(live.get(zone, ())))
            families["tlsward_zone_worker_slots"].add_metric([zone], sum(live.get(zone, ())))
            state = states.get(zone)
            if state is None:
                continue
            families["tlsward_zone_queue_depth"].add_metric([zone], state.queue_depth)
            families["tlsward_zone_pending_probes"].add_metric([zone], state.pending)
            families["tlsward_zone_outstanding_probes"].add_metric([zone], state.outstanding)
            families["tlsward_zone_oldest_due_seconds"].add_metric([zone], state.oldest_due_s)
            families["tlsward_zone_probe_lag_seconds"].add_metric([zone, "0.5"], state.lag_p50_s)
            families["tlsward_zone_probe_lag_seconds"].add_metric([zone, "0.95"], state.lag_p95_s)
            families["tlsward_zone_probes_enqueued_total"].add_metric([zone], state.enqueued)
            families["tlsward_zone_probes_written_total"].add_metric([zone], state.done)
            families["tlsward_zone_probes_resent_total"].add_metric([zone], state.resent)
            families["tlsward_zone_probes_abandoned_total"].add_metric([zone], state.abandoned)
            if state.updated_at is not None:
                families["tlsward_zone_state_timestamp_seconds"].add_metric([zone], state.updated_at.timestamp())
        if lease is not None and lease.expires_at > now:
            families["tlsward_scheduler_lease_expiry_timestamp_seconds"].add_metric(
                [lease.holder], lease.expires_at.timestamp())
        yield from families.values()
