"""The dashboard queries (``tlsward.storage.dashboards``) on both backends: current-state counts, expiry buckets
that agree with ``inventory list --days-left``, per-day rollups that agree with ``slo_report`` (before and after
retention folds the history), the rollup cache, keyset pages in every order and direction, the CSV iterator,
leaf changes, alert changes, and the certificate lookups behind the certificate page."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import pytest

from tests.unit.storage.builders import DAY, NOW, failed_result, finding, scan_result
from tlsward.model.alerts import Alert, AlertRecord, AlertStatus, Route
from tlsward.model.dashboards import InventoryQuery
from tlsward.model.errors import UsageError
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord, RetentionPolicy
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.storage import Store
from tlsward.storage import dashboards as d
from tlsward.storage.alerts import AlertStore
from tlsward.storage.reports import slo_report

HOUR = dt.timedelta(hours=1)


def record(store: Store, *results: ScanResult) -> None:
    store.record_scans([(result, None) for result in results])


def add(store: Store, target: str, *, owner: str | None = None, team: str | None = None,
        tags: tuple[str, ...] = ()) -> None:
    parsed = Target.parse(target)
    store.upsert_endpoint(EndpointRecord(target=str(parsed), host=parsed.host, port=parsed.port, owner=owner,
                                         team=team, tags=tags))


def versioned(target: str, at: dt.datetime, version: str, **kw: object) -> ScanResult:
    result = scan_result(target, at=at, **kw)   # type: ignore[arg-type]
    assert result.session is not None
    return replace(result, session=replace(result.session, version=version))


@pytest.fixture
def fleet(store: Store) -> Store:
    """Six endpoints: healthy, degraded (a high finding), failing now, never probed, expiring in 5 days, expired."""
    add(store, "ok.test:443", owner="ana", team="web")
    add(store, "degraded.test:443", owner="ana", team="web", tags=("pci",))
    add(store, "down.test:443", owner="bob", team="db")
    add(store, "never.test:443", owner="bob", team="db")
    add(store, "soon.test:443", owner="cy", team="web")
    add(store, "gone.test:443", owner="cy", team="edge")
    record(store,
           scan_result("ok.test:443", at=NOW - HOUR),
           scan_result("degraded.test:443", at=NOW - HOUR, findings=(finding("protocol.tls10", Severity.HIGH),)),
           scan_result("down.test:443", at=NOW - 2 * HOUR), failed_result("down.test:443", at=NOW - HOUR),
           scan_result("soon.test:443", at=NOW - HOUR, days_left=5,
                       findings=(finding("cert.expiring", Severity.HIGH),)),
           scan_result("gone.test:443", at=NOW - HOUR, days_left=-2,
                       findings=(finding("cert.expired", Severity.CRITICAL),)))
    return store


def test_health_summary_counts_each_endpoint_once(fleet: Store) -> None:
    health = d.health_summary(fleet)
    assert (health.endpoints, health.healthy, health.degraded, health.failing, health.unprobed) == (6, 1, 3, 1, 1)
    assert health.probed == 5 and health.healthy_pct == pytest.approx(20.0)


def test_empty_inventory(store: Store) -> None:
    health = d.health_summary(store)
    assert health.endpoints == 0 and health.healthy_pct is None
    expiry = d.expiry_counts(store, NOW)
    assert all(b.endpoints == 0 for b in expiry.buckets) and expiry.endpoints_within(30) == 0
    assert d.group_health(store, "owner", NOW) == []
    page = d.inventory_page(store, InventoryQuery(), NOW)
    assert (page.rows, page.total, page.next_cursor, page.prev_cursor) == ((), 0, None, None)
    assert d.leaf_changes(store, NOW - DAY) == []


@pytest.mark.parametrize("days", [7, 14, 30, 60, 90, 10])
def test_expiry_within_agrees_with_inventory_list(fleet: Store, days: int) -> None:
    expiry = d.expiry_counts(fleet, NOW, (days,))
    listed = fleet.endpoint_summaries(days_left_max=days, now=NOW)
    assert expiry.endpoints_within(days) == len(listed)
    assert expiry.certificates_within(days) == len({row.leaf_sha256 for row in listed})


def test_expiry_buckets_are_disjoint(fleet: Store) -> None:
    expiry = d.expiry_counts(fleet, NOW)
    counts = {bucket.label: bucket.endpoints for bucket in expiry.buckets}
    assert counts == {"expired": 1, "0-7 d": 1, "7-14 d": 0, "14-30 d": 0, "30-60 d": 0, "60-90 d": 3, "> 90 d": 0}
    assert sum(counts.values()) == 5      # the endpoint never probed has no leaf


def test_group_health(fleet: Store) -> None:
    by_owner = {g.key: g for g in d.group_health(fleet, "owner", NOW)}
    assert set(by_owner) == {"ana", "bob", "cy"}
    assert (by_owner["ana"].endpoints, by_owner["ana"].degraded, by_owner["ana"].failing) == (2, 1, 0)
    assert (by_owner["bob"].endpoints, by_owner["bob"].failing, by_owner["bob"].expiring_30d) == (2, 1, 0)
    assert (by_owner["cy"].degraded, by_owner["cy"].expiring_30d) == (2, 2)
    by_team = {g.key: g.endpoints for g in d.group_health(fleet, "team", NOW)}
    assert by_team == {"web": 3, "db": 2, "edge": 1}
    with pytest.raises(UsageError):
        d.group_health(fleet, "colour", NOW)  # type: ignore[arg-type]


def history(store: Store) -> None:
    """Three days of probes of two endpoints: TLS 1.3 and 1.2 (one failure a day on the second)."""
    add(store, "a.test:443", owner="ana", team="web")
    add(store, "b.test:443", owner="bob", team="db")
    results: list[ScanResult] = []
    midnight = NOW.replace(hour=0, minute=0)
    for day in range(3):
        for hour in range(0, 24, 6):
            at = midnight - (day + 1) * DAY + hour * HOUR + dt.timedelta(minutes=30)
            results.append(versioned("a.test:443", at, "TLSv1.3"))
            results.append(failed_result("b.test:443", at=at) if hour == 0 else versioned("b.test:443", at, "TLSv1.2"))
    record(store, *results)


def test_day_rollups_sum_probes_per_day_version_and_group(store: Store) -> None:
    history(store)
    first, last = (NOW - 4 * DAY).date(), NOW.date()
    days = d.day_rollups(store, first, last)
    assert [day.day for day in days] == [first + dt.timedelta(days=i) for i in range(5)]
    assert days[0].probes == 0 and days[-1].probes == 0        # no probe: a zero day, not a missing one
    full = [day for day in days if day.probes]
    assert len(full) == 3 and all((day.probes, day.successes) == (8, 7) for day in full)
    assert all(dict(day.versions) == {"TLSv1.3": 4, "TLSv1.2": 3} for day in full)
    assert all(set(day.groups) == {("ana", "web", 4, 4), ("bob", "db", 4, 3)} for day in full)
    assert d.day_rollups(store, last, first) == []


def test_rollups_agree_with_slo_report_before_and_after_retention(store: Store) -> None:
    history(store)
    first = (NOW - 3 * DAY).date()
    since = dt.datetime.combine(first, dt.time(), tzinfo=dt.UTC)
    until = dt.datetime.combine(NOW.date() + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)

    def totals() -> tuple[int, int]:
        days = d.day_rollups(store, first, NOW.date())
        return sum(day.probes for day in days), sum(day.successes for day in days)

    report = slo_report(store, since, until)
    assert totals() == (report.overall.probes, report.overall.successes) == (24, 21)
    store.prune(RetentionPolicy(raw_days=0.5, hourly_days=1, daily_days=30), now=NOW)
    assert store.count_observations() < 24
    report = slo_report(store, since, until)
    assert totals() == (report.overall.probes, report.overall.successes) == (24, 21)


def test_rollup_cache_keeps_past_days_and_reads_today(store: Store) -> None:
    history(store)
    cache = d.RollupCache(store, ttl=dt.timedelta(hours=1))
    before = cache.window(NOW, 4)
    assert [day.probes for day in before] == [8, 8, 8, 0]
    assert before == d.day_rollups(store, (NOW - 3 * DAY).date(), NOW.date())
    # A late write into a kept day is not read again before the ttl; today's is read at once.
    record(store, versioned("a.test:443", NOW - 2 * DAY, "TLSv1.3"), versioned("a.test:443", NOW - HOUR, "TLSv1.3"))
    after = cache.window(NOW + dt.timedelta(minutes=5), 4)
    assert [day.probes for day in after] == [8, 8, 8, 1]
    # Past the ttl, the kept days are served once more and recomputed in the background.
    later = NOW + 2 * HOUR
    assert [day.probes for day in cache.window(later, 4)] == [8, 8, 8, 1]
    deadline = time.monotonic() + 10
    while [day.probes for day in cache.window(later, 4)] != [8, 9, 8, 1]:
        assert time.monotonic() < deadline, "the background refresh never landed"
        time.sleep(0.05)
    with pytest.raises(UsageError):
        cache.window(NOW, 0)


def test_rollup_cache_warm_computes_in_the_background(store: Store) -> None:
    history(store)
    cache = d.RollupCache(store)
    cache.warm(NOW, 4)
    deadline = time.monotonic() + 10
    while cache._missing([(NOW - DAY).date()]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert [day.probes for day in cache.window(NOW, 4)] == [8, 8, 8, 0]


def page_through(store: Store, spec: InventoryQuery, limit: int) -> list[str]:
    """Every target, walking the pages forward and then back again (both walks must agree)."""
    forward: list[list[str]] = []
    page = d.inventory_page(store, spec, NOW, limit=limit)
    forward.append([row.target for row in page.rows])
    assert page.prev_cursor is None
    while page.next_cursor is not None:
        page = d.inventory_page(store, spec, NOW, after=page.next_cursor, limit=limit)
        forward.append([row.target for row in page.rows])
    backward = [[row.target for row in page.rows]]
    while page.prev_cursor is not None:
        page = d.inventory_page(store, spec, NOW, before=page.prev_cursor, limit=limit)
        backward.append([row.target for row in page.rows])
    assert backward[::-1] == forward
    assert all(0 < len(chunk) <= limit for chunk in forward)
    return [target for chunk in forward for target in chunk]


@pytest.fixture
def many(store: Store) -> Store:
    """23 endpoints: days left 10..1 in pairs (ties broken by target), probed at times in another order,
    three never probed."""
    results = []
    for i in range(20):
        target = f"host{i:02d}.test:443"
        add(store, target, owner="ana" if i % 2 else "bob", team=f"team{i % 3}")
        results.append(scan_result(target, days_left=10 - i // 2, at=NOW - dt.timedelta(minutes=(i * 7) % 20)))
    for i in range(3):
        add(store, f"new{i}.test:443")
    record(store, *results)
    return store


@pytest.mark.parametrize("limit", [1, 4, 7, 50])
@pytest.mark.parametrize("descending", [False, True])
def test_pages_in_every_order(many: Store, limit: int, descending: bool) -> None:
    rows = {row.target: row for row in d.iter_inventory(many, InventoryQuery(), NOW)}
    assert len(rows) == 23
    never = sorted(t for t, row in rows.items() if row.observed_at is None)

    def expected(value: str) -> list[str]:
        valued = sorted((t for t, row in rows.items() if getattr(row, value) is not None),
                        key=lambda t: (getattr(rows[t], value), t), reverse=descending)
        return valued + (never[::-1] if descending else never)

    by_target = sorted(rows, reverse=descending)
    assert page_through(many, InventoryQuery(sort="target", descending=descending), limit) == by_target
    assert page_through(many, InventoryQuery(sort="days_left", descending=descending), limit) == \
        expected("leaf_not_after")
    assert page_through(many, InventoryQuery(sort="last_probe", descending=descending), limit) == \
        expected("observed_at")
    for sort in ("target", "days_left", "last_probe"):
        spec = InventoryQuery(sort=sort, descending=descending)   # type: ignore[arg-type]
        assert [row.target for row in d.iter_inventory(many, spec, NOW, batch=limit)] == page_through(many, spec, 50)


def test_filters_search_and_total(many: Store) -> None:
    def targets(spec: InventoryQuery) -> list[str]:
        page = d.inventory_page(many, spec, NOW, limit=100)
        assert page.total == len(page.rows)
        return [row.target for row in page.rows]

    assert targets(InventoryQuery(q="HOST1")) == [f"host{i}.test:443" for i in range(10, 20)]
    assert targets(InventoryQuery(q="team2")) == [f"host{i:02d}.test:443" for i in range(2, 20, 3)]
    assert targets(InventoryQuery(q="100%_")) == []
    assert len(targets(InventoryQuery(owner="ana"))) == 10
    assert len(targets(InventoryQuery(days_left=3))) == len(many.endpoint_summaries(days_left_max=3, now=NOW)) == 6
    assert targets(InventoryQuery(failing=True)) == []
    page = d.inventory_page(many, InventoryQuery(owner="ana"), NOW, limit=3)
    assert page.total == 10 and len(page.rows) == 3 and page.next_cursor is not None


def test_a_cursor_this_page_did_not_write_is_a_usage_error(many: Store) -> None:
    for bad in ("not-base64!", "W10", d.encode_cursor("2030-01-01", "x")[:-2] + "zz"):
        with pytest.raises(UsageError, match="cursor"):
            d.inventory_page(many, InventoryQuery(sort="days_left"), NOW, after=bad)
    with pytest.raises(UsageError):
        d.inventory_page(many, InventoryQuery(), NOW, limit=0)


def test_inventory_rows_carry_what_the_page_shows(fleet: Store) -> None:
    rows = {row.target: row for row in d.iter_inventory(fleet, InventoryQuery(), NOW)}
    down, degraded = rows["down.test:443"], rows["degraded.test:443"]
    assert (down.success, down.failure_kind, down.finding_ids) == (False, "refused", ("conn.refused",))
    assert down.leaf_sha256 is not None     # the leaf of its last success
    assert (degraded.success, degraded.worst_severity, degraded.tags, degraded.owner) == (
        True, Severity.HIGH, ("pci",), "ana")
    assert degraded.leaf_subject == "CN=degraded.test" and degraded.version == "TLSv1.3"
    assert rows["never.test:443"].observed_at is None and rows["never.test:443"].success is None


def test_leaf_changes_in_the_window(store: Store) -> None:
    record(store, scan_result("same.test:443", at=NOW - 3 * DAY), scan_result("same.test:443", at=NOW - HOUR),
           scan_result("moved.test:443", leaf="old.test", at=NOW - 3 * DAY),
           scan_result("moved.test:443", leaf="new.test", at=NOW - 5 * HOUR),
           scan_result("moved.test:443", leaf="new.test", at=NOW - HOUR),
           scan_result("flip.test:443", leaf="one.test", at=NOW - 3 * DAY),
           scan_result("flip.test:443", leaf="two.test", at=NOW - 2 * DAY),
           scan_result("flip.test:443", leaf="one.test", at=NOW - 3 * HOUR),
           scan_result("old-change.test:443", leaf="x.test", at=NOW - 5 * DAY),
           scan_result("old-change.test:443", leaf="y.test", at=NOW - 3 * DAY),
           scan_result("fresh.test:443", at=NOW - 2 * HOUR), failed_result("fresh.test:443", at=NOW - HOUR))
    changes = d.leaf_changes(store, NOW - DAY)
    found = {(c.target, c.before_subject, c.after_subject) for c in changes}
    assert found == {("moved.test:443", "CN=old.test", "CN=new.test"), ("flip.test:443", "CN=two.test", "CN=one.test"),
                     ("fresh.test:443", None, "CN=fresh.test")}
    assert [c.target for c in changes] == ["fresh.test:443", "flip.test:443", "moved.test:443"]   # newest first
    moved = next(c for c in changes if c.target == "moved.test:443")
    assert moved.at == NOW - 5 * HOUR and moved.before_sha256 and moved.after_sha256 != moved.before_sha256


def alert(key: str, status: AlertStatus, started: dt.datetime, ended: dt.datetime | None = None,
          endpoints: tuple[str, ...] = ()) -> AlertRecord:
    return AlertRecord(Alert(key=key, rule=key.split(":")[0], status=status, severity=Severity.HIGH,
                             route=Route.PAGE, summary=key, description="", endpoints=endpoints,
                             starts_at=started, ends_at=ended))


def test_alert_changes_and_alerts_about_a_certificate(fleet: Store) -> None:
    leaf = d.current_leaves(fleet, ["soon.test:443", "never.test:443", "nowhere.test:443"])
    assert set(leaf) == {"soon.test:443"}
    sha = leaf["soon.test:443"]
    AlertStore(fleet).save([
        alert(f"cert.expiring:{sha}", AlertStatus.FIRING, NOW - HOUR, endpoints=("soon.test:443",)),
        alert("probe.failing:down.test:443", AlertStatus.RESOLVED, NOW - 3 * DAY, NOW - 2 * HOUR,
              endpoints=("down.test:443",)),
        alert("protocol.tls10:soon.test:443", AlertStatus.FIRING, NOW - 2 * DAY, endpoints=("soon.test:443",)),
        alert("protocol.tls10:ok.test:443", AlertStatus.FIRING, NOW - 2 * DAY, endpoints=("ok.test:443",))], NOW)
    started, resolved = d.alert_changes(fleet, NOW - DAY)
    assert [r.alert.key for r in started] == [f"cert.expiring:{sha}"]
    assert [r.alert.key for r in resolved] == ["probe.failing:down.test:443"]
    about = {r.alert.key for r in d.alerts_about(fleet, sha, ["soon.test:443"])}
    assert about == {f"cert.expiring:{sha}", "protocol.tls10:soon.test:443"}


def test_certificates_and_the_presented_chain(fleet: Store) -> None:
    sha = d.current_leaves(fleet, ["ok.test:443"])["ok.test:443"]
    chain = d.presented_chain(fleet, sha)
    assert [cert.subject for cert in chain] == ["CN=ok.test", "CN=Lab Intermediate"]
    assert d.presented_chain(fleet, chain[1].sha256)[1].sha256 == chain[1].sha256   # in some endpoint's chain
    assert d.presented_chain(fleet, "0" * 64) == []
    found = d.certificates_by_sha(fleet, [sha, "f" * 64])
    assert set(found) == {sha} and found[sha].der == b""
    assert d.certificate_der(fleet, sha) == b"DER of ok.test by CN=Lab Intermediate"
    assert d.certificate_der(fleet, "0" * 64) is None


def test_filter_choices(fleet: Store) -> None:
    assert d.filter_choices(fleet) == (["ana", "bob", "cy"], ["db", "edge", "web"])
