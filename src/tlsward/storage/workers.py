"""Distributed probing in the inventory database: worker heartbeats, the scheduler lease, the scheduler's view of
each zone, endpoint zones, and which probes are written (``tlsward.model.distributed`` records in and out).

The lease is one row per name. Acquiring or renewing it is one short transaction that first takes a PostgreSQL
advisory transaction lock (SQLite: ``BEGIN IMMEDIATE`` already serialises writers), reads the row and decides with
the database's clock, so that two schedulers on two machines with skewed clocks still agree on who holds it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from tlsward.model.distributed import DEFAULT_ZONE, Lease, WorkerRecord, ZoneState, base_probe_id
from tlsward.storage.store import IMPORT_CHUNK, Store
from tlsward.storage.tables import Endpoint, Observation, ProbeWorkerRow, ProbeZoneRow, SchedulerLeaseRow

_PG_LEASE_LOCK = 0x746C736C   # "tlsl": lease transactions one at a time on PostgreSQL


class DistributedStore:
    """Distributed-probing persistence over an open :class:`Store` (same database)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def is_postgresql(self) -> bool:
        return self.store.engine.dialect.name == "postgresql"

    def _db_now(self, session: Session) -> dt.datetime:
        """The database's clock (PostgreSQL); this process's on SQLite, which is one machine anyway."""
        if self.is_postgresql:
            value = session.execute(text("SELECT statement_timestamp()")).scalar_one()
            assert isinstance(value, dt.datetime)
            return value.astimezone(dt.UTC)
        return dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        with self.store._transaction() as session:
            return self._db_now(session)

    # -- workers ------------------------------------------------------------------------------------------

    def heartbeat(self, record: WorkerRecord) -> None:
        """Insert or refresh a worker's row (its counters are kept: :meth:`count_probes` adds to them)."""
        values = {"zone": record.zone, "hostname": record.hostname, "pid": record.pid,
                  "concurrency": record.concurrency, "started_at": record.started_at, "last_seen": record.last_seen,
                  "stopped_at": record.stopped_at}
        with self.store._transaction() as session:
            statement = self.store._insert(ProbeWorkerRow).values(name=record.name, probes=record.probes,
                                                                   failures=record.failures, **values)
            session.execute(statement.on_conflict_do_update(index_elements=["name"], set_=values))

    def count_probes(self, name: str, probes: int, failures: int) -> None:
        if not probes and not failures:
            return
        with self.store._transaction() as session:
            session.execute(update(ProbeWorkerRow).where(ProbeWorkerRow.name == name).values(
                probes=ProbeWorkerRow.probes + probes, failures=ProbeWorkerRow.failures + failures))

    def workers(self) -> list[WorkerRecord]:
        """Every worker that reported, by zone then name."""
        with self.store._transaction() as session:
            return [_worker(row) for row in session.scalars(
                select(ProbeWorkerRow).order_by(ProbeWorkerRow.zone, ProbeWorkerRow.name))]

    def forget_workers(self, before: dt.datetime) -> int:
        """Delete workers silent (or stopped) since before ``before``; how many."""
        with self.store._transaction() as session:
            result = session.execute(delete(ProbeWorkerRow).where(ProbeWorkerRow.last_seen < before))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- the scheduler lease ----------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, ttl_s: float) -> Lease:
        """Take or renew the lease ``name`` for ``holder`` when it is free, expired or already ours; otherwise
        leave it. Returns the lease as it stands after the call (``held`` tells whether ``holder`` has it)."""
        with self.store._transaction() as session:
            if self.is_postgresql:
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LEASE_LOCK})
            now = self._db_now(session)
            expires = now + dt.timedelta(seconds=ttl_s)
            row = session.get(SchedulerLeaseRow, name, populate_existing=True)
            if row is None:
                session.add(SchedulerLeaseRow(name=name, holder=holder, acquired_at=now, expires_at=expires))
                return Lease(name, holder, now, expires, held=True)
            if row.holder == holder or row.expires_at <= now:
                if row.holder != holder:
                    row.holder, row.acquired_at = holder, now
                row.expires_at = expires
                return Lease(name, holder, row.acquired_at, expires, held=True)
            return Lease(name, row.holder, row.acquired_at, row.expires_at, held=False)

    def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up now (a clean stop: the standby need not wait for it to expire)."""
        with self.store._transaction() as session:
            result = session.execute(delete(SchedulerLeaseRow).where(SchedulerLeaseRow.name == name,
                                                                     SchedulerLeaseRow.holder == holder))
            return bool(getattr(result, "rowcount", 0))

    def lease(self, name: str) -> Lease | None:
        with self.store._transaction() as session:
            row = session.get(SchedulerLeaseRow, name)
            return None if row is None else Lease(name, row.holder, row.acquired_at, row.expires_at)

    # -- zones ------------------------------------------------------------------------------------------------

    def zone_endpoints(self) -> dict[str, int]:
        """Enabled endpoints per zone."""
        with self.store._transaction() as session:
            return {zone: int(count) for zone, count in session.execute(
                select(Endpoint.zone, func.count()).where(Endpoint.enabled.is_(True)).group_by(Endpoint.zone))}

    def set_zone(self, targets: Iterable[str], zone: str) -> int:
        """Move endpoints (by target) to ``zone``; how many exist."""
        wanted = list(dict.fromkeys(targets))
        moved = 0
        with self.store._transaction() as session:
            for start in range(0, len(wanted), IMPORT_CHUNK):
                result = session.execute(update(Endpoint).where(Endpoint.target.in_(wanted[start:start + IMPORT_CHUNK]))
                                         .values(zone=zone).execution_options(synchronize_session=False))
                moved += int(getattr(result, "rowcount", 0) or 0)
        return moved

    def save_zone_states(self, states: Sequence[ZoneState]) -> None:
        if not states:
            return
        with self.store._transaction() as session:
            statement = self.store._insert(ProbeZoneRow)
            rows = [_zone_values(state) for state in states]
            session.execute(statement.on_conflict_do_update(index_elements=["zone"], set_={
                name: getattr(statement.excluded, name) for name in rows[0] if name != "zone"}), rows)

    def zone_states(self) -> list[ZoneState]:
        with self.store._transaction() as session:
            return [_zone(row) for row in session.scalars(select(ProbeZoneRow).order_by(ProbeZoneRow.zone))]

    def forget_zones(self, keep: Iterable[str]) -> None:
        """Delete the states of zones not in ``keep`` (no endpoints and no workers any more)."""
        with self.store._transaction() as session:
            session.execute(delete(ProbeZoneRow).where(ProbeZoneRow.zone.not_in(list(keep))))

    # -- which probes are written -------------------------------------------------------------------------------

    def written(self, probe_ids: Sequence[str]) -> set[str]:
        """Which of these probe ids have an observation (exact ids: one observation per probe)."""
        done: set[str] = set()
        with self.store._transaction() as session:
            for start in range(0, len(probe_ids), IMPORT_CHUNK):
                done.update(session.scalars(select(Observation.probe_id).where(
                    Observation.probe_id.in_(probe_ids[start:start + IMPORT_CHUNK]))))
        return done

    def written_since(self, endpoint_ids: Sequence[int], since: dt.datetime) -> set[str]:
        """The scheduler's probe ids (:func:`base_probe_id`) of the observations of these endpoints since ``since``:
        for ``all_ips``, where one probe writes one observation per address."""
        done: set[str] = set()
        with self.store._transaction() as session:
            for start in range(0, len(endpoint_ids), IMPORT_CHUNK):
                for probe_id in session.scalars(select(Observation.probe_id).where(
                        Observation.endpoint_id.in_(endpoint_ids[start:start + IMPORT_CHUNK]),
                        Observation.observed_at >= since, Observation.probe_id.is_not(None))):
                    if probe_id is not None:
                        done.add(base_probe_id(probe_id))
        return done


def _worker(row: ProbeWorkerRow) -> WorkerRecord:
    return WorkerRecord(name=row.name, zone=row.zone, hostname=row.hostname, pid=row.pid, concurrency=row.concurrency,
                        started_at=row.started_at, last_seen=row.last_seen, probes=int(row.probes or 0),
                        failures=int(row.failures or 0), stopped_at=row.stopped_at)


def _zone_values(state: ZoneState) -> dict[str, object]:
    return {"zone": state.zone or DEFAULT_ZONE, "endpoints": state.endpoints, "workers": state.workers,
            "slots": state.slots, "queue_depth": state.queue_depth, "pending": state.pending,
            "outstanding": state.outstanding, "oldest_due_s": state.oldest_due_s, "lag_p50_s": state.lag_p50_s,
            "lag_p95_s": state.lag_p95_s, "enqueued": state.enqueued, "done": state.done, "resent": state.resent,
            "abandoned": state.abandoned, "down_since": state.down_since,
            "updated_at": state.updated_at or dt.datetime.now(dt.UTC)}


def _zone(row: ProbeZoneRow) -> ZoneState:
    return ZoneState(zone=row.zone, endpoints=row.endpoints, workers=row.workers, slots=row.slots,
                     queue_depth=row.queue_depth, pending=row.pending, outstanding=row.outstanding,
                     oldest_due_s=row.oldest_due_s, lag_p50_s=row.lag_p50_s, lag_p95_s=row.lag_p95_s,
                     enqueued=int(row.enqueued), done=int(row.done), resent=int(row.resent),
                     abandoned=int(row.abandoned), down_since=row.down_since, updated_at=row.updated_at)


__all__ = ["DistributedStore"]
