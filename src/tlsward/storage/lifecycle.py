"""History of managed-certificate renewals and deploys: ``tlsward.model.lifecycle`` records in and out.

The monitor alerts from the newest event of each certificate, and ``tlsward cert list`` shows it, so both read
the same rows the renewal run wrote."""

from __future__ import annotations

from sqlalchemy import func, select

from tlsward.model.lifecycle import Outcome, RenewalEvent
from tlsward.storage.store import Store
from tlsward.storage.tables import CertificateRenewalRow


class LifecycleStore:
    """Renewal history over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, event: RenewalEvent) -> RenewalEvent:
        """Store one attempt; the event with its id."""
        with self.store._transaction() as session:
            row = CertificateRenewalRow(
                certificate=event.certificate, source=event.source, outcome=str(event.outcome), reason=event.reason,
                old_sha256=event.old_sha256, new_sha256=event.new_sha256, new_not_after=event.new_not_after,
                endpoints=list(event.endpoints), steps=[[name, ms] for name, ms in event.steps],
                started_at=event.started_at, finished_at=event.finished_at)
            session.add(row)
            session.flush()
            return _event(row)

    def history(self, certificate: str | None = None, *, limit: int = 100) -> list[RenewalEvent]:
        """Attempts, newest first (of one certificate, or of all)."""
        with self.store._transaction() as session:
            query = select(CertificateRenewalRow).order_by(CertificateRenewalRow.started_at.desc(),
                                                           CertificateRenewalRow.id.desc()).limit(limit)
            if certificate is not None:
                query = query.where(CertificateRenewalRow.certificate == certificate)
            return [_event(row) for row in session.scalars(query)]

    def latest(self) -> dict[str, RenewalEvent]:
        """The newest attempt of every certificate that has one, by name."""
        with self.store._transaction() as session:
            newest = (select(CertificateRenewalRow.certificate, func.max(CertificateRenewalRow.id).label("id"))
                      .group_by(CertificateRenewalRow.certificate).subquery())
            rows = session.scalars(select(CertificateRenewalRow).join(newest, CertificateRenewalRow.id == newest.c.id))
            return {row.certificate: _event(row) for row in rows}


def _event(row: CertificateRenewalRow) -> RenewalEvent:
    return RenewalEvent(certificate=row.certificate, source=row.source, outcome=Outcome(row.outcome),
                        started_at=row.started_at, finished_at=row.finished_at, reason=row.reason,
                        old_sha256=row.old_sha256, new_sha256=row.new_sha256, new_not_after=row.new_not_after,
                        endpoints=tuple(row.endpoints or ()),
                        steps=tuple((str(name), float(ms)) for name, ms in (row.steps or [])), id=row.id)
