"""The read-only resources: current findings across the inventory, a certificate and where it was seen, an
endpoint's observations, the SLO report (the same ``tlsward.slo/1`` object as the CLI) and the audit log."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit.storage.builders import INTERMEDIATE, failed_result, finding, scan_result
from tests.unit.web.conftest import Api, problem
from tlsward.model.access import Role
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store

V = {"role": Role.VIEWER}


@pytest.fixture
def scanned(store: Store) -> None:
    store.upsert_endpoint(EndpointRecord(target="b.example:443", host="b.example", port=443, owner="bo", team="db"))
    store.record_scan(scan_result("a.example:443", findings=(finding("cert.expiring", Severity.HIGH),
                                                            finding("cipher.no_forward_secrecy", Severity.MEDIUM))))
    store.record_scan(scan_result("b.example:443", findings=(finding("cert.expired", Severity.CRITICAL),)))
    store.record_scan(failed_result("c.example:443"))
    # An older finding that the newest scan no longer shows is not current.
    store.record_scan(scan_result("d.example:443", findings=(finding("cert.expired", Severity.CRITICAL),),
                                  at=dt.datetime(2030, 5, 1, tzinfo=dt.UTC)))
    store.record_scan(scan_result("d.example:443"))


def test_current_findings_worst_first_with_filters(api: Api, scanned: None) -> None:
    page = api.get("/api/v1/findings", **V).json()
    assert [(f["severity"], f["id"], f["endpoint"]) for f in page["items"]] == [
        ("critical", "cert.expired", "b.example:443"), ("critical", "conn.refused", "c.example:443"),
        ("high", "cert.expiring", "a.example:443"), ("medium", "cipher.no_forward_secrecy", "a.example:443")]
    assert page["total"] == 4 and page["next_offset"] is None
    assert page["items"][0]["owner"] == "bo" and page["items"][0]["title"] == "Certificate has expired"
    assert [f["endpoint"] for f in api.get("/api/v1/findings?id=cert.expired", **V).json()["items"]] == [
        "b.example:443"]
    assert [f["id"] for f in api.get("/api/v1/findings?severity=high", **V).json()["items"]] == ["cert.expiring"]
    assert len(api.get("/api/v1/findings?min_severity=high", **V).json()["items"]) == 3
    assert [f["endpoint"] for f in api.get("/api/v1/findings?team=db", **V).json()["items"]] == ["b.example:443"]
    first = api.get("/api/v1/findings?limit=3", **V).json()
    assert first["next_offset"] == 3 and len(first["items"]) == 3
    rest = api.get("/api/v1/findings?limit=3&offset=3", **V).json()
    assert [f["id"] for f in rest["items"]] == ["cipher.no_forward_secrecy"] and rest["next_offset"] is None
    problem(api.get("/api/v1/findings?severity=awful", **V), 400)


def test_a_certificate_and_every_place_it_was_seen(api: Api, scanned: None) -> None:
    intermediate = api.get(f"/api/v1/certificates/{INTERMEDIATE.sha256[:12].upper()}", **V)
    assert intermediate.status_code == 200, intermediate.text
    body = intermediate.json()
    assert body["sha256"] == INTERMEDIATE.sha256 and body["subject"] == "CN=Lab Intermediate"
    assert sorted(place["where"] for place in body["places"]) == [
        "a.example:443", "b.example:443", "d.example:443"]
    assert {place["position"] for place in body["places"]} == {1}
    colons = ":".join(INTERMEDIATE.sha256[i:i + 2] for i in range(0, 64, 2))
    assert api.get(f"/api/v1/certificates/{colons}", **V).json()["sha256"] == INTERMEDIATE.sha256
    assert "8 (and at most 64) hex digits" in problem(api.get("/api/v1/certificates/abc", **V), 400)["detail"]
    problem(api.get("/api/v1/certificates/zzzzzzzzzz", **V), 400)
    problem(api.get(f"/api/v1/certificates/{'0' * 64}", **V), 404)


def test_observations_newest_first(api: Api, scanned: None) -> None:
    items = api.get("/api/v1/observations?target=d.example", **V).json()["items"]
    assert [o["finding_ids"] for o in items] == [[], ["cert.expired"]]
    assert items[1]["worst_severity"] == "critical" and items[0]["version"] == "TLSv1.3"
    assert len(api.get("/api/v1/observations?target=d.example:443&limit=1", **V).json()["items"]) == 1
    problem(api.get("/api/v1/observations", **V), 400)
    problem(api.get("/api/v1/observations?target=d.example&limit=0", **V), 400)


def test_the_sli_report_is_the_cli_object(api: Api, store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    store.record_scan(scan_result("a.example:443", at=now - dt.timedelta(hours=1)))
    store.record_scan(failed_result("a.example:443", at=now - dt.timedelta(minutes=30)))
    report = api.get("/api/v1/sli?window=1d&by=team&target=99.9", **V)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["schema"] == "tlsward.slo/1" and body["by"] == "team" and body["window"]["seconds"] == 86400
    assert body["overall"]["probes"] == 2 and body["overall"]["success_pct"] == 50.0 and body["met"] is False
    assert body["overall"]["slo"]["failures"] == 1


@pytest.mark.parametrize(("query", "detail"), [
    ("window=30", "window '30'"), ("window=0d", "window"), ("window=99999d", "at most"), ("by=owner2", "by"),
    ("target=101", "target '101'"), ("target=abc", "target"),
])
def test_bad_sli_parameters_are_400(api: Api, query: str, detail: str) -> None:
    assert detail in problem(api.get(f"/api/v1/sli?{query}", **V), 400)["detail"]


def test_control_characters_in_any_query_parameter_are_400(api: Api) -> None:
    assert "control characters" in problem(api.get("/api/v1/findings?id=cert%00expired", **V), 400)["detail"]
    problem(api.get("/api/v1/observations?target=a%0Aexample", **V), 400)


def test_certificate_list_soonest_first_with_counts_filters_and_the_page_view(api: Api, scanned: None) -> None:
    listed = api.get("/api/v1/certificates", **V).json()
    assert listed["total"] == 3 and [c["subject"] for c in listed["items"]] == [
        "CN=a.example", "CN=b.example", "CN=d.example"]
    assert [c["endpoints"] for c in listed["items"]] == [1, 1, 1] and listed["items"][0]["days_left"] > 0
    everything = api.get("/api/v1/certificates?all=true", **V).json()
    assert everything["total"] == 4 and any(c["sha256"] == INTERMEDIATE.sha256 and c["endpoints"] == 3
                                            for c in everything["items"])
    assert [c["subject"] for c in api.get("/api/v1/certificates?q=B.EXAMPLE", **V).json()["items"]] == [
        "CN=b.example"]
    assert api.get("/api/v1/certificates?limit=1&offset=2", **V).json()["items"][0]["subject"] == "CN=d.example"
    problem(api.get("/api/v1/certificates?limit=0", **V), 400)
    problem(api.get("/api/v1/certificates", role=None), 401)
    page = api.get("/certificates", **V)
    assert page.status_code == 200 and "a.example" in page.text and "3 certificates" in page.text


def test_a_repeated_query_parameter_is_refused_not_silently_merged(api: Api, scanned: None) -> None:
    detail = problem(api.get("/api/v1/certificates?days_left=1&days_left=300", **V), 400)["detail"]
    assert "'days_left' is given more than once" in detail
    problem(api.get("/api/v1/endpoints?limit=5&limit=6", **V), 400)
