"""Who may call what: tokens by role, revoked and expired tokens, browser sessions and CSRF, and the
OpenAPI document that says so."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.unit.web.conftest import Api, problem
from tlsward.model.access import Role
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.web.auth import CSRF_HEADER, SESSION_COOKIE

READS = ("/api/v1/endpoints", "/api/v1/findings", "/api/v1/alerts", "/api/v1/silences", "/api/v1/sli",
         "/api/v1/observations?target=a.example")


@pytest.mark.parametrize("path", [*READS, "/api/v1/audit", "/api/v1/scans/0123456789abcdef"])
def test_no_credentials_is_401_with_a_bearer_challenge(api: Api, path: str) -> None:
    response = api.get(path)
    body = problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in body["detail"]


def test_a_malformed_authorization_header_is_401(api: Api) -> None:
    problem(api.get("/api/v1/endpoints", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401)
    problem(api.get("/api/v1/endpoints", token="tlw_not-a-real-token"), 401)


@pytest.mark.parametrize("path", READS)
def test_viewers_read(api: Api, path: str) -> None:
    response = api.get(path, role=Role.VIEWER)
    assert response.status_code in (200, 404), response.text   # 404: the observations of an unknown target


def test_viewer_cannot_start_a_scan_and_operator_cannot_edit_the_inventory(api: Api, closed_port: int) -> None:
    scan = {"target": f"127.0.0.1:{closed_port}"}
    assert "operator role" in problem(api.post("/api/v1/scans", json=scan, role=Role.VIEWER), 403)["detail"]
    assert api.post("/api/v1/scans", json=scan, role=Role.OPERATOR).status_code == 202
    endpoint = {"target": "a.example"}
    assert "admin role" in problem(api.post("/api/v1/endpoints", json=endpoint, role=Role.OPERATOR), 403)["detail"]
    problem(api.delete("/api/v1/endpoints/a.example", role=Role.OPERATOR), 403)
    problem(api.post("/api/v1/alerts/ack", json={"key": "x"}, role=Role.VIEWER), 403)
    problem(api.post("/api/v1/silences", json={"matchers": {"team": "x"}, "duration": "1h"}, role=Role.VIEWER), 403)
    problem(api.get("/api/v1/audit", role=Role.OPERATOR), 403)
    assert api.get("/api/v1/audit", role=Role.ADMIN).status_code == 200


def test_a_revoked_token_is_401(api: Api, store: Store) -> None:
    access = AccessStore(store)
    secret, token = access.create_token("leaver", Role.ADMIN, dt.datetime.now(dt.UTC))
    assert api.get("/api/v1/endpoints", token=secret).status_code == 200
    access.revoke(str(token.id), dt.datetime.now(dt.UTC))
    assert "revoked" in problem(api.get("/api/v1/endpoints", token=secret), 401)["detail"]


def test_an_expired_token_is_401(api: Api, store: Store) -> None:
    now = dt.datetime.now(dt.UTC)
    secret, _ = AccessStore(store).create_token("temp", Role.ADMIN, now - dt.timedelta(days=2),
                                                expires_at=now - dt.timedelta(seconds=1))
    assert "expired" in problem(api.get("/api/v1/endpoints", token=secret), 401)["detail"]


def test_a_cookie_session_needs_the_csrf_header_to_change_anything(api: Api, store: Store,
                                                                   closed_port: int) -> None:
    access = AccessStore(store)
    now = dt.datetime.now(dt.UTC)
    secret, token = access.create_token("browser", Role.OPERATOR, now)
    session_id, csrf = access.open_session(token, now, dt.timedelta(hours=1))
    api.client.cookies.set(SESSION_COOKIE, session_id)
    assert api.get("/api/v1/endpoints").status_code == 200, "reads need no CSRF token"
    scan = {"target": f"127.0.0.1:{closed_port}"}
    assert "CSRF" in problem(api.post("/api/v1/scans", json=scan), 403)["detail"]
    problem(api.post("/api/v1/scans", json=scan, headers={CSRF_HEADER: "guess"}), 403)
    started = api.post("/api/v1/scans", json=scan, headers={CSRF_HEADER: csrf})
    assert started.status_code == 202, started.text
    assert secret   # the token itself never travelled: the cookie did


def test_the_openapi_document_declares_auth_and_problem_details_and_no_422(api: Api) -> None:
    document = api.get("/api/v1/openapi.json").json()
    assert document["components"]["securitySchemes"]["token"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API token: `tlsward token create NAME --role viewer|operator|admin`."}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    operations = [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]
    assert len(operations) >= 15
    for path, method, operation in operations:
        assert path.startswith("/api/v1/"), path
        assert "422" not in operation["responses"], (path, method)
        assert {"token": []} in operation["security"], (path, method)
        assert "application/problem+json" in operation["responses"]["4XX"]["content"], (path, method)
        assert operation.get("summary"), (path, method)


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/api/v1/endpoints", "GET, POST"), ("PATCH", "/api/v1/endpoints/a.example", "DELETE, GET"),
    ("GET", "/api/v1/alerts/ack", "POST"), ("POST", "/api/v1/sli", "GET"),
])
def test_405_lists_every_method_the_path_serves(api: Api, method: str, path: str, allow: str) -> None:
    response = api.request(method, path, role=Role.ADMIN)
    problem(response, 405)
    assert response.headers["allow"] == allow
