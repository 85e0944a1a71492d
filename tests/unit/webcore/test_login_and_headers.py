"""The parts of `tlsward serve` every view and API call relies on: security headers, the body cap, problem
details, login/logout with a session cookie, CSRF on cookie-authenticated state changes, /metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tlsward.model.access import Role
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inventory.db'}"


def _token(db: str, role: Role, **kw: Any) -> str:
    with open_store(db) as store:
        secret, _ = AccessStore(store).create_token(role.label, role, dt.datetime.now(dt.UTC), **kw)
    return secret


def _run(app: Any, scenario: Any) -> Any:
    async def main() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tlsward.test") as client:
            return await scenario(client)

    return asyncio.run(main())


@pytest.fixture
def app(db: str) -> Iterator[Any]:
    application = create_app(WebSettings(db_url=db))
    yield application
    application.state.store.close()


def test_every_response_carries_the_security_headers(app: Any) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/login")

    response = _run(app, scenario)
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in response.headers, "HSTS only under HTTPS"


def test_hsts_under_https(db: str) -> None:
    app = create_app(WebSettings(db_url=db, https=True))

    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/healthz")

    assert _run(app, scenario).headers["strict-transport-security"].startswith("max-age=")
    app.state.store.close()


def test_problem_details_for_unknown_paths_and_oversized_bodies(app: Any) -> None:
    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        return (await client.get("/no/such/page"),
                await client.post("/login", content=b"x" * (2 << 20),
                                  headers={"content-type": "application/x-www-form-urlencoded"}))

    missing, big = _run(app, scenario)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404 and missing.json()["instance"] == "/no/such/page"
    assert big.status_code == 413 and "limited to" in big.json()["detail"]


def test_login_sets_an_httponly_strict_cookie_and_logout_needs_the_csrf_token(app: Any, db: str) -> None:
    secret = _token(db, Role.VIEWER)

    async def scenario(client: httpx.AsyncClient) -> dict[str, Any]:
        bad = await client.post("/login", data={"token": "tlw_nope", "next": "/"})
        good = await client.post("/login", data={"token": secret, "next": "//evil.example/"})
        home = await client.get("/")
        forged = await client.post("/logout", data={"csrf_token": "guess"})
        return {"bad": bad, "good": good, "home": home, "forged": forged}

    seen = _run(app, scenario)
    assert seen["bad"].status_code == 401 and "unknown, expired or revoked" in seen["bad"].text
    good = seen["good"]
    assert good.status_code == 303 and good.headers["location"] == "/", "no open redirect through next="
    cookie = good.headers["set-cookie"].lower()
    assert "tlsward_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie, "Secure only under HTTPS"
    assert seen["home"].headers["location"] == "/oncall"
    assert seen["forged"].status_code == 403 and "CSRF" in seen["forged"].json()["detail"]
    with open_store(db) as store:
        assert [(e.actor, e.action) for e in AccessStore(store).audit_entries()] == [("viewer", "login")]


def test_metrics_is_served_at_its_usual_path(app: Any) -> None:
    async def scenario(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/metrics")

    response = _run(app, scenario)
    assert response.status_code == 200 and "tlsward_inventory_up 1" in response.text
