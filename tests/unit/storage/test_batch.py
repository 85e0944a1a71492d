"""The batch writer the monitor uses stores exactly what one-at-a-time writes store, and the bulk state read
behind ``inventory list`` agrees with the per-endpoint reads."""

from __future__ import annotations

import dataclasses

from sqlalchemy import func, select

from tests.unit.storage.builders import DAY, NOW, failed_result, scan_result
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store
from tlsward.storage.tables import Certificate, Sighting


def _rows(store: Store) -> tuple[int, int]:
    with store.engine.connect() as connection:
        return (connection.scalar(select(func.count()).select_from(Certificate)) or 0,
                connection.scalar(select(func.count()).select_from(Sighting)) or 0)


def test_record_scans_matches_record_scan(store: Store) -> None:
    batch = [(scan_result("a.test:443", at=NOW - DAY), "p1"), (scan_result("b.test:443", at=NOW - DAY), "p2"),
             (failed_result("a.test:443", at=NOW), "p3"), (scan_result("b.test:443", leaf="b2.test", at=NOW), "p4")]
    assert store.record_scans(batch) == 4
    assert store.record_scans(batch) == 0, "probe ids already stored must be skipped"
    a = store.observations("a.test:443")
    assert [(o.probe_id, o.success, o.failure_kind, len(o.chain), o.samples, o.successes) for o in a] == [
        ("p3", False, "refused", 0, 1, 0), ("p1", True, None, 2, 1, 1)]
    b = store.observations("b.test:443")
    assert b[0].chain[0] == batch[3][0].chain[0].sha256 and b[1].chain[0] == batch[1][0].chain[0].sha256
    # 3 leaves + the shared intermediate, each stored once; a sighting per (certificate, endpoint, position).
    assert _rows(store) == (4, 5)
    assert {e.target for e in store.list_endpoints()} == {"a.test:443", "b.test:443"}


def test_record_scans_leaves_known_endpoints_alone(store: Store) -> None:
    store.upsert_endpoint(EndpointRecord(target="a.test:443", host="a.test", port=443, sni="a.test", owner="ana",
                                         tags=("pci",)))
    store.record_scans([(scan_result("a.test:443"), None)])
    endpoint = store.get_endpoint("a.test:443")
    assert endpoint is not None and (endpoint.owner, endpoint.tags) == ("ana", ("pci",))


def test_endpoint_states_agree_with_latest(store: Store) -> None:
    store.record_scans([(scan_result("a.test:443", at=NOW - DAY), None), (failed_result("a.test:443", at=NOW), None),
                        (scan_result("b.test:443", days_left=5, at=NOW), None)])
    store.upsert_endpoint(EndpointRecord(target="c.test:443", host="c.test", port=443))
    records = store.list_endpoints()
    states = store.endpoint_states(records)
    assert [s[0].target for s in states] == ["a.test:443", "b.test:443", "c.test:443"]
    for record, observation, leaf in states:
        expected_observation, expected_leaf = store.latest(record.target)
        assert observation == expected_observation
        assert (leaf and dataclasses.replace(leaf, der=b"")) == (
            expected_leaf and dataclasses.replace(expected_leaf, der=b""))
    assert states[0][1] is not None and not states[0][1].success and states[0][2] is not None
    assert states[2][1] is None and states[2][2] is None


def test_endpoint_summaries_agree_with_records_under_every_filter(store: Store) -> None:
    store.record_scans([
        (scan_result("a.test:443", issuer="CN=Corp CA", days_left=5, at=NOW - DAY), None),
        (failed_result("a.test:443", at=NOW), None),
        (scan_result("b.test:443", issuer="CN=Public CA", days_left=50, at=NOW), None),
        (scan_result("c.test:443", issuer="CN=Corp CA", days_left=200, at=NOW), None)])
    store.upsert_endpoint(EndpointRecord(target="d.test:443", host="d.test", port=443, team="web"))
    for filters in ({}, {"issuer": "corp"}, {"issuer": "public"}, {"days_left_max": 30.0}, {"failing": True},
                    {"failing": False}, {"team": "web"}, {"issuer": "corp", "days_left_max": 100.0}):
        summaries = store.endpoint_summaries(now=NOW, **filters)
        states = store.endpoint_states(store.list_endpoints(now=NOW, **filters))
        assert [s.endpoint.target for s in summaries] == [r.target for r, _, _ in states], filters
        for summary, (_, observation, leaf) in zip(summaries, states, strict=True):
            assert summary.observed_at == (observation.observed_at if observation else None)
            assert summary.success == (observation.success if observation else None)
            assert summary.finding_ids == (observation.finding_ids if observation else ())
            assert (summary.leaf_sha256, summary.leaf_issuer, summary.leaf_not_after) == (
                (leaf.sha256, leaf.issuer, leaf.not_after) if leaf else (None, None, None))
    assert [s.endpoint.target for s in store.endpoint_summaries(issuer="corp", now=NOW)] == ["a.test:443",
                                                                                            "c.test:443"]
    assert [s.endpoint.target for s in store.endpoint_summaries(failing=True, now=NOW)] == ["a.test:443"]


def test_certificate_listing_counts_places_and_filters(store: Store) -> None:
    store.record_scans([(scan_result("a.test:443", leaf="shared.test", days_left=5), None),
                        (scan_result("b.test:443", leaf="shared.test", days_left=5), None),
                        (scan_result("c.test:443", issuer="CN=Other CA", days_left=200), None)])
    listing, total = store.certificate_listing(now=NOW)
    assert total == 2 and [(c.subject, c.endpoints, c.leaf) for c in listing] == [
        ("CN=shared.test", 2, True), ("CN=c.test", 1, True)]
    everything, total_all = store.certificate_listing(leaf_only=False, now=NOW)
    assert total_all == 3 and any(c.subject == "CN=Lab Intermediate" and c.endpoints == 3 for c in everything)
    assert [c.subject for c in store.certificate_listing(days_left_max=30, now=NOW)[0]] == ["CN=shared.test"]
    assert [c.subject for c in store.certificate_listing(issuer="other", now=NOW)[0]] == ["CN=c.test"]
    assert [c.subject for c in store.certificate_listing(q="SHARED", now=NOW)[0]] == ["CN=shared.test"]
    page, total = store.certificate_listing(limit=1, offset=1, now=NOW)
    assert total == 2 and [c.subject for c in page] == ["CN=c.test"]


def test_per_phase_timings_are_stored_with_each_observation(store: Store) -> None:
    result = scan_result("a.test:443")
    result = dataclasses.replace(result, timings=dataclasses.replace(result.timings, dns_ms=1.25, connect_ms=0.5))
    store.record_scan(result)
    store.record_scans([(scan_result("b.test:443"), None)])
    [a] = store.observations("a.test:443")
    [b] = store.observations("b.test:443")
    assert a.timings == (("connect_ms", 0.5), ("dns_ms", 1.25), ("handshake_ms", 3.5))
    assert a.timing("connect_ms") == 0.5 and a.timing("starttls_ms") is None
    assert b.timing("handshake_ms") == 3.5
