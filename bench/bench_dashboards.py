"""Render time of the dashboards of ``tlsward serve`` at 10,000 endpoints and 1,000,000 observations, on SQLite.

The inventory: 10,000 endpoints (50 owners, 20 teams, tags on some), each with its own leaf (days left spread
over -5..115) under one intermediate, and 100 observations each over the last 30 days (one million rows),
written in rounds as the monitor writes them (interleaved endpoints, time order); 70 % negotiate TLS 1.3, 27 %
TLS 1.2, the rest TLS 1.1/1.0; one endpoint in 50 is flaky (30 % failures), one in 100 fails at its newest
probe. The rows are bulk-inserted (``Store.record_scans`` would take ~200 s for a million) and the store's own
``_refresh_state`` then sets every endpoint's current-state columns, exactly as after monitor writes.

Each page is requested through the ASGI app (``httpx.ASGITransport``, Bearer token: everything but the socket
and uvicorn), ``REPEATS`` times after the first request, and the p50/p95 of those are reported. The first
``/executive`` of a process also computes the 29 past days of its window (the daily rollups, then kept): that
cold request is reported on its own. Goal: p95 < 300 ms for /executive and /inventory.

Reproduce: ``make bench BENCH=dashboards`` (or ``.venv/bin/python bench/bench_dashboards.py``); results on
stdout and in ``bench/results/dashboards.json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from tlsward.model.access import Role
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store, open_store
from tlsward.storage.access import AccessStore
from tlsward.storage.tables import Certificate, Endpoint, Observation, Sighting
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

ENDPOINTS = 10_000
PER_ENDPOINT = 100
REPEATS = 30
GOAL_MS = 300.0
RESULTS = Path(__file__).resolve().parent / "results" / "dashboards.json"


def populate(store: Store, now: dt.datetime) -> int:
    rnd = random.Random(7)
    targets = [f"service-{i:05d}.prod.example.internal:443" for i in range(ENDPOINTS)]
    store.import_endpoints([EndpointRecord(target=t, host=t[:-4], port=443, owner=f"owner{i % 50}",
                                           team=f"team-{i % 20}", environment=("prod", "staging")[i % 2],
                                           tags=(("pci",) if i % 7 == 0 else ()) + (("edge",) if i % 3 == 0 else ()))
                            for i, t in enumerate(targets)])
    with store.engine.begin() as connection:
        ids: dict[str, int] = dict(connection.execute(select(Endpoint.target, Endpoint.id)).all())
        intermediate = hashlib.sha256(b"intermediate").hexdigest()
        certificates = [{"sha256": intermediate, "subject": "CN=Example Issuing CA,O=Example",
                         "issuer": "CN=Example Root,O=Example", "serial": "1",
                         "not_before": now - dt.timedelta(days=400), "not_after": now + dt.timedelta(days=900),
                         "sans": [], "key_type": "RSA", "key_bits": 4096,
                         "signature_algorithm": "sha256WithRSAEncryption", "der": b""}]
        leaves = {}
        for i, target in enumerate(targets):
            leaves[target] = hashlib.sha256(target.encode()).hexdigest()
            certificates.append({"sha256": leaves[target], "subject": f"CN={target[:-4]},O=Example",
                                 "issuer": ("CN=Example Issuing CA,O=Example", "CN=R11,O=Let's Encrypt")[i % 2],
                                 "serial": str(i), "not_before": now - dt.timedelta(days=60),
                                 "not_after": now + dt.timedelta(days=(i % 120) - 5), "sans": [target[:-4]],
                                 "key_type": "EC", "key_bits": 256, "signature_algorithm": "ecdsa-with-SHA256",
                                 "der": b""})
        connection.execute(insert(Certificate), certificates)
        connection.execute(insert(Sighting), [
            {"certificate_sha256": leaves[t], "endpoint_id": ids[t], "source": f"endpoint:{ids[t]}:0", "position": 0,
             "first_seen": now - dt.timedelta(days=30), "last_seen": now} for t in targets])
        versions = []
        for _ in targets:
            draw = rnd.random()
            versions.append("TLSv1.3" if draw < 0.7 else "TLSv1.2" if draw < 0.97 else
                            "TLSv1.1" if draw < 0.99 else "TLSv1.0")
        span = dt.timedelta(days=30).total_seconds()
        rows: list[dict[str, Any]] = []
        written = 0
        for k in range(PER_ENDPOINT):
            for i, target in enumerate(targets):
                at = now - dt.timedelta(seconds=span * (PER_ENDPOINT - k) / PER_ENDPOINT - rnd.random() * 600)
                ok = not (i % 50 == 0 and rnd.random() < 0.3) and rnd.random() > 0.001
                if i % 100 == 1 and k == PER_ENDPOINT - 1:
                    ok = False
                expiring = i % 120 < 35
                rows.append({"endpoint_id": ids[target], "observed_at": at, "success": ok,
                             "failure_kind": None if ok else "connect_timeout", "version": versions[i] if ok else None,
                             "cipher": "TLS_AES_128_GCM_SHA256" if ok else None,
                             "handshake_ms": rnd.uniform(2, 80) if ok else None,
                             "chain": [leaves[target], intermediate] if ok else [],
                             "finding_ids": (["cert.expiring"] if expiring else []) if ok else ["conn.timeout"],
                             "worst_severity": (3 if expiring else None) if ok else 4, "probe_id": None,
                             "samples": 1, "successes": int(ok), "resolution": "raw"})
                if len(rows) >= 50_000:
                    connection.execute(insert(Observation), rows)
                    written += len(rows)
                    rows = []
        if rows:
            connection.execute(insert(Observation), rows)
            written += len(rows)
    with store._transaction() as session:
        Store._refresh_state(session, None)
    return written


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-int(p * len(ordered)) // 100) - 1)]


async def measure(app: Any, token: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bench.test",
                                 headers=headers, timeout=120) as client:

        async def timed(path: str) -> tuple[float, httpx.Response]:
            start = time.perf_counter()
            response = await client.get(path)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
            return elapsed, response

        cold, _ = await timed("/executive")
        results["/executive (first request: computes 29 past days)"] = {"ms": cold}
        # A cursor deep into the list: the page after the 9,950th endpoint by target.
        deep = "/inventory?after=" + _cursor_after(9_950)
        pages = {
            "/executive": "/executive",
            "/executive?by=team&days=7": "/executive?by=team&days=7",
            "/inventory (first page, by target)": "/inventory",
            "/inventory (page 200 of 200, keyset)": deep,
            "/inventory?sort=days_left": "/inventory?sort=days_left",
            "/inventory?sort=last_probe&dir=desc": "/inventory?sort=last_probe&dir=desc",
            "/inventory?q=service-09&team=team-3": "/inventory?q=service-09&team=team-3",
            "/inventory?failing=1&days_left=30": "/inventory?failing=1&days_left=30",
            "/oncall": "/oncall",
        }
        for name, path in pages.items():
            await timed(path)                           # warm-up
            samples = [(await timed(path))[0] for _ in range(REPEATS)]
            results[name] = {"p50_ms": statistics.median(samples), "p95_ms": percentile(samples, 95),
                             "max_ms": max(samples)}
        start = time.perf_counter()
        csv = await client.get("/inventory.csv")
        results["/inventory.csv (10,000 rows, streamed)"] = {"ms": (time.perf_counter() - start) * 1000,
                                                              "lines": float(csv.text.count("\n"))}
    return results


def _cursor_after(index: int) -> str:
    from tlsward.storage.dashboards import encode_cursor

    target = f"service-{index - 1:05d}.prod.example.internal:443"
    return encode_cursor(target, target)


def main() -> int:
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="tlsward-bench-dashboards-") as work:
        url = f"sqlite:///{Path(work) / 'inventory.db'}"
        started = time.perf_counter()
        with open_store(url) as store:
            observations = populate(store, now)
            secret, _ = AccessStore(store).create_token("bench", Role.VIEWER, now)
        print(f"inventory: {ENDPOINTS} endpoints, {observations} observations "
              f"(written in {time.perf_counter() - started:.0f} s)", flush=True)
        app = create_app(WebSettings(db_url=url, metrics=False))
        try:
            results = asyncio.run(measure(app, secret))
        finally:
            app.state.store.close()
    width = max(len(name) for name in results)
    met = True
    for name, numbers in results.items():
        line = "  ".join(f"{key} {value:8.1f}" for key, value in numbers.items())
        print(f"{name.ljust(width)}  {line}")
        if "p95_ms" in numbers and name.startswith(("/executive", "/inventory")) and numbers["p95_ms"] >= GOAL_MS:
            met = False
    print(f"goal: p95 of /executive and /inventory < {GOAL_MS:.0f} ms: {'met' if met else 'NOT met'}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"endpoints": ENDPOINTS, "observations": observations, "repeats": REPEATS,
                                   "measured_at": now.isoformat(), "results": results, "goal_met": met}, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
