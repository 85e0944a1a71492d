"""``/api/v1/endpoints``: pages that add up to the inventory, the filters of ``inventory list``, the same fields
as ``inventory list --json``, one endpoint in full, adding and removing (audited), and problem details for
bad input."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from typer.testing import CliRunner

from tests.unit.storage.builders import failed_result, finding, scan_result
from tests.unit.web.conftest import BODY_CAP, Api, problem
from tlsward.cli.main import app as cli
from tlsward.model.access import Role
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store
from tlsward.storage.access import AccessStore

V = {"role": Role.VIEWER}
A = {"role": Role.ADMIN}


def seed(store: Store, count: int) -> list[str]:
    """``count`` endpoints with owners, teams and tags in a pattern; their targets in inventory order."""
    records = [EndpointRecord(target=f"host{i:04d}.example:443", host=f"host{i:04d}.example", port=443,
                              owner=f"owner{i % 3}", team=f"team{i % 2}", tags=("edge",) if i % 5 == 0 else ())
               for i in range(count)]
    store.import_endpoints(records)
    return sorted(record.target for record in records)


def walk(api: Api, query: str, limit: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Every page of a listing, following 'next'; the targets in order and the pages."""
    targets: list[str] = []
    pages: list[dict[str, Any]] = []
    url = f"/api/v1/endpoints?limit={limit}{'&' + query if query else ''}"
    while True:
        response = api.get(url, **V)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        targets += [item["target"] for item in page["items"]]
        if page["next"] is None:
            return targets, pages
        url = f"/api/v1/endpoints?limit={limit}&cursor={page['next']}{'&' + query if query else ''}"


def test_pages_follow_each_other_without_gaps_or_repeats(api: Api, store: Store) -> None:
    expected = seed(store, 123)
    targets, pages = walk(api, "", 10)
    assert targets == expected
    assert len(pages) == 13 and all(page["total"] == 123 for page in pages)
    assert [len(page["items"]) for page in pages] == [10] * 12 + [3]
    exact, _ = walk(api, "", 41)
    assert exact == expected
    offset = api.get("/api/v1/endpoints?limit=10&offset=20", **V).json()
    assert [item["target"] for item in offset["items"]] == expected[20:30]
    assert offset["next"] is not None
    following = api.get(f"/api/v1/endpoints?limit=10&cursor={offset['next']}", **V).json()
    assert [item["target"] for item in following["items"]] == expected[30:40]
    assert api.get("/api/v1/endpoints", **V).json()["items"].__len__() == 50, "default page size"
    assert len(api.get("/api/v1/endpoints?limit=500", **V).json()["items"]) == 123


def test_filters_page_too(api: Api, store: Store) -> None:
    expected = [t for i, t in enumerate(seed(store, 60)) if i % 3 == 1 and i % 2 == 0]
    targets, pages = walk(api, "owner=owner1&team=team0", 4)
    assert targets == expected and pages[0]["total"] == len(expected)
    tagged, _ = walk(api, "tag=edge", 5)
    assert tagged == [f"host{i:04d}.example:443" for i in range(0, 60, 5)]
    found = api.get("/api/v1/endpoints?q=HOST001", **V).json()
    assert [item["target"] for item in found["items"]] == [f"host{i:04d}.example:443" for i in range(10, 20)]
    assert found["total"] == 10
    none = api.get("/api/v1/endpoints?q=%25", **V).json()
    assert none == {"items": [], "next": None, "total": 0}, "q is a substring, not a LIKE pattern"


def test_state_filters_read_the_newest_observation(api: Api, store: Store) -> None:
    store.record_scan(scan_result("ok.example:443", issuer="CN=Lab Intermediate"))
    store.record_scan(scan_result("old.example:443", issuer="CN=Other CA", days_left=-3000))
    store.record_scan(failed_result("down.example:443"))

    def listed(query: str) -> list[str]:
        return [item["target"] for item in api.get(f"/api/v1/endpoints?{query}", **V).json()["items"]]

    assert listed("failing=true") == ["down.example:443"]
    assert listed("failing=false") == ["ok.example:443", "old.example:443"]
    assert listed("issuer=other%20ca") == ["old.example:443"]
    assert listed("days_left=0") == ["old.example:443"]
    assert listed("days_left=30000") == ["ok.example:443", "old.example:443"]


def test_items_are_exactly_what_inventory_list_json_prints(api: Api, store: Store, db_url: str) -> None:
    store.upsert_endpoint(EndpointRecord(target="plain.example:443", host="plain.example", port=443, owner="ana",
                                         team="web", environment="prod", tags=("pci", "edge")))
    store.record_scan(scan_result("scanned.example:443", findings=(finding("cert.expiring", Severity.HIGH),)))
    store.record_scan(failed_result("down.example:443"))
    run = CliRunner().invoke(cli, ["inventory", "list", "--json", "--db", db_url])
    assert run.exit_code == 0, run.output
    printed = json.loads(run.stdout)
    served = api.get("/api/v1/endpoints", **V).json()["items"]

    def steady(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in items:     # days_left moves with the clock between the two reads
            if item["leaf"] is not None:
                item["leaf"]["days_left"] = round(item["leaf"]["days_left"])
        return items

    assert steady(served) == steady(printed)
    assert len(served) == 3 and served[2]["last_observation"]["worst_finding"] == "cert.expiring"


def test_one_endpoint_in_full_by_its_url_encoded_target(api: Api, store: Store) -> None:
    store.record_scan(scan_result("https://web.example:8443"))
    store.record_scan(failed_result("https://web.example:8443"))
    shown = api.get(f"/api/v1/endpoints/{quote('https://web.example:8443', safe='')}", **V)
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["target"] == "https://web.example:8443" and body["scheme"] == "https" and body["port"] == 8443
    assert [cert["position"] for cert in body["certificates"]] == [0, 1]
    assert body["certificates"][0]["subject"] == "CN=web.example" and body["certificates"][0]["pem"].startswith(
        "-----BEGIN CERTIFICATE-----")
    assert [o["success"] for o in body["observations"]] == [False, True], "newest first"
    assert body["last_observation"]["failure_kind"] == "refused" and body["leaf"]["subject"] == "CN=web.example"
    assert api.get("/api/v1/endpoints/web.example%3A443", **V).status_code == 404, "the scheme is part of it"
    assert len(api.get(f"/api/v1/endpoints/{quote('https://web.example:8443', safe='')}?observations=1",
                       **V).json()["observations"]) == 1
    # Typed as people type it: canonicalised like the CLI does.
    assert api.get("/api/v1/endpoints/https%3A%2F%2FWEB.example.%3A8443", **V).status_code == 200


def test_add_update_remove_are_audited(api: Api, store: Store) -> None:
    added = api.post("/api/v1/endpoints", json={"target": "New.Example", "owner": "ana", "tags": ["pci", " edge "]},
                     **A)
    assert added.status_code == 201, added.text
    assert added.headers["location"] == "/api/v1/endpoints/new.example%3A443"
    assert added.json()["target"] == "new.example:443" and added.json()["tags"] == ["pci", "edge"]
    updated = api.post("/api/v1/endpoints", json={"target": "new.example:443", "owner": "bo"}, **A)
    assert updated.status_code == 200 and updated.json()["owner"] == "bo"
    assert api.get(added.headers["location"], **V).json()["owner"] == "bo"
    removed = api.delete("/api/v1/endpoints/new.example%3A443", **A)
    assert removed.status_code == 204 and removed.content == b""
    problem(api.delete("/api/v1/endpoints/new.example%3A443", **A), 404)
    assert store.get_endpoint("new.example:443") is None
    entries = [(e.actor, e.action, e.target) for e in AccessStore(store).audit_entries()]
    assert entries == [("admin", "endpoint.remove", "new.example:443"), ("admin", "endpoint.update", "new.example:443"),
                       ("admin", "endpoint.add", "new.example:443")]
    audit = api.get("/api/v1/audit", **A).json()["items"]
    assert [entry["action"] for entry in audit] == ["endpoint.remove", "endpoint.update", "endpoint.add"]
    assert "owner=ana" in audit[2]["detail"]


@pytest.mark.parametrize(("body", "detail"), [
    ({"target": "bad target"}, "'bad target'"),
    ({"target": "ftp://"}, "no host"),
    ({"target": "a.example:99999"}, "99999"),
    ({"target": "gopher://a.example"}, "unknown scheme 'gopher'"),
    ({"target": "a.example", "connect": "not-an-ip"}, "connect 'not-an-ip' is not"),
    ({"target": "a.example", "tags": ["a;b"]}, "tag 'a;b'"),
    ({"target": ""}, "target"),
    ({"target": "a.example", "ownr": "typo"}, "ownr"),
    ({"target": "a.example", "probe_interval_s": 0}, "probe_interval_s"),
    ({"target": "a.example\u0000"}, "control characters"),
    ({"target": ["a.example"]}, "target"),
])
def test_bad_endpoints_are_400_problems_naming_the_input(api: Api, body: dict[str, Any], detail: str) -> None:
    assert detail in problem(api.post("/api/v1/endpoints", json=body, **A), 400)["detail"]


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "offset=-1", "cursor=bm9wZQ",
                                   "cursor=%%%", "offset=5&cursor=dDE6YQ", "days_left=soon", "failing=maybe",
                                   "owner=a%00b", "q=" + "x" * 600])
def test_bad_listing_parameters_are_400_problems(api: Api, query: str) -> None:
    problem(api.get(f"/api/v1/endpoints?{query}", **V), 400)


def test_malformed_and_oversized_bodies(api: Api) -> None:
    problem(api.post("/api/v1/endpoints", content=b"{not json", headers={"content-type": "application/json"}, **A),
            400)
    problem(api.post("/api/v1/endpoints", content=b'"a.example"', headers={"content-type": "application/json"},
                     **A), 400)
    big = {"target": "a.example", "owner": "x" * (BODY_CAP + 1)}
    assert "limited to" in problem(api.post("/api/v1/endpoints", json=big, **A), 413)["detail"]

    async def chunks() -> Any:
        yield b'{"target": "a.example", "owner": "'
        for _ in range(BODY_CAP // 1024 + 1):
            yield b"x" * 1024
        yield b'"}'

    chunked = api.post("/api/v1/endpoints", content=chunks(), headers={"content-type": "application/json"}, **A)
    assert problem(chunked, 413)["instance"] == "/api/v1/endpoints", "no Content-Length is no way around the cap"


def test_unknown_endpoint_is_404(api: Api) -> None:
    assert "'nowhere.example' is not in the inventory" in problem(
        api.get("/api/v1/endpoints/nowhere.example", **V), 404)["detail"]
    problem(api.get("/api/v1/endpoints/not%20a%20target", **V), 404)
    problem(api.get("/api/v1/observations?target=nowhere.example", **V), 404)
