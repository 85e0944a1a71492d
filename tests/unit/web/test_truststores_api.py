"""``/api/v1/truststores`` and the ``/truststores`` page: importing a host's document (operator, audited; 201 then
200; 409 for an older snapshot unless forced; 400 naming the field of a malformed one, with nothing written), the
overview with the drift of each store kind, one host's document back exactly as sent, removing a host (admin),
and the page showing per kind who lacks which reference root, who has extra ones, expired roots and problems."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from tests.unit.truststore_builders import COMMON, CORP, EXPIRED, LEGACY, T0, fleet
from tests.unit.web.conftest import Api, problem
from tlsward.model.access import Role
from tlsward.model.truststores import HostStores
from tlsward.report.truststores_json import host_stores_to_json
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.storage.truststores import TrustStoreInventory

V = {"role": Role.VIEWER}
OP = {"role": Role.OPERATOR}
URL = "/api/v1/truststores"


def doc(snapshot: HostStores) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(json.dumps(host_stores_to_json(snapshot)))
    return decoded


@pytest.fixture
def imported(api: Api) -> list[HostStores]:
    snapshots = fleet()
    for snapshot in snapshots:
        response = api.post(URL, json=doc(snapshot), **OP)
        assert response.status_code == 201, response.text
    return snapshots


def test_import_is_201_then_200_and_audited(api: Api, store: Store) -> None:
    a = fleet()[0]
    first = api.post(URL, json=doc(a), **OP)
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"{URL}/a.example"
    body = first.json()
    assert (body["host"], body["stores"], body["roots"], body["removed"], body["previous_collected_at"]) == (
        "a.example", 3, 15, [], None)
    later = doc(a) | {"collected_at": "2026-05-02T12:00:00Z"}
    later["stores"] = later["stores"][:1]
    again = api.post(URL, json=later, **OP)
    assert again.status_code == 200 and len(again.json()["removed"]) == 2 and again.json()["kept"] == [
        "etc/ssl/certs/ca-certificates.crt"]
    assert dt.datetime.fromisoformat(again.json()["previous_collected_at"]) == T0
    entries = [(e.actor, e.action, e.target) for e in AccessStore(store).audit_entries()]
    assert entries == [("operator", "truststore.import", "a.example")] * 2
    assert "removed 2" in AccessStore(store).audit_entries()[0].detail


def test_an_older_snapshot_is_409_unless_forced(api: Api) -> None:
    a = doc(fleet()[0])
    assert api.post(URL, json=a | {"collected_at": "2026-06-01T00:00:00Z"}, **OP).status_code == 201
    conflict = problem(api.post(URL, json=a, **OP), 409)
    assert "newer trust-store snapshot" in conflict["detail"] and "force=true" in conflict["detail"]
    assert api.post(f"{URL}?force=true", json=a, **OP).status_code == 200
    assert api.get(f"{URL}/a.example", **V).json()["collected_at"] == "2026-05-01T12:00:00Z"


def test_one_hosts_document_comes_back_as_sent(api: Api, imported: list[HostStores]) -> None:
    for snapshot in imported:
        response = api.get(f"{URL}/{snapshot.host}", **V)
        assert response.status_code == 200 and response.json() == doc(snapshot)
    assert "'nowhere.example' has no trust-store snapshot" in problem(api.get(f"{URL}/nowhere.example", **V),
                                                                       404)["detail"]


@pytest.mark.parametrize(("change", "detail"), [
    (lambda d: d | {"schema": "tlsward.truststores/2"}, "schema"),
    (lambda d: d | {"collected_at": "2026-13-01T00:00:00Z"},
     "request body: collected_at: '2026-13-01T00:00:00Z' is not a valid time"),
    (lambda d: d | {"stores": [d["stores"][0], d["stores"][0]]}, "request body: stores[1].id:"),
    (lambda d: d | {"stores": [d["stores"][0] | {"roots": ["00" * 32]}]}, "request body: stores[0].roots[0]: 0000"),
    (lambda d: d | {"host": "a\u0000b"}, "host"),
    (lambda d: d | {"owner": "x"}, "owner"),
    (lambda d: {k: v for k, v in d.items() if k != "stores"}, "stores"),
    (lambda d: d | {"stores": [d["stores"][0] | {"kind": "windows"}]}, "kind"),
], ids=["schema", "date", "duplicate id", "dangling root", "NUL", "unknown field", "no stores", "kind"])
def test_a_malformed_document_is_400_naming_the_field_and_nothing_is_written(
        api: Api, store: Store, change: Any, detail: str) -> None:
    response = api.post(URL, json=change(doc(fleet()[0])), **OP)
    assert detail in problem(response, 400)["detail"] + json.dumps(response.json().get("errors", []))
    assert TrustStoreInventory(store).hosts() == []


def test_roles(api: Api, imported: list[HostStores]) -> None:
    assert "operator role" in problem(api.post(URL, json=doc(imported[0]), **V), 403)["detail"]
    problem(api.get(URL), 401)
    problem(api.get(f"{URL}/a.example"), 401)
    assert "admin role" in problem(api.delete(f"{URL}/a.example", **OP), 403)["detail"]
    assert api.delete(f"{URL}/a.example", role=Role.ADMIN).status_code == 204
    problem(api.delete(f"{URL}/a.example", role=Role.ADMIN), 404)
    assert [h["host"] for h in api.get(URL, **V).json()["hosts"]] == ["b.example", "c.example"]


def test_the_overview_has_every_host_and_the_drift_per_kind(api: Api, imported: list[HostStores]) -> None:
    overview = api.get(URL, **V).json()
    assert [(h["host"], h["stores"], h["unreadable"]) for h in overview["hosts"]] == [
        ("a.example", 3, 0), ("b.example", 2, 1), ("c.example", 2, 0)]
    kinds = {k["kind"]: k for k in overview["kinds"]}
    assert list(kinds) == ["system-bundle", "java", "certifi"]
    system = kinds["system-bundle"]
    assert (system["stores"], system["hosts"], system["readable"], system["drifting"]) == (3, 3, 3, 2)
    assert {r["sha256"] for r in system["reference"]} == {r.sha256 for r in (*COMMON, LEGACY)}
    rows = {row["host"]: row for row in system["items"]}
    assert [r["subject"] for r in rows["a.example"]["missing"]] == [LEGACY.subject]
    assert [r["sha256"] for r in rows["c.example"]["extra"]] == [CORP.sha256]
    assert rows["b.example"]["drifted"] is False and rows["b.example"]["age_days"] > 10
    assert kinds["java"]["unreadable"] == 1 and "tampered" in kinds["java"]["items"][1]["problem"]
    assert [r["sha256"] for r in kinds["certifi"]["items"][0]["expired"]] == [EXPIRED.sha256]
    only = api.get(f"{URL}?kind=java", **V).json()
    assert [k["kind"] for k in only["kinds"]] == ["java"] and len(only["hosts"]) == 3
    problem(api.get(f"{URL}?kind=windows", **V), 400)


def test_the_openapi_document_declares_the_routes(api: Api) -> None:
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths[URL]) == {"get", "post"} and set(paths[f"{URL}/{{host}}"]) == {"get", "delete"}
    assert {"200", "201", "409"} <= set(paths[URL]["post"]["responses"])


# -- the page -------------------------------------------------------------------------------------------------------


def test_the_page_shows_drift_per_kind(api: Api, imported: list[HostStores]) -> None:
    page = api.get("/truststores", **V)
    assert page.status_code == 200, page.text
    html = page.text
    assert '<a href="/truststores" class="current" aria-current="page">Trust stores</a>' in html
    for kind in ("system-bundle", "java", "certifi"):
        assert f'id="kind-{kind}"' in html
    assert "Legacy Root" in html and "Corp Internal Root" in html and "Expired Root" in html
    assert "keystore was tampered with" in html and "17.0.13" in html and "2023.7.22" in html
    assert re.search(r"Reference: 6 roots \(in at least 2 of 3 readable stores\)", html)
    assert not re.search(r"<[^>]+\sstyle=|<script(?![^>]*application/json)[^>]*>[^<]|\son[a-z]+=", html), \
        "no inline style, script or event handler (the CSP forbids them)"
    java = api.get("/truststores?kind=java&host=b.", **V).text
    assert 'id="kind-java"' in java and 'id="kind-system-bundle"' not in java and "b.example" in java
    only = api.get("/truststores?drifting=1", **V).text
    system = only.split('id="kind-system-bundle"')[1].split("</section>")[0]
    assert "a.example" in system and "c.example" in system and "b.example" not in system


def test_the_page_without_snapshots_says_how_to_add_them(api: Api) -> None:
    page = api.get("/truststores", **V)
    assert page.status_code == 200 and "tlsward truststore export" in page.text
    assert api.get("/truststores?kind=windows", **V).status_code == 400
