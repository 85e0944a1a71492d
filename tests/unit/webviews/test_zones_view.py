"""The on-call page shows the probe zones of distributed workers, a zone without live workers as DOWN (its
endpoints silently going stale is exactly what must not happen), and nothing when no scheduler ever ran."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx

from tlsward.model.access import Role
from tlsward.model.distributed import ZoneState
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.storage.workers import DistributedStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

NOW = dt.datetime.now(dt.UTC)


def oncall(db: str) -> str:
    with open_store(db) as store:
        secret, _ = AccessStore(store).create_token("viewer", Role.VIEWER, NOW)
    app = create_app(WebSettings(db_url=db))

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tlsward.test") as client:
            return await client.get("/oncall", headers={"Authorization": f"Bearer {secret}"})

    try:
        page = asyncio.run(get())
    finally:
        app.state.store.close()
    assert page.status_code == 200
    return page.text


def test_zones_are_shown_and_a_dead_zone_is_down(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    assert 'id="zones"' not in oncall(db)
    with open_store(db) as store:
        DistributedStore(store).save_zone_states([
            ZoneState("default", endpoints=120, workers=2, slots=64, updated_at=NOW),
            ZoneState("dmz", endpoints=30, workers=0, pending=30, oldest_due_s=900.0,
                      down_since=NOW - dt.timedelta(minutes=15), updated_at=NOW)])
    text = oncall(db)
    assert 'id="zones"' in text
    assert "dmz" in text and "DOWN since" in text and "its endpoints are not being probed" in text
    assert text.count("DOWN since") == 1
