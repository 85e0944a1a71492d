"""Retention folds old history into hourly and daily rows without losing counts, and deletes what is past
keeping; a second pass changes nothing; a dry run reports the same numbers and writes nothing."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from tests.unit.storage.builders import NOW, failed_result, scan_result
from tlsward.model.errors import UsageError
from tlsward.model.inventory import ObservationRecord, RetentionPolicy
from tlsward.storage import Store

POLICY = RetentionPolicy(raw_days=2, hourly_days=5, daily_days=10)
STEP = dt.timedelta(minutes=30)
PROBES = 12 * 48   # every 30 minutes for 12 days


def _fill(store: Store) -> list[tuple[dt.datetime, bool, str]]:
    """Probes of one endpoint, oldest first: a certificate change on day 6 and a failure every 7th probe."""
    probes = []
    for i in range(PROBES):
        at = NOW - (PROBES - i) * STEP
        if i % 7 == 3:
            store.record_scan(failed_result("a.test:443", at=at))
            probes.append((at, False, ""))
        else:
            leaf = "old.a.test" if at < NOW - dt.timedelta(days=6) else "a.test"
            result = scan_result("a.test:443", leaf=leaf, at=at)
            store.record_scan(result)
            probes.append((at, True, result.chain[0].sha256))
    return probes


def _history(store: Store) -> list[ObservationRecord]:
    return store.observations("a.test:443", limit=100_000)


def test_history_is_folded_by_age_and_counts_survive(store: Store) -> None:
    probes = _fill(store)
    before = _history(store)
    assert len(before) == PROBES

    dry = store.prune(POLICY, now=NOW, dry_run=True)
    assert _history(store) == before, "a dry run wrote something"
    report = store.prune(POLICY, now=NOW)
    assert report == dry
    after = _history(store)
    assert report.kept == len(after) and report.deleted_expired > 0 and report.folded_hourly > 0 \
        and report.folded_daily > 0

    expired_before = NOW - dt.timedelta(days=10)
    kept_probes = [p for p in probes if p[0] >= expired_before]
    assert all(o.observed_at >= expired_before for o in after)
    assert sum(o.samples for o in after) == len(kept_probes)
    assert sum(o.successes for o in after) == sum(1 for p in kept_probes if p[1])
    assert report.deleted_expired == PROBES - len(kept_probes)

    hour_cutoff = (NOW - dt.timedelta(days=2)).replace(minute=0, second=0, microsecond=0)
    day_cutoff = (NOW - dt.timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
    recent = [o for o in after if o.observed_at >= hour_cutoff]
    assert all(o.resolution == "raw" and o.samples == 1 for o in recent)
    assert len(recent) == sum(1 for p in probes if p[0] >= hour_cutoff)
    hourly = [o for o in after if day_cutoff <= o.observed_at < hour_cutoff]
    assert hourly and all(o.resolution == "hour" for o in hourly)
    buckets = Counter((o.observed_at.replace(minute=0, second=0), o.success, o.chain) for o in hourly)
    assert max(buckets.values()) == 1, "two rows for one hour and outcome"
    daily = [o for o in after if o.observed_at < day_cutoff]
    assert daily and all(o.resolution == "day" for o in daily)
    days = Counter((o.observed_at.date(), o.success, o.chain) for o in daily)
    assert max(days.values()) == 1
    # The certificate change on day 6 is still visible at day resolution: both leaves survive.
    assert len({o.chain[0] for o in daily if o.success}) == 2

    again = store.prune(POLICY, now=NOW)
    assert (again.deleted_expired, again.folded_hourly, again.folded_daily) == (0, 0, 0)
    assert _history(store) == after


def test_a_later_pass_never_splits_a_bucket(store: Store) -> None:
    _fill(store)
    for minutes in range(0, 6 * 60, 45):   # the monitor prunes every 45 minutes for six hours
        store.prune(POLICY, now=NOW + dt.timedelta(minutes=minutes))
    hourly = [o for o in _history(store) if o.resolution == "hour"]
    buckets = Counter((o.observed_at.replace(minute=0, second=0), o.success, o.chain) for o in hourly)
    assert hourly and max(buckets.values()) == 1


@pytest.mark.parametrize(("raw", "hourly", "daily"), [(0, 1, 2), (3, 2, 10), (1, 5, 4)])
def test_inconsistent_policies_are_refused(raw: float, hourly: float, daily: float) -> None:
    with pytest.raises(UsageError, match="retention"):
        RetentionPolicy(raw_days=raw, hourly_days=hourly, daily_days=daily)
