"""Pages of ``endpoint_summaries`` (keyset ``after`` + ``limit``, ``offset``), the ``q`` substring filter, the
``with_findings`` filter and ``count_endpoints``, on SQLite and PostgreSQL alike: what ``GET /api/v1/endpoints``
and ``/api/v1/findings`` read."""

from __future__ import annotations

from tests.unit.storage.builders import failed_result, finding, scan_result
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store


def _seed(store: Store, count: int) -> list[str]:
    records = [EndpointRecord(target=f"h{i:03d}.example:443", host=f"h{i:03d}.example", port=443,
                              owner="ana" if i % 2 else "bo") for i in range(count)]
    store.import_endpoints(records)
    return sorted(r.target for r in records)


def test_keyset_pages_cover_the_inventory_once(store: Store) -> None:
    expected = _seed(store, 25)
    seen: list[str] = []
    after = None
    while True:
        page = store.endpoint_summaries(after=after, limit=7)
        seen += [row.endpoint.target for row in page]
        if len(page) < 7:
            break
        after = page[-1].endpoint.target
    assert seen == expected
    assert [r.endpoint.target for r in store.endpoint_summaries(offset=20, limit=3)] == expected[20:23]
    assert [r.endpoint.target for r in store.endpoint_summaries(owner="ana", after=expected[10], limit=2)] == \
        [expected[11], expected[13]]
    assert store.count_endpoints() == 25 and store.count_endpoints(owner="ana") == 12


def test_q_is_a_case_insensitive_literal_substring(store: Store) -> None:
    _seed(store, 25)
    store.upsert_endpoint(EndpointRecord(target="smtp://mail_x.example:25", host="mail_x.example", port=25,
                                         scheme="smtp"))
    assert [r.endpoint.target for r in store.endpoint_summaries(q="H01")] == [f"h01{i}.example:443" for i in range(10)]
    assert [r.endpoint.target for r in store.endpoint_summaries(q="_")] == ["smtp://mail_x.example:25"], \
        "_ and % are literal, not LIKE wildcards"
    assert store.endpoint_summaries(q="%") == []
    assert store.count_endpoints(q="smtp://") == 1


def test_with_findings_keeps_endpoints_whose_newest_observation_has_some(store: Store) -> None:
    store.record_scan(scan_result("clean.example:443"))
    store.record_scan(scan_result("flagged.example:443", findings=(finding("cert.expiring", Severity.HIGH),)))
    store.record_scan(failed_result("down.example:443"))
    store.upsert_endpoint(EndpointRecord(target="new.example:443", host="new.example", port=443))
    found = store.endpoint_summaries(with_findings=True)
    assert [(r.endpoint.target, r.finding_ids) for r in found] == [
        ("down.example:443", ("conn.refused",)), ("flagged.example:443", ("cert.expiring",))]
