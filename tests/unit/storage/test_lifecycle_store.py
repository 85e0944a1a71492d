"""Renewal history on SQLite and PostgreSQL: every attempt is kept, newest first, and ``latest`` gives the newest
attempt of each certificate (what the monitor alerts from and ``tlsward cert list`` shows)."""

from __future__ import annotations

import datetime as dt

from tlsward.model.lifecycle import Outcome, RenewalEvent
from tlsward.storage import Store
from tlsward.storage.lifecycle import LifecycleStore

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)


def event(name: str, outcome: Outcome, minutes: int, reason: str = "") -> RenewalEvent:
    start = NOW + dt.timedelta(minutes=minutes)
    return RenewalEvent(certificate=name, source="ca", outcome=outcome, started_at=start,
                        finished_at=start + dt.timedelta(seconds=3), reason=reason, old_sha256="a" * 64,
                        new_sha256="b" * 64, new_not_after=NOW + dt.timedelta(days=30),
                        endpoints=("127.0.0.1:8443",), steps=(("obtain", 12.5), ("deploy", 3.0)))


def test_history_and_latest_per_certificate(store: Store) -> None:
    history = LifecycleStore(store)
    first = history.record(event("www", Outcome.VERIFIED, 0))
    assert first.id is not None and first.steps == (("obtain", 12.5), ("deploy", 3.0))
    assert first.started_at == NOW and first.new_not_after == NOW + dt.timedelta(days=30)
    history.record(event("www", Outcome.ROLLED_BACK, 10, "reload failed: nginx -t"))
    history.record(event("api", Outcome.FAILED, 5, "obtain: refused"))
    latest = history.latest()
    assert {name: e.outcome for name, e in latest.items()} == {"www": Outcome.ROLLED_BACK, "api": Outcome.FAILED}
    assert latest["www"].reason == "reload failed: nginx -t" and latest["www"].endpoints == ("127.0.0.1:8443",)
    assert [e.outcome for e in history.history("www")] == [Outcome.ROLLED_BACK, Outcome.VERIFIED]
    assert len(history.history(limit=2)) == 2
    assert latest["www"].stage == "deploy"
