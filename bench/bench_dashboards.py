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

Also ``GET /api/v1/endpoints?limit=100`` (goal: < 50 ms). Reproduce: ``make bench BENCH=dashboards``; results on
stdout, in ``bench/results/dashboards.json`` and in the BENCHMARKS.md section.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import (
    Goal,
    RunInfo,
    goal_lines,
    goals_json,
    machine,
    md_table,
    measured_on,
    print_goals,
    publish,
    tlsward_version,
)
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
API_GOAL_MS = 50.0
NAME = "dashboards"
TITLE = "## Dashboards and API (`tlsward serve`)"


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
            "GET /api/v1/endpoints?limit=100": "/api/v1/endpoints?limit=100",
            "GET /api/v1/endpoints?limit=100&days_left=30": "/api/v1/endpoints?limit=100&days_left=30",
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
    info = RunInfo(date=dt.date.today().isoformat(), machine=machine(), load_before=os.getloadavg()[0])
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
    for name, numbers in results.items():
        line = "  ".join(f"{key} {value:8.1f}" for key, value in numbers.items())
        print(f"{name.ljust(width)}  {line}")
    views = [n for n in results if n.startswith(("/executive", "/inventory")) and "p95_ms" in results[n]]
    apis = [n for n in results if n.startswith("GET /api/v1/")]
    worst_view = max(views, key=lambda n: results[n]["p95_ms"])
    worst_api = max(apis, key=lambda n: results[n]["p95_ms"])
    goals: list[Goal] = [
        (f"/executive and /inventory at {ENDPOINTS:,} endpoints and {observations:,} observations: p95 < "
         f"{GOAL_MS:.0f} ms", results[worst_view]["p95_ms"] < GOAL_MS,
         f"worst p95 {results[worst_view]['p95_ms']:.0f} ms, {worst_view}"),
        (f"the API lists 100 endpoints in < {API_GOAL_MS:.0f} ms", results[worst_api]["p95_ms"] < API_GOAL_MS,
         f"worst p95 {results[worst_api]['p95_ms']:.1f} ms, {worst_api}"),
    ]
    print_goals(goals)
    info.load_after = os.getloadavg()[0]
    rows = [[f"`{name}`" if not name.startswith("GET") else f"`{name[4:]}`",
             *(f"{numbers[key]:.1f}" if key in numbers else "-" for key in ("p50_ms", "p95_ms", "ms"))]
            for name, numbers in results.items()]
    section = "\n\n".join([
        TITLE,
        f"{ENDPOINTS:,} endpoints with {PER_ENDPOINT} observations each ({observations:,} rows over 30 days) on "
        "SQLite; each page requested through the ASGI app with a Bearer token (everything but the socket), "
        f"{REPEATS} times after a warm-up. The first `/executive` of a process also computes the past days of its "
        "window once (then kept, refreshed in the background): reported on its own.",
        "\n".join(md_table(["request", "p50 ms", "p95 ms", "single ms"], rows)),
        "\n".join(goal_lines(goals)),
        measured_on(info, tlsward_version(), NAME, "times"),
    ]) + "\n"
    publish(NAME, TITLE, {"info": info.__dict__, "endpoints": ENDPOINTS, "observations": observations,
                          "results": results, "goals": goals_json(goals)}, section)
    return 0 if all(ok for _, ok, _ in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
