"""The inventory repository on both backends: endpoints, certificates deduplicated by fingerprint,
sightings, observations, idempotent writes and the list filters."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from tests.unit.storage.builders import DAY, NOW, failed_result, finding, scan_result
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store
from tlsward.storage.tables import Certificate, Observation, Sighting


def count(store: Store, table: type) -> int:
    with store.engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(table)) or 0


def endpoint(target: str, **fields: object) -> EndpointRecord:
    host, port = target.rsplit(":", 1)
    return EndpointRecord(target=target, host=host, port=int(port), **fields)  # type: ignore[arg-type]


def test_upsert_get_and_remove_an_endpoint(store: Store) -> None:
    first = store.upsert_endpoint(endpoint("a.test:443", owner="ana", team="web", environment="prod",
                                           tags=("pci", "edge"), probe_interval_s=300))
    assert first.id is not None and first.created_at is not None and first.created_at.tzinfo is not None
    again = store.upsert_endpoint(endpoint("a.test:443", owner="bo", tags=("edge",)))
    assert again.id == first.id and again.owner == "bo" and again.tags == ("edge",)
    assert again.created_at == first.created_at and again.updated_at is not None
    assert again.updated_at >= first.created_at
    assert store.get_endpoint("a.test:443") == again
    assert store.get_endpoint("b.test:443") is None
    assert store.remove_endpoint("a.test:443") is True
    assert store.remove_endpoint("a.test:443") is False
    assert store.list_endpoints() == []


def test_list_filters_by_owner_team_and_tag(store: Store) -> None:
    store.upsert_endpoint(endpoint("a.test:443", owner="ana", team="web", tags=("pci",)))
    store.upsert_endpoint(endpoint("b.test:443", owner="bo", team="web"))
    store.upsert_endpoint(endpoint("c.test:443", owner="ana", team="db", tags=("pci", "edge")))
    assert [e.target for e in store.list_endpoints()] == ["a.test:443", "b.test:443", "c.test:443"]
    assert [e.target for e in store.list_endpoints(owner="ana")] == ["a.test:443", "c.test:443"]
    assert [e.target for e in store.list_endpoints(team="web", owner="bo")] == ["b.test:443"]
    assert [e.target for e in store.list_endpoints(tag="edge")] == ["c.test:443"]


def test_record_scan_dedupes_certificates_and_adds_sightings_and_one_observation(store: Store) -> None:
    worst = finding("cert.expired", Severity.CRITICAL)
    observation = store.record_scan(scan_result("a.test:443", findings=(finding("http.no_hsts", Severity.LOW),
                                                                         worst)))
    assert observation.success and observation.version == "TLSv1.3" and observation.handshake_ms == 3.5
    assert observation.worst_severity is Severity.CRITICAL
    assert observation.finding_ids == ("cert.expired", "http.no_hsts"), "worst first"
    assert observation.observed_at == NOW and len(observation.chain) == 2
    store.record_scan(scan_result("a.test:443", at=NOW + DAY))
    store.record_scan(scan_result("b.test:443"))   # another leaf, the same intermediate
    assert count(store, Certificate) == 3
    assert count(store, Observation) == 3
    assert count(store, Sighting) == 4             # (leaf, intermediate) on each endpoint
    with store.engine.connect() as connection:
        first, last = connection.execute(select(Sighting.first_seen, Sighting.last_seen)
                                         .where(Sighting.position == 0).order_by(Sighting.id)).first() or (0, 0)
    assert (first, last) == (NOW, NOW + DAY)
    stored = store.get_endpoint("a.test:443")
    assert stored is not None and stored.host == "a.test" and stored.sni == "a.test"
    certificates = store.certificates("a.test:443")
    assert [p for p, _ in certificates] == [0, 1]
    leaf = certificates[0][1]
    assert leaf.subject == "CN=a.test" and leaf.der.startswith(b"DER of a.test")
    assert leaf.sans == ("a.test", "127.0.0.1") and leaf.not_after.tzinfo is not None


def test_record_scan_keeps_inventory_metadata(store: Store) -> None:
    store.upsert_endpoint(endpoint("a.test:443", owner="ana", tags=("pci",)))
    store.record_scan(scan_result("a.test:443"))
    stored = store.get_endpoint("a.test:443")
    assert stored is not None and stored.owner == "ana" and stored.tags == ("pci",)


def test_same_probe_id_twice_is_one_observation(store: Store) -> None:
    first = store.record_scan(scan_result("a.test:443"), probe_id="probe-1")
    second = store.record_scan(scan_result("a.test:443", at=NOW + DAY), probe_id="probe-1")
    assert second == first
    assert count(store, Observation) == 1
    store.record_scan(scan_result("a.test:443"), probe_id="probe-2")
    store.record_scan(scan_result("a.test:443"))
    store.record_scan(scan_result("a.test:443"))   # no probe id: never deduplicated
    assert count(store, Observation) == 4


def test_observations_newest_first_with_a_limit(store: Store) -> None:
    for hours in (1, 3, 2):
        store.record_scan(scan_result("a.test:443", at=NOW + dt.timedelta(hours=hours)))
    store.record_scan(failed_result("a.test:443", at=NOW + dt.timedelta(hours=4)))
    observations = store.observations("a.test:443", limit=3)
    assert [o.observed_at.hour for o in observations] == [16, 15, 14]
    assert observations[0].success is False and observations[0].failure_kind == "refused"
    assert observations[0].chain == () and observations[0].version is None
    assert store.observations("nothing.test:443") == []
    latest, leaf = store.latest("a.test:443")
    assert latest is not None and not latest.success
    assert leaf is not None and leaf.subject == "CN=a.test", "the leaf of the last successful scan"


def test_list_filters_by_issuer_days_left_and_failing(store: Store) -> None:
    store.record_scan(scan_result("a.test:443", issuer="CN=R11, O=Let's Encrypt", days_left=10))
    store.record_scan(scan_result("b.test:443", days_left=60))
    store.record_scan(scan_result("c.test:443", days_left=5))
    store.record_scan(failed_result("c.test:443", at=NOW + DAY))
    store.upsert_endpoint(endpoint("d.test:443"))   # never scanned
    assert [e.target for e in store.list_endpoints(issuer="let's encrypt")] == ["a.test:443"]
    assert [e.target for e in store.list_endpoints(days_left_max=30, now=NOW)] == ["a.test:443", "c.test:443"]
    assert [e.target for e in store.list_endpoints(failing=True)] == ["c.test:443"]
    assert [e.target for e in store.list_endpoints(failing=False)] == ["a.test:443", "b.test:443", "d.test:443"]


def test_remove_endpoint_keeps_certificates(store: Store) -> None:
    store.record_scan(scan_result("a.test:443"))
    assert store.remove_endpoint("a.test:443")
    assert count(store, Observation) == 0 and count(store, Sighting) == 0
    assert count(store, Certificate) == 2


def test_list_filters_match_exactly_with_quotes_and_wildcards(store: Store) -> None:
    store.upsert_endpoint(endpoint("a.test:443", tags=('say "pci"', "100%")))
    store.upsert_endpoint(endpoint("b.test:443", tags=("pci", "édge")))
    store.record_scan(scan_result("c.test:443", issuer="CN=50% Off CA"))
    assert [e.target for e in store.list_endpoints(tag="pci")] == ["b.test:443"]
    assert [e.target for e in store.list_endpoints(tag='say "pci"')] == ["a.test:443"]
    assert [e.target for e in store.list_endpoints(tag="100%")] == ["a.test:443"]
    assert [e.target for e in store.list_endpoints(tag="100")] == []
    assert [e.target for e in store.list_endpoints(tag="édge")] == ["b.test:443"]
    assert [e.target for e in store.list_endpoints(issuer="50% off")] == ["c.test:443"]
    assert [e.target for e in store.list_endpoints(issuer="5_%")] == []
    assert [e.target for e in store.list_endpoints(days_left_max=80, now=NOW)] == ["c.test:443"]
    assert [e.target for e in store.list_endpoints(days_left_max=79.9, now=NOW)] == []
    assert [e.target for e in store.list_endpoints(days_left_max=1e300, now=NOW, failing=False)] == ["c.test:443"]
