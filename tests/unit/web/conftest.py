"""Fixtures for the JSON API tests: an app over a temporary SQLite inventory, a token of each role, and a
client that speaks to the app in-process (httpx over ASGI) on one event loop per test, so that scan jobs
started by one request keep running while later requests look at them."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tlsward.model.access import Role
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

BODY_CAP = 64 * 1024


class Api:
    """A synchronous face over ``httpx.AsyncClient(transport=ASGITransport(app))``: each call runs the loop
    until the response is complete; tasks the app started (scan jobs) run whenever the loop does."""

    def __init__(self, app: FastAPI, tokens: dict[Role, str]) -> None:
        self.app, self.tokens = app, tokens
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tlsward.test")

    def request(self, method: str, url: str, *, role: Role | None = None, token: str | None = None,
                headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        sent = dict(headers or {})
        secret = token or (self.tokens[role] if role is not None else None)
        if secret is not None:
            sent["Authorization"] = f"Bearer {secret}"
        return self.run(self.client.request(method, url, headers=sent, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def sleep(self, seconds: float) -> None:
        """Let background jobs run for a while."""
        self.run(asyncio.sleep(seconds))

    def close(self) -> None:
        scans = getattr(self.app.state, "scans", None)
        if scans is not None:
            self.run(scans.close())
        self.run(self.client.aclose())
        self.loop.close()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inventory.db'}"


@pytest.fixture
def settings(db_url: str) -> WebSettings:
    return WebSettings(db_url=db_url, max_body_bytes=BODY_CAP, scan_timeout_s=2.0)


@pytest.fixture
def app(settings: WebSettings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.store.close()


@pytest.fixture
def store(app: FastAPI) -> Store:
    """The app's own store: what the API reads and writes."""
    opened: Store = app.state.store
    return opened


@pytest.fixture
def tokens(store: Store) -> dict[Role, str]:
    """A token of each role, named after it (the audit log shows that name)."""
    access = AccessStore(store)
    return {role: access.create_token(role.label, role, dt.datetime.now(dt.UTC))[0] for role in Role}


@pytest.fixture
def api(app: FastAPI, tokens: dict[Role, str]) -> Iterator[Api]:
    client = Api(app, tokens)
    yield client
    client.close()


@pytest.fixture
def api_with(settings: WebSettings) -> Iterator[Callable[..., Api]]:
    """``api_with(scan_queue=1, ...)``: a client of an app with these settings changed (same database)."""
    made: list[Api] = []

    def make(**changes: Any) -> Api:
        application = create_app(dataclasses.replace(settings, **changes))
        access = AccessStore(application.state.store)
        tokens = {role: access.create_token(role.label, role, dt.datetime.now(dt.UTC))[0] for role in Role}
        made.append(Api(application, tokens))
        return made[-1]

    yield make
    for client in made:
        client.close()
        client.app.state.store.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): scans of it fail fast with 'refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never says a word: a scan of it waits for its timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response's problem document, after checking it is one with this status."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/problem+json", response.headers["content-type"]
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"] and body["type"].endswith(str(status))
    return body
