"""Retention: fold old observation history into hourly and daily rows, and delete what is past keeping.

History must never grow without bound, and must never lie: a folded row carries how many probes it stands
for and how many succeeded, one row is kept per distinct outcome (success and presented chain) per bucket,
so "when did the certificate change" and "what was the success rate" both survive. Only whole buckets
(hours, days) strictly before the cutoff are folded, so a second pass never splits a bucket. Work is
committed one batch of endpoints at a time: a pass can be interrupted at any point and simply run again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from tlsward.model.inventory import PruneReport, RetentionPolicy
from tlsward.storage.tables import Observation

ENDPOINTS_PER_BATCH = 200


@dataclass
class _Group:
    keep_id: int
    keep_time: dt.datetime
    samples: int
    successes: int
    others: list[int]


def _floor(moment: dt.datetime, unit: str) -> dt.datetime:
    moment = moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0) if unit == "day" else moment


def prune(transaction: Callable[[], AbstractContextManager[Session]], policy: RetentionPolicy, now: dt.datetime,
          refresh_state: Callable[[Session, Sequence[int] | None], None], *, dry_run: bool = False) -> PruneReport:
    """One retention pass. ``transaction`` opens a write transaction (the store's)."""
    expired_before = now - dt.timedelta(days=policy.daily_days)
    with transaction() as session:
        expired = session.scalar(select(func.count()).select_from(Observation)
                                 .where(Observation.observed_at < expired_before)) or 0
        if not dry_run:
            session.execute(delete(Observation).where(Observation.observed_at < expired_before))
    # Disjoint ranges, oldest first: [expired, day cutoff) folds into days, [day cutoff, hour cutoff) into hours.
    day_cutoff = _floor(now - dt.timedelta(days=policy.hourly_days), "day")
    hour_cutoff = max(_floor(now - dt.timedelta(days=policy.raw_days), "hour"), day_cutoff)
    daily = _fold(transaction, ("raw", "hour"), "day", day_cutoff, expired_before, dry_run)
    hourly = _fold(transaction, ("raw",), "hour", hour_cutoff, day_cutoff, dry_run)
    with transaction() as session:
        kept = session.scalar(select(func.count()).select_from(Observation)) or 0
        if not dry_run and (expired or hourly or daily):
            refresh_state(session, None)   # the newest rows may have been folded into others or deleted
    if dry_run:
        kept -= expired + hourly + daily
    return PruneReport(deleted_expired=expired, folded_hourly=hourly, folded_daily=daily, kept=kept)


def _fold(transaction: Callable[[], AbstractContextManager[Session]], sources: Sequence[str], unit: str,
          before: dt.datetime, not_before: dt.datetime, dry_run: bool) -> int:
    """Fold rows of ``sources`` resolutions older than ``before`` into one row per (endpoint, bucket, outcome)."""
    with transaction() as session:
        endpoint_ids = list(session.scalars(
            select(Observation.endpoint_id).distinct()
            .where(Observation.resolution.in_(sources), Observation.observed_at < before,
                   Observation.observed_at >= not_before).order_by(Observation.endpoint_id)))
    folded = 0
    for batch in _batches(endpoint_ids, ENDPOINTS_PER_BATCH):
        with transaction() as session:
            rows = session.execute(
                select(Observation.id, Observation.observed_at, Observation.endpoint_id, Observation.success,
                       Observation.chain, Observation.samples, Observation.successes)
                .where(Observation.endpoint_id.in_(batch), Observation.resolution.in_(sources),
                       Observation.observed_at < before, Observation.observed_at >= not_before)
                .order_by(Observation.endpoint_id, Observation.observed_at, Observation.id))
            groups: dict[tuple[object, ...], _Group] = {}
            for row_id, observed_at, endpoint_id, success, chain, samples, successes in rows:
                key = (endpoint_id, _floor(observed_at, unit), bool(success), tuple(chain or ()))
                group = groups.get(key)
                if group is None:
                    groups[key] = _Group(row_id, observed_at, samples, successes, [])
                    continue
                group.samples += samples
                group.successes += successes
                group.others.append(group.keep_id)      # the newest row of the bucket survives
                group.keep_id, group.keep_time = row_id, observed_at
            doomed = [row_id for group in groups.values() for row_id in group.others]
            folded += len(doomed)
            if dry_run:
                continue
            for group in groups.values():
                session.execute(update(Observation).where(Observation.id == group.keep_id).values(
                    samples=group.samples, successes=group.successes, resolution=unit))
            for chunk in _batches(doomed, 5000):
                session.execute(delete(Observation).where(Observation.id.in_(chunk)))
    return folded


def _batches(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
