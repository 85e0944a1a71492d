"""The ASGI app and the text encoder: HTTP behaviour, mounting, an unreadable inventory, byte-for-byte
agreement with prometheus_client's encoder, and a fixed number of SQL statements per scrape."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric
from sqlalchemy import create_engine, event

from tests.unit.exporter.scraping import get, parse
from tests.unit.storage.builders import NOW, failed_result, finding, scan_result
from tlsward.exporter.app import encode_text, metrics_app
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.model.metrics import ProbeStats
from tlsward.storage import Store
from tlsward.storage.snapshot import metrics_snapshot


class Fixed:
    """A collector that returns the same families every time (so two encoders see identical input)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def populated(store: Store) -> ProbeStats:
    store.upsert_endpoint(EndpointRecord(target="odd.test:443", host="odd.test", port=443,
                                         team='we"b\\ops\nnight', owner="ünïcode"))
    store.record_scan(scan_result("odd.test:443", findings=(finding("cert.expiring", Severity.HIGH),)))
    store.record_scan(failed_result("down.test:443"))
    stats = ProbeStats()
    stats.record(team="web", failure_kind=None, handshake_seconds=0.03)
    stats.record(team="web", failure_kind="refused", handshake_seconds=None)
    return stats


def test_encode_text_writes_what_generate_latest_writes(store: Store) -> None:
    app = metrics_app(store, populated(store))
    families = Fixed(app.registry.collect())
    assert encode_text(families.collect()) == generate_latest(families)
    assert b'team="we\\"b\\\\ops\\nnight"' in encode_text(families.collect())


def test_the_snapshot_runs_the_same_statements_for_2_or_20_endpoints(store: Store) -> None:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    for i in range(2):
        store.record_scan(scan_result(f"e{i}.test:443"))
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        small = metrics_snapshot(store, NOW)
        few = len(statements)
        for i in range(2, 20):
            store.record_scan(scan_result(f"e{i}.test:443") if i % 3 else failed_result(f"e{i}.test:443"))
        statements.clear()
        large = metrics_snapshot(store, NOW)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert len(small.endpoints) == 2 and len(large.endpoints) == 20
    assert len(statements) == few <= 7     # endpoints, certificates, alerts (2), client logs, renewals


def test_http_behaviour(store: Store) -> None:
    app = metrics_app(store, populated(store))

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as client:
            assert (await client.get("/elsewhere")).status_code == 404
            posted = await client.post("/metrics")
            assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
            head = await client.head("/metrics")
            assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
            zipped = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
            assert zipped.headers["content-encoding"] == "gzip"   # httpx decodes it for us
            assert "tlsward_probe_success" in zipped.text
            # Prometheus asks for OpenMetrics first; the text format it also accepts is what it gets.
            om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text;version=1.0.0,"
                                                                 "text/plain;version=0.0.4;q=0.5"})
            assert om.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            only = await client.get("/metrics", params={"name[]": "tlsward_probe_success"})
            assert set(parse(only.text).samples) == {"tlsward_probe_success"}

    asyncio.run(run())


def test_mounted_under_a_prefix(store: Store) -> None:
    app = metrics_app(store)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, root_path="/metrics")
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            assert (await client.get("/metrics")).status_code == 200       # Starlette: path keeps the prefix
            assert (await client.get("/metrics/")).status_code == 200
            assert (await client.get("/metrics/nope")).status_code == 404

    asyncio.run(run())


def test_an_unreadable_inventory_is_inventory_up_0_not_a_failed_scrape(tmp_path: Path) -> None:
    stats = ProbeStats()
    stats.record(team="web", failure_kind=None, handshake_seconds=0.01)
    broken = Store(create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'inventory.db'}"))
    response = asyncio.run(get(metrics_app(broken, stats)))
    assert response.status_code == 200
    metrics = parse(response.text)
    assert metrics.value("tlsward_inventory_up") == 0
    assert metrics.value("tlsward_probes_total", team="web", result="success", reason="") == 1
    assert "tlsward_endpoint_info" not in metrics.families


def test_an_app_opened_from_a_url_closes_its_store_at_shutdown(tmp_path: Path) -> None:
    app = metrics_app(f"sqlite:///{tmp_path / 'inventory.db'}")
    assert app.owns_store
    closed: list[bool] = []
    app.store.close = lambda: closed.append(True)  # type: ignore[method-assign]
    sent: list[dict[str, Any]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: Any) -> None:
        sent.append(dict(message))

    asyncio.run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert closed == [True]


def test_gzip_body_is_the_text_body(store: Store) -> None:
    app = metrics_app(store, populated(store))
    _, plain_headers, plain = app.render("")
    _, zipped_headers, zipped = app.render("gzip, deflate")
    assert (b"content-encoding", b"gzip") in zipped_headers and (b"content-encoding", b"gzip") not in plain_headers
    # Two scrapes differ only in the read duration gauge.
    def strip(body: bytes) -> list[bytes]:
        return [line for line in body.splitlines() if not line.startswith(b"tlsward_inventory_read_duration")]
    assert strip(gzip.decompress(zipped)) == strip(plain)
