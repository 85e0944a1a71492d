"""The monitor's alerts and silences in the inventory database: rows in, ``tlsward.model`` records out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select, update

from tlsward.model.alerts import Alert, AlertRecord, AlertStatus, Route
from tlsward.model.findings import Severity
from tlsward.model.monitor import Silence
from tlsward.storage.store import Store
from tlsward.storage.tables import AlertRow, SilenceRow


class AlertStore:
    """Alert and silence persistence over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def load(self, *, status: AlertStatus | None = None, limit: int | None = None) -> list[AlertRecord]:
        """Alerts, newest change first."""
        with self.store._transaction() as session:
            query = select(AlertRow).order_by(AlertRow.updated_at.desc(), AlertRow.id.desc())
            if status is not None:
                query = query.where(AlertRow.status == str(status))
            if limit is not None:
                query = query.limit(limit)
            return [_record(row) for row in session.scalars(query)]

    def save(self, records: Sequence[AlertRecord], now: dt.datetime) -> int:
        """Insert or update by key, in one transaction; how many were written."""
        if not records:
            return 0
        with self.store._transaction() as session:
            existing = {row.key: row for row in session.scalars(
                select(AlertRow).where(AlertRow.key.in_([r.alert.key for r in records])))}
            for record in records:
                alert = record.alert
                values = {"rule": alert.rule, "status": str(alert.status), "severity": int(alert.severity),
                          "route": str(alert.route), "summary": alert.summary, "description": alert.description,
                          "fix": alert.fix, "endpoints": list(alert.endpoints), "labels": dict(alert.labels),
                          "owner": alert.owner, "team": alert.team, "stage": record.stage,
                          "notified_stage": record.notified_stage, "started_at": alert.starts_at or now,
                          "updated_at": now, "resolved_at": alert.ends_at,
                          "last_notified_at": record.last_notified_at, "acked_at": record.acked_at,
                          "acked_by": record.acked_by}
                row = existing.get(alert.key)
                if row is None:
                    session.add(AlertRow(key=alert.key, **values))
                else:
                    for name, value in values.items():
                        setattr(row, name, value)
            return len(records)

    def ack(self, key: str, by: str, now: dt.datetime, *, exact: bool = False) -> int:
        """Acknowledge firing alerts whose key is ``key`` or (unless ``exact``) starts with it: no reminders
        until it resolves or escalates. Returns how many."""
        with self.store._transaction() as session:
            matches = (AlertRow.key == key) if exact else \
                (AlertRow.key == key) | AlertRow.key.startswith(key, autoescape=True)
            result = session.execute(update(AlertRow).where(AlertRow.status == str(AlertStatus.FIRING), matches)
                                     .values(acked_at=now, acked_by=by, updated_at=now))
            return int(getattr(result, "rowcount", 0) or 0)

    def add_silence(self, silence: Silence, now: dt.datetime) -> Silence:
        with self.store._transaction() as session:
            row = SilenceRow(matchers=dict(silence.matchers), starts_at=silence.starts_at, ends_at=silence.ends_at,
                             created_by=silence.created_by, comment=silence.comment, created_at=now)
            session.add(row)
            session.flush()
            return _silence(row)

    def silences(self, *, active_at: dt.datetime | None = None, include_expired: bool = False) -> list[Silence]:
        """Silences not yet over at ``active_at`` (those scheduled for later included), by start."""
        with self.store._transaction() as session:
            query = select(SilenceRow).order_by(SilenceRow.starts_at, SilenceRow.id)
            if not include_expired and active_at is not None:
                query = query.where(SilenceRow.ends_at > active_at)
            return [_silence(row) for row in session.scalars(query)]

    def expire_silence(self, silence_id: int, now: dt.datetime) -> bool:
        with self.store._transaction() as session:
            row = session.get(SilenceRow, silence_id)
            if row is None or row.ends_at <= now:
                return False
            row.ends_at = now
            return True


def _record(row: AlertRow) -> AlertRecord:
    alert = Alert(key=row.key, rule=row.rule, status=AlertStatus(row.status), severity=Severity(row.severity),
                  route=Route(row.route), summary=row.summary, description=row.description, fix=row.fix,
                  endpoints=tuple(row.endpoints or ()), labels=tuple(sorted((row.labels or {}).items())),
                  owner=row.owner, team=row.team, starts_at=row.started_at, ends_at=row.resolved_at)
    return AlertRecord(alert=alert, stage=row.stage, notified_stage=row.notified_stage,
                       last_notified_at=row.last_notified_at, acked_at=row.acked_at, acked_by=row.acked_by,
                       updated_at=row.updated_at, id=row.id)


def _silence(row: SilenceRow) -> Silence:
    return Silence(matchers=tuple(sorted((row.matchers or {}).items())), starts_at=row.starts_at,
                   ends_at=row.ends_at, created_by=row.created_by, comment=row.comment, id=row.id)
