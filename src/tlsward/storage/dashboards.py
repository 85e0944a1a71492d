"""The queries behind the dashboards of ``tlsward serve``: a fixed number of set-based statements per page,
whatever the size of the inventory and its history.

- Current state (:func:`health_summary`, :func:`expiry_counts`, :func:`group_health`) reads one row per
  endpoint through the current-state columns the store keeps on it (``last_observation_id``, ``last_success``,
  ``leaf_sha256``, ``leaf_not_after``): primary-key joins, never a search of history.
- History (:func:`day_rollups`) is summed per UTC day. A 30-day window over a million observations costs
  ~0.6 s on SQLite however it is grouped (one sequential pass), so :class:`RollupCache` keeps the days that
  are over (their sums no longer change: retention folds rows but keeps their ``samples`` and ``successes``)
  and reads only the current day on each request, through ``ix_observation_resolution_time``.
- The inventory view (:func:`inventory_page`) pages with keyset cursors on indexed columns, so the last page
  of 100,000 endpoints costs what the first does; :func:`iter_inventory` streams every matching row in pages
  for the CSV export.
- What changed (:func:`leaf_changes`) starts from the sightings (a leaf first presented, or two leaves
  presented, in the window) and reads history only for those endpoints.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Text, and_, case, func, or_, select, type_coerce
from sqlalchemy.exc import SQLAlchemyError

from tlsward.model.alerts import AlertRecord
from tlsward.model.dashboards import (
    EXPIRY_EDGES,
    DayRollup,
    ExpiryBucket,
    ExpiryCounts,
    GroupHealth,
    HealthSummary,
    InventoryPage,
    InventoryQuery,
    InventoryRow,
    LeafChange,
)
from tlsward.model.errors import StorageError, UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import CertificateRecord
from tlsward.model.slo import GroupBy
from tlsward.storage.alerts import _record as _alert_record
from tlsward.storage.store import Store, _first_line
from tlsward.storage.tables import AlertRow, Certificate, Endpoint, Observation, Sighting

RESOLUTIONS = ("raw", "hour", "day")      # every value of observation.resolution (retention writes no other)
NARROW_DAYS = 3                           # windows up to this long are read through the time index
CHANGES_LIMIT = 200                       # endpoints examined for leaf changes in one window
_SEVERITIES = {int(severity): severity for severity in Severity}


def _utc_day(moment: dt.datetime) -> dt.date:
    return moment.astimezone(dt.UTC).date()


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _storage_error(store: Store, exc: SQLAlchemyError) -> StorageError:
    return StorageError(f"{store.url}: {_first_line(exc)}")


# -- current state -------------------------------------------------------------------------------------------


def health_summary(store: Store) -> HealthSummary:
    """Every endpoint by the outcome of its newest probe, in one grouped query."""
    high = int(Severity.HIGH)
    query = (select(Endpoint.last_observation_id.is_(None).label("unprobed"), Endpoint.last_success,
                    case((Observation.worst_severity >= high, 1), else_=0).label("bad"), func.count())
             .select_from(Endpoint).outerjoin(Observation, Observation.id == Endpoint.last_observation_id)
             .group_by("unprobed", Endpoint.last_success, "bad"))
    counts = {"endpoints": 0, "healthy": 0, "degraded": 0, "failing": 0, "unprobed": 0}
    try:
        with store.engine.connect() as connection:
            for unprobed, success, bad, n in connection.execute(query):
                counts["endpoints"] += n
                if unprobed:
                    counts["unprobed"] += n
                elif not success:
                    counts["failing"] += n
                elif bad:
                    counts["degraded"] += n
                else:
                    counts["healthy"] += n
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return HealthSummary(**counts)


def expiry_counts(store: Store, now: dt.datetime, within: Sequence[int] = (7, 14, 30)) -> ExpiryCounts:
    """Endpoints and distinct leaves by days left (the leaf each endpoint last presented). A certificate has
    one expiry date, so it falls in exactly one bucket and the cumulative counts are sums of buckets."""
    edges = [0, *EXPIRY_EDGES]
    bucket = case(*((Endpoint.leaf_not_after <= now + dt.timedelta(days=edge), index)
                    for index, edge in enumerate(edges)), else_=len(edges))
    query = (select(bucket.label("bucket"), func.count(), func.count(Endpoint.leaf_sha256.distinct()))
             .where(Endpoint.leaf_not_after.is_not(None)).group_by("bucket"))
    try:
        with store.engine.connect() as connection:
            found = {int(index): (int(n), int(certs)) for index, n, certs in connection.execute(query)}
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    buckets = []
    for index in range(len(edges) + 1):
        endpoints, certificates = found.get(index, (0, 0))
        if index == 0:
            label, low, high = "expired", None, 0
        elif index == len(edges):
            label, low, high = f"> {edges[-1]} d", edges[-1], None
        else:
            label, low, high = f"{edges[index - 1]}-{edges[index]} d", edges[index - 1], edges[index]
        buckets.append(ExpiryBucket(label, low, high, endpoints, certificates))
    cumulative = []
    for days in within:
        inside = [b for b in buckets if b.high is not None and b.high <= days]
        if any(edge == days for edge in edges):
            cumulative.append((days, sum(b.endpoints for b in inside), sum(b.certificates for b in inside)))
        else:   # not on a bucket edge: count it directly
            cumulative.append((days, *_within(store, now, days)))
    return ExpiryCounts(tuple(buckets), tuple(cumulative))


def _within(store: Store, now: dt.datetime, days: int) -> tuple[int, int]:
    query = select(func.count(), func.count(Endpoint.leaf_sha256.distinct())).where(
        Endpoint.leaf_not_after <= now + dt.timedelta(days=days))
    with store.engine.connect() as connection:
        endpoints, certificates = connection.execute(query).one()
    return int(endpoints), int(certificates)


def group_health(store: Store, by: GroupBy, now: dt.datetime) -> list[GroupHealth]:
    """Each owner's (or team's) endpoints by their state now: failing, degraded (high or critical findings),
    leaf expiring within 30 days. Window SLIs are added by the caller from :class:`RollupCache`."""
    if by not in ("owner", "team"):
        raise UsageError(f"by {by!r}: expected owner or team")
    key = Endpoint.owner if by == "owner" else Endpoint.team
    failing = case((Endpoint.last_success.is_(False), 1), else_=0)
    degraded = case((and_(Endpoint.last_success.is_(True), Observation.worst_severity >= int(Severity.HIGH)), 1),
                    else_=0)
    expiring = case((Endpoint.leaf_not_after <= now + dt.timedelta(days=30), 1), else_=0)
    query = (select(key, func.count(), func.sum(failing), func.sum(degraded), func.sum(expiring))
             .select_from(Endpoint).outerjoin(Observation, Observation.id == Endpoint.last_observation_id)
             .group_by(key))
    try:
        with store.engine.connect() as connection:
            rows = list(connection.execute(query))
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return [GroupHealth(name, int(n), int(bad or 0), int(worse or 0), int(soon or 0))
            for name, n, bad, worse, soon in rows]


# -- history, per day ----------------------------------------------------------------------------------------


def _day_of(dialect: str) -> Any:
    """The UTC day of ``observed_at`` as ``YYYY-MM-DD`` text. SQLite stores naive UTC text, so its first ten
    characters are the day; PostgreSQL converts the timestamptz to UTC first."""
    if dialect == "sqlite":
        return func.substr(type_coerce(Observation.observed_at, Text), 1, 10)
    return func.to_char(func.timezone("UTC", Observation.observed_at), "YYYY-MM-DD")


def _between(since: dt.datetime, until: dt.datetime) -> Any:
    """``since <= observed_at < until``; short windows also name every resolution, which lets SQLite (and
    PostgreSQL) range-scan ``ix_observation_resolution_time`` instead of reading the whole table. Long windows
    read the table sequentially: faster than visiting most of it in index order."""
    window = and_(Observation.observed_at >= since, Observation.observed_at < until)
    if until - since <= dt.timedelta(days=NARROW_DAYS):
        return and_(Observation.resolution.in_(RESOLUTIONS), window)
    return window


def day_rollups(store: Store, first: dt.date, last: dt.date) -> list[DayRollup]:
    """Every UTC day from ``first`` to ``last`` (both included), with zeros for days without probes: two
    grouped passes over the window (by day and version; by day, owner and team)."""
    if last < first:
        return []
    since, until = _midnight(first), _midnight(last + dt.timedelta(days=1))
    day = _day_of(store.engine.dialect.name).label("day")
    by_version = (select(day, Observation.version, func.sum(Observation.samples), func.sum(Observation.successes))
                  .where(_between(since, until)).group_by("day", Observation.version))
    by_group = (select(day, Endpoint.owner, Endpoint.team, func.sum(Observation.samples),
                       func.sum(Observation.successes))
                .join(Endpoint, Endpoint.id == Observation.endpoint_id)
                .where(_between(since, until)).group_by("day", Endpoint.owner, Endpoint.team))
    totals: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    versions: dict[dt.date, dict[str, int]] = defaultdict(dict)
    groups: dict[dt.date, list[tuple[str | None, str | None, int, int]]] = defaultdict(list)
    try:
        with store.engine.connect() as connection:
            for text_, version, probes, successes in connection.execute(by_version):
                when = dt.date.fromisoformat(text_)
                totals[when][0] += int(probes)
                totals[when][1] += int(successes)
                if version is not None:
                    versions[when][version] = versions[when].get(version, 0) + int(probes)
            for text_, owner, team, probes, successes in connection.execute(by_group):
                groups[dt.date.fromisoformat(text_)].append((owner, team, int(probes), int(successes)))
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    days = []
    current = first
    while current <= last:
        probes, successes = totals.get(current, (0, 0))
        days.append(DayRollup(current, probes, successes,
                              tuple(sorted(versions.get(current, {}).items(), key=lambda kv: (-kv[1], kv[0]))),
                              tuple(sorted(groups.get(current, []), key=lambda g: (g[0] or "", g[1] or "")))))
        current += dt.timedelta(days=1)
    return days


class RollupCache:
    """:func:`day_rollups` for a window ending today. Days that are over are computed once and kept; the
    current day is read on every call (one day is a range scan of the time index: milliseconds).

    A kept day older than ``ttl`` is still served, and recomputed in a background thread (so late writes,
    retention and owner changes show up without a request ever paying for a whole window); only days never
    computed are computed while the caller waits. :meth:`warm` starts that computation in the background
    ahead of the first request. Thread-safe: concurrent requests that miss wait for one computation."""

    def __init__(self, store: Store, ttl: dt.timedelta = dt.timedelta(minutes=30)) -> None:
        self.store = store
        self.ttl = ttl
        self._days: dict[dt.date, tuple[dt.datetime, DayRollup]] = {}
        self._lock = threading.Lock()          # guards _days and _refreshing
        self._compute = threading.Lock()       # one computation of past days at a time
        self._refreshing = False

    def window(self, now: dt.datetime, days: int) -> list[DayRollup]:
        """The ``days`` UTC days ending with today's, oldest first."""
        if days < 1:
            raise UsageError(f"a window of {days} days is empty")
        today = _utc_day(now)
        past = [today - dt.timedelta(days=days - 1 - i) for i in range(days - 1)]
        if self._missing(past):
            with self._compute:
                missing = self._missing(past)
                if missing:
                    self._store(day_rollups(self.store, missing[0], missing[-1]), now)
        with self._lock:
            found = [self._days[day] for day in past]
            stale = [day for day, (computed, _) in zip(past, found, strict=True) if now - computed > self.ttl]
            for day in [day for day in self._days if day < today - dt.timedelta(days=400)]:
                del self._days[day]
        if stale:
            self._background(stale[0], stale[-1], now)
        return [*(rollup for _, rollup in found), *day_rollups(self.store, today, today)]

    def warm(self, now: dt.datetime, days: int) -> None:
        """Compute the past days of a ``days`` window in a background thread, unless already kept."""
        today = _utc_day(now)
        missing = self._missing([today - dt.timedelta(days=days - 1 - i) for i in range(days - 1)])
        if missing:
            self._background(missing[0], missing[-1], now)

    def _missing(self, days: Sequence[dt.date]) -> list[dt.date]:
        with self._lock:
            return [day for day in days if day not in self._days]

    def _store(self, rollups: Sequence[DayRollup], now: dt.datetime) -> None:
        with self._lock:
            for rollup in rollups:
                self._days[rollup.day] = (now, rollup)

    def _background(self, first: dt.date, last: dt.date, now: dt.datetime) -> None:
        with self._lock:
            if self._refreshing:
                return
            self._refreshing = True

        def run() -> None:
            try:
                with self._compute:
                    self._store(day_rollups(self.store, first, last), now)
            except Exception:   # a background refresh must never take the process down; the next one retries
                logging.getLogger("tlsward.dashboards").exception("refreshing the daily rollups failed")
            finally:
                with self._lock:
                    self._refreshing = False

        threading.Thread(target=run, name="tlsward-rollups", daemon=True).start()


# -- the inventory view --------------------------------------------------------------------------------------


def encode_cursor(value: dt.datetime | str | None, target: str) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, dt.datetime) else value, target])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[dt.datetime | str | None, str]:
    """The (sort value, target) a cursor names. Raises UsageError for anything :func:`encode_cursor` did not
    write for this sort."""
    try:
        value, target = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(target, str) or not (value is None or isinstance(value, str)):
            raise ValueError(cursor)
        if sort == "target":
            return target, target
        moment = dt.datetime.fromisoformat(value) if value is not None else None
        if moment is not None and moment.tzinfo is None:
            raise ValueError(cursor)
        return moment, target
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise UsageError(f"cursor {cursor[:40]!r} is not one this page wrote (start again from the first page)")\
            from None


def _page_columns() -> tuple[Any, Any, Any]:
    observation = Observation.__table__.alias("last")
    leaf = Certificate.__table__.alias("leaf")   # an alias: the issuer filter's subquery names Certificate
    query = (select(Endpoint.target, Endpoint.owner, Endpoint.team, Endpoint.environment, Endpoint.tags,
                    Endpoint.enabled, observation.c.observed_at, observation.c.success, observation.c.failure_kind,
                    observation.c.version, observation.c.finding_ids, observation.c.worst_severity,
                    Endpoint.leaf_sha256, leaf.c.subject, leaf.c.issuer, Endpoint.leaf_not_after)
             .select_from(Endpoint)
             .outerjoin(observation, observation.c.id == Endpoint.last_observation_id)
             .outerjoin(leaf, leaf.c.sha256 == Endpoint.leaf_sha256))
    return query, observation, leaf


def _filter(store: Store, query: Any, spec: InventoryQuery, now: dt.datetime) -> Any:
    query = store._filtered(query, owner=spec.owner, team=spec.team, tag=spec.tag, issuer=spec.issuer,
                            days_left_max=spec.days_left, failing=spec.failing, now=now)
    if spec.q:
        needle = spec.q.strip()
        query = query.where(or_(Endpoint.target.icontains(needle, autoescape=True),
                                Endpoint.owner.icontains(needle, autoescape=True),
                                Endpoint.team.icontains(needle, autoescape=True)))
    return query


def _row(row: Any) -> InventoryRow:
    (target, owner, team, environment, tags, enabled, observed_at, success, failure_kind, version, finding_ids,
     worst, leaf_sha256, leaf_subject, leaf_issuer, leaf_not_after) = row
    return InventoryRow(target, owner, team, environment, tuple(tags or ()), bool(enabled), observed_at,
                        None if success is None else bool(success), failure_kind, version, tuple(finding_ids or ()),
                        _SEVERITIES.get(worst) if worst is not None else None, leaf_sha256, leaf_subject,
                        leaf_issuer, leaf_not_after)


def _sort_value(row: InventoryRow, sort: str) -> dt.datetime | str | None:
    if sort == "target":
        return row.target
    return row.leaf_not_after if sort == "days_left" else row.observed_at


def _fetch(store: Store, spec: InventoryQuery, now: dt.datetime, cursor: tuple[Any, str] | None, forward: bool,
           limit: int) -> list[InventoryRow]:
    """Up to ``limit`` rows strictly after (``forward``) or before the cursor position, in that walking
    direction. The order is (sort value, target), rows without a value (never probed, no leaf) last in either
    direction: two index-friendly phases, values then nulls, instead of one sort over the whole table."""
    base, observation, _ = _page_columns()
    base = _filter(store, base, spec, now)
    column = {"target": Endpoint.target, "days_left": Endpoint.leaf_not_after,
              "last_probe": observation.c.observed_at}[spec.sort]
    ascending = forward != spec.descending           # the direction of this walk over the values
    target_ascending = ascending

    def ordered(query: Any, by_value: bool) -> Any:
        keys = ([column] if by_value else []) + [Endpoint.target]
        return query.order_by(*(key.asc() if ascending else key.desc() for key in keys))

    def after_target(target: str) -> Any:
        return Endpoint.target > target if target_ascending else Endpoint.target < target

    phases: list[str] = ["values", "nulls"] if forward else ["nulls", "values"]
    if spec.sort == "target":
        phases = ["values"]
    start = 0 if cursor is None else phases.index("nulls" if cursor[0] is None else "values")
    rows: list[InventoryRow] = []
    with store.engine.connect() as connection:
        for index, phase in enumerate(phases[start:], start):
            query = base
            if phase == "values":
                if spec.sort != "target":
                    query = query.where(column.is_not(None))
                if cursor is not None and index == start:
                    value, target = cursor
                    if spec.sort == "target":
                        query = query.where(after_target(target))
                    else:
                        beyond = column > value if ascending else column < value
                        query = query.where(or_(beyond, and_(column == value, after_target(target))))
                query = ordered(query, spec.sort != "target")
            else:
                query = query.where(column.is_(None))
                if cursor is not None and index == start:
                    query = query.where(after_target(cursor[1]))
                query = ordered(query, False)
            rows.extend(_row(row) for row in connection.execute(query.limit(limit - len(rows))))
            if len(rows) >= limit:
                break
    return rows


def inventory_page(store: Store, spec: InventoryQuery, now: dt.datetime, *, after: str | None = None,
                   before: str | None = None, limit: int = 50) -> InventoryPage:
    """One page of the inventory view after the cursor ``after`` (or before ``before``), and the count of
    every endpoint matching the filters. Raises UsageError for a cursor it did not write."""
    if limit < 1:
        raise UsageError(f"limit {limit}: expected at least 1")
    position = after if after is not None else before
    cursor = decode_cursor(position, spec.sort) if position is not None else None
    forward = before is None
    try:
        rows = _fetch(store, spec, now, cursor, forward, limit + 1)
        count = _filter(store, select(func.count()).select_from(Endpoint), spec, now)
        with store.engine.connect() as connection:
            total = int(connection.execute(count).scalar() or 0)
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    more = len(rows) > limit
    rows = rows[:limit]
    if not forward:
        rows.reverse()
    if not rows:
        return InventoryPage((), total)
    first = encode_cursor(_sort_value(rows[0], spec.sort), rows[0].target)
    last = encode_cursor(_sort_value(rows[-1], spec.sort), rows[-1].target)
    if forward:
        return InventoryPage(tuple(rows), total, last if more else None, first if cursor is not None else None)
    return InventoryPage(tuple(rows), total, last, first if more else None)


def iter_inventory(store: Store, spec: InventoryQuery, now: dt.datetime, batch: int = 2000) -> Iterator[InventoryRow]:
    """Every endpoint matching ``spec``, in its order, read a page at a time (memory stays flat at any size;
    each page is its own short read, so writers are never held up for the whole export)."""
    cursor: tuple[Any, str] | None = None
    while True:
        try:
            rows = _fetch(store, spec, now, cursor, True, batch)
        except SQLAlchemyError as exc:
            raise _storage_error(store, exc) from exc
        yield from rows
        if len(rows) < batch:
            return
        cursor = (_sort_value(rows[-1], spec.sort), rows[-1].target)


def filter_choices(store: Store, limit: int = 500) -> tuple[list[str], list[str]]:
    """The owners and teams in the inventory (for the filter lists), each at most ``limit``."""
    try:
        with store.engine.connect() as connection:
            owners = [str(value) for (value,) in connection.execute(
                select(Endpoint.owner).where(Endpoint.owner.is_not(None)).distinct().order_by(Endpoint.owner)
                .limit(limit))]
            teams = [str(value) for (value,) in connection.execute(
                select(Endpoint.team).where(Endpoint.team.is_not(None)).distinct().order_by(Endpoint.team)
                .limit(limit))]
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return owners, teams


# -- certificates, leaves and alerts -------------------------------------------------------------------------


def certificates_by_sha(store: Store, fingerprints: Sequence[str]) -> dict[str, CertificateRecord]:
    """The stored certificates with these fingerprints (without their DER), by fingerprint."""
    wanted = sorted(set(fingerprints))
    found: dict[str, CertificateRecord] = {}
    columns = [column for column in Certificate.__table__.c if column.name != "der"]
    try:
        with store.engine.connect() as connection:
            for start in range(0, len(wanted), 1000):
                for row in connection.execute(select(*columns).where(
                        Certificate.sha256.in_(wanted[start:start + 1000]))):
                    found[row.sha256] = CertificateRecord(
                        sha256=row.sha256, subject=row.subject, issuer=row.issuer, serial=row.serial,
                        not_before=row.not_before, not_after=row.not_after, sans=tuple(row.sans or ()),
                        key_type=row.key_type, key_bits=row.key_bits, signature_algorithm=row.signature_algorithm)
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return found


def current_leaves(store: Store, targets: Sequence[str]) -> dict[str, str]:
    """The leaf fingerprint each of these endpoints last presented (endpoints without one are absent)."""
    wanted = sorted(set(targets))
    found: dict[str, str] = {}
    try:
        with store.engine.connect() as connection:
            for start in range(0, len(wanted), 1000):
                found.update((target, str(sha)) for target, sha in connection.execute(
                    select(Endpoint.target, Endpoint.leaf_sha256).where(
                        Endpoint.target.in_(wanted[start:start + 1000]), Endpoint.leaf_sha256.is_not(None))))
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return found


def presented_chain(store: Store, sha256: str) -> list[CertificateRecord]:
    """The chain this certificate was last presented in, leaf first: the newest successful observation, among
    the endpoints that served it, whose chain contains it. When no endpoint presents it (a file, or a chain
    since replaced), the chain is rebuilt by issuer names from the stored certificates, up to the root."""
    try:
        with store.engine.connect() as connection:
            chains = connection.execute(
                select(Observation.chain)
                .join(Endpoint, Endpoint.last_success_id == Observation.id)
                .join(Sighting, Sighting.endpoint_id == Endpoint.id)
                .where(Sighting.certificate_sha256 == sha256)
                .order_by(Observation.observed_at.desc()).limit(20)).scalars().all()
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    chain = next((list(c) for c in chains if c and sha256 in c), None)
    if chain is not None:
        found = certificates_by_sha(store, chain)
        return [found[sha] for sha in chain if sha in found]
    start = certificates_by_sha(store, [sha256]).get(sha256)
    if start is None:
        return []
    path = [start]
    with store.engine.connect() as connection:
        while len(path) < 8 and path[-1].issuer != path[-1].subject:
            parent = connection.execute(select(Certificate.sha256).where(Certificate.subject == path[-1].issuer)
                                        .order_by(Certificate.not_after.desc()).limit(1)).scalar()
            if parent is None or any(cert.sha256 == parent for cert in path):
                break
            path.append(certificates_by_sha(store, [parent])[parent])
    return path


def certificate_der(store: Store, sha256: str) -> bytes | None:
    """The DER bytes stored for a certificate (empty when only its facts were recorded); None when unknown."""
    try:
        with store.engine.connect() as connection:
            der: bytes | None = connection.execute(
                select(Certificate.der).where(Certificate.sha256 == sha256)).scalar()
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    return der


def alert_changes(store: Store, since: dt.datetime, limit: int = 200) -> tuple[list[AlertRecord], list[AlertRecord]]:
    """Alerts that started, and alerts that resolved, at or after ``since``; newest first."""
    with store._transaction() as session:
        started = [_alert_record(row) for row in session.scalars(
            select(AlertRow).where(AlertRow.started_at >= since)
            .order_by(AlertRow.started_at.desc(), AlertRow.id.desc()).limit(limit))]
        resolved = [_alert_record(row) for row in session.scalars(
            select(AlertRow).where(AlertRow.resolved_at >= since)
            .order_by(AlertRow.resolved_at.desc(), AlertRow.id.desc()).limit(limit))]
    return started, resolved


def alerts_about(store: Store, sha256: str, targets: Sequence[str], limit: int = 100) -> list[AlertRecord]:
    """Alerts (firing first, then newest) keyed by this certificate or covering an endpoint that serves it."""
    wanted = set(targets)
    with store._transaction() as session:
        rows = session.scalars(select(AlertRow).order_by(AlertRow.status, AlertRow.updated_at.desc())
                               .limit(5000)).all()
        records = [_alert_record(row) for row in rows
                   if sha256 in row.key or wanted.intersection(row.endpoints or ())]
    return records[:limit]


# -- what changed --------------------------------------------------------------------------------------------


def leaf_changes(store: Store, since: dt.datetime, limit: int = CHANGES_LIMIT) -> list[LeafChange]:
    """Every time an endpoint started presenting another leaf at or after ``since`` (and the first leaf of
    endpoints seen for the first time), newest first.

    Candidates come from the sightings at chain position 0: an endpoint whose leaf was first seen in the
    window, or that presented two different leaves in it. Only their history is read: the last successful
    chain before the window, then each successful chain in it, compared in order."""
    try:
        with store.engine.connect() as connection:
            recent = (select(Sighting.endpoint_id).where(Sighting.position == 0, Sighting.endpoint_id.is_not(None),
                                                         Sighting.first_seen >= since))
            two = (select(Sighting.endpoint_id).where(Sighting.position == 0, Sighting.endpoint_id.is_not(None),
                                                      Sighting.last_seen >= since)
                   .group_by(Sighting.endpoint_id).having(func.count() > 1))
            candidates = sorted({int(endpoint_id) for query in (recent, two)
                                 for endpoint_id in connection.execute(query).scalars() if endpoint_id is not None})
            candidates = candidates[:limit]
            if not candidates:
                return []
            targets = dict(connection.execute(select(Endpoint.id, Endpoint.target)
                                              .where(Endpoint.id.in_(candidates))).all())
            before: dict[int, str | None] = {}
            for endpoint_id in candidates:
                chain = connection.execute(
                    select(Observation.chain).where(Observation.endpoint_id == endpoint_id,
                                                    Observation.success.is_(True), Observation.observed_at < since)
                    .order_by(Observation.observed_at.desc(), Observation.id.desc()).limit(1)).scalar()
                before[endpoint_id] = chain[0] if chain else None
            rows = connection.execute(
                select(Observation.endpoint_id, Observation.observed_at, Observation.chain)
                .where(Observation.endpoint_id.in_(candidates), Observation.success.is_(True),
                       Observation.observed_at >= since)
                .order_by(Observation.endpoint_id, Observation.observed_at, Observation.id)).all()
    except SQLAlchemyError as exc:
        raise _storage_error(store, exc) from exc
    changes: list[tuple[int, dt.datetime, str, str | None]] = []
    last = dict(before)
    seen_first: set[int] = set()
    for endpoint_id, observed_at, chain in rows:
        leaf = chain[0] if chain else None
        if leaf is None:
            continue
        previous = last.get(endpoint_id)
        if previous is None and endpoint_id not in seen_first:
            changes.append((endpoint_id, observed_at, leaf, None))
        elif previous is not None and previous != leaf:
            changes.append((endpoint_id, observed_at, leaf, previous))
        seen_first.add(endpoint_id)
        last[endpoint_id] = leaf
    certificates = certificates_by_sha(store, [c[2] for c in changes] + [c[3] for c in changes if c[3]])
    found = [LeafChange(targets.get(endpoint_id, "?"), at, leaf,
                        certificates[leaf].subject if leaf in certificates else None, previous,
                        certificates[previous].subject if previous and previous in certificates else None)
             for endpoint_id, at, leaf, previous in changes]
    found.sort(key=lambda change: (change.at, change.target), reverse=True)
    return found


__all__ = ("RollupCache", "alert_changes", "alerts_about", "certificate_der", "certificates_by_sha",
           "current_leaves", "day_rollups", "decode_cursor", "encode_cursor", "expiry_counts", "filter_choices",
           "group_health", "health_summary", "inventory_page", "iter_inventory", "leaf_changes",
           "presented_chain")
