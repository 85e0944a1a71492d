"""``slo_report`` on both backends: exact success rates (downsampled history weighs what it stands for),
valid-certificate share, version and cipher shares, nearest-rank latency percentiles, grouping by owner and
team, window edges, unprobed endpoints, the worst endpoints and the target's error budget."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tests.unit.storage.builders import NOW, failed_result, finding, scan_result
from tlsward.model.errors import UsageError
from tlsward.model.findings import Finding, Severity
from tlsward.model.inventory import EndpointRecord, RetentionPolicy
from tlsward.model.scan import ScanResult, Timings
from tlsward.model.slo import GroupSli, Latency, Share, SloReport, verdict
from tlsward.model.target import Target
from tlsward.storage import Store
from tlsward.storage.reports import slo_report

SINCE = NOW - dt.timedelta(days=30)
TLS13 = "TLS_AES_128_GCM_SHA256"
TLS12 = "ECDHE-RSA-AES128-GCM-SHA256"


def probe(target: str, at: dt.datetime, *, ok: bool = True, ms: float = 3.5, version: str = "TLSv1.3",
          cipher: str = TLS13, findings: tuple[Finding, ...] = (), leaf: str | None = None) -> ScanResult:
    """One probe of ``target`` at ``at``: a failure (refused), or a handshake with this version, cipher,
    latency, findings and leaf."""
    if not ok:
        return failed_result(target, at=at)
    result = scan_result(target, at=at, findings=findings, leaf=leaf)
    assert result.session is not None
    return replace(result, timings=Timings(handshake_ms=ms),
                   session=replace(result.session, version=version, cipher=cipher))


def record(store: Store, *results: ScanResult) -> None:
    store.record_scans([(result, None) for result in results])


def add(store: Store, target: str, *, owner: str | None = None, team: str | None = None,
        enabled: bool = True) -> None:
    parsed = Target.parse(target)
    store.upsert_endpoint(EndpointRecord(target=str(parsed), host=parsed.host, port=parsed.port, owner=owner,
                                         team=team, enabled=enabled))


def report(store: Store, *, since: dt.datetime = SINCE, until: dt.datetime = NOW, by: str = "owner",
           target: float | None = None) -> SloReport:
    assert by in ("owner", "team")
    return slo_report(store, since, until, by="owner" if by == "owner" else "team", target=target)


def group(slo: SloReport, key: str | None) -> GroupSli:
    found = [g for g in slo.groups if g.key == key]
    assert len(found) == 1, [g.key for g in slo.groups]
    return found[0]


def minutes(n: int) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def test_three_of_four_is_75_percent(store: Store) -> None:
    record(store, *(probe("a.test:443", NOW - minutes(10 * i), ok=i != 2) for i in range(1, 5)))
    slo = report(store)
    overall = slo.overall
    assert (overall.probes, overall.successes, overall.success_pct) == (4, 3, 75.0)
    assert overall.endpoints == 1 and overall.unprobed_endpoints == 0
    assert [(e.target, e.probes, e.successes, e.success_pct) for e in overall.worst_endpoints] == [
        ("a.test:443", 4, 3, 75.0)]
    assert [g.key for g in slo.groups] == [None]   # no owner recorded
    assert group(slo, None).success_pct == 75.0 and slo.target_pct is None and overall.slo is None


def test_downsampled_history_gives_the_same_numbers_as_before(store: Store) -> None:
    """Twelve days of probes every 30 minutes, pruned to hourly and daily rows: every count is unchanged.

    Retention folds rows by (endpoint, bucket, success, chain) and keeps the newest row's findings, version
    and cipher; so here, as in life, those change with the chain or the endpoint (docs/slo.md)."""
    results = []
    expired = (finding("cert.expired", Severity.CRITICAL),)
    for i in range(12 * 48):
        at = NOW - (12 * 48 - i) * minutes(30)
        stale = i % 11 == 0   # a backend still serving last year's certificate
        results.append(probe("a.test:443", at, ok=i % 7 != 3, findings=expired if stale else (),
                             leaf="stale.a.test" if stale else None))
        results.append(probe("b.test:443", at, ok=i % 13 != 0, version="TLSv1.2", cipher=TLS12))
    record(store, *results)
    before = report(store, target=99.0)
    rows_before = store.count_observations()

    pruned = store.prune(RetentionPolicy(raw_days=2, hourly_days=5, daily_days=30), now=NOW)
    assert pruned.folded_hourly > 0 and pruned.folded_daily > 0 and store.count_observations() < rows_before
    after = report(store, target=99.0)

    failures = sum(1 for i in range(12 * 48) if i % 7 == 3) + sum(1 for i in range(12 * 48) if i % 13 == 0)
    stale_ok = sum(1 for i in range(12 * 48) if i % 11 == 0 and i % 7 != 3)
    assert before.overall.probes == 2 * 12 * 48 and before.overall.successes == 2 * 12 * 48 - failures
    assert before.overall.valid_certificate_probes == before.overall.successes - stale_ok
    assert [(share.name, share.probes) for share in before.overall.versions] == [   # most probes first
        ("TLSv1.2", sum(1 for i in range(12 * 48) if i % 13 != 0)),
        ("TLSv1.3", sum(1 for i in range(12 * 48) if i % 7 != 3))]
    for one, other in ((before.overall, after.overall), (before.groups[0], after.groups[0])):
        assert (one.probes, one.successes, one.success_pct) == (other.probes, other.successes, other.success_pct)
        assert one.valid_certificate_probes == other.valid_certificate_probes
        assert one.versions == other.versions and one.ciphers == other.ciphers
        assert one.worst_endpoints == other.worst_endpoints and one.slo == other.slo
    # Latency only counts raw rows: after pruning, the successful probes of the last two days (or so: the
    # raw range ends at a whole hour).
    raw_ok = [o for target in ("a.test:443", "b.test:443") for o in store.observations(target, limit=10_000)
              if o.resolution == "raw" and o.success]
    assert after.overall.latency == Latency(len(raw_ok), 3.5, 3.5)
    assert before.overall.latency.probes == before.overall.successes


def test_valid_certificate_share(store: Store) -> None:
    expiring = finding("cert.expiring", Severity.MEDIUM)   # posture, not validity
    findings: list[tuple[Finding, ...]] = [
        (), (), (expiring,), (finding("cert.expired", Severity.CRITICAL), expiring),
        (finding("name.mismatch", Severity.CRITICAL),), (finding("chain.untrusted", Severity.CRITICAL),)]
    record(store, *(probe("a.test:443", NOW - minutes(i + 1), findings=f) for i, f in enumerate(findings)),
           probe("a.test:443", NOW - minutes(30), ok=False))
    overall = report(store).overall
    assert (overall.probes, overall.successes, overall.valid_certificate_probes) == (7, 6, 3)
    assert overall.valid_certificate_pct == pytest.approx(300 / 7)


def test_version_and_cipher_shares_count_negotiated_probes(store: Store) -> None:
    record(store, *(probe("a.test:443", NOW - minutes(i + 1)) for i in range(3)),
           probe("a.test:443", NOW - minutes(10), version="TLSv1.2", cipher=TLS12),
           probe("a.test:443", NOW - minutes(20), ok=False))
    overall = report(store).overall
    assert overall.versions == (Share("TLSv1.3", 3, 75.0), Share("TLSv1.2", 1, 25.0))
    assert overall.ciphers == (Share(TLS13, 3, 75.0), Share(TLS12, 1, 25.0))
    assert overall.success_pct == 80.0


def test_latency_percentiles_are_nearest_rank(store: Store) -> None:
    record(store, *(probe("a.test:443", NOW - minutes(i), ms=float(i)) for i in range(1, 21)),
           probe("a.test:443", NOW - minutes(40), ok=False))   # a failed probe has no handshake latency
    assert report(store).overall.latency == Latency(20, 10.0, 19.0)


def test_latencies_keep_three_significant_digits(store: Store) -> None:
    record(store, *(probe("a.test:443", NOW - minutes(i + 1), ms=ms)
                    for i, ms in enumerate((0.123, 2.25, 45.67, 123.4, 1234.5))))
    assert report(store).overall.latency == Latency(5, 45.7, 1230.0)
    record(store, probe("b.test:443", NOW - minutes(1), ms=7.0))
    assert report(store).overall.latency.p50_ms == 7.0


def test_groups_by_owner_and_by_team(store: Store) -> None:
    add(store, "a1.test:443", owner="ana", team="web")
    add(store, "a2.test:443", owner="ana", team="pay")
    add(store, "b1.test:443", owner="bo", team="web")
    add(store, "idle.test:443", owner="bo", team="web")           # never probed
    add(store, "off.test:443", owner="bo", team="web", enabled=False)
    record(store, probe("a1.test:443", NOW - minutes(1), ms=10.0), probe("a1.test:443", NOW - minutes(2), ok=False),
           probe("a2.test:443", NOW - minutes(1), ms=30.0), probe("a2.test:443", NOW - minutes(2), ms=40.0),
           probe("b1.test:443", NOW - minutes(1), ms=20.0), probe("c.test:443", NOW - minutes(1), ok=False))

    by_owner = report(store)
    assert [g.key for g in by_owner.groups] == ["ana", "bo", None]
    ana, bo, nobody = by_owner.groups
    assert (ana.endpoints, ana.probes, ana.successes, ana.success_pct) == (2, 4, 3, 75.0)
    assert ana.latency == Latency(3, 30.0, 40.0)
    assert [e.target for e in ana.worst_endpoints] == ["a1.test:443"]
    assert (bo.endpoints, bo.unprobed_endpoints, bo.probes, bo.success_pct) == (1, 1, 1, 100.0)
    assert bo.worst_endpoints == ()
    assert (nobody.endpoints, nobody.probes, nobody.success_pct, nobody.latency) == (1, 1, 0.0, Latency())
    overall = by_owner.overall
    assert (overall.endpoints, overall.unprobed_endpoints, overall.probes, overall.successes) == (4, 1, 6, 4)
    assert overall.latency == Latency(4, 20.0, 40.0)
    assert [e.target for e in overall.worst_endpoints] == ["c.test:443", "a1.test:443"]

    by_team = report(store, by="team")
    assert [(g.key, g.endpoints, g.probes, g.successes) for g in by_team.groups] == [
        ("pay", 1, 2, 2), ("web", 2, 3, 2), (None, 1, 1, 0)]
    assert by_team.overall == overall


def test_window_edges_include_since_and_exclude_until(store: Store) -> None:
    until = NOW - dt.timedelta(days=1)
    since = until - dt.timedelta(hours=12)
    tick = dt.timedelta(microseconds=1)
    record(store, probe("a.test:443", since - tick, ok=False), probe("a.test:443", since),
           probe("a.test:443", until - tick), probe("a.test:443", until, ok=False))
    overall = report(store, since=since, until=until).overall
    assert (overall.probes, overall.successes) == (2, 2)
    assert report(store, since=since - tick, until=until + tick).overall.probes == 4


def test_worst_endpoints_are_the_five_lowest_success_rates(store: Store) -> None:
    results = []
    for n, failures in enumerate((0, 1, 2, 3, 4, 5, 6)):   # each endpoint: 10 probes, n failures
        results += [probe(f"e{n}.test:443", NOW - minutes(i + 1), ok=i >= failures) for i in range(10)]
    results += [probe("big.test:443", NOW - minutes(i + 1), ok=i >= 4) for i in range(20)]   # 80 %, 4 failed
    record(store, *results)
    worst = report(store).overall.worst_endpoints
    assert [(e.target, e.success_pct) for e in worst] == [
        ("e6.test:443", 40.0), ("e5.test:443", 50.0), ("e4.test:443", 60.0), ("e3.test:443", 70.0),
        ("big.test:443", 80.0)]   # same rate as e2, more failures


def test_target_and_error_budget(store: Store) -> None:
    add(store, "a.test:443", owner="ana")
    add(store, "b.test:443", owner="bo")
    add(store, "idle.test:443", owner="cy")
    record(store, *(probe("a.test:443", NOW - minutes(i + 1), ok=i != 0) for i in range(4)),
           *(probe("b.test:443", NOW - minutes(i + 1)) for i in range(4)))
    slo = report(store, target=75.0)
    ana = group(slo, "ana").slo
    assert ana is not None and (ana.met, ana.failures, ana.allowed_failures, ana.budget_remaining_pct) == (
        True, 1, 1.0, 0.0)
    bo, overall = group(slo, "bo").slo, slo.overall.slo
    assert bo is not None and (bo.met, bo.budget_remaining_pct) == (True, 100.0)
    assert overall is not None and overall.met and overall.budget_remaining_pct == pytest.approx(50.0)
    cy = group(slo, "cy").slo
    assert cy is not None and cy.met is None   # no probe: nothing to judge, not a miss
    assert slo.missed == ()

    strict = report(store, target=99.9)
    assert [g.key for g in strict.missed] == [None, "ana"]   # overall first
    missed = group(strict, "ana").slo
    assert missed is not None and missed.met is False
    assert missed.budget_remaining_pct == pytest.approx(100 * (1 - 1 / 0.004))
    perfect = group(report(store, target=100.0), "bo").slo
    assert perfect is not None and perfect.met and perfect.budget_remaining_pct is None


def test_999_of_1000_meets_99_9() -> None:
    met = verdict(99.9, 1000, 999)
    assert met.met and met.budget_remaining_pct == pytest.approx(0.0, abs=1e-9)
    assert verdict(99.9, 1000, 998).met is False


def test_an_empty_history_reports_nothing_and_misses_nothing(store: Store) -> None:
    slo = report(store, target=99.9)
    assert slo.groups == () and slo.overall.probes == 0 and slo.overall.success_pct is None
    assert slo.overall.latency == Latency() and slo.missed == ()


@pytest.mark.parametrize(("since", "target", "message"), [
    (NOW, None, "window is empty"), (SINCE, 0.0, "--target"), (SINCE, 100.5, "--target")])
def test_bad_arguments_are_usage_errors(store: Store, since: dt.datetime, target: float | None,
                                        message: str) -> None:
    with pytest.raises(UsageError, match=message):
        report(store, since=since, target=target)
